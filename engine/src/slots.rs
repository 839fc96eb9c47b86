//! Per-shard slot allocation and the liveness table every thread can read.
//!
//! Any thread may spawn onto any shard, so a slot (and its generation) is reserved under a
//! small lock before the spawn request travels to the shard; the actor's id is known at once.
//! The table holds one `AtomicU32` per slot: the current generation, with `LIVE` set while the
//! actor accepts messages. `try_tell` from any thread reads it to give a message back instead
//! of turning it into a dead letter. Writers: the allocator (under the lock) and the owning
//! shard (when the actor stops). Readers: anyone, lock-free.
//!
//! The table grows in fixed segments published through atomic pointers, so readers never see a
//! moving array.

use crate::id::{GEN_MASK, MAX_SLOTS};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

const LIVE: u32 = 1 << 31;
/// Set while the actor is suspended after a failure (readable by `is_suspended` anywhere).
const SUSPENDED: u32 = 1 << 30;
const SEG_BITS: u32 = 16;
const SEG_LEN: usize = 1 << SEG_BITS;
const SEGMENTS: usize = (MAX_SLOTS as usize) / SEG_LEN;

type Segment = [AtomicU32; SEG_LEN];

/// Generations and liveness of one shard's slots, plus the free list.
pub(crate) struct Slots {
    segments: Box<[AtomicPtr<Segment>]>,
    alloc: Mutex<Alloc>,
}

struct Alloc {
    free: Vec<u32>,
    next: u32,
}

/// Returned when a shard has no slot left.
#[derive(Debug)]
pub(crate) struct SlotsExhausted;

impl Slots {
    pub(crate) fn new() -> Self {
        Self {
            segments: (0..SEGMENTS).map(|_| AtomicPtr::new(std::ptr::null_mut())).collect(),
            alloc: Mutex::new(Alloc { free: Vec::new(), next: 0 }),
        }
    }

    fn cell(&self, slot: u32) -> Option<&AtomicU32> {
        let seg = self.segments.get((slot >> SEG_BITS) as usize)?.load(Ordering::Acquire);
        // SAFETY: a non-null segment pointer was published (Release) after the segment was fully
        // initialized, and segments are freed only in `Drop`, which needs `&mut self`.
        let seg = unsafe { seg.as_ref()? };
        Some(&seg[slot as usize & (SEG_LEN - 1)])
    }

    /// Reserves a slot and its next generation, marked live. Returns `(slot, gen)`.
    pub(crate) fn reserve(&self) -> Result<(u32, u32), SlotsExhausted> {
        let mut a = self.alloc.lock();
        let slot = match a.free.pop() {
            Some(s) => s,
            None => {
                if a.next >= MAX_SLOTS {
                    return Err(SlotsExhausted);
                }
                let s = a.next;
                a.next += 1;
                let seg = &self.segments[(s >> SEG_BITS) as usize];
                if seg.load(Ordering::Relaxed).is_null() {
                    let fresh: Box<Segment> = Box::new(std::array::from_fn(|_| AtomicU32::new(0)));
                    seg.store(Box::into_raw(fresh), Ordering::Release);
                }
                s
            }
        };
        let cell = self.cell(slot).expect("segment allocated above");
        // Generation 0 is never used, so no id is 0 (a raw 0 means "no actor").
        let gen = match (cell.load(Ordering::Relaxed) & GEN_MASK).wrapping_add(1) & GEN_MASK {
            0 => 1,
            g => g,
        };
        cell.store(gen | LIVE, Ordering::Release);
        Ok((slot, gen))
    }

    /// The actor `(slot, gen)` stops accepting messages.
    pub(crate) fn mark_dead(&self, slot: u32, gen: u32) {
        // Only the owning shard writes a reserved slot, so load-then-store does not race.
        if let Some(c) = self.cell(slot) {
            if c.load(Ordering::Relaxed) & GEN_MASK == gen {
                c.store(gen, Ordering::Release);
            }
        }
    }

    /// Marks the live actor `(slot, gen)` suspended or not.
    pub(crate) fn set_suspended(&self, slot: u32, gen: u32, on: bool) {
        // Only the owning shard writes a reserved slot, so load-then-store does not race.
        if let Some(c) = self.cell(slot) {
            let v = c.load(Ordering::Relaxed);
            if v & GEN_MASK == gen && v & LIVE != 0 {
                c.store(if on { v | SUSPENDED } else { v & !SUSPENDED }, Ordering::Release);
            }
        }
    }

    /// Whether `(slot, gen)` is live and suspended.
    pub(crate) fn is_suspended(&self, slot: u32, gen: u32) -> bool {
        self.cell(slot).is_some_and(|c| c.load(Ordering::Acquire) == gen | LIVE | SUSPENDED)
    }

    /// The slot may be reused (its actor is gone for good).
    pub(crate) fn release(&self, slot: u32, gen: u32) {
        self.mark_dead(slot, gen);
        self.alloc.lock().free.push(slot);
    }

    /// Whether `(slot, gen)` is the live incarnation.
    #[inline]
    pub(crate) fn is_live(&self, slot: u32, gen: u32) -> bool {
        self.cell(slot).is_some_and(|c| c.load(Ordering::Acquire) & !SUSPENDED == gen | LIVE)
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        for seg in self.segments.iter() {
            let p = seg.load(Ordering::Relaxed);
            if !p.is_null() {
                // SAFETY: created by Box::into_raw in `reserve`, freed only here, once.
                drop(unsafe { Box::from_raw(p) });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn reuse_bumps_generation() {
        let s = Slots::new();
        let (a, g1) = s.reserve().unwrap();
        assert!(s.is_live(a, g1));
        s.mark_dead(a, g1);
        assert!(!s.is_live(a, g1));
        s.release(a, g1);
        let (b, g2) = s.reserve().unwrap();
        assert_eq!(a, b);
        assert_ne!(g1, g2);
        assert!(s.is_live(b, g2) && !s.is_live(a, g1));
        assert!(!s.is_live(12_345_678, 1), "never reserved is not live");
    }
}
