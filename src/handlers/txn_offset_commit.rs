//! TxnOffsetCommit (key 28): offsets committed inside a transaction. The
//! transaction coordinator checks the producer and that the group was
//! added (AddOffsetsToTxn); the group coordinator stores the offsets
//! pending under the producer id; they become visible on commit and are
//! dropped on abort. v5 is transaction version 2 (KIP-890): the client
//! sends no AddOffsetsToTxn, so the commit adds the group to the ongoing
//! transaction itself. v6 (Kafka 4.4) names topics by id: an unknown id
//! answers UNKNOWN_TOPIC_ID on each of its partitions, as OffsetCommit
//! v10 does, and the response names topics by id. Partitions of topics the
//! caller may not READ, and of unknown topics or partition numbers, are
//! answered (TOPIC_AUTHORIZATION_FAILED, UNKNOWN_TOPIC_OR_PARTITION) before
//! the coordinators see the request, as in Kafka.

use super::{ApiSpec, RequestContext};
use crate::group::messages::{OffsetCommitPartition, OffsetCommitRequest, OffsetCommitTopic};
use crate::protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequest;
use crate::protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use crate::controller::MetadataImage;
use crate::protocol::{ErrorCode, Uuid};
use crate::security::authorizer::{AclOperation, ResourceType};

pub const SPEC: ApiSpec = ApiSpec { api_key: 28, name: "TxnOffsetCommit", min_version: 0, max_version: 6 };

const PRODUCER_FENCED_SINCE: i16 = 3;
/// The first version that adds the group implicitly (transaction version 2).
const IMPLICIT_ADD_SINCE: i16 = 5;
/// The first version that names topics by id.
const TOPIC_IDS_SINCE: i16 = 6;

/// v6+: gives each topic the name of its id, and takes out the topics
/// whose id is unknown, returned with their partition numbers.
fn resolve_topic_ids(req: &mut TxnOffsetCommitRequest, image: &MetadataImage) -> Vec<(Uuid, Vec<i32>)> {
    super::topic_ids::take_unknown_topic_ids(&mut req.topics, image, |t| t.topic_id, |t| &mut t.name, |t| {
        t.partitions.iter().map(|p| p.partition_index).collect()
    })
}

/// v6+: the id of each answered topic, then the unknown ids.
fn with_topic_ids(resp: &mut TxnOffsetCommitResponse, unknown: Vec<(Uuid, Vec<i32>)>, image: &MetadataImage) {
    for t in &mut resp.topics {
        t.topic_id = image.topic(&t.name).map_or(Uuid::NIL, |info| info.id);
    }
    resp.topics.extend(unknown.into_iter().map(|(topic_id, partitions)| TxnOffsetCommitResponseTopic {
        name: String::new(),
        topic_id,
        partitions: partitions
            .into_iter()
            .map(|partition_index| TxnOffsetCommitResponsePartition {
                partition_index,
                error_code: ErrorCode::UnknownTopicId.code(),
            })
            .collect(),
    }));
}

fn all_failed(req: &TxnOffsetCommitRequest, code: i16) -> TxnOffsetCommitResponse {
    TxnOffsetCommitResponse {
        topics: req
            .topics
            .iter()
            .map(|t| TxnOffsetCommitResponseTopic {
                name: t.name.clone(),
                topic_id: t.topic_id,
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

pub async fn handle(ctx: &RequestContext<'_>, mut req: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
    let image = ctx.broker.controller.image();
    let unknown_ids = if ctx.version() >= TOPIC_IDS_SINCE { resolve_topic_ids(&mut req, &image) } else { Vec::new() };
    let mut resp = commit(ctx, req, &image).await;
    if ctx.version() >= TOPIC_IDS_SINCE {
        with_topic_ids(&mut resp, unknown_ids, &image);
    }
    resp
}

/// Takes out of `req` the partitions Kafka answers before the
/// coordinators see them: those of topics the principal may not READ
/// (TOPIC_AUTHORIZATION_FAILED), then those of unknown topics or partition
/// numbers (UNKNOWN_TOPIC_OR_PARTITION). Returns their answers.
fn take_unusable(
    req: &mut TxnOffsetCommitRequest,
    image: &MetadataImage,
    may_read: impl Fn(&str) -> bool,
) -> Vec<TxnOffsetCommitResponseTopic> {
    let mut answered = Vec::new();
    for t in &mut req.topics {
        let known_partitions = image.topic(&t.name).map_or(0, |info| info.partitions);
        let readable = may_read(&t.name);
        let mut failed = Vec::new();
        t.partitions.retain(|p| {
            let code = if !readable {
                ErrorCode::TopicAuthorizationFailed
            } else if (0..known_partitions).contains(&p.partition_index) {
                return true;
            } else {
                ErrorCode::UnknownTopicOrPartition
            };
            failed.push(TxnOffsetCommitResponsePartition { partition_index: p.partition_index, error_code: code.code() });
            false
        });
        if !failed.is_empty() {
            answered.push(TxnOffsetCommitResponseTopic { name: t.name.clone(), topic_id: Uuid::NIL, partitions: failed });
        }
    }
    req.topics.retain(|t| !t.partitions.is_empty());
    answered
}

/// Adds `answered` to `resp`, each partition under its topic's entry.
fn merge_answered(resp: &mut TxnOffsetCommitResponse, answered: Vec<TxnOffsetCommitResponseTopic>) {
    for a in answered {
        match resp.topics.iter_mut().find(|t| t.name == a.name) {
            Some(t) => t.partitions.extend(a.partitions),
            None => resp.topics.push(a),
        }
    }
}

async fn commit(ctx: &RequestContext<'_>, mut req: TxnOffsetCommitRequest, image: &MetadataImage) -> TxnOffsetCommitResponse {
    // As Kafka: WRITE on the transactional id, READ on the group.
    if !ctx.authorized(AclOperation::Write, ResourceType::TransactionalId, &req.transactional_id) {
        return all_failed(&req, ErrorCode::TransactionalIdAuthorizationFailed.code());
    }
    if !ctx.authorized(AclOperation::Read, ResourceType::Group, &req.group_id) {
        return all_failed(&req, ErrorCode::GroupAuthorizationFailed.code());
    }
    // Then READ on each topic and its existence; when nothing is left, the
    // coordinators are not asked (as Kafka's KafkaApis).
    let answered = take_unusable(&mut req, image, |topic| ctx.authorized(AclOperation::Read, ResourceType::Topic, topic));
    if req.topics.is_empty() {
        return TxnOffsetCommitResponse { topics: answered, ..Default::default() };
    }
    let mut resp = commit_known(ctx, req).await;
    merge_answered(&mut resp, answered);
    resp
}

async fn commit_known(ctx: &RequestContext<'_>, req: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
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
                topic_id: Uuid::NIL,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };

    #[test]
    fn unreadable_and_unknown_partitions_are_answered_before_the_coordinators() {
        let image = crate::handlers::topic_ids::image_with("t", 2);
        let topic = |name: &str, parts: &[i32]| TxnOffsetCommitRequestTopic {
            name: name.into(),
            partitions: parts.iter().map(|&p| TxnOffsetCommitRequestPartition { partition_index: p, ..Default::default() }).collect(),
            ..Default::default()
        };
        let mut req = TxnOffsetCommitRequest {
            topics: vec![topic("t", &[0, 1, 2]), topic("gone", &[0]), topic("secret", &[0])],
            ..Default::default()
        };
        let answered = take_unusable(&mut req, &image, |t| t != "secret");
        assert_eq!(req.topics.len(), 1);
        assert_eq!(req.topics[0].partitions.iter().map(|p| p.partition_index).collect::<Vec<_>>(), vec![0, 1]);
        let codes: Vec<(String, i32, i16)> = answered
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t.name.clone(), p.partition_index, p.error_code)))
            .collect();
        assert_eq!(codes, vec![
            ("t".into(), 2, ErrorCode::UnknownTopicOrPartition.code()),
            ("gone".into(), 0, ErrorCode::UnknownTopicOrPartition.code()),
            ("secret".into(), 0, ErrorCode::TopicAuthorizationFailed.code()),
        ]);
        let mut resp = TxnOffsetCommitResponse {
            topics: vec![TxnOffsetCommitResponseTopic {
                name: "t".into(),
                topic_id: Uuid::NIL,
                partitions: vec![TxnOffsetCommitResponsePartition { partition_index: 0, error_code: 0 }],
            }],
            ..Default::default()
        };
        merge_answered(&mut resp, answered);
        assert_eq!(resp.topics.iter().map(|t| (t.name.as_str(), t.partitions.len())).collect::<Vec<_>>(),
                   vec![("t", 2), ("gone", 1), ("secret", 1)]);
    }

    #[test]
    fn v6_names_topics_by_id() {
        let image = crate::handlers::topic_ids::image_with("t", 1);
        let id = image.topic("t").unwrap().id;
        let unknown = Uuid([9; 16]);
        let part = |p| TxnOffsetCommitRequestPartition { partition_index: p, ..Default::default() };
        let mut req = TxnOffsetCommitRequest {
            topics: vec![
                TxnOffsetCommitRequestTopic { topic_id: unknown, partitions: vec![part(1)], ..Default::default() },
                TxnOffsetCommitRequestTopic { topic_id: id, partitions: vec![part(0)], ..Default::default() },
            ],
            ..Default::default()
        };
        let unknown_ids = resolve_topic_ids(&mut req, &image);
        assert_eq!(unknown_ids, vec![(unknown, vec![1])]);
        assert_eq!(req.topics.len(), 1);
        assert_eq!(req.topics[0].name, "t");
        let mut resp = all_failed(&req, 0);
        with_topic_ids(&mut resp, unknown_ids, &image);
        assert_eq!(resp.topics.iter().map(|t| t.topic_id).collect::<Vec<_>>(), vec![id, unknown]);
        assert_eq!(resp.topics[1].partitions[0].error_code, 100);

        use crate::protocol::Writer;
        let mut w = Writer::new();
        resp.encode(&mut w, 6);
        let bytes = w.finish_contiguous();
        // throttle (4), topics count (1), then the first topic's id.
        assert_eq!(&bytes[5..21], &id.0[..]);
    }
}
