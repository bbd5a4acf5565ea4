//! Authentication, as Apache Kafka configures it: the JAAS-style
//! `sasl.jaas.config` strings (`jaas`), the SASL mechanisms PLAIN and
//! SCRAM-SHA-256/512 (`sasl`), and the SCRAM credentials managed with
//! AlterUserScramCredentials and kept under the data directory
//! (`credentials`). The connection-side state machine (which requests a
//! SASL listener answers before authentication) is `sasl::Session`.
//! Authorization (Kafka's StandardAuthorizer, ACL matching) is
//! `authorizer`.
//! TLS for the SSL and SASL_SSL listeners (rustls, the stores, the
//! certificate principal) is `tls`.

pub mod authorizer;
pub mod credentials;
pub mod jaas;
pub mod sasl;
pub mod tls;
