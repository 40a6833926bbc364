//! Volume budgets: at most K impressions (or conversions) of an offer in all per window,
//! paced so a daily budget is not spent in the first hour.

use std::sync::{Mutex, PoisonError};

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Counts {
    Impressions,
    Conversions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pacing {
    Even,
    None,
}

fn day() -> f64 {
    86_400.0
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BudgetSpec {
    pub max: u64,
    #[serde(default = "day")]
    pub window: f64,
    pub counts: Counts,
    pub pacing: Pacing,
}

/// Share of a window's budget that even pacing lets run ahead of the clock.
const PACING_BURST: f64 = 0.02;

#[derive(Debug)]
pub struct Budget {
    pub spec: BudgetSpec,
    /// (window index, units used in it).
    used: Mutex<(i64, u64)>,
}

impl Budget {
    #[cfg(test)]
    pub fn new(spec: BudgetSpec) -> Self {
        Self { spec, used: Mutex::new((i64::MIN, 0)) }
    }

    /// A budget with this one's spec and, if the spec is unchanged, its spend so far.
    pub fn carried_over(spec: BudgetSpec, previous: Option<&Budget>) -> Self {
        let used = previous.filter(|p| p.spec == spec).map_or((i64::MIN, 0), |p| *p.lock());
        Self { spec, used: Mutex::new(used) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (i64, u64)> {
        self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn window_of(&self, now: f64) -> i64 {
        (now / self.spec.window).floor() as i64
    }

    /// Units that may be used by `now` in its window.
    pub fn allowed(&self, now: f64) -> u64 {
        match self.spec.pacing {
            Pacing::None => self.spec.max,
            Pacing::Even => {
                let elapsed = now / self.spec.window - (now / self.spec.window).floor();
                let share = (elapsed + PACING_BURST).min(1.0);
                ((self.spec.max as f64 * share).ceil() as u64).clamp(1, self.spec.max)
            }
        }
    }

    /// (window index, units used in it), for a snapshot.
    pub fn counter(&self) -> (i64, u64) {
        *self.lock()
    }

    /// Restores a snapshot's counter.
    pub fn restore(&self, counter: (i64, u64)) {
        *self.lock() = counter;
    }

    /// (used, allowed) at `now`.
    pub fn usage(&self, now: f64) -> (u64, u64) {
        let window = self.window_of(now);
        let (w, used) = *self.lock();
        (if w >= window { used } else { 0 }, self.allowed(now))
    }

    /// Takes one unit if the budget allows it now; otherwise returns (used, allowed).
    pub fn try_take(&self, now: f64) -> Result<(), (u64, u64)> {
        let window = self.window_of(now);
        let allowed = self.allowed(now);
        let mut state = self.lock();
        // Windows only move forwards: a request dated in an earlier window counts against
        // the current one instead of opening that window afresh.
        if window > state.0 {
            *state = (window, 0);
        }
        if state.1 >= allowed {
            return Err((state.1, allowed));
        }
        state.1 += 1;
        Ok(())
    }

    /// Counts a unit that cannot be refused (a conversion that happened).
    pub fn add(&self, now: f64) {
        let window = self.window_of(now);
        let mut state = self.lock();
        // Windows only move forwards: a request dated in an earlier window counts against
        // the current one instead of opening that window afresh.
        if window > state.0 {
            *state = (window, 0);
        }
        state.1 += 1;
    }

    /// Gives back a unit taken at `taken_at` (a decision that was not shown).
    pub fn give_back(&self, taken_at: f64) {
        let window = self.window_of(taken_at);
        let mut state = self.lock();
        if state.0 == window {
            state.1 = state.1.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(max: u64, pacing: Pacing) -> Budget {
        Budget::new(BudgetSpec { max, window: 100.0, counts: Counts::Impressions, pacing })
    }

    #[test]
    fn even_pacing_spreads_the_budget_over_the_window() {
        let b = budget(100, Pacing::Even);
        let taken = (0..1000).filter(|_| b.try_take(1_000.0 + 10.0).is_ok()).count();
        assert_eq!(taken, 12, "10% of the window elapsed, plus the 2% burst");
        let taken_later = (0..1000).filter(|_| b.try_take(1_000.0 + 99.0).is_ok()).count();
        assert_eq!(taken + taken_later, 100);
        assert!(b.try_take(1_100.0).is_ok(), "a new window starts afresh");
    }

    #[test]
    fn give_back_frees_a_unit_in_the_same_window() {
        let b = budget(2, Pacing::None);
        assert!(b.try_take(5.0).is_ok() && b.try_take(5.0).is_ok());
        assert_eq!(b.try_take(5.0), Err((2, 2)));
        b.give_back(5.0);
        assert!(b.try_take(6.0).is_ok());
    }

    #[test]
    fn a_request_in_an_earlier_window_never_reopens_it() {
        let b = budget(3, Pacing::None);
        assert!((0..3).all(|_| b.try_take(250.0).is_ok()), "window 2 is full");
        assert!(b.try_take(150.0).is_err(), "window 1 is not opened afresh");
        assert!(b.try_take(180.0).is_err());
        assert_eq!(b.usage(150.0).0, 3);
        assert!(b.try_take(310.0).is_ok(), "the next window starts afresh");
    }
}
