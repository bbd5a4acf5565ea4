//! Produce (key 0): appends each partition's record batch to its log.
//!
//! As in Kafka 4: versions 0-2 are advertised (librdkafka needs to see v0
//! to enable compression) but rejected as unsupported: Kafka 4.1 closes the
//! connection without a response (its log says UnsupportedVersionException),
//! and so do we; exactly
//! one v2 batch per partition; zstd needs v7+; acks must be -1, 0 or 1; an
//! acks=0 request that fails closes the connection (the client gets no
//! response to read the error from). Produce never creates topics.
//!
//! On a single node every replica is in sync, so acks=1 and acks=all both
//! answer once the batch is in the log (the page cache: it survives a
//! process crash; fsync follows `flush.messages`/`flush.ms`).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::{ApiSpec, RequestContext};
use crate::broker::Broker;
use crate::protocol::messages::produce_request::ProduceRequest;
use crate::protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use crate::protocol::{ErrorCode, Uuid};
use crate::records::{CompressionType, RecordBatch, RECORD_BATCH_OVERHEAD_BYTES};
use crate::replica::Partition;
use crate::security::authorizer::{AclOperation, ResourceType};
use crate::storage::VerificationGuard;
use crate::types::{TimestampMs, TopicPartition};

pub const SPEC: ApiSpec = ApiSpec { api_key: 0, name: "Produce", min_version: 0, max_version: 13 };

/// First version Kafka 4 accepts (message format v2).
const MIN_ACCEPTED_VERSION: i16 = 3;
/// First version that may carry zstd batches (KIP-110).
const MIN_ZSTD_VERSION: i16 = 7;
/// First version that names topics by id (KIP-516).
const MIN_TOPIC_ID_VERSION: i16 = 13;

/// One partition's input, resolved before the blocking append.
enum Input {
    Append { partition: Arc<Partition>, records: Bytes },
    Failed(ErrorCode, Option<String>),
}

fn failed(index: i32, code: i16, message: Option<String>) -> PartitionProduceResponse {
    PartitionProduceResponse {
        index,
        error_code: code,
        base_offset: -1,
        log_append_time_ms: -1,
        log_start_offset: -1,
        error_message: message,
        ..Default::default()
    }
}

/// The answer for an append the log refused. Record-level errors name the
/// batch as Kafka's LogValidator does.
fn rejected(index: i32, e: &crate::storage::StorageError) -> PartitionProduceResponse {
    use crate::storage::StorageError;
    match e {
        StorageError::InvalidTimestamp { record_index, .. } => PartitionProduceResponse {
            record_errors: vec![BatchIndexAndErrorMessage {
                batch_index: i32::try_from(*record_index).unwrap_or(i32::MAX),
                batch_index_error_message: Some(e.to_string()),
            }],
            ..failed(index, e.error_code(), Some("One or more records have been rejected due to invalid timestamp".into()))
        },
        StorageError::KeylessRecords { partition, record_indexes } => PartitionProduceResponse {
            record_errors: record_indexes
                .iter()
                .map(|i| BatchIndexAndErrorMessage {
                    batch_index: i32::try_from(*i).unwrap_or(i32::MAX),
                    batch_index_error_message: Some(crate::storage::keyless_message(partition)),
                })
                .collect(),
            ..failed(index, e.error_code(), Some(e.to_string()))
        },
        _ => failed(index, e.error_code(), Some(e.to_string())),
    }
}

/// Checks that `records` is exactly one v2 batch, in a codec this version
/// may use.
fn check_records(version: i16, records: Option<&Bytes>) -> Result<(), (ErrorCode, String)> {
    let Some(records) = records.filter(|r| !r.is_empty()) else {
        return Err((ErrorCode::InvalidRecord, "Produce requests must contain exactly one record batch per partition".into()));
    };
    if records.len() < RECORD_BATCH_OVERHEAD_BYTES {
        return Err((ErrorCode::CorruptMessage, "Record batch is truncated".into()));
    }
    // The magic byte is at offset 16; anything but v2 is refused.
    if records[16] != 2 {
        return Err((ErrorCode::UnsupportedForMessageFormat, "Produce requests must use message format v2".into()));
    }
    let batch_length = i32::from_be_bytes([records[8], records[9], records[10], records[11]]);
    let declared = 12i64 + i64::from(batch_length);
    if declared < records.len() as i64 {
        return Err((ErrorCode::InvalidRecord, "Produce requests must contain exactly one record batch per partition".into()));
    }
    if declared > records.len() as i64 {
        return Err((ErrorCode::CorruptMessage, "Record batch is truncated".into()));
    }
    let batch = RecordBatch::new(records).map_err(|e| (ErrorCode::CorruptMessage, e.to_string()))?;
    if batch.compression() == Some(CompressionType::Zstd) && version < MIN_ZSTD_VERSION {
        return Err((
            ErrorCode::UnsupportedCompressionType,
            "Produce requests with version below 7 must not use zstd compression".into(),
        ));
    }
    Ok(())
}

pub async fn handle(ctx: &RequestContext<'_>, req: ProduceRequest) -> ProduceResponse {
    let version = ctx.version();
    let acks = req.acks;
    let mut any_error = false;
    let request_error = if version < MIN_ACCEPTED_VERSION {
        Some(ErrorCode::UnsupportedVersion)
    } else if !matches!(acks, -1 | 0 | 1) {
        Some(ErrorCode::InvalidRequiredAcks)
    } else {
        None
    };

    // Resolve every partition first (async: may create a log), then append
    // them all in one blocking task.
    let mut topics: Vec<(String, Uuid, Vec<(i32, Input)>)> = Vec::with_capacity(req.topic_data.len());
    let mut seen = HashSet::new();
    let image = ctx.broker.controller.image();
    // As Kafka: a transactional produce needs WRITE on its transactional
    // id, every topic WRITE (checked before the topic's existence).
    let txn_denied = req
        .transactional_id
        .as_deref()
        .is_some_and(|id| !ctx.authorized(AclOperation::Write, ResourceType::TransactionalId, id));
    for mut t in req.topic_data {
        // v13+ name topics by id only.
        let mut unknown_id = false;
        if version >= MIN_TOPIC_ID_VERSION {
            match image.topic_by_id(&t.topic_id) {
                Some(info) => t.name = info.name.clone(),
                None => unknown_id = true,
            }
        }
        let topic_denied = !unknown_id && !ctx.authorized(AclOperation::Write, ResourceType::Topic, &t.name);
        let mut parts = Vec::with_capacity(t.partition_data.len());
        for p in t.partition_data {
            let input = if let Some(code) = request_error {
                Input::Failed(code, None)
            } else if txn_denied {
                Input::Failed(ErrorCode::TransactionalIdAuthorizationFailed, None)
            } else if unknown_id {
                Input::Failed(ErrorCode::UnknownTopicId, None)
            } else if topic_denied {
                Input::Failed(ErrorCode::TopicAuthorizationFailed, None)
            } else if !seen.insert((t.name.clone(), p.index)) {
                Input::Failed(ErrorCode::InvalidRequest, Some("Duplicate partition in the request".into()))
            } else if let Err((code, msg)) = check_records(version, p.records.as_ref()) {
                Input::Failed(code, Some(msg))
            } else {
                let tp = TopicPartition::new(t.name.clone(), p.index);
                match ctx.broker.partition(&tp).await {
                    Some(partition) => Input::Append { partition, records: p.records.unwrap_or_default() },
                    None => Input::Failed(ErrorCode::UnknownTopicOrPartition, None),
                }
            };
            parts.push((p.index, input));
        }
        topics.push((t.name, t.topic_id, parts));
    }

    let broker = ctx.broker.clone();
    let txn = req.transactional_id.map(|id| (id, version));
    let responses = tokio::task::spawn_blocking(move || append_all(&broker, txn.as_ref(), topics))
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "produce task failed");
            Vec::new()
        });
    for t in &responses {
        any_error |= t.partition_responses.iter().any(|p| p.error_code != 0);
    }
    if version < MIN_ACCEPTED_VERSION {
        tracing::debug!(peer = %ctx.peer, version, "Produce v0-2 is not supported: closing the connection");
        ctx.close_connection();
    } else if acks == 0 {
        // The client reads no response: an error can only be signalled by
        // closing the connection.
        if any_error {
            ctx.close_connection();
        } else {
            ctx.suppress_response();
        }
    }
    ProduceResponse { responses, throttle_time_ms: 0, node_endpoints: Vec::new() }
}

/// Appends `records` (one batch, outside any transaction) to `partition`
/// of topic `name` as a Produce would: the web console's produce.
/// Blocking. The base offset, or Kafka's error code and message.
pub fn append_one(
    broker: &Broker,
    name: &str,
    topic_id: Uuid,
    partition: Arc<Partition>,
    records: Bytes,
) -> Result<i64, (i16, Option<String>)> {
    let index = partition.tp.partition;
    let input = vec![(name.to_string(), topic_id, vec![(index, Input::Append { partition, records })])];
    let response = append_all(broker, None, input).pop().and_then(|mut t| t.partition_responses.pop());
    match response {
        Some(p) if p.error_code == 0 => Ok(p.base_offset),
        Some(p) => Err((p.error_code, p.error_message)),
        None => Err((ErrorCode::UnknownServerError.code(), None)),
    }
}

/// Appends every resolved partition (blocking: takes log locks, writes the
/// memory map).
fn append_all(
    broker: &Broker,
    txn: Option<&(String, i16)>,
    topics: Vec<(String, Uuid, Vec<(i32, Input)>)>,
) -> Vec<TopicProduceResponse> {
    let now = TimestampMs::now();
    let mut buf: Vec<u8> = Vec::new();
    topics
        .into_iter()
        .map(|(name, topic_id, parts)| {
            let counters = broker.metrics.topic(&name);
            let partition_responses = parts
                .into_iter()
                .map(|(index, input)| match input {
                    Input::Failed(code, msg) => failed(index, code.code(), msg),
                    Input::Append { partition, records } => {
                        let verified = match check_transaction(broker, txn, &partition, &records, now) {
                            Ok(guard) => guard,
                            Err(code) => return failed(index, code.code(), None),
                        };
                        // The batch is patched in place (offsets, epoch,
                        // CRC where needed), so it needs a private copy.
                        buf.clear();
                        buf.extend_from_slice(&records);
                        // A failed fdatasync stops appends to this partition
                        // until restart (see `GroupSync`).
                        let (appended, rolled) = match partition.sync.check_healthy(&partition.log) {
                            Err(e) => (Err(e), Vec::new()),
                            Ok(()) => {
                                let mut log = partition.log.lock().unwrap_or_else(|e| e.into_inner());
                                let appended = log.append_deferring_flush(&mut buf, now, verified);
                                (appended, log.take_seal_work())
                            }
                        };
                        // A roll's fsync of the old segment runs on the
                        // blocking pool, off the partition lock, without
                        // holding up this response.
                        if !rolled.is_empty() {
                            let shared = partition.log.clone();
                            let finish = move || {
                                let _ = crate::storage::finish_rolls(&shared, rolled);
                            };
                            match tokio::runtime::Handle::try_current() {
                                Ok(rt) => drop(rt.spawn_blocking(finish)),
                                Err(_) => finish(),
                            }
                        }
                        // flush.messages asks for this append to be durable
                        // before it is acknowledged: a group commit, off
                        // the partition lock.
                        let appended = appended.and_then(|(info, needs_sync)| {
                            if needs_sync {
                                partition.sync_through(info.last_offset.next())?;
                            }
                            Ok(info)
                        });
                        match appended {
                            Ok(info) => {
                                if info.records_count > 0 {
                                    partition.waiters.wake();
                                }
                                counters.bytes_in.fetch_add(info.size_bytes as u64, Ordering::Relaxed);
                                counters.records_in.fetch_add(info.records_count, Ordering::Relaxed);
                                PartitionProduceResponse {
                                    index,
                                    error_code: 0,
                                    base_offset: info.first_offset.0,
                                    log_append_time_ms: info.log_append_time.0,
                                    log_start_offset: info.log_start_offset.0,
                                    ..Default::default()
                                }
                            }
                            Err(crate::storage::StorageError::TransactionNotVerified { producer_id }) => {
                                tracing::debug!(partition = %partition.tp, producer_id, "transactional batch after its transaction ended");
                                failed(index, abortable_code(txn).code(), None)
                            }
                            Err(e) => {
                                tracing::debug!(partition = %partition.tp, error = %e, "produce rejected");
                                rejected(index, &e)
                            }
                        }
                    }
                })
                .collect();
            TopicProduceResponse { name, topic_id, partition_responses }
        })
        .collect()
}

/// The first Produce version of transaction version 2 (KIP-890): a
/// transactional batch adds its partition to the transaction itself.
const IMPLICIT_ADD_SINCE: i16 = 12;
/// The first Produce version answered TRANSACTION_ABORTABLE (KIP-890).
const TRANSACTION_ABORTABLE_SINCE: i16 = 11;

/// "Abort the transaction": TRANSACTION_ABORTABLE for clients that know
/// it (Produce v11+), INVALID_TXN_STATE for older ones.
fn abortable_code(txn: Option<&(String, i16)>) -> ErrorCode {
    match txn {
        Some((_, version)) if *version < TRANSACTION_ABORTABLE_SINCE => ErrorCode::InvalidTxnState,
        _ => ErrorCode::TransactionAbortable,
    }
}

/// A transactional batch's partition must be in its producer's ongoing
/// transaction before it is written, or a late or stray batch would open a
/// transaction no one ends (a hanging transaction, KIP-890). Transaction
/// version 2 clients (Produce v12+) send no AddPartitionsToTxn: the batch
/// adds the partition here. Older ones added it first; that is verified
/// when `transaction.partition.verification.enable` (Kafka's default).
/// Coordinator errors become the produce errors Kafka's
/// `ReplicaManager` answers. Blocking (an add is made durable).
///
/// A verified batch comes back with the partition's guard, taken before
/// the coordinator was asked: the append refuses it if the transaction
/// ended in between (see `storage::verification`).
fn check_transaction(
    broker: &Broker,
    txn: Option<&(String, i16)>,
    partition: &Partition,
    records: &Bytes,
    now: TimestampMs,
) -> Result<Option<VerificationGuard>, ErrorCode> {
    let Some((transactional_id, version)) = txn else { return Ok(None) };
    let Ok(batch) = RecordBatch::new(records) else { return Ok(None) };
    if !batch.is_transactional() || batch.is_control() {
        return Ok(None);
    }
    let (producer_id, producer_epoch) = (batch.producer_id(), batch.producer_epoch());
    let implicit_add = *version >= IMPLICIT_ADD_SINCE;
    if !implicit_add && !broker.config().transaction_partition_verification_enable {
        return Ok(None);
    }
    let guard = partition.log.lock().unwrap_or_else(|e| e.into_inner()).begin_verification(producer_id, producer_epoch, now);
    let tp = &partition.tp;
    let checked = if implicit_add {
        broker.txns.add_partitions(transactional_id, producer_id, producer_epoch, std::slice::from_ref(tp), now)
    } else {
        broker.txns.verify_partitions(transactional_id, producer_id, producer_epoch, std::slice::from_ref(tp)).and_then(
            |codes| match codes.first() {
                Some(ErrorCode::None) | None => Ok(()),
                Some(&code) => Err(code),
            },
        )
    };
    checked.map(|()| Some(guard)).map_err(|e| match e {
        ErrorCode::ProducerFenced => ErrorCode::InvalidProducerEpoch,
        // "Partition was not added to the transaction": Produce v11+
        // clients know TRANSACTION_ABORTABLE, older ones INVALID_TXN_STATE.
        ErrorCode::TransactionAbortable if *version < TRANSACTION_ABORTABLE_SINCE => ErrorCode::InvalidTxnState,
        // Retriable for every client without a metadata refresh.
        ErrorCode::ConcurrentTransactions
        | ErrorCode::CoordinatorNotAvailable
        | ErrorCode::CoordinatorLoadInProgress
        | ErrorCode::NotCoordinator => ErrorCode::NotEnoughReplicas,
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::builder::test_batch;

    #[test]
    fn exactly_one_v2_batch_is_accepted() {
        let one = Bytes::from(test_batch(3, 1_000, None));
        assert!(check_records(11, Some(&one)).is_ok());
        let mut two = one.to_vec();
        two.extend_from_slice(&one);
        assert_eq!(check_records(11, Some(&Bytes::from(two))).unwrap_err().0, ErrorCode::InvalidRecord);
        assert_eq!(check_records(11, None).unwrap_err().0, ErrorCode::InvalidRecord);
        assert_eq!(check_records(11, Some(&one.slice(..one.len() - 1))).unwrap_err().0, ErrorCode::CorruptMessage);
        assert_eq!(check_records(11, Some(&one.slice(..20))).unwrap_err().0, ErrorCode::CorruptMessage);
        let mut v1 = one.to_vec();
        v1[16] = 1;
        assert_eq!(check_records(11, Some(&Bytes::from(v1))).unwrap_err().0, ErrorCode::UnsupportedForMessageFormat);
    }

    #[test]
    fn keyless_records_name_each_record_as_kafka_does() {
        let e = crate::storage::StorageError::KeylessRecords { partition: "t-0".into(), record_indexes: vec![0, 2] };
        let r = rejected(0, &e);
        assert_eq!(r.error_code, 87);
        assert_eq!(r.record_errors.len(), 2);
        assert_eq!(r.record_errors[1].batch_index, 2);
        assert_eq!(
            r.record_errors[0].batch_index_error_message.as_deref(),
            Some("Compacted topic cannot accept message without key in topic partition t-0")
        );
        assert!(r.error_message.unwrap().starts_with("One or more records have been rejected due to 2 record errors"));
    }

    #[test]
    fn zstd_needs_version_7() {
        let mut zstd = test_batch(1, 1_000, None);
        // attributes are at offset 21..23; codec in the low 3 bits.
        zstd[22] = (zstd[22] & !7) | 4;
        let zstd = Bytes::from(zstd);
        assert_eq!(check_records(6, Some(&zstd)).unwrap_err().0, ErrorCode::UnsupportedCompressionType);
        assert!(check_records(7, Some(&zstd)).is_ok());
    }
}
