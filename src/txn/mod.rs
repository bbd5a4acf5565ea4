//! The transaction coordinator (issue 10, transaction versions 1 and 2): the
//! state machine of each transactional id (`state`, following Kafka's
//! `TransactionState`), its durable log in `<log.dir>/.klamm/transactions`
//! (`log`), the coordinator that serializes and persists transitions
//! (`coordinator`), and here the completion of a transaction across the
//! broker: COMMIT/ABORT markers into every partition of the transaction,
//! the group offsets it committed made visible or dropped, then the
//! Complete state recorded.

pub mod coordinator;
pub mod log;
pub mod state;

use std::sync::Arc;

pub use coordinator::{InitResult, TransactionCoordinator};
pub use state::{Completion, TransactionState};

use crate::broker::Broker;
use crate::protocol::ErrorCode;
use crate::types::TimestampMs;

/// The coordinator epoch written into markers: one node, one epoch.
pub const COORDINATOR_EPOCH: i32 = 0;

/// Directory of the transaction log under `log.dir`.
pub fn log_dir(log_dir: &std::path::Path) -> std::path::PathBuf {
    log_dir.join(".klamm").join("transactions")
}

/// Writes `c`'s markers (blocking), settles its groups' offsets, then
/// records the completion. On failure the completion stays owed and is
/// retried by housekeeping.
pub async fn finish(broker: &Arc<Broker>, c: Completion) -> Result<(), ErrorCode> {
    let started = std::time::Instant::now();
    let b = broker.clone();
    let c2 = c.clone();
    tokio::task::spawn_blocking(move || write_markers(&b, &c2))
        .await
        .map_err(|_| ErrorCode::UnknownServerError)??;
    for group in &c.groups {
        if let Err(e) = broker.groups.complete_txn_offsets(group, c.producer_id, c.commit).await {
            tracing::warn!(group, error = %e, "settling transactional offsets failed; retrying later");
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
    }
    let b = broker.clone();
    let (commit, markers) = (c.commit, c.partitions.len());
    tokio::task::spawn_blocking(move || b.txns.complete(&c, TimestampMs::now()))
        .await
        .map_err(|_| ErrorCode::UnknownServerError)??;
    broker.metrics.txn.completed(commit, markers, started.elapsed());
    Ok(())
}

/// Writes the markers of `c` to each of its partitions that still exists.
fn write_markers(broker: &Broker, c: &Completion) -> Result<(), ErrorCode> {
    let now = TimestampMs::now();
    for tp in &c.partitions {
        let Some(partition) = broker.replicas.get(tp) else {
            // A deleted topic: nothing to mark (as Kafka skips it).
            continue;
        };
        match write_marker(&partition, c.producer_id, c.producer_epoch, c.commit, COORDINATOR_EPOCH, now) {
            Ok(_) => {}
            Err(crate::storage::StorageError::InvalidProducerEpoch { .. }) => {
                // A newer epoch already marked this partition.
            }
            Err(e) => {
                tracing::warn!(partition = %tp, error = %e, "writing a transaction marker failed; retrying later");
                return Err(ErrorCode::KafkaStorageError);
            }
        }
    }
    Ok(())
}

/// Writes one COMMIT or ABORT marker of `producer_id` into `partition`
/// (producer state, last stable offset and aborted index follow in
/// `PartitionLog::append_marker`) and wakes its waiting fetches. The one
/// marker path: the coordinator's completions and WriteTxnMarkers
/// (`kafka-transactions abort`) both come here. Blocking.
pub fn write_marker(
    partition: &crate::replica::Partition,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    now: TimestampMs,
) -> Result<crate::types::Offset, crate::storage::StorageError> {
    let mut log = partition.log.lock().unwrap_or_else(|e| e.into_inner());
    let written = log.append_marker(producer_id, producer_epoch, commit, coordinator_epoch, now);
    drop(log);
    if written.is_ok() {
        partition.waiters.wake();
    }
    written
}

/// Housekeeping: aborts timed-out transactions, retries owed completions
/// and expires idle transactional ids.
pub async fn housekeeping(broker: &Arc<Broker>) {
    let b = broker.clone();
    let expiration_ms = i64::from(broker.config().transactional_id_expiration_ms);
    let owed = tokio::task::spawn_blocking(move || {
        let now = TimestampMs::now();
        let mut owed = b.txns.abort_timed_out(now);
        b.metrics.txn.timed_out.fetch_add(owed.len() as u64, std::sync::atomic::Ordering::Relaxed);
        for c in b.txns.owed() {
            if !owed.contains(&c) {
                owed.push(c);
            }
        }
        let expired = b.txns.expire(now, expiration_ms);
        if expired > 0 {
            tracing::info!(transactional_ids = expired, "expired idle transactional ids");
        }
        owed
    })
    .await
    .unwrap_or_default();
    for c in owed {
        let id = c.transactional_id.clone();
        if let Err(e) = finish(broker, c).await {
            tracing::warn!(transactional_id = %id, error = ?e, "completing a transaction failed; retrying later");
        }
    }
}

/// PRODUCER_FENCED (KIP-588) is answered only from the API version that
/// introduced it; older clients get INVALID_PRODUCER_EPOCH, as Kafka does.
pub fn fenced_error_for(code: ErrorCode, version: i16, producer_fenced_since: i16) -> ErrorCode {
    if code == ErrorCode::ProducerFenced && version < producer_fenced_since {
        ErrorCode::InvalidProducerEpoch
    } else {
        code
    }
}
