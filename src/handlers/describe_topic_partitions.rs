//! DescribeTopicPartitions (key 75, KIP-966): topics and their partitions
//! in pages, what `kafka-topics --describe` and AdminClient
//! `describeTopics` use when it is advertised (Kafka 3.8+ tools).
//!
//! As Kafka (`DescribeTopicPartitionsRequestHandler` and
//! `KRaftMetadataCache.describeTopicResponse`): the named topics (no names:
//! every topic), deduplicated and sorted by name, from the cursor's topic
//! on, the cursor's topic starting at its partition. A response holds at
//! most `response_partition_limit` partitions (clamped to 1..=2000, Kafka's
//! `max.request.partition.size.limit` default); when a topic does not fit,
//! `next_cursor` names the topic and partition the next request starts at,
//! and when the limit is reached exactly at a topic's end, the next topic
//! at partition 0. A named topic that does not exist is
//! UNKNOWN_TOPIC_OR_PARTITION (INVALID_TOPIC_EXCEPTION for an illegal
//! name) with no partitions; with no names, only existing topics are
//! listed. A cursor whose topic is not among the named ones, or with a
//! negative partition, is INVALID_REQUEST for every named topic (Kafka's
//! `getErrorResponse`). One node leads every partition: replicas and ISR
//! are this node, the eligible leader replicas and last known ELR are
//! empty lists, as Kafka 4.4 answers on one node.

use std::collections::BTreeSet;
use std::ops::Bound;

use super::{ApiSpec, RequestContext};
use crate::controller::{topic_name, MetadataImage, TopicInfo};
use crate::protocol::messages::describe_topic_partitions_request::DescribeTopicPartitionsRequest;
use crate::protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponse, DescribeTopicPartitionsResponsePartition,
    DescribeTopicPartitionsResponseTopic,
};
use crate::protocol::{ErrorCode, Uuid};

pub const SPEC: ApiSpec = ApiSpec { api_key: 75, name: "DescribeTopicPartitions", min_version: 0, max_version: 0 };

/// Kafka's `max.request.partition.size.limit` default: the most
/// partitions one response holds, whatever the request asks.
pub const MAX_PARTITIONS_PER_RESPONSE: i32 = 2000;

pub async fn handle(ctx: &RequestContext<'_>, req: DescribeTopicPartitionsRequest) -> DescribeTopicPartitionsResponse {
    let image = ctx.broker.controller.image();
    describe(&image, ctx.broker.controller.node_id(), req)
}

fn describe(image: &MetadataImage, node_id: i32, req: DescribeTopicPartitionsRequest) -> DescribeTopicPartitionsResponse {
    let named: BTreeSet<String> = req.topics.iter().map(|t| t.name.clone()).collect();
    let fetch_all = named.is_empty();
    let (cursor_topic, cursor_partition) = match &req.cursor {
        Some(c) => (c.topic_name.as_str(), c.partition_index),
        None => ("", 0),
    };
    if req.cursor.is_some() && ((!fetch_all && !named.contains(cursor_topic)) || cursor_partition < 0) {
        return DescribeTopicPartitionsResponse {
            topics: req
                .topics
                .into_iter()
                .map(|t| error_topic(t.name, ErrorCode::InvalidRequest))
                .collect(),
            ..Default::default()
        };
    }
    let limit = req.response_partition_limit.clamp(1, MAX_PARTITIONS_PER_RESPONSE);
    let mut remaining = limit;
    let mut resp = DescribeTopicPartitionsResponse::default();
    let from = (Bound::Included(cursor_topic), Bound::Unbounded);
    let names: Box<dyn Iterator<Item = &str>> = if fetch_all {
        Box::new(image.topics.range::<str, _>(from).map(|(n, _)| n.as_str()))
    } else {
        Box::new(named.range::<str, _>(from).map(String::as_str))
    };
    for name in names {
        if remaining == 0 {
            // The previous topics are complete: the next page starts here.
            resp.next_cursor = Some(Cursor { topic_name: name.to_string(), partition_index: 0 });
            break;
        }
        let Some(topic) = image.topic(name) else {
            let code = if topic_name::validate(name).is_ok() {
                ErrorCode::UnknownTopicOrPartition
            } else {
                ErrorCode::InvalidTopicException
            };
            resp.topics.push(error_topic(name.to_string(), code));
            continue;
        };
        let start = if name == cursor_topic { cursor_partition } else { 0 };
        let end = topic.partitions.min(start.saturating_add(remaining));
        let partitions: Vec<_> = (start..end).map(|p| partition(topic, p, node_id)).collect();
        remaining -= partitions.len() as i32;
        resp.topics.push(DescribeTopicPartitionsResponseTopic {
            error_code: 0,
            name: Some(topic.name.clone()),
            topic_id: topic.id,
            is_internal: topic.is_internal(),
            partitions,
            ..Default::default()
        });
        if end < topic.partitions {
            resp.next_cursor = Some(Cursor { topic_name: topic.name.clone(), partition_index: end });
            break;
        }
    }
    resp
}

fn partition(topic: &TopicInfo, index: i32, node_id: i32) -> DescribeTopicPartitionsResponsePartition {
    DescribeTopicPartitionsResponsePartition {
        error_code: 0,
        partition_index: index,
        leader_id: node_id,
        leader_epoch: topic.leader_epoch,
        replica_nodes: vec![node_id],
        isr_nodes: vec![node_id],
        eligible_leader_replicas: Some(vec![]),
        last_known_elr: Some(vec![]),
        offline_replicas: vec![],
    }
}

fn error_topic(name: String, code: ErrorCode) -> DescribeTopicPartitionsResponseTopic {
    DescribeTopicPartitionsResponseTopic {
        error_code: code.code(),
        is_internal: topic_name::is_internal(&name),
        name: Some(name),
        topic_id: Uuid::NIL,
        partitions: vec![],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::describe_topic_partitions_request::{Cursor as RequestCursor, TopicRequest};
    use std::sync::Arc;

    fn image(topics: &[(&str, i32)]) -> MetadataImage {
        let mut image = MetadataImage::default();
        for (i, (name, partitions)) in topics.iter().enumerate() {
            let id = Uuid([i as u8 + 1; 16]);
            image.ids.insert(id, name.to_string());
            image.topics.insert(
                name.to_string(),
                Arc::new(TopicInfo {
                    name: name.to_string(),
                    id,
                    partitions: *partitions,
                    leader_epoch: 0,
                    configs: Default::default(),
                }),
            );
        }
        image
    }

    fn req(names: &[&str], limit: i32, cursor: Option<(&str, i32)>) -> DescribeTopicPartitionsRequest {
        DescribeTopicPartitionsRequest {
            topics: names.iter().map(|n| TopicRequest { name: n.to_string() }).collect(),
            response_partition_limit: limit,
            cursor: cursor.map(|(t, p)| RequestCursor { topic_name: t.to_string(), partition_index: p }),
        }
    }

    /// (name, error, first partition, partition count) per topic, and the cursor.
    type Shape = (Vec<(String, i16, i32, usize)>, Option<(String, i32)>);

    fn shape(r: &DescribeTopicPartitionsResponse) -> Shape {
        (
            r.topics
                .iter()
                .map(|t| {
                    let first = t.partitions.first().map_or(-1, |p| p.partition_index);
                    (t.name.clone().unwrap_or_default(), t.error_code, first, t.partitions.len())
                })
                .collect(),
            r.next_cursor.as_ref().map(|c| (c.topic_name.clone(), c.partition_index)),
        )
    }

    fn s(n: &str) -> String {
        n.to_string()
    }

    #[test]
    fn every_topic_sorted_when_none_is_named() {
        let img = image(&[("b", 2), ("a", 1)]);
        let r = describe(&img, 1, req(&[], 2000, None));
        assert_eq!(shape(&r), (vec![(s("a"), 0, 0, 1), (s("b"), 0, 0, 2)], None));
        let p = &r.topics[1].partitions[1];
        assert_eq!((p.leader_id, p.replica_nodes.clone(), p.isr_nodes.clone()), (1, vec![1], vec![1]));
        assert_eq!(p.eligible_leader_replicas, Some(vec![]));
        assert_eq!(r.topics[0].topic_id, Uuid([2; 16]));
    }

    #[test]
    fn a_topic_larger_than_the_limit_is_paged_by_the_cursor() {
        let img = image(&[("a", 5), ("b", 1)]);
        let r = describe(&img, 1, req(&["b", "a"], 2, None));
        assert_eq!(shape(&r), (vec![(s("a"), 0, 0, 2)], Some((s("a"), 2))));
        let r = describe(&img, 1, req(&["b", "a"], 2, Some(("a", 2))));
        assert_eq!(shape(&r), (vec![(s("a"), 0, 2, 2)], Some((s("a"), 4))));
        // The limit reached exactly at a topic's end: the next topic, from 0.
        let r = describe(&img, 1, req(&["b", "a"], 1, Some(("a", 4))));
        assert_eq!(shape(&r), (vec![(s("a"), 0, 4, 1)], Some((s("b"), 0))));
        let r = describe(&img, 1, req(&["b", "a"], 2, Some(("b", 0))));
        assert_eq!(shape(&r), (vec![(s("b"), 0, 0, 1)], None));
    }

    #[test]
    fn the_limit_is_clamped() {
        let img = image(&[("a", 3)]);
        let r = describe(&img, 1, req(&[], 0, None));
        assert_eq!(shape(&r), (vec![(s("a"), 0, 0, 1)], Some((s("a"), 1))));
        let img = image(&[("a", MAX_PARTITIONS_PER_RESPONSE + 1)]);
        let r = describe(&img, 1, req(&[], i32::MAX, None));
        assert_eq!(r.topics[0].partitions.len(), MAX_PARTITIONS_PER_RESPONSE as usize);
        assert_eq!(r.next_cursor.map(|c| c.partition_index), Some(MAX_PARTITIONS_PER_RESPONSE));
    }

    #[test]
    fn unknown_and_illegal_names_are_errors_when_named() {
        let img = image(&[("a", 1)]);
        let r = describe(&img, 1, req(&["zz", "a", "a", "bad/name"], 10, None));
        assert_eq!(shape(&r).0, vec![(s("a"), 0, 0, 1), (s("bad/name"), 17, -1, 0), (s("zz"), 3, -1, 0)]);
        assert_eq!(r.topics[2].topic_id, Uuid::NIL);
    }

    #[test]
    fn a_cursor_outside_the_named_topics_is_an_invalid_request() {
        let img = image(&[("a", 1), ("b", 1)]);
        let r = describe(&img, 1, req(&["a"], 10, Some(("b", 0))));
        assert_eq!(shape(&r), (vec![(s("a"), 42, -1, 0)], None));
        let r = describe(&img, 1, req(&["a"], 10, Some(("a", -1))));
        assert_eq!(shape(&r), (vec![(s("a"), 42, -1, 0)], None));
        // With no names, a cursor at any topic is fine, even one that is gone.
        let r = describe(&img, 1, req(&[], 10, Some(("aa", 0))));
        assert_eq!(shape(&r), (vec![(s("b"), 0, 0, 1)], None));
    }

    #[test]
    fn a_cursor_past_a_topics_end_gives_it_no_partitions() {
        let img = image(&[("a", 2), ("b", 1)]);
        let r = describe(&img, 1, req(&[], 10, Some(("a", 7))));
        assert_eq!(shape(&r), (vec![(s("a"), 0, -1, 0), (s("b"), 0, 0, 1)], None));
    }
}
