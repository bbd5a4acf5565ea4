//! OffsetCommit (key 8): stores a group's committed offsets. As Kafka's
//! KafkaApis does, partitions of topics (or partition numbers) unknown to
//! the metadata answer UNKNOWN_TOPIC_OR_PARTITION without reaching the
//! coordinator; the rest are committed and both answers are merged.
//! v10 (KIP-848, Kafka 4.4) names topics by id: an id the metadata does
//! not know answers UNKNOWN_TOPIC_ID for each of its partitions, as
//! Kafka's KafkaApis does, and the response names topics by id.
//! Also owns `PartitionErrors`, the per-topic result builder OffsetDelete
//! shares.

use super::{ApiSpec, RequestContext};
use crate::controller::MetadataImage;
use crate::group;
use crate::group::errors::UNKNOWN_TOPIC_OR_PARTITION;
use crate::protocol::{ErrorCode, Uuid};
use crate::protocol::messages::offset_commit_request::OffsetCommitRequest;
use crate::protocol::messages::offset_commit_response::{
    OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use crate::security::authorizer::{AclOperation, ResourceType};

/// Versions 0-1 were removed in Kafka 4.0 (KIP-896).
pub const SPEC: ApiSpec = ApiSpec { api_key: 8, name: "OffsetCommit", min_version: 2, max_version: 10 };

/// The first version that names topics by id.
const TOPIC_IDS_VERSION: i16 = 10;

pub async fn handle(ctx: &RequestContext<'_>, mut req: OffsetCommitRequest) -> OffsetCommitResponse {
    let version = ctx.version();
    // As Kafka: READ on the group, else every partition fails.
    if !ctx.authorized(AclOperation::Read, ResourceType::Group, &req.group_id) {
        let topics = req
            .topics
            .into_iter()
            .map(|t| OffsetCommitResponseTopic {
                name: t.name,
                topic_id: t.topic_id,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| OffsetCommitResponsePartition {
                        partition_index: p.partition_index,
                        error_code: ErrorCode::GroupAuthorizationFailed.code(),
                    })
                    .collect(),
            })
            .collect();
        return OffsetCommitResponse { throttle_time_ms: 0, topics };
    }
    let image = ctx.broker.controller.image();
    let unknown_ids = if version >= TOPIC_IDS_VERSION { resolve_topic_ids(&mut req, &image) } else { Vec::new() };
    // Then READ on each topic, before its existence.
    let may_read = |topic: &str| ctx.authorized(AclOperation::Read, ResourceType::Topic, topic);
    let (request, mut errors) = split_known(req, version, &image, may_read);
    if !request.topics.is_empty() {
        // A KIP-848 consumer group checks the member epoch itself; its
        // offsets go to the same store.
        let check = ctx.broker.consumer_groups.validate_offset_commit(
            &request.group_id,
            &request.member_id,
            request.generation_id_or_member_epoch,
            version,
            false,
        );
        let response = match check {
            None => ctx.broker.groups.offset_commit(request).await,
            Some(None) => ctx.broker.groups.commit_offsets_unmanaged(request, None).await,
            Some(Some(code)) => group::coordinator::commit_error_response(&request, code),
        };
        for t in response.topics {
            errors.extend(&t.name, t.partitions.into_iter().map(|p| (p.partition_index, p.error_code)));
        }
    }
    let partitions = |parts: Vec<(i32, i16)>| {
        parts
            .into_iter()
            .map(|(partition_index, error_code)| OffsetCommitResponsePartition { partition_index, error_code })
            .collect()
    };
    let mut topics: Vec<OffsetCommitResponseTopic> = errors
        .into_topics()
        .into_iter()
        .map(|(name, parts)| OffsetCommitResponseTopic {
            topic_id: image.topic(&name).map_or(Uuid::NIL, |t| t.id),
            name,
            partitions: partitions(parts),
        })
        .collect();
    topics.extend(unknown_ids.into_iter().map(|(topic_id, parts)| OffsetCommitResponseTopic {
        name: String::new(),
        topic_id,
        partitions: partitions(parts.into_iter().map(|p| (p, ErrorCode::UnknownTopicId.code())).collect()),
    }));
    OffsetCommitResponse { throttle_time_ms: 0, topics }
}

/// v10+: gives each topic the name of its id, and takes out the topics
/// whose id is unknown, returned with their partition numbers.
fn resolve_topic_ids(req: &mut OffsetCommitRequest, image: &MetadataImage) -> Vec<(Uuid, Vec<i32>)> {
    super::topic_ids::take_unknown_topic_ids(&mut req.topics, image, |t| t.topic_id, |t| &mut t.name, |t| {
        t.partitions.iter().map(|p| p.partition_index).collect()
    })
}

/// The coordinator's request holding only partitions that exist, and the
/// UNKNOWN_TOPIC_OR_PARTITION answers for the others.
fn split_known(
    req: OffsetCommitRequest,
    version: i16,
    image: &MetadataImage,
    may_read: impl Fn(&str) -> bool,
) -> (group::OffsetCommitRequest, PartitionErrors) {
    let mut errors = PartitionErrors::default();
    let mut topics = Vec::new();
    for t in req.topics {
        let known_partitions = image.topic(&t.name).map_or(0, |info| info.partitions);
        let readable = may_read(&t.name);
        let mut partitions = Vec::new();
        for p in t.partitions {
            if !readable {
                errors.push(&t.name, p.partition_index, ErrorCode::TopicAuthorizationFailed.code());
            } else if p.partition_index >= 0 && p.partition_index < known_partitions {
                partitions.push(group::OffsetCommitPartition {
                    partition_index: p.partition_index,
                    committed_offset: p.committed_offset,
                    committed_leader_epoch: p.committed_leader_epoch,
                    committed_metadata: p.committed_metadata,
                });
            } else {
                errors.push(&t.name, p.partition_index, UNKNOWN_TOPIC_OR_PARTITION);
            }
        }
        if !partitions.is_empty() {
            topics.push(group::OffsetCommitTopic { name: t.name, partitions });
        }
    }
    let request = group::OffsetCommitRequest {
        group_id: req.group_id,
        generation_id_or_member_epoch: req.generation_id_or_member_epoch,
        member_id: req.member_id,
        group_instance_id: req.group_instance_id,
        // Only v2-v4 carry a retention; the codec's default is -1.
        retention_time_ms: if (2..=4).contains(&version) { req.retention_time_ms } else { -1 },
        topics,
        api_version: version,
    };
    (request, errors)
}

/// Per-topic partition results in the order Kafka's response builders keep:
/// topics in order of first appearance, partitions appended.
#[derive(Debug, Default)]
pub(crate) struct PartitionErrors {
    topics: Vec<(String, Vec<(i32, i16)>)>,
    /// Topic name -> index in `topics`: a request may name millions of
    /// distinct topics, so the lookup must not be linear.
    index: std::collections::HashMap<String, usize>,
}

impl PartitionErrors {
    pub(crate) fn push(&mut self, topic: &str, partition: i32, error_code: i16) {
        self.extend(topic, std::iter::once((partition, error_code)));
    }

    pub(crate) fn extend(&mut self, topic: &str, parts: impl IntoIterator<Item = (i32, i16)>) {
        let idx = match self.index.get(topic) {
            Some(&i) => i,
            None => {
                self.topics.push((topic.to_string(), Vec::new()));
                self.index.insert(topic.to_string(), self.topics.len() - 1);
                self.topics.len() - 1
            }
        };
        self.topics[idx].1.extend(parts);
    }

    pub(crate) fn into_topics(self) -> Vec<(String, Vec<(i32, i16)>)> {
        debug_assert_eq!(self.index.len(), self.topics.len());
        self.topics
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};

    #[test]
    fn partition_errors_keep_first_appearance_order_over_many_topics() {
        // One OffsetCommit or OffsetDelete may name a million unknown topics;
        // the builder was quadratic in them (a worker pinned for hours).
        let mut e = PartitionErrors::default();
        for i in 0..100_000 {
            e.push(&format!("t{i}"), 0, 3);
        }
        e.push("t7", 1, 3);
        e.extend("t0", [(1, 3), (2, 3)]);
        let topics = e.into_topics();
        assert_eq!(topics.len(), 100_000);
        assert_eq!(topics[0], ("t0".to_string(), vec![(0, 3), (1, 3), (2, 3)]));
        assert_eq!(topics[7], ("t7".to_string(), vec![(0, 3), (1, 3)]));
        assert_eq!(topics[99_999].0, "t99999");
    }

    use crate::handlers::topic_ids::image_with;

    fn part(p: i32) -> OffsetCommitRequestPartition {
        OffsetCommitRequestPartition { partition_index: p, committed_offset: 5, ..Default::default() }
    }

    #[test]
    fn unknown_topics_and_partitions_are_answered_here() {
        let image = image_with("t", 2);
        let req = OffsetCommitRequest {
            group_id: "g".into(),
            retention_time_ms: 1000,
            topics: vec![
                OffsetCommitRequestTopic { name: "nope".into(), partitions: vec![part(0)], ..Default::default() },
                OffsetCommitRequestTopic { name: "t".into(), partitions: vec![part(0), part(2), part(-1), part(1)], ..Default::default() },
            ],
            ..Default::default()
        };
        let (r, errors) = split_known(req.clone(), 2, &image, |_| true);
        assert_eq!(r.retention_time_ms, 1000);
        assert_eq!(r.api_version, 2);
        assert_eq!(r.topics.len(), 1);
        assert_eq!(r.topics[0].partitions.iter().map(|p| p.partition_index).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(
            errors.into_topics(),
            vec![
                ("nope".to_string(), vec![(0, UNKNOWN_TOPIC_OR_PARTITION)]),
                ("t".to_string(), vec![(2, UNKNOWN_TOPIC_OR_PARTITION), (-1, UNKNOWN_TOPIC_OR_PARTITION)]),
            ]
        );
        let (r, _) = split_known(req, 5, &image, |_| true);
        assert_eq!(r.retention_time_ms, -1);
    }

    #[test]
    fn v10_names_topics_by_id_and_unknown_ids_are_taken_out() {
        let image = image_with("t", 2);
        let id = image.topic("t").unwrap().id;
        let other = Uuid([9; 16]);
        let mut req = OffsetCommitRequest {
            group_id: "g".into(),
            topics: vec![
                OffsetCommitRequestTopic { topic_id: other, partitions: vec![part(0), part(1)], ..Default::default() },
                OffsetCommitRequestTopic { topic_id: id, partitions: vec![part(1)], ..Default::default() },
            ],
            ..Default::default()
        };
        assert_eq!(resolve_topic_ids(&mut req, &image), vec![(other, vec![0, 1])]);
        assert_eq!(req.topics.len(), 1);
        assert_eq!((req.topics[0].name.as_str(), req.topics[0].topic_id), ("t", id));
        let (r, errors) = split_known(req, 10, &image, |_| true);
        assert_eq!(r.topics[0].name, "t");
        assert!(errors.into_topics().is_empty());
    }

    #[test]
    fn v10_is_topic_ids_on_the_wire() {
        use crate::protocol::Writer;
        let resp = OffsetCommitResponse {
            throttle_time_ms: 0,
            topics: vec![OffsetCommitResponseTopic {
                name: "t".into(),
                topic_id: Uuid([7; 16]),
                partitions: vec![OffsetCommitResponsePartition { partition_index: 0, error_code: 100 }],
            }],
        };
        let encode = |v| {
            let mut w = Writer::new();
            resp.encode(&mut w, v);
            w.finish_contiguous()
        };
        let (v9, v10) = (encode(9), encode(10));
        // throttle, topics: [name "t" (2 bytes) | id (16)], partitions ...
        assert_eq!(&v9[5..7], &[2, b't'][..]);
        assert_eq!(&v10[5..21], &[7; 16][..]);
        assert_eq!(v10.len(), v9.len() + 14);
    }

    #[test]
    fn results_merge_by_topic() {
        let mut e = PartitionErrors::default();
        e.push("a", 3, 3);
        e.extend("b", [(0, 0)]);
        e.extend("a", [(0, 0), (1, 0)]);
        assert_eq!(e.into_topics(), vec![("a".into(), vec![(3, 3), (0, 0), (1, 0)]), ("b".into(), vec![(0, 0)])]);
    }
}
