//! A bare bounded single-producer/single-consumer ring of `Copy` items between two threads:
//! the raw baseline the engine's rings are measured against (`raw-spsc`, batched publication)
//! and the "same stages over bare rings" of the domain workloads (publication per item).
//! Indices are cache-padded; each side caches the other's index and shares its own every
//! `publish_every` items, and at once whenever it would otherwise wait (a full ring, an empty
//! one), so neither side waits for a count the other has not shared.

use crossbeam_utils::CachePadded;
use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

struct Ring<T> {
    /// Next slot the consumer reads; written by the consumer only.
    head: CachePadded<AtomicUsize>,
    /// Next slot the producer writes; written by the producer only.
    tail: CachePadded<AtomicUsize>,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
    /// `publish_every - 1` (a power of two, so the check is a mask, not a division).
    publish_mask: usize,
}

// SAFETY: the one producer writes only slots in [tail, head + capacity) and the one consumer
// reads only slots in [head, tail); each index is published with Release after its slot access
// and read with Acquire before the other side touches the slot. `T: Copy` has no drop.
unsafe impl<T: Copy + Send> Sync for Ring<T> {}

/// The sending half. Each half has cache lines of its own: the two are moved to their
/// threads in neighbouring allocations, and a shared line would cost a transfer per item.
#[repr(align(128))]
pub(crate) struct Tx<T> {
    ring: Arc<Ring<T>>,
    tail: usize,
    head_seen: usize,
}

/// The receiving half.
#[repr(align(128))]
pub(crate) struct Rx<T> {
    ring: Arc<Ring<T>>,
    head: usize,
    tail_seen: usize,
}

/// A ring of `capacity` slots (a power of two), each side sharing its index every
/// `publish_every` items (a power of two; 1: every item, for latency).
pub(crate) fn spsc<T: Copy + Send>(capacity: usize, publish_every: usize) -> (Tx<T>, Rx<T>) {
    assert!(capacity.is_power_of_two() && publish_every.is_power_of_two());
    let ring = Arc::new(Ring {
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        slots: (0..capacity).map(|_| UnsafeCell::new(MaybeUninit::uninit())).collect(),
        mask: capacity - 1,
        publish_mask: publish_every - 1,
    });
    (Tx { ring: ring.clone(), tail: 0, head_seen: 0 }, Rx { ring, head: 0, tail_seen: 0 })
}

impl<T: Copy + Send> Tx<T> {
    /// Pushes `v`, spinning while the ring is full.
    #[inline(always)]
    pub(crate) fn push(&mut self, v: T) {
        let cap = self.ring.mask + 1;
        while self.tail - self.head_seen == cap {
            self.head_seen = self.ring.head.load(Ordering::Acquire);
            if self.tail - self.head_seen == cap {
                // The consumer may be waiting for what we have not shared yet.
                self.flush();
                std::hint::spin_loop();
            }
        }
        // SAFETY: `tail - head < capacity`, so slot `tail` is free: the consumer released it
        // (head read with Acquire) and reads it again only after our Release store of `tail`.
        unsafe { (*self.ring.slots[self.tail & self.ring.mask].get()).write(v) };
        self.tail += 1;
        if self.tail & self.ring.publish_mask == 0 {
            self.flush();
        }
    }

    /// Shares every pushed item with the consumer.
    #[inline]
    pub(crate) fn flush(&mut self) {
        self.ring.tail.store(self.tail, Ordering::Release);
    }
}

impl<T: Copy + Send> Rx<T> {
    /// The next item, if one is shared.
    #[inline(always)]
    pub(crate) fn pop(&mut self) -> Option<T> {
        if self.head == self.tail_seen {
            // The producer may be waiting for room we have not shared yet.
            self.ring.head.store(self.head, Ordering::Release);
            self.tail_seen = self.ring.tail.load(Ordering::Acquire);
            if self.head == self.tail_seen {
                return None;
            }
        }
        // SAFETY: `head < tail` (tail read with Acquire after the producer wrote the slot), so
        // the slot holds an initialised `T`; we copy it out before releasing it below.
        let v = unsafe { (*self.ring.slots[self.head & self.ring.mask].get()).assume_init() };
        self.head += 1;
        if self.head & self.ring.publish_mask == 0 {
            self.ring.head.store(self.head, Ordering::Release);
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_cross_threads_in_order_publishing_each_or_in_batches() {
        for publish_every in [1, 4, 64] {
            let (mut tx, mut rx) = spsc::<u64>(4, publish_every);
            let t = std::thread::spawn(move || {
                for i in 0..10_000 {
                    tx.push(i);
                }
                tx.flush();
            });
            let mut next = 0;
            while next < 10_000 {
                if let Some(v) = rx.pop() {
                    assert_eq!(v, next);
                    next += 1;
                }
            }
            t.join().unwrap();
            assert_eq!(rx.pop(), None);
        }
    }
}
