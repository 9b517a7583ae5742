//! Replay and retry detection inside one receiver.
//!
//! DingTalk retries exactly when our earlier reply was lost, so a repeated callback must be answered with success
//! again but written only once. Concurrent copies wait for the first one's write instead of racing it.
//!
//! Ids are remembered as 128-bit digests, not strings: the cache holds every id of the time window, and at tens of
//! thousands of callbacks a second the strings alone would dominate the receiver's memory. For the same reason an
//! id is stored once, with its expiry beside it, and expired ids are swept out in passes rather than tracked in a
//! second, ordered structure. The ids are spread over shards so that no single table grows large enough for its
//! doubling to spike the process's peak memory, and so that handlers rarely wait on each other's lock.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use parking_lot::Mutex;
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;

/// The first copy's result as seen by the copies waiting on it.
type Flight = watch::Receiver<Option<bool>>;

/// 128 bits: a collision would drop a real event as a replay, so the odds must stay negligible at millions of ids.
/// A byte array rather than `u128` keeps entries unpadded.
type IdDigest = [u8; 16];

fn digest(id: &str) -> IdDigest {
    Sha256::digest(id.as_bytes())[..16].try_into().expect("16 bytes")
}

/// Expiry in whole seconds since the epoch: four bytes instead of eight per remembered id.
fn expiry_secs(expires_ms: i64) -> u32 {
    u32::try_from(expires_ms.div_euclid(1000) + 1).unwrap_or(u32::MAX)
}

fn now_secs(now_ms: i64) -> u32 {
    u32::try_from(now_ms.div_euclid(1000).max(0)).unwrap_or(u32::MAX)
}

/// The keys are already uniform digests; hashing them again would only cost time.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }
}

type DigestMap<V> = HashMap<IdDigest, V, BuildHasherDefault<DigestHasher>>;

/// Ids per shard below which one shard is enough; small caches (and tests) keep an exact, global capacity.
const IDS_PER_SHARD: usize = 65_536;
const MAX_SHARDS: usize = 16;
/// How often a shard drops its expired ids even when it is not full.
const SWEEP_EVERY_SECS: u32 = 10;

#[derive(Default)]
struct Shard {
    /// Written ids and when they stop mattering.
    written: DigestMap<u32>,
    in_flight: DigestMap<Flight>,
    next_sweep: u32,
}

pub(crate) struct Dedup {
    shards: Box<[Mutex<Shard>]>,
    shard_capacity: usize,
}

/// The right, and the duty, to write one id; hand it back with [`Owner::finish`]. An owner dropped unfinished
/// (its request failed early, or panicked) releases the id as not written, so a retry can write it: a claim
/// that outlived its request would refuse every later copy of the event forever.
pub(crate) struct Owner<'a> {
    dedup: &'a Dedup,
    key: IdDigest,
    flight: Option<watch::Sender<Option<bool>>>,
}

pub(crate) enum Claim<'a> {
    /// This request writes.
    Owner(Owner<'a>),
    /// Already written within the window.
    Seen,
    /// Another copy is writing right now.
    Wait(Flight),
}

impl Dedup {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let shards = capacity.div_ceil(IDS_PER_SHARD).clamp(1, MAX_SHARDS);
        Self {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            shard_capacity: capacity.div_ceil(shards),
        }
    }

    fn shard(&self, key: &IdDigest) -> &Mutex<Shard> {
        &self.shards[usize::from(key[0]) % self.shards.len()]
    }

    pub(crate) fn claim(&self, id: &str, now_ms: i64) -> Claim<'_> {
        let key = digest(id);
        let mut shard = self.shard(&key).lock();
        if shard.written.get(&key).is_some_and(|expires| *expires > now_secs(now_ms)) {
            return Claim::Seen;
        }
        if let Some(flight) = shard.in_flight.get(&key) {
            return Claim::Wait(flight.clone());
        }
        let (flight, rx) = watch::channel(None);
        shard.in_flight.insert(key, rx);
        Claim::Owner(Owner { dedup: self, key, flight: Some(flight) })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().written.len()).sum()
    }
}

impl Owner<'_> {
    /// Records the outcome and wakes the waiting copies. A failed write is forgotten so that DingTalk's retry
    /// writes again. Returns how many unexpired ids were forgotten early to stay within capacity.
    pub(crate) fn finish(mut self, written: bool, now_ms: i64, expires_ms: i64) -> u64 {
        let evicted = {
            let mut shard = self.dedup.shard(&self.key).lock();
            shard.in_flight.remove(&self.key);
            if written {
                let evicted = shard.make_room(now_secs(now_ms), self.dedup.shard_capacity);
                shard.written.insert(self.key, expiry_secs(expires_ms));
                evicted
            } else {
                0
            }
        };
        if let Some(flight) = self.flight.take() {
            flight.send_replace(Some(written));
        }
        evicted
    }
}

impl Drop for Owner<'_> {
    fn drop(&mut self) {
        let Some(flight) = self.flight.take() else { return };
        self.dedup.shard(&self.key).lock().in_flight.remove(&self.key);
        flight.send_replace(Some(false));
    }
}

impl Shard {
    /// Sweeps out expired ids now and then, and whenever the shard is full; if it is still full, forgets the ids
    /// closest to expiry, a tenth of the shard at a time so that the cost of the pass is spread over many inserts.
    fn make_room(&mut self, now: u32, capacity: usize) -> u64 {
        let full = self.written.len() >= capacity;
        if !full && now < self.next_sweep {
            return 0;
        }
        self.next_sweep = now.saturating_add(SWEEP_EVERY_SECS);
        self.written.retain(|_, expires| *expires > now);
        if self.written.len() < capacity {
            return 0;
        }
        let keep = capacity - (capacity / 10).max(1);
        let mut expiries: Vec<u32> = self.written.values().copied().collect();
        let cut = expiries.len() - keep;
        let (_, threshold, _) = expiries.select_nth_unstable(cut - 1);
        let threshold = *threshold;
        let before = self.written.len();
        // Expiries are whole seconds, so many ids can share the threshold: keep as many of them as the cut did.
        let mut spare = expiries[cut..].iter().filter(|e| **e == threshold).count();
        self.written.retain(|_, expires| {
            if *expires > threshold {
                true
            } else if *expires == threshold && spare > 0 {
                spare -= 1;
                true
            } else {
                false
            }
        });
        (before - self.written.len()) as u64
    }
}

/// Waits for the first copy; true when it was written.
pub(crate) async fn wait(mut flight: Flight) -> bool {
    match flight.wait_for(Option::is_some).await {
        Ok(result) => result.unwrap_or(false),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dedup: &Dedup, id: &str, now_ms: i64, expires_ms: i64) -> u64 {
        let Claim::Owner(owner) = dedup.claim(id, now_ms) else { panic!("{id} should be new") };
        owner.finish(true, now_ms, expires_ms)
    }

    #[test]
    fn written_ids_are_seen_until_they_expire() {
        let dedup = Dedup::new(10);
        write(&dedup, "a", 0, 100_000);
        assert!(matches!(dedup.claim("a", 99_999), Claim::Seen));
        // Expiry is kept in whole seconds, rounded up: never forgotten early.
        assert!(matches!(dedup.claim("a", 100_999), Claim::Seen));
        assert!(matches!(dedup.claim("a", 101_000), Claim::Owner(_)));
    }

    #[test]
    fn failed_writes_are_forgotten() {
        let dedup = Dedup::new(10);
        let Claim::Owner(owner) = dedup.claim("a", 0) else { panic!() };
        assert!(matches!(dedup.claim("a", 0), Claim::Wait(_)));
        assert_eq!(owner.finish(false, 0, 100), 0);
        assert!(matches!(dedup.claim("a", 1), Claim::Owner(_)));
    }

    #[test]
    fn a_claim_dropped_unfinished_is_released_and_its_waiters_told() {
        let dedup = Dedup::new(10);
        let Claim::Owner(owner) = dedup.claim("a", 0) else { panic!() };
        let Claim::Wait(mut flight) = dedup.claim("a", 0) else { panic!() };
        drop(owner);
        assert_eq!(*flight.borrow_and_update(), Some(false), "waiters learn it was not written");
        assert!(matches!(dedup.claim("a", 1), Claim::Owner(_)), "a retry may write it");
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _owner = dedup.claim("b", 0);
            panic!("the request failed while it held the claim");
        }));
        assert!(panicked.is_err());
        assert!(matches!(dedup.claim("b", 1), Claim::Owner(_)), "a panic does not wedge the id");
    }

    #[test]
    fn capacity_forgets_the_ids_closest_to_expiry_and_counts_them() {
        let dedup = Dedup::new(2);
        let evicted: u64 = [("a", 1_000), ("b", 3_000), ("c", 2_000)]
            .into_iter()
            .map(|(id, expires)| write(&dedup, id, 0, expires))
            .sum();
        assert_eq!(evicted, 1);
        assert!(matches!(dedup.claim("b", 2), Claim::Seen));
        assert!(matches!(dedup.claim("c", 2), Claim::Seen));
        assert!(matches!(dedup.claim("a", 2), Claim::Owner(_)), "the id closest to expiry was forgotten");
        assert_eq!(dedup.len(), 2);
    }

    #[test]
    fn ids_sharing_one_expiry_are_forgotten_a_tenth_at_a_time() {
        let dedup = Dedup::new(20);
        let evicted: u64 = (0..21).map(|i| write(&dedup, &format!("id{i}"), 0, 5_000)).sum();
        assert_eq!(evicted, 2, "a tenth of the shard, not every id at the threshold");
        assert_eq!(dedup.len(), 19);
    }

    #[test]
    fn expired_ids_are_swept_without_counting_as_evictions() {
        let dedup = Dedup::new(10);
        write(&dedup, "a", 0, 1_000);
        write(&dedup, "b", 0, 60_000);
        assert_eq!(write(&dedup, "c", 20_000, 80_000), 0);
        assert_eq!(dedup.len(), 2, "only the expired id went");
    }

    #[test]
    fn a_sharded_cache_stays_within_its_capacity() {
        let dedup = Dedup::new(200_000);
        assert!(dedup.shards.len() > 1);
        let evicted: u64 = (0..300_000).map(|i| write(&dedup, &format!("id{i}"), 0, 3_600_000 + i)).sum();
        assert!(dedup.len() <= 200_000, "{} ids kept", dedup.len());
        assert_eq!(evicted as usize + dedup.len(), 300_000);
        assert!(matches!(dedup.claim("id299999", 1), Claim::Seen), "the newest ids are kept");
    }
}
