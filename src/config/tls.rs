//! TLS settings of the SSL and SASL_SSL listeners, with Kafka's names:
//! the broker-wide `ssl.*` keys, each overridden for one listener by
//! `listener.name.<listener>.ssl.*` (listener lower-case, as Kafka writes
//! it). This module only types and checks the values; the key and trust
//! stores are read when the listener is set up
//! (`security::tls::ServerTls::load`), so a bad file is a startup error too.

use std::collections::BTreeMap;

use super::error::ConfigError;
use super::listener::{Listener, SecurityProtocol};
use super::sources::Setting;

/// The `ssl.*` keys klamm acts on.
pub const USED_KEYS: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.certificates",
    "ssl.client.auth",
    "ssl.enabled.protocols",
    "ssl.cipher.suites",
    "ssl.principal.mapping.rules",
];

/// `ssl.*` keys Kafka has that mean nothing to rustls (JSSE algorithm
/// and provider names, client-side host name checking): accepted with a
/// warning, so configurations copied from Kafka start.
pub const IGNORED_KEYS: &[&str] = &[
    "ssl.protocol",
    "ssl.endpoint.identification.algorithm",
    "ssl.keymanager.algorithm",
    "ssl.trustmanager.algorithm",
    "ssl.secure.random.implementation",
    "ssl.provider",
    "ssl.allow.dn.changes",
    "ssl.allow.san.changes",
];

/// Whether `name` is a TLS key this module reads, broker-wide or per
/// listener.
pub fn is_tls_key(name: &str) -> bool {
    let key = match name.strip_prefix("listener.name.") {
        Some(rest) => match rest.split_once('.') {
            Some((_, key)) => key,
            None => return false,
        },
        None => name,
    };
    USED_KEYS.contains(&key) || IGNORED_KEYS.contains(&key)
}

/// A key or trust store's format (`ssl.keystore.type`,
/// `ssl.truststore.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreType {
    Pem,
    Pkcs12,
    /// Kafka's default. A JKS file is refused with the keytool command that
    /// converts it; a PKCS#12 file under this type is read as PKCS#12, as
    /// the JDK's dual-format keystore does.
    Jks,
}

impl StoreType {
    fn parse(s: &str) -> Option<StoreType> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PEM" => Some(StoreType::Pem),
            "PKCS12" => Some(StoreType::Pkcs12),
            "JKS" => Some(StoreType::Jks),
            _ => None,
        }
    }
}

/// `ssl.client.auth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    /// A certificate is asked for; a client without one is served as
    /// `User:ANONYMOUS`.
    Requested,
    Required,
}

/// A TLS protocol version of `ssl.enabled.protocols`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// A setting's value and the key it came from (for error messages).
#[derive(Clone, PartialEq, Eq)]
pub struct Value {
    pub key: String,
    pub value: String,
}

/// One TLS listener's effective settings.
#[derive(Clone, PartialEq, Eq)]
pub struct ListenerTlsConfig {
    pub listener: String,
    pub protocol: SecurityProtocol,
    pub keystore_type: StoreType,
    pub keystore_location: Option<Value>,
    pub keystore_password: Option<Value>,
    pub key_password: Option<Value>,
    pub keystore_certificate_chain: Option<Value>,
    pub keystore_key: Option<Value>,
    pub truststore_type: StoreType,
    pub truststore_location: Option<Value>,
    pub truststore_password: Option<Value>,
    pub truststore_certificates: Option<Value>,
    pub client_auth: ClientAuth,
    pub enabled_protocols: Vec<TlsVersion>,
    /// Java (IANA) cipher suite names; empty: rustls's defaults.
    pub cipher_suites: Vec<String>,
    /// `ssl.principal.mapping.rules` as given (checked here, compiled by
    /// `security::tls`).
    pub principal_mapping_rules: String,
}

impl std::fmt::Debug for ListenerTlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let loc = |v: &Option<Value>| v.as_ref().map(|v| v.value.clone());
        f.debug_struct("ListenerTlsConfig")
            .field("listener", &self.listener)
            .field("protocol", &self.protocol)
            .field("keystore_type", &self.keystore_type)
            .field("keystore_location", &loc(&self.keystore_location))
            .field("inline_keystore", &self.keystore_key.is_some())
            .field("truststore_type", &self.truststore_type)
            .field("truststore_location", &loc(&self.truststore_location))
            .field("inline_truststore", &self.truststore_certificates.is_some())
            .field("client_auth", &self.client_auth)
            .field("enabled_protocols", &self.enabled_protocols)
            .field("cipher_suites", &self.cipher_suites)
            .field("principal_mapping_rules", &self.principal_mapping_rules)
            .finish()
    }
}

/// The TLS settings of every SSL / SASL_SSL listener among `client`.
pub fn resolve(
    client: &[Listener],
    settings: &BTreeMap<String, Setting>,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, ListenerTlsConfig> {
    let is_tls = |p: SecurityProtocol| matches!(p, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl);
    for (key, _) in settings.iter() {
        let (listener, base) = match key.strip_prefix("listener.name.") {
            Some(rest) => {
                let (l, k) = rest.split_once('.').unwrap_or((rest, ""));
                (Some(l), k)
            }
            None => (None, key.as_str()),
        };
        if IGNORED_KEYS.contains(&base) {
            warnings.push(format!("'{key}' is ignored: klamm's TLS (rustls) has no such setting"));
        }
        if let Some(l) = listener {
            let known = client.iter().any(|c| is_tls(c.security_protocol) && c.name.eq_ignore_ascii_case(l));
            if !known {
                warnings.push(format!("'{key}' is ignored: '{l}' is not an SSL or SASL_SSL listener"));
            }
        }
    }
    let mut out = BTreeMap::new();
    for l in client.iter().filter(|l| is_tls(l.security_protocol)) {
        let prefix = format!("listener.name.{}.", l.name.to_ascii_lowercase());
        let per_listener = |base: &str| {
            settings.iter().find(|(k, _)| {
                k.len() == prefix.len() + base.len()
                    && k[..prefix.len()].eq_ignore_ascii_case(&prefix)
                    && &k[prefix.len()..] == base
            })
        };
        // The listener's own key wins over the broker-wide one.
        let get = |base: &str| -> Option<Value> {
            per_listener(base)
                .or_else(|| settings.get_key_value(base))
                .map(|(k, s)| Value { key: k.clone(), value: s.value.clone() })
        };
        let store_type = |base: &str, errors: &mut Vec<ConfigError>| match get(base) {
            None => StoreType::Jks,
            Some(v) => StoreType::parse(&v.value).unwrap_or_else(|| {
                errors.push(ConfigError::invalid_value(&v.key, &v.value, "expected PEM, PKCS12 or JKS"));
                StoreType::Jks
            }),
        };
        let keystore_type = store_type("ssl.keystore.type", errors);
        let truststore_type = store_type("ssl.truststore.type", errors);
        // KIP-684: on SASL_SSL listeners, only the listener's own
        // ssl.client.auth counts (SASL authenticates the client).
        let client_auth_value = match l.security_protocol {
            SecurityProtocol::SaslSsl => {
                per_listener("ssl.client.auth").map(|(k, s)| Value { key: k.clone(), value: s.value.clone() })
            }
            _ => get("ssl.client.auth"),
        };
        let client_auth = match client_auth_value {
            None => ClientAuth::None,
            Some(v) => match v.value.trim().to_ascii_lowercase().as_str() {
                "none" => ClientAuth::None,
                "requested" => ClientAuth::Requested,
                "required" => ClientAuth::Required,
                _ => {
                    errors.push(ConfigError::invalid_value(&v.key, &v.value, "expected none, requested or required"));
                    ClientAuth::None
                }
            },
        };
        let mut enabled_protocols = Vec::new();
        let protocols = get("ssl.enabled.protocols")
            .unwrap_or(Value { key: "ssl.enabled.protocols".into(), value: "TLSv1.2,TLSv1.3".into() });
        for p in protocols.value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match p {
                "TLSv1.2" => enabled_protocols.push(TlsVersion::Tls12),
                "TLSv1.3" => enabled_protocols.push(TlsVersion::Tls13),
                // Kafka allows the old versions on request; rustls never
                // speaks them.
                "TLSv1" | "TLSv1.1" | "SSLv3" => {
                    warnings.push(format!("{}: {p} is not supported (rustls speaks TLSv1.2 and TLSv1.3 only)", protocols.key))
                }
                _ => errors.push(ConfigError::invalid_value(&protocols.key, p, "expected TLSv1.2 and/or TLSv1.3")),
            }
        }
        enabled_protocols.sort();
        enabled_protocols.dedup();
        if enabled_protocols.is_empty() {
            errors.push(ConfigError::invalid(&protocols.key, format!("listener '{}' enables no TLS version klamm speaks (TLSv1.2, TLSv1.3)", l.name)));
        }
        let cipher_suites = get("ssl.cipher.suites")
            .map(|v| v.value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
            .unwrap_or_default();
        let principal_mapping_rules = get("ssl.principal.mapping.rules").map(|v| v.value).unwrap_or_else(|| "DEFAULT".into());
        if let Err(why) = crate::security::tls::PrincipalMapper::parse(&principal_mapping_rules) {
            errors.push(ConfigError::invalid_value("ssl.principal.mapping.rules", &principal_mapping_rules, why));
        }
        let config = ListenerTlsConfig {
            listener: l.name.clone(),
            protocol: l.security_protocol,
            keystore_type,
            keystore_location: get("ssl.keystore.location"),
            keystore_password: get("ssl.keystore.password"),
            key_password: get("ssl.key.password"),
            keystore_certificate_chain: get("ssl.keystore.certificate.chain"),
            keystore_key: get("ssl.keystore.key"),
            truststore_type,
            truststore_location: get("ssl.truststore.location"),
            truststore_password: get("ssl.truststore.password"),
            truststore_certificates: get("ssl.truststore.certificates"),
            client_auth,
            enabled_protocols,
            cipher_suites,
            principal_mapping_rules,
        };
        check_stores(&config, errors);
        out.insert(l.name.clone(), config);
    }
    out
}

/// What a listener's stores need, checked before any file is read.
fn check_stores(c: &ListenerTlsConfig, errors: &mut Vec<ConfigError>) {
    let l = &c.listener;
    let lower = l.to_ascii_lowercase();
    let inline = c.keystore_certificate_chain.is_some() || c.keystore_key.is_some();
    if inline {
        if c.keystore_type != StoreType::Pem {
            errors.push(ConfigError::invalid(
                "ssl.keystore.type",
                format!("listener '{l}': ssl.keystore.certificate.chain and ssl.keystore.key need ssl.keystore.type=PEM"),
            ));
        }
        if c.keystore_certificate_chain.is_none() || c.keystore_key.is_none() {
            errors.push(ConfigError::invalid(
                "ssl.keystore.key",
                format!("listener '{l}': set both ssl.keystore.certificate.chain and ssl.keystore.key"),
            ));
        }
        if let Some(loc) = &c.keystore_location {
            errors.push(ConfigError::invalid(&loc.key, format!("listener '{l}': set ssl.keystore.location or the inline PEM keystore, not both")));
        }
    } else if c.keystore_location.is_none() {
        errors.push(ConfigError::invalid(
            &format!("listener.name.{lower}.ssl.keystore.location"),
            format!(
                "listener '{l}' uses {} but has no keystore: set ssl.keystore.location (PKCS12 or PEM), or \
                 ssl.keystore.type=PEM with ssl.keystore.certificate.chain and ssl.keystore.key (broker-wide or \
                 with the listener.name.{lower}. prefix)",
                c.protocol
            ),
        ));
    }
    if c.truststore_certificates.is_some() {
        if c.truststore_type != StoreType::Pem {
            errors.push(ConfigError::invalid("ssl.truststore.type", format!("listener '{l}': ssl.truststore.certificates needs ssl.truststore.type=PEM")));
        }
        if let Some(loc) = &c.truststore_location {
            errors.push(ConfigError::invalid(&loc.key, format!("listener '{l}': set ssl.truststore.location or ssl.truststore.certificates, not both")));
        }
    }
    let has_truststore = c.truststore_location.is_some() || c.truststore_certificates.is_some();
    if c.client_auth != ClientAuth::None && !has_truststore {
        errors.push(ConfigError::invalid(
            "ssl.client.auth",
            format!("listener '{l}' asks for client certificates (ssl.client.auth) but has no truststore to check them: set ssl.truststore.location or ssl.truststore.certificates"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;

    fn config(extra: &[(&str, &str)]) -> Result<BrokerConfig, String> {
        let mut s = vec![
            ("listeners", "PLAINTEXT://:9092,SSL://:9093"),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT"),
        ];
        s.extend_from_slice(extra);
        BrokerConfig::with_settings(&s).map_err(|e| e.to_string())
    }

    #[test]
    fn kafkas_settings_configure_an_ssl_listener() {
        let c = config(&[
            ("ssl.keystore.type", "PKCS12"),
            ("ssl.keystore.location", "/etc/kafka/server.p12"),
            ("ssl.keystore.password", "store-secret"),
            ("ssl.key.password", "key-secret"),
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.location", "/etc/kafka/ca.pem"),
            ("ssl.client.auth", "required"),
            ("ssl.enabled.protocols", "TLSv1.3"),
        ])
        .unwrap();
        let t = &c.tls_listeners["SSL"];
        assert_eq!(t.keystore_type, StoreType::Pkcs12);
        assert_eq!(t.keystore_location.as_ref().unwrap().value, "/etc/kafka/server.p12");
        assert_eq!(t.key_password.as_ref().unwrap().value, "key-secret");
        assert_eq!(t.truststore_type, StoreType::Pem);
        assert_eq!(t.client_auth, ClientAuth::Required);
        assert_eq!(t.enabled_protocols, vec![TlsVersion::Tls13]);
        assert_eq!(t.principal_mapping_rules, "DEFAULT");
        assert!(!c.tls_listeners.contains_key("PLAINTEXT"));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert!(!format!("{c:?}").contains("secret"), "passwords stay out of Debug");
    }

    #[test]
    fn defaults_are_kafkas() {
        let c = config(&[("ssl.keystore.location", "/k.p12"), ("ssl.keystore.password", "x")]).unwrap();
        let t = &c.tls_listeners["SSL"];
        assert_eq!(t.keystore_type, StoreType::Jks);
        assert_eq!(t.client_auth, ClientAuth::None);
        assert_eq!(t.enabled_protocols, vec![TlsVersion::Tls12, TlsVersion::Tls13]);
        assert!(t.cipher_suites.is_empty());
    }

    #[test]
    fn per_listener_keys_win_over_broker_wide_ones() {
        let c = config(&[
            ("listeners", "SSL://:9093,SASL_SSL://:9094"),
            ("sasl.enabled.mechanisms", "SCRAM-SHA-512"),
            ("ssl.keystore.location", "/broker.p12"),
            ("listener.name.ssl.ssl.keystore.location", "/ssl.p12"),
            ("listener.name.SSL.ssl.enabled.protocols", "TLSv1.2"),
            ("ssl.truststore.location", "/ca.p12"),
            ("ssl.client.auth", "required"),
        ])
        .unwrap();
        let ssl = &c.tls_listeners["SSL"];
        assert_eq!(ssl.keystore_location.as_ref().unwrap().value, "/ssl.p12");
        assert_eq!(ssl.enabled_protocols, vec![TlsVersion::Tls12]);
        assert_eq!(ssl.client_auth, ClientAuth::Required);
        let sasl_ssl = &c.tls_listeners["SASL_SSL"];
        assert_eq!(sasl_ssl.keystore_location.as_ref().unwrap().value, "/broker.p12");
        assert_eq!(sasl_ssl.protocol, SecurityProtocol::SaslSsl);
        // KIP-684: the broker-wide ssl.client.auth does not apply to SASL_SSL.
        assert_eq!(sasl_ssl.client_auth, ClientAuth::None);
        assert!(c.sasl_listeners.contains_key("SASL_SSL"), "SASL_SSL listeners get their SASL settings");
    }

    #[test]
    fn inline_pem_keystore() {
        let c = config(&[
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.certificate.chain", "-----BEGIN CERTIFICATE----- MIIB -----END CERTIFICATE-----"),
            ("ssl.keystore.key", "-----BEGIN PRIVATE KEY----- MIIE -----END PRIVATE KEY-----"),
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.certificates", "-----BEGIN CERTIFICATE----- MIIB -----END CERTIFICATE-----"),
        ])
        .unwrap();
        let t = &c.tls_listeners["SSL"];
        assert!(t.keystore_key.is_some() && t.truststore_certificates.is_some());
    }

    #[test]
    fn docker_style_environment_variables_configure_it() {
        let env = [
            ("KAFKA_LISTENERS", "PLAINTEXT://:9092,SSL://:9093"),
            ("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT"),
            ("KAFKA_SSL_KEYSTORE_TYPE", "PKCS12"),
            ("KAFKA_SSL_KEYSTORE_LOCATION", "/etc/kafka/secrets/server.p12"),
            ("KAFKA_SSL_KEYSTORE_PASSWORD", "changeit"),
            ("KAFKA_LISTENER_NAME_SSL_SSL_CLIENT_AUTH", "requested"),
            ("KAFKA_SSL_TRUSTSTORE_LOCATION", "/etc/kafka/secrets/ca.p12"),
            ("KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM", ""),
        ];
        let c = BrokerConfig::load(None, env, &[]).unwrap();
        let t = &c.tls_listeners["SSL"];
        assert_eq!(t.keystore_type, StoreType::Pkcs12);
        assert_eq!(t.keystore_location.as_ref().unwrap().value, "/etc/kafka/secrets/server.p12");
        assert_eq!(t.client_auth, ClientAuth::Requested);
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("ssl.endpoint.identification.algorithm"), "{:?}", c.warnings);
    }

    #[test]
    fn bad_tls_settings_are_errors() {
        let e = config(&[]).unwrap_err();
        assert!(e.contains("has no keystore") && e.contains("listener.name.ssl."), "{e}");
        let e = config(&[("ssl.keystore.location", "/k"), ("ssl.keystore.type", "BKS")]).unwrap_err();
        assert!(e.contains("expected PEM, PKCS12 or JKS"), "{e}");
        let e = config(&[("ssl.keystore.location", "/k"), ("ssl.client.auth", "always")]).unwrap_err();
        assert!(e.contains("none, requested or required"), "{e}");
        let e = config(&[("ssl.keystore.location", "/k"), ("ssl.client.auth", "required")]).unwrap_err();
        assert!(e.contains("no truststore"), "{e}");
        let e = config(&[("ssl.keystore.location", "/k"), ("ssl.enabled.protocols", "TLSv1.1")]).unwrap_err();
        assert!(e.contains("enables no TLS version"), "{e}");
        let e = config(&[("ssl.keystore.location", "/k"), ("ssl.enabled.protocols", "QUIC")]).unwrap_err();
        assert!(e.contains("TLSv1.2 and/or TLSv1.3"), "{e}");
        let e = config(&[("ssl.keystore.key", "-----BEGIN PRIVATE KEY-----")]).unwrap_err();
        assert!(e.contains("ssl.keystore.type=PEM") && e.contains("set both"), "{e}");
        let e = config(&[("ssl.keystore.location", "/k"), ("ssl.principal.mapping.rules", "RULE:broken")]).unwrap_err();
        assert!(e.contains("ssl.principal.mapping.rules"), "{e}");
        let e = config(&[("ssl.keystore.location", "/k"), ("ssl.keystore.flavour", "x")]).unwrap_err();
        assert!(e.contains("ssl.keystore.flavour"), "{e}");
    }

    #[test]
    fn keys_of_other_listeners_are_warned_about() {
        let c = config(&[("ssl.keystore.location", "/k"), ("listener.name.plaintext.ssl.keystore.location", "/x")]).unwrap();
        assert!(c.warnings.iter().any(|w| w.contains("'plaintext' is not an SSL or SASL_SSL listener")), "{:?}", c.warnings);
        assert!(is_tls_key("ssl.keystore.location") && is_tls_key("listener.name.x.ssl.cipher.suites"));
        assert!(!is_tls_key("ssl.bogus") && !is_tls_key("listener.name.x.sasl.enabled.mechanisms"));
    }
}
