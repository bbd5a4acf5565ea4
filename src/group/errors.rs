//! Kafka error codes used by the group coordinator, and the typed errors of
//! the durable offsets store.
//!
//! The codes are the wire values of Kafka's `Errors` enum; the lead may later
//! unify them with the protocol module's table.

use std::io;

/// No error.
pub const NONE: i16 = 0;
/// An unexpected server-side failure.
pub const UNKNOWN_SERVER_ERROR: i16 = -1;
/// The topic or partition does not exist.
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// Committed offset metadata is larger than `offset.metadata.max.bytes`.
pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
/// The coordinator is still loading its state.
pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
/// The coordinator is not running (starting up or shutting down).
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
/// This broker is not (or no longer) the coordinator of the group.
pub const NOT_COORDINATOR: i16 = 16;
/// The generation id in the request is not the group's current one.
pub const ILLEGAL_GENERATION: i16 = 22;
/// The member's protocol type or protocols do not match the group's.
pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
/// The group id is empty (or otherwise invalid).
pub const INVALID_GROUP_ID: i16 = 24;
/// The member id is not a member of the group.
pub const UNKNOWN_MEMBER_ID: i16 = 25;
/// The session timeout is outside the broker's allowed range.
pub const INVALID_SESSION_TIMEOUT: i16 = 26;
/// The group is rebalancing: the member must rejoin.
pub const REBALANCE_IN_PROGRESS: i16 = 27;
/// The offset commit could not be stored because of its size.
pub const INVALID_COMMIT_OFFSET_SIZE: i16 = 28;
/// Not authorized to access the group.
pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
/// The group still has members.
pub const NON_EMPTY_GROUP: i16 = 68;
/// The group does not exist.
pub const GROUP_ID_NOT_FOUND: i16 = 69;
/// A dynamic member must rejoin with the member id the broker handed out.
pub const MEMBER_ID_REQUIRED: i16 = 79;
/// The group has reached `group.max.size` members.
pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
/// Another member with the same `group.instance.id` has taken over.
pub const FENCED_INSTANCE_ID: i16 = 82;
/// The group is subscribed to the topic whose offsets were to be deleted.
pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
/// There are unstable (transactional) offsets for the partition.
pub const UNSTABLE_OFFSET_COMMIT: i16 = 88;

/// Errors of the durable offsets store ([`crate::group::offsets_store`]).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading, writing or syncing the offsets file failed.
    #[error("offsets store I/O error: {0}")]
    Io(#[from] io::Error),
    /// The file does not start with the expected header (not ours, or a
    /// newer format).
    #[error("offsets store file {path} has a bad header")]
    BadHeader { path: String },
    /// A whole record (its checksum right) that does not decode: written
    /// by a newer klamm, or damaged. Not a torn tail, so never cut off.
    #[error(
        "offsets store file {path} has a whole record at byte {position_bytes} that this klamm cannot read: written \
         by a newer klamm, or damaged. Refusing to start rather than cut off it and every record after it; start \
         the klamm that wrote it, or move the file aside to start afresh"
    )]
    Unreadable { path: String, position_bytes: u64 },
    /// A record to be written exceeds the per-record size limit.
    #[error("offsets store record of {size_bytes} bytes exceeds the limit of {limit_bytes} bytes")]
    RecordTooLarge {
        size_bytes: usize,
        limit_bytes: usize,
    },
    /// Too many writes are queued; the caller should retry later.
    #[error("offsets store write queue is full")]
    Busy,
    /// The store was closed (shutdown) or its writer thread is gone.
    #[error("offsets store is closed")]
    Closed,
    /// An earlier write failed half-way and could not be rolled back; the
    /// store refuses further writes (Kafka takes the log dir offline).
    #[error("offsets store is failed after an unrecoverable write error")]
    Failed,
}

impl StoreError {
    /// The Kafka error code an offset commit (or another write) answers
    /// with when the store fails, following Kafka's mapping of append
    /// errors for the offsets topic: storage errors become
    /// NOT_COORDINATOR, transient ones COORDINATOR_NOT_AVAILABLE and size
    /// errors INVALID_COMMIT_OFFSET_SIZE.
    pub fn error_code(&self) -> i16 {
        match self {
            StoreError::Io(_) | StoreError::BadHeader { .. } | StoreError::Unreadable { .. } | StoreError::Failed => {
                NOT_COORDINATOR
            }
            StoreError::Busy | StoreError::Closed => COORDINATOR_NOT_AVAILABLE,
            StoreError::RecordTooLarge { .. } => INVALID_COMMIT_OFFSET_SIZE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_to_kafka_codes() {
        assert_eq!(StoreError::Busy.error_code(), COORDINATOR_NOT_AVAILABLE);
        assert_eq!(StoreError::Closed.error_code(), COORDINATOR_NOT_AVAILABLE);
        assert_eq!(StoreError::Failed.error_code(), NOT_COORDINATOR);
        assert_eq!(
            StoreError::Io(io::Error::other("x")).error_code(),
            NOT_COORDINATOR
        );
        assert_eq!(
            StoreError::RecordTooLarge {
                size_bytes: 2,
                limit_bytes: 1
            }
            .error_code(),
            INVALID_COMMIT_OFFSET_SIZE
        );
    }
}
