//! Kafka's topic name rules (`org.apache.kafka.common.internals.Topic`):
//! 1 to 249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`; names that
//! differ only in '.' versus '_' collide (metrics names would clash).

/// Longest legal topic name.
pub const MAX_NAME_LENGTH: usize = 249;

/// Why a topic name is invalid; the text is what Kafka's `Topic.validate`
/// says ("Topic name is invalid: ..."), with over-long names shortened in
/// the message so an error never echoes more than a few hundred bytes.
pub fn validate(name: &str) -> Result<(), String> {
    let reason = if name.is_empty() {
        "the empty string is not allowed".to_string()
    } else if name == "." {
        "'.' is not allowed".to_string()
    } else if name == ".." {
        "'..' is not allowed".to_string()
    } else if name.chars().count() > MAX_NAME_LENGTH {
        format!(
            "the length of '{}' is longer than the max allowed length {MAX_NAME_LENGTH}",
            shown(name)
        )
    } else if !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-') {
        format!(
            "'{}' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'",
            shown(name)
        )
    } else {
        return Ok(());
    };
    Err(format!("Topic name is invalid: {reason}"))
}

/// Longest name echoed in full in an error message (Kafka echoes any name;
/// requests can carry names of up to 32 KiB).
const MAX_ECHOED_NAME_CHARS: usize = 300;

fn shown(name: &str) -> String {
    if name.chars().count() <= MAX_ECHOED_NAME_CHARS {
        name.to_string()
    } else {
        let cut: String = name.chars().take(MAX_ECHOED_NAME_CHARS).collect();
        format!("{cut}...")
    }
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
        // Kafka's exact messages.
        let msg = |n: &str| validate(n).unwrap_err();
        assert_eq!(msg(""), "Topic name is invalid: the empty string is not allowed");
        assert_eq!(msg("."), "Topic name is invalid: '.' is not allowed");
        assert_eq!(msg(".."), "Topic name is invalid: '..' is not allowed");
        assert_eq!(
            msg("a b"),
            "Topic name is invalid: 'a b' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'"
        );
        let long = "x".repeat(250);
        assert_eq!(
            msg(&long),
            format!("Topic name is invalid: the length of '{long}' is longer than the max allowed length 249")
        );
        assert!(msg(&"y".repeat(5000)).len() < 500);
    }
}
