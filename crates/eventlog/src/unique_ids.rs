//! Which `ce_id`s the embedded log holds, kept in memory.
//!
//! DingTalk's event ids are random, so a unique index on disk takes every append to a random index page, and each
//! commit rewrites as many pages as it has records: under load that random write was most of the log's cost. The
//! log keeps a 64-bit hash of each id with the row it names instead, and reads that row back to compare the real
//! id, so a hash collision costs one lookup and never a wrong answer. The table is rebuilt from the log's newest
//! records at start-up, which keeps the check exact across restarts.
//!
//! It holds the newest `capacity` ids; a record whose id was last seen further back than that is appended again,
//! as on Kafka, and consumers drop it by `ce_id`. The receiver never asks for that: it refuses a callback older
//! than its time window, which at any realistic rate holds far fewer callbacks than the capacity.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

/// An id as the table knows it: its hash, and whether it lives among the collided ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdKey {
    hash: u64,
    collided: Option<(String, String)>,
}

pub(crate) struct UniqueIds {
    hasher: RandomState,
    /// Hash of topic and id → the row that holds it.
    rows: HashMap<u64, i64>,
    /// Ids whose hash an older id already took; almost always empty.
    collided: HashMap<(String, String), i64>,
    capacity: usize,
}

impl UniqueIds {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            hasher: RandomState::new(),
            rows: HashMap::default(),
            collided: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn hash(&self, topic: &str, ce_id: &str) -> u64 {
        self.hasher.hash_one((topic, ce_id))
    }

    /// Rows that may hold this id; the caller compares the stored id, since another id may share the hash.
    pub(crate) fn candidates(&self, hash: u64, topic: &str, ce_id: &str) -> impl Iterator<Item = i64> {
        let by_hash = self.rows.get(&hash).copied();
        let collided = if self.collided.is_empty() {
            None
        } else {
            self.collided.get(&(topic.to_owned(), ce_id.to_owned())).copied()
        };
        by_hash.into_iter().chain(collided)
    }

    /// Records a new id, known to be absent, in `row`. Returns the key that [`Self::forget`] takes back.
    pub(crate) fn insert(&mut self, hash: u64, topic: &str, ce_id: &str, row: i64) -> IdKey {
        if self.rows.contains_key(&hash) {
            let id = (topic.to_owned(), ce_id.to_owned());
            self.collided.insert(id.clone(), row);
            return IdKey { hash, collided: Some(id) };
        }
        self.rows.insert(hash, row);
        IdKey { hash, collided: None }
    }

    /// Takes back an insert whose transaction was rolled back.
    pub(crate) fn forget(&mut self, key: &IdKey) {
        match &key.collided {
            Some(id) => drop(self.collided.remove(id)),
            None => drop(self.rows.remove(&key.hash)),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.rows.len() + self.collided.len()
    }

    /// Over capacity, forgets the oldest tenth (by row, which follows append order) so that the cost of the pass
    /// is spread over many appends.
    pub(crate) fn trim(&mut self) {
        if self.len() <= self.capacity {
            return;
        }
        let keep = self.capacity - self.capacity / 10;
        let mut rows: Vec<i64> = self.rows.values().chain(self.collided.values()).copied().collect();
        let cut = rows.len() - keep;
        let (_, oldest_kept, _) = rows.select_nth_unstable(cut);
        let oldest_kept = *oldest_kept;
        self.rows.retain(|_, row| *row >= oldest_kept);
        self.collided.retain(|_, row| *row >= oldest_kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_found_by_hash_and_taken_back_on_rollback() {
        let mut ids = UniqueIds::new(10);
        let hash = ids.hash("t", "a");
        assert_eq!(ids.candidates(hash, "t", "a").count(), 0);
        let key = ids.insert(hash, "t", "a", 7);
        assert_eq!(ids.candidates(hash, "t", "a").collect::<Vec<_>>(), [7]);
        assert_ne!(ids.hash("u", "a"), hash, "the topic is part of the key");
        ids.forget(&key);
        assert_eq!(ids.len(), 0);
    }

    #[test]
    fn an_id_whose_hash_is_taken_is_kept_apart_and_both_rows_are_candidates() {
        let mut ids = UniqueIds::new(10);
        let hash = ids.hash("t", "a");
        ids.insert(hash, "t", "a", 1);
        // A second id with the same hash: the caller found row 1 holds another id, so this one is new.
        let key = ids.insert(hash, "t", "b", 2);
        assert_eq!(ids.candidates(hash, "t", "b").collect::<Vec<_>>(), [1, 2]);
        assert_eq!(ids.candidates(hash, "t", "a").collect::<Vec<_>>(), [1]);
        ids.forget(&key);
        assert_eq!(ids.candidates(hash, "t", "b").collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn over_capacity_the_oldest_rows_are_forgotten() {
        let mut ids = UniqueIds::new(100);
        for row in 0..101 {
            let hash = ids.hash("t", &row.to_string());
            ids.insert(hash, "t", &row.to_string(), row);
        }
        ids.trim();
        assert_eq!(ids.len(), 90);
        let newest = ids.hash("t", "100");
        assert_eq!(ids.candidates(newest, "t", "100").collect::<Vec<_>>(), [100]);
        let oldest = ids.hash("t", "0");
        assert_eq!(ids.candidates(oldest, "t", "0").count(), 0);
    }
}
