//! DescribeUserScramCredentials (key 50): each user's SCRAM mechanisms
//! and iteration counts (never the keys), as Kafka's `ScramImage.describe`:
//! no users named means all, a user named twice is DUPLICATE_RESOURCE, an
//! unknown one RESOURCE_NOT_FOUND.

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::describe_user_scram_credentials_request::DescribeUserScramCredentialsRequest;
use crate::protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResponse, DescribeUserScramCredentialsResult,
};
use crate::protocol::ErrorCode;

pub const SPEC: ApiSpec = ApiSpec { api_key: 50, name: "DescribeUserScramCredentials", min_version: 0, max_version: 0 };

pub async fn handle(ctx: &RequestContext<'_>, req: DescribeUserScramCredentialsRequest) -> DescribeUserScramCredentialsResponse {
    let store = &ctx.broker.scram;
    // (user, named more than once), in request order.
    let mut users: Vec<(String, bool)> = Vec::new();
    match req.users {
        Some(list) if !list.is_empty() => {
            for u in list {
                match users.iter_mut().find(|(n, _)| *n == u.name) {
                    Some(entry) => entry.1 = true,
                    None => users.push((u.name, false)),
                }
            }
        }
        _ => users = store.user_names().into_iter().map(|u| (u, false)).collect(),
    }
    let results = users
        .into_iter()
        .map(|(user, duplicate)| {
            let mut r = DescribeUserScramCredentialsResult { user: user.clone(), ..Default::default() };
            if duplicate {
                r.error_code = ErrorCode::DuplicateResource.code();
                r.error_message =
                    Some(format!("Cannot describe SCRAM credentials for the same user twice in a single request: {user}"));
                return r;
            }
            match store.describe(&user) {
                Some(infos) if !infos.is_empty() => {
                    r.credential_infos = infos
                        .into_iter()
                        .map(|(hash, iterations)| CredentialInfo { mechanism: hash.type_id(), iterations })
                        .collect();
                }
                _ => {
                    r.error_code = ErrorCode::ResourceNotFound.code();
                    r.error_message = Some(format!("Attempt to describe a user credential that does not exist: {user}"));
                }
            }
            r
        })
        .collect();
    DescribeUserScramCredentialsResponse { throttle_time_ms: 0, error_code: 0, error_message: None, results }
}
