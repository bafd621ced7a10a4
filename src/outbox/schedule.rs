//! The retry schedule of outbox deliveries (README "Forwarding converted orders"): attempts immediately, then
//! after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h (about 75.6 h in all), each
//! delay stretched by 0–10 % jitter; a `Retry-After` the backend sends can push an attempt
//! later (never earlier), up to 10 h. Pure: the caller supplies the random number.
//!
//! The schedule's values are a setting ([`RetryPolicy`], defined in `config`); this module
//! is how the worker reads them.

use std::time::Duration;

pub use crate::config::RetryPolicy;

impl RetryPolicy {
    /// Attempts in all before an entry is dead.
    pub fn max_attempts(&self) -> usize {
        self.delays.len() + 1
    }

    /// Delay before the next attempt after `failures` failed attempts (1 = the first
    /// failed), or `None` when the schedule is exhausted. `unit` is a random number in
    /// [0, 1).
    pub fn next_delay(
        &self,
        failures: u32,
        retry_after: Option<Duration>,
        unit: f64,
    ) -> Option<Duration> {
        let step = usize::try_from(failures).ok()?.checked_sub(1)?;
        let base = *self.delays.get(step)?;
        let jitter = self.jitter.clamp(0.0, 1.0) * unit.clamp(0.0, 1.0);
        let delay = base + base.mul_f64(jitter);
        Some(match retry_after {
            Some(asked) => delay.max(asked.min(self.max_retry_after)),
            None => delay,
        })
    }
}

/// A random number in [0, 1) from the operating system's randomness (via UUIDv4).
pub fn random_unit() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() >> 75; // 53 random bits
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_delay_is_within_base_and_base_plus_ten_percent_and_then_the_entry_dies() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_attempts(), 10);
        for (i, base) in p.delays.iter().enumerate() {
            let failures = u32::try_from(i + 1).unwrap();
            let mut seen = std::collections::HashSet::new();
            for _ in 0..10_000 {
                let d = p.next_delay(failures, None, random_unit()).unwrap();
                assert!(
                    d >= *base && d <= base.mul_f64(1.1),
                    "{d:?} outside [{base:?}, +10%]"
                );
                seen.insert(d);
            }
            assert!(
                seen.len() >= 9_500,
                "jitter should spread delays ({} distinct)",
                seen.len()
            );
            assert_eq!(p.next_delay(failures, None, 0.0), Some(*base));
        }
        assert_eq!(p.next_delay(10, None, 0.5), None);
        assert_eq!(p.next_delay(0, None, 0.5), None);
    }

    #[test]
    fn retry_after_pushes_later_but_is_capped_at_ten_hours() {
        let p = RetryPolicy::default();
        let s = Duration::from_secs;
        assert_eq!(p.next_delay(1, Some(s(120)), 0.0), Some(s(120)));
        assert_eq!(
            p.next_delay(1, Some(s(1)), 0.0),
            Some(s(5)),
            "never earlier than scheduled"
        );
        assert_eq!(
            p.next_delay(1, Some(s(365 * 86400)), 0.0),
            Some(s(10 * 3600))
        );
    }
}
