//! A SHA-256 hash chain over audit entries. Each entry's hash covers its own fields and the previous entry's
//! hash, so changing, removing or reordering any stored row breaks every link from there on, and [`verify`]
//! names the first entry that no longer fits.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// 1, 2, 3, … with no gaps.
    pub seq: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    /// What the entry is about, e.g. a download request id.
    pub subject: String,
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("entry {seq}: expected sequence number {expected}")]
    Gap { seq: i64, expected: i64 },
    #[error("entry {seq}: does not link to the entry before it")]
    Unlinked { seq: i64 },
    #[error("entry {seq}: its contents do not match its hash (changed after it was written)")]
    Altered { seq: i64 },
}

impl ChainError {
    pub fn seq(&self) -> i64 {
        match self {
            Self::Gap { seq, .. } | Self::Unlinked { seq } | Self::Altered { seq } => *seq,
        }
    }
}

/// JSON with object keys sorted at every level, so the hash does not depend on how a map was built.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The hash of an entry with these fields after `prev_hash`. Fields are length-prefixed so no two different
/// entries can be made to read the same.
pub fn hash(
    prev_hash: &str,
    seq: i64,
    at_ms: i64,
    actor: &str,
    action: &str,
    subject: &str,
    details: &Value,
) -> String {
    let mut details_text = String::new();
    canonical(details, &mut details_text);
    let mut hasher = Sha256::new();
    for part in [prev_hash, &seq.to_string(), &at_ms.to_string(), actor, action, subject, &details_text] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

impl Entry {
    /// The entry that follows `previous` (or starts the chain).
    pub fn next(
        previous: Option<&Entry>,
        at_ms: i64,
        actor: &str,
        action: &str,
        subject: &str,
        details: Value,
    ) -> Self {
        let (seq, prev_hash) = previous.map_or((1, GENESIS.to_owned()), |p| (p.seq + 1, p.hash.clone()));
        let hash = hash(&prev_hash, seq, at_ms, actor, action, subject, &details);
        Self {
            seq,
            at_ms,
            actor: actor.into(),
            action: action.into(),
            subject: subject.into(),
            details,
            prev_hash,
            hash,
        }
    }
}

/// Checks a whole chain in order; `Ok` carries the number of entries.
pub fn verify<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Result<u64, ChainError> {
    Verified::genesis().extend(entries)
}

/// How far a chain has been found intact: the last entry that fits, which the next entries must follow. A
/// verification can stop here and resume later with only the entries after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The last intact entry's sequence number; 0 before the first.
    pub seq: i64,
    /// Its hash; [`GENESIS`] before the first.
    pub hash: String,
}

impl Verified {
    pub fn genesis() -> Self {
        Self { seq: 0, hash: GENESIS.to_owned() }
    }

    /// Checks `entries`, which must follow on from here in order, moving past each that fits; `Ok` carries how
    /// many did. On an error it stays after the last entry that fitted.
    pub fn extend<'a>(&mut self, entries: impl IntoIterator<Item = &'a Entry>) -> Result<u64, ChainError> {
        let mut count = 0;
        for e in entries {
            let expected = self.seq + 1;
            if e.seq != expected {
                return Err(ChainError::Gap { seq: e.seq, expected });
            }
            if e.prev_hash != self.hash {
                return Err(ChainError::Unlinked { seq: e.seq });
            }
            if !e.intact() {
                return Err(ChainError::Altered { seq: e.seq });
            }
            self.seq = e.seq;
            self.hash.clone_from(&e.hash);
            count += 1;
        }
        Ok(count)
    }
}

impl Entry {
    /// Whether the entry's contents still hash to its hash.
    pub fn intact(&self) -> bool {
        hash(&self.prev_hash, self.seq, self.at_ms, &self.actor, &self.action, &self.subject, &self.details)
            == self.hash
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn chain(n: usize) -> Vec<Entry> {
        let mut out: Vec<Entry> = Vec::new();
        for i in 0..n {
            let e = Entry::next(
                out.last(),
                i as i64,
                "user_dpo",
                "decided",
                "req1",
                json!({"decision": "approve", "i": i}),
            );
            out.push(e);
        }
        out
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(&chain(5)), Ok(5));
        assert_eq!(verify(&Vec::new()), Ok(0));
    }

    #[test]
    fn any_change_is_named_by_its_entry() {
        let mut c = chain(5);
        c[2].details = json!({"decision": "reject", "i": 2});
        assert_eq!(verify(&c), Err(ChainError::Altered { seq: 3 }));

        let mut c = chain(5);
        c[3].actor = "someone_else".into();
        assert_eq!(verify(&c), Err(ChainError::Altered { seq: 4 }));

        let mut c = chain(5);
        c.remove(1);
        assert_eq!(verify(&c), Err(ChainError::Gap { seq: 3, expected: 2 }));

        // Rewriting one entry and its hash still breaks the next link.
        let mut c = chain(5);
        c[1].details = json!({"forged": true});
        c[1].hash = hash(&c[1].prev_hash, 2, c[1].at_ms, "user_dpo", "decided", "req1", &c[1].details);
        assert_eq!(verify(&c), Err(ChainError::Unlinked { seq: 3 }));
    }

    #[test]
    fn a_chain_checked_in_pieces_is_checked_as_a_whole() {
        let c = chain(7);
        let mut verified = Verified::genesis();
        assert_eq!(verified.extend(&c[..3]), Ok(3));
        assert_eq!(verified.extend(&c[3..3]), Ok(0));
        assert_eq!(verified.extend(&c[3..]), Ok(4));
        assert_eq!(verified, Verified { seq: 7, hash: c[6].hash.clone() });

        // A piece that does not follow on is refused, and the progress stays where it was.
        let mut verified = Verified::genesis();
        verified.extend(&c[..2]).unwrap();
        assert_eq!(verified.extend(&c[3..]), Err(ChainError::Gap { seq: 4, expected: 3 }));
        let mut altered = c.clone();
        altered[3].subject = "req2".into();
        verified.extend(&altered[2..3]).unwrap();
        assert_eq!(verified.extend(&altered[3..]), Err(ChainError::Altered { seq: 4 }));
        assert_eq!(verified.seq, 3);
        assert!(c[3].intact() && !altered[3].intact());
    }

    #[test]
    fn key_order_does_not_change_the_hash() {
        let a = hash(GENESIS, 1, 0, "a", "b", "c", &json!({"x": 1, "y": {"b": 2, "a": 1}}));
        let b = hash(GENESIS, 1, 0, "a", "b", "c", &serde_json::from_str(r#"{"y":{"a":1,"b":2},"x":1}"#).unwrap());
        assert_eq!(a, b);
        assert_ne!(hash(GENESIS, 1, 0, "ab", "c", "", &json!(null)), hash(GENESIS, 1, 0, "a", "bc", "", &json!(null)));
    }
}
