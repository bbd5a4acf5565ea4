//! Listeners: parsing `NAME://host:port` endpoint lists (`listeners`,
//! `advertised.listeners`), `host:port` lists, the
//! `listener.security.protocol.map`, and the resolved [`Listener`] the
//! server binds and advertises.

use std::collections::BTreeMap;
use std::fmt;

use super::error::ConfigError;
use super::MAX_LIST_ITEMS;

/// The host advertised for listeners bound to all interfaces.
pub const WILDCARD_ADVERTISED_HOST: &str = "localhost";

/// Kafka's security protocols. klamm serves [`SecurityProtocol::Plaintext`]
/// only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    /// Parses a protocol name, case-insensitively (as Kafka's `forName`).
    pub fn parse(name: &str) -> Option<SecurityProtocol> {
        match name.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    /// Kafka's name, e.g. `SASL_SSL`.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Kafka's numeric id (as in the metadata records).
    pub fn id(self) -> i16 {
        match self {
            SecurityProtocol::Plaintext => 0,
            SecurityProtocol::Ssl => 1,
            SecurityProtocol::SaslPlaintext => 2,
            SecurityProtocol::SaslSsl => 3,
        }
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One parsed `NAME://host:port` entry. The name is upper-cased (Kafka
/// normalises listener names); an IPv6 host is stored without brackets; an
/// empty host means "all interfaces".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.name, host_port(&self.host, self.port))
    }
}

/// A listener klamm binds, with the address it advertises to clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    /// Listener name, upper-case (e.g. `PLAINTEXT`, `CLIENT`).
    pub name: String,
    /// Configured host; empty means all interfaces. IPv6 without brackets.
    pub host: String,
    /// Configured port; 0 asks the OS for an ephemeral port.
    pub port: u16,
    pub security_protocol: SecurityProtocol,
    /// Host given to clients in metadata responses.
    pub advertised_host: String,
    /// Port given to clients; 0 when the listener port is ephemeral and not
    /// advertised explicitly (the server substitutes the bound port).
    pub advertised_port: u16,
}

impl Listener {
    /// The host to bind: the configured one, or `0.0.0.0` for "all".
    pub fn bind_host(&self) -> &str {
        if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        }
    }

    /// `host:port` to bind, IPv6 hosts in brackets (parseable as a
    /// `SocketAddr` when the host is an IP address).
    pub fn bind_address(&self) -> String {
        host_port(self.bind_host(), self.port)
    }

    /// `host:port` advertised to clients.
    pub fn advertised_address(&self) -> String {
        host_port(&self.advertised_host, self.advertised_port)
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.name, host_port(&self.host, self.port))
    }
}

/// `host:port`, bracketing IPv6 hosts.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Whether `host` means "all interfaces" (and so cannot be advertised).
pub fn is_wildcard_host(host: &str) -> bool {
    matches!(host, "" | "0.0.0.0" | "::" | "0:0:0:0:0:0:0:0")
}

/// Whether `host` is an IPv4 / IPv6 literal.
fn ip_kind(host: &str) -> Option<bool> {
    host.parse::<std::net::IpAddr>().ok().map(|ip| ip.is_ipv4())
}

/// Parses a comma-separated `NAME://host:port` list (`config` names the
/// key in errors). An empty value is the empty list.
pub fn parse_endpoints(config: &str, value: &str) -> Result<Vec<Endpoint>, ConfigError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let entries: Vec<&str> = value.split(',').map(str::trim).collect();
    if entries.len() > MAX_LIST_ITEMS {
        return Err(ConfigError::invalid_value(
            config,
            value,
            format!("lists are limited to {MAX_LIST_ITEMS} items"),
        ));
    }
    entries
        .into_iter()
        .map(|e| parse_endpoint(config, e))
        .collect()
}

fn parse_endpoint(config: &str, entry: &str) -> Result<Endpoint, ConfigError> {
    let bad = |why: &str| {
        ConfigError::invalid_value(config, entry, format!("expected NAME://host:port ({why})"))
    };
    let (name, rest) = entry
        .split_once("://")
        .ok_or_else(|| bad("missing '://'"))?;
    let name = name.trim();
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || c == ':' || c == '/')
    {
        return Err(bad("the listener name must be a non-empty word"));
    }
    let (host, port) = split_host_port(rest).map_err(|why| bad(&why))?;
    Ok(Endpoint {
        name: name.to_ascii_uppercase(),
        host,
        port,
    })
}

/// Splits `host:port` / `[v6]:port`; the host may be empty.
pub fn split_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(inner) = s.strip_prefix('[') {
        let (host, after) = inner.split_once(']').ok_or("unclosed '['")?;
        let port = after.strip_prefix(':').ok_or("missing ':port' after ']'")?;
        if host.is_empty() || !host.contains(':') {
            return Err("brackets are for IPv6 addresses".into());
        }
        (host, port)
    } else {
        let (host, port) = s.rsplit_once(':').ok_or("missing ':port'")?;
        if host.contains(':') {
            return Err("IPv6 addresses must be in brackets".into());
        }
        (host, port)
    };
    let valid_host = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '%' | ':'));
    if !valid_host {
        return Err(format!("invalid host '{host}'"));
    }
    let port: u16 = port
        .parse::<u32>()
        .ok()
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| format!("the port must be a number between 0 and 65535, not '{port}'"))?;
    Ok((host.to_string(), port))
}

/// Parses `listener.security.protocol.map` (`NAME:PROTOCOL,...`).
pub fn parse_protocol_map(
    config: &str,
    value: &str,
) -> Result<BTreeMap<String, SecurityProtocol>, ConfigError> {
    let mut map = BTreeMap::new();
    let value = value.trim();
    if value.is_empty() {
        return Ok(map);
    }
    for entry in value.split(',').map(str::trim) {
        if map.len() >= MAX_LIST_ITEMS {
            return Err(ConfigError::invalid_value(
                config,
                value,
                format!("maps are limited to {MAX_LIST_ITEMS} entries"),
            ));
        }
        let (name, proto) = entry.split_once(':').ok_or_else(|| {
            ConfigError::invalid_value(config, entry, "expected NAME:PROTOCOL entries")
        })?;
        let name = name.trim().to_ascii_uppercase();
        if name.is_empty() {
            return Err(ConfigError::invalid_value(
                config,
                entry,
                "expected NAME:PROTOCOL entries",
            ));
        }
        let proto = SecurityProtocol::parse(proto).ok_or_else(|| {
            ConfigError::invalid_value(
                config,
                entry,
                "expected a security protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
            )
        })?;
        if map.insert(name.clone(), proto).is_some() {
            return Err(ConfigError::invalid(
                config,
                format!("listener name '{name}' appears more than once"),
            ));
        }
    }
    Ok(map)
}

/// Checks that listener names are unique and that non-zero ports are only
/// shared by one IPv4 and one IPv6 listener (Kafka's rule).
pub fn check_distinct(config: &str, endpoints: &[Endpoint]) -> Result<(), ConfigError> {
    for (i, a) in endpoints.iter().enumerate() {
        for b in &endpoints[i + 1..] {
            if a.name == b.name {
                return Err(ConfigError::invalid(
                    config,
                    format!("listener name '{}' is used more than once", a.name),
                ));
            }
            if a.port != 0 && a.port == b.port {
                let v4_v6_pair = matches!(
                    (ip_kind(&a.host), ip_kind(&b.host)),
                    (Some(x), Some(y)) if x != y
                );
                let shared = endpoints.iter().filter(|e| e.port == a.port).count();
                if !v4_v6_pair || shared > 2 {
                    return Err(ConfigError::invalid(
                        config,
                        format!(
                            "port {} is used by listeners '{}' and '{}'; ports must differ unless \
                             one listener is IPv4 and the other IPv6",
                            a.port, a.name, b.name
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(name: &str, host: &str, port: u16) -> Endpoint {
        Endpoint {
            name: name.into(),
            host: host.into(),
            port,
        }
    }

    #[test]
    fn parses_endpoints() {
        let got = parse_endpoints(
            "listeners",
            "PLAINTEXT://:9092, controller://localhost:9093,V6://[::1]:0,ALL://0.0.0.0:65535",
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                ep("PLAINTEXT", "", 9092),
                ep("CONTROLLER", "localhost", 9093),
                ep("V6", "::1", 0),
                ep("ALL", "0.0.0.0", 65535),
            ]
        );
        assert_eq!(got[2].to_string(), "V6://[::1]:0");
        assert!(parse_endpoints("listeners", "  ").unwrap().is_empty());
    }

    #[test]
    fn rejects_bad_endpoints() {
        for bad in [
            "localhost:9092",
            "://:9092",
            "PLAINTEXT://:65536",
            "PLAINTEXT://:-1",
            "PLAINTEXT://host",
            "PLAINTEXT://::1:9092",
            "PLAINTEXT://[::1:9092",
            "PLAINTEXT://ho st:9092",
            "PLAINTEXT://:9092,",
        ] {
            let e = parse_endpoints("listeners", bad).unwrap_err().to_string();
            assert!(e.contains("for configuration 'listeners'"), "{bad}: {e}");
        }
        let e = parse_endpoints("listeners", "PLAINTEXT://:99999")
            .unwrap_err()
            .to_string();
        assert!(e.contains("between 0 and 65535"), "{e}");
    }

    #[test]
    fn distinct_names_and_ports() {
        assert!(check_distinct("l", &[ep("A", "", 1), ep("B", "", 2)]).is_ok());
        assert!(check_distinct("l", &[ep("A", "", 0), ep("B", "", 0)]).is_ok());
        let e = check_distinct("l", &[ep("A", "", 1), ep("A", "", 2)]).unwrap_err();
        assert!(e.to_string().contains("'A' is used more than once"), "{e}");
        let e = check_distinct("l", &[ep("A", "", 1), ep("B", "h", 1)]).unwrap_err();
        assert!(e.to_string().contains("port 1"), "{e}");
        assert!(check_distinct("l", &[ep("A", "127.0.0.1", 1), ep("B", "::1", 1)]).is_ok());
    }

    #[test]
    fn protocol_map() {
        let m = parse_protocol_map("m", "CONTROLLER:PLAINTEXT, plaintext:plaintext,S:SASL_SSL")
            .unwrap();
        assert_eq!(m.get("CONTROLLER"), Some(&SecurityProtocol::Plaintext));
        assert_eq!(m.get("PLAINTEXT"), Some(&SecurityProtocol::Plaintext));
        assert_eq!(m.get("S"), Some(&SecurityProtocol::SaslSsl));
        assert!(parse_protocol_map("m", "A:TLS").is_err());
        assert!(parse_protocol_map("m", "A").is_err());
        assert!(parse_protocol_map("m", "A:SSL,a:PLAINTEXT").is_err());
    }

    #[test]
    fn listener_addresses() {
        let l = Listener {
            name: "PLAINTEXT".into(),
            host: String::new(),
            port: 9092,
            security_protocol: SecurityProtocol::Plaintext,
            advertised_host: "localhost".into(),
            advertised_port: 9092,
        };
        assert_eq!(l.bind_address(), "0.0.0.0:9092");
        assert_eq!(l.advertised_address(), "localhost:9092");
        let v6 = Listener {
            host: "::1".into(),
            ..l.clone()
        };
        assert_eq!(v6.bind_address(), "[::1]:9092");
        assert!(v6.bind_address().parse::<std::net::SocketAddr>().is_ok());
        assert!(is_wildcard_host("") && is_wildcard_host("0.0.0.0") && is_wildcard_host("::"));
        assert!(!is_wildcard_host("localhost"));
    }
}
