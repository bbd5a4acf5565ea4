//! DeleteGroups (key 42): deletes empty groups and their offsets. Repeated
//! names are answered once, as Kafka does. KIP-848 consumer groups are
//! deleted here (when empty), classic ones by the classic coordinator.

use std::collections::HashSet;

use super::{ApiSpec, RequestContext};
use crate::group::errors::{NON_EMPTY_GROUP, NONE};
use crate::group::offsets_store::StoreRecord;
use crate::protocol::messages::delete_groups_request::DeleteGroupsRequest;
use crate::protocol::messages::delete_groups_response::{DeletableGroupResult, DeleteGroupsResponse};

pub const SPEC: ApiSpec = ApiSpec { api_key: 42, name: "DeleteGroups", min_version: 0, max_version: 2 };

pub async fn handle(ctx: &RequestContext<'_>, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let groups = distinct(req.groups_names);
    // KIP-848 consumer groups: deleted when empty, offsets with them.
    let mut consumer = Vec::new();
    let mut classic = Vec::new();
    for g in groups {
        match ctx.broker.consumer_groups.delete(&g) {
            Some(true) => {
                let tombstone = vec![StoreRecord::GroupTombstone { group: g.clone() }];
                let error_code = match ctx.broker.groups.store().append(tombstone).await {
                    Ok(()) => NONE,
                    Err(e) => e.error_code(),
                };
                consumer.push(DeletableGroupResult { group_id: g, error_code });
            }
            Some(false) => consumer.push(DeletableGroupResult { group_id: g, error_code: NON_EMPTY_GROUP }),
            None => classic.push(g),
        }
    }
    let results = if classic.is_empty() { Vec::new() } else { ctx.broker.groups.delete_groups(&classic).await };
    DeleteGroupsResponse {
        throttle_time_ms: 0,
        results: consumer
            .into_iter()
            .chain(results.into_iter().map(|r| DeletableGroupResult { group_id: r.group_id, error_code: r.error_code }))
            .collect(),
    }
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
}
