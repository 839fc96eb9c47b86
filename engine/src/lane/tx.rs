//! The sending thread's end of a lane: into the ring, a run, or the overflow queue.

use super::*;
use std::any::TypeId;

impl LaneTx {
    /// Sends `p`, stamped `stamp`, down the lane; see [`LaneTx::push_stamped`].
    #[inline]
    pub(crate) fn push(&mut self, stamp: u64, p: Packet) -> Result<(), Closed> {
        self.push_stamped((stamp, p)).map_err(|(_, p)| Closed(p))
    }
}

impl LaneTx {
    /// Sends `payload` for `target`, stamped `stamp`, building its packet in the ring's next
    /// slot, when the ring has room and nothing is queued behind it; otherwise gives the
    /// payload back untouched (the caller sends it as a packet, by [`LaneTx::push`]). A user
    /// message that continues a lone sender's stream to one actor while the shard is behind
    /// goes into the stream's run instead (`run`): appended to the open one, or into a new one
    /// announced in the ring.
    ///
    /// Inlined into the sender's own code, the payload goes from its registers into the slot:
    /// a packet built first and then moved is loaded back right after it was stored, and
    /// such a load, split across the stores that wrote it, waits until they reach the cache,
    /// behind the previous message's slot writes, whose line the shard took to read them.
    /// The sending thread then stood for a cross-core transfer on every message.
    #[inline(always)]
    pub(crate) fn push_new<P: Deliver>(&mut self, stamp: u64, target: u64, payload: P) -> Result<(), P> {
        if self.state.closed.load(Ordering::Acquire) {
            return Err(payload);
        }
        let mut payload = payload;
        // The stream's next run, when the open one is full and the shard has not caught up:
        // the capacity of the run it follows.
        let mut after = 0;
        if P::RUNS {
            if let Some(run) = open_run::<P>(&mut self.run) {
                // Behind a queued message, nothing may be appended (it would overtake it).
                if !self.state.overflowing.load(Ordering::Acquire) {
                    match run.append(target, stamp, payload) {
                        Ok(()) => {
                            self.note_seat();
                            return Ok(());
                        }
                        Err(p) => payload = p,
                    }
                }
                if run.is_full() && run.continues(target, stamp) && !run.caught_up() {
                    after = run.capacity();
                }
            }
        }
        self.run = None;
        if !self.ring_open() {
            return Err(payload);
        }
        self.note_seat();
        // Only a lone sender's stamps (even) repeat, so only its messages travel in runs; a run
        // opens for the second message in a row to one actor while the shard is behind.
        let streak = P::RUNS && std::mem::replace(&mut self.last_target, target) == target;
        if streak && stamp.is_multiple_of(2) && (after > 0 || self.state.behind.load(Ordering::Relaxed)) {
            let (tx, rx) = RunTx::open(target, stamp, payload, after, &self.state.runs);
            self.run = Some((TypeId::of::<RunTx<P>>(), Box::new(tx)));
            // SAFETY: `ring_open` just returned true; the closure initializes the item.
            unsafe {
                self.write_slot(|dst| {
                    std::ptr::addr_of_mut!((*dst).0).write(stamp);
                    Packet::write(std::ptr::addr_of_mut!((*dst).1), target, RunOpen(Box::new(rx)));
                })
            };
            return Ok(());
        }
        // SAFETY: `ring_open` just returned true; the closure initializes the item (the stamp,
        // then the packet, written field by field: see `Packet::write`).
        unsafe {
            self.write_slot(|dst| {
                std::ptr::addr_of_mut!((*dst).0).write(stamp);
                Packet::write(std::ptr::addr_of_mut!((*dst).1), target, payload);
            })
        };
        Ok(())
    }

    /// Whether the next message may go into the ring: it has room, and nothing is queued behind
    /// it (a message that went to the queue keeps every later one out of the ring until the
    /// shard takes the queue).
    #[inline(always)]
    fn ring_open(&mut self) -> bool {
        !self.state.overflowing.load(Ordering::Acquire) && self.tx.has_room()
    }

    /// Publishes where the sending thread runs, every `SEAT_EVERY` pushes.
    #[inline(always)]
    fn note_seat(&mut self) {
        if self.since_seat == 0 {
            self.state.seat.publish();
        }
        self.since_seat = (self.since_seat + 1) % SEAT_EVERY;
    }

    /// Writes the ring's next slot through `write` and publishes it.
    ///
    /// # Safety
    /// `ring_open` must have returned `true` since the last push, and `write` must initialize
    /// the stamped item it is given.
    #[inline(always)]
    unsafe fn write_slot(&mut self, write: impl FnOnce(*mut Stamped)) {
        // SAFETY: per the contract, there is room and `write` initializes the slot's item.
        unsafe { self.tx.push_in_place(write) };
        self.tx.publish();
    }

    /// Sends a stamped message down the lane (visible to the shard at once), or gives it back
    /// when the shard has stopped.
    #[inline]
    fn push_stamped(&mut self, it: Stamped) -> Result<(), Stamped> {
        if self.state.closed.load(Ordering::Acquire) {
            return Err(it);
        }
        // Anything else in the lane ends the open run.
        self.run = None;
        self.note_seat();
        if !self.ring_open() {
            return self.overflow(it);
        }
        let (stamp, p) = it;
        // SAFETY: `ring_open` just returned true; the closure initializes the item (the stamp,
        // then the packet, moved in without the storage words its payload leaves unused: see
        // `take_stamped`).
        unsafe {
            self.write_slot(|dst| {
                std::ptr::addr_of_mut!((*dst).0).write(stamp);
                p.move_to(std::ptr::addr_of_mut!((*dst).1));
            })
        };
        Ok(())
    }

    /// Queues `it` behind the ring (which is full, or has items queued behind it already).
    ///
    /// A message stamped the same as the one queued last joins its packet when both are for
    /// the same actor (`Packet::join`: a batch of up to `BATCH_CAP`), so a thread that outruns
    /// the shard hands it one packet per run of messages instead of one per message, and the
    /// further behind the shard is, the cheaper its way out. Equal stamps are what keeps the
    /// order exactly as it was: the shard takes this queue whole or up to a bound, which
    /// treats equal stamps alike, and sorts what it takes by stamp, stably; no other packet can
    /// sort between two equal stamps of this lane (the injector's stamps are odd, a lane's
    /// even stamps are a lone sender's, and two lone senders are never live together:
    /// `LaneRegistry::stamp`). So one packet at that stamp is delivered where the separate
    /// ones would have been, one after another.
    fn overflow(&mut self, it: Stamped) -> Result<(), Stamped> {
        let mut q = self.state.overflow.lock().unwrap();
        if self.state.closed.load(Ordering::Relaxed) {
            return Err(it);
        }
        q.push(it);
        self.state.overflowing.store(true, Ordering::Release);
        Ok(())
    }

    /// The shard stopped taking (its last drain may still be under way).
    pub(crate) fn is_closed(&self) -> bool {
        self.state.closed.load(Ordering::Acquire)
    }

    /// The shard stopped and drained for the last time: this lane is of no more use.
    pub(crate) fn is_dead(&self) -> bool {
        self.state.drained.load(Ordering::Acquire)
    }

    /// Messages sent that the shard never took, dropped here: `None` while the shard still
    /// holds its end (it lets go right after its last drain, once `is_dead`).
    pub(crate) fn take_undelivered(&mut self) -> Option<usize> {
        let mut n = 0;
        if !self.tx.orphaned(|(_, p)| n += p.messages()) {
            return None;
        }
        // Every run is gone with our end of the last one: each counted what it still held.
        self.run = None;
        Some(n + self.state.runs.lost.load(Ordering::Relaxed))
    }

    /// The thread lets go of the lane: the shard drops it once empty.
    pub(crate) fn leave(&self) {
        self.state.gone.store(true, Ordering::Release);
    }
}

/// The open run in `run`, if it carries `P`.
#[inline(always)]
fn open_run<P: Deliver>(run: &mut Option<(TypeId, Box<dyn Any + Send>)>) -> Option<&mut RunTx<P>> {
    match run {
        Some((ty, run)) if *ty == TypeId::of::<RunTx<P>>() => {
            // Not `downcast_mut`: it asks the box for its type through the vtable, a call per
            // message.
            let run: *mut (dyn Any + Send) = &mut **run;
            // SAFETY: `ty` is the type id of the value boxed with it (set together in `push_new`):
            // `RunTx<P>`, so the cast names its own type; the borrow of `run` keeps it unaliased.
            Some(unsafe { &mut *(run as *mut RunTx<P>) })
        }
        _ => None,
    }
}
