//! Exponential backoff with jitter, for anything that retries: a supervised restart, a
//! reconnect, a request to a store that is not answering. Each delay is drawn from the upper
//! half of an exponential step ("equal jitter"): never less than half the step, so a retry is
//! not hurried, and spread over the other half, so parties that failed together do not retry
//! together.

use std::time::Duration;

/// Delays from `min`, doubling up to `max`, each with jitter.
///
/// ```
/// use corelane::Backoff;
/// use std::time::Duration;
/// let ms = Duration::from_millis;
/// let mut b = Backoff::new(ms(10), ms(25));
/// let d: Vec<Duration> = (0..4).map(|_| b.next_delay()).collect();
/// assert!(ms(5) <= d[0] && d[0] <= ms(10));
/// assert!(ms(10) <= d[1] && d[1] <= ms(20));
/// assert!(ms(12) <= d[3] && d[3] <= ms(25)); // capped
/// b.reset();
/// assert!(b.next_delay() <= ms(10));
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    /// Steps from `min` doubling up to `max` (`max` below `min` counts as `min`).
    pub fn new(min: Duration, max: Duration) -> Self {
        Self { min, max: max.max(min), step: min }
    }

    /// The next delay: the current step with jitter; the step doubles for the next one.
    pub fn next_delay(&mut self) -> Duration {
        let d = jittered(self.step);
        self.step = self.step.saturating_mul(2).min(self.max);
        d
    }

    /// Starts again from `min` (after a success).
    pub fn reset(&mut self) {
        self.step = self.min;
    }
}

/// `step` with equal jitter: uniformly between half of it and all of it (from the calling
/// thread's generator).
pub(crate) fn jittered(step: Duration) -> Duration {
    let nanos = u64::try_from(step.as_nanos()).unwrap_or(u64::MAX);
    let half = nanos / 2;
    Duration::from_nanos(half + fastrand::u64(0..=nanos - half))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_each_in_the_upper_half_of_its_step_and_spread() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(8), ms(40));
        let steps = [8, 16, 32, 40, 40];
        for s in steps {
            let d = b.next_delay();
            assert!(ms(s) / 2 <= d && d <= ms(s), "{d:?} for a step of {s} ms");
        }
        // Jitter: many parties at one step do not all wait the same.
        let mut seen: Vec<Duration> = (0..32).map(|_| jittered(ms(100))).collect();
        seen.sort();
        seen.dedup();
        assert!(seen.len() > 16, "{seen:?}");
    }
}
