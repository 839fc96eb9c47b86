//! The shard's rings: outbound packets (batched, published at the end of a turn, overflow kept
//! in order when a ring is full) and the inbound side (rings from other shards, the injector).

use super::*;

pub(super) struct Outbound {
    prod: Producer<Packet>,
    /// Packets that found the ring full, in order; drained into the ring before new ones.
    overflow: VecDeque<Packet>,
    dirty: bool,
    /// Target and message type of the last packet pushed into the ring since the last publish.
    last: Option<(u64, TypeId)>,
    /// A batch still being filled: a `BatchMsg<M>` in an unpublished ring slot.
    open: Option<OpenBatch>,
}

impl Outbound {
    pub(super) fn new(prod: Producer<Packet>) -> Self {
        Self { prod, overflow: VecDeque::new(), dirty: false, last: None, open: None }
    }

    /// Publishes the ring; a published batch is the consumer's, so it is closed first.
    #[inline]
    fn publish(&mut self) -> bool {
        self.open = None;
        self.last = None;
        self.prod.publish()
    }
}

/// Consecutive messages to one target, collected into the `Vec` of a `BatchMsg<M>` packet that
/// only this thread can reach: in an unpublished ring slot, or at the back of the overflow queue.
/// It is always the most recent packet towards its shard, so appending keeps per-pair order.
struct OpenBatch {
    target: u64,
    ty: TypeId,
    at: BatchAt,
}

/// Where the open batch packet is.
enum BatchAt {
    /// In this unpublished ring slot (its address is stable until publish).
    Ring(*mut Packet),
    /// The last packet of the overflow queue (looked up each time: the queue's storage moves).
    OverflowBack,
}

use super::delivery::new_batch;

impl Shard {
    // ---- rings -----------------------------------------------------------------------------

    /// Queues a packet for another shard. Published at the end of the current turn, or at once
    /// when a batch has built up.
    #[inline]
    pub(crate) fn push_outbound(&self, to: usize, p: Packet) {
        let mut slot = self.outbound[to].borrow_mut();
        let o = slot.as_mut().expect("no ring to self");
        o.open = None;
        o.last = None;
        if o.overflow.is_empty() {
            if let Err(p) = o.prod.push(p) {
                o.overflow.push_back(p);
            }
        } else {
            o.overflow.push_back(p);
        }
        self.pushed_outbound(to, o);
    }

    /// Sends a user message to `target` on shard `to`. The packet is built in place in the ring
    /// slot when there is room (the common case), so the message is written once. A message that
    /// follows one to the same target before the ring is published starts a batch: one packet
    /// whose `Vec` takes the next messages to that target, up to `BATCH_CAP`, so a burst costs
    /// the receiver one lookup and a fraction of a cache line per message.
    #[inline(always)]
    pub(crate) fn send_user_outbound<M: Send + 'static>(&self, to: usize, target: u64, msg: M) {
        let mut slot = self.outbound[to].borrow_mut();
        let o = slot.as_mut().expect("no ring to self");
        let ty = TypeId::of::<M>();
        if let Some(b) = &o.open {
            if b.target == target && b.ty == ty {
                let pkt: *mut Packet = match b.at {
                    BatchAt::Ring(p) => p,
                    BatchAt::OverflowBack => o.overflow.back_mut().expect("open batch is the back"),
                };
                // SAFETY: `pkt` is the open batch: a `BatchMsg<M>` packet (same `TypeId`) that
                // is unpublished or still in the overflow queue, so only this thread reaches it.
                let v = unsafe { &mut (*Packet::inline_payload::<BatchMsg<M>>(pkt)).0 };
                if v.len() < v.capacity() {
                    v.push(msg);
                    return;
                }
            }
            o.open = None;
        }
        let batch = o.last == Some((target, ty));
        if o.overflow.is_empty() && o.prod.has_room() {
            if batch {
                let v = new_batch(msg);
                // SAFETY: `has_room` just returned true; `Packet::write` initializes the slot.
                let dst = unsafe { o.prod.push_in_place(|dst| Packet::write(dst, target, BatchMsg(v))) };
                o.open = Some(OpenBatch { target, ty, at: BatchAt::Ring(dst) });
            } else {
                // SAFETY: `has_room` just returned true; `Packet::write` initializes the slot.
                unsafe { o.prod.push_in_place(|dst| Packet::write(dst, target, UserMsg(msg))) };
            }
        } else if batch {
            // The ring is full: the burst waits in the overflow queue, batched all the same.
            o.overflow.push_back(Packet::new(target, BatchMsg(new_batch(msg))));
            o.open = Some(OpenBatch { target, ty, at: BatchAt::OverflowBack });
        } else {
            o.overflow.push_back(Packet::new(target, UserMsg(msg)));
        }
        o.last = Some((target, ty));
        self.pushed_outbound(to, o);
    }

    /// Bookkeeping after a push to shard `to`: mark the ring dirty, publish a full batch.
    #[inline]
    fn pushed_outbound(&self, to: usize, o: &mut Outbound) {
        if !o.dirty {
            o.dirty = true;
            self.dirty.borrow_mut().push(to);
        }
        if o.prod.unpublished() >= PUBLISH_BATCH && o.publish() {
            self.shared.notify(to);
        }
    }

    /// Publishes every ring written since the last flush and wakes their shards.
    pub(crate) fn flush_outbound(&self) {
        let mut dirty = self.dirty.borrow_mut();
        if dirty.is_empty() {
            return;
        }
        dirty.retain(|&to| {
            let mut slot = self.outbound[to].borrow_mut();
            let o = slot.as_mut().expect("no ring to self");
            while let Some(p) = o.overflow.pop_front() {
                if let Err(p) = o.prod.push(p) {
                    o.overflow.push_front(p);
                    break;
                }
            }
            if o.publish() {
                self.shared.notify(to);
            }
            o.dirty = !o.overflow.is_empty();
            o.dirty
        });
    }

    /// Whether anything waits in an inbound ring or the injector (a look, nothing is taken):
    /// the check a shard makes after announcing that it parks.
    pub(super) fn has_inbound(&self) -> bool {
        self.inbound.borrow().iter().any(|c| c.has_next())
            || self.mine().injector.has_pending()
            || self.lanes_waiting()
    }

    /// Whether a thread that sends to this shard runs on `cpu` (this shard's own): another
    /// shard of the runtime, or a live thread outside it with a lane here, as each was last
    /// seen (a shard asleep is not counted: it needs no CPU until woken, and then publishes
    /// where it runs). Looked up once per idle stretch, so never on a message's path.
    pub(super) fn ours_on(&self, cpu: u32) -> bool {
        let shards = &self.shared.shards;
        shards.iter().enumerate().any(|(i, s)| i != self.idx && s.seat.cpu() == Some(cpu))
            || self.lanes.borrow().iter().any(|l| l.sender_cpu() == Some(cpu))
    }

    /// Whether a lane waits to be adopted or holds a message, or a message from outside is held
    /// for a later pass (a look).
    pub(super) fn lanes_waiting(&self) -> bool {
        self.lanes_hold(LaneRx::has_next)
    }

    /// `lanes_waiting` for a busy pass: an open run is asked whether it is due
    /// (`LaneRx::is_due`), so that a shard working off its ready actors does not read a
    /// streaming sender's count between every two turns.
    pub(super) fn lanes_due(&self) -> bool {
        self.lanes_hold(LaneRx::is_due)
    }

    /// Whether a lane waits to be adopted, a message from outside is held for a later pass, or
    /// `holds` says a lane holds a message.
    #[inline(always)]
    fn lanes_hold(&self, holds: impl Fn(&LaneRx) -> bool) -> bool {
        self.mine().lanes.has_new()
            || !self.outside.borrow().is_empty()
            || self.lanes.borrow().iter().any(holds)
    }

    pub(super) fn drain_inbound(&self) -> usize {
        let mut n = 0;
        if !self.deferred.borrow().is_empty() {
            // Left by an operation that ended in a panic.
            n += self.deferred.borrow().len();
            self.deliver_deferred();
        }
        {
            let mut inbound = self.inbound.borrow_mut();
            for c in inbound.iter_mut() {
                let mut k = 0;
                while k < RING_BATCH {
                    let Some(p) = c.pop() else { break };
                    p.deliver(self);
                    k += 1;
                }
                c.release();
                n += k;
            }
        }
        n + self.drain_outside()
    }

    /// Messages from threads outside the runtime (their lanes, and the injector they fall back
    /// to), delivered in stamp order (`lane::take_due`): a push that happened after another
    /// (the same thread, or a thread that joined or heard from the first) took a later stamp,
    /// so causal order holds across threads, as with one shared queue. Only messages stamped
    /// below one past the latest stamp seen at the start of the pass are delivered; later ones
    /// wait for the next pass.
    fn drain_outside(&self) -> usize {
        let inj = &self.mine().injector;
        let registry = &self.mine().lanes;
        // Nothing held over, no lane to adopt, nothing in the injector or any lane, no lane to
        // drop: the pass has nothing to take (the common look of an idle or busy shard whose
        // traffic comes from other shards), so it costs a few loads.
        if self.outside.borrow().is_empty()
            && !registry.has_new()
            && !inj.has_pending()
            && !self.lanes.borrow().iter().any(|l| l.needs_pass())
        {
            return 0;
        }
        // One message among all the lanes and nothing else from outside (a plain thread's ask,
        // or a lone tell): delivered as it comes (`lane::take_lone`), after the lanes' borrow
        // ends.
        if self.outside.borrow().is_empty() {
            let lone = crate::lane::take_lone(registry, &mut self.lanes.borrow_mut(), || inj.has_pending());
            if let Some(p) = lone {
                p.deliver(self);
                return 1;
            }
        }
        let mut out = std::mem::take(&mut *self.outside.borrow_mut());
        let mut due = std::mem::take(&mut *self.outside_due.borrow_mut());
        let mut blocks = std::mem::take(&mut *self.outside_blocks.borrow_mut());
        {
            let mut lanes = self.lanes.borrow_mut();
            crate::lane::take_due(registry, &mut lanes, &mut out, &mut due, &mut blocks, |o| {
                if inj.has_pending() {
                    inj.take_into(o);
                }
            });
            let live = lanes.len();
            lanes.retain(|l| !l.is_finished());
            registry.dropped(live - lanes.len());
        }
        *self.outside.borrow_mut() = out;
        let n = due.len();
        for (_, p) in due.drain(..) {
            p.deliver(self);
        }
        *self.outside_due.borrow_mut() = due;
        // A lone lane's overflow queue, in the blocks it was queued in (`lane::take_due`).
        let n = n + blocks.deliver(|p| p.deliver(self));
        *self.outside_blocks.borrow_mut() = blocks;
        n
    }
}

#[cfg(all(test, not(corelane_loom)))]
mod tests {
    use crate::{Actor, ActorError, Ctx, Idle, Runtime, Shards};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    /// Tells `got` each message it handles.
    struct Sink(mpsc::Sender<u32>);
    impl Actor for Sink {
        type Msg = u32;
        fn receive(&mut self, _: &mut Ctx<Self>, m: u32) -> Result<(), ActorError> {
            let _ = self.0.send(m);
            Ok(())
        }
    }

    /// The idle pass skips the outside traffic when nothing waits there, but a lane whose
    /// thread exited still gets its pass: it is dropped, so a lone sender that remains is alone
    /// again (and stamps without a locked instruction). Each thread exits only after its
    /// message was handled, so only the departure itself can bring the shard back to the lane.
    /// (A parked shard drops it at its next wake.)
    #[test]
    fn an_idle_shard_drops_the_lanes_of_threads_that_exited() {
        let rt = Runtime::builder().shards(Shards::Count(1)).idle(Idle::Spin).build().unwrap();
        let (tx, got) = mpsc::channel();
        let a = rt.spawn(move || Sink(tx.clone())).unwrap();
        let wait = Duration::from_secs(10);
        // A thread of our own keeps its lane: the count settles at one.
        a.tell(0).unwrap();
        assert_eq!(got.recv_timeout(wait), Ok(0));
        for i in 1..=3 {
            let (a, (exit, may_exit)) = (a.clone(), mpsc::channel::<()>());
            std::thread::scope(|s| {
                s.spawn(move || {
                    a.tell(i).unwrap();
                    may_exit.recv_timeout(wait).unwrap();
                });
                assert_eq!(got.recv_timeout(wait), Ok(i));
                exit.send(()).unwrap();
            });
        }
        let deadline = Instant::now() + wait;
        while registry_live(&rt) != 1 {
            assert!(Instant::now() < deadline, "{} lanes live, 1 expected", registry_live(&rt));
            std::thread::yield_now();
        }
        rt.shutdown().unwrap();
    }

    fn registry_live(rt: &Runtime) -> usize {
        rt.shared.shards[0].lanes.live()
    }
}
