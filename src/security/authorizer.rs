//! Kafka's `StandardAuthorizer`: ACL bindings (resource pattern +
//! principal, host, operation, allow/deny), matched as
//! `StandardAuthorizerData` does. `super.users` may do everything; a DENY
//! that matches wins over any ALLOW; an ALLOW of READ, WRITE, DELETE or
//! ALTER also allows DESCRIBE, one of ALTER_CONFIGS also DESCRIBE_CONFIGS
//! (a DENY covers only its own operation, or ALL); a resource that no ACL
//! names at all (for any principal) is open to everyone only with
//! `allow.everyone.if.no.acl.found`. Principals match literally or through
//! `User:*`, hosts literally (the client's IP address) or through `*`;
//! resources literally, through the LITERAL `*`, or by a PREFIXED pattern.
//!
//! The bindings live in the controller's `MetadataImage` (an [`AclIndex`],
//! durable as metadata-log records); this module only knows how to match
//! them. Bounded: [`MAX_ACLS`] bindings, [`MAX_ACL_FIELD_BYTES`] per name.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

/// The one authorizer class klamm implements.
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
/// Kafka's principal of an unauthenticated (PLAINTEXT) connection.
pub const ANONYMOUS: &str = "User:ANONYMOUS";
/// The one name of the CLUSTER resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// The wildcard of resource names and hosts.
pub const WILDCARD: &str = "*";
/// The wildcard principal.
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// Most ACL bindings the broker keeps.
pub const MAX_ACLS: usize = 100_000;
/// Longest resource name, principal or host of a binding.
pub const MAX_ACL_FIELD_BYTES: usize = 4096;

/// `authorizer.class.name`, `super.users`, `allow.everyone.if.no.acl.found`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizerConfig {
    pub super_users: Vec<String>,
    pub allow_everyone_if_no_acl_found: bool,
}

impl AuthorizerConfig {
    /// `None` without an authorizer (an empty class name).
    pub fn parse(
        class_name: &str,
        super_users: &str,
        allow_everyone_if_no_acl_found: bool,
    ) -> Result<Option<AuthorizerConfig>, crate::config::ConfigError> {
        match class_name.trim() {
            "" => return Ok(None),
            STANDARD_AUTHORIZER => {}
            // Kafka 4 removed the ZooKeeper-based AclAuthorizer.
            other => {
                return Err(crate::config::ConfigError::invalid_value(
                    "authorizer.class.name",
                    other,
                    format!("klamm implements {STANDARD_AUTHORIZER} only (or empty for no authorizer)"),
                ))
            }
        }
        let mut users = Vec::new();
        for u in super_users.split(';').map(str::trim).filter(|u| !u.is_empty()) {
            if parse_principal(u).is_none() {
                return Err(crate::config::ConfigError::invalid_value(
                    "super.users",
                    u,
                    "expected principals as Type:name separated by ';' (User:admin;User:ops)",
                ));
            }
            users.push(u.to_string());
        }
        Ok(Some(AuthorizerConfig { super_users: users, allow_everyone_if_no_acl_found }))
    }
}

/// The broker's authorizer: the configuration the bindings are read with.
#[derive(Debug)]
pub struct Authorizer {
    super_users: std::collections::HashSet<String>,
    allow_everyone_if_no_acl_found: bool,
}

impl Authorizer {
    pub fn new(config: &AuthorizerConfig) -> Authorizer {
        Authorizer {
            super_users: config.super_users.iter().cloned().collect(),
            allow_everyone_if_no_acl_found: config.allow_everyone_if_no_acl_found,
        }
    }

    pub fn is_super_user(&self, principal: &str) -> bool {
        self.super_users.contains(principal)
    }

    /// Whether `who` may do `op` on the resource.
    pub fn authorize(&self, acls: &AclIndex, who: &Requester<'_>, op: AclOperation, rt: ResourceType, name: &str) -> bool {
        self.is_super_user(who.principal) || acls.authorize(who, op, rt, name, self.allow_everyone_if_no_acl_found)
    }

    /// Whether `who` may do `op` on some resource of type `rt`.
    pub fn authorize_by_resource_type(&self, acls: &AclIndex, who: &Requester<'_>, op: AclOperation, rt: ResourceType) -> bool {
        self.is_super_user(who.principal)
            || acls.authorize_by_resource_type(who, op, rt, self.allow_everyone_if_no_acl_found)
    }
}

/// `Type:name` split at the first colon (Kafka's `SecurityUtils.parseKafkaPrincipal`).
pub fn parse_principal(p: &str) -> Option<(&str, &str)> {
    p.split_once(':').filter(|(t, _)| !t.is_empty())
}

macro_rules! kafka_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $code:literal, $text:literal;)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($variant),* }

        impl $name {
            /// The wire code's value (`None`: Kafka's UNKNOWN or a code
            /// this version does not know).
            pub fn from_code(code: i8) -> Option<$name> {
                match code { $($code => Some($name::$variant),)* _ => None }
            }
            pub fn code(self) -> i8 {
                match self { $($name::$variant => $code),* }
            }
            /// Kafka's `toString`, as `kafka-acls` prints it.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }
    };
}

kafka_enum!(
    /// `org.apache.kafka.common.resource.ResourceType`.
    ResourceType {
        Any = 1, "ANY"; Topic = 2, "TOPIC"; Group = 3, "GROUP"; Cluster = 4, "CLUSTER";
        TransactionalId = 5, "TRANSACTIONAL_ID"; DelegationToken = 6, "DELEGATION_TOKEN"; User = 7, "USER";
    }
);
kafka_enum!(
    /// `org.apache.kafka.common.resource.PatternType`.
    PatternType { Any = 1, "ANY"; Match = 2, "MATCH"; Literal = 3, "LITERAL"; Prefixed = 4, "PREFIXED"; }
);
kafka_enum!(
    /// `org.apache.kafka.common.acl.AclOperation`.
    AclOperation {
        Any = 1, "ANY"; All = 2, "ALL"; Read = 3, "READ"; Write = 4, "WRITE"; Create = 5, "CREATE";
        Delete = 6, "DELETE"; Alter = 7, "ALTER"; Describe = 8, "DESCRIBE"; ClusterAction = 9, "CLUSTER_ACTION";
        DescribeConfigs = 10, "DESCRIBE_CONFIGS"; AlterConfigs = 11, "ALTER_CONFIGS";
        IdempotentWrite = 12, "IDEMPOTENT_WRITE"; CreateTokens = 13, "CREATE_TOKENS";
        DescribeTokens = 14, "DESCRIBE_TOKENS"; TwoPhaseCommit = 15, "TWO_PHASE_COMMIT";
    }
);
kafka_enum!(
    /// `org.apache.kafka.common.acl.AclPermissionType`.
    Permission { Any = 1, "ANY"; Deny = 2, "DENY"; Allow = 3, "ALLOW"; }
);

/// The operations Kafka supports on a resource type
/// (`AclEntry.supportedOperations`): what an `*_authorized_operations`
/// field may report.
pub fn supported_operations(rt: ResourceType) -> &'static [AclOperation] {
    use AclOperation::*;
    match rt {
        ResourceType::Topic => &[Read, Write, Create, Describe, Delete, Alter, DescribeConfigs, AlterConfigs],
        ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
        ResourceType::Cluster => &[Create, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, Alter, Describe],
        ResourceType::TransactionalId => &[Describe, Write],
        ResourceType::DelegationToken => &[Describe],
        ResourceType::User => &[CreateTokens, DescribeTokens],
        ResourceType::Any => &[],
    }
}

/// One ACL: a resource pattern and an access-control entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    pub principal: String,
    pub host: String,
    pub operation: AclOperation,
    pub permission: Permission,
}

impl AclBinding {
    /// Kafka's checks of a new binding (`AclControlManager.validateNewAcl`
    /// and the broker's `AclApis`): the message of INVALID_REQUEST.
    pub fn validate(&self) -> Result<(), String> {
        if matches!(self.resource_type, ResourceType::Any) {
            return Err("Invalid resourceType ANY".into());
        }
        if !matches!(self.pattern_type, PatternType::Literal | PatternType::Prefixed) {
            return Err(format!("Invalid patternType {}", self.pattern_type.name()));
        }
        if matches!(self.operation, AclOperation::Any) {
            return Err("Invalid operation ANY".into());
        }
        if matches!(self.permission, Permission::Any) {
            return Err("Invalid permissionType ANY".into());
        }
        if self.resource_name.is_empty() {
            return Err("Invalid empty resource name specified".into());
        }
        if self.resource_type == ResourceType::Cluster && self.resource_name != CLUSTER_NAME {
            return Err(format!("The only valid name for the CLUSTER resource is {CLUSTER_NAME}"));
        }
        if parse_principal(&self.principal).is_none() {
            return Err(format!(
                "Could not parse principal from `{}` (no colon is present separating the principal type from the principal name)",
                self.principal
            ));
        }
        for (what, v) in [("resource name", &self.resource_name), ("principal", &self.principal), ("host", &self.host)] {
            if v.len() > MAX_ACL_FIELD_BYTES {
                return Err(format!("The {what} is longer than {MAX_ACL_FIELD_BYTES} bytes"));
            }
        }
        Ok(())
    }
}

/// A DescribeAcls / DeleteAcls filter (Kafka's `AclBindingFilter`):
/// `None` strings and the ANY values match everything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: ResourceType,
    pub resource_name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: AclOperation,
    pub permission: Permission,
}

impl AclFilter {
    /// From the wire codes; an UNKNOWN (or unknown) code is INVALID_REQUEST.
    #[allow(clippy::too_many_arguments)]
    pub fn from_wire(
        resource_type: i8,
        resource_name: Option<String>,
        pattern_type: i8,
        principal: Option<String>,
        host: Option<String>,
        operation: i8,
        permission: i8,
    ) -> Result<AclFilter, String> {
        let (Some(rt), Some(pt)) = (ResourceType::from_code(resource_type), PatternType::from_code(pattern_type)) else {
            return Err("Unknown patternFilter.".into());
        };
        let (Some(op), Some(perm)) = (AclOperation::from_code(operation), Permission::from_code(permission)) else {
            return Err("Unknown entryFilter.".into());
        };
        Ok(AclFilter { resource_type: rt, resource_name, pattern_type: pt, principal, host, operation: op, permission: perm })
    }

    /// Kafka's `AclBindingFilter.matches`.
    pub fn matches(&self, b: &AclBinding) -> bool {
        self.matches_pattern(b)
            && self.principal.as_ref().is_none_or(|p| *p == b.principal)
            && self.host.as_ref().is_none_or(|h| *h == b.host)
            && (self.operation == AclOperation::Any || self.operation == b.operation)
            && (self.permission == Permission::Any || self.permission == b.permission)
    }

    /// Kafka's `ResourcePatternFilter.matches`: MATCH takes the bindings
    /// that would apply to the named resource (literal, `*`, prefixes).
    fn matches_pattern(&self, b: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != b.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, PatternType::Any | PatternType::Match) && self.pattern_type != b.pattern_type {
            return false;
        }
        let Some(name) = &self.resource_name else { return true };
        if self.pattern_type == PatternType::Any || self.pattern_type == b.pattern_type {
            return *name == b.resource_name;
        }
        match b.pattern_type {
            PatternType::Literal => *name == b.resource_name || b.resource_name == WILDCARD,
            PatternType::Prefixed => name.starts_with(b.resource_name.as_str()),
            _ => false,
        }
    }
}

/// The entry part of a binding, kept per resource pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    principal: String,
    host: String,
    operation: AclOperation,
    permission: Permission,
}

/// What the bindings of one resource say about one action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct Found {
    /// Some binding names the resource (for anyone).
    any: bool,
    allow: bool,
    deny: bool,
}

/// All ACL bindings, indexed for the authorizer's lookups: per resource
/// type and pattern type, by resource name (a prefix lookup tries each
/// prefix of the name, so no scan of unrelated bindings).
#[derive(Clone, Debug, Default)]
pub struct AclIndex {
    all: BTreeSet<AclBinding>,
    /// `[resource type code - 1][literal: 0, prefixed: 1]`.
    by_name: [[HashMap<String, Vec<Entry>>; 2]; 7],
}

/// Who asks, from where.
#[derive(Clone, Copy, Debug)]
pub struct Requester<'a> {
    pub principal: &'a str,
    pub host: IpAddr,
}

fn slot(rt: ResourceType, pt: PatternType) -> Option<(usize, usize)> {
    let p = match pt {
        PatternType::Literal => 0,
        PatternType::Prefixed => 1,
        _ => return None,
    };
    Some((rt.code() as usize - 1, p))
}

impl AclIndex {
    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    pub fn contains(&self, b: &AclBinding) -> bool {
        self.all.contains(b)
    }

    /// Every binding, in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = &AclBinding> {
        self.all.iter()
    }

    /// Adds a binding (a duplicate is a no-op).
    pub fn insert(&mut self, b: AclBinding) {
        let Some((t, p)) = slot(b.resource_type, b.pattern_type) else { return };
        if self.all.contains(&b) {
            return;
        }
        self.by_name[t][p].entry(b.resource_name.clone()).or_default().push(Entry {
            principal: b.principal.clone(),
            host: b.host.clone(),
            operation: b.operation,
            permission: b.permission,
        });
        self.all.insert(b);
    }

    pub fn remove(&mut self, b: &AclBinding) {
        if !self.all.remove(b) {
            return;
        }
        let Some((t, p)) = slot(b.resource_type, b.pattern_type) else { return };
        let map = &mut self.by_name[t][p];
        if let Some(entries) = map.get_mut(&b.resource_name) {
            entries.retain(|e| {
                !(e.principal == b.principal && e.host == b.host && e.operation == b.operation && e.permission == b.permission)
            });
            if entries.is_empty() {
                map.remove(&b.resource_name);
            }
        }
    }

    fn check_entries(found: &mut Found, entries: Option<&Vec<Entry>>, who: &Requester<'_>, host: &str, op: AclOperation) {
        let Some(entries) = entries else { return };
        found.any |= !entries.is_empty();
        for e in entries {
            if e.principal != who.principal && e.principal != WILDCARD_PRINCIPAL {
                continue;
            }
            if e.host != WILDCARD && e.host != host {
                continue;
            }
            match e.permission {
                Permission::Allow if implies(e.operation, op) => found.allow = true,
                Permission::Deny if e.operation == AclOperation::All || e.operation == op => found.deny = true,
                _ => {}
            }
        }
    }

    /// Whether the bindings allow `op` on the resource, as
    /// `StandardAuthorizerData.authorize` decides (super users aside).
    pub fn authorize(
        &self,
        who: &Requester<'_>,
        op: AclOperation,
        rt: ResourceType,
        name: &str,
        allow_everyone_if_no_acl_found: bool,
    ) -> bool {
        let Some((t, _)) = slot(rt, PatternType::Literal) else { return false };
        let mut found = Found::default();
        let host = HostText::new(who.host);
        let host = host.as_str();
        let [literal, prefixed] = &self.by_name[t];
        if !literal.is_empty() {
            Self::check_entries(&mut found, literal.get(name), who, host, op);
            Self::check_entries(&mut found, literal.get(WILDCARD), who, host, op);
        }
        if !prefixed.is_empty() {
            for (i, _) in name.char_indices().skip(1).chain(std::iter::once((name.len(), ' '))) {
                Self::check_entries(&mut found, prefixed.get(&name[..i]), who, host, op);
                if found.deny {
                    break;
                }
            }
        }
        if found.deny {
            false
        } else if found.allow {
            true
        } else {
            !found.any && allow_everyone_if_no_acl_found
        }
    }

    /// Kafka's `Authorizer.authorizeByResourceType`: whether `op` is
    /// allowed on some resource of type `rt` (an ALLOW not covered by a
    /// DENY of the same or a shorter name), super users and the "no ACL"
    /// rule aside.
    pub fn authorize_by_resource_type(
        &self,
        who: &Requester<'_>,
        op: AclOperation,
        rt: ResourceType,
        allow_everyone_if_no_acl_found: bool,
    ) -> bool {
        if self.authorize(who, op, rt, "hardcode", allow_everyone_if_no_acl_found) {
            return true;
        }
        let host = HostText::new(who.host);
        let host = host.as_str();
        let mut deny_literal = BTreeSet::new();
        let mut deny_prefix = BTreeSet::new();
        let mut allow = Vec::new();
        let mut wildcard_allow = false;
        for b in self.all.iter().filter(|b| b.resource_type == rt) {
            if b.host != host && b.host != WILDCARD {
                continue;
            }
            if b.principal != who.principal && b.principal != WILDCARD_PRINCIPAL {
                continue;
            }
            if b.operation != op && b.operation != AclOperation::All {
                continue;
            }
            match (b.permission, b.pattern_type) {
                (Permission::Deny, PatternType::Literal) if b.resource_name == WILDCARD => return false,
                (Permission::Deny, PatternType::Literal) => {
                    deny_literal.insert(b.resource_name.as_str());
                }
                (Permission::Deny, _) => {
                    deny_prefix.insert(b.resource_name.as_str());
                }
                (Permission::Allow, PatternType::Literal) if b.resource_name == WILDCARD => wildcard_allow = true,
                (Permission::Allow, pt) => allow.push((pt, b.resource_name.as_str())),
                _ => {}
            }
        }
        // A wildcard DENY has returned already, whatever came before it.
        if wildcard_allow {
            return true;
        }
        allow.iter().any(|(pt, name)| {
            (*pt != PatternType::Literal || !deny_literal.contains(name))
                && !name
                    .char_indices()
                    .skip(1)
                    .map(|(i, _)| &name[..i])
                    .chain(std::iter::once(*name))
                    .any(|p| deny_prefix.contains(p))
        })
    }
}

/// Whether an ALLOW of `granted` allows `wanted` (Kafka's implications).
pub fn implies(granted: AclOperation, wanted: AclOperation) -> bool {
    use AclOperation::*;
    granted == All
        || granted == wanted
        || (wanted == Describe && matches!(granted, Read | Write | Delete | Alter))
        || (wanted == DescribeConfigs && granted == AlterConfigs)
}

/// An IP address as text without allocating (Java's `getHostAddress` for
/// IPv4; IPv6 in Rust's short form, IPv4-mapped ones as IPv4).
struct HostText {
    buf: [u8; 64],
    len: usize,
}

impl HostText {
    fn new(ip: IpAddr) -> HostText {
        use std::io::Write as _;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let mut buf = [0u8; 64];
        let mut cursor = std::io::Cursor::new(&mut buf[..]);
        let _ = write!(cursor, "{ip}");
        let len = cursor.position() as usize;
        HostText { buf, len }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(rt: ResourceType, name: &str, pt: PatternType, principal: &str, op: AclOperation, perm: Permission) -> AclBinding {
        AclBinding {
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: pt,
            principal: principal.into(),
            host: "*".into(),
            operation: op,
            permission: perm,
        }
    }

    fn alice() -> Requester<'static> {
        Requester { principal: "User:alice", host: "10.0.0.1".parse().unwrap() }
    }

    use AclOperation::*;
    use PatternType::*;
    use Permission::*;
    use ResourceType::*;

    #[test]
    fn literal_wildcard_and_prefixed_patterns_match() {
        let mut idx = AclIndex::default();
        idx.insert(acl(Topic, "orders", Literal, "User:alice", Write, Allow));
        idx.insert(acl(Topic, "pay-", Prefixed, "User:alice", Read, Allow));
        idx.insert(acl(Group, "*", Literal, "User:*", Read, Allow));
        let a = alice();
        assert!(idx.authorize(&a, Write, Topic, "orders", false));
        assert!(!idx.authorize(&a, Read, Topic, "orders", false), "WRITE does not imply READ");
        assert!(idx.authorize(&a, Describe, Topic, "orders", false), "WRITE implies DESCRIBE");
        assert!(idx.authorize(&a, Read, Topic, "pay-in", false));
        assert!(idx.authorize(&a, Read, Topic, "pay-", false));
        assert!(!idx.authorize(&a, Read, Topic, "pay", false));
        assert!(!idx.authorize(&a, Read, Topic, "other", false));
        assert!(idx.authorize(&a, Read, Group, "any-group", false), "User:* and the * resource");
        let bob = Requester { principal: "User:bob", host: a.host };
        assert!(!idx.authorize(&bob, Write, Topic, "orders", false));
        assert!(!idx.authorize(&a, Write, Cluster, CLUSTER_NAME, false));
    }

    #[test]
    fn deny_wins_and_covers_only_its_operation() {
        let mut idx = AclIndex::default();
        idx.insert(acl(Topic, "t", Prefixed, "User:*", All, Allow));
        idx.insert(acl(Topic, "t1", Literal, "User:alice", Read, Deny));
        let a = alice();
        assert!(!idx.authorize(&a, Read, Topic, "t1", false));
        assert!(idx.authorize(&a, Describe, Topic, "t1", false), "a DENY READ does not deny DESCRIBE");
        assert!(idx.authorize(&a, Read, Topic, "t2", false));
        idx.insert(acl(Topic, "t", Prefixed, "User:alice", All, Deny));
        assert!(!idx.authorize(&a, Describe, Topic, "t2", false));
    }

    #[test]
    fn implications_and_hosts() {
        let mut idx = AclIndex::default();
        let mut b = acl(Topic, "t", Literal, "User:alice", AlterConfigs, Allow);
        b.host = "10.0.0.2".into();
        idx.insert(b.clone());
        let a = alice();
        assert!(!idx.authorize(&a, DescribeConfigs, Topic, "t", false), "another host");
        let there = Requester { principal: a.principal, host: "10.0.0.2".parse().unwrap() };
        assert!(idx.authorize(&there, DescribeConfigs, Topic, "t", false));
        assert!(!idx.authorize(&there, Describe, Topic, "t", false));
        let mapped = Requester { principal: a.principal, host: "::ffff:10.0.0.2".parse().unwrap() };
        assert!(idx.authorize(&mapped, AlterConfigs, Topic, "t", false));
        idx.remove(&b);
        assert!(idx.is_empty());
        assert!(!idx.authorize(&there, AlterConfigs, Topic, "t", false));
    }

    #[test]
    fn no_acl_found_rule_counts_bindings_of_anyone() {
        let mut idx = AclIndex::default();
        let a = alice();
        assert!(idx.authorize(&a, Read, Topic, "t", true));
        assert!(!idx.authorize(&a, Read, Topic, "t", false));
        idx.insert(acl(Topic, "t", Literal, "User:bob", Read, Allow));
        assert!(!idx.authorize(&a, Read, Topic, "t", true), "t has an ACL, for bob");
        assert!(idx.authorize(&a, Read, Topic, "u", true));
    }

    #[test]
    fn by_resource_type_as_kafka() {
        let mut idx = AclIndex::default();
        let a = alice();
        assert!(!idx.authorize_by_resource_type(&a, Write, Topic, false));
        idx.insert(acl(Topic, "orders", Literal, "User:alice", Write, Allow));
        assert!(idx.authorize_by_resource_type(&a, Write, Topic, false));
        idx.insert(acl(Topic, "ord", Prefixed, "User:alice", Write, Deny));
        assert!(!idx.authorize_by_resource_type(&a, Write, Topic, false));
        idx.insert(acl(Topic, "x", Prefixed, "User:alice", All, Allow));
        assert!(idx.authorize_by_resource_type(&a, Write, Topic, false));
        idx.insert(acl(Topic, "*", Literal, "User:alice", All, Allow));
        assert!(idx.authorize_by_resource_type(&a, Write, Topic, false));
        idx.insert(acl(Topic, "*", Literal, "User:*", Write, Deny));
        assert!(!idx.authorize_by_resource_type(&a, Write, Topic, false), "a wildcard DENY beats a wildcard ALLOW");
    }

    #[test]
    fn filters_as_kafka() {
        let lit = acl(Topic, "orders", Literal, "User:alice", Write, Allow);
        let wild = acl(Topic, "*", Literal, "User:alice", Write, Allow);
        let pre = acl(Topic, "ord", Prefixed, "User:alice", Write, Allow);
        let f = |pt, name: Option<&str>| AclFilter {
            resource_type: ResourceType::Any,
            resource_name: name.map(str::to_string),
            pattern_type: pt,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: Permission::Any,
        };
        let m = f(Match, Some("orders"));
        assert!(m.matches(&lit) && m.matches(&wild) && m.matches(&pre));
        let any = f(PatternType::Any, Some("orders"));
        assert!(any.matches(&lit) && !any.matches(&wild) && !any.matches(&pre));
        let p = f(Prefixed, None);
        assert!(!p.matches(&lit) && p.matches(&pre));
        assert!(AclFilter::from_wire(0, None, 1, None, None, 1, 1).is_err(), "UNKNOWN resource type");
        assert!(AclFilter::from_wire(1, None, 1, None, None, 0, 1).is_err(), "UNKNOWN operation");
    }

    #[test]
    fn new_bindings_are_checked() {
        let ok = acl(Topic, "t", Literal, "User:alice", Read, Allow);
        assert!(ok.validate().is_ok());
        let mut b = ok.clone();
        b.pattern_type = Match;
        assert!(b.validate().unwrap_err().contains("patternType"));
        let mut b = ok.clone();
        b.resource_type = Cluster;
        assert!(b.validate().unwrap_err().contains("kafka-cluster"));
        let mut b = ok.clone();
        b.principal = "alice".into();
        assert!(b.validate().unwrap_err().contains("principal"));
        let mut b = ok;
        b.resource_name = "x".repeat(MAX_ACL_FIELD_BYTES + 1);
        assert!(b.validate().is_err());
        assert!(AuthorizerConfig::parse("kafka.security.authorizer.AclAuthorizer", "", false).is_err());
        let c = AuthorizerConfig::parse(STANDARD_AUTHORIZER, "User:admin; User:ops", false).unwrap().unwrap();
        assert_eq!(c.super_users, vec!["User:admin".to_string(), "User:ops".to_string()]);
        assert_eq!(AuthorizerConfig::parse("", "", false).unwrap(), None);
    }
}
