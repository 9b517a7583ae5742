//! Replay and retry detection inside one receiver.
//!
//! DingTalk retries exactly when our earlier reply was lost, so a repeated callback must be answered with success
//! again but written only once. Concurrent copies wait for the first one's write instead of racing it.
//!
//! Ids are remembered as 128-bit digests, not strings: the cache holds every id of the time window, and at tens of
//! thousands of callbacks a second the strings alone would dominate the receiver's memory.

use std::collections::{HashMap, VecDeque};
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
    u32::try_from(now_ms.div_euclid(1000)).unwrap_or(u32::MAX)
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

struct Inner {
    /// Written ids and when they stop mattering.
    written: DigestMap<u32>,
    in_flight: DigestMap<Flight>,
    /// Insertion order, for expiry and for the capacity bound.
    order: VecDeque<(u32, IdDigest)>,
}

pub(crate) struct Dedup {
    inner: Mutex<Inner>,
    capacity: usize,
}

pub(crate) enum Claim {
    /// This request writes; report the result with [`Dedup::finish`].
    Owner(watch::Sender<Option<bool>>),
    /// Already written within the window.
    Seen,
    /// Another copy is writing right now.
    Wait(Flight),
}

impl Dedup {
    pub(crate) fn new(capacity: usize) -> Self {
        let inner = Inner { written: DigestMap::default(), in_flight: DigestMap::default(), order: VecDeque::new() };
        Self { inner: Mutex::new(inner), capacity: capacity.max(1) }
    }

    /// Returns how many entries were forgotten early to stay within capacity.
    pub(crate) fn claim(&self, id: &str, now_ms: i64) -> (Claim, u64) {
        let key = digest(id);
        let mut inner = self.inner.lock();
        let now = now_secs(now_ms);
        let evicted = inner.prune(now, self.capacity);
        if inner.written.get(&key).is_some_and(|expires| *expires > now) {
            return (Claim::Seen, evicted);
        }
        if let Some(flight) = inner.in_flight.get(&key) {
            return (Claim::Wait(flight.clone()), evicted);
        }
        let (tx, rx) = watch::channel(None);
        inner.in_flight.insert(key, rx);
        (Claim::Owner(tx), evicted)
    }

    /// Records the owner's outcome and wakes the waiting copies. A failed write is forgotten so that DingTalk's
    /// retry writes again.
    pub(crate) fn finish(&self, id: &str, owner: watch::Sender<Option<bool>>, written: bool, expires_ms: i64) {
        let key = digest(id);
        {
            let mut inner = self.inner.lock();
            inner.in_flight.remove(&key);
            if written {
                let expires = expiry_secs(expires_ms);
                inner.written.insert(key, expires);
                inner.order.push_back((expires, key));
            }
        }
        owner.send_replace(Some(written));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        let inner = self.inner.lock();
        inner.written.len() + inner.in_flight.len()
    }
}

impl Inner {
    fn prune(&mut self, now: u32, capacity: usize) -> u64 {
        let mut evicted = 0;
        while let Some(&(queued_expiry, key)) = self.order.front() {
            let expired = queued_expiry <= now;
            if !expired && self.written.len() < capacity {
                break;
            }
            self.order.pop_front();
            match self.written.get(&key) {
                // Re-written later with a newer expiry: a later queue entry owns it.
                Some(current) if expired && *current > now => {}
                Some(_) => {
                    self.written.remove(&key);
                    if !expired {
                        evicted += 1;
                    }
                }
                None => {}
            }
        }
        evicted
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

    #[test]
    fn written_ids_are_seen_until_they_expire() {
        let dedup = Dedup::new(10);
        let (Claim::Owner(owner), _) = dedup.claim("a", 0) else { panic!("first claim owns") };
        dedup.finish("a", owner, true, 100_000);
        assert!(matches!(dedup.claim("a", 99_999).0, Claim::Seen));
        // Expiry is kept in whole seconds, rounded up: never forgotten early.
        assert!(matches!(dedup.claim("a", 100_999).0, Claim::Seen));
        assert!(matches!(dedup.claim("a", 101_000).0, Claim::Owner(_)));
    }

    #[test]
    fn failed_writes_are_forgotten() {
        let dedup = Dedup::new(10);
        let (Claim::Owner(owner), _) = dedup.claim("a", 0) else { panic!() };
        assert!(matches!(dedup.claim("a", 0).0, Claim::Wait(_)));
        dedup.finish("a", owner, false, 100);
        assert!(matches!(dedup.claim("a", 1).0, Claim::Owner(_)));
    }

    #[test]
    fn capacity_evicts_the_oldest_and_counts_it() {
        let dedup = Dedup::new(2);
        let mut evicted = 0;
        for id in ["a", "b", "c"] {
            let (Claim::Owner(owner), n) = dedup.claim(id, 0) else { panic!() };
            evicted += n;
            dedup.finish(id, owner, true, 1_000);
        }
        assert_eq!(evicted, 1);
        assert!(matches!(dedup.claim("c", 2).0, Claim::Seen));
        assert!(matches!(dedup.claim("a", 2).0, Claim::Owner(_)), "the oldest id was forgotten");
        assert!(dedup.len() <= 3);
    }
}
