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
//! moving array. Algorithm and invariants:
//! - `segments[i]` is null until the allocator (under `alloc`) fills a fresh segment with
//!   zeroed counters and publishes it with a Release store; it never changes again until `Drop`
//!   (which needs `&mut self`). A reader that loads it with Acquire and sees non-null therefore
//!   sees a fully initialized segment; one that sees null treats the slot as never reserved.
//! - A slot's counter holds its current generation (low `GEN_BITS`) and the `LIVE` and
//!   `SUSPENDED` bits. Its writers are the allocator (under `alloc`, only for a slot on the free
//!   list or never used, so no actor owns it) and the owning shard (for the live generation), so
//!   a load-then-store by either never races another writer.
//! - A slot whose generation reached the largest one is retired instead of freed: it is never
//!   reserved again, so a generation never wraps and a stale id can never match a later actor
//!   (of possibly another message type) in the same slot.
//!
//! The atomics and the lock come from `crate::sync`, so `scripts/loom.sh` model-checks the
//! publication (with tiny segments).

use crate::id::{GEN_MASK, MAX_SLOTS};
use crate::sync::{AtomicPtr, AtomicU32, Mutex, Ordering};

const LIVE: u32 = 1 << 31;
/// Set while the actor is suspended after a failure (readable by `is_suspended` anywhere).
const SUSPENDED: u32 = 1 << 30;
#[cfg(not(corelane_loom))]
const SEG_BITS: u32 = 16;
#[cfg(corelane_loom)]
const SEG_BITS: u32 = 1;
const SEG_LEN: usize = 1 << SEG_BITS;
#[cfg(not(corelane_loom))]
const SEGMENTS: usize = (MAX_SLOTS as usize) / SEG_LEN;
#[cfg(corelane_loom)]
const SEGMENTS: usize = 3;
/// Slots a shard can hold.
const CAPACITY: u32 =
    if (SEGMENTS * SEG_LEN) < MAX_SLOTS as usize { (SEGMENTS * SEG_LEN) as u32 } else { MAX_SLOTS };

type Segment = [AtomicU32; SEG_LEN];

fn fresh_segment() -> Box<Segment> {
    let v: Vec<AtomicU32> = (0..SEG_LEN).map(|_| AtomicU32::new(0)).collect();
    v.into_boxed_slice().try_into().unwrap_or_else(|_| unreachable!("SEG_LEN counters"))
}

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
        let mut a = self.lock();
        let slot = match a.free.pop() {
            Some(s) => s,
            None => {
                if a.next >= CAPACITY {
                    return Err(SlotsExhausted);
                }
                let s = a.next;
                a.next += 1;
                let seg = &self.segments[(s >> SEG_BITS) as usize];
                if seg.load(Ordering::Relaxed).is_null() {
                    seg.store(Box::into_raw(fresh_segment()), Ordering::Release);
                }
                s
            }
        };
        let cell = self.cell(slot).expect("segment allocated above");
        // Generation 0 is never used, so no id is 0 (a raw 0 means "no actor"). A slot on the
        // free list is below the last generation (see `release`), so this never wraps.
        let gen = (cell.load(Ordering::Relaxed) & GEN_MASK) + 1;
        debug_assert!(gen <= GEN_MASK);
        cell.store(gen | LIVE, Ordering::Release);
        Ok((slot, gen))
    }

    fn lock(&self) -> crate::sync::MutexGuard<'_, Alloc> {
        // Nothing panics while holding it (vector pushes and pops), so a poisoned lock still
        // holds a consistent free list.
        self.alloc.lock().unwrap_or_else(|e| e.into_inner())
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

    /// The slot may be reused (its actor is gone for good), unless its generations are used
    /// up: then it is retired for the runtime's life (after some 67 million actors in this one
    /// slot; it costs its 4-byte counter and slab entry).
    pub(crate) fn release(&self, slot: u32, gen: u32) {
        self.mark_dead(slot, gen);
        if gen >= GEN_MASK {
            tracing::debug!(slot, "slot retired: its generations are used up");
            return;
        }
        self.lock().free.push(slot);
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
            // Relaxed: `&mut self` means every other thread is done with the table.
            let p = seg.load(Ordering::Relaxed);
            if !p.is_null() {
                // SAFETY: created by Box::into_raw in `reserve`, freed only here, once.
                drop(unsafe { Box::from_raw(p) });
            }
        }
    }
}

#[cfg(all(test, not(corelane_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_slot_whose_generations_are_used_up_is_retired_not_wrapped() {
        let s = Slots::new();
        let (a, _) = s.reserve().unwrap();
        // Fast-forward the slot to its last generation, as 67 million spawn/stop cycles would.
        s.cell(a).unwrap().store(GEN_MASK - 1, Ordering::Relaxed);
        s.release(a, GEN_MASK - 1);
        let (b, g) = s.reserve().unwrap();
        assert_eq!((b, g), (a, GEN_MASK), "the last generation is still used");
        s.release(b, g);
        let (c, g2) = s.reserve().unwrap();
        assert_ne!(c, a, "the exhausted slot is never handed out again");
        assert_eq!(g2, 1);
        assert!(!s.is_live(a, 1) && !s.is_live(a, GEN_MASK), "no id of the retired slot is live");
    }
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

#[cfg(all(test, corelane_loom))]
mod loom_tests {
    use super::*;
    use crate::sync::Arc;

    /// A reader racing the allocator as it publishes new segments and reuses a slot: the
    /// reserve/release protocol holds in every interleaving (live once reserved, a released
    /// generation never again, reuse with the next generation). Note: loom does not model the
    /// creation of atomics, so it would not catch a Relaxed publication of a segment; that
    /// ordering is argued in the module comment.
    #[test]
    fn loom_slots_publish_segments_safely() {
        loom::model(|| {
            let s = Arc::new(Slots::new());
            let w = s.clone();
            let writer = loom::thread::spawn(move || {
                let (a, ga) = w.reserve().unwrap(); // segment 0
                let (_b, _) = w.reserve().unwrap();
                let (c, gc) = w.reserve().unwrap(); // publishes segment 1
                w.release(a, ga);
                let (a2, ga2) = w.reserve().unwrap();
                assert_eq!((a2, ga2), (a, ga + 1));
                (c, gc)
            });
            // Slot 2 is in the second segment, slot 0 is released and reused meanwhile: a
            // reader sees either not live or the generation handed out, never another one.
            assert!(!s.is_live(2, 2) && !s.is_live(0, 3));
            let (c, gc) = writer.join().unwrap();
            assert_eq!((c, gc), (2, 1));
            assert!(s.is_live(2, 1), "after the reserve returned, the slot is live");
            assert!(!s.is_live(0, 1), "the released generation is gone for good");
        });
    }
}
