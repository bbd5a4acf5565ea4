//! OffsetDelete (key 47): deletes committed offsets of a group. As in
//! Kafka's KafkaApis, partitions unknown to the metadata answer
//! UNKNOWN_TOPIC_OR_PARTITION here; the coordinator handles the rest (and
//! answers group-level errors, which then replace everything). A KIP-848
//! consumer group's offsets are deleted here, unless subscribed.

use std::collections::HashSet;

use super::offset_commit::PartitionErrors;
use super::{ApiSpec, RequestContext};
use crate::controller::MetadataImage;
use crate::group;
use crate::group::consumer::state::ConsumerGroup;
use crate::group::errors::{GROUP_SUBSCRIBED_TO_TOPIC, NONE, UNKNOWN_TOPIC_OR_PARTITION};
use crate::group::offsets_store::StoreRecord;
use crate::protocol::messages::offset_delete_request::OffsetDeleteRequest;
use crate::protocol::messages::offset_delete_response::{
    OffsetDeleteResponse, OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};

pub const SPEC: ApiSpec = ApiSpec { api_key: 47, name: "OffsetDelete", min_version: 0, max_version: 0 };

pub async fn handle(ctx: &RequestContext<'_>, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let (request, errors) = split_known(req, &ctx.broker.controller.image());
    let response = match ctx.broker.consumer_groups.snapshot(&request.group_id) {
        Some(g) => consumer_group_offset_delete(ctx, &g, request).await,
        None => ctx.broker.groups.offset_delete(request).await,
    };
    merge(errors, response)
}

/// OffsetDelete of a KIP-848 consumer group (Kafka's
/// `ConsumerGroup.validateDeleteGroup` / `isSubscribedToTopic`): topics a
/// member subscribes to (by name or regex) answer GROUP_SUBSCRIBED_TO_TOPIC,
/// the other offsets are deleted.
async fn consumer_group_offset_delete(
    ctx: &RequestContext<'_>,
    g: &ConsumerGroup,
    req: group::OffsetDeleteRequest,
) -> group::OffsetDeleteResponse {
    let subscribed: HashSet<&str> = g
        .members
        .values()
        .flat_map(|m| m.subscribed_topic_names.iter().map(String::as_str))
        .chain(g.subscribed_metadata.keys().map(String::as_str))
        .collect();
    let store = ctx.broker.groups.store();
    let stored = store.group(&req.group_id);
    let mut records = Vec::new();
    let mut topics = Vec::with_capacity(req.topics.len());
    for (topic, partitions) in &req.topics {
        let is_subscribed = subscribed.contains(topic.as_str());
        let parts = partitions
            .iter()
            .map(|&p| {
                if is_subscribed {
                    return group::OffsetDeletePartitionResponse { partition_index: p, error_code: GROUP_SUBSCRIBED_TO_TOPIC };
                }
                if stored.as_ref().and_then(|s| s.offsets.get(topic)).is_some_and(|k| k.contains_key(&p)) {
                    records.push(StoreRecord::OffsetTombstone { group: req.group_id.clone(), topic: topic.clone(), partition: p });
                }
                group::OffsetDeletePartitionResponse { partition_index: p, error_code: NONE }
            })
            .collect();
        topics.push(group::OffsetDeleteTopicResponse { name: topic.clone(), partitions: parts });
    }
    if !records.is_empty() {
        if let Err(e) = store.append(records).await {
            return group::OffsetDeleteResponse { error_code: e.error_code(), topics: Vec::new() };
        }
    }
    group::OffsetDeleteResponse { error_code: NONE, topics }
}

fn split_known(req: OffsetDeleteRequest, image: &MetadataImage) -> (group::OffsetDeleteRequest, PartitionErrors) {
    let mut errors = PartitionErrors::default();
    let mut topics = Vec::new();
    for t in req.topics {
        let known_partitions = image.topic(&t.name).map_or(0, |info| info.partitions);
        let mut partitions = Vec::new();
        for p in t.partitions {
            if p.partition_index >= 0 && p.partition_index < known_partitions {
                partitions.push(p.partition_index);
            } else {
                errors.push(&t.name, p.partition_index, UNKNOWN_TOPIC_OR_PARTITION);
            }
        }
        if !partitions.is_empty() {
            topics.push((t.name, partitions));
        }
    }
    (group::OffsetDeleteRequest { group_id: req.group_id, topics }, errors)
}

/// Kafka's `OffsetDeleteResponse.Builder.merge`: a group-level error from
/// the coordinator replaces the partition errors found here.
fn merge(mut errors: PartitionErrors, response: group::OffsetDeleteResponse) -> OffsetDeleteResponse {
    if response.error_code != NONE {
        return OffsetDeleteResponse { error_code: response.error_code, throttle_time_ms: 0, topics: Vec::new() };
    }
    for t in response.topics {
        errors.extend(&t.name, t.partitions.into_iter().map(|p| (p.partition_index, p.error_code)));
    }
    OffsetDeleteResponse {
        error_code: NONE,
        throttle_time_ms: 0,
        topics: errors
            .into_topics()
            .into_iter()
            .map(|(name, parts)| OffsetDeleteResponseTopic {
                name,
                partitions: parts
                    .into_iter()
                    .map(|(partition_index, error_code)| OffsetDeleteResponsePartition { partition_index, error_code })
                    .collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::errors::GROUP_ID_NOT_FOUND;
    use crate::protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};

    #[test]
    fn unknown_partitions_answered_here_group_errors_win() {
        let req = OffsetDeleteRequest {
            group_id: "g".into(),
            topics: vec![OffsetDeleteRequestTopic {
                name: "nope".into(),
                partitions: vec![OffsetDeleteRequestPartition { partition_index: 0 }],
            }],
        };
        let (r, errors) = split_known(req, &MetadataImage::default());
        assert!(r.topics.is_empty());
        let ok = group::OffsetDeleteResponse { error_code: NONE, topics: Vec::new() };
        let w = merge(errors, ok);
        assert_eq!(w.topics[0].name, "nope");
        assert_eq!(w.topics[0].partitions[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);

        let mut errors = PartitionErrors::default();
        errors.push("nope", 0, UNKNOWN_TOPIC_OR_PARTITION);
        let w = merge(errors, group::OffsetDeleteResponse { error_code: GROUP_ID_NOT_FOUND, topics: Vec::new() });
        assert_eq!(w.error_code, GROUP_ID_NOT_FOUND);
        assert!(w.topics.is_empty());
    }
}
