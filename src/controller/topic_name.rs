//! Kafka's topic name rules (`org.apache.kafka.common.internals.Topic`):
//! 1 to 249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`; names that
//! differ only in '.' versus '_' collide (metrics names would clash).

/// Longest legal topic name.
pub const MAX_NAME_LENGTH: usize = 249;

/// Why a topic name is invalid; the text is what Kafka says.
pub fn validate(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > MAX_NAME_LENGTH {
        return Err(format!(
            "Topic name is illegal, it can't be longer than {MAX_NAME_LENGTH} characters, topic name: {name}"
        ));
    }
    if !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-') {
        return Err(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// The form under which '.' and '_' collide.
pub fn unify_collision_chars(name: &str) -> String {
    name.replace('.', "_")
}

/// Internal topics (Kafka's `__consumer_offsets`, `__transaction_state`).
pub fn is_internal(name: &str) -> bool {
    name == "__consumer_offsets" || name == "__transaction_state"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_rules() {
        assert!(validate("orders").is_ok());
        assert!(validate("a.b_c-D9").is_ok());
        assert!(validate(&"x".repeat(249)).is_ok());
        assert!(validate(&"x".repeat(250)).is_err());
        assert!(validate("").is_err());
        assert!(validate(".").is_err());
        assert!(validate("..").is_err());
        assert!(validate("bad name").is_err());
        assert!(validate("a/b").is_err());
        assert!(validate("ümlaut").is_err());
        assert_eq!(unify_collision_chars("a.b_c"), "a_b_c");
    }
}
