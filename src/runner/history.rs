//! When a resource failed, for its restart threshold. Only failures within the last period
//! count and older ones simply stop counting (Pacemaker's failure-timeout), so a resource
//! never needs a manual cleanup to be allowed to restart again.

use std::collections::VecDeque;

#[derive(Clone, Debug, Default)]
pub(super) struct FailureHistory {
    /// Failure times in ms, oldest first.
    at_ms: VecDeque<u64>,
}

/// Whether a failure at `failed_ms` still counts at `now_ms` (within the last `period_ms`).
fn counts(failed_ms: u64, period_ms: u64, now_ms: u64) -> bool {
    failed_ms.saturating_add(period_ms) > now_ms
}

impl FailureHistory {
    /// Failures within the last `period_ms`.
    pub fn count(&self, period_ms: u64, now_ms: u64) -> usize {
        self.at_ms
            .iter()
            .filter(|failed_ms| counts(**failed_ms, period_ms, now_ms))
            .count()
    }

    /// Records a failure at `now_ms` and returns how many count now, this one included.
    /// Keeps at most `keep` entries: the decision only asks whether the count exceeds the
    /// threshold, so `threshold + 1` suffice and a fast-failing resource cannot grow it.
    pub fn record(&mut self, period_ms: u64, now_ms: u64, keep: usize) -> usize {
        self.at_ms
            .retain(|failed_ms| counts(*failed_ms, period_ms, now_ms));
        self.at_ms.push_back(now_ms);
        while self.at_ms.len() > keep.max(1) {
            self.at_ms.pop_front();
        }
        self.at_ms.len()
    }

    /// When the count within the period falls below `limit` (None: it already has).
    pub fn falls_below_at(&self, limit: usize, period_ms: u64, now_ms: u64) -> Option<u64> {
        let counting: Vec<u64> = self
            .at_ms
            .iter()
            .copied()
            .filter(|failed_ms| counts(*failed_ms, period_ms, now_ms))
            .collect();
        // Below `limit` once all but `limit - 1` of them expired: the oldest that must go is
        // at index len - limit.
        let index = counting.len().checked_sub(limit.max(1))?;
        counting
            .get(index)
            .map(|failed_ms| failed_ms.saturating_add(period_ms))
    }

    pub fn forget(&mut self) {
        self.at_ms.clear();
    }
}
