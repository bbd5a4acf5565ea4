//! Metadata (key 3): brokers (this node, at the address of the listener
//! the request came in on), and topics with their partitions, all led by
//! this node. Unknown topics are auto-created when both the request and
//! `auto.create.topics.enable` allow it. With an authorizer, as Kafka:
//! all-topics requests list only topics the principal may DESCRIBE, named
//! ones it may not get TOPIC_AUTHORIZATION_FAILED, and auto-creation needs
//! CREATE on the cluster or the topic.

use super::{ApiSpec, RequestContext};
use crate::controller::{topic_name, NewTopic, TopicInfo};
use crate::protocol::messages::metadata_request::MetadataRequest;
use crate::protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use crate::protocol::{ErrorCode, Uuid};
use crate::security::authorizer::{AclOperation, ResourceType};

pub const SPEC: ApiSpec = ApiSpec { api_key: 3, name: "Metadata", min_version: 0, max_version: 13 };

fn topic_entry(t: &TopicInfo, node_id: i32) -> MetadataResponseTopic {
    MetadataResponseTopic {
        error_code: 0,
        name: Some(t.name.clone()),
        topic_id: t.id,
        is_internal: t.is_internal(),
        partitions: (0..t.partitions)
            .map(|p| MetadataResponsePartition {
                error_code: 0,
                partition_index: p,
                leader_id: node_id,
                leader_epoch: t.leader_epoch,
                replica_nodes: vec![node_id],
                isr_nodes: vec![node_id],
                offline_replicas: vec![],
            })
            .collect(),
        ..Default::default()
    }
}

fn error_entry(name: Option<String>, id: Uuid, code: ErrorCode) -> MetadataResponseTopic {
    MetadataResponseTopic { error_code: code.code(), name, topic_id: id, partitions: vec![], ..Default::default() }
}

pub async fn handle(ctx: &RequestContext<'_>, req: MetadataRequest) -> MetadataResponse {
    let broker = ctx.broker;
    let node_id = broker.controller.node_id();
    let version = ctx.version();
    // v0: an empty list means all topics; v1+: null means all.
    let wanted = match req.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(t),
    };
    let allow_auto_create = req.allow_auto_topic_creation && broker.settings().auto_create_topics_enable;
    let mut topics = Vec::new();
    match wanted {
        None => {
            let image = broker.controller.image();
            // As Kafka: only the topics the principal may DESCRIBE.
            topics.extend(image.topics.values().filter(|t| may_describe(ctx, &t.name)).map(|t| topic_entry(t, node_id)));
        }
        Some(list) => {
            // Topics to auto-create, with the index of their placeholder in
            // `topics`: created together after the loop (one metadata write
            // for a request naming a thousand new topics, not a thousand).
            let mut to_create: Vec<(usize, String)> = Vec::new();
            let image = broker.controller.image();
            // Auto-creation needs CREATE on the cluster or on the topic.
            let may_create_all = !ctx.authorizing() || ctx.authorized_cluster(AclOperation::Create);
            for wanted in list {
                let name = match wanted.name {
                    Some(n) if !n.is_empty() || wanted.topic_id.is_nil() => n,
                    _ => match image.topic_by_id(&wanted.topic_id) {
                        Some(t) if !may_describe(ctx, &t.name) => {
                            topics.push(error_entry(None, wanted.topic_id, ErrorCode::TopicAuthorizationFailed));
                            continue;
                        }
                        Some(t) => {
                            topics.push(topic_entry(t, node_id));
                            continue;
                        }
                        None => {
                            topics.push(error_entry(None, wanted.topic_id, ErrorCode::UnknownTopicId));
                            continue;
                        }
                    },
                };
                if !may_describe(ctx, &name) {
                    topics.push(error_entry(Some(name), Uuid::NIL, ErrorCode::TopicAuthorizationFailed));
                    continue;
                }
                if let Some(t) = image.topic(&name) {
                    topics.push(topic_entry(t, node_id));
                    continue;
                }
                if topic_name::validate(&name).is_err() {
                    topics.push(error_entry(Some(name), Uuid::NIL, ErrorCode::InvalidTopicException));
                    continue;
                }
                if !allow_auto_create {
                    topics.push(error_entry(Some(name), Uuid::NIL, ErrorCode::UnknownTopicOrPartition));
                    continue;
                }
                if !may_create_all && !ctx.authorized(AclOperation::Create, ResourceType::Topic, &name) {
                    topics.push(error_entry(Some(name), Uuid::NIL, ErrorCode::TopicAuthorizationFailed));
                    continue;
                }
                // A name given twice is answered twice and created once.
                to_create.push((topics.len(), name.clone()));
                topics.push(error_entry(Some(name), Uuid::NIL, ErrorCode::UnknownTopicOrPartition));
            }
            if !to_create.is_empty() {
                let mut names: Vec<String> = to_create.iter().map(|(_, n)| n.clone()).collect();
                names.sort();
                names.dedup();
                let created = broker.auto_create_topics(&names).await;
                for (i, name) in to_create {
                    let Ok(k) = names.binary_search(&name) else { continue };
                    topics[i] = match &created[k] {
                        Ok(t) => topic_entry(t, node_id),
                        Err(e) => error_entry(Some(name), Uuid::NIL, e.code),
                    };
                }
            }
        }
    }
    // v8+: the operations the caller may do on each topic (and, v8-10, on
    // the cluster), when asked; Kafka's "not requested" value otherwise.
    if ctx.version() >= 8 && req.include_topic_authorized_operations {
        for t in topics.iter_mut().filter(|t| t.error_code == 0) {
            if let Some(name) = &t.name {
                t.topic_authorized_operations = ctx.authorized_operations(ResourceType::Topic, name);
            }
        }
    }
    let cluster_authorized_operations = if (8..=10).contains(&ctx.version()) && req.include_cluster_authorized_operations {
        ctx.authorized_operations(ResourceType::Cluster, crate::security::authorizer::CLUSTER_NAME)
    } else {
        i32::MIN
    };
    MetadataResponse {
        throttle_time_ms: 0,
        cluster_authorized_operations,
        brokers: vec![MetadataResponseBroker {
            node_id,
            host: ctx.listener.advertised_host.clone(),
            port: ctx.listener.advertised_port as i32,
            rack: broker.config().broker_rack.clone(),
        }],
        cluster_id: Some(broker.controller.cluster_id().to_string()),
        controller_id: node_id,
        topics,
        ..Default::default()
    }
}

fn may_describe(ctx: &RequestContext<'_>, topic: &str) -> bool {
    ctx.authorized(AclOperation::Describe, ResourceType::Topic, topic)
}

/// The `NewTopic` used for auto-creation: broker defaults throughout.
pub fn auto_create_request(name: &str) -> NewTopic {
    NewTopic { name: name.to_string(), partitions: -1, replication_factor: -1, assignments: vec![], configs: Default::default() }
}
