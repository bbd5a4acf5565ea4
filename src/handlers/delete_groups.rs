//! DeleteGroups (key 42): deletes empty groups and their offsets. Repeated
//! names are answered once, as Kafka does. KIP-848 consumer groups are
//! deleted here (when empty), classic ones by the classic coordinator.
//! v3 (Kafka 4.4) adds a message to each failed group, as Kafka words it.

use std::collections::HashSet;

use super::{ApiSpec, RequestContext};
use crate::group::errors::{NON_EMPTY_GROUP, NONE};
use crate::group::offsets_store::StoreRecord;
use crate::protocol::messages::delete_groups_request::DeleteGroupsRequest;
use crate::protocol::messages::delete_groups_response::{DeletableGroupResult, DeleteGroupsResponse};
use crate::protocol::ErrorCode;
use crate::security::authorizer::{AclOperation, ResourceType};

pub const SPEC: ApiSpec = ApiSpec { api_key: 42, name: "DeleteGroups", min_version: 0, max_version: 3 };

pub async fn handle(ctx: &RequestContext<'_>, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let groups = distinct(req.groups_names);
    // KIP-848 consumer groups: deleted when empty, offsets with them.
    let mut consumer = Vec::new();
    let mut classic = Vec::new();
    for g in groups {
        // As Kafka: DELETE on the group.
        if !ctx.authorized(AclOperation::Delete, ResourceType::Group, &g) {
            consumer.push(result(g, ErrorCode::GroupAuthorizationFailed.code()));
            continue;
        }
        match ctx.broker.consumer_groups.delete(&g) {
            Some(true) => {
                let tombstone = vec![StoreRecord::GroupTombstone { group: g.clone() }];
                let error_code = match ctx.broker.groups.store().append(tombstone).await {
                    Ok(()) => NONE,
                    Err(e) => e.error_code(),
                };
                consumer.push(result(g, error_code));
            }
            Some(false) => consumer.push(result(g, NON_EMPTY_GROUP)),
            None => classic.push(g),
        }
    }
    let results = if classic.is_empty() { Vec::new() } else { ctx.broker.groups.delete_groups(&classic).await };
    DeleteGroupsResponse {
        throttle_time_ms: 0,
        results: consumer
            .into_iter()
            .chain(results.into_iter().map(|r| result(r.group_id, r.error_code)))
            .collect(),
    }
}

/// One group's answer; a failure carries Kafka's message for it (v3+;
/// older versions do not encode it).
fn result(group_id: String, error_code: i16) -> DeletableGroupResult {
    // Kafka 4.4 sends `ApiError.message()`, which for these errors is the
    // code's own text (`Errors.NON_EMPTY_GROUP.exception()` and the like).
    let error_message = match error_code {
        NONE => None,
        code => Some(crate::cli::errors::error_description(code).to_string()),
    };
    DeletableGroupResult { group_id, error_code, error_message }
}

/// The names in first-seen order without repeats.
fn distinct(names: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    names.into_iter().filter(|n| seen.insert(n.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_are_deleted_once() {
        let names = vec!["b".to_string(), "a".into(), "b".into()];
        assert_eq!(distinct(names), vec!["b".to_string(), "a".into()]);
    }

    #[test]
    fn failures_carry_kafkas_message() {
        assert_eq!(result("g".into(), NONE).error_message, None);
        assert_eq!(result("g".into(), NON_EMPTY_GROUP).error_message.as_deref(), Some("The group is not empty."));
        assert_eq!(result("g".into(), crate::group::errors::GROUP_ID_NOT_FOUND).error_message.as_deref(), Some("The group id does not exist."));
    }

    #[test]
    fn v3_encodes_the_message_and_v2_does_not() {
        use crate::protocol::Writer;
        let resp = DeleteGroupsResponse { throttle_time_ms: 0, results: vec![result("g".into(), NON_EMPTY_GROUP)] };
        let encode = |v| {
            let mut w = Writer::new();
            resp.encode(&mut w, v);
            w.finish_contiguous()
        };
        let (v2, v3) = (encode(2), encode(3));
        let msg = b"The group is not empty.";
        // throttle(4) results(1) group_id(1+1) error_code(2) [v3: message(1+23)] tags(1) tags(1)
        assert_eq!(v2.len(), 4 + 1 + 2 + 2 + 1 + 1);
        assert_eq!(v3.len(), v2.len() + 1 + msg.len());
        assert_eq!(&v3[10..10 + msg.len()], &msg[..]);
        assert_eq!(v3[9] as usize, msg.len() + 1);
    }
}
