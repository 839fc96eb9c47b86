//! Which CPU a thread runs on, and where each shard was last seen running.
//!
//! A waiter spins only while the answer can come from another CPU. When the shard that will
//! answer runs on the waiter's own CPU (the scheduler put both there: on a 2-core host with
//! another process keeping one core busy, `main` and the shard share the other), every
//! nanosecond of spinning is taken from that shard, and the answer comes only after the
//! scheduler switches threads. So a waiter that finds the shard's [`Seat`] on its CPU yields
//! at once instead of spinning, and tells the shard (the seat's guest flag) that a thread on
//! its CPU waits for it: the shard then yields at its next idle pass instead of spinning
//! first, and the answer reaches the waiter after two switches instead of two spin windows and
//! two switches (measured on this project's VM: 5.5 µs per plain-thread ask → see
//! `docs/benchmarks.md`, "Waiting next to the shard").
//!
//! The CPU comes from `sched_getcpu`, which glibc answers from the thread's restartable-sequence
//! area (about a nanosecond). The seat is a hint, never a correctness condition: a stale one
//! (the shard migrated while busy) costs a yield or a spin window, nothing more, so plain
//! atomics with relaxed ordering serve, and the model checker need not see them.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// No CPU known (not published yet, or this platform cannot tell).
const UNKNOWN: u32 = u32::MAX;

/// The CPU the calling thread runs on now, if the platform can tell.
#[inline]
pub(crate) fn current() -> Option<u32> {
    #[cfg(all(target_os = "linux", not(corelane_loom)))]
    {
        // SAFETY: `sched_getcpu` takes no arguments and touches no memory of ours; it returns
        // -1 on failure, which `try_from` turns into `None`.
        let c = unsafe { libc::sched_getcpu() };
        u32::try_from(c).ok()
    }
    #[cfg(not(all(target_os = "linux", not(corelane_loom))))]
    None
}

/// Where a shard thread was last seen running, and whether a thread on that CPU waits for it.
/// The shard writes the CPU (only when it changed, so the line stays shared between the shard
/// and the waiters that read it); a co-located waiter raises the guest flag, on a line its own
/// CPU already holds.
#[derive(Debug)]
pub(crate) struct Seat {
    cpu: AtomicU32,
    guest: AtomicBool,
}

impl Default for Seat {
    fn default() -> Self {
        Self { cpu: AtomicU32::new(UNKNOWN), guest: AtomicBool::new(false) }
    }
}

impl Seat {
    /// Shard side: records the CPU the calling (shard) thread runs on now.
    #[inline]
    pub(crate) fn publish(&self) {
        let Some(c) = current() else { return };
        if self.cpu.load(Ordering::Relaxed) != c {
            self.cpu.store(c, Ordering::Relaxed);
        }
    }

    /// Waiter side: whether the shard was last seen on the calling thread's CPU.
    #[inline]
    pub(crate) fn is_callers(&self) -> bool {
        let seen = self.cpu.load(Ordering::Relaxed);
        seen != UNKNOWN && current() == Some(seen)
    }

    /// Waiter side: a thread on the shard's CPU waits for it (call right before yielding).
    #[inline]
    pub(crate) fn guest_waits(&self) {
        if !self.guest.load(Ordering::Relaxed) {
            self.guest.store(true, Ordering::Relaxed);
        }
    }

    /// Shard side, on an idle pass: whether a waiter on its CPU asked it to give the CPU up
    /// (and clears the request).
    #[inline]
    pub(crate) fn take_guest(&self) -> bool {
        self.guest.load(Ordering::Relaxed) && self.guest.swap(false, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seat_is_the_callers_only_once_published_from_the_callers_cpu() {
        let seat = Seat::default();
        assert!(!seat.is_callers(), "an unpublished seat is nobody's");
        if current().is_none() {
            return; // this platform cannot tell: seats stay unknown, waiters keep spinning
        }
        seat.publish();
        // The thread may migrate between the two calls; a few tries find it in place.
        assert!((0..100).any(|_| {
            seat.publish();
            seat.is_callers()
        }));
        seat.cpu.store(current().unwrap() ^ 1, Ordering::Relaxed);
        assert!((0..100).any(|_| !seat.is_callers()), "another CPU's seat is not the caller's");
    }

    #[test]
    fn a_guest_request_is_taken_once() {
        let seat = Seat::default();
        assert!(!seat.take_guest());
        seat.guest_waits();
        seat.guest_waits();
        assert!(seat.take_guest());
        assert!(!seat.take_guest(), "taken: cleared");
    }
}
