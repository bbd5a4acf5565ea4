//! TxnOffsetCommit (key 28): offsets committed inside a transaction. The
//! transaction coordinator checks the producer and that the group was
//! added (AddOffsetsToTxn); the group coordinator stores the offsets
//! pending under the producer id; they become visible on commit and are
//! dropped on abort. v5 is transaction version 2 (KIP-890): the client
//! sends no AddOffsetsToTxn, so the commit adds the group to the ongoing
//! transaction itself.

use super::{ApiSpec, RequestContext};
use crate::group::messages::{OffsetCommitPartition, OffsetCommitRequest, OffsetCommitTopic};
use crate::protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequest;
use crate::protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use crate::protocol::ErrorCode;

pub const SPEC: ApiSpec = ApiSpec { api_key: 28, name: "TxnOffsetCommit", min_version: 0, max_version: 5 };

const PRODUCER_FENCED_SINCE: i16 = 3;
/// The first version that adds the group implicitly (transaction version 2).
const IMPLICIT_ADD_SINCE: i16 = 5;

fn all_failed(req: &TxnOffsetCommitRequest, code: i16) -> TxnOffsetCommitResponse {
    TxnOffsetCommitResponse {
        topics: req
            .topics
            .iter()
            .map(|t| TxnOffsetCommitResponseTopic {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| TxnOffsetCommitResponsePartition { partition_index: p.partition_index, error_code: code })
                    .collect(),
            })
            .collect(),
        ..Default::default()
    }
}

pub async fn handle(ctx: &RequestContext<'_>, req: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
    let broker = ctx.broker.clone();
    let (id, pid, epoch, group) = (req.transactional_id.clone(), req.producer_id, req.producer_epoch, req.group_id.clone());
    let implicit_add = ctx.version() >= IMPLICIT_ADD_SINCE;
    let checked = tokio::task::spawn_blocking(move || {
        if implicit_add {
            broker.txns.add_offsets(&id, pid, epoch, &group, crate::types::TimestampMs::now())?;
        }
        broker.txns.check_offset_commit(&id, pid, epoch, &group)
    })
        .await
        .unwrap_or(Err(ErrorCode::UnknownServerError));
    if let Err(e) = checked {
        return all_failed(&req, crate::txn::fenced_error_for(e, ctx.version(), PRODUCER_FENCED_SINCE).code());
    }
    let commit = OffsetCommitRequest {
        group_id: req.group_id.clone(),
        generation_id_or_member_epoch: req.generation_id,
        member_id: req.member_id.clone(),
        group_instance_id: req.group_instance_id.clone(),
        retention_time_ms: -1,
        topics: req
            .topics
            .iter()
            .map(|t| OffsetCommitTopic {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| OffsetCommitPartition {
                        partition_index: p.partition_index,
                        committed_offset: p.committed_offset,
                        committed_leader_epoch: p.committed_leader_epoch,
                        committed_metadata: p.committed_metadata.clone(),
                    })
                    .collect(),
            })
            .collect(),
        api_version: 0,
    };
    // A KIP-848 consumer group: member and epoch checked by its
    // coordinator (a commit without group metadata, generation -1 and no
    // member id, is allowed as from old producers).
    let legacy = commit.generation_id_or_member_epoch < 0 && commit.member_id.is_empty();
    let check = ctx.broker.consumer_groups.validate_offset_commit(
        &commit.group_id,
        &commit.member_id,
        commit.generation_id_or_member_epoch,
        ctx.version(),
        true,
    );
    let resp = match check {
        None => ctx.broker.groups.txn_offset_commit(commit, req.producer_id).await,
        Some(Some(code)) if !legacy => crate::group::coordinator::commit_error_response(&commit, code),
        Some(_) => ctx.broker.groups.commit_offsets_unmanaged(commit, Some(req.producer_id)).await,
    };
    TxnOffsetCommitResponse {
        topics: resp
            .topics
            .into_iter()
            .map(|t| TxnOffsetCommitResponseTopic {
                name: t.name,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| TxnOffsetCommitResponsePartition { partition_index: p.partition_index, error_code: p.error_code })
                    .collect(),
            })
            .collect(),
        ..Default::default()
    }
}
