//! One shard: the state its thread owns and the dispatcher loop that drives it.
//!
//! Everything in [`Shard`] is touched only by the shard's own thread (interior mutability
//! without atomics). Other threads reach it only through the rings and the injector in
//! [`ShardShared`].
//!
//! Dispatcher loop, one pass:
//! 1. take a pending wake-up notification (park protocol),
//! 2. drain inbound rings (a bounded batch per ring) and the injector into mailboxes,
//! 3. fire due timers,
//! 4. run each ready actor for up to `throughput` messages (system lane first), re-queueing
//!    those with more, publishing outbound rings after each turn,
//! 5. yield to the executor when a local task was woken or its time slice is over,
//! 6. with nothing done, follow the idle policy (spin, park, or spin then park).

use crate::any_ref::CheckedMsg;
use crate::cell::ext::Birth;
use crate::cell::{
    ActorCell, ErasedCell, Header, Life, Mailbox, Offer, Outcome, Refused, SystemMsg, TypeFit,
};
use crate::error::SpawnError;
use crate::executor::{self, TaskHandle};
use crate::id::ActorId;
use crate::injector::Injector;
use crate::metrics::{bump, unbump, DeadLetterReason, ShardStats};
use crate::packet::{Deliver, Packet};
use crate::park::Parker;
use crate::ring::{Consumer, Producer};
use crate::runtime::{Idle, Shared};
use crate::slots::Slots;
use crate::timers::{deadline_after, TimerAction, TimerId, Timers};
use crate::Actor;
use crossbeam_utils::CachePadded;
use std::any::TypeId;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Items taken from one inbound ring per pass, so one busy peer cannot starve the others.
const RING_BATCH: usize = 256;
/// Pushed-but-unpublished items after which a ring is published without waiting for the turn
/// to end.
const PUBLISH_BATCH: usize = 32;
/// Actor turns per pass before inbound rings are drained again.
const MAX_TURNS_PER_PASS: usize = 256;
/// One turn in this many is timed (for the actors' `last_processing` metric).
const TIMED_TURN_EVERY: u32 = 256;
/// Idle passes between yields to the executor while spinning.
const SPIN_YIELD_EVERY: u32 = 64;
/// Longest park while local tasks we spawned are pending (they may wait on executor timers or
/// I/O, which cannot wake a parked shard).
const TASK_PARK_CAP: Duration = Duration::from_millis(1);

/// What other threads share with one shard. Cache-padded as a whole (neighbouring shards'
/// blocks never share a line), and the counters the shard writes every pass have lines of their
/// own, apart from the injector flag and park state that producers write.
pub(crate) struct ShardShared {
    pub(crate) parker: Parker,
    pub(crate) injector: CachePadded<Injector>,
    pub(crate) slots: Slots,
    pub(crate) stats: CachePadded<ShardStats>,
}

impl ShardShared {
    pub(crate) fn new() -> Self {
        Self {
            parker: Parker::new(),
            injector: CachePadded::new(Injector::default()),
            slots: Slots::new(),
            stats: CachePadded::new(ShardStats::default()),
        }
    }
}

thread_local! {
    static CURRENT: Cell<*const Shard> = const { Cell::new(std::ptr::null()) };
}

/// Calls `f` with the shard this thread runs, if it is a shard thread.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Shard>) -> R) -> R {
    let p = current_ptr();
    // SAFETY: CURRENT is set by `Shard::run` to a shard that lives until `run` returns, and is
    // cleared before that; the reference does not escape `f`.
    f(unsafe { p.as_ref() })
}

/// The shard this thread runs, or null. For hot paths that must not move their message through
/// a closure's captured environment (which costs a store-forwarding stall per message).
#[inline(always)]
pub(crate) fn current_ptr() -> *const Shard {
    CURRENT.with(|c| c.get())
}

struct Entry {
    gen: u32,
    cell: Option<Box<dyn ErasedCell>>,
}

struct Outbound {
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

/// Messages one batch packet may carry.
const BATCH_CAP: usize = 64;

/// A batch's storage, holding its first message.
fn new_batch<M>(first: M) -> Vec<M> {
    let mut v = Vec::with_capacity(BATCH_CAP);
    v.push(first);
    v
}

/// The shard's own state. Lives on its thread for the thread's lifetime.
pub(crate) struct Shard {
    pub(crate) idx: usize,
    pub(crate) shared: Arc<Shared>,
    slab: RefCell<Vec<Entry>>,
    /// Actors with work, by id.
    run_queue: RefCell<VecDeque<ActorId>>,
    outbound: Box<[RefCell<Option<Outbound>>]>,
    dirty: RefCell<Vec<usize>>,
    inbound: RefCell<Vec<Consumer<Packet>>>,
    inj_batch: RefCell<Vec<Packet>>,
    timers: RefCell<Timers>,
    /// Messages for actors whose spawn request is still in flight, by slot.
    pending: RefCell<HashMap<u32, Vec<Packet>>>,
    /// Messages sent to a mailbox while an operation on it ran user code, in order.
    deferred: RefCell<VecDeque<Packet>>,
    draining_deferred: Cell<bool>,
    pub(crate) local_woken: Cell<bool>,
    processed: Cell<u64>,
    /// Turns until the next timed one.
    untimed: Cell<u32>,
    tasks: Cell<usize>,
    shutting_down: Cell<bool>,
    quiesced: Cell<bool>,
}

/// Keeps the shard's count of live local tasks: decremented when the task ends or is cancelled
/// (its future, and so this guard, is dropped either way).
struct TaskCount(Arc<Shared>);
impl Drop for TaskCount {
    fn drop(&mut self) {
        with_current(|s| {
            if let Some(s) = s.filter(|s| s.belongs_to(&self.0)) {
                s.tasks.set(s.tasks.get() - 1);
            }
        });
    }
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

/// Consecutive user messages to one actor, without senders, in flight as one packet.
pub(crate) struct BatchMsg<M>(pub(crate) Vec<M>);
impl<M: Send + 'static> Deliver for BatchMsg<M> {
    fn deliver(self, shard: &Shard, target: u64) {
        shard.deliver_user_batch(ActorId::from_u64(target), self.0)
    }
    fn type_name() -> &'static str {
        std::any::type_name::<M>()
    }
}

/// A system message in flight.
pub(crate) struct SysMsg(pub(crate) SystemMsg);
impl Deliver for SysMsg {
    fn deliver(self, shard: &Shard, target: u64) {
        shard.deliver_system(ActorId::from_u64(target), self.0)
    }
}

/// A spawn request in flight; the slot was reserved by the spawner.
pub(crate) struct SpawnMsg<F>(pub(crate) F, pub(crate) Option<Box<Birth>>);
impl<A: Actor, F: FnMut() -> A + Send + 'static> Deliver for SpawnMsg<F> {
    fn deliver(self, shard: &Shard, target: u64) {
        if let Err(e) = shard.spawn_reserved(ActorId::from_u64(target), self.0, self.1) {
            tracing::error!(error = %e, "remote spawn failed");
        }
    }
}

/// Start shutting the shard down.
pub(crate) struct ShutdownMsg;
impl Deliver for ShutdownMsg {
    fn deliver(self, shard: &Shard, _: u64) {
        shard.begin_shutdown()
    }
}

impl Shard {
    pub(crate) fn new(
        idx: usize,
        shared: Arc<Shared>,
        producers: Vec<Option<Producer<Packet>>>,
        consumers: Vec<Consumer<Packet>>,
    ) -> Self {
        Self {
            idx,
            shared,
            slab: RefCell::new(Vec::new()),
            run_queue: RefCell::new(VecDeque::new()),
            outbound: producers
                .into_iter()
                .map(|p| {
                    RefCell::new(p.map(|prod| Outbound {
                        prod,
                        overflow: VecDeque::new(),
                        dirty: false,
                        last: None,
                        open: None,
                    }))
                })
                .collect(),
            dirty: RefCell::new(Vec::new()),
            inbound: RefCell::new(consumers),
            inj_batch: RefCell::new(Vec::new()),
            timers: RefCell::new(Timers::default()),
            pending: RefCell::new(HashMap::new()),
            deferred: RefCell::new(VecDeque::new()),
            draining_deferred: Cell::new(false),
            local_woken: Cell::new(false),
            processed: Cell::new(0),
            untimed: Cell::new(0),
            tasks: Cell::new(0),
            shutting_down: Cell::new(false),
            quiesced: Cell::new(false),
        }
    }

    #[inline]
    pub(crate) fn mine(&self) -> &ShardShared {
        &self.shared.shards[self.idx]
    }

    pub(crate) fn slots(&self) -> &Slots {
        &self.mine().slots
    }

    /// Whether this shard belongs to the runtime `shared`.
    #[inline]
    pub(crate) fn belongs_to(&self, shared: &Arc<Shared>) -> bool {
        Arc::ptr_eq(&self.shared, shared)
    }

    /// Counted in a plain cell; published to the shared counter once per pass.
    #[inline]
    pub(crate) fn count_processed(&self, n: usize) {
        self.processed.set(self.processed.get() + n as u64);
    }

    /// User messages handled on this shard so far.
    fn processed_count(&self) -> u64 {
        self.processed.get()
    }

    /// Counts `n` dead letters of type `ty` for `target`, and publishes them.
    pub(crate) fn dead_letters(
        &self,
        reason: DeadLetterReason,
        n: u64,
        target: Option<ActorId>,
        ty: &'static str,
    ) {
        if n > 0 {
            bump(&self.mine().stats.dead[reason.index()], n);
            tracing::trace!(?reason, n, message_type = ty, "dead letters");
            self.shared.events.publish(|| crate::Event::Deadletter {
                target,
                message_type: ty,
                reason,
                count: n,
            });
        }
    }

    // ---- mailboxes -------------------------------------------------------------------------

    /// Resolves a live cell pointer for `id` (valid until the cell is finalized by this thread).
    #[inline(always)]
    fn cell(&self, id: ActorId) -> Option<*const dyn ErasedCell> {
        let slab = self.slab.borrow();
        match slab.get(id.slot() as usize) {
            Some(Entry { gen, cell: Some(c) }) if *gen == id.gen() => Some(&**c as *const _),
            _ => None,
        }
    }

    #[inline(always)]
    fn schedule(&self, h: &Header) {
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

    /// Delivers a batch from one sender: one lookup, one append, in order.
    fn deliver_user_batch<M: Send + 'static>(&self, id: ActorId, msgs: Vec<M>) {
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
            TypeFit::No => self.dead_letters(DeadLetterReason::TypeMismatch, 1, Some(id), ty),
        }
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
    fn system_to_absent(&self, id: ActorId, sys: SystemMsg) {
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

    // ---- spawning --------------------------------------------------------------------------

    /// Builds an actor in a slot the spawner reserved on this shard.
    pub(crate) fn spawn_reserved<A: Actor>(
        &self,
        id: ActorId,
        mut factory: impl FnMut() -> A + 'static,
        birth: Option<Box<Birth>>,
    ) -> Result<(), SpawnError> {
        let held = self.pending.borrow_mut().remove(&id.slot()).unwrap_or_default();
        let parent = birth.as_ref().and_then(|b| b.parent);
        let refuse = |held: Vec<Packet>, reason, err| {
            self.slots().release(id.slot(), id.gen());
            for p in held {
                let ty = p.type_name();
                drop(p);
                self.dead_letters(reason, 1, Some(id), ty);
            }
            // A parent that recorded this child hears that it is gone.
            if let Some(p) = parent {
                self.send_system(p, SystemMsg::ChildTerminated(id));
            }
            Err(err)
        };
        if self.shutting_down.get() && self.quiesced.get() && self.shared.all_quiesced() {
            return refuse(held, DeadLetterReason::RuntimeClosed, SpawnError::Closed);
        }
        let actor = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut factory)) {
            Ok(a) => a,
            Err(p) => {
                let err = SpawnError::FactoryPanicked(crate::cell::panic_text(&p));
                return refuse(held, DeadLetterReason::ActorStopped, err);
            }
        };
        let cell: Box<dyn ErasedCell> = Box::new(ActorCell::new(id, actor, Box::new(factory), birth));
        {
            let mut slab = self.slab.borrow_mut();
            let slot = id.slot() as usize;
            if slab.len() <= slot {
                slab.resize_with(slot + 1, || Entry { gen: u32::MAX, cell: None });
            }
            slab[slot] = Entry { gen: id.gen(), cell: Some(cell) };
        }
        bump(&self.mine().stats.actors, 1);
        // Queue it so `started` runs before any message.
        let c = self.cell(id).expect("just inserted");
        // SAFETY: just inserted into this thread's slab.
        self.schedule(unsafe { &*c }.header());
        for p in held {
            p.deliver(self);
        }
        if self.shutting_down.get() {
            // Accepted before the shutdown reached this shard (or a running parent's child):
            // it starts, handles what was sent to it, and stops with the rest.
            if self.quiesced.replace(false) {
                self.shared.shard_unquiesced();
            }
            self.deliver_system(id, SystemMsg::Stop(None));
        }
        Ok(())
    }

    /// A stopping actor gets `stop_timeout` to drain its mailbox: returns the deadline, which
    /// its turns check before each message; the timer covers an actor that gets no turn
    /// (waiting for its children).
    pub(crate) fn begin_stop(&self, id: ActorId) -> Instant {
        self.slots().mark_dead(id.slot(), id.gen());
        let at = deadline_after(Instant::now(), self.shared.cfg.stop_timeout);
        self.timers.borrow_mut().add(at, TimerAction::StopDeadline(id));
        at
    }

    fn stop_deadline(&self, id: ActorId) {
        if let Some(c) = self.cell(id) {
            // SAFETY: live cell owned by this thread's slab.
            if unsafe { &*c }.header().life() == Life::Stopping {
                tracing::warn!(actor = %id, "stop timeout: dropping what is still queued");
                self.finalize(id);
            }
        }
    }

    /// Takes the cell out of the slab, runs its last rites and frees the slot.
    fn finalize(&self, id: ActorId) {
        let cell = {
            let mut slab = self.slab.borrow_mut();
            match slab.get_mut(id.slot() as usize) {
                Some(e) if e.gen == id.gen() => e.cell.take(),
                _ => None,
            }
        };
        let Some(cell) = cell else { return };
        let waiters = cell.finalize(self);
        drop(cell);
        self.shared.registry.remove_actor(id);
        self.slots().release(id.slot(), id.gen());
        unbump(&self.mine().stats.actors, 1);
        // Told last: whoever waits for the stop sees the name and slot already gone.
        for w in waiters {
            w.complete(());
        }
        self.maybe_quiesce();
    }

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

    fn drain_inbound(&self) -> usize {
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
        let inj = &self.mine().injector;
        if inj.has_pending() {
            let mut batch = std::mem::take(&mut *self.inj_batch.borrow_mut());
            inj.take_into(&mut batch);
            n += batch.len();
            for p in batch.drain(..) {
                p.deliver(self);
            }
            *self.inj_batch.borrow_mut() = batch;
        }
        n
    }

    // ---- timers and tasks ------------------------------------------------------------------

    pub(crate) fn add_timer(&self, at: Instant, a: TimerAction) -> TimerId {
        self.timers.borrow_mut().add(at, a)
    }

    pub(crate) fn cancel_timer(&self, id: TimerId) {
        self.timers.borrow_mut().cancel(id)
    }

    fn fire_timers(&self, now: Instant) -> usize {
        let mut n = 0;
        loop {
            let a = self.timers.borrow_mut().pop_due(now);
            let Some(a) = a else { break };
            n += 1;
            match a {
                TimerAction::StopDeadline(id) => self.stop_deadline(id),
                TimerAction::Restart(id) => self.deliver_system(id, SystemMsg::BackoffRestart),
                TimerAction::Passivate(id) => self.deliver_system(id, SystemMsg::PassivationCheck),
                TimerAction::Task(t) => {
                    if let Some((at, t)) = t.fire(self, now) {
                        self.add_timer(at, TimerAction::Task(t));
                    }
                }
                TimerAction::Wake(w) => {
                    w.wake();
                    self.local_woken.set(true);
                }
            }
        }
        n
    }

    /// Runs `fut` as a local task on this shard, counted so parking stays responsive to it.
    pub(crate) fn spawn_task(&self, fut: impl std::future::Future<Output = ()> + 'static) {
        drop(self.spawn_task_handle(fut));
    }

    /// Like `spawn_task`, returning a handle that cancels the task.
    pub(crate) fn spawn_task_handle(
        &self,
        fut: impl std::future::Future<Output = ()> + 'static,
    ) -> TaskHandle {
        self.tasks.set(self.tasks.get() + 1);
        let guard = TaskCount(self.shared.clone());
        let h = executor::spawn_local(async move {
            let _guard = guard;
            fut.await;
        });
        self.local_woken.set(true);
        h
    }

    // ---- dispatcher ------------------------------------------------------------------------

    /// Runs the ready actors in rounds: a round gives one turn to each actor that was ready when
    /// it began; actors that become ready during it, and those re-queued with more to do, wait
    /// for the next round. Between rounds, the pass ends as soon as anything waits outside the
    /// run queue (inbound rings, injector, timers, woken tasks), and after `MAX_TURNS_PER_PASS`
    /// turns. So a message from anywhere waits at most one turn of each ready actor, however
    /// deep one actor's backlog is, while same-shard traffic does not pay a pass per hop.
    fn run_ready(&self) -> usize {
        let budget = self.shared.cfg.throughput;
        let mut ran = 0;
        // Turns left in the current round: the actors that were ready when it began.
        let mut round = self.run_queue.borrow().len();
        while ran < MAX_TURNS_PER_PASS {
            if round == 0 {
                // Another round in this pass only while nothing waits outside the run queue
                // (a few loads, far cheaper than a pass).
                if self.outside_waiting() {
                    break;
                }
                round = self.run_queue.borrow().len();
                if round == 0 {
                    break;
                }
            }
            round -= 1;
            let next = self.run_queue.borrow_mut().pop_front();
            let Some(id) = next else { break };
            let Some(cell) = self.cell(id) else { continue };
            // SAFETY: live cell owned by this thread's slab; it is finalized (freed) only below,
            // after the last use of this reference.
            let cell = unsafe { &*cell };
            ran += 1;
            // One turn in `TIMED_TURN_EVERY` is timed: a clock read costs ~25 ns, more than a
            // same-shard message, so only a sample of turns pays for it.
            let left = self.untimed.get();
            let outcome = if left == 0 {
                self.untimed.set(TIMED_TURN_EVERY);
                self.timed_turn(cell, budget)
            } else {
                self.untimed.set(left - 1);
                cell.run(self, budget)
            };
            match outcome {
                Outcome::Idle => {}
                Outcome::More => self.run_queue.borrow_mut().push_back(id),
                Outcome::Finalize => self.finalize(id),
            }
            if !self.dirty.borrow().is_empty() {
                self.flush_outbound();
            }
        }
        if ran > 0 {
            let st = &self.mine().stats;
            st.run_queue.store(self.run_queue.borrow().len() as u64, Ordering::Relaxed);
            st.processed.store(self.processed.get(), Ordering::Relaxed);
        }
        ran
    }

    /// Whether anything but the run queue needs the dispatcher: an inbound ring or the injector
    /// has messages, a timer is pending (its due time would need a clock read), a message was
    /// deferred, or a local task was woken.
    #[inline(always)]
    fn outside_waiting(&self) -> bool {
        self.mine().injector.has_pending()
            || self.local_woken.get()
            || self.inbound.borrow().iter().any(|c| c.has_next())
            || !self.timers.borrow().is_empty()
            || !self.deferred.borrow().is_empty()
    }

    /// Runs one turn of `cell` and records its time per message.
    #[cold]
    #[inline(never)]
    pub(crate) fn timed_turn(&self, cell: &dyn ErasedCell, budget: usize) -> Outcome {
        let before = self.processed_count();
        let t0 = Instant::now();
        let outcome = cell.run(self, budget);
        let n = self.processed_count() - before;
        if n > 0 && !matches!(outcome, Outcome::Finalize) {
            cell.record_turn_time(t0.elapsed() / n as u32);
        }
        outcome
    }

    fn has_local_work(&self) -> bool {
        !self.run_queue.borrow().is_empty() || !self.dirty.borrow().is_empty()
    }

    fn begin_shutdown(&self) {
        if self.shutting_down.replace(true) {
            return;
        }
        let ids: Vec<ActorId> = self
            .slab
            .borrow()
            .iter()
            .enumerate()
            .filter(|(_, e)| e.cell.is_some())
            .map(|(slot, e)| ActorId::new(self.idx, slot as u32, e.gen))
            .collect();
        for id in ids {
            self.deliver_system(id, SystemMsg::Stop(None));
        }
        self.maybe_quiesce();
    }

    fn maybe_quiesce(&self) {
        // The shard is the counter's only writer, so its own read is exact.
        let actors = self.mine().stats.actors.load(Ordering::Relaxed);
        if self.shutting_down.get() && actors == 0 && !self.quiesced.replace(true) {
            self.shared.shard_quiesced();
        }
    }

    /// The shard thread's main loop. Returns after shutdown, when every shard has quiesced.
    pub(crate) async fn run(&self) {
        CURRENT.with(|c| c.set(self as *const Shard));
        let parker = &self.mine().parker;
        parker.register_current();
        let idle = self.shared.cfg.idle;
        let notify_mode = self.shared.notify_mode;
        let mut spin_since: Option<Instant> = None;
        let mut idle_passes: u32 = 0;
        // Idle accounting: the first and the latest sampled instant of the current idle stretch.
        let mut idle_mark: Option<(Instant, Instant)> = None;
        loop {
            if notify_mode {
                parker.begin_pass();
            }
            let mut work = self.drain_inbound();
            if !self.timers.borrow().is_empty() {
                work += self.fire_timers(Instant::now());
            }
            work += self.run_ready();
            self.flush_outbound();
            // Yield when a local task was woken, or when tasks of ours exist and the executor's
            // time slice is over. With no tasks, a busy shard does not enter the executor's
            // reactor at all (it would allocate timer sources there every time slice).
            if self.local_woken.replace(false) || (self.tasks.get() > 0 && executor::should_yield()) {
                executor::yield_now().await;
            }
            if self.quiesced.get() && self.shared.all_quiesced() {
                break;
            }
            if work > 0 || self.has_local_work() {
                if let Some((first, last)) = idle_mark.take() {
                    self.add_idle(last - first);
                }
                spin_since = None;
                idle_passes = 0;
                continue;
            }
            idle_passes = idle_passes.wrapping_add(1);
            // A clock read costs ~25 ns: a spinning shard samples every 8th idle pass only, so
            // its detection latency barely moves (idle gaps under ~8 passes go uncounted).
            let now = (idle != Idle::Spin || idle_passes % 8 == 1).then(Instant::now);
            if let Some(now) = now {
                idle_mark = Some((idle_mark.map_or(now, |(first, _)| first), now));
            }
            let park = match (idle, now) {
                (Idle::Spin, _) | (_, None) => false,
                (Idle::Park, _) => true,
                (Idle::SpinThenPark(d), Some(now)) => now - *spin_since.get_or_insert(now) >= d,
            };
            if park {
                self.park(parker).await;
                spin_since = None;
                // Parked time counts as idle, up to the wake.
                let now = Instant::now();
                if let Some((first, _)) = idle_mark {
                    self.add_idle(now - first);
                }
                idle_mark = Some((now, now));
            } else if idle_passes % SPIN_YIELD_EVERY == 0 {
                executor::yield_now().await;
            } else if idle != Idle::Spin {
                // A pause eases the sibling hyperthread, at up to ~40 ns of detection latency:
                // paid while waiting to park, not by a shard that spins for latency.
                std::hint::spin_loop();
            }
        }
        self.exit();
        CURRENT.with(|c| c.set(std::ptr::null()));
    }

    fn add_idle(&self, d: Duration) {
        bump(&self.mine().stats.idle_nanos, d.as_nanos() as u64);
    }

    async fn park(&self, parker: &Parker) {
        // Local tasks that are ready run first; if they made work, do not sleep.
        executor::yield_now().await;
        if self.local_woken.get() || self.has_local_work() {
            return;
        }
        let mut timeout =
            self.timers.borrow_mut().next_deadline().map(|at| at.saturating_duration_since(Instant::now()));
        if self.tasks.get() > 0 {
            timeout = Some(timeout.map_or(TASK_PARK_CAP, |t| t.min(TASK_PARK_CAP)));
        }
        if timeout == Some(Duration::ZERO) {
            return;
        }
        if parker.park(timeout) {
            bump(&self.mine().stats.wakes, 1);
        }
    }

    /// After the last pass: nothing more is accepted; what is still in flight is dead.
    fn exit(&self) {
        let mut n = 0u64;
        for p in self.mine().injector.close() {
            drop(p);
            n += 1;
        }
        for c in self.inbound.borrow_mut().iter_mut() {
            while let Some(p) = c.pop() {
                drop(p);
                n += 1;
            }
            c.release();
        }
        let mut pending: Vec<Packet> = self.pending.borrow_mut().drain().flat_map(|(_, v)| v).collect();
        pending.extend(self.deferred.borrow_mut().drain(..));
        for p in pending {
            let ty = p.type_name();
            drop(p);
            self.dead_letters(DeadLetterReason::RuntimeClosed, 1, None, ty);
        }
        self.dead_letters(DeadLetterReason::RuntimeClosed, n, None, "(in flight at shutdown)");
        // Taken out before dropping: drops may run user code that reaches back into the shard.
        let slab = std::mem::take(&mut *self.slab.borrow_mut());
        drop(slab);
        let timers = std::mem::take(&mut *self.timers.borrow_mut());
        drop(timers);
    }
}
