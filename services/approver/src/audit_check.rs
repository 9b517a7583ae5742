//! The audit chain checked while dingguard runs, as `dingguard audit verify` checks it, but in bounded pieces: each
//! pass verifies what was appended since the last one, then re-verifies a stretch of the older entries, resuming
//! where the previous pass stopped, so a row changed after it was first verified is still found, within as many
//! passes as the chain has budgets' worth of entries.

use std::time::Duration;

use dingguard_audit::{ChainError, Verified};
use dingguard_store::{Store, StoreError};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

/// Entries read per query.
const PAGE: u64 = 1000;
/// Entries one pass verifies at most, new and old together: a few hundred milliseconds of hashing and reading.
const BUDGET: u64 = 20_000;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    /// ok or broken.
    outcome: &'static str,
}

/// What one pass found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// Every entry read fitted; the chain is intact through entry `verified`.
    Intact { verified: i64 },
    /// An entry does not fit where it stands; the error names it.
    Broken(ChainError),
}

/// A periodic verification of the audit chain, with `dingguard_audit_chain_checks_total{outcome}` and
/// `dingguard_audit_chain_verified_entries`.
pub struct AuditCheck {
    store: Store,
    every: Duration,
    budget: u64,
    checks: Family<OutcomeLabels, Counter>,
    verified_entries: Gauge,
    /// The newest entry found intact.
    tip: Verified,
    /// How far the re-verification of the older entries has come; it starts over once it reaches the tip.
    sweep: Verified,
    /// The re-verification stopped at a break, which the next pass looks at first.
    sweep_broken: bool,
}

impl AuditCheck {
    pub fn new(store: Store, every: Duration, registry: &mut Registry) -> Self {
        let checks = Family::<OutcomeLabels, Counter>::default();
        for outcome in ["ok", "broken"] {
            drop(checks.get_or_create(&OutcomeLabels { outcome }));
        }
        let verified_entries = Gauge::default();
        let r = registry.sub_registry_with_prefix("dingguard");
        r.register("audit_chain_checks", "Passes over the audit chain, by outcome (ok, broken)", checks.clone());
        r.register(
            "audit_chain_verified_entries",
            "Entries of the audit chain found intact, from its first, by the last pass",
            verified_entries.clone(),
        );
        Self {
            store,
            every,
            budget: BUDGET,
            checks,
            verified_entries,
            tip: Verified::genesis(),
            sweep: Verified::genesis(),
            sweep_broken: false,
        }
    }

    /// At most `entries` verified per pass (at least one).
    pub fn with_budget(mut self, entries: u64) -> Self {
        self.budget = entries.max(1);
        self
    }

    /// A pass now, then one every interval, until `shutdown`. A store that cannot be read skips the pass.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            if let Err(error) = self.check().await {
                tracing::warn!(%error, "the audit chain could not be read; checking again at the next interval");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.every) => {}
            }
        }
    }

    /// One pass, counted: an error in the chain is logged with the entry it names. A chain once broken stays
    /// broken, and every later pass says so again.
    pub async fn check(&mut self) -> Result<Checked, StoreError> {
        let checked = self.pass().await?;
        match &checked {
            Checked::Intact { verified } => {
                self.checks.get_or_create(&OutcomeLabels { outcome: "ok" }).inc();
                self.verified_entries.set(*verified);
            }
            Checked::Broken(error) => {
                self.checks.get_or_create(&OutcomeLabels { outcome: "broken" }).inc();
                tracing::error!(entry = error.seq(), %error, "audit chain broken");
            }
        }
        Ok(checked)
    }

    async fn pass(&mut self) -> Result<Checked, StoreError> {
        // The newest entry found intact must still be there as it was, or the chain was rewritten beneath it.
        if self.tip.seq > 0 {
            let kept = self.store.audit_entry(self.tip.seq).await?;
            if !kept.is_some_and(|e| e.hash == self.tip.hash && e.intact()) {
                return Ok(Checked::Broken(ChainError::Altered { seq: self.tip.seq }));
            }
        }
        let mut budget = self.budget;
        // A break the re-verification found is looked at again before anything else, so no pass reports the
        // chain intact while it is not.
        if self.sweep_broken {
            if let Some(error) = self.sweep(&mut budget).await? {
                return Ok(Checked::Broken(error));
            }
            self.sweep_broken = false;
        }
        // New entries next: they are what nobody has verified yet.
        while budget > 0 {
            let want = budget.min(PAGE);
            let page = self.page(self.tip.seq, want).await?;
            if let Err(error) = self.tip.extend(&page) {
                return Ok(Checked::Broken(error));
            }
            budget -= page.len() as u64;
            if (page.len() as u64) < want {
                break;
            }
        }
        if let Some(error) = self.sweep(&mut budget).await? {
            self.sweep_broken = true;
            return Ok(Checked::Broken(error));
        }
        Ok(Checked::Intact { verified: self.tip.seq })
    }

    /// The older entries again, up to the tip, with what `budget` leaves; starts over from the first entry once
    /// it reached the tip. On a break it stays before the entry that does not fit.
    async fn sweep(&mut self, budget: &mut u64) -> Result<Option<ChainError>, StoreError> {
        while *budget > 0 {
            let remaining = u64::try_from(self.tip.seq - self.sweep.seq).unwrap_or(0);
            if remaining == 0 {
                self.sweep = Verified::genesis();
                break;
            }
            let page = self.page(self.sweep.seq, (*budget).min(remaining).min(PAGE)).await?;
            if page.is_empty() {
                // Everything after the sweep's position up to the tip is gone.
                return Ok(Some(ChainError::Gap { seq: self.tip.seq, expected: self.sweep.seq + 1 }));
            }
            if let Err(error) = self.sweep.extend(&page) {
                return Ok(Some(error));
            }
            *budget = budget.saturating_sub(page.len() as u64);
        }
        Ok(None)
    }

    async fn page(&self, after: i64, entries: u64) -> Result<Vec<dingguard_audit::Entry>, StoreError> {
        self.store.audit_entries_after(after, i64::try_from(entries).unwrap_or(i64::MAX)).await
    }
}
