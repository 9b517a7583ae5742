//! Replay and retry detection inside one receiver.
//!
//! DingTalk retries exactly when our earlier reply was lost, so a repeated callback must be answered with success
//! again but written only once. Concurrent copies wait for the first one's write instead of racing it.

use std::collections::{HashMap, VecDeque};

use parking_lot::Mutex;
use tokio::sync::watch;

/// The first copy's result as seen by the copies waiting on it.
type Flight = watch::Receiver<Option<bool>>;

enum Slot {
    InFlight(Flight),
    Written { expires_ms: i64 },
}

struct Inner {
    slots: HashMap<String, Slot>,
    /// Insertion order, for expiry and for the capacity bound.
    order: VecDeque<(i64, String)>,
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
        Self { inner: Mutex::new(Inner { slots: HashMap::new(), order: VecDeque::new() }), capacity: capacity.max(1) }
    }

    /// Returns how many entries were forgotten early to stay within capacity.
    pub(crate) fn claim(&self, id: &str, now_ms: i64) -> (Claim, u64) {
        let mut inner = self.inner.lock();
        let evicted = inner.prune(now_ms, self.capacity);
        let claim = match inner.slots.get(id) {
            Some(Slot::Written { expires_ms }) if *expires_ms > now_ms => Claim::Seen,
            Some(Slot::InFlight(flight)) => Claim::Wait(flight.clone()),
            _ => {
                let (tx, rx) = watch::channel(None);
                inner.slots.insert(id.to_owned(), Slot::InFlight(rx));
                Claim::Owner(tx)
            }
        };
        (claim, evicted)
    }

    /// Records the owner's outcome and wakes the waiting copies. A failed write is forgotten so that DingTalk's
    /// retry writes again.
    pub(crate) fn finish(&self, id: &str, owner: watch::Sender<Option<bool>>, written: bool, expires_ms: i64) {
        {
            let mut inner = self.inner.lock();
            if written {
                inner.slots.insert(id.to_owned(), Slot::Written { expires_ms });
                inner.order.push_back((expires_ms, id.to_owned()));
            } else {
                inner.slots.remove(id);
            }
        }
        owner.send_replace(Some(written));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().slots.len()
    }
}

impl Inner {
    fn prune(&mut self, now_ms: i64, capacity: usize) -> u64 {
        let mut evicted = 0;
        while let Some((expires_ms, _)) = self.order.front() {
            let expired = *expires_ms <= now_ms;
            if !expired && self.slots.len() < capacity {
                break;
            }
            let (_, id) = self.order.pop_front().expect("front exists");
            if matches!(self.slots.get(&id), Some(Slot::Written { expires_ms }) if *expires_ms <= now_ms || !expired) {
                self.slots.remove(&id);
                if !expired {
                    evicted += 1;
                }
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
        dedup.finish("a", owner, true, 100);
        assert!(matches!(dedup.claim("a", 99).0, Claim::Seen));
        assert!(matches!(dedup.claim("a", 100).0, Claim::Owner(_)));
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
