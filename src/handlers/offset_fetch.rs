//! OffsetFetch (key 9): reads committed offsets. v1-7 ask for one group
//! (top-level group id and topics, topics = null from v2 meaning every
//! committed offset) and answer at the top level; v8+ batch groups. v1
//! has no top-level error: a group error goes on each partition, as Kafka
//! does. Unknown topics are not filtered: they answer offset -1. v10
//! (KIP-848, Kafka 4.4) names topics by id: an unknown id answers
//! UNKNOWN_TOPIC_ID on each partition, and with every offset asked for
//! (topics = null) a topic no longer in the metadata (no id) is left out.

use super::{ApiSpec, RequestContext};
use crate::controller::MetadataImage;
use crate::group;
use crate::protocol::{ErrorCode, Uuid};
use crate::protocol::messages::offset_fetch_request::OffsetFetchRequest;
use crate::protocol::messages::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use crate::security::authorizer::{AclOperation, ResourceType};

/// Version 0 (ZooKeeper offsets) was removed in Kafka 4.0 (KIP-896).
pub const SPEC: ApiSpec = ApiSpec { api_key: 9, name: "OffsetFetch", min_version: 1, max_version: 10 };

pub async fn handle(ctx: &RequestContext<'_>, req: OffsetFetchRequest) -> OffsetFetchResponse {
    let version = ctx.version();
    // v9+: a KIP-848 consumer group checks the member id and epoch.
    let checks: Vec<Option<i16>> = if version >= 9 {
        req.groups
            .iter()
            .map(|g| {
                ctx.broker.consumer_groups.validate_offset_fetch(&g.group_id, g.member_id.as_deref(), g.member_epoch).flatten()
            })
            .collect()
    } else {
        Vec::new()
    };
    let image = ctx.broker.controller.image();
    let mut req = req;
    let unknown_ids = if version >= TOPIC_IDS_VERSION { resolve_topic_ids(&mut req, &image) } else { Vec::new() };
    let mut responses = Vec::new();
    for (i, request) in to_group_requests(req, version).into_iter().enumerate() {
        // As Kafka: DESCRIBE on the group.
        if !ctx.authorized(AclOperation::Describe, ResourceType::Group, &request.group_id) {
            let error_code = ErrorCode::GroupAuthorizationFailed.code();
            responses.push(group::OffsetFetchResponse { group_id: request.group_id, error_code, topics: Vec::new() });
            continue;
        }
        if let Some(&Some(error_code)) = checks.get(i) {
            responses.push(group::OffsetFetchResponse { group_id: request.group_id, error_code, topics: Vec::new() });
            continue;
        }
        let all_topics = request.topics.is_none();
        let mut response = ctx.broker.groups.offset_fetch(request).await;
        if ctx.authorizing() {
            // Topics the principal may not DESCRIBE: left out of an
            // all-topics fetch, TOPIC_AUTHORIZATION_FAILED when named.
            let may_describe = |t: &str| ctx.authorized(AclOperation::Describe, ResourceType::Topic, t);
            if all_topics {
                response.topics.retain(|t| may_describe(&t.name));
            } else {
                for t in response.topics.iter_mut().filter(|t| !may_describe(&t.name)) {
                    for p in &mut t.partitions {
                        p.committed_offset = -1;
                        p.committed_leader_epoch = -1;
                        p.metadata = Some(String::new());
                        p.error_code = ErrorCode::TopicAuthorizationFailed.code();
                    }
                }
            }
        }
        responses.push(response);
    }
    let mut resp = to_wire(responses, version);
    if version >= TOPIC_IDS_VERSION {
        with_topic_ids(&mut resp, unknown_ids, &image);
    }
    resp
}

/// The first version that names topics by id.
const TOPIC_IDS_VERSION: i16 = 10;

/// v10+: gives each asked-for topic the name of its id and takes out the
/// topics whose id is unknown: per group, (id, partitions).
fn resolve_topic_ids(req: &mut OffsetFetchRequest, image: &MetadataImage) -> Vec<Vec<(Uuid, Vec<i32>)>> {
    req.groups
        .iter_mut()
        .map(|g| match g.topics.as_mut() {
            Some(topics) => super::topic_ids::take_unknown_topic_ids(topics, image, |t| t.topic_id, |t| &mut t.name, |t| {
                std::mem::take(&mut t.partition_indexes)
            }),
            None => Vec::new(),
        })
        .collect()
}

/// v10+: the id of each answered topic (topics without one, deleted since
/// their offsets were committed, are left out), then the unknown ids with
/// UNKNOWN_TOPIC_ID.
fn with_topic_ids(resp: &mut OffsetFetchResponse, unknown_ids: Vec<Vec<(Uuid, Vec<i32>)>>, image: &MetadataImage) {
    let mut unknown_ids = unknown_ids.into_iter();
    for g in &mut resp.groups {
        g.topics.retain_mut(|t| match image.topic(&t.name) {
            Some(info) => {
                t.topic_id = info.id;
                true
            }
            None => false,
        });
        let unknown = unknown_ids.next().unwrap_or_default();
        if g.error_code != group::errors::NONE {
            continue;
        }
        g.topics.extend(unknown.into_iter().map(|(topic_id, partitions)| OffsetFetchResponseTopics {
            name: String::new(),
            topic_id,
            partitions: partitions
                .into_iter()
                .map(|partition_index| OffsetFetchResponsePartitions {
                    partition_index,
                    committed_offset: -1,
                    committed_leader_epoch: -1,
                    metadata: Some(String::new()),
                    error_code: ErrorCode::UnknownTopicId.code(),
                })
                .collect(),
        }));
    }
}

/// One coordinator request per group asked for.
fn to_group_requests(req: OffsetFetchRequest, version: i16) -> Vec<group::OffsetFetchRequest> {
    let require_stable = req.require_stable;
    if version < 8 {
        return vec![group::OffsetFetchRequest {
            group_id: req.group_id,
            topics: req.topics.map(|ts| ts.into_iter().map(|t| (t.name, t.partition_indexes)).collect()),
            require_stable,
        }];
    }
    req.groups
        .into_iter()
        .map(|g| group::OffsetFetchRequest {
            group_id: g.group_id,
            topics: g.topics.map(|ts| ts.into_iter().map(|t| (t.name, t.partition_indexes)).collect()),
            require_stable,
        })
        .collect()
}

fn to_wire(responses: Vec<group::OffsetFetchResponse>, version: i16) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = responses
            .into_iter()
            .map(|g| OffsetFetchResponseGroup {
                group_id: g.group_id,
                error_code: g.error_code,
                topics: g
                    .topics
                    .into_iter()
                    .map(|t| OffsetFetchResponseTopics {
                        name: t.name,
                        topic_id: Uuid::NIL,
                        partitions: t
                            .partitions
                            .into_iter()
                            .map(|p| OffsetFetchResponsePartitions {
                                partition_index: p.partition_index,
                                committed_offset: p.committed_offset,
                                committed_leader_epoch: p.committed_leader_epoch,
                                metadata: p.metadata,
                                error_code: p.error_code,
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        return OffsetFetchResponse { groups, ..Default::default() };
    }
    debug_assert!(responses.len() == 1, "v0-7 ask for exactly one group");
    let Some(g) = responses.into_iter().next() else {
        return OffsetFetchResponse::default();
    };
    let group_error = g.error_code;
    let topics = g
        .topics
        .into_iter()
        .map(|t| OffsetFetchResponseTopic {
            name: t.name,
            partitions: t
                .partitions
                .into_iter()
                .map(|p| {
                    if version < 2 && group_error != group::errors::NONE {
                        // No top-level error before v2: put it on the partition.
                        OffsetFetchResponsePartition {
                            partition_index: p.partition_index,
                            committed_offset: -1,
                            committed_leader_epoch: -1,
                            metadata: Some(String::new()),
                            error_code: group_error,
                        }
                    } else {
                        OffsetFetchResponsePartition {
                            partition_index: p.partition_index,
                            committed_offset: p.committed_offset,
                            committed_leader_epoch: p.committed_leader_epoch,
                            metadata: p.metadata,
                            error_code: p.error_code,
                        }
                    }
                })
                .collect(),
        })
        .collect();
    OffsetFetchResponse { throttle_time_ms: 0, topics, error_code: group_error, groups: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
    };
    use crate::protocol::Writer;

    fn fetched(group_id: &str, error_code: i16) -> group::OffsetFetchResponse {
        group::OffsetFetchResponse {
            group_id: group_id.into(),
            error_code,
            topics: vec![group::OffsetFetchTopicResponse {
                name: "t".into(),
                partitions: vec![group::OffsetFetchPartitionResponse {
                    partition_index: 0,
                    committed_offset: 42,
                    committed_leader_epoch: 3,
                    metadata: Some("m".into()),
                    error_code: 0,
                }],
            }],
        }
    }

    #[test]
    fn old_versions_ask_for_the_top_level_group() {
        let req = OffsetFetchRequest {
            group_id: "g".into(),
            topics: Some(vec![OffsetFetchRequestTopic { name: "t".into(), partition_indexes: vec![0, 1] }]),
            require_stable: true,
            ..Default::default()
        };
        let rs = to_group_requests(req, 7);
        assert_eq!(rs.len(), 1);
        assert_eq!(rs[0].group_id, "g");
        assert_eq!(rs[0].topics, Some(vec![("t".to_string(), vec![0, 1])]));
        assert!(rs[0].require_stable);
        let all = OffsetFetchRequest { group_id: "g".into(), topics: None, ..Default::default() };
        assert_eq!(to_group_requests(all, 2)[0].topics, None);
    }

    #[test]
    fn v8_batches_groups() {
        let req = OffsetFetchRequest {
            groups: vec![
                OffsetFetchRequestGroup { group_id: "a".into(), topics: None, ..Default::default() },
                OffsetFetchRequestGroup {
                    group_id: "b".into(),
                    topics: Some(vec![OffsetFetchRequestTopics { name: "t".into(), partition_indexes: vec![2], ..Default::default() }]),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let rs = to_group_requests(req, 8);
        assert_eq!(rs.iter().map(|r| r.group_id.as_str()).collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(rs[0].topics, None);
        assert_eq!(rs[1].topics, Some(vec![("t".to_string(), vec![2])]));

        let w = to_wire(vec![fetched("a", 0), fetched("b", 15)], 8);
        assert!(w.topics.is_empty());
        assert_eq!(w.groups.len(), 2);
        assert_eq!(w.groups[1].error_code, 15);
        assert_eq!(w.groups[0].topics[0].partitions[0].committed_offset, 42);
        let mut out = Writer::new();
        w.encode(&mut out, 9);
    }

    #[test]
    fn v10_answers_by_topic_id() {
        let image = crate::handlers::topic_ids::image_with("t", 1);
        let id = image.topic("t").unwrap().id;
        let unknown = Uuid([9; 16]);
        let mut req = OffsetFetchRequest {
            groups: vec![OffsetFetchRequestGroup {
                group_id: "g".into(),
                topics: Some(vec![
                    OffsetFetchRequestTopics { topic_id: unknown, partition_indexes: vec![3], ..Default::default() },
                    OffsetFetchRequestTopics { topic_id: id, partition_indexes: vec![0], ..Default::default() },
                ]),
                ..Default::default()
            }],
            ..Default::default()
        };
        let unknown_ids = resolve_topic_ids(&mut req, &image);
        assert_eq!(unknown_ids, vec![vec![(unknown, vec![3])]]);
        let rs = to_group_requests(req, 10);
        assert_eq!(rs[0].topics, Some(vec![("t".to_string(), vec![0])]));

        let mut gone = fetched("g", 0);
        gone.topics[0].name = "deleted".into();
        let mut w = to_wire(vec![fetched("g", 0)], 10);
        with_topic_ids(&mut w, unknown_ids, &image);
        let topics = &w.groups[0].topics;
        assert_eq!(topics.iter().map(|t| t.topic_id).collect::<Vec<_>>(), vec![id, unknown]);
        assert_eq!(topics[1].partitions[0].error_code, 100);
        assert_eq!(topics[1].partitions[0].committed_offset, -1);
        let mut w = to_wire(vec![gone], 10);
        with_topic_ids(&mut w, vec![], &image);
        assert!(w.groups[0].topics.is_empty(), "a topic without an id is left out");
    }

    #[test]
    fn group_errors_per_version() {
        let w = to_wire(vec![fetched("g", 15)], 2);
        assert_eq!(w.error_code, 15);
        assert_eq!(w.topics[0].partitions[0].committed_offset, 42);
        let w = to_wire(vec![fetched("g", 15)], 1);
        let p = &w.topics[0].partitions[0];
        assert_eq!((p.error_code, p.committed_offset, p.metadata.as_deref()), (15, -1, Some("")));
        let w = to_wire(vec![fetched("g", 0)], 5);
        let p = &w.topics[0].partitions[0];
        assert_eq!((p.error_code, p.committed_offset, p.committed_leader_epoch), (0, 42, 3));
        assert!(w.groups.is_empty());
    }
}
