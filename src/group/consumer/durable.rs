//! The durable form of a consumer group: a JSON snapshot of its epochs,
//! members (ids, subscriptions, epochs, assignments) and target
//! assignment, kept as one `StoreRecord::ConsumerGroup` in the offsets
//! store and replaced whenever it changes, so that after a restart the
//! members carry on in their epochs without a rebalance. Sessions restart
//! at load (every member gets a full session timeout to come back).

use serde::{Deserialize, Serialize};

use super::state::Assignment;
use crate::protocol::Uuid;

/// Format version of the snapshot.
pub const SNAPSHOT_VERSION: u8 = 1;

pub type WireAssignment = Vec<([u8; 16], Vec<i32>)>;

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub struct GroupSnapshot {
    pub version: u8,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: Vec<MemberSnapshot>,
    pub target: Vec<(String, WireAssignment)>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub struct MemberSnapshot {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    /// 0 stable, 1 unrevoked partitions, 2 unreleased partitions.
    pub state: u8,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub assigned: WireAssignment,
    pub pending_revocation: WireAssignment,
}

pub fn to_wire(a: &Assignment) -> WireAssignment {
    a.iter().map(|(t, ps)| (t.0, ps.iter().copied().collect())).collect()
}

pub fn from_wire(a: WireAssignment) -> Assignment {
    a.into_iter().filter(|(_, ps)| !ps.is_empty()).map(|(t, ps)| (Uuid(t), ps.into_iter().collect())).collect()
}
