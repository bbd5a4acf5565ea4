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
//! Connections per IP (`max.connections.per.ip` and its overrides, as
//! Kafka's `ConnectionQuotas`): a connection over the limit is closed right
//! after accept. The per-IP table has an entry only while that IP has a
//! connection, so it is bounded by `max.connections`.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use super::listener::Limits;

/// First reservation for a frame body larger than this; the buffer (and
/// the reservation) then doubles as it fills, so a connection holds at
/// most twice what it has received, or this much.
pub const FRAME_CHUNK_BYTES: usize = 64 * 1024;

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
    ip: Arc<Semaphore>,
    broker_capacity_bytes: usize,
    ip_capacity_bytes: usize,
    broker_held_bytes: usize,
    ip_held_bytes: usize,
}

impl FrameMemory {
    /// An empty reservation against `broker` (capacity
    /// `broker_capacity_bytes`) and `ip` (capacity `ip_capacity_bytes`).
    pub fn new(broker: Arc<Semaphore>, broker_capacity_bytes: usize, ip: Arc<Semaphore>, ip_capacity_bytes: usize) -> FrameMemory {
        FrameMemory { broker, ip, broker_capacity_bytes, ip_capacity_bytes, broker_held_bytes: 0, ip_held_bytes: 0 }
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
        let broker = bytes.min(self.broker_capacity_bytes.saturating_sub(self.broker_held_bytes));
        let broker = u32::try_from(broker).unwrap_or(u32::MAX);
        if broker > 0 {
            self.broker.acquire_many(broker).await?.forget();
            self.broker_held_bytes += broker as usize;
        }
        Ok(())
    }

    /// Returns the reserved memory now.
    pub fn release(&mut self) {
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
        let broker = Arc::new(Semaphore::new(100));
        let ip = Arc::new(Semaphore::new(40));
        let mut m = FrameMemory::new(broker.clone(), 100, ip.clone(), 40);
        m.grow(30).await.unwrap();
        m.grow(30).await.unwrap(); // over the IP budget: it gives what it has
        assert_eq!((broker.available_permits(), ip.available_permits()), (40, 0));
        let mut other = FrameMemory::new(broker.clone(), 100, ip.clone(), 40);
        let blocked = tokio::time::timeout(std::time::Duration::from_millis(20), other.grow(1)).await;
        assert!(blocked.is_err(), "the IP budget is exhausted");
        m.release();
        assert_eq!((broker.available_permits(), ip.available_permits()), (100, 40));
        other.grow(10).await.unwrap();
        drop(other);
        assert_eq!((broker.available_permits(), ip.available_permits()), (100, 40));
    }
}
