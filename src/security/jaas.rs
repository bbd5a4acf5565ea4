//! Kafka's `sasl.jaas.config` values: one JAAS login module entry,
//! `<LoginModule class> <required|requisite|sufficient|optional>
//! key="value" key=value ...;`, parsed as Kafka's `JaasConfig` does
//! (values quoted with `"` may hold spaces and `;`; `\` escapes the next
//! character inside quotes). Bounded: the input is a config value, at most
//! `MAX_JAAS_BYTES`.

use std::collections::BTreeMap;

/// The longest `sasl.jaas.config` value accepted.
pub const MAX_JAAS_BYTES: usize = 1024 * 1024;

/// One parsed login module entry.
#[derive(Clone, PartialEq, Eq)]
pub struct JaasEntry {
    pub login_module: String,
    pub flag: String,
    pub options: BTreeMap<String, String>,
}

impl std::fmt::Debug for JaasEntry {
    /// Option values are passwords: only their names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JaasEntry")
            .field("login_module", &self.login_module)
            .field("flag", &self.flag)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

const FLAGS: &[&str] = &["required", "requisite", "sufficient", "optional"];

/// Parses one `sasl.jaas.config` value. Kafka requires exactly one login
/// module per value (a `KafkaServer { ... };` file section is not this).
pub fn parse(value: &str) -> Result<JaasEntry, String> {
    if value.len() > MAX_JAAS_BYTES {
        return Err(format!("longer than {MAX_JAAS_BYTES} bytes"));
    }
    let mut tokens = Tokens { s: value.as_bytes(), pos: 0 };
    let login_module = tokens.word().ok_or("expected a login module class name")?;
    if login_module.contains('{') || login_module.contains('}') {
        return Err("expected a single login module, not a JAAS file section ('{ ... }')".into());
    }
    let flag = tokens.word().ok_or_else(|| format!("expected a control flag after '{login_module}' (one of {})", FLAGS.join(", ")))?;
    if !FLAGS.contains(&flag.to_ascii_lowercase().as_str()) {
        return Err(format!("invalid control flag '{flag}' (expected one of {})", FLAGS.join(", ")));
    }
    let mut options = BTreeMap::new();
    loop {
        tokens.skip_space();
        match tokens.peek() {
            None => return Err("the login module entry must end with ';'".into()),
            Some(b';') => {
                tokens.pos += 1;
                tokens.skip_space();
                if tokens.peek().is_some() {
                    return Err("expected exactly one login module: text follows the ';'".into());
                }
                break;
            }
            Some(_) => {
                let key = tokens.key().ok_or("expected an option name")?;
                tokens.skip_space();
                if tokens.peek() != Some(b'=') {
                    return Err(format!("expected '=' after option '{key}'"));
                }
                tokens.pos += 1;
                tokens.skip_space();
                let v = tokens.value().map_err(|e| format!("option '{key}': {e}"))?;
                options.insert(key, v);
            }
        }
    }
    Ok(JaasEntry { login_module, flag: flag.to_ascii_lowercase(), options })
}

struct Tokens<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Tokens<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    /// A bare word: up to whitespace, `=` or `;`.
    fn word(&mut self) -> Option<String> {
        self.skip_space();
        let start = self.pos;
        while self.peek().is_some_and(|c| !c.is_ascii_whitespace() && c != b';' && c != b'=') {
            self.pos += 1;
        }
        (self.pos > start).then(|| String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }

    fn key(&mut self) -> Option<String> {
        self.word()
    }

    fn value(&mut self) -> Result<String, String> {
        if self.peek() == Some(b'"') {
            self.pos += 1;
            let mut out = Vec::new();
            loop {
                match self.peek() {
                    None => return Err("unterminated quoted value".into()),
                    Some(b'"') => {
                        self.pos += 1;
                        break;
                    }
                    Some(b'\\') => {
                        self.pos += 1;
                        let c = self.peek().ok_or("unterminated quoted value")?;
                        out.push(c);
                        self.pos += 1;
                    }
                    Some(c) => {
                        out.push(c);
                        self.pos += 1;
                    }
                }
            }
            String::from_utf8(out).map_err(|_| "not UTF-8".to_string())
        } else {
            self.word().ok_or_else(|| "expected a value".to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafkas_plain_example() {
        let e = parse(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice secret;";"#,
        )
        .unwrap();
        assert_eq!(e.login_module, "org.apache.kafka.common.security.plain.PlainLoginModule");
        assert_eq!(e.flag, "required");
        assert_eq!(e.options["user_alice"], "alice secret;");
        assert_eq!(e.options["username"], "admin");
        assert_eq!(e.options.len(), 4);
    }

    #[test]
    fn unquoted_values_escapes_and_no_options() {
        let e = parse("org.apache.kafka.common.security.scram.ScramLoginModule required;").unwrap();
        assert!(e.options.is_empty());
        let e = parse("M optional a=b c = \"x\\\"y\" ;").unwrap();
        assert_eq!(e.options["a"], "b");
        assert_eq!(e.options["c"], "x\"y");
    }

    #[test]
    fn rejects_malformed_entries() {
        assert!(parse("").is_err());
        assert!(parse("M required a=\"b\"").unwrap_err().contains("';'"));
        assert!(parse("M maybe;").unwrap_err().contains("control flag"));
        assert!(parse("M required a=\"b;").unwrap_err().contains("unterminated"));
        assert!(parse("M required; N required;").unwrap_err().contains("exactly one"));
        assert!(parse("KafkaServer { M required; };").is_err());
        assert!(parse("M required a;").unwrap_err().contains("'='"));
    }
}
