//! AlterUserScramCredentials (key 51): deletes and upserts SCRAM
//! credentials, validated as Kafka's `ScramControlManager` does (one
//! change per user per request, known mechanism, 4096..=16384
//! iterations, non-empty name) and made durable (`security::credentials`)
//! before the response. The client sends the salted password; the store
//! keeps StoredKey and ServerKey derived from it.

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::alter_user_scram_credentials_request::AlterUserScramCredentialsRequest;
use crate::protocol::messages::alter_user_scram_credentials_response::{
    AlterUserScramCredentialsResponse, AlterUserScramCredentialsResult,
};
use crate::protocol::ErrorCode;
use crate::security::credentials::{Change, MAX_KEY_BYTES, MAX_USER_NAME_BYTES};
use crate::security::sasl::scram::{ScramCredential, ScramHash, MAX_ITERATIONS, MIN_ITERATIONS};

pub const SPEC: ApiSpec = ApiSpec { api_key: 51, name: "AlterUserScramCredentials", min_version: 0, max_version: 0 };

fn validate_name_and_mechanism(name: &str, mechanism: i8) -> Result<ScramHash, (ErrorCode, String)> {
    if name.is_empty() {
        return Err((ErrorCode::UnacceptableCredential, "Username must not be empty".into()));
    }
    if name.len() > MAX_USER_NAME_BYTES {
        return Err((ErrorCode::UnacceptableCredential, format!("Username must be at most {MAX_USER_NAME_BYTES} bytes")));
    }
    ScramHash::from_type_id(mechanism).ok_or((ErrorCode::UnsupportedSaslMechanism, "Unknown SCRAM mechanism".into()))
}

pub async fn handle(ctx: &RequestContext<'_>, req: AlterUserScramCredentialsRequest) -> AlterUserScramCredentialsResponse {
    let store = ctx.broker.scram.clone();
    let mut errors: Vec<(String, ErrorCode, String)> = Vec::new();
    let mut deletions: Vec<(String, ScramHash)> = Vec::new();
    let mut upserts: Vec<(String, ScramHash, ScramCredential)> = Vec::new();
    let failed = |errors: &Vec<(String, ErrorCode, String)>, name: &str| errors.iter().any(|(u, _, _)| u == name);
    let duplicate = || (ErrorCode::DuplicateResource, "A user credential cannot be altered twice in the same request".to_string());
    for d in req.deletions {
        if failed(&errors, &d.name) {
            continue;
        }
        if let Some(i) = deletions.iter().position(|(u, _)| *u == d.name) {
            deletions.remove(i);
            let (code, msg) = duplicate();
            errors.push((d.name, code, msg));
            continue;
        }
        match validate_name_and_mechanism(&d.name, d.mechanism) {
            Err((code, msg)) => errors.push((d.name, code, msg)),
            Ok(hash) if !store.exists(&d.name, hash) => errors.push((
                d.name,
                ErrorCode::ResourceNotFound,
                "Attempt to delete a user credential that does not exist".into(),
            )),
            Ok(hash) => deletions.push((d.name, hash)),
        }
    }
    for u in req.upsertions {
        if failed(&errors, &u.name) {
            continue;
        }
        let in_deletions = deletions.iter().position(|(n, _)| *n == u.name);
        let in_upserts = upserts.iter().position(|(n, _, _)| *n == u.name);
        if in_deletions.is_some() || in_upserts.is_some() {
            if let Some(i) = in_deletions {
                deletions.remove(i);
            }
            if let Some(i) = in_upserts {
                upserts.remove(i);
            }
            let (code, msg) = duplicate();
            errors.push((u.name, code, msg));
            continue;
        }
        let hash = match validate_name_and_mechanism(&u.name, u.mechanism) {
            Ok(h) => h,
            Err((code, msg)) => {
                errors.push((u.name, code, msg));
                continue;
            }
        };
        if u.iterations < MIN_ITERATIONS {
            errors.push((u.name, ErrorCode::UnacceptableCredential, "Too few iterations".into()));
        } else if u.iterations > MAX_ITERATIONS {
            errors.push((u.name, ErrorCode::UnacceptableCredential, "Too many iterations".into()));
        } else if u.salt.is_empty() || u.salt.len() > MAX_KEY_BYTES || u.salted_password.is_empty() || u.salted_password.len() > MAX_KEY_BYTES {
            errors.push((u.name, ErrorCode::UnacceptableCredential, "Invalid salt or salted password".into()));
        } else {
            let credential = ScramCredential::from_salted_password(hash, &u.salt, &u.salted_password, u.iterations);
            upserts.push((u.name, hash, credential));
        }
    }
    let mut results: Vec<AlterUserScramCredentialsResult> = Vec::new();
    let ok_users: Vec<String> =
        deletions.iter().map(|(u, _)| u.clone()).chain(upserts.iter().map(|(u, _, _)| u.clone())).collect();
    let changes: Vec<Change> = deletions
        .into_iter()
        .map(|(user, hash)| Change::Delete { user, hash })
        .chain(upserts.into_iter().map(|(user, hash, credential)| Change::Upsert { user, hash, credential }))
        .collect();
    let applied = if changes.is_empty() {
        Ok(())
    } else {
        tokio::task::spawn_blocking(move || store.apply(changes)).await.unwrap_or_else(|e| Err(e.to_string()))
    };
    match applied {
        Ok(()) => results.extend(ok_users.into_iter().map(|user| AlterUserScramCredentialsResult {
            user,
            error_code: 0,
            error_message: None,
        })),
        Err(why) => {
            tracing::error!(error = %why, "cannot store SCRAM credentials");
            results.extend(ok_users.into_iter().map(|user| AlterUserScramCredentialsResult {
                user,
                error_code: ErrorCode::UnknownServerError.code(),
                error_message: Some(why.clone()),
            }))
        }
    }
    results.extend(errors.into_iter().map(|(user, code, msg)| AlterUserScramCredentialsResult {
        user,
        error_code: code.code(),
        error_message: Some(msg),
    }));
    AlterUserScramCredentialsResponse { throttle_time_ms: 0, results }
}
