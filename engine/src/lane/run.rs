//! Runs: a lone sender's stream of user messages for one actor, packed into a buffer that the
//! shard reads while the sender is still appending to it.
//!
//! # Why
//! A lane carries one message per ring slot, so every message is a cache line of its own that
//! crosses from the sending core to the shard's, and the sender writes a stamp, a target and a
//! vtable with each. When a thread streams tells to one actor faster than the shard takes them,
//! the lane switches to runs: one ring slot announces a run ([`RunOpen`]), and the messages that
//! follow for the same actor, of the same type and with the same stamp, are appended to the
//! run's buffer at their own size (two or three small messages per line) with one store of the
//! published count each. The shard takes what is published as one packet ([`RunPart`]) and
//! queues it in the mailbox in one go.
//!
//! # Protocol
//! - **Publication.** The sender writes item `i` (once: a run never wraps) and then stores
//!   `published = i + 1` (`Release`). The shard loads `published` (`Acquire`) and takes the
//!   items up to it.
//! - **Ownership.** Items `[0, taken)` belong to the parts the shard made of them, disjoint
//!   ranges, each of which moves or drops its own items exactly once; items `[taken,
//!   published)` belong to the run and are dropped with it. `taken` is written by the shard
//!   only, after it loaded `published`.
//! - **End.** A run is open on the sender's side until the sender puts anything else into the
//!   lane (another message in the ring or its overflow queue, or the next run's announcement).
//!   That happens after the run's last append, so a shard that has seen it takes the rest of
//!   the run and lets go of its end (`super::LaneRx`).
//! - **Counting.** The shard takes everything a run holds before it lets go of it (also when
//!   it closes the lane), so a run dropped with items untaken holds what the sender appended
//!   after the shard's last drain: it adds them to the lane's `lost` count, which the sender
//!   reports as dead letters (`super::LaneTx::take_undelivered`).
//! - **Looks.** A shard that keeps up with a run would read its count on every pass, and each
//!   read takes the count's line from the sender, whose next store of the count must fetch it
//!   back while the stores behind it wait. So after a take of fewer than [`FEW`] messages the
//!   shard's passes leave the count alone for [`QUIET_LOOKS`] looks (`ReadRun::due`); the
//!   exact look (`ReadRun::has_next`), which decides whether the shard may park, never skips.
//!   The rest of a run that the sender stops appending to is taken at most `QUIET_LOOKS` looks
//!   later, or at once when anything else arrives in the lane.
//! - **Buffers.** A run's buffer, once its messages are taken or dropped, is kept for the
//!   sender's next run of the same size and type (at most [`SPARES`] per lane): a stream that
//!   the shard keeps up with writes into memory it wrote before, where a fresh buffer for each
//!   run was new memory every 64 KiB (page faults, a fifth of the sender's time).
//! - A run carries messages of one stamp: only a lone sender's stamps repeat
//!   (`super::LaneRegistry::stamp`), so only a lone sender's messages travel in runs, and the
//!   shard delivers a run's messages where separate messages with that stamp would have been.

use crate::packet::{Deliver, Packet};
use crate::shard::Shard;
use crate::sync::{Arc, AtomicUsize, Mutex, Ordering, UnsafeCell};
use crossbeam_utils::CachePadded;
use std::any::Any;
use std::mem::MaybeUninit;

/// Messages in a sender's first run; each next run of the stream holds twice as many, up to
/// [`RUN_BYTES`] of messages.
const FIRST_RUN: usize = 32;

/// The most message bytes one run holds (then the next run is announced).
const RUN_BYTES: usize = 64 * 1024;

/// A take of fewer messages than this from a run makes the shard's passes leave the run's count
/// alone for a few looks.
pub(super) const FEW: usize = 32;

/// Looks at the run that skip its count after a take of fewer than [`FEW`] messages.
pub(super) const QUIET_LOOKS: u32 = 8;

/// Emptied run buffers kept per lane for the sender's next runs.
pub(crate) const SPARES: usize = 2;

/// What a lane's runs share with the lane: the count of messages lost with runs, and the
/// buffers of runs that are done.
#[derive(Default)]
pub(crate) struct RunHome {
    /// Messages appended to runs after the shard's last drain, counted as the runs go.
    pub(crate) lost: AtomicUsize,
    /// Buffers of runs that are done (`Items<P>` for some `P`, type-erased), newest last.
    spares: Mutex<Vec<Box<dyn Any + Send>>>,
}

/// A run's buffer.
type Items<P> = Box<[UnsafeCell<MaybeUninit<P>>]>;

impl RunHome {
    /// Keeps `items` for a later run, in place of the oldest kept buffer when `SPARES` are kept
    /// already: the runs that ended last are the sizes the sender's stream uses now (a long
    /// stream's first runs are small, its later ones the largest).
    fn keep<P: Send + 'static>(&self, items: Items<P>) {
        let mut spares = self.spares.lock().unwrap();
        if spares.len() == SPARES {
            spares.remove(0);
        }
        spares.push(Box::new(items));
    }

    /// A kept buffer of `cap` items of `P`, or a new one.
    fn buffer<P: Send + 'static>(&self, cap: usize) -> Items<P> {
        let mut spares = self.spares.lock().unwrap();
        let fits = |b: &Box<dyn Any + Send>| b.downcast_ref::<Items<P>>().is_some_and(|i| i.len() == cap);
        match spares.iter().rposition(fits) {
            Some(i) => *spares.swap_remove(i).downcast::<Items<P>>().expect("checked by `fits`"),
            None => {
                drop(spares);
                (0..cap).map(|_| UnsafeCell::new(MaybeUninit::uninit())).collect()
            }
        }
    }

    /// The capacities of the buffers of `P` kept, oldest first (for tests).
    #[cfg(test)]
    pub(crate) fn kept<P: Send + 'static>(&self) -> Vec<usize> {
        let spares = self.spares.lock().unwrap();
        spares.iter().filter_map(|b| b.downcast_ref::<Items<P>>()).map(|i| i.len()).collect()
    }
}

/// The buffer of one run (see the module docs for the protocol).
struct Run<P: Send + 'static> {
    /// Items written and published, in order. Written by the sender only.
    published: CachePadded<AtomicUsize>,
    /// Items handed to parts (or to be dropped with the run from here on). Written by the
    /// shard only, on a line of its own: the sender reads `items` with every append.
    taken: CachePadded<AtomicUsize>,
    /// The lane's count of lost messages and its kept buffers.
    home: Arc<RunHome>,
    items: Items<P>,
}

// SAFETY: items move from the one sender to the one shard (`P: Send`); each slot is written
// once, before it is published, and read once after, under the protocol above.
unsafe impl<P: Send> Send for Run<P> {}
// SAFETY: as for `Send`: shared access is split by `published` and `taken`.
unsafe impl<P: Send> Sync for Run<P> {}

impl<P: Send + 'static> Run<P> {
    fn with_capacity(cap: usize, home: &Arc<RunHome>) -> Self {
        Run {
            published: CachePadded::new(AtomicUsize::new(0)),
            taken: CachePadded::new(AtomicUsize::new(0)),
            home: home.clone(),
            items: home.buffer(cap),
        }
    }
}

impl<P: Send + 'static> Drop for Run<P> {
    fn drop(&mut self) {
        let from = self.taken.load(Ordering::Relaxed);
        let to = self.published.load(Ordering::Relaxed);
        if to > from {
            self.home.lost.fetch_add(to - from, Ordering::Relaxed);
        }
        for cell in &self.items[from..to] {
            // SAFETY: `&mut self`: both ends and every part are gone (each part holds the run).
            // `[taken, published)` are initialized items that no part owns (protocol).
            cell.with_mut(|p| unsafe { (*p).assume_init_drop() });
        }
        // Every item is moved out or dropped: the buffer holds nothing, and goes back empty.
        self.home.keep(std::mem::take(&mut self.items));
    }
}

/// The sender's end of an open run.
pub(crate) struct RunTx<P: Send + 'static> {
    run: Arc<Run<P>>,
    target: u64,
    stamp: u64,
    /// Items written (equals the run's `published`, which only this end stores).
    len: usize,
    /// The run's capacity, kept here so an append reads only the sender's own lines.
    cap: usize,
}

impl<P: Deliver> RunTx<P> {
    /// Opens a run for `target` at `stamp` holding `first`, sized after `prev` (the capacity of
    /// the run it follows in an ongoing stream, or 0), in a buffer kept in `home` if one fits
    /// (where what is lost is counted too). Returns both ends.
    pub(crate) fn open(
        target: u64,
        stamp: u64,
        first: P,
        prev: usize,
        home: &Arc<RunHome>,
    ) -> (RunTx<P>, RunRx<P>) {
        let most = (RUN_BYTES / std::mem::size_of::<P>().max(1)).max(FIRST_RUN);
        let cap = if prev == 0 { FIRST_RUN } else { (2 * prev).min(most) };
        let run = Arc::new(Run::with_capacity(cap, home));
        // Each append asks for the line `AHEAD` bytes on (`write`); these are the ones before.
        let head = (cap * std::mem::size_of::<P>()).min(crate::prefetch::AHEAD);
        crate::prefetch::lines(run.items.as_ptr(), head);
        let mut tx = RunTx { run: run.clone(), target, stamp, len: 0, cap };
        tx.write(first);
        (tx, RunRx { run, target, stamp, taken: 0, quiet: std::cell::Cell::new(0) })
    }

    /// Appends `p` when it is for this run's actor, at its stamp, and the run has room;
    /// gives it back otherwise.
    #[inline(always)]
    pub(crate) fn append(&mut self, target: u64, stamp: u64, p: P) -> Result<(), P> {
        if target != self.target || stamp != self.stamp || self.len == self.cap {
            return Err(p);
        }
        self.write(p);
        Ok(())
    }

    #[inline(always)]
    fn write(&mut self, p: P) {
        // SAFETY: item `len` is in bounds (checked by the callers: `append`, or `open` on a new
        // run of at least `FIRST_RUN`) and unpublished, so the shard does not read it, and it
        // was never written (runs do not wrap).
        self.run.items[self.len].with_mut(|slot| unsafe { (*slot).write(p) });
        self.len += 1;
        // A kept buffer was last read by the shard: ask for its lines ahead (`crate::prefetch`).
        let ahead = self.len + crate::prefetch::AHEAD / std::mem::size_of::<P>().max(1);
        if ahead < self.cap {
            crate::prefetch::line(self.run.items.as_ptr().wrapping_add(ahead));
        }
        self.run.published.store(self.len, Ordering::Release);
    }

    /// Whether the run is full (the stream's next message needs a new run).
    pub(crate) fn is_full(&self) -> bool {
        self.len == self.cap
    }

    /// Whether the shard has taken everything appended so far (a look at its line).
    pub(crate) fn caught_up(&self) -> bool {
        self.run.taken.load(Ordering::Relaxed) == self.len
    }

    /// The run's capacity, which the stream's next run doubles.
    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// Whether the stream's next message, for `target` at `stamp`, belongs to the same stream.
    pub(crate) fn continues(&self, target: u64, stamp: u64) -> bool {
        target == self.target && stamp == self.stamp
    }
}

/// The shard's end of a run, type-erased in the lane.
pub(crate) trait ReadRun: Send {
    /// The stamp every message of the run carries.
    fn stamp(&self) -> u64;
    /// Whether messages were published that the shard has not taken (a look).
    fn has_next(&self) -> bool;
    /// Whether the shard's pass should take from the run: `has_next`, except that for
    /// [`QUIET_LOOKS`] calls after a take of fewer than [`FEW`] messages it says no without a
    /// look.
    fn due(&self) -> bool;
    /// The messages published since the last take, as one packet.
    fn take(&mut self) -> Option<Packet>;
}

/// The shard's end of a run of `P`.
pub(crate) struct RunRx<P: Send + 'static> {
    run: Arc<Run<P>>,
    target: u64,
    stamp: u64,
    /// Items handed to parts (the run's `taken`, which only this end stores).
    taken: usize,
    /// Calls of `due` left that skip the count.
    quiet: std::cell::Cell<u32>,
}

impl<P: Deliver> ReadRun for RunRx<P> {
    fn stamp(&self) -> u64 {
        self.stamp
    }

    #[inline]
    fn has_next(&self) -> bool {
        self.run.published.load(Ordering::Relaxed) != self.taken
    }

    #[inline]
    fn due(&self) -> bool {
        match self.quiet.get() {
            0 => self.has_next(),
            q => {
                self.quiet.set(q - 1);
                false
            }
        }
    }

    fn take(&mut self) -> Option<Packet> {
        let end = self.run.published.load(Ordering::Acquire);
        self.quiet.set(if end - self.taken < FEW { QUIET_LOOKS } else { 0 });
        if end == self.taken {
            return None;
        }
        let part = RunPart { run: self.run.clone(), next: self.taken, end };
        self.taken = end;
        self.run.taken.store(end, Ordering::Relaxed);
        Some(Packet::new(self.target, part))
    }
}

/// A run's announcement in a lane slot: the shard's end of it. The lane takes it apart
/// (`super::LaneRx`); delivered whole (never, by the lane), it delivers what is published.
pub(crate) struct RunOpen(pub(crate) Box<dyn ReadRun>);

impl Deliver for RunOpen {
    const OPENS_RUN: bool = true;
    fn deliver(mut self, shard: &Shard, _: u64) {
        while let Some(p) = self.0.take() {
            p.deliver(shard);
        }
    }
    /// None: a run dropped untaken counts its messages itself (as lost).
    fn messages(&self) -> usize {
        0
    }
}

/// Messages `[next, end)` of a run, for one delivery: an iterator that moves them out in
/// order; those it did not yield are dropped with it.
pub(crate) struct RunPart<P: Send + 'static> {
    run: Arc<Run<P>>,
    next: usize,
    end: usize,
}

impl<P: Send + 'static> Iterator for RunPart<P> {
    type Item = P;

    #[inline]
    fn next(&mut self) -> Option<P> {
        if self.next == self.end {
            return None;
        }
        // SAFETY: items `[next, end)` are published and owned by this part (protocol); `next`
        // moves past the item, so it is read once.
        let p = self.run.items[self.next].with(|slot| unsafe { (*slot).assume_init_read() });
        self.next += 1;
        Some(p)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.end - self.next, Some(self.end - self.next))
    }
}

impl<P: Send + 'static> ExactSizeIterator for RunPart<P> {}

impl<P: Send + 'static> Drop for RunPart<P> {
    fn drop(&mut self) {
        for _ in self.by_ref() {}
    }
}

impl<P: Deliver> Deliver for RunPart<P> {
    fn deliver(self, shard: &Shard, target: u64) {
        P::deliver_run(self, shard, target)
    }
    fn type_name() -> &'static str {
        P::type_name()
    }
    fn messages(&self) -> usize {
        self.end - self.next
    }
}
