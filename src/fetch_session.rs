//! Incremental fetch sessions (KIP-227): the broker remembers, per session,
//! which partitions a fetcher reads and what it last told it about each, so
//! that later requests list only the partitions whose fetch position
//! changed and responses carry only the partitions with news (records, a
//! moved high watermark or log start offset, or an error). A consumer of
//! 1,000 partitions then sends and receives a handful of partitions per
//! fetch instead of all of them.
//!
//! The request's `session_id` and `session_epoch` choose the kind of fetch,
//! as in Kafka's `FetchManager`:
//!
//! | session_id | epoch | meaning |
//! |---|---|---|
//! | any | 0 (`INITIAL_EPOCH`) | full fetch; closes the named session; the answer may open a new one |
//! | any | -1 (`FINAL_EPOCH`) | full fetch without a session; closes the named session |
//! | id | n > 0 | incremental fetch in session `id`, whose expected epoch must be `n` |
//!
//! An unknown session is `FETCH_SESSION_ID_NOT_FOUND`, a wrong epoch
//! `INVALID_FETCH_SESSION_EPOCH`, and switching between topic names and
//! topic ids (Fetch v13) inside a session `FETCH_SESSION_TOPIC_ID_ERROR`; each
//! is a top-level error with no partitions. A new session starts at epoch 1
//! and each incremental fetch advances it by one (wrapping to 1).
//!
//! Partitions that returned records move to the end of the session's order,
//! so a size-limited response reaches every partition in turn.
//!
//! Limits: `max.incremental.fetch.session.cache.slots` sessions; when the
//! cache is full, the least recently used session idle for at least
//! [`EVICTION_IDLE_MS`] makes room, otherwise no session is created (session
//! id 0, which clients accept and answer with full fetches). Sessions of
//! more than [`MAX_SESSION_PARTITIONS`] partitions, or that would take the
//! cache over [`MAX_CACHED_PARTITIONS`], are declined the same way.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;
use std::time::Instant;

use crate::protocol::{ErrorCode, Uuid};

pub const INITIAL_EPOCH: i32 = 0;
pub const FINAL_EPOCH: i32 = -1;
/// No session (requests) or no session created (responses).
pub const NO_SESSION: i32 = 0;
/// The first Fetch version with sessions.
pub const MIN_SESSION_VERSION: i16 = 7;
/// The first Fetch version that names topics by id.
const TOPIC_ID_VERSION: i16 = 13;
/// A full cache evicts only sessions idle at least this long (Kafka's
/// `min.incremental.fetch.session.eviction.ms` default).
pub const EVICTION_IDLE_MS: u64 = 120_000;
/// Larger sessions are declined (the fetcher sends full requests).
pub const MAX_SESSION_PARTITIONS: usize = 100_000;
/// Partitions cached across all sessions.
pub const MAX_CACHED_PARTITIONS: usize = 1_000_000;

/// The epoch after `prev` (Kafka's `FetchMetadata.nextEpoch`).
pub fn next_epoch(prev: i32) -> i32 {
    if prev < 0 {
        FINAL_EPOCH
    } else if prev == i32::MAX {
        1
    } else {
        prev + 1
    }
}

/// A partition as a session knows it: by topic id from Fetch v13, by name
/// before (a session uses one or the other throughout).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TopicKey {
    Name(String),
    Id(Uuid),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PartitionKey {
    pub topic: TopicKey,
    pub partition: i32,
}

/// What the fetcher asked of one partition; a session keeps the last
/// request's values for partitions a later request does not list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchParams {
    pub fetch_offset: i64,
    pub current_leader_epoch: i32,
    pub partition_max_bytes: i32,
}

/// What a response says about one partition, as far as sessions care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub has_records: bool,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub error: bool,
}

/// One cached partition: the request parameters and what was last sent.
#[derive(Clone, Debug)]
struct Cached {
    key: PartitionKey,
    params: FetchParams,
    high_watermark: i64,
    log_start_offset: i64,
}

impl Cached {
    /// Kafka's `maybeUpdateResponseData`: whether the partition must be in
    /// the response, remembering what is sent.
    fn must_respond(&mut self, s: &Summary) -> bool {
        let mut respond = s.has_records;
        if self.high_watermark != s.high_watermark {
            respond = true;
            self.high_watermark = s.high_watermark;
        }
        if self.log_start_offset != s.log_start_offset {
            respond = true;
            self.log_start_offset = s.log_start_offset;
        }
        if s.error {
            // Re-sent once the error is gone.
            self.high_watermark = -1;
            respond = true;
        }
        respond
    }
}

struct Session {
    uses_topic_ids: bool,
    /// The session's partitions in fetch order.
    partitions: Vec<Cached>,
    /// Position of each key in `partitions`.
    positions: HashMap<PartitionKey, usize>,
    /// The epoch the next incremental request must carry.
    epoch: i32,
    last_used: Instant,
}

impl Session {
    fn reindex(&mut self) {
        // Callers keep keys unique (`create` checks its input); a duplicate
        // would leave `positions` shorter than `partitions`.
        self.positions = self.partitions.iter().enumerate().map(|(i, c)| (c.key.clone(), i)).collect();
    }

    /// Adds or updates the requested partitions and drops the forgotten ones.
    fn update(&mut self, requested: &[(PartitionKey, FetchParams)], forgotten: &[PartitionKey]) {
        for (key, params) in requested {
            match self.positions.get(key) {
                Some(&i) => self.partitions[i].params = *params,
                None => {
                    self.positions.insert(key.clone(), self.partitions.len());
                    self.partitions.push(Cached { key: key.clone(), params: *params, high_watermark: -1, log_start_offset: -1 });
                }
            }
        }
        if forgotten.iter().any(|k| self.positions.contains_key(k)) {
            let forgotten: HashSet<&PartitionKey> = forgotten.iter().collect();
            self.partitions.retain(|c| !forgotten.contains(&c.key));
            self.reindex();
        }
    }
}

/// How to serve one Fetch request.
#[derive(Debug, PartialEq, Eq)]
pub enum FetchContext {
    /// Answer with this top-level error and no partitions.
    Error(ErrorCode),
    /// Read the requested partitions and answer all of them, session id 0.
    Sessionless,
    /// Read the requested partitions, answer all of them, and offer a new
    /// session ([`FetchSessionCache::create`]).
    Full,
    /// Read `partitions` (the whole session, in order) and answer those
    /// [`FetchSessionCache::select`] picks.
    Incremental { session_id: i32, request_epoch: i32, partitions: Vec<(PartitionKey, FetchParams)> },
}

struct Inner {
    sessions: HashMap<i32, Session>,
    cached_partitions: usize,
    id_counter: u64,
}

/// Every fetch session of the broker.
pub struct FetchSessionCache {
    max_sessions: usize,
    inner: Mutex<Inner>,
    ids: RandomState,
}

impl FetchSessionCache {
    /// A cache of at most `max_sessions` sessions (0: never create any).
    pub fn new(max_sessions: usize) -> FetchSessionCache {
        FetchSessionCache {
            max_sessions,
            inner: Mutex::new(Inner { sessions: HashMap::new(), cached_partitions: 0, id_counter: 0 }),
            ids: RandomState::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    /// Panics unless the bookkeeping is consistent: the partition count
    /// matches the sessions, every session's positions index its
    /// partitions, and the bounds hold. For tests and the fuzz target.
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        let inner = self.lock();
        let mut total = 0;
        for (id, s) in &inner.sessions {
            assert_ne!(*id, NO_SESSION);
            assert!(s.epoch > 0, "a live session expects a positive epoch");
            assert!(!s.partitions.is_empty() && s.partitions.len() <= MAX_SESSION_PARTITIONS);
            assert_eq!(s.positions.len(), s.partitions.len());
            for (i, c) in s.partitions.iter().enumerate() {
                assert_eq!(s.positions.get(&c.key), Some(&i));
            }
            total += s.partitions.len();
        }
        assert_eq!(total, inner.cached_partitions);
        assert!(inner.sessions.len() <= self.max_sessions && total <= MAX_CACHED_PARTITIONS);
    }

    /// Sessions cached, and partitions cached across them.
    pub fn sizes(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.sessions.len(), inner.cached_partitions)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decides how to serve a request (Kafka's `FetchManager.newContext`),
    /// updating the named session for an incremental fetch.
    pub fn new_context(
        &self,
        version: i16,
        session_id: i32,
        epoch: i32,
        requested: &[(PartitionKey, FetchParams)],
        forgotten: &[PartitionKey],
        now: Instant,
    ) -> FetchContext {
        if version < MIN_SESSION_VERSION {
            return FetchContext::Sessionless;
        }
        let mut inner = self.lock();
        if epoch == INITIAL_EPOCH || epoch == FINAL_EPOCH {
            if session_id != NO_SESSION {
                inner.remove(session_id);
            }
            return if epoch == FINAL_EPOCH { FetchContext::Sessionless } else { FetchContext::Full };
        }
        let cached = inner.cached_partitions;
        let Some(session) = inner.sessions.get_mut(&session_id) else {
            return FetchContext::Error(ErrorCode::FetchSessionIdNotFound);
        };
        if session.epoch != epoch {
            return FetchContext::Error(ErrorCode::InvalidFetchSessionEpoch);
        }
        if session.uses_topic_ids != (version >= TOPIC_ID_VERSION) {
            return FetchContext::Error(ErrorCode::FetchSessionTopicIdError);
        }
        let before = session.partitions.len();
        session.update(requested, forgotten);
        let after = session.partitions.len();
        let total = cached - before + after;
        if after == 0 || after > MAX_SESSION_PARTITIONS || total > MAX_CACHED_PARTITIONS {
            // Empty, or grown past a bound: the session ends and this fetch
            // is answered in full, as a sessionless one.
            inner.cached_partitions -= before;
            inner.sessions.remove(&session_id);
            return FetchContext::Sessionless;
        }
        session.last_used = now;
        session.epoch = next_epoch(session.epoch);
        let partitions = session.partitions.iter().map(|c| (c.key.clone(), c.params)).collect();
        inner.cached_partitions = total;
        FetchContext::Incremental { session_id, request_epoch: epoch, partitions }
    }

    /// Opens a session over the partitions of a full fetch, with what its
    /// response says of each; returns the new session id, or
    /// [`NO_SESSION`] when sessions are off, the cache is full or the
    /// session would be too large.
    pub fn create(&self, version: i16, partitions: Vec<(PartitionKey, FetchParams, Summary)>, now: Instant) -> i32 {
        let size = partitions.len();
        if self.max_sessions == 0 || size == 0 || size > MAX_SESSION_PARTITIONS {
            return NO_SESSION;
        }
        let mut inner = self.lock();
        if inner.sessions.len() >= self.max_sessions && !inner.evict_idle(now) {
            return NO_SESSION;
        }
        if inner.cached_partitions + size > MAX_CACHED_PARTITIONS {
            return NO_SESSION;
        }
        // Random-looking ids (from a per-process random hash of a counter),
        // so that a client holding the id of a session from before a restart
        // is unlikely to hit a new one. Bounded: the cache is far from full
        // of 2^31 ids, so a free one comes within a few tries.
        let Some(id) = (0..64).find_map(|_| {
            inner.id_counter = inner.id_counter.wrapping_add(1);
            let mut h = self.ids.build_hasher();
            h.write_u64(inner.id_counter);
            let candidate = (h.finish() & 0x7fff_ffff) as i32;
            (candidate != NO_SESSION && !inner.sessions.contains_key(&candidate)).then_some(candidate)
        }) else {
            return NO_SESSION;
        };
        let partitions: Vec<Cached> = partitions
            .into_iter()
            .map(|(key, params, s)| Cached {
                key,
                params,
                high_watermark: if s.error { -1 } else { s.high_watermark },
                log_start_offset: s.log_start_offset,
            })
            .collect();
        let mut session = Session {
            uses_topic_ids: version >= TOPIC_ID_VERSION,
            partitions,
            positions: HashMap::new(),
            epoch: next_epoch(INITIAL_EPOCH),
            last_used: now,
        };
        session.reindex();
        if session.positions.len() != session.partitions.len() {
            // A partition listed twice: serve it, but keep no session.
            return NO_SESSION;
        }
        inner.cached_partitions += size;
        inner.sessions.insert(id, session);
        id
    }

    /// For the response to an incremental fetch: which partitions to
    /// include (`summaries` in the order [`FetchContext::Incremental`] gave),
    /// updating the session; partitions with records move to the end. An
    /// error if a concurrent request moved the session on meanwhile.
    pub fn select(&self, session_id: i32, request_epoch: i32, summaries: &[Summary]) -> Result<Vec<bool>, ErrorCode> {
        let mut inner = self.lock();
        let Some(session) = inner.sessions.get_mut(&session_id) else {
            return Err(ErrorCode::FetchSessionIdNotFound);
        };
        if session.epoch != next_epoch(request_epoch) || session.partitions.len() != summaries.len() {
            return Err(ErrorCode::InvalidFetchSessionEpoch);
        }
        let include: Vec<bool> =
            session.partitions.iter_mut().zip(summaries).map(|(c, s)| c.must_respond(s)).collect();
        if summaries.iter().any(|s| s.has_records) {
            // Stable: the partitions that returned records go last, in order.
            let (mut rest, with_records): (Vec<_>, Vec<_>) = std::mem::take(&mut session.partitions)
                .into_iter()
                .zip(summaries)
                .partition(|(_, s)| !s.has_records);
            rest.extend(with_records);
            session.partitions = rest.into_iter().map(|(c, _)| c).collect();
            session.reindex();
        }
        Ok(include)
    }
}

impl Inner {
    fn remove(&mut self, id: i32) {
        if let Some(s) = self.sessions.remove(&id) {
            self.cached_partitions -= s.partitions.len();
        }
    }

    /// Evicts the least recently used session if it has been idle long
    /// enough; whether room was made.
    fn evict_idle(&mut self, now: Instant) -> bool {
        let oldest = self.sessions.iter().min_by_key(|(_, s)| s.last_used).map(|(id, s)| (*id, s.last_used));
        match oldest {
            Some((id, used)) if now.saturating_duration_since(used).as_millis() >= EVICTION_IDLE_MS as u128 => {
                self.remove(id);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key(t: &str, p: i32) -> PartitionKey {
        PartitionKey { topic: TopicKey::Name(t.into()), partition: p }
    }

    fn params(offset: i64) -> FetchParams {
        FetchParams { fetch_offset: offset, current_leader_epoch: -1, partition_max_bytes: 1 << 20 }
    }

    fn quiet(hw: i64) -> Summary {
        Summary { has_records: false, high_watermark: hw, log_start_offset: 0, error: false }
    }

    fn open(cache: &FetchSessionCache, keys: &[PartitionKey], hw: i64, now: Instant) -> i32 {
        let parts = keys.iter().map(|k| (k.clone(), params(0), quiet(hw))).collect();
        cache.create(12, parts, now)
    }

    #[test]
    fn epochs_follow_kafka() {
        assert_eq!(next_epoch(0), 1);
        assert_eq!(next_epoch(41), 42);
        assert_eq!(next_epoch(i32::MAX), 1);
        assert_eq!(next_epoch(-1), -1);
        assert_eq!(next_epoch(-7), -1);
    }

    #[test]
    fn kinds_of_fetch() {
        let cache = FetchSessionCache::new(10);
        let now = Instant::now();
        let ps = [(key("a", 0), params(0))];
        assert_eq!(cache.new_context(6, 5, 3, &ps, &[], now), FetchContext::Sessionless, "before v7");
        assert_eq!(cache.new_context(12, 0, -1, &ps, &[], now), FetchContext::Sessionless);
        assert_eq!(cache.new_context(12, 0, 0, &ps, &[], now), FetchContext::Full);
        assert_eq!(cache.new_context(12, 77, 1, &ps, &[], now), FetchContext::Error(ErrorCode::FetchSessionIdNotFound));
        let id = open(&cache, &[key("a", 0)], 5, now);
        assert_ne!(id, NO_SESSION);
        assert!(id > 0);
        assert_eq!(cache.new_context(12, id, 2, &[], &[], now), FetchContext::Error(ErrorCode::InvalidFetchSessionEpoch));
        assert_eq!(cache.new_context(13, id, 1, &[], &[], now), FetchContext::Error(ErrorCode::FetchSessionTopicIdError));
        match cache.new_context(12, id, 1, &[], &[], now) {
            FetchContext::Incremental { session_id, request_epoch: 1, partitions } => {
                assert_eq!(session_id, id);
                assert_eq!(partitions, vec![(key("a", 0), params(0))]);
            }
            other => panic!("{other:?}"),
        }
        // The epoch moved on: replaying 1 is an error, 2 is next.
        assert_eq!(cache.new_context(12, id, 1, &[], &[], now), FetchContext::Error(ErrorCode::InvalidFetchSessionEpoch));
        assert!(matches!(cache.new_context(12, id, 2, &[], &[], now), FetchContext::Incremental { .. }));
        // A full fetch naming the session closes it.
        assert_eq!(cache.new_context(12, id, 0, &ps, &[], now), FetchContext::Full);
        assert!(cache.is_empty());
    }

    #[test]
    fn incremental_requests_add_update_and_forget() {
        let cache = FetchSessionCache::new(10);
        let now = Instant::now();
        let id = open(&cache, &[key("a", 0), key("a", 1)], 0, now);
        let FetchContext::Incremental { partitions, .. } =
            cache.new_context(12, id, 1, &[(key("a", 1), params(9)), (key("b", 0), params(3))], &[key("a", 0)], now)
        else {
            panic!()
        };
        assert_eq!(partitions, vec![(key("a", 1), params(9)), (key("b", 0), params(3))]);
        // Forgetting everything ends the session.
        assert_eq!(cache.new_context(12, id, 2, &[], &[key("a", 1), key("b", 0)], now), FetchContext::Sessionless);
        assert!(cache.is_empty());
        assert_eq!(cache.lock().cached_partitions, 0);
    }

    #[test]
    fn responses_carry_only_news_and_rotate_partitions_with_records() {
        let cache = FetchSessionCache::new(10);
        let now = Instant::now();
        let keys = [key("a", 0), key("a", 1), key("a", 2)];
        let id = open(&cache, &keys, 10, now);
        let FetchContext::Incremental { request_epoch, .. } = cache.new_context(12, id, 1, &[], &[], now) else { panic!() };
        let records = Summary { has_records: true, high_watermark: 10, log_start_offset: 0, error: false };
        let include = cache.select(id, request_epoch, &[records, quiet(10), quiet(11)]).unwrap();
        assert_eq!(include, vec![true, false, true], "records, nothing new, a moved high watermark");
        // a-0 returned records, so it is read last now.
        let FetchContext::Incremental { partitions, request_epoch, .. } = cache.new_context(12, id, 2, &[], &[], now)
        else {
            panic!()
        };
        let order: Vec<i32> = partitions.iter().map(|(k, _)| k.partition).collect();
        assert_eq!(order, vec![1, 2, 0]);
        // Nothing changed since: nothing to say. An error is always said,
        // and the partition is said again once the error is gone.
        let err = Summary { error: true, ..quiet(10) };
        assert_eq!(cache.select(id, request_epoch, &[quiet(10), err, quiet(10)]).unwrap(), vec![false, true, false]);
        let FetchContext::Incremental { request_epoch, .. } = cache.new_context(12, id, 3, &[], &[], now) else { panic!() };
        assert_eq!(cache.select(id, request_epoch, &[quiet(10), quiet(11), quiet(10)]).unwrap(), vec![false, true, false]);
        // A stale epoch (a racing request) is refused.
        assert_eq!(cache.select(id, 1, &[quiet(10); 3]), Err(ErrorCode::InvalidFetchSessionEpoch));
        cache.check_invariants();
    }

    #[test]
    fn limits_and_eviction() {
        let now = Instant::now();
        assert_eq!(open(&FetchSessionCache::new(0), &[key("a", 0)], 0, now), NO_SESSION, "sessions off");
        let cache = FetchSessionCache::new(2);
        assert_eq!(open(&cache, &[], 0, now), NO_SESSION, "no empty sessions");
        assert_eq!(open(&cache, &[key("a", 0), key("a", 0)], 0, now), NO_SESSION, "duplicates");
        let first = open(&cache, &[key("a", 0)], 0, now);
        let second = open(&cache, &[key("b", 0)], 0, now + Duration::from_secs(1));
        assert!(first != NO_SESSION && second != NO_SESSION && first != second);
        assert_eq!(open(&cache, &[key("c", 0)], 0, now + Duration::from_secs(2)), NO_SESSION, "full, none idle");
        let later = now + Duration::from_millis(EVICTION_IDLE_MS + 1);
        let third = open(&cache, &[key("c", 0)], 0, later);
        assert_ne!(third, NO_SESSION, "the idle least recently used session made room");
        assert_eq!(cache.new_context(12, first, 1, &[], &[], later), FetchContext::Error(ErrorCode::FetchSessionIdNotFound));
        assert!(matches!(cache.new_context(12, second, 1, &[], &[], later), FetchContext::Incremental { .. }));
        let too_many: Vec<PartitionKey> = (0..=MAX_SESSION_PARTITIONS as i32).map(|p| key("big", p)).collect();
        assert_eq!(open(&FetchSessionCache::new(5), &too_many, 0, now), NO_SESSION);
        // Growing a session past the bound ends it; the fetch is answered
        // in full, and the cache forgets its partitions.
        let cache = FetchSessionCache::new(5);
        let id = open(&cache, &[key("big", 0)], 0, now);
        let grow: Vec<(PartitionKey, FetchParams)> = too_many.iter().map(|k| (k.clone(), params(0))).collect();
        assert_eq!(cache.new_context(12, id, 1, &grow, &[], now), FetchContext::Sessionless);
        assert_eq!(cache.sizes(), (0, 0));
        cache.check_invariants();
    }
}
