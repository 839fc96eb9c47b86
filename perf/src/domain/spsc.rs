//! A bare bounded single-producer/single-consumer ring of `Copy` items, publishing every item
//! at once (latency first): the "same stages over bare rings" baseline of the domain
//! workloads. Indices are cache-padded; each side caches the other's index.

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
}

// SAFETY: the one producer writes only slots in [tail, head + capacity) and the one consumer
// reads only slots in [head, tail); each index is published with Release after its slot access
// and read with Acquire before the other side touches the slot. `T: Copy` has no drop.
unsafe impl<T: Copy + Send> Sync for Ring<T> {}

/// The sending half.
pub(crate) struct Tx<T> {
    ring: Arc<Ring<T>>,
    tail: usize,
    head_seen: usize,
}

/// The receiving half.
pub(crate) struct Rx<T> {
    ring: Arc<Ring<T>>,
    head: usize,
    tail_seen: usize,
}

/// A ring of `capacity` slots (a power of two).
pub(crate) fn spsc<T: Copy + Send>(capacity: usize) -> (Tx<T>, Rx<T>) {
    assert!(capacity.is_power_of_two());
    let ring = Arc::new(Ring {
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        slots: (0..capacity).map(|_| UnsafeCell::new(MaybeUninit::uninit())).collect(),
        mask: capacity - 1,
    });
    (Tx { ring: ring.clone(), tail: 0, head_seen: 0 }, Rx { ring, head: 0, tail_seen: 0 })
}

impl<T: Copy + Send> Tx<T> {
    /// Pushes and publishes `v`, spinning while the ring is full.
    #[inline]
    pub(crate) fn push(&mut self, v: T) {
        let cap = self.ring.mask + 1;
        while self.tail - self.head_seen == cap {
            self.head_seen = self.ring.head.load(Ordering::Acquire);
            std::hint::spin_loop();
        }
        // SAFETY: `tail - head < capacity`, so slot `tail` is free: the consumer released it
        // (head read with Acquire) and reads it again only after our Release store below.
        unsafe { (*self.ring.slots[self.tail & self.ring.mask].get()).write(v) };
        self.tail += 1;
        self.ring.tail.store(self.tail, Ordering::Release);
    }
}

impl<T: Copy + Send> Rx<T> {
    /// The next item, if one is published.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<T> {
        if self.head == self.tail_seen {
            self.tail_seen = self.ring.tail.load(Ordering::Acquire);
            if self.head == self.tail_seen {
                return None;
            }
        }
        // SAFETY: `head < tail` (tail read with Acquire after the producer wrote the slot), so
        // the slot holds an initialised `T`; we copy it out before releasing it below.
        let v = unsafe { (*self.ring.slots[self.head & self.ring.mask].get()).assume_init() };
        self.head += 1;
        self.ring.head.store(self.head, Ordering::Release);
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_cross_threads_in_order_through_a_small_ring() {
        let (mut tx, mut rx) = spsc::<u64>(4);
        let t = std::thread::spawn(move || {
            for i in 0..10_000 {
                tx.push(i);
            }
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
