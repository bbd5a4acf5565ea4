//! TLS for the SSL and SASL_SSL listeners: the rustls server
//! configuration a listener's `ssl.*` settings describe
//! (`config::tls::ListenerTlsConfig`), with the key and trust stores read
//! the way Kafka reads them (PEM files or inline PEM, PKCS#12; JKS refused
//! with the keytool command that converts it), and the principal of a
//! client certificate as Kafka names it: the subject DN in RFC 2253 form
//! (`X500Principal.getName()`), mapped by `ssl.principal.mapping.rules`.
//!
//! The crypto provider is rustls-rustcrypto (pure Rust; see Cargo.toml).
//! Stores are read once, at startup, before the runtime serves anyone.

use std::sync::Arc;

use base64::Engine as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::config::tls::{ClientAuth, ListenerTlsConfig, StoreType, TlsVersion, Value};

/// Largest key store, trust store or PEM value read (a chain of a few
/// certificates is a few KiB; a CA bundle a few hundred).
const MAX_STORE_BYTES: u64 = 16 * 1024 * 1024;

/// The first four bytes of a Java KeyStore (JKS) file.
const JKS_MAGIC: [u8; 4] = [0xFE, 0xED, 0xFE, 0xED];

/// A TLS listener's server side: the acceptor and how a client
/// certificate names its principal.
#[derive(Clone)]
pub struct ServerTls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub mapper: Arc<PrincipalMapper>,
    pub client_auth: ClientAuth,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").field("client_auth", &self.client_auth).finish_non_exhaustive()
    }
}

/// rustls's provider with klamm's crypto.
pub fn provider() -> rustls::crypto::CryptoProvider {
    rustls_rustcrypto::provider()
}

impl ServerTls {
    /// Reads the listener's stores (blocking file reads: call at startup)
    /// and builds its rustls configuration. The error names the setting.
    pub fn load(c: &ListenerTlsConfig) -> Result<ServerTls, String> {
        let l = &c.listener;
        let mut provider = provider();
        if !c.cipher_suites.is_empty() {
            let known: Vec<String> = provider.cipher_suites.iter().map(|s| java_suite_name(s.suite())).collect();
            provider.cipher_suites.retain(|s| c.cipher_suites.iter().any(|n| *n == java_suite_name(s.suite())));
            if provider.cipher_suites.is_empty() {
                return Err(format!(
                    "listener '{l}': none of ssl.cipher.suites ({}) is one klamm supports: {}",
                    c.cipher_suites.join(","),
                    known.join(",")
                ));
            }
            for name in &c.cipher_suites {
                if !known.contains(name) {
                    tracing::warn!(listener = %l, suite = %name, "ssl.cipher.suites: not supported, ignored");
                }
            }
        }
        let provider = Arc::new(provider);
        let versions: Vec<&'static rustls::SupportedProtocolVersion> = c
            .enabled_protocols
            .iter()
            .map(|v| match v {
                TlsVersion::Tls12 => &rustls::version::TLS12,
                TlsVersion::Tls13 => &rustls::version::TLS13,
            })
            .collect();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| format!("listener '{l}': ssl.enabled.protocols / ssl.cipher.suites: {e}"))?;
        let (chain, key) = load_keystore(c)?;
        let builder = match c.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            auth => {
                let roots = load_truststore(c)?;
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
                let verifier = if auth == ClientAuth::Requested { verifier.allow_unauthenticated() } else { verifier };
                let verifier = verifier.build().map_err(|e| format!("listener '{l}': the truststore: {e}"))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|e| format!("listener '{l}': the keystore's key and certificate: {e}"))?;
        let mapper = PrincipalMapper::parse(&c.principal_mapping_rules)
            .map_err(|e| format!("listener '{l}': ssl.principal.mapping.rules: {e}"))?;
        Ok(ServerTls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            mapper: Arc::new(mapper),
            client_auth: c.client_auth,
        })
    }

    /// Kafka's principal of a TLS connection: the mapped subject DN of the
    /// client's certificate, `User:ANONYMOUS` without one.
    pub fn principal(&self, peer_certificates: Option<&[CertificateDer<'_>]>) -> Result<String, String> {
        match peer_certificates.and_then(|c| c.first()) {
            None => Ok("User:ANONYMOUS".to_string()),
            Some(cert) => {
                let dn = subject_dn(cert)?;
                Ok(format!("User:{}", self.mapper.map(&dn)?))
            }
        }
    }
}

/// Java's (IANA's) name of a cipher suite: rustls's, with `TLS13_` as
/// `TLS_`.
fn java_suite_name(s: rustls::CipherSuite) -> String {
    let name = s.as_str().map(str::to_string).unwrap_or_else(|| format!("{s:?}"));
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}

fn read_store(v: &Value, what: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(&v.value).map_err(|e| format!("{} = {}: cannot open the {what}: {e}", v.key, v.value))?;
    let mut data = Vec::new();
    file.take(MAX_STORE_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("{} = {}: cannot read the {what}: {e}", v.key, v.value))?;
    if data.len() as u64 > MAX_STORE_BYTES {
        return Err(format!("{} = {}: the {what} is larger than {MAX_STORE_BYTES} bytes", v.key, v.value));
    }
    Ok(data)
}

fn jks_error(v: &Value, password_key: &str) -> String {
    format!(
        "{} = {}: JKS key stores are not supported; convert it to PKCS12 with \
         `keytool -importkeystore -srcstoretype JKS -srckeystore {} -deststoretype PKCS12 -destkeystore {}.p12` \
         and set {} to the new file and its type to PKCS12 (keep {password_key})",
        v.key,
        v.value,
        v.value,
        v.value.trim_end_matches(".jks"),
        v.key
    )
}

/// What a store file holds, whatever its type says: Kafka's JKS default
/// reads PKCS#12 too (the JDK's dual-format keystore).
fn effective_type(declared: StoreType, data: &[u8], v: &Value, password_key: &str) -> Result<StoreType, String> {
    if data.starts_with(&JKS_MAGIC) {
        return Err(jks_error(v, password_key));
    }
    let looks_pem = std::str::from_utf8(data).is_ok_and(|s| s.contains("-----BEGIN"));
    match declared {
        StoreType::Pem if !looks_pem => Err(format!("{} = {}: not a PEM file (no -----BEGIN line); set the type to PKCS12 if it is one", v.key, v.value)),
        StoreType::Pem => Ok(StoreType::Pem),
        StoreType::Pkcs12 | StoreType::Jks if looks_pem => Ok(StoreType::Pem),
        _ => Ok(StoreType::Pkcs12),
    }
}

fn load_keystore(c: &ListenerTlsConfig) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let key_password = c.key_password.as_ref().map(|v| v.value.as_str());
    if let (Some(chain), Some(key)) = (&c.keystore_certificate_chain, &c.keystore_key) {
        let certs = pem_certificates(&chain.value).map_err(|e| format!("{}: {e}", chain.key))?;
        let key = pem_private_key(&key.value, key_password).map_err(|e| format!("{}: {e}", key.key))?;
        return Ok((certs, key));
    }
    let Some(loc) = &c.keystore_location else {
        return Err(format!("listener '{}': no keystore configured", c.listener));
    };
    let data = read_store(loc, "keystore")?;
    match effective_type(c.keystore_type, &data, loc, "ssl.keystore.password")? {
        StoreType::Pem => {
            let text = String::from_utf8_lossy(&data);
            let certs = pem_certificates(&text).map_err(|e| format!("{} = {}: {e}", loc.key, loc.value))?;
            let key = pem_private_key(&text, key_password).map_err(|e| format!("{} = {}: {e}", loc.key, loc.value))?;
            Ok((certs, key))
        }
        _ => {
            let store_password = c.keystore_password.as_ref().map(|v| v.value.as_str()).unwrap_or("");
            let store = p12_keystore::KeyStore::from_pkcs12(&data, store_password, p12_keystore::Pkcs12ImportPolicy::Relaxed)
                .or_else(|first| match key_password {
                    // A store whose key is sealed with ssl.key.password.
                    Some(kp) if kp != store_password => {
                        p12_keystore::KeyStore::from_pkcs12(&data, kp, p12_keystore::Pkcs12ImportPolicy::Relaxed).map_err(|_| first)
                    }
                    _ => Err(first),
                })
                .map_err(|e| {
                    format!("{} = {}: cannot read the PKCS12 keystore (is ssl.keystore.password right?): {e}", loc.key, loc.value)
                })?;
            let (_, chain) = store
                .private_key_chain()
                .ok_or_else(|| format!("{} = {}: the PKCS12 keystore holds no private key", loc.key, loc.value))?;
            let certs: Vec<CertificateDer<'static>> =
                chain.certs().iter().map(|c| CertificateDer::from(c.as_der().to_vec())).collect();
            if certs.is_empty() {
                return Err(format!("{} = {}: the keystore's private key has no certificate", loc.key, loc.value));
            }
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec()));
            Ok((certs, key))
        }
    }
}

fn load_truststore(c: &ListenerTlsConfig) -> Result<RootCertStore, String> {
    let (certs, source) = if let Some(inline) = &c.truststore_certificates {
        (pem_certificates(&inline.value).map_err(|e| format!("{}: {e}", inline.key))?, inline.key.clone())
    } else if let Some(loc) = &c.truststore_location {
        let data = read_store(loc, "truststore")?;
        let certs = match effective_type(c.truststore_type, &data, loc, "ssl.truststore.password")? {
            StoreType::Pem => pem_certificates(&String::from_utf8_lossy(&data)).map_err(|e| format!("{} = {}: {e}", loc.key, loc.value))?,
            _ => {
                let password = c.truststore_password.as_ref().map(|v| v.value.as_str()).unwrap_or("");
                let store = p12_keystore::KeyStore::from_pkcs12(&data, password, p12_keystore::Pkcs12ImportPolicy::Raw)
                    .map_err(|e| format!("{} = {}: cannot read the PKCS12 truststore (is ssl.truststore.password right?): {e}", loc.key, loc.value))?;
                let mut certs = Vec::new();
                for (_, entry) in store.entries() {
                    match entry {
                        p12_keystore::KeyStoreEntry::Certificate(cert) => certs.push(CertificateDer::from(cert.as_der().to_vec())),
                        p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) => {
                            certs.extend(chain.certs().iter().map(|c| CertificateDer::from(c.as_der().to_vec())))
                        }
                        _ => {}
                    }
                }
                certs
            }
        };
        (certs, format!("{} = {}", loc.key, loc.value))
    } else {
        return Err(format!("listener '{}': ssl.client.auth needs a truststore", c.listener));
    };
    if certs.is_empty() {
        return Err(format!("{source}: the truststore holds no certificate"));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| format!("{source}: a certificate cannot be a trust anchor: {e}"))?;
    }
    Ok(roots)
}

/// The PEM sections of `text` as (label, DER), tolerant as Kafka's parser
/// is of a value written on one line (properties files often fold it).
fn pem_sections(text: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + "-----BEGIN ".len()..];
        let label_end = after.find("-----").ok_or("an unterminated -----BEGIN line")?;
        let label = after[..label_end].trim().to_string();
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let body_end = body_start.find(&end_marker).ok_or_else(|| format!("no {end_marker} line"))?;
        let body: String = body_start[..body_end].chars().filter(|c| !c.is_whitespace()).collect();
        if body.contains(':') {
            return Err(format!("the {label} has PEM headers (an OpenSSL-encrypted key?); use an encrypted PKCS#8 key (openssl pkcs8 -topk8 -v2 aes-256-cbc)"));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| format!("the {label} is not valid base64: {e}"))?;
        out.push((label, der));
        rest = &body_start[body_end + end_marker.len()..];
    }
    Ok(out)
}

fn pem_certificates(text: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = pem_sections(text)?
        .into_iter()
        .filter(|(label, _)| label == "CERTIFICATE")
        .map(|(_, der)| CertificateDer::from(der))
        .collect();
    if certs.is_empty() {
        return Err("no -----BEGIN CERTIFICATE----- section".into());
    }
    Ok(certs)
}

fn pem_private_key(text: &str, password: Option<&str>) -> Result<PrivateKeyDer<'static>, String> {
    for (label, der) in pem_sections(text)? {
        match label.as_str() {
            "PRIVATE KEY" => return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der))),
            "RSA PRIVATE KEY" => return Ok(PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der))),
            "EC PRIVATE KEY" => return Ok(PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der))),
            "ENCRYPTED PRIVATE KEY" => {
                let password = password.ok_or("the key is encrypted: set ssl.key.password")?;
                let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der.as_slice())
                    .map_err(|e| format!("not an encrypted PKCS#8 key: {e}"))?;
                let doc = info.decrypt(password).map_err(|e| format!("cannot decrypt the key (is ssl.key.password right?): {e}"))?;
                return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(doc.as_bytes().to_vec())));
            }
            _ => {}
        }
    }
    Err("no -----BEGIN PRIVATE KEY----- (or ENCRYPTED PRIVATE KEY) section".into())
}

/// A certificate's subject DN as Java's `X500Principal.getName()` writes
/// it (RFC 2253): the RDNs last first, `,` between them, `+` inside a
/// multi-valued one, the RFC 2253 keywords for their attributes and the
/// dotted OID with the `#`-hex DER value for any other.
pub fn subject_dn(cert: &CertificateDer<'_>) -> Result<String, String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| format!("unreadable client certificate: {e}"))?;
    let mut rdns: Vec<String> = Vec::new();
    for rdn in parsed.subject().iter() {
        let avas: Vec<String> = rdn.iter().map(format_ava).collect();
        rdns.push(avas.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

fn format_ava(ava: &x509_parser::x509::AttributeTypeAndValue<'_>) -> String {
    let oid = ava.attr_type().to_id_string();
    let keyword = match oid.as_str() {
        "2.5.4.3" => Some("CN"),
        "2.5.4.6" => Some("C"),
        "2.5.4.7" => Some("L"),
        "2.5.4.8" => Some("ST"),
        "2.5.4.10" => Some("O"),
        "2.5.4.11" => Some("OU"),
        "2.5.4.9" => Some("STREET"),
        "0.9.2342.19200300.100.1.25" => Some("DC"),
        "0.9.2342.19200300.100.1.1" => Some("UID"),
        _ => None,
    };
    let value = ava.attr_value();
    let text = match value.tag() {
        asn1_tag if asn1_tag == x509_parser::der_parser::asn1_rs::Tag::BmpString => {
            let units: Vec<u16> = value.as_bytes().chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])).collect();
            String::from_utf16(&units).ok()
        }
        _ => ava.as_str().ok().map(str::to_string).or_else(|| {
            use x509_parser::der_parser::asn1_rs::Tag;
            matches!(value.tag(), Tag::T61String | Tag::UniversalString | Tag::VisibleString)
                .then(|| String::from_utf8_lossy(value.as_bytes()).into_owned())
        }),
    };
    match (keyword, text) {
        (Some(k), Some(t)) => format!("{k}={}", escape_rfc2253(&t)),
        (k, _) => {
            let data = value.as_bytes();
            let mut der = vec![value.tag().0 as u8];
            if data.len() < 128 {
                der.push(data.len() as u8);
            } else {
                let len = (data.len() as u32).to_be_bytes();
                let skip = len.iter().take_while(|b| **b == 0).count();
                der.push(0x80 | (4 - skip) as u8);
                der.extend_from_slice(&len[skip..]);
            }
            der.extend_from_slice(data);
            let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
            format!("{}=#{hex}", k.map(str::to_string).unwrap_or(oid))
        }
    }
}

/// RFC 2253 escaping as Java applies it: `,+"\<>;` anywhere, `#` first,
/// a space first or last.
fn escape_rfc2253(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let n = s.chars().count();
    for (i, c) in s.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == n && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `ssl.principal.mapping.rules`: Kafka's `SslPrincipalMapper`. Rules are
/// tried in order; `DEFAULT` keeps the DN, `RULE:pattern/replacement/[LU]`
/// applies to a DN the pattern matches whole. No matching rule fails the
/// connection, as in Kafka.
#[derive(Debug)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

#[derive(Debug)]
enum Rule {
    Default,
    Replace { pattern: regex::Regex, replacement: String, case: Option<char> },
}

/// Most rules one mapping may hold.
const MAX_RULES: usize = 64;

impl PrincipalMapper {
    pub fn parse(rules: &str) -> Result<PrincipalMapper, String> {
        let mut out = Vec::new();
        let mut rest = rules.trim();
        while !rest.is_empty() {
            if out.len() == MAX_RULES {
                return Err(format!("more than {MAX_RULES} rules"));
            }
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                out.push(Rule::Default);
                rest = after;
            } else if let Some(body) = rest.strip_prefix("RULE:") {
                let (pattern, after) = split_unescaped_slash(body).ok_or_else(|| format!("'{rest}' is not RULE:pattern/replacement/[LU]"))?;
                let (replacement, after) = split_unescaped_slash(after).ok_or_else(|| format!("'{rest}' is not RULE:pattern/replacement/[LU]"))?;
                let (case, after) = match after.chars().next() {
                    Some(c @ ('L' | 'U')) => (Some(c), &after[1..]),
                    _ => (None, after),
                };
                let pattern = regex::Regex::new(&format!("^(?:{})$", pattern.replace("\\/", "/")))
                    .map_err(|e| format!("the pattern of '{rest}': {e}"))?;
                // Java's $1 is regex's ${1} (regex would read "$1a" as a name).
                let replacement = java_replacement(&replacement.replace("\\/", "/"));
                out.push(Rule::Replace { pattern, replacement, case });
                rest = after;
            } else {
                return Err(format!("'{rest}' is neither DEFAULT nor RULE:pattern/replacement/[LU]"));
            }
            rest = rest.trim_start();
            match rest.strip_prefix(',') {
                Some(r) => rest = r.trim_start(),
                None if rest.is_empty() => {}
                None => return Err(format!("expected ',' before '{rest}'")),
            }
        }
        if out.is_empty() {
            out.push(Rule::Default);
        }
        Ok(PrincipalMapper { rules: out })
    }

    pub fn map(&self, dn: &str) -> Result<String, String> {
        for rule in &self.rules {
            match rule {
                Rule::Default => return Ok(dn.to_string()),
                Rule::Replace { pattern, replacement, case } => {
                    if pattern.is_match(dn) {
                        let mapped = pattern.replace_all(dn, replacement.as_str()).into_owned();
                        return Ok(match case {
                            Some('L') => mapped.to_lowercase(),
                            Some('U') => mapped.to_uppercase(),
                            _ => mapped,
                        });
                    }
                }
            }
        }
        Err(format!("no ssl.principal.mapping.rules rule matches '{dn}'"))
    }
}

fn split_unescaped_slash(s: &str) -> Option<(&str, &str)> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'/' => return Some((&s[..i], &s[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

fn java_replacement(r: &str) -> String {
    let mut out = String::with_capacity(r.len() + 8);
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    if n == '$' {
                        out.push_str("$$");
                    } else {
                        out.push(n);
                    }
                }
            }
            '$' if chars.peek().is_some_and(|d| d.is_ascii_digit()) => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                out.push_str(&format!("${{{digits}}}"));
            }
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rule_keeps_the_dn() {
        let m = PrincipalMapper::parse("DEFAULT").unwrap();
        assert_eq!(m.map("CN=client,OU=Dev,O=Klamm,C=DE").unwrap(), "CN=client,OU=Dev,O=Klamm,C=DE");
        let m = PrincipalMapper::parse("").unwrap();
        assert_eq!(m.map("CN=x").unwrap(), "CN=x");
    }

    #[test]
    fn kafkas_rule_examples() {
        // From Kafka's documentation of ssl.principal.mapping.rules.
        let m = PrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT",
        )
        .unwrap();
        assert_eq!(m.map("CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown").unwrap(), "serviceuser");
        assert_eq!(m.map("CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown").unwrap(), "adminuser@admin");
        assert_eq!(m.map("OU=X,cn=Mixed.Case").unwrap(), "mixed.case");
        let m = PrincipalMapper::parse("RULE:^CN=(.*)$/$1/U").unwrap();
        assert_eq!(m.map("CN=abc").unwrap(), "ABC");
        assert!(m.map("O=none").is_err(), "no rule matches: an error, as in Kafka");
        let m = PrincipalMapper::parse("RULE:^CN=(.*)\\/(.*)$/$2 \\/ $1/").unwrap();
        assert_eq!(m.map("CN=a/b").unwrap(), "b / a");
    }

    #[test]
    fn bad_rules_are_errors() {
        for bad in ["RULE:", "RULE:abc", "RULE:(/x/", "NOPE", "DEFAULT DEFAULT"] {
            assert!(PrincipalMapper::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rfc2253_escaping() {
        assert_eq!(escape_rfc2253("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_rfc2253("#x "), "\\#x\\ ");
        assert_eq!(escape_rfc2253("plain"), "plain");
    }

    #[test]
    fn pem_values_may_be_on_one_line() {
        let one_line = "-----BEGIN CERTIFICATE----- AAEC AwQ= -----END CERTIFICATE----- -----BEGIN CERTIFICATE-----\nBQY=\n-----END CERTIFICATE-----";
        let certs = pem_certificates(one_line).unwrap();
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[0].as_ref(), &[0, 1, 2, 3, 4]);
        assert!(pem_certificates("nothing here").is_err());
        assert!(pem_certificates("-----BEGIN CERTIFICATE----- AAEC").is_err());
        assert!(pem_private_key("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAEC\n-----END ENCRYPTED PRIVATE KEY-----", None)
            .unwrap_err()
            .contains("ssl.key.password"));
    }

    #[test]
    fn ssl_key_password_decrypts_a_pbes2_pkcs8_key() {
        // An Ed25519 PKCS#8 structure around made-up key bytes (a test
        // vector, not a key anyone uses).
        let mut plain = hex_bytes("302e020100300506032b657004220420");
        plain.extend_from_slice(&[7u8; 32]);
        let info = pkcs8::PrivateKeyInfoRef::try_from(plain.as_slice()).unwrap();
        let params = pkcs8::pkcs5::pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(2048, &[1u8; 16], [2u8; 16]).unwrap();
        let encrypted = info.encrypt_with_params(params, "key-secret").unwrap();
        let pem = format!(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\n{}\n-----END ENCRYPTED PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(encrypted.as_bytes())
        );
        let key = pem_private_key(&pem, Some("key-secret")).unwrap();
        assert_eq!(key.secret_der(), plain.as_slice());
        assert!(provider().key_provider.load_private_key(key).is_ok(), "rustls takes the decrypted key");
        let e = pem_private_key(&pem, Some("wrong")).unwrap_err();
        assert!(e.contains("ssl.key.password"), "{e}");
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn a_jks_file_names_the_conversion() {
        let v = Value { key: "ssl.keystore.location".into(), value: "/etc/kafka/server.keystore.jks".into() };
        let e = effective_type(StoreType::Jks, &[0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2], &v, "ssl.keystore.password").unwrap_err();
        assert!(e.contains("keytool -importkeystore -srcstoretype JKS"), "{e}");
        assert!(e.contains("-deststoretype PKCS12"), "{e}");
        assert_eq!(effective_type(StoreType::Jks, &[0x30, 0x82], &v, "p").unwrap(), StoreType::Pkcs12);
        assert_eq!(effective_type(StoreType::Pkcs12, b"-----BEGIN CERTIFICATE-----", &v, "p").unwrap(), StoreType::Pem);
        assert!(effective_type(StoreType::Pem, &[0x30, 0x82], &v, "p").is_err());
    }

    #[test]
    fn java_suite_names() {
        let names: Vec<String> = provider().cipher_suites.iter().map(|s| java_suite_name(s.suite())).collect();
        assert!(names.contains(&"TLS_AES_128_GCM_SHA256".to_string()), "{names:?}");
        assert!(names.contains(&"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".to_string()), "{names:?}");
    }
}
