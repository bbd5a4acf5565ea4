//! ConsumerGroupDescribe (key 69, KIP-848): epochs, members, current and
//! target assignments of consumer groups. A group id that is a classic
//! group, or no group, answers GROUP_ID_NOT_FOUND with Kafka's messages;
//! the admin client then falls back to DescribeGroups for classic groups.

use super::{ApiSpec, RequestContext};
use crate::controller::MetadataImage;
use crate::group::consumer::state::Assignment;
use crate::group::errors::{GROUP_ID_NOT_FOUND, NONE};
use crate::protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use crate::protocol::messages::consumer_group_describe_response::{
    Assignment as WireAssignment, ConsumerGroupDescribeResponse, DescribedGroup, Member, TopicPartitions,
};

pub const SPEC: ApiSpec = ApiSpec { api_key: 69, name: "ConsumerGroupDescribe", min_version: 0, max_version: 1 };

/// "Not requested": the schema's default for `authorized_operations`.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;
/// `member_type` of a consumer-protocol member (v1).
const CONSUMER_MEMBER_TYPE: i8 = 1;

pub async fn handle(ctx: &RequestContext<'_>, req: ConsumerGroupDescribeRequest) -> ConsumerGroupDescribeResponse {
    let image = ctx.broker.controller.image();
    let mut groups = Vec::with_capacity(req.group_ids.len());
    for group_id in req.group_ids {
        let Some(g) = ctx.broker.consumer_groups.snapshot(&group_id) else {
            let classic = ctx.broker.groups.describe_groups(std::slice::from_ref(&group_id)).await;
            let is_classic = classic.first().is_some_and(|d| d.error_code == NONE && d.group_state != "Dead");
            let message = if is_classic {
                format!("Group {group_id} is not a consumer group.")
            } else {
                format!("Group {group_id} not found.")
            };
            groups.push(DescribedGroup {
                error_code: GROUP_ID_NOT_FOUND,
                error_message: Some(message),
                group_id,
                authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
                ..Default::default()
            });
            continue;
        };
        let members = g
            .members
            .values()
            .map(|m| Member {
                member_id: m.member_id.clone(),
                instance_id: m.instance_id.clone(),
                rack_id: m.rack_id.clone(),
                member_epoch: m.member_epoch,
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                subscribed_topic_names: m.subscribed_topic_names.iter().cloned().collect(),
                subscribed_topic_regex: m.subscribed_topic_regex.clone(),
                assignment: to_wire(&m.assigned, &image),
                target_assignment: to_wire(g.target.get(&m.member_id).unwrap_or(&Assignment::new()), &image),
                member_type: CONSUMER_MEMBER_TYPE,
            })
            .collect();
        groups.push(DescribedGroup {
            error_code: NONE,
            error_message: None,
            group_state: g.state().as_str().to_string(),
            group_epoch: g.group_epoch,
            assignment_epoch: g.assignment_epoch,
            assignor_name: g.assignor.name().to_string(),
            members,
            authorized_operations: if req.include_authorized_operations {
                ctx.authorized_operations(crate::security::authorizer::ResourceType::Group, &g.group_id)
            } else {
                AUTHORIZED_OPERATIONS_OMITTED
            },
            group_id,
        });
    }
    ConsumerGroupDescribeResponse { throttle_time_ms: 0, groups }
}

/// Topic names come from the metadata image (a deleted topic's are "").
fn to_wire(a: &Assignment, image: &MetadataImage) -> WireAssignment {
    WireAssignment {
        topic_partitions: a
            .iter()
            .map(|(id, ps)| TopicPartitions {
                topic_id: *id,
                topic_name: image.topic_by_id(id).map(|t| t.name.clone()).unwrap_or_default(),
                partitions: ps.iter().copied().collect(),
            })
            .collect(),
    }
}
