//! Bounded single-producer / single-consumer ring: the only path between two shards.
//!
//! # Algorithm
//! Lamport's bounded SPSC queue over a power-of-two array, with four refinements that make it
//! fast across cores:
//! - **Per-slot sequence numbers** (as in FastForward and Vyukov's bounded queue): each slot
//!   carries the position it was last published for, on the same cache line as the item. The
//!   consumer learns that an item is ready by reading the slot it is about to take, so one
//!   message costs one cache-line transfer instead of two (a shared tail, then the slot).
//! - **Cached head.** The producer keeps a private copy of the consumer's `head` and re-reads the
//!   shared one only when the ring looks full.
//! - **Batched publication.** `push` writes the item and advances a private tail; `publish`
//!   stamps the sequence of every pushed slot (lines the producer just wrote, still in its cache)
//!   and stores `tail` once. The consumer pops a batch and returns the slots with one store of
//!   `head` (`release`).
//! - **Slots asked for ahead.** Each slot the producer writes was last read by the consumer's
//!   core, so the producer asks for the slot 1 KiB ahead with a write prefetch
//!   (`crate::prefetch`) as it writes one, when the cached head says that slot is free.
//!
//! Positions are free-running `usize` counters (wrapping): `position & mask` is the slot.
//!
//! # Field invariants
//! - `slots[p & mask].seq == p + 1` (stored with `Release` after the item was written) exactly
//!   when the item for position `p` is published and not yet consumed by position `p`; any other
//!   value means "not ready" for the consumer at `p` (an older round's stamp is `p + 1 - k·cap`).
//! - `head` (shared): written only by the consumer. Every position in `[head, tail)` holds an
//!   initialized item owned by the ring; other slots are uninitialized.
//! - `tail` (shared): written only by the producer, after the stamps; read for gauges and drop.
//! - `tail - head <= capacity` always.
//! - `head` and `tail` live on separate cache lines (`CachePadded`); each slot is one cache line.

use crate::sync::{Arc, AtomicUsize, Ordering, UnsafeCell};
use crossbeam_utils::CachePadded;
use std::mem::MaybeUninit;

/// One item and the position it was last published for, on one cache line.
#[repr(C, align(64))]
struct Slot<T> {
    seq: AtomicUsize,
    val: UnsafeCell<MaybeUninit<T>>,
}

struct Ring<T> {
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    slots: Box<[Slot<T>]>,
    mask: usize,
}

// SAFETY: items are moved between exactly one producer and one consumer thread; `T: Send` is
// what moving them requires. The slots are only accessed under the index protocol above.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: shared access is split: the producer writes only slots outside `[head, tail)`, the
// consumer reads only slots inside it, and the indices are atomics.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        let mut i = head;
        while i != tail {
            // SAFETY: `&mut self` means both endpoints are gone; `[head, tail)` holds initialized
            // items (invariant) that nobody else will read.
            self.slots[i & self.mask].val.with_mut(|p| unsafe { (*p).assume_init_drop() });
            i = i.wrapping_add(1);
        }
    }
}

/// Creates a ring of `capacity` slots (rounded up to a power of two, at least 2).
pub(crate) fn ring<T: Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let cap = capacity.max(2).next_power_of_two();
    // Position `i` starts "not ready": a stamp of `i` is never `i + 1`.
    let slots = (0..cap)
        .map(|i| Slot { seq: AtomicUsize::new(i), val: UnsafeCell::new(MaybeUninit::uninit()) })
        .collect();
    let ring = Arc::new(Ring {
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        slots,
        mask: cap - 1,
    });
    (
        Producer { ring: ring.clone(), tail: 0, published: 0, head_cache: 0 },
        Consumer { slots: ring.slots.as_ptr(), mask: ring.mask, ring, head: 0, released: 0 },
    )
}

/// The writing end. Not `Clone`: there is exactly one.
pub(crate) struct Producer<T> {
    ring: Arc<Ring<T>>,
    /// Next slot to write (private; `>= published`).
    tail: usize,
    /// Last value stored into `ring.tail`.
    published: usize,
    /// Last `ring.head` seen; `<=` the real head.
    head_cache: usize,
}

impl<T: Send> Producer<T> {
    /// Writes `item` into the next free slot without publishing it, or gives it back when full.
    #[inline]
    pub(crate) fn push(&mut self, item: T) -> Result<(), T> {
        let cap = self.ring.mask + 1;
        if self.tail.wrapping_sub(self.head_cache) == cap {
            self.head_cache = self.ring.head.load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.head_cache) == cap {
                return Err(item);
            }
        }
        self.prefetch_ahead();
        let slot = &self.ring.slots[self.tail & self.ring.mask];
        // SAFETY: `tail - head < cap`, so this slot is outside `[head, tail)`: the consumer does
        // not read it until we stamp it, and the Acquire load of `head` ordered its last read of
        // the slot before this write.
        slot.val.with_mut(|p| unsafe { (*p).write(item) });
        self.tail = self.tail.wrapping_add(1);
        Ok(())
    }

    /// Asks for the slot `prefetch::AHEAD` bytes ahead, to write it, when it is free as far as
    /// the cached head tells (the consumer read it on the ring's last round: `crate::prefetch`).
    #[inline(always)]
    fn prefetch_ahead(&self) {
        let ahead = (crate::prefetch::AHEAD / std::mem::size_of::<Slot<T>>()).max(1);
        let at = self.tail.wrapping_add(ahead);
        if at.wrapping_sub(self.head_cache) <= self.ring.mask {
            crate::prefetch::line(self.ring.slots.as_ptr().wrapping_add(at & self.ring.mask));
        }
    }

    /// Whether a slot is free (re-reads the consumer's head only when the cached one says full).
    #[inline(always)]
    pub(crate) fn has_room(&mut self) -> bool {
        let cap = self.ring.mask + 1;
        if self.tail.wrapping_sub(self.head_cache) == cap {
            self.head_cache = self.ring.head.load(Ordering::Acquire);
            return self.tail.wrapping_sub(self.head_cache) != cap;
        }
        true
    }

    /// Writes the next item in place through `write`, without publishing it.
    ///
    /// # Safety
    /// `has_room` must have returned `true` since the last push, and `write` must initialize
    /// the `T` it is given.
    ///
    /// Returns the slot's address: the item stays the producer's to change until `publish`.
    #[inline(always)]
    pub(crate) unsafe fn push_in_place(&mut self, write: impl FnOnce(*mut T)) -> *mut T {
        self.prefetch_ahead();
        let slot = &self.ring.slots[self.tail & self.ring.mask];
        // SAFETY: the caller checked `has_room`, so the slot is outside `[head, tail)` (see
        // `push`); `write` initializes it before the position is counted.
        let p = slot.val.with_mut(|p| {
            write(p as *mut T);
            p as *mut T
        });
        self.tail = self.tail.wrapping_add(1);
        p
    }

    /// Once the consumer is gone, takes back what it left (published or not), oldest first, and
    /// hands each item to `f`; returns `false` (taking nothing) while the consumer lives.
    pub(crate) fn orphaned(&mut self, mut f: impl FnMut(T)) -> bool {
        if Arc::strong_count(&self.ring) > 1 {
            return false;
        }
        let mut head = self.ring.head.load(Ordering::Acquire);
        while head != self.tail {
            let slot = &self.ring.slots[head & self.ring.mask];
            // SAFETY: the consumer is gone (ours is the only handle on the ring), so nobody
            // else reads the slots; `[head, tail)` holds initialized items (invariant), each
            // read once as `head` moves past it.
            f(slot.val.with(|p| unsafe { (*p).assume_init_read() }));
            head = head.wrapping_add(1);
        }
        // Nothing is left for the ring's drop.
        self.ring.head.store(head, Ordering::Release);
        self.ring.tail.store(head, Ordering::Release);
        self.published = head;
        true
    }

    /// Number of pushed items not yet published.
    #[inline]
    pub(crate) fn unpublished(&self) -> usize {
        self.tail.wrapping_sub(self.published)
    }

    /// Makes every pushed item visible to the consumer, in order. Returns whether there was
    /// anything new.
    #[inline]
    pub(crate) fn publish(&mut self) -> bool {
        if self.tail == self.published {
            return false;
        }
        let mut p = self.published;
        while p != self.tail {
            let next = p.wrapping_add(1);
            self.ring.slots[p & self.ring.mask].seq.store(next, Ordering::Release);
            p = next;
        }
        self.ring.tail.store(self.tail, Ordering::Release);
        self.published = self.tail;
        true
    }
}

/// The reading end. Not `Clone`: there is exactly one.
pub(crate) struct Consumer<T> {
    /// `ring.slots` and `ring.mask`, copied so a peek is one dependent load.
    slots: *const Slot<T>,
    mask: usize,
    ring: Arc<Ring<T>>,
    /// Next slot to read (private; `>= released`).
    head: usize,
    /// Last value stored into `ring.head`.
    released: usize,
}

// SAFETY: the raw `slots` pointer is a cached view into `ring`, which the consumer owns a
// reference to; moving the one consumer to another thread moves that access with it (the same
// as moving `ring` itself, which is `Send` for `T: Send`).
unsafe impl<T: Send> Send for Consumer<T> {}

impl<T: Send> Consumer<T> {
    /// Takes the next published item, if any. The slot is returned to the producer by `release`.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<T> {
        // SAFETY: the reader moves the live item it is given out, once (a plain read).
        unsafe { self.pop_by(|p| p.read()) }
    }

    /// As [`Consumer::pop`], moving the item out with `read` instead of a plain copy (which
    /// copies all of `T`, whatever part of it the item uses).
    ///
    /// # Safety
    /// `read` must move the item out of the slot it is given (a live, initialized `T`) and
    /// return it; the slot is not read again.
    #[inline]
    pub(crate) unsafe fn pop_by(&mut self, read: impl FnOnce(*const T) -> T) -> Option<T> {
        let slot = &self.ring.slots[self.head & self.ring.mask];
        if slot.seq.load(Ordering::Acquire) != self.head.wrapping_add(1) {
            return None;
        }
        // The stamp `head + 1`, read with Acquire, was stored with Release after the item for
        // this position was written; `read` moves it out once (caller's contract) and the slot
        // is not read again before the producer re-stamps it for a later round.
        let item = slot.val.with(|p| read(p as *const T));
        self.head = self.head.wrapping_add(1);
        Some(item)
    }

    /// Whether an item is published and not yet popped (one load; nothing is taken).
    #[inline]
    pub(crate) fn has_next(&self) -> bool {
        // SAFETY: `slots` points at `ring.slots`, which `ring` (held here) keeps alive and never
        // moves; `head & mask` is below its length (a power of two, `mask + 1`). Only the atomic
        // stamp is read.
        let slot = unsafe { &*self.slots.add(self.head & self.mask) };
        slot.seq.load(Ordering::Relaxed) == self.head.wrapping_add(1)
    }

    /// Hands every popped slot back to the producer with one store.
    #[inline]
    pub(crate) fn release(&mut self) {
        if self.head != self.released {
            self.ring.head.store(self.head, Ordering::Release);
            self.released = self.head;
        }
    }

    /// A read-only view of the occupancy, for metrics on other threads.
    pub(crate) fn gauge(&self) -> Gauge<T> {
        Gauge(self.ring.clone())
    }
}

impl<T> Drop for Producer<T> {
    /// Publishes what was pushed, so the ring owns (and eventually drops) every written item.
    fn drop(&mut self) {
        if self.tail != self.published {
            self.ring.tail.store(self.tail, Ordering::Release);
        }
    }
}

impl<T> Drop for Consumer<T> {
    /// Returns popped slots, so the ring does not drop items that were already moved out.
    fn drop(&mut self) {
        if self.head != self.released {
            self.ring.head.store(self.head, Ordering::Release);
        }
    }
}

/// Occupancy of a ring as seen from any thread (published minus released; may be stale).
pub(crate) struct Gauge<T>(Arc<Ring<T>>);

impl<T> Gauge<T> {
    pub(crate) fn depth(&self) -> usize {
        let tail = self.0.tail.load(Ordering::Relaxed);
        tail.wrapping_sub(self.0.head.load(Ordering::Relaxed))
    }
}

#[cfg(all(test, not(corelane_loom)))]
mod tests {
    use super::*;

    #[test]
    fn fifo_wraps_and_reports_full() {
        let (mut p, mut c) = ring::<u32>(4);
        for round in 0..10u32 {
            for i in 0..4 {
                p.push(round * 10 + i).unwrap();
            }
            assert_eq!(p.push(99), Err(99), "a full ring gives the item back");
            assert!(c.pop().is_none(), "nothing is visible before publish");
            assert!(p.publish());
            for i in 0..4 {
                assert_eq!(c.pop(), Some(round * 10 + i));
            }
            assert_eq!(c.pop(), None);
            c.release();
        }
    }

    #[test]
    fn popped_unreleased_and_pushed_unpublished_items_are_dropped_once() {
        let marker = std::sync::Arc::new(());
        let (mut p, mut c) = ring(8);
        for _ in 0..4 {
            p.push(marker.clone()).unwrap();
        }
        p.publish();
        let a = c.pop().unwrap();
        p.push(marker.clone()).unwrap();
        drop((p, c));
        drop(a);
        assert_eq!(std::sync::Arc::strong_count(&marker), 1);
    }

    #[test]
    fn unread_items_are_dropped_with_the_ring() {
        let marker = std::sync::Arc::new(());
        let (mut p, c) = ring(8);
        for _ in 0..5 {
            p.push(marker.clone()).unwrap();
        }
        p.publish();
        drop((p, c));
        assert_eq!(std::sync::Arc::strong_count(&marker), 1);
    }

    #[test]
    fn threads_transfer_in_order() {
        let (mut p, mut c) = ring::<u64>(64);
        const N: u64 = 200_000;
        let t = std::thread::spawn(move || {
            let mut i = 0;
            while i < N {
                match p.push(i) {
                    Ok(()) => i += 1,
                    Err(_) => {
                        p.publish();
                        std::hint::spin_loop()
                    }
                }
                if i % 16 == 0 {
                    p.publish();
                }
            }
            p.publish();
        });
        let mut expect = 0;
        while expect < N {
            match c.pop() {
                Some(v) => {
                    assert_eq!(v, expect);
                    expect += 1;
                }
                None => {
                    c.release();
                    std::hint::spin_loop()
                }
            }
        }
        t.join().unwrap();
    }
}

#[cfg(all(test, corelane_loom))]
mod loom_tests {
    use super::*;

    /// Every item arrives once, in order, through a ring small enough to fill and wrap.
    #[test]
    fn loom_ring_transfers_in_order_across_wrap() {
        loom::model(|| {
            let (mut p, mut c) = ring::<usize>(2);
            let t = loom::thread::spawn(move || {
                let mut i = 0;
                while i < 3 {
                    match p.push(i) {
                        Ok(()) => {
                            i += 1;
                            p.publish();
                        }
                        Err(_) => loom::thread::yield_now(),
                    }
                }
            });
            let mut next = 0;
            while next < 3 {
                match c.pop() {
                    Some(v) => {
                        assert_eq!(v, next);
                        next += 1;
                        c.release();
                    }
                    None => loom::thread::yield_now(),
                }
            }
            t.join().unwrap();
        });
    }

    /// Items left in the ring when both ends drop are dropped exactly once.
    #[test]
    fn loom_ring_drops_leftovers_once() {
        loom::model(|| {
            let item = Arc::new(());
            let (mut p, mut c) = ring::<Arc<()>>(2);
            let i2 = item.clone();
            let t = loom::thread::spawn(move || {
                p.push(i2.clone()).unwrap();
                p.push(i2).unwrap();
                p.publish();
            });
            let got = c.pop();
            t.join().unwrap();
            drop(got);
            drop(c);
            assert_eq!(Arc::strong_count(&item), 1);
        });
    }
}
