//! Delivery: the packets that travel between shards, and how a message lands in a mailbox
//! (typed fast path, gated path for stopping actors and shaped mailboxes, deferred re-entry,
//! actors not built yet, system messages).

use super::*;

/// Messages one batch packet may carry.
pub(crate) const BATCH_CAP: usize = 64;

/// The most bytes of a new batch's storage asked for at once, to write.
const BATCH_PREFETCH: usize = 4096;

/// The fewest messages of a take from a plain thread's run that an unbounded mailbox queues where
/// they are (`Shard::deliver_user_run`): below it, copying them costs less than a part (an
/// allocation and a call per message popped).
const PART_MIN: usize = 64;

/// A batch's storage, holding its first message.
pub(crate) fn new_batch<M>(first: M) -> Vec<M> {
    let mut v: Vec<M> = Vec::with_capacity(BATCH_CAP);
    // The storage last carried messages to another core, which read it (`crate::prefetch`).
    crate::prefetch::lines(v.as_ptr(), (BATCH_CAP * std::mem::size_of::<M>()).min(BATCH_PREFETCH));
    v.push(first);
    v
}

/// A user message in flight, without a sender.
pub(crate) struct UserMsg<M>(pub(crate) M);
impl<M: Send + 'static> Deliver for UserMsg<M> {
    #[inline]
    fn deliver(self, shard: &Shard, target: u64) {
        shard.deliver_user(ActorId::from_u64(target), self.0, 0)
    }
    fn type_name() -> &'static str {
        std::any::type_name::<M>()
    }
    const RUNS: bool = true;
    fn deliver_run(items: crate::lane::RunPart<Self>, shard: &Shard, target: u64) {
        shard.deliver_user_run(ActorId::from_u64(target), items.map(|UserMsg(m)| m))
    }
    /// A message for the same actor as `last` (a lone message or a batch of the same type with
    /// room) joins it: `last` becomes or stays a batch.
    fn join(last: &mut Packet, next: Packet) -> Result<(), Packet> {
        if last.target() != next.target() {
            return Err(next);
        }
        if let Some(BatchMsg(v)) = last.payload_mut::<BatchMsg<M>>() {
            if v.len() >= BATCH_CAP {
                return Err(next);
            }
            let UserMsg(m) = next.take::<UserMsg<M>>().ok().expect("join is called on its own type");
            v.push(m);
            return Ok(());
        }
        if last.payload_mut::<UserMsg<M>>().is_none() {
            return Err(next);
        }
        let target = last.target();
        let UserMsg(m) = next.take::<UserMsg<M>>().ok().expect("join is called on its own type");
        // `last` becomes a batch holding its message, then `next`'s (`Vec::new` allocates
        // nothing for the moment `last` holds an empty one).
        let prev = std::mem::replace(last, Packet::new(target, BatchMsg(Vec::<M>::new())));
        let UserMsg(first) = prev.take::<UserMsg<M>>().ok().expect("type checked above");
        let BatchMsg(v) = last.payload_mut::<BatchMsg<M>>().expect("just built");
        *v = new_batch(first);
        v.push(m);
        Ok(())
    }
}

/// A user message in flight with its sender's raw id (never batched: the uncommon path).
pub(crate) struct SentMsg<M>(pub(crate) M, pub(crate) u64);
impl<M: Send + 'static> Deliver for SentMsg<M> {
    fn deliver(self, shard: &Shard, target: u64) {
        shard.deliver_user(ActorId::from_u64(target), self.0, self.1)
    }
    fn type_name() -> &'static str {
        std::any::type_name::<M>()
    }
}

/// A user message in flight with its trace context (from another node).
#[cfg(feature = "tracing-spans")]
pub(crate) struct TracedMsg<M>(pub(crate) M, pub(crate) crate::trace::TraceContext);
#[cfg(feature = "tracing-spans")]
impl<M: Send + 'static> Deliver for TracedMsg<M> {
    fn deliver(self, shard: &Shard, target: u64) {
        shard.deliver_traced(ActorId::from_u64(target), self.0, self.1)
    }
    fn type_name() -> &'static str {
        std::any::type_name::<M>()
    }
}

/// Consecutive user messages to one actor, without senders, in flight as one packet.
pub(crate) struct BatchMsg<M>(pub(crate) Vec<M>);
impl<M: Send + 'static> Deliver for BatchMsg<M> {
    fn deliver(self, shard: &Shard, target: u64) {
        shard.deliver_user_batch(ActorId::from_u64(target), self.0.into_iter())
    }
    fn type_name() -> &'static str {
        std::any::type_name::<M>()
    }
    fn messages(&self) -> usize {
        self.0.len()
    }
}

/// A system message in flight.
pub(crate) struct SysMsg(pub(crate) SystemMsg);
impl Deliver for SysMsg {
    fn deliver(self, shard: &Shard, target: u64) {
        shard.deliver_system(ActorId::from_u64(target), self.0)
    }
}

/// A spawn request in flight for the actor `.0` (its slot reserved by the spawner), whatever
/// the packet's target: a thread outside the runtime sends all its spawns to a shard under one
/// target ([`SPAWNS`]), so a burst of them travels in a run like a stream of tells to one
/// actor (16 bytes per spawn of a factory without captures, in a reused buffer, where each
/// took a 64-byte entry of the lane's overflow queue, under its lock, in memory that doubled
/// with the backlog).
pub(crate) struct SpawnMsg<F>(pub(crate) u64, pub(crate) F, pub(crate) Option<Box<Birth>>);
impl<A: Actor, F: FnMut() -> A + Send + 'static> Deliver for SpawnMsg<F> {
    fn deliver(self, shard: &Shard, _: u64) {
        if let Err(e) = shard.spawn_reserved(ActorId::from_u64(self.0), self.1, self.2) {
            tracing::error!(error = %e, "remote spawn failed");
        }
    }
    const RUNS: bool = true;
}

/// The target a thread outside the runtime sends its spawn requests under (see [`SpawnMsg`]):
/// no actor's id (its shard field is past any shard).
pub(crate) const SPAWNS: u64 = u64::MAX;

/// Start shutting the shard down.
pub(crate) struct ShutdownMsg;
impl Deliver for ShutdownMsg {
    fn deliver(self, shard: &Shard, _: u64) {
        shard.begin_shutdown()
    }
}

impl Shard {
    // ---- mailboxes -------------------------------------------------------------------------

    /// Resolves a live cell pointer for `id` (valid until the cell is finalized by this thread).
    #[inline(always)]
    pub(super) fn cell(&self, id: ActorId) -> Option<*const dyn ErasedCell> {
        let slab = self.slab.borrow();
        match slab.get(id.slot() as usize) {
            Some(Entry { gen, cell: Some(c), .. }) if *gen == id.gen() => Some(&**c as *const _),
            _ => None,
        }
    }

    #[inline(always)]
    pub(super) fn schedule(&self, h: &Header) {
        if !h.scheduled.get() {
            h.scheduled.set(true);
            self.run_queue.borrow_mut().push_back(h.id);
        }
    }

    /// Same-shard delivery of a user message: straight into the typed mailbox. Always inlined
    /// into the sender, so the message is built where it is stored instead of being passed by
    /// pointer and re-read with wider loads than it was written with (a store-forwarding stall).
    #[inline(always)]
    pub(crate) fn deliver_user<M: Send + 'static>(&self, id: ActorId, msg: M, sender: u64) {
        // SAFETY: as in `try_deliver_user`.
        let mb = self.cell(id).map(|cell| unsafe { &*(cell as *const Mailbox<M>) });
        match mb {
            // Unbounded (one byte tested), or bounded with room (one more load and compare).
            Some(mb) if mb.open() || mb.bounded_with_room() => {
                mb.push_unchecked(msg, sender);
                self.schedule(&mb.hdr);
            }
            // One out-of-line call for every other case, so the message is built in place on
            // the fast path (two cold calls taking it made LLVM spill it up front).
            _ => self.deliver_slow(id, msg, sender),
        }
    }

    /// Delivery of a message with a trace context: queued with it in an unbounded or bounded
    /// mailbox with room; otherwise delivered as a plain message (a priority or custom mailbox,
    /// an actor not built yet: the context is not kept).
    #[cfg(feature = "tracing-spans")]
    pub(crate) fn deliver_traced<M: Send + 'static>(
        &self,
        id: ActorId,
        msg: M,
        trace: crate::trace::TraceContext,
    ) {
        // SAFETY: as in `try_deliver_user`.
        let mb = self.cell(id).map(|cell| unsafe { &*(cell as *const Mailbox<M>) });
        match mb {
            Some(mb) if mb.open() || mb.bounded_with_room() => {
                mb.push_unchecked(msg, 0);
                mb.attach_trace_to_back(trace);
                self.schedule(&mb.hdr);
            }
            _ => self.deliver_slow(id, msg, 0),
        }
    }

    /// A `tell` to an actor that is absent (not spawned yet, or gone) or stopping, or whose
    /// mailbox is full or ordered by priority: what is not queued is a dead letter.
    #[cold]
    #[inline(never)]
    fn deliver_slow<M: Send + 'static>(&self, id: ActorId, msg: M, sender: u64) {
        match self.cell(id) {
            Some(cell) => {
                // SAFETY: as in `try_deliver_user`.
                let mb = unsafe { &*(cell as *const Mailbox<M>) };
                self.deliver_gated(id, mb, msg, sender)
            }
            None => self.deliver_to_absent(id, msg, sender),
        }
    }

    /// A `tell` to a stopping actor or through a bounded or priority mailbox.
    fn deliver_gated<M: Send + 'static>(&self, id: ActorId, mb: &Mailbox<M>, msg: M, sender: u64) {
        if let Err(refused) = self.admit(id, mb, msg, sender) {
            self.refused_to_dead_letter(id, mb, refused);
        }
    }

    /// A message the policy dropped (`DropNewest`, `DropOldest`).
    #[cold]
    #[inline(never)]
    fn overflowed<M: Send + 'static>(&self, id: ActorId, mb: &Mailbox<M>, m: M) {
        mb.count_dropped();
        drop(m);
        self.dead_letters(DeadLetterReason::MailboxFull, 1, Some(id), std::any::type_name::<M>());
    }

    /// The mailbox's own code (a comparator, a custom queue) panicked while it held an arriving
    /// message: the message is a dead letter, the actor fails (its supervisor decides).
    #[cold]
    #[inline(never)]
    fn mailbox_failed<M: Send + 'static>(
        &self,
        id: ActorId,
        mb: &Mailbox<M>,
        p: Box<dyn std::any::Any + Send>,
    ) {
        mb.count_dropped();
        tracing::error!(actor = %id, panic = crate::cell::panic_text(&p), "the actor's mailbox panicked");
        self.dead_letters(DeadLetterReason::HandlerFailed, 1, Some(id), std::any::type_name::<M>());
        self.send_system(id, SystemMsg::ClosureFailed(crate::Phase::Mailbox, crate::Cause::Panic(p)));
    }

    #[cold]
    #[inline(never)]
    fn refused_to_dead_letter<M: Send + 'static>(&self, id: ActorId, mb: &Mailbox<M>, refused: Refused<M>) {
        let reason = match refused {
            Refused::Stopped(_) => DeadLetterReason::ActorStopped,
            Refused::Full(_) => {
                mb.count_dropped();
                DeadLetterReason::MailboxFull
            }
        };
        drop(refused);
        self.dead_letters(reason, 1, Some(id), std::any::type_name::<M>());
    }

    /// Offers a message to a mailbox under its policy. Messages its policy drops become dead
    /// letters here; a refused one (stopping actor, or full with `Reject`) is given back.
    /// Inlined into its two callers, so a message is moved once on its way to the queue.
    #[inline(always)]
    fn admit<M: Send + 'static>(
        &self,
        id: ActorId,
        mb: &Mailbox<M>,
        msg: M,
        sender: u64,
    ) -> Result<(), Refused<M>> {
        if !mb.accepts() {
            return Err(Refused::Stopped(msg));
        }
        if mb.busy() {
            // Sent by user code running inside an operation on this very queue.
            self.defer(id, msg, sender);
            return Ok(());
        }
        let dropped = match mb.offer(msg, sender) {
            Offer::Queued => None,
            Offer::Evicted(old) => Some(old),
            Offer::Dropped(m) => Some(m),
            Offer::Refused(m) => return Err(Refused::Full(m)),
            Offer::Failed(p) => {
                self.mailbox_failed(id, mb, p);
                return Ok(());
            }
        };
        // An evicting offer queued the new message; the first message always schedules.
        if !mb.is_empty() {
            self.schedule(&mb.hdr);
        }
        if let Some(m) = dropped {
            self.overflowed(id, mb, m);
        }
        Ok(())
    }

    /// Holds a message for a mailbox that is busy (see `cell::mailbox::Busy`).
    #[cold]
    #[inline(never)]
    fn defer<M: Send + 'static>(&self, id: ActorId, msg: M, sender: u64) {
        self.deferred.borrow_mut().push_back(Packet::new(id.as_u64(), SentMsg(msg, sender)));
    }

    /// Delivers the deferred messages, in order (also those deferred while doing so). Called
    /// when a busy operation ends and at the start of each pass.
    pub(crate) fn deliver_deferred(&self) {
        if self.draining_deferred.replace(true) {
            return; // an outer call delivers what is deferred now
        }
        loop {
            let next = self.deferred.borrow_mut().pop_front();
            let Some(p) = next else { break };
            p.deliver(self);
        }
        self.draining_deferred.set(false);
    }

    /// Delivers messages a plain thread's run handed over in one take (`crate::lane::run`). An
    /// unbounded mailbox of a running actor queues a take of [`PART_MIN`] or more where it is
    /// (`Mailbox::push_part`): a backlog is not copied (and the mailbox's buffer does not grow
    /// into fresh memory to hold it); smaller takes, and other mailboxes, get the messages one
    /// by one as from a batch.
    fn deliver_user_run<M: Send + 'static>(
        &self,
        id: ActorId,
        part: impl ExactSizeIterator<Item = M> + 'static,
    ) {
        if part.len() >= PART_MIN {
            if let Some(cell) = self.cell(id) {
                // SAFETY: as in `try_deliver_user`.
                let mb = unsafe { &*(cell as *const Mailbox<M>) };
                if mb.open() {
                    mb.push_part(Box::new(part));
                    self.schedule(&mb.hdr);
                    return;
                }
            }
        }
        self.deliver_user_batch(id, part)
    }

    /// Delivers a batch from one sender: one lookup, one append, in order.
    fn deliver_user_batch<M: Send + 'static>(&self, id: ActorId, msgs: impl ExactSizeIterator<Item = M>) {
        if let Some(cell) = self.cell(id) {
            // SAFETY: as in `try_deliver_user`.
            let mb = unsafe { &*(cell as *const Mailbox<M>) };
            if mb.open() {
                mb.extend(msgs);
                self.schedule(&mb.hdr);
            } else {
                for m in msgs {
                    if mb.bounded_with_room() {
                        mb.push_unchecked(m, 0);
                        self.schedule(&mb.hdr);
                    } else {
                        self.deliver_gated(id, mb, m, 0);
                    }
                }
            }
            return;
        }
        for m in msgs {
            self.deliver_to_absent(id, m, 0);
        }
    }

    #[cold]
    fn deliver_to_absent<M: Send + 'static>(&self, id: ActorId, msg: M, sender: u64) {
        if let Err(m) = self.try_deliver_user(id, msg, sender) {
            drop(m);
            self.dead_letters(DeadLetterReason::ActorStopped, 1, Some(id), std::any::type_name::<M>());
        }
    }

    /// Holds a packet for an actor whose spawn request has not arrived yet, if `id` is such an
    /// actor (reserved, live, not in the slab). Gives the packet back otherwise.
    fn hold_for_spawn(&self, id: ActorId, p: Packet) -> Result<(), Packet> {
        if self.slots().is_live(id.slot(), id.gen()) {
            self.pending.borrow_mut().entry(id.slot()).or_default().push(p);
            Ok(())
        } else {
            Err(p)
        }
    }

    /// Like `deliver_user`, but gives the message back when the actor does not accept it:
    /// it has stopped, or its bounded mailbox is full and rejects.
    #[inline]
    pub(crate) fn try_deliver_user<M: Send + 'static>(
        &self,
        id: ActorId,
        msg: M,
        sender: u64,
    ) -> Result<(), Refused<M>> {
        let Some(cell) = self.cell(id) else {
            if !self.slots().is_live(id.slot(), id.gen()) {
                return Err(Refused::Stopped(msg));
            }
            // Reserved by a spawner whose request has not arrived yet: hold it until then.
            self.pending
                .borrow_mut()
                .entry(id.slot())
                .or_default()
                .push(Packet::new(id.as_u64(), SentMsg(msg, sender)));
            return Ok(());
        };
        // SAFETY: the generation matched, so this cell is the actor the `ActorRef<M>` was made
        // for, whose message type is `M`; cells are `#[repr(C)]` with `Mailbox<M>` first. The
        // cell is boxed in the slab and only this thread frees it, never during this call.
        let mb = unsafe { &*(cell as *const Mailbox<M>) };
        if mb.open() {
            mb.push_unchecked(msg, sender);
            self.schedule(&mb.hdr);
            return Ok(());
        }
        self.admit(id, mb, msg, sender)
    }

    /// Delivers a message sent through an untyped address, checking its type on arrival.
    pub(crate) fn deliver_checked<M: Send + 'static>(&self, id: ActorId, msg: M, sender: u64) {
        let ty = std::any::type_name::<M>();
        let Some(cell) = self.cell(id) else {
            let p = Packet::new(id.as_u64(), CheckedMsg(msg, sender));
            if self.hold_for_spawn(id, p).is_err() {
                self.dead_letters(DeadLetterReason::ActorStopped, 1, Some(id), ty);
            }
            return;
        };
        // SAFETY: live cell owned by this thread's slab (see `cell`).
        match unsafe { &*cell }.type_fit(std::any::TypeId::of::<M>()) {
            TypeFit::Exact => self.deliver_user(id, msg, sender),
            TypeFit::Any => self.deliver_user(id, crate::AnyMsg::new(msg), sender),
            TypeFit::No(takes) => {
                self.warn_type_mismatch(id, ty, takes, sender);
                self.dead_letters(DeadLetterReason::TypeMismatch, 1, Some(id), ty);
            }
        }
    }

    /// A message of the wrong type is a programming error, not load: it is said at warn level
    /// (once per pair of types on this shard, so a loop cannot flood the log), naming who sent
    /// it, for the usual case of a reply through `ctx.sender()` of another type.
    fn warn_type_mismatch(&self, id: ActorId, sent: &'static str, takes: &'static str, sender: u64) {
        /// Pairs remembered per shard; past this, mismatches are only counted.
        const REMEMBERED: usize = 64;
        let mut warned = self.type_mismatches.borrow_mut();
        if warned.len() >= REMEMBERED || !warned.insert((sent, takes)) {
            return;
        }
        let from = (sender != 0).then(|| ActorId::from_u64(sender).to_string());
        tracing::warn!(
            target_actor = %id,
            sent,
            takes,
            from = from.as_deref().unwrap_or("a sender-less tell"),
            "message of the wrong type for its actor: a TypeMismatch dead letter (a reply through \
             ctx.sender() of another type than the sender's messages?)"
        );
    }

    pub(crate) fn deliver_system(&self, id: ActorId, sys: SystemMsg) {
        match self.cell(id) {
            Some(cell) => {
                // SAFETY: live cell owned by this thread's slab (see `cell`).
                let cell = unsafe { &*cell };
                cell.header().push_system(sys);
                self.schedule(cell.header());
            }
            None => {
                if let Err(p) = self.hold_for_spawn(id, Packet::new(id.as_u64(), SysMsg(sys))) {
                    if let Ok(SysMsg(sys)) = p.take::<SysMsg>() {
                        self.system_to_absent(id, sys);
                    }
                }
            }
        }
    }

    /// A system message for an actor that is gone: answer what waits for an answer.
    #[cold]
    pub(super) fn system_to_absent(&self, id: ActorId, sys: SystemMsg) {
        match sys {
            // A stop or kill is complete.
            SystemMsg::Stop(Some(w)) | SystemMsg::Kill(Some(w)) => w.complete(()),
            // Watching what is gone is told at once.
            SystemMsg::Watch(w) => {
                self.send_system(w, SystemMsg::Terminated { id, reason: crate::StopReason::NotFound })
            }
            // Anything else (metrics and restart replies are dropped: their askers get NoReply).
            _ => {}
        }
    }

    /// Sends a system message to any actor of this runtime, from this shard.
    pub(crate) fn send_system(&self, to: ActorId, sys: SystemMsg) {
        if to.shard() == self.idx {
            self.deliver_system(to, sys);
        } else {
            self.push_outbound(to.shard(), Packet::new(to.as_u64(), SysMsg(sys)));
        }
    }

    /// Mailbox depth of a live actor.
    pub(crate) fn mailbox_len(&self, id: ActorId) -> Option<usize> {
        // SAFETY: live cell owned by this thread's slab (see `cell`).
        self.cell(id).map(|c| unsafe { &*c }.mailbox_len())
    }
}
