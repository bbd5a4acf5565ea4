//! OffsetDelete (key 47): deletes committed offsets of a group. As in
//! Kafka's KafkaApis, partitions unknown to the metadata answer
//! UNKNOWN_TOPIC_OR_PARTITION here; the coordinator handles the rest (and
//! answers group-level errors, which then replace everything).

use super::offset_commit::PartitionErrors;
use super::{ApiSpec, RequestContext};
use crate::controller::MetadataImage;
use crate::group;
use crate::group::errors::{NONE, UNKNOWN_TOPIC_OR_PARTITION};
use crate::protocol::messages::offset_delete_request::OffsetDeleteRequest;
use crate::protocol::messages::offset_delete_response::{
    OffsetDeleteResponse, OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};

pub const SPEC: ApiSpec = ApiSpec { api_key: 47, name: "OffsetDelete", min_version: 0, max_version: 0 };

pub async fn handle(ctx: &RequestContext<'_>, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let (request, errors) = split_known(req, &ctx.broker.controller.image());
    let response = ctx.broker.groups.offset_delete(request).await;
    merge(errors, response)
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
