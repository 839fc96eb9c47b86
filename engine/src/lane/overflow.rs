//! A lane's overflow queue: what the ring had no room for, in order, in blocks of a bounded
//! size.
//!
//! A thread that outruns its shard (a `main` spawning or telling many actors while the shard
//! works through what came before) queues its messages here, under the lane's lock. In one
//! growing buffer, a backlog of a hundred thousand messages was copied on every doubling, in
//! the sending thread, under the lock the shard needs to take the queue, and into fresh memory
//! each time: the shard waited for the copy, and the thread spent its time zeroing pages. In
//! blocks of `BLOCK` messages, a push never copies the queue; a full block is followed by a
//! spare one. The shard keeps the blocks it has emptied (`Blocks`) and hands a sender, at the
//! next take of its queue, as many as that take carried, so a steady backlog reuses its memory
//! and a burst's blocks go back to the allocator once backlogs are small again; both sides
//! keep at most `SPARE_BLOCKS`.

use super::Stamped;

/// Messages per block (64 bytes each: 64 KiB).
pub(super) const BLOCK: usize = 1024;

/// The most emptied blocks (4 MiB) a shard keeps for its lanes, and a lane's sender keeps for
/// its next backlog: beyond that a backlog's blocks are new each time, as the allocator hands
/// them out.
pub(super) const SPARE_BLOCKS: usize = 64;

/// The queue, kept under the lane's lock (`LaneState::overflow`).
#[derive(Default)]
pub(crate) struct Overflow {
    /// The messages, oldest first; every block but the last holds `BLOCK`.
    blocks: Vec<Vec<Stamped>>,
    /// Emptied blocks the shard handed back, for the sender's next full one.
    spares: Vec<Vec<Stamped>>,
}

impl Overflow {
    /// Queues `it` last. A message stamped the same as the last one queued joins its packet
    /// when both are for the same actor (`Packet::join`; why that keeps the order:
    /// `LaneTx::overflow`).
    pub(super) fn push(&mut self, it: Stamped) {
        let (stamp, p) = it;
        let p = match self.blocks.last_mut().and_then(|b| b.last_mut()) {
            Some((s, last)) if *s == stamp => match last.join(p) {
                Ok(()) => return,
                Err(p) => p,
            },
            _ => p,
        };
        match self.blocks.last_mut() {
            Some(b) if b.len() < BLOCK => b.push((stamp, p)),
            _ => {
                let mut b = self.spares.pop().unwrap_or_else(|| Vec::with_capacity(BLOCK));
                b.push((stamp, p));
                self.blocks.push(b);
            }
        }
    }

    /// Messages queued (a joined packet counts once).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.blocks.iter().map(Vec::len).sum()
    }

    /// Blocks queued.
    #[cfg(test)]
    pub(super) fn blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Where the oldest queued message is, if any.
    #[cfg(test)]
    pub(super) fn first_at(&self) -> Option<*const Stamped> {
        self.blocks.first().map(|b| b.as_ptr())
    }

    /// Room the sender has without a new block: the last block's and the spares'.
    #[cfg(test)]
    pub(super) fn room(&self) -> usize {
        let last = self.blocks.last().map_or(0, |b| b.capacity() - b.len());
        last + self.spares.iter().map(Vec::capacity).sum::<usize>()
    }

    /// Takes the whole queue into `into` (empty; its own allocation is kept), and gives the
    /// sender spares from `pool` for its next backlog: as many as this take carried (at least
    /// one, at most `SPARE_BLOCKS`), what it will need if the backlog goes on. Spares beyond
    /// that go back to `pool` while it has room; the rest is returned, for the caller to drop
    /// outside the lock.
    pub(super) fn take(
        &mut self,
        into: &mut Vec<Vec<Stamped>>,
        pool: &mut Vec<Vec<Stamped>>,
    ) -> Vec<Vec<Stamped>> {
        debug_assert!(into.is_empty());
        std::mem::swap(&mut self.blocks, into);
        let keep = into.len().clamp(1, SPARE_BLOCKS);
        while self.spares.len() < keep {
            match pool.pop() {
                Some(b) => self.spares.push(b),
                None => break,
            }
        }
        let mut surplus = if self.spares.len() > keep { self.spares.split_off(keep) } else { Vec::new() };
        while pool.len() < SPARE_BLOCKS {
            match surplus.pop() {
                Some(b) => pool.push(b),
                None => break,
            }
        }
        surplus
    }

    /// Takes everything queued, in blocks, in order; the spares go with it (the lane is
    /// closing).
    pub(super) fn take_all(&mut self) -> Vec<Vec<Stamped>> {
        self.spares.clear();
        std::mem::take(&mut self.blocks)
    }
}

/// The shard's side of its lanes' overflow queues: the blocks a pass took whole, and the
/// emptied ones it hands to the senders.
///
/// A pass that needs no sort (one lane, nothing from the injector or left over) delivers the
/// blocks where they are, after the pass's other messages (`take_due`); a pass that sorts
/// copies them into its buffer first. Either way a block, once emptied, waits here for the
/// next lane whose queue the shard takes.
#[derive(Default)]
pub(crate) struct Blocks {
    /// Blocks taken whole this pass, each lane's in order (all of them due).
    pub(super) taken: Vec<Vec<Stamped>>,
    /// Emptied blocks (at most `SPARE_BLOCKS`).
    pub(super) spare: Vec<Vec<Stamped>>,
}

impl Blocks {
    /// The latest stamp among the blocks taken.
    pub(super) fn last_stamp(&self) -> Option<u64> {
        self.taken.iter().filter_map(|b| b.last()).map(|it| it.0).max()
    }

    /// Messages in the blocks taken.
    pub(super) fn len(&self) -> usize {
        self.taken.iter().map(Vec::len).sum()
    }

    /// Moves the messages of the blocks taken to the end of `out`, in order.
    pub(super) fn copy_into(&mut self, out: &mut Vec<Stamped>) {
        out.reserve(self.len());
        self.empty_each(|b| out.append(b));
    }

    /// Keeps an emptied block for a later take, while there is room.
    pub(super) fn recycle(&mut self, b: Vec<Stamped>) {
        debug_assert!(b.is_empty());
        if self.spare.len() < SPARE_BLOCKS {
            self.spare.push(b);
        }
    }

    /// Hands the messages of the blocks taken to `each`, in order, and keeps the emptied
    /// blocks. Returns how many.
    ///
    /// `each` runs user code (a spawn's factory, say); the blocks are the caller's own (taken
    /// out of the shard for the pass), so nothing it does reaches them.
    pub(crate) fn deliver(&mut self, mut each: impl FnMut(super::Packet)) -> usize {
        let mut n = 0;
        self.empty_each(|b| {
            n += b.len();
            b.drain(..).for_each(|(_, p)| each(p));
        });
        n
    }

    /// Runs `empty` on each block taken, in order (it moves the block's messages out), and
    /// keeps the emptied blocks.
    fn empty_each(&mut self, mut empty: impl FnMut(&mut Vec<Stamped>)) {
        let mut taken = std::mem::take(&mut self.taken);
        for mut b in taken.drain(..) {
            empty(&mut b);
            self.recycle(b);
        }
        self.taken = taken;
    }
}
