//! SASL settings of the SASL_PLAINTEXT and SASL_SSL listeners, with Kafka's names:
//! `sasl.enabled.mechanisms` (default GSSAPI, as Kafka) or per listener
//! `listener.name.<listener>.sasl.enabled.mechanisms`, and each
//! mechanism's `listener.name.<listener>.<mechanism>.sasl.jaas.config`
//! (listener and mechanism lower-case, as Kafka writes them). PLAIN users
//! are the `user_<name>="<password>"` options of the PlainLoginModule
//! entry; SCRAM users live in the credentials store, so the SCRAM entries
//! (ScramLoginModule, no options) are optional here.

use std::collections::BTreeMap;

use super::error::ConfigError;
use super::listener::{Listener, SecurityProtocol};
use super::sources::Setting;
use crate::security::jaas;
use crate::security::sasl::{ListenerSasl, Mechanism};

const PLAIN_LOGIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
const SCRAM_LOGIN_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";
const ENABLED_SUFFIX: &str = "sasl.enabled.mechanisms";
const JAAS_SUFFIX: &str = ".sasl.jaas.config";

/// Whether `name` is a per-listener SASL key this module reads.
pub fn is_listener_sasl_key(name: &str) -> bool {
    name.strip_prefix("listener.name.").is_some_and(|rest| {
        rest.split_once('.').is_some_and(|(_, key)| key == ENABLED_SUFFIX || key.ends_with(JAAS_SUFFIX))
    })
}

fn parse_mechanisms(
    key: &str,
    listener: &str,
    items: &[String],
    errors: &mut Vec<ConfigError>,
) -> Vec<Mechanism> {
    let mut out = Vec::new();
    for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        match Mechanism::parse(item) {
            Some(m) if !out.contains(&m) => out.push(m),
            Some(_) => {}
            None => errors.push(ConfigError::unsupported(
                key,
                format!(
                    "listener '{listener}' enables SASL mechanism {item}, which klamm does not support \
                     (supported: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512); set {key} or \
                     listener.name.{}.sasl.enabled.mechanisms",
                    listener.to_ascii_lowercase()
                ),
            )),
        }
    }
    if out.is_empty() && errors.is_empty() {
        errors.push(ConfigError::invalid(key, format!("no SASL mechanism is enabled for listener '{listener}'")));
    }
    out
}

fn is_sasl(p: SecurityProtocol) -> bool {
    matches!(p, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
}

/// The SASL settings of every SASL_PLAINTEXT and SASL_SSL listener among
/// `client` (on SASL_SSL the exchange runs inside TLS).
pub fn resolve(
    client: &[Listener],
    default_mechanisms: &[String],
    settings: &BTreeMap<String, Setting>,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, ListenerSasl> {
    let mut out = BTreeMap::new();
    // Keys naming a listener that is not a SASL client listener do nothing.
    for key in settings.keys() {
        let rest = key.strip_prefix("listener.name.").unwrap_or(key);
        let listener = rest.split('.').next().unwrap_or("");
        let known = client
            .iter()
            .any(|l| is_sasl(l.security_protocol) && l.name.eq_ignore_ascii_case(listener));
        if !known {
            warnings.push(format!("'{key}' is ignored: '{listener}' is not a SASL_PLAINTEXT or SASL_SSL listener"));
        }
    }
    for l in client.iter().filter(|l| is_sasl(l.security_protocol)) {
        let prefix = format!("listener.name.{}.", l.name.to_ascii_lowercase());
        let get = |suffix: &str| {
            settings.iter().find(|(k, _)| {
                k.len() == prefix.len() + suffix.len()
                    && k[..prefix.len()].eq_ignore_ascii_case(&prefix)
                    && &k[prefix.len()..] == suffix
            })
        };
        let mut local_errors = Vec::new();
        let mechanisms = match get(ENABLED_SUFFIX) {
            Some((key, setting)) => {
                let items: Vec<String> = setting.value.split(',').map(str::to_string).collect();
                parse_mechanisms(key, &l.name, &items, &mut local_errors)
            }
            None => parse_mechanisms("sasl.enabled.mechanisms", &l.name, default_mechanisms, &mut local_errors),
        };
        let mut sasl = ListenerSasl { enabled_mechanisms: mechanisms.clone(), plain_users: BTreeMap::new() };
        for m in &mechanisms {
            let suffix = format!("{}{JAAS_SUFFIX}", m.name().to_ascii_lowercase());
            let want_module = if *m == Mechanism::Plain { PLAIN_LOGIN_MODULE } else { SCRAM_LOGIN_MODULE };
            let Some((key, setting)) = get(&suffix) else {
                if *m == Mechanism::Plain {
                    local_errors.push(ConfigError::invalid(
                        &format!("{prefix}{suffix}"),
                        format!(
                            "PLAIN is enabled on listener '{}' but no users are configured: set \
                             {prefix}{suffix}={PLAIN_LOGIN_MODULE} required user_alice=\"alice-secret\"; \
                             (klamm reads no JAAS files: java.security.auth.login.config in KAFKA_OPTS \
                             is not used)",
                            l.name
                        ),
                    ));
                }
                continue;
            };
            let entry = match jaas::parse(&setting.value) {
                Ok(e) => e,
                Err(why) => {
                    local_errors.push(ConfigError::invalid(key, format!("not a JAAS login module entry: {why}")));
                    continue;
                }
            };
            if entry.login_module != want_module {
                local_errors.push(ConfigError::unsupported(
                    key,
                    format!("login module '{}' is not supported for {} (use {want_module})", entry.login_module, m.name()),
                ));
                continue;
            }
            if *m == Mechanism::Plain {
                sasl.plain_users = entry
                    .options
                    .iter()
                    .filter_map(|(k, v)| k.strip_prefix("user_").map(|u| (u.to_string(), v.clone())))
                    .filter(|(u, _)| !u.is_empty())
                    .collect();
            }
        }
        errors.extend(local_errors);
        out.insert(l.name.clone(), sasl);
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::BrokerConfig;
    use crate::security::sasl::Mechanism;

    const JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#;

    fn config(extra: &[(&str, &str)]) -> Result<BrokerConfig, String> {
        let mut s = vec![
            ("listeners", "PLAINTEXT://:9092,SASL_PLAINTEXT://:9093"),
        ];
        s.extend_from_slice(extra);
        BrokerConfig::with_settings(&s).map_err(|e| e.to_string())
    }

    #[test]
    fn kafkas_settings_configure_a_sasl_listener() {
        let c = config(&[
            ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-512"),
            ("listener.name.sasl_plaintext.plain.sasl.jaas.config", JAAS),
            (
                "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            ),
        ])
        .unwrap();
        let l = &c.sasl_listeners["SASL_PLAINTEXT"];
        assert_eq!(l.enabled_mechanisms, vec![Mechanism::Plain, Mechanism::ScramSha512]);
        assert_eq!(l.plain_users.len(), 2);
        assert_eq!(l.plain_users["alice"], "alice-secret");
        assert!(!c.sasl_listeners.contains_key("PLAINTEXT"));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert!(!format!("{c:?}").contains("alice-secret"), "passwords stay out of Debug");
    }

    #[test]
    fn docker_style_environment_variables_configure_it() {
        let env = [
            ("KAFKA_LISTENERS", "PLAINTEXT://:9092,SASL_PLAINTEXT://:9093"),
            ("KAFKA_SASL_ENABLED_MECHANISMS", "PLAIN,SCRAM-SHA-512"),
            ("KAFKA_LISTENER_NAME_SASL__PLAINTEXT_PLAIN_SASL_JAAS_CONFIG", JAAS),
            (
                "KAFKA_LISTENER_NAME_SASL__PLAINTEXT_SCRAM___SHA___512_SASL_JAAS_CONFIG",
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            ),
        ];
        let c = BrokerConfig::load(None, env, &[]).unwrap();
        let l = &c.sasl_listeners["SASL_PLAINTEXT"];
        assert_eq!(l.enabled_mechanisms, vec![Mechanism::Plain, Mechanism::ScramSha512]);
        assert_eq!(l.plain_users["alice"], "alice-secret");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn per_listener_mechanisms_win() {
        let c = config(&[
            ("listener.name.sasl_plaintext.sasl.enabled.mechanisms", "SCRAM-SHA-256"),
        ])
        .unwrap();
        assert_eq!(c.sasl_listeners["SASL_PLAINTEXT"].enabled_mechanisms, vec![Mechanism::ScramSha256]);
    }

    #[test]
    fn bad_sasl_settings_are_errors() {
        let e = config(&[]).unwrap_err();
        assert!(e.contains("GSSAPI"), "{e}");
        let e = config(&[("sasl.enabled.mechanisms", "PLAIN")]).unwrap_err();
        assert!(e.contains("listener.name.sasl_plaintext.plain.sasl.jaas.config"), "{e}");
        let e = config(&[
            ("sasl.enabled.mechanisms", "PLAIN"),
            ("listener.name.sasl_plaintext.plain.sasl.jaas.config", "org.example.Other required;"),
        ])
        .unwrap_err();
        assert!(e.contains("not supported"), "{e}");
        let e = config(&[
            ("sasl.enabled.mechanisms", "PLAIN"),
            ("listener.name.sasl_plaintext.plain.sasl.jaas.config", "nonsense"),
        ])
        .unwrap_err();
        assert!(e.contains("JAAS"), "{e}");
        let e = config(&[("sasl.enabled.mechanisms", "OAUTHBEARER")]).unwrap_err();
        assert!(e.contains("OAUTHBEARER"), "{e}");
        let e = config(&[("sasl.jaas.config", JAAS)]).unwrap_err();
        assert!(e.contains("listener.name.<listener>.<mechanism>.sasl.jaas.config"), "{e}");
    }
}
