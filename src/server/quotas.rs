//! Bounds against hostile and broken clients, shared by all listeners.
//!
//! Request memory is counted as bytes arrive, not when a frame's size
//! prefix announces them: a connection reserves room for its frame in
//! chunks (`FrameMemory::grow`), from its client IP's budget
//! (`klamm.queued.max.request.bytes.per.ip`) and from the broker-wide pool
//! (`queued.max.request.bytes`). One connection holds at most one frame
//! (`socket.request.max.bytes`, its per-connection bound). When a budget
//! is exhausted the connection waits before reading more, which is Kafka's
//! "mute": it stops reading from that socket, others keep being served and
//! it resumes as memory frees. A client announcing 100 MB and trickling one
//! byte a second holds one chunk, not 100 MB.
//!
//! Frames that all grow at once can fill the pool with halves of frames
//! that each wait for memory another holds. So that one of them always
//! finishes, a frame that finds the pool exhausted waits either for memory
//! or for the broker's single overdraft: the one frame holding it reads on
//! without reserving more, completes, is served and returns it (the pool
//! can thus be exceeded by at most one frame, `socket.request.max.bytes`,
//! as Kafka lets one request over `queued.max.request.bytes` through).
//!
//! Small frames (at most `SMALL_FRAME_BYTES`, which is every Metadata,
//! Fetch, heartbeat and commit and most Produce requests) have a share of
//! the pool to themselves (`RequestPools`), so that big frames, even when
//! they fill their share and take turns on its overdraft, never make a
//! well-behaved client's small request wait behind them.
//!
//! Connections per IP (`max.connections.per.ip` and its overrides, as
//! Kafka's `ConnectionQuotas`): a connection over the limit is closed right
//! after accept. The per-IP table has an entry only while that IP has a
//! connection, so it is bounded by `max.connections`.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use super::listener::Limits;

/// First reservation for a frame body larger than this; the buffer (and
/// the reservation) then doubles as it fills, so a connection holds at
/// most twice what it has received, or this much.
pub const FRAME_CHUNK_BYTES: usize = 64 * 1024;

/// Frames of at most this many bytes reserve from the small frames'
/// share of the pool.
pub const SMALL_FRAME_BYTES: usize = 1024 * 1024;

/// The small frames' share of `queued.max.request.bytes`: an eighth, at
/// least one small frame, at most the whole pool.
pub fn small_share_bytes(queued_max_request_bytes: usize) -> usize {
    (queued_max_request_bytes / 8).max(SMALL_FRAME_BYTES).min(queued_max_request_bytes)
}

/// One share of the broker-wide request memory, with its overdraft.
pub struct RequestPool {
    memory: Arc<Semaphore>,
    capacity_bytes: usize,
    /// One permit (see the module comment).
    overdraft: Arc<Semaphore>,
}

impl RequestPool {
    pub fn new(capacity_bytes: usize) -> RequestPool {
        let capacity_bytes = capacity_bytes.clamp(1, Semaphore::MAX_PERMITS);
        RequestPool {
            memory: Arc::new(Semaphore::new(capacity_bytes)),
            capacity_bytes,
            overdraft: Arc::new(Semaphore::new(1)),
        }
    }

    pub fn capacity_bytes(&self) -> usize {
        self.capacity_bytes
    }

    /// Bytes not reserved now.
    pub fn available_bytes(&self) -> usize {
        self.memory.available_permits()
    }
}

/// `queued.max.request.bytes`, split into the small frames' share and the
/// rest.
pub struct RequestPools {
    small: RequestPool,
    large: RequestPool,
}

impl RequestPools {
    pub fn new(queued_max_request_bytes: usize) -> RequestPools {
        let queued = queued_max_request_bytes.max(2);
        let small = small_share_bytes(queued).min(queued - 1);
        RequestPools { small: RequestPool::new(small), large: RequestPool::new(queued - small) }
    }

    /// The share a frame of `frame_bytes` reserves from.
    pub fn for_frame(&self, frame_bytes: usize) -> &RequestPool {
        if frame_bytes <= SMALL_FRAME_BYTES {
            &self.small
        } else {
            &self.large
        }
    }
}

/// Per-IP connection counts and memory budgets.
pub struct ClientQuotas {
    max_connections_per_ip: usize,
    overrides: BTreeMap<IpAddr, usize>,
    memory_per_ip_bytes: usize,
    by_ip: Mutex<HashMap<IpAddr, IpEntry>>,
}

struct IpEntry {
    connections: usize,
    memory: Arc<Semaphore>,
}

impl ClientQuotas {
    pub fn new(limits: &Limits) -> ClientQuotas {
        ClientQuotas {
            max_connections_per_ip: limits.max_connections_per_ip,
            overrides: limits.max_connections_per_ip_overrides.clone(),
            memory_per_ip_bytes: limits.queued_max_request_bytes_per_ip.clamp(1, Semaphore::MAX_PERMITS),
            by_ip: Mutex::new(HashMap::new()),
        }
    }

    /// The connection limit for `ip` (an override, else the default).
    pub fn connection_limit(&self, ip: IpAddr) -> usize {
        self.overrides.get(&ip).copied().unwrap_or(self.max_connections_per_ip)
    }

    /// Counts a new connection from `ip`, or `None` when `ip` is at its
    /// limit (the caller closes the socket).
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let limit = self.connection_limit(ip);
        let mut by_ip = self.by_ip.lock().unwrap_or_else(|e| e.into_inner());
        let count = by_ip.get(&ip).map_or(0, |e| e.connections);
        if count >= limit {
            return None;
        }
        let entry = by_ip
            .entry(ip)
            .or_insert_with(|| IpEntry { connections: 0, memory: Arc::new(Semaphore::new(self.memory_per_ip_bytes)) });
        entry.connections += 1;
        Some(IpSlot { quotas: self.clone(), ip, memory: entry.memory.clone() })
    }

    /// Connections open from `ip` now.
    pub fn connections(&self, ip: IpAddr) -> usize {
        self.by_ip.lock().unwrap_or_else(|e| e.into_inner()).get(&ip).map_or(0, |e| e.connections)
    }
}

/// One admitted connection of an IP; dropping it frees the slot.
pub struct IpSlot {
    quotas: Arc<ClientQuotas>,
    ip: IpAddr,
    memory: Arc<Semaphore>,
}

impl IpSlot {
    /// The IP's request-memory budget, shared by its connections.
    pub fn memory(&self) -> &Arc<Semaphore> {
        &self.memory
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut by_ip = self.quotas.by_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = by_ip.get_mut(&self.ip) {
            e.connections = e.connections.saturating_sub(1);
            if e.connections == 0 {
                by_ip.remove(&self.ip);
            }
        }
    }
}

/// The memory reserved for one request frame, in the broker-wide pool and
/// in its IP's budget; returned on drop (or by `release`).
pub struct FrameMemory {
    broker: Arc<Semaphore>,
    /// The broker's overdraft: one permit (see the module comment).
    overdraft: Arc<Semaphore>,
    overdraft_held: Option<OwnedSemaphorePermit>,
    ip: Arc<Semaphore>,
    broker_capacity_bytes: usize,
    ip_capacity_bytes: usize,
    broker_held_bytes: usize,
    ip_held_bytes: usize,
}

impl FrameMemory {
    /// An empty reservation against `pool` and `ip` (capacity
    /// `ip_capacity_bytes`).
    pub fn new(pool: &RequestPool, ip: Arc<Semaphore>, ip_capacity_bytes: usize) -> FrameMemory {
        FrameMemory {
            broker: pool.memory.clone(),
            overdraft: pool.overdraft.clone(),
            overdraft_held: None,
            ip,
            broker_capacity_bytes: pool.capacity_bytes,
            ip_capacity_bytes,
            broker_held_bytes: 0,
            ip_held_bytes: 0,
        }
    }

    /// Whether this frame reads on the broker's overdraft.
    pub fn is_overdrawn(&self) -> bool {
        self.overdraft_held.is_some()
    }

    /// Bytes reserved in the broker-wide pool.
    pub fn held_bytes(&self) -> usize {
        self.broker_held_bytes
    }

    /// Reserves `bytes` more, waiting while either budget is exhausted. A
    /// frame never reserves more than a budget's capacity: a frame larger
    /// than the whole pool still completes, holding all of it, as Kafka
    /// lets one request over `queued.max.request.bytes` through. The IP
    /// budget is taken first, always, so two connections never wait on
    /// each other's budgets in opposite orders.
    pub async fn grow(&mut self, bytes: usize) -> Result<(), tokio::sync::AcquireError> {
        let ip = bytes.min(self.ip_capacity_bytes.saturating_sub(self.ip_held_bytes));
        let ip = u32::try_from(ip).unwrap_or(u32::MAX);
        if ip > 0 {
            self.ip.acquire_many(ip).await?.forget();
            self.ip_held_bytes += ip as usize;
        }
        if self.overdraft_held.is_some() {
            return Ok(());
        }
        let broker = bytes.min(self.broker_capacity_bytes.saturating_sub(self.broker_held_bytes));
        let broker = u32::try_from(broker).unwrap_or(u32::MAX);
        if broker > 0 {
            match self.broker.try_acquire_many(broker) {
                Ok(permit) => permit.forget(),
                // A closed pool: the wait returns its error at once.
                Err(TryAcquireError::Closed) => self.broker.acquire_many(broker).await?.forget(),
                Err(TryAcquireError::NoPermits) => {
                    // The pool is exhausted: memory, or the overdraft,
                    // whichever comes first (both waits are cancel-safe).
                    tokio::select! {
                        permit = self.broker.acquire_many(broker) => permit?.forget(),
                        token = self.overdraft.clone().acquire_owned() => {
                            self.overdraft_held = Some(token?);
                            return Ok(());
                        }
                    }
                }
            }
            self.broker_held_bytes += broker as usize;
        }
        Ok(())
    }

    /// Returns the reserved memory now.
    pub fn release(&mut self) {
        self.overdraft_held = None;
        self.ip.add_permits(std::mem::take(&mut self.ip_held_bytes));
        self.broker.add_permits(std::mem::take(&mut self.broker_held_bytes));
    }
}

impl Drop for FrameMemory {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_ip: usize, overrides: &[(&str, usize)]) -> Limits {
        let mut l = Limits::defaults();
        l.max_connections_per_ip = per_ip;
        l.max_connections_per_ip_overrides = overrides.iter().map(|(ip, n)| (ip.parse().unwrap(), *n)).collect();
        l
    }

    #[test]
    fn connections_per_ip_are_counted_and_freed() {
        let q = Arc::new(ClientQuotas::new(&limits(2, &[("10.0.0.9", 0), ("10.0.0.8", 3)])));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let s1 = q.admit(a).unwrap();
        let s2 = q.admit(a).unwrap();
        assert!(q.admit(a).is_none(), "a third connection from one IP is refused");
        assert!(q.admit("10.0.0.2".parse().unwrap()).is_some(), "other IPs are not affected");
        drop(s1);
        let _s3 = q.admit(a).unwrap();
        drop(s2);
        assert_eq!(q.connections(a), 1);
        assert!(q.admit("10.0.0.9".parse().unwrap()).is_none(), "an override of 0 refuses all");
        let eights: Vec<_> = (0..3).filter_map(|_| q.admit("10.0.0.8".parse().unwrap())).collect();
        assert_eq!(eights.len(), 3);
        assert!(q.admit("10.0.0.8".parse().unwrap()).is_none());
        drop(eights);
        assert_eq!(q.by_ip.lock().unwrap().len(), 1, "entries go with their last connection");
    }

    #[tokio::test]
    async fn frame_memory_is_bounded_by_capacity_and_returned() {
        let pool = RequestPool::new(100);
        let broker = pool.memory.clone();
        let ip = Arc::new(Semaphore::new(40));
        let mut m = FrameMemory::new(&pool, ip.clone(), 40);
        m.grow(30).await.unwrap();
        m.grow(30).await.unwrap(); // over the IP budget: it gives what it has
        assert_eq!((broker.available_permits(), ip.available_permits()), (40, 0));
        let mut other = FrameMemory::new(&pool, ip.clone(), 40);
        let blocked = tokio::time::timeout(std::time::Duration::from_millis(20), other.grow(1)).await;
        assert!(blocked.is_err(), "the IP budget is exhausted");
        m.release();
        assert_eq!((broker.available_permits(), ip.available_permits()), (100, 40));
        other.grow(10).await.unwrap();
        drop(other);
        assert_eq!((broker.available_permits(), ip.available_permits()), (100, 40));
    }

    #[tokio::test]
    async fn frames_that_fill_the_pool_together_still_finish_one_at_a_time() {
        // Two frames of 80 in a pool of 100, each holding 50: without the
        // overdraft neither could ever grow again.
        let pool = RequestPool::new(100);
        let (broker, overdraft) = (pool.memory.clone(), pool.overdraft.clone());
        let ip = || Arc::new(Semaphore::new(1000));
        let mut a = FrameMemory::new(&pool, ip(), 1000);
        let mut b = FrameMemory::new(&pool, ip(), 1000);
        a.grow(50).await.unwrap();
        b.grow(50).await.unwrap();
        let wait = std::time::Duration::from_millis(200);
        tokio::time::timeout(wait, a.grow(30)).await.expect("the first to find the pool empty takes the overdraft").unwrap();
        assert!(a.is_overdrawn());
        assert!(tokio::time::timeout(std::time::Duration::from_millis(20), b.grow(30)).await.is_err(), "one overdraft at a time");
        a.release();
        tokio::time::timeout(wait, b.grow(30)).await.expect("a's memory and overdraft came back").unwrap();
        drop(b);
        drop(a);
        assert_eq!((broker.available_permits(), overdraft.available_permits()), (100, 1));
    }

    #[test]
    fn small_frames_have_their_own_share() {
        let pools = RequestPools::new(512 << 20);
        assert_eq!(pools.for_frame(SMALL_FRAME_BYTES).capacity_bytes(), 64 << 20);
        assert_eq!(pools.for_frame(SMALL_FRAME_BYTES + 1).capacity_bytes(), 448 << 20);
        let tiny = RequestPools::new(1);
        assert!(tiny.for_frame(10).capacity_bytes() >= 1 && tiny.for_frame(10 << 20).capacity_bytes() >= 1);
    }
}
