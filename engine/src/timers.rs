//! A shard's timers: a binary heap of deadlines (nanoseconds since the shard's epoch) over a slab
//! of actions, with cancellation.
//!
//! Cancelled entries are skipped lazily and the heap is rebuilt when they outnumber the live
//! ones, so memory stays proportional to live timers.

use crate::id::ActorId;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::task::Waker;
use std::time::{Duration, Instant};

/// Furthest a deadline is put: a delay past it means "never" in practice, and no arithmetic on
/// it can overflow.
const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `from + d`, saturated at `FAR` past `from`: a huge delay (from a user or from the wire) is a
/// deadline far in the future, never a panic and never a wrap into the past.
pub(crate) fn deadline_after(from: Instant, d: Duration) -> Instant {
    from.checked_add(d.min(FAR)).unwrap_or(from)
}

/// What a due timer does.
pub(crate) enum TimerAction {
    /// A graceful stop ran out of time: finalize the actor now.
    StopDeadline(ActorId),
    /// Wake a task (an ask waiting for its deadline).
    Wake(Waker),
    /// A supervisor's backoff delay has passed: restart the suspended actor.
    Restart(ActorId),
    /// An actor's idle timeout may have passed.
    Passivate(ActorId),
    /// A scheduled delivery.
    Task(crate::scheduler::Armed),
}

/// Handle to cancel a timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerId {
    idx: u32,
    gen: u32,
}

struct Slot {
    gen: u32,
    action: Option<TimerAction>,
}

pub(crate) struct Timers {
    /// Deadlines as nanoseconds since `epoch` (16-byte heap entries instead of 24).
    heap: BinaryHeap<Reverse<(u64, u32, u32)>>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    epoch: Instant,
}

impl Default for Timers {
    fn default() -> Self {
        Self { heap: BinaryHeap::new(), slots: Vec::new(), free: Vec::new(), live: 0, epoch: Instant::now() }
    }
}

impl Timers {
    /// `at` as nanoseconds since the epoch (a deadline before the epoch is due at once; one
    /// past `u64::MAX` nanoseconds, some 584 years, saturates there instead of wrapping).
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    fn instant(&self, nanos: u64) -> Instant {
        deadline_after(self.epoch, Duration::from_nanos(nanos))
    }

    pub(crate) fn add(&mut self, at: Instant, action: TimerAction) -> TimerId {
        let at = self.nanos(at);
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot { gen: 0, action: None });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[idx as usize];
        slot.action = Some(action);
        self.live += 1;
        self.heap.push(Reverse((at, idx, slot.gen)));
        TimerId { idx, gen: slot.gen }
    }

    pub(crate) fn cancel(&mut self, id: TimerId) {
        if let Some(slot) = self.slots.get_mut(id.idx as usize) {
            if slot.gen == id.gen && slot.action.take().is_some() {
                self.release(id.idx);
                if self.heap.len() > 1024 && self.heap.len() > 2 * self.live {
                    let slots = &self.slots;
                    self.heap.retain(|Reverse((_, i, g))| {
                        let s = &slots[*i as usize];
                        s.gen == *g && s.action.is_some()
                    });
                }
            }
        }
    }

    fn release(&mut self, idx: u32) {
        let slot = &mut self.slots[idx as usize];
        slot.gen = slot.gen.wrapping_add(1);
        self.free.push(idx);
        self.live -= 1;
    }

    fn is_current(&self, idx: u32, gen: u32) -> bool {
        let s = &self.slots[idx as usize];
        s.gen == gen && s.action.is_some()
    }

    /// The earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, idx, gen))) = self.heap.peek().copied() {
            if self.is_current(idx, gen) {
                return Some(self.instant(at));
            }
            self.heap.pop();
        }
        None
    }

    /// Takes one action whose deadline is `<= now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<TimerAction> {
        let now = self.nanos(now);
        loop {
            let Reverse((at, idx, gen)) = *self.heap.peek()?;
            if !self.is_current(idx, gen) {
                self.heap.pop();
                continue;
            }
            if at > now {
                return None;
            }
            self.heap.pop();
            let action = self.slots[idx as usize].action.take();
            self.release(idx);
            return action;
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Whether a live timer may be due at the time `now` gives, which is asked for only while a
    /// timer is live (a clock read is what this check exists to save). The earliest entry of
    /// the heap may have been cancelled, so `true` can be a false alarm (a `pop_due` that finds
    /// nothing), never a miss.
    ///
    /// Inlined into the dispatcher's loop as one load and a branch while nothing is pending; the
    /// look at the heap is out of line.
    #[inline(always)]
    pub(crate) fn maybe_due(&self, now: impl FnOnce() -> Instant) -> bool {
        self.live > 0 && self.earliest_due_by(now())
    }

    #[inline(never)]
    fn earliest_due_by(&self, now: Instant) -> bool {
        self.heap.peek().is_some_and(|Reverse((at, _, _))| *at <= self.nanos(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_in_order_and_cancel_skips() {
        let mut t = Timers::default();
        let now = Instant::now();
        let a = ActorId::new(0, 1, 1);
        let b = ActorId::new(0, 2, 1);
        let c = ActorId::new(0, 3, 1);
        t.add(now + Duration::from_millis(30), TimerAction::StopDeadline(c));
        let id = t.add(now + Duration::from_millis(10), TimerAction::StopDeadline(a));
        t.add(now + Duration::from_millis(20), TimerAction::StopDeadline(b));
        t.cancel(id);
        assert_eq!(t.next_deadline(), Some(now + Duration::from_millis(20)));
        assert!(t.pop_due(now).is_none());
        let due: Vec<_> = std::iter::from_fn(|| t.pop_due(now + Duration::from_millis(40)))
            .map(|a| match a {
                TimerAction::StopDeadline(id) => id,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(due, vec![b, c]);
        assert!(t.is_empty());
    }

    #[test]
    fn huge_delays_saturate_instead_of_wrapping_into_the_past() {
        let mut t = Timers::default();
        let now = Instant::now();
        let nanos_max = Duration::from_nanos(u64::MAX);
        for d in [Duration::MAX, nanos_max, nanos_max + Duration::from_secs(1)] {
            t.add(deadline_after(now, d), TimerAction::StopDeadline(ActorId::new(0, 1, 1)));
        }
        assert!(t.pop_due(now + Duration::from_secs(3600)).is_none(), "a far deadline fired early");
        assert!(t.next_deadline().unwrap() > now + Duration::from_secs(50 * 365 * 24 * 3600));
        assert_eq!(crate::scheduler::next_tick(now, Duration::MAX, now), deadline_after(now, FAR));
    }

    #[test]
    fn maybe_due_never_misses_a_due_timer() {
        let mut t = Timers::default();
        let now = Instant::now();
        assert!(!t.maybe_due(|| panic!("the clock is read while nothing is pending")));
        let far = t.add(now + Duration::from_secs(60), TimerAction::StopDeadline(ActorId::new(0, 1, 1)));
        assert!(!t.maybe_due(|| now), "a minute early");
        assert!(t.maybe_due(|| now + Duration::from_secs(60)));
        t.add(now + Duration::from_secs(1), TimerAction::StopDeadline(ActorId::new(0, 2, 1)));
        assert!(t.maybe_due(|| now + Duration::from_secs(1)), "the earlier timer is seen");
        // Cancelled: the next one still counts; with none live, nothing is due.
        t.cancel(far);
        assert!(t.maybe_due(|| now + Duration::from_secs(2)));
        assert!(t.pop_due(now + Duration::from_secs(2)).is_some());
        assert!(!t.maybe_due(|| panic!("the clock is read while only a cancelled timer is left")));
    }

    #[test]
    fn cancelled_entries_do_not_accumulate() {
        let mut t = Timers::default();
        let at = Instant::now() + Duration::from_secs(60);
        for i in 0..100_000 {
            let id = t.add(at, TimerAction::StopDeadline(ActorId::new(0, i, 1)));
            t.cancel(id);
        }
        assert!(t.heap.len() <= 2048, "heap kept {} dead entries", t.heap.len());
        assert!(t.slots.len() <= 1, "slots are reused");
    }
}
