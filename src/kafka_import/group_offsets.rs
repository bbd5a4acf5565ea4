//! Decoder of Apache Kafka's `__consumer_offsets` partitions: committed
//! offsets and classic group metadata, the latest record per key winning
//! (what compaction keeps), tombstones (null values) deleting.
//!
//! A record key starts with an i16 that is both its version and its type
//! (Kafka's `CoordinatorRecordSerde`); values start with their own i16
//! version. Schemas, from Kafka's
//! `group-coordinator/src/main/resources/common/message/`:
//!
//! - key 0/1 `OffsetCommitKey`: group, topic (i16-length strings), partition i32;
//!   value `OffsetCommitValue` v0-4: offset i64, leaderEpoch i32 (v3+),
//!   metadata string, commitTimestamp i64, expireTimestamp i64 (v1 only);
//!   v4 is flexible (compact string, tagged fields);
//! - key 2 `GroupMetadataKey`: group; value `GroupMetadataValue` v0-4:
//!   protocolType, generation i32, protocol, leader, currentStateTimestamp
//!   i64 (v2+), members (only their count is read);
//! - keys 3 and up (KIP-848 consumer groups, share groups): counted, ignored.
//!
//! Offsets committed inside a transaction apply only when its COMMIT marker
//! follows; an ABORT (or no marker) drops them.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use super::batches::{walk, Item, WalkReport};
use crate::protocol::{DecodeError, Reader};
use crate::types::{Offset, TimestampMs};

const OFFSET_COMMIT_KEY_V0: i16 = 0;
const OFFSET_COMMIT_KEY_V1: i16 = 1;
const GROUP_METADATA_KEY: i16 = 2;

/// Offsets buffered for one open transaction before the rest are dropped.
pub const MAX_PENDING_PER_PRODUCER: usize = 1 << 20;

/// A decoded `__consumer_offsets` key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupKey {
    Offset { group: String, topic: String, partition: i32 },
    Group { group: String },
    /// A record type klamm does not import (the KIP-848 and share-group
    /// records).
    Other { record_type: i16 },
}

/// A committed offset as Kafka stored it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: Offset,
    /// -1 when unknown (values before v3).
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: TimestampMs,
    /// Only v1 carries one (an explicit retention time).
    pub expire_timestamp: Option<TimestampMs>,
}

/// The part of a classic group's metadata klamm keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupValue {
    /// Empty for groups that never had a protocol (offsets-only groups).
    pub protocol_type: String,
    pub generation: i32,
    /// When the group entered its state (-1 before v2).
    pub current_state_timestamp: TimestampMs,
    pub members: usize,
}

fn reader(bytes: &[u8]) -> Reader {
    Reader::new(Bytes::copy_from_slice(bytes))
}

/// Decodes a record key.
pub fn decode_key(key: &[u8]) -> Result<GroupKey, DecodeError> {
    let mut r = reader(key);
    let record_type = r.i16()?;
    let key = match record_type {
        OFFSET_COMMIT_KEY_V0 | OFFSET_COMMIT_KEY_V1 => {
            GroupKey::Offset { group: r.string(false)?, topic: r.string(false)?, partition: r.i32()? }
        }
        GROUP_METADATA_KEY => GroupKey::Group { group: r.string(false)? },
        record_type => return Ok(GroupKey::Other { record_type }),
    };
    if r.remaining() != 0 {
        return Err(DecodeError::InvalidLength(r.remaining() as i64));
    }
    Ok(key)
}

/// Decodes an `OffsetCommitValue` (any version; versions above 4 by their
/// v4 prefix).
pub fn decode_offset_value(value: &[u8]) -> Result<OffsetValue, DecodeError> {
    let mut r = reader(value);
    let version = r.i16()?;
    if version < 0 {
        return Err(DecodeError::UnsupportedVersion { api_key: OFFSET_COMMIT_KEY_V1, version });
    }
    let flexible = version >= 4;
    let offset = Offset(r.i64()?);
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string(flexible)?;
    let commit_timestamp = TimestampMs(r.i64()?);
    let expire_timestamp = if version == 1 { Some(TimestampMs(r.i64()?)).filter(|t| t.0 >= 0) } else { None };
    if flexible {
        for _ in 0..r.tagged_count()? {
            r.tagged_field()?;
        }
    }
    if version <= 4 && r.remaining() != 0 {
        return Err(DecodeError::InvalidLength(r.remaining() as i64));
    }
    Ok(OffsetValue { offset, leader_epoch, metadata, commit_timestamp, expire_timestamp })
}

/// Decodes the front of a `GroupMetadataValue` (members are only counted).
pub fn decode_group_value(value: &[u8]) -> Result<GroupValue, DecodeError> {
    let mut r = reader(value);
    let version = r.i16()?;
    if version < 0 {
        return Err(DecodeError::UnsupportedVersion { api_key: GROUP_METADATA_KEY, version });
    }
    let flexible = version >= 4;
    let protocol_type = r.string(flexible)?;
    let generation = r.i32()?;
    let _protocol = r.nullable_string(flexible)?;
    let _leader = r.nullable_string(flexible)?;
    let current_state_timestamp = TimestampMs(if version >= 2 { r.i64()? } else { -1 });
    let members = r.array_len(flexible)?.unwrap_or(0);
    Ok(GroupValue { protocol_type, generation, current_state_timestamp, members })
}

/// The live state of the `__consumer_offsets` partitions read so far.
#[derive(Clone, Debug, Default)]
pub struct GroupState {
    /// (group, topic, partition) -> committed offset.
    pub offsets: BTreeMap<(String, String, i32), OffsetValue>,
    /// group -> its classic metadata.
    pub groups: BTreeMap<String, GroupValue>,
    /// Offset commits of open transactions, by producer id.
    pending: HashMap<i64, Vec<(GroupKey, Option<OffsetValue>)>>,
    /// Records of types klamm does not import, by type.
    pub other_records: BTreeMap<i16, u64>,
    /// Records whose key or value did not decode (skipped).
    pub malformed_records: u64,
    /// Transactional offset commits dropped (aborted or never committed).
    pub aborted_offsets: u64,
}

impl GroupState {
    /// Applies one record of a data batch.
    pub fn apply_record(&mut self, key: Option<&[u8]>, value: Option<&[u8]>, transactional_producer: Option<i64>) {
        let Some(key) = key.and_then(|k| decode_key(k).ok()) else {
            self.malformed_records += 1;
            return;
        };
        match key {
            GroupKey::Other { record_type } => *self.other_records.entry(record_type).or_default() += 1,
            GroupKey::Group { group } => match value.map(decode_group_value) {
                None => {
                    self.groups.remove(&group);
                }
                Some(Ok(v)) => {
                    self.groups.insert(group, v);
                }
                Some(Err(_)) => self.malformed_records += 1,
            },
            key @ GroupKey::Offset { .. } => {
                let value = match value.map(decode_offset_value) {
                    None => None,
                    Some(Ok(v)) => Some(v),
                    Some(Err(_)) => {
                        self.malformed_records += 1;
                        return;
                    }
                };
                match transactional_producer {
                    Some(pid) => {
                        let pending = self.pending.entry(pid).or_default();
                        if pending.len() < MAX_PENDING_PER_PRODUCER {
                            pending.push((key, value));
                        } else {
                            self.aborted_offsets += 1;
                        }
                    }
                    None => self.put_offset(key, value),
                }
            }
        }
    }

    fn put_offset(&mut self, key: GroupKey, value: Option<OffsetValue>) {
        let GroupKey::Offset { group, topic, partition } = key else { return };
        let k = (group, topic, partition);
        match value {
            Some(v) => {
                self.offsets.insert(k, v);
            }
            None => {
                self.offsets.remove(&k);
            }
        }
    }

    /// Ends a transaction of `producer_id`.
    pub fn apply_marker(&mut self, producer_id: i64, commit: bool) {
        let pending = self.pending.remove(&producer_id).unwrap_or_default();
        if commit {
            for (key, value) in pending {
                self.put_offset(key, value);
            }
        } else {
            self.aborted_offsets += pending.len() as u64;
        }
    }

    /// Replays one segment of a `__consumer_offsets` partition.
    pub fn apply_file(&mut self, data: &[u8]) -> WalkReport {
        walk(data, |item| match item {
            Item::Record { key, value, transactional_producer, .. } => self.apply_record(key, value, transactional_producer),
            Item::TxnMarker { producer_id, commit } => self.apply_marker(producer_id, commit),
        })
    }

    /// Ends the replay of one partition: transactions without a marker
    /// never committed.
    pub fn finish_partition(&mut self) {
        self.aborted_offsets += self.pending.drain().map(|(_, p)| p.len() as u64).sum::<u64>();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::kafka_import::batches::tests::{batch, compressed, control_batch, txn_batch};
    use crate::protocol::Writer;

    pub(crate) fn offset_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
        let mut w = Writer::new();
        w.i16(1);
        w.string(group, false);
        w.string(topic, false);
        w.i32(partition);
        w.finish_contiguous().to_vec()
    }

    pub(crate) fn group_key(group: &str) -> Vec<u8> {
        let mut w = Writer::new();
        w.i16(2);
        w.string(group, false);
        w.finish_contiguous().to_vec()
    }

    /// An OffsetCommitValue of `version` (v1 with an expire timestamp, v4
    /// with a tagged field).
    pub(crate) fn offset_value(version: i16, offset: i64, epoch: i32, metadata: &str) -> Vec<u8> {
        let mut w = Writer::new();
        w.i16(version);
        w.i64(offset);
        if version >= 3 {
            w.i32(epoch);
        }
        w.string(metadata, version >= 4);
        w.i64(1_700_000_000_000);
        if version == 1 {
            w.i64(1_800_000_000_000);
        }
        if version >= 4 {
            w.uvarint(1);
            w.uvarint(0);
            w.uvarint(16);
            w.uuid(&crate::protocol::Uuid([9; 16]));
        }
        w.finish_contiguous().to_vec()
    }

    /// A GroupMetadataValue v3 (or v4, flexible) with `members` members.
    pub(crate) fn group_value(version: i16, protocol_type: &str, generation: i32, members: usize) -> Vec<u8> {
        let flexible = version >= 4;
        let mut w = Writer::new();
        w.i16(version);
        w.string(protocol_type, flexible);
        w.i32(generation);
        w.nullable_string(if members > 0 { Some("range") } else { None }, flexible);
        w.nullable_string(if members > 0 { Some("m-1") } else { None }, flexible);
        w.i64(1_700_000_000_123);
        w.array_len(Some(members), flexible);
        for i in 0..members {
            w.string(&format!("m-{i}"), flexible);
            w.nullable_string(None, flexible);
            w.string("client", flexible);
            w.string("/127.0.0.1", flexible);
            w.i32(300_000);
            w.i32(45_000);
            w.bytes(&Bytes::from_static(b"sub"), flexible);
            w.bytes(&Bytes::from_static(b"asg"), flexible);
            if flexible {
                w.uvarint(0);
            }
        }
        if flexible {
            w.uvarint(0);
        }
        w.finish_contiguous().to_vec()
    }

    #[test]
    fn keys_and_values_of_every_version_decode() {
        assert_eq!(
            decode_key(&offset_key("g", "orders", 3)).unwrap(),
            GroupKey::Offset { group: "g".into(), topic: "orders".into(), partition: 3 }
        );
        let mut v0 = offset_key("g", "t", 0);
        v0[1] = 0;
        assert!(matches!(decode_key(&v0).unwrap(), GroupKey::Offset { .. }));
        assert_eq!(decode_key(&group_key("g")).unwrap(), GroupKey::Group { group: "g".into() });
        assert_eq!(decode_key(&[0, 5, 1, 2, 3]).unwrap(), GroupKey::Other { record_type: 5 });
        for version in 0..=4 {
            let v = decode_offset_value(&offset_value(version, 42, 7, "meta")).unwrap();
            assert_eq!(v.offset, Offset(42), "v{version}");
            assert_eq!(v.metadata, "meta");
            assert_eq!(v.leader_epoch, if version >= 3 { 7 } else { -1 });
            assert_eq!(v.commit_timestamp, TimestampMs(1_700_000_000_000));
            assert_eq!(v.expire_timestamp, (version == 1).then_some(TimestampMs(1_800_000_000_000)));
        }
        for version in [3, 4] {
            let g = decode_group_value(&group_value(version, "consumer", 5, 2)).unwrap();
            assert_eq!((g.protocol_type.as_str(), g.generation, g.members), ("consumer", 5, 2));
            assert_eq!(g.current_state_timestamp, TimestampMs(1_700_000_000_123));
        }
        let mut trailing = offset_value(3, 1, 1, "");
        trailing.push(0);
        assert!(decode_offset_value(&trailing).is_err());
    }

    #[test]
    fn truncated_and_garbage_input_never_panics() {
        for rec in [offset_key("g", "t", 1), group_key("g")] {
            for cut in 0..rec.len() {
                assert!(decode_key(&rec[..cut]).is_err());
            }
        }
        for v in 0..=4 {
            let rec = offset_value(v, 1, 2, "abc");
            for cut in 0..rec.len() {
                assert!(decode_offset_value(&rec[..cut]).is_err(), "v{v} cut {cut}");
            }
        }
        let rec = group_value(4, "consumer", 1, 1);
        for cut in 0..rec.len() {
            let _ = decode_group_value(&rec[..cut]);
        }
        let mut seed = 3u64;
        let mut state = GroupState::default();
        for n in 0..400 {
            let data: Vec<u8> = (0..n % 50).map(|_| crate::protocol::sample::next(&mut seed) as u8).collect();
            let _ = decode_key(&data);
            let _ = decode_offset_value(&data);
            let _ = decode_group_value(&data);
            state.apply_record(Some(&data), Some(&data), None);
            state.apply_file(&data);
        }
    }

    #[test]
    fn latest_wins_tombstones_delete_and_transactions_follow_markers() {
        let k1 = offset_key("g", "orders", 0);
        let k2 = offset_key("g", "orders", 1);
        let k3 = offset_key("other", "orders", 0);
        let gk = group_key("g");
        let gone = group_key("gone");
        let v = |o| offset_value(3, o, 0, "");
        let mut data = batch(0, &[
            (Some(&gk), Some(&group_value(3, "consumer", 1, 1))),
            (Some(&k1), Some(&v(5))),
            (Some(&k2), Some(&v(6))),
            (Some(&k1), Some(&v(9))),
            (Some(&k2), None),
            (Some(&gone), Some(&group_value(3, "", 0, 0))),
            (Some(&gone), None),
            (Some(&[0, 8, 0, 0][..]), Some(&b"x"[..])),
            (Some(&b"\xff"[..]), Some(&b"x"[..])),
        ]);
        data.extend(batch(9, &[(Some(&gk), Some(&group_value(4, "consumer", 2, 0)))]));
        // Producer 7 commits, producer 8 aborts, producer 9 never ends.
        data.extend(txn_batch(10, 7, &[(Some(&k3), Some(&v(100)))]));
        data.extend(txn_batch(11, 8, &[(Some(&k3), Some(&v(200)))]));
        data.extend(control_batch(12, 8, 0));
        data.extend(control_batch(13, 7, 1));
        data.extend(txn_batch(14, 9, &[(Some(&k1), Some(&v(300)))]));
        // A compressed batch is skipped (and reported).
        data.extend(compressed(batch(15, &[(Some(&k1), Some(&v(400)))]), 2));
        let mut state = GroupState::default();
        let report = state.apply_file(&data);
        state.finish_partition();
        assert_eq!(report.compressed_batches, 1);
        assert_eq!(report.compressed_codecs, ["snappy"]);
        let offsets: Vec<_> = state.offsets.iter().map(|((g, t, p), v)| (g.as_str(), t.as_str(), *p, v.offset.0)).collect();
        assert_eq!(offsets, [("g", "orders", 0, 9), ("other", "orders", 0, 100)]);
        assert_eq!(state.groups.len(), 1);
        assert_eq!(state.groups["g"].generation, 2);
        assert_eq!(state.groups["g"].members, 0);
        assert_eq!(state.other_records[&8], 1);
        assert_eq!(state.malformed_records, 1);
        assert_eq!(state.aborted_offsets, 2);
    }
}
