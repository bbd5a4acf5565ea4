//! ConsumerGroupHeartbeat (key 68, KIP-848): a consumer-protocol member
//! joins (epoch 0), heartbeats with the partitions it owns, or leaves
//! (epoch -1 / -2). The request is checked as Kafka's
//! `throwIfConsumerGroupHeartbeatRequestIsInvalid` does; the group itself
//! is `crate::group::consumer`. v1 requires a client-generated member id
//! (KIP-1082); for v0 an empty one on join is generated here.
//! v1's `subscribed_topic_regex` (RE2 syntax, whole-name matches) is
//! resolved against the topics by the group, again when topics change.

use super::join_group::client_host;
use super::{ApiSpec, RequestContext};
use crate::group::consumer::state::{Assignment, Heartbeat, INVALID_REQUEST, LEAVE_GROUP_STATIC_MEMBER_EPOCH, UNSUPPORTED_VERSION};
use crate::protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use crate::protocol::messages::consumer_group_heartbeat_response::{
    Assignment as WireAssignment, ConsumerGroupHeartbeatResponse, TopicPartitions,
};
use crate::types::TimestampMs;

pub const SPEC: ApiSpec = ApiSpec { api_key: 68, name: "ConsumerGroupHeartbeat", min_version: 0, max_version: 1 };

/// Upper bound on the owned partitions one heartbeat may report.
const MAX_OWNED_PARTITIONS: usize = 1_000_000;

pub async fn handle(ctx: &RequestContext<'_>, req: ConsumerGroupHeartbeatRequest) -> ConsumerGroupHeartbeatResponse {
    if !super::api_versions::consumer_protocol_enabled(ctx) {
        return error(UNSUPPORTED_VERSION, "The consumer group protocol is not enabled (group.coordinator.rebalance.protocols).".into());
    }
    if let Err(message) = validate(&req, ctx.version()) {
        return error(INVALID_REQUEST, message);
    }
    let member_id = if req.member_id.is_empty() { crate::util::random_uuid().to_string() } else { req.member_id.clone() };
    let owned = req.topic_partitions.map(|tps| {
        let mut a = Assignment::new();
        for tp in tps {
            a.entry(tp.topic_id).or_default().extend(tp.partitions);
        }
        a
    });
    let hb = Heartbeat {
        member_id,
        member_epoch: req.member_epoch,
        instance_id: req.instance_id,
        rack_id: req.rack_id,
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topic_names: req.subscribed_topic_names,
        subscribed_topic_regex: req.subscribed_topic_regex,
        server_assignor: req.server_assignor,
        owned,
        client_id: ctx.client_id().to_string(),
        client_host: client_host(ctx.peer.ip()),
    };
    let image = ctx.broker.controller.image();
    let classic = &ctx.broker.groups;
    let group_id = req.group_id;
    // The group's own consumer.session.timeout.ms / heartbeat.interval.ms
    // (GROUP config resource), else the broker's.
    let (session_timeout_ms, heartbeat_interval_ms) =
        crate::group::group_config::consumer_timeouts_ms(ctx.broker.config(), image.group_config(&group_id));
    let take_over = || classic.take_over_empty_group(&group_id);
    let result = ctx.broker.consumer_groups.heartbeat_with(
        &group_id,
        hb,
        TimestampMs::now().0,
        Some(session_timeout_ms),
        &take_over,
        &*image,
    );
    let outcome = match result {
        Ok((outcome, None)) => Ok(outcome),
        Ok((outcome, Some(write))) => match write.await.unwrap_or(Err(crate::group::StoreError::Closed)) {
            Ok(()) => Ok(outcome),
            Err(e) => {
                tracing::warn!(group = %group_id, error = %e, "consumer group state not written");
                Err(crate::group::consumer::state::HeartbeatError { code: e.error_code(), message: e.to_string() })
            }
        },
        Err(e) => Err(e),
    };
    match outcome {
        Ok(outcome) => ConsumerGroupHeartbeatResponse {
            member_id: Some(outcome.member_id),
            member_epoch: outcome.member_epoch,
            heartbeat_interval_ms,
            assignment: outcome.assignment.map(to_wire),
            ..Default::default()
        },
        Err(e) => error(e.code, e.message),
    }
}

fn error(code: i16, message: String) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse { error_code: code, error_message: Some(message), ..Default::default() }
}

fn to_wire(a: Assignment) -> WireAssignment {
    WireAssignment {
        topic_partitions: a
            .into_iter()
            .map(|(topic_id, ps)| TopicPartitions { topic_id, partitions: ps.into_iter().collect() })
            .collect(),
    }
}

/// Kafka's request checks, with its messages.
fn validate(req: &ConsumerGroupHeartbeatRequest, version: i16) -> Result<(), String> {
    if req.group_id.is_empty() {
        return Err("GroupId can't be empty.".into());
    }
    if req.instance_id.as_deref() == Some("") {
        return Err("InstanceId can't be empty.".into());
    }
    if req.rack_id.as_deref() == Some("") {
        return Err("RackId can't be empty.".into());
    }
    if req.member_id.is_empty() && (version >= 1 || req.member_epoch != 0) {
        return Err("MemberId can't be empty.".into());
    }
    let owned: usize = req.topic_partitions.iter().flatten().map(|t| t.partitions.len()).sum();
    if owned > MAX_OWNED_PARTITIONS {
        return Err("Too many owned partitions.".into());
    }
    if req.member_epoch == 0 {
        if req.rebalance_timeout_ms == -1 {
            return Err("RebalanceTimeoutMs must be provided in first request.".into());
        }
        if req.topic_partitions.as_ref().is_none_or(|t| !t.is_empty()) {
            return Err("TopicPartitions must be empty when (re-)joining.".into());
        }
        let names = req.subscribed_topic_names.as_ref().is_some_and(|t| !t.is_empty());
        let regex = req.subscribed_topic_regex.as_ref().is_some_and(|r| !r.is_empty());
        if !names && !regex {
            return Err("SubscribedTopicNames or SubscribedTopicRegex must be set in first request.".into());
        }
    } else if req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
        if req.instance_id.is_none() {
            return Err("InstanceId can't be null.".into());
        }
    } else if req.member_epoch < LEAVE_GROUP_STATIC_MEMBER_EPOCH {
        return Err("MemberEpoch is invalid.".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join() -> ConsumerGroupHeartbeatRequest {
        ConsumerGroupHeartbeatRequest {
            group_id: "g".into(),
            member_id: "m".into(),
            member_epoch: 0,
            rebalance_timeout_ms: 1000,
            subscribed_topic_names: Some(vec!["t".into()]),
            topic_partitions: Some(Vec::new()),
            ..Default::default()
        }
    }

    #[test]
    fn requests_are_checked_as_kafka_does() {
        assert_eq!(validate(&join(), 1), Ok(()));
        assert!(validate(&ConsumerGroupHeartbeatRequest { group_id: String::new(), ..join() }, 1).is_err());
        assert!(validate(&ConsumerGroupHeartbeatRequest { member_id: String::new(), ..join() }, 1).is_err());
        assert_eq!(validate(&ConsumerGroupHeartbeatRequest { member_id: String::new(), ..join() }, 0), Ok(()));
        assert!(validate(&ConsumerGroupHeartbeatRequest { rebalance_timeout_ms: -1, ..join() }, 1).is_err());
        assert!(validate(&ConsumerGroupHeartbeatRequest { subscribed_topic_names: None, ..join() }, 1).is_err());
        let by_regex = ConsumerGroupHeartbeatRequest { subscribed_topic_names: None, subscribed_topic_regex: Some("t.*".into()), ..join() };
        assert_eq!(validate(&by_regex, 1), Ok(()));
        assert!(validate(&ConsumerGroupHeartbeatRequest { topic_partitions: None, ..join() }, 1).is_err());
        assert!(validate(&ConsumerGroupHeartbeatRequest { member_epoch: -3, ..join() }, 1).is_err());
        assert!(validate(&ConsumerGroupHeartbeatRequest { member_epoch: -2, ..join() }, 1).is_err());
        let beat = ConsumerGroupHeartbeatRequest { member_epoch: 3, rebalance_timeout_ms: -1, subscribed_topic_names: None, topic_partitions: None, ..join() };
        assert_eq!(validate(&beat, 1), Ok(()));
    }
}
