//! DeleteGroups (key 42): deletes empty groups and their offsets. Repeated
//! names are answered once, as Kafka does.

use std::collections::HashSet;

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::delete_groups_request::DeleteGroupsRequest;
use crate::protocol::messages::delete_groups_response::{DeletableGroupResult, DeleteGroupsResponse};

pub const SPEC: ApiSpec = ApiSpec { api_key: 42, name: "DeleteGroups", min_version: 0, max_version: 2 };

pub async fn handle(ctx: &RequestContext<'_>, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let groups = distinct(req.groups_names);
    let results = ctx.broker.groups.delete_groups(&groups).await;
    DeleteGroupsResponse {
        throttle_time_ms: 0,
        results: results
            .into_iter()
            .map(|r| DeletableGroupResult { group_id: r.group_id, error_code: r.error_code })
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
