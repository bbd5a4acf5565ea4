//! Choosing a partition the way Kafka's Java producer does by default:
//! `toPositive(murmur2(key)) % partitions` for keyed records (so a key
//! lands where a Java client would put it), and one partition per batch
//! ("sticky", KIP-480), moving on round-robin, for records without a key.

/// Kafka's `Utils.murmur2` (MurmurHash2, seed `0x9747b28c`).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    if tail.len() >= 3 {
        h ^= (tail[2] as u32) << 16;
    }
    if tail.len() >= 2 {
        h ^= (tail[1] as u32) << 8;
    }
    if !tail.is_empty() {
        h ^= tail[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition of a keyed record among `partitions` (> 0).
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    debug_assert!(partitions > 0);
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

/// Picks partitions for a stream of records: by key when there is one,
/// else the current sticky partition, which moves on at each new batch.
#[derive(Clone, Debug)]
pub struct Partitioner {
    partitions: i32,
    sticky: i32,
}

impl Partitioner {
    /// `start` spreads several producers' null-key records (e.g. the
    /// process id).
    pub fn new(partitions: i32, start: u32) -> Partitioner {
        let partitions = partitions.max(1);
        Partitioner { partitions, sticky: (start % partitions as u32) as i32 }
    }

    pub fn partition(&self, key: Option<&[u8]>) -> i32 {
        match key {
            Some(k) => partition_for_key(k, self.partitions),
            None => self.sticky,
        }
    }

    /// A batch was completed: null-key records go to the next partition.
    pub fn next_batch(&mut self) {
        self.sticky = (self.sticky + 1) % self.partitions;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values of Java's `Utils.murmur2` (kafka-clients 4.1, run on these
    /// strings' bytes; the first six are also in Kafka's UtilsTest).
    #[test]
    fn murmur2_matches_java() {
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
            (b"abc", 479470107),
            (b"0", 971027396),
            (b"1", -1993445489),
            (b"128", -326012175),
            (b"2187", -1508407203),
            (b"16384", -325739742),
            (b"10000000", -1830336757),
        ];
        for (data, want) in cases {
            assert_eq!(murmur2(data), *want, "{}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn keys_map_like_the_java_default_partitioner() {
        // toPositive(-973932308) = 1173551340; % 3 = 0, % 7 = 4.
        assert_eq!(partition_for_key(b"21", 3), (-973932308i32 & 0x7fff_ffff) % 3);
        assert_eq!(partition_for_key(b"21", 7), 1173551340 % 7);
        assert_eq!(partition_for_key(b"anything", 1), 0);
    }

    #[test]
    fn null_keys_stick_then_move_round_robin() {
        let mut p = Partitioner::new(3, 7);
        assert_eq!(p.partition(None), 1);
        assert_eq!(p.partition(None), 1);
        p.next_batch();
        assert_eq!(p.partition(None), 2);
        p.next_batch();
        assert_eq!(p.partition(None), 0);
        assert_eq!(p.partition(Some(b"21")), partition_for_key(b"21", 3));
    }
}
