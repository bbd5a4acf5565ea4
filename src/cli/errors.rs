//! Kafka's error codes by name, with the description Kafka's `Errors`
//! enum gives each, for messages like
//! `error: TOPIC_ALREADY_EXISTS (36): Topic 'x' already exists.`

/// `(code, NAME, description)` for the codes a CLI user may meet.
const ERRORS: &[(i16, &str, &str)] = &[
    (-1, "UNKNOWN_SERVER_ERROR", "The server experienced an unexpected error when processing the request."),
    (1, "OFFSET_OUT_OF_RANGE", "The requested offset is not within the range of offsets maintained by the server."),
    (2, "CORRUPT_MESSAGE", "This message has failed its CRC checksum, exceeds the valid size, has a null key for a compacted topic, or is otherwise corrupt."),
    (3, "UNKNOWN_TOPIC_OR_PARTITION", "This server does not host this topic-partition."),
    (4, "INVALID_FETCH_SIZE", "The requested fetch size is invalid."),
    (5, "LEADER_NOT_AVAILABLE", "There is no leader for this topic-partition as we are in the middle of a leadership election."),
    (6, "NOT_LEADER_OR_FOLLOWER", "For requests intended only for the leader, this error indicates that the broker is not the current leader."),
    (7, "REQUEST_TIMED_OUT", "The request timed out."),
    (8, "BROKER_NOT_AVAILABLE", "The broker is not available."),
    (10, "MESSAGE_TOO_LARGE", "The request included a message larger than the max message size the server will accept."),
    (13, "NETWORK_EXCEPTION", "The server disconnected before a response was received."),
    (14, "COORDINATOR_LOAD_IN_PROGRESS", "The coordinator is loading and hence can't process requests."),
    (15, "COORDINATOR_NOT_AVAILABLE", "The coordinator is not available."),
    (16, "NOT_COORDINATOR", "This is not the correct coordinator."),
    (17, "INVALID_TOPIC_EXCEPTION", "The request attempted to perform an operation on an invalid topic."),
    (18, "RECORD_LIST_TOO_LARGE", "The request included message batch larger than the configured segment size on the server."),
    (19, "NOT_ENOUGH_REPLICAS", "Messages are rejected since there are fewer in-sync replicas than required."),
    (20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND", "Messages are written to the log, but to fewer in-sync replicas than required."),
    (21, "INVALID_REQUIRED_ACKS", "Produce request specified an invalid value for required acks."),
    (22, "ILLEGAL_GENERATION", "Specified group generation id is not valid."),
    (24, "INVALID_GROUP_ID", "The group id is invalid."),
    (25, "UNKNOWN_MEMBER_ID", "The coordinator is not aware of this member."),
    (27, "REBALANCE_IN_PROGRESS", "The group is rebalancing, so a rejoin is needed."),
    (28, "INVALID_COMMIT_OFFSET_SIZE", "The committing offset data size is not valid."),
    (29, "TOPIC_AUTHORIZATION_FAILED", "Topic authorization failed."),
    (30, "GROUP_AUTHORIZATION_FAILED", "Group authorization failed."),
    (31, "CLUSTER_AUTHORIZATION_FAILED", "Cluster authorization failed."),
    (32, "INVALID_TIMESTAMP", "The timestamp of the message is out of acceptable range."),
    (35, "UNSUPPORTED_VERSION", "The version of API is not supported."),
    (36, "TOPIC_ALREADY_EXISTS", "Topic with this name already exists."),
    (37, "INVALID_PARTITIONS", "Number of partitions is below 1."),
    (38, "INVALID_REPLICATION_FACTOR", "Replication factor is below 1 or larger than the number of available brokers."),
    (39, "INVALID_REPLICA_ASSIGNMENT", "Replica assignment is invalid."),
    (40, "INVALID_CONFIG", "Configuration is invalid."),
    (41, "NOT_CONTROLLER", "This is not the correct controller for this cluster."),
    (42, "INVALID_REQUEST", "This most likely occurs because of a request being malformed by the client library or the message was sent to an incompatible broker. See the broker logs for more details."),
    (43, "UNSUPPORTED_FOR_MESSAGE_FORMAT", "The message format version on the broker does not support the request."),
    (44, "POLICY_VIOLATION", "Request parameters do not satisfy the configured policy."),
    (47, "INVALID_PRODUCER_EPOCH", "Producer attempted to produce with an old epoch."),
    (48, "INVALID_TXN_STATE", "The producer attempted a transactional operation in an invalid state."),
    (56, "KAFKA_STORAGE_ERROR", "Disk error when trying to access log file on the disk."),
    (68, "NON_EMPTY_GROUP", "The group is not empty."),
    (69, "GROUP_ID_NOT_FOUND", "The group id does not exist."),
    (73, "TOPIC_DELETION_DISABLED", "Topic deletion is disabled."),
    (76, "UNSUPPORTED_COMPRESSION_TYPE", "The requesting client does not support the compression type of given partition."),
    (78, "OFFSET_NOT_AVAILABLE", "The leader high watermark has not caught up from a recent leader election so the offsets cannot be guaranteed to be monotonically increasing."),
    (81, "GROUP_MAX_SIZE_REACHED", "The consumer group has reached its max size."),
    (86, "GROUP_SUBSCRIBED_TO_TOPIC", "The consumer group is actively subscribed to the topic."),
    (87, "INVALID_RECORD", "This record has failed the validation on broker and hence will be rejected."),
    (88, "UNSTABLE_OFFSET_COMMIT", "There are unstable offsets that need to be cleared."),
    (89, "THROTTLING_QUOTA_EXCEEDED", "The throttling quota has been exceeded."),
    (100, "UNKNOWN_TOPIC_ID", "This server does not host this topic ID."),
    (110, "FENCED_MEMBER_EPOCH", "The member epoch is fenced by the group coordinator."),
    (113, "STALE_MEMBER_EPOCH", "The member epoch is stale."),
];

/// Kafka's name for `code` (`UNKNOWN_ERROR_CODE` for codes not listed).
pub fn error_name(code: i16) -> &'static str {
    ERRORS.iter().find(|e| e.0 == code).map_or("UNKNOWN_ERROR_CODE", |e| e.1)
}

/// Kafka's description of `code`.
pub fn error_description(code: i16) -> &'static str {
    ERRORS.iter().find(|e| e.0 == code).map_or("An error code this client does not know.", |e| e.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_descriptions() {
        assert_eq!(error_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(999), "UNKNOWN_ERROR_CODE");
        assert!(error_description(69).contains("does not exist"));
        // Codes agree with klamm's own error enum.
        use crate::protocol::ErrorCode;
        assert_eq!(error_name(ErrorCode::NonEmptyGroup.code()), "NON_EMPTY_GROUP");
        assert_eq!(error_name(ErrorCode::InvalidConfig.code()), "INVALID_CONFIG");
        let mut codes: Vec<i16> = ERRORS.iter().map(|e| e.0).collect();
        codes.dedup();
        assert_eq!(codes.len(), ERRORS.len(), "sorted, no duplicates");
    }
}
