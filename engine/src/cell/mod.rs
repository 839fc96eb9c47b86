//! An actor's home on its shard: the typed mailbox, the system lane, the state, and the turn
//! that runs them.
//!
//! Everything here is touched only by the owning shard's thread, so the mailbox is a plain
//! growable ring buffer (`VecDeque`, empty and unallocated until the first message) with no
//! atomics. A cell is boxed in the shard's slab and never moves; it is dropped only by the
//! dispatcher between turns, never while one of its handlers runs.
//!
//! The hot state (header, mailbox, actor, factory) is inline; everything else (family,
//! watches, stash, behaviors, supervision records, passivation, tasks) lives in [`ext::Ext`],
//! allocated on first use.
//!
//! Submodules: `ext` (the cold state), `system` (the system lane: stop, watch, children,
//! metrics, passivation), `failure` (supervision directives, restart), `finalize` (last rites).

pub(crate) mod ext;
mod failure;
mod finalize;
mod system;

use crate::actor::Actor;
use crate::ask::Reply;
use crate::context::Ctx;
use crate::id::ActorId;
use crate::metrics::ActorMetrics;
use crate::shard::Shard;
use crate::signal::StopReason;
use crate::supervision::{Directive, Failure, Phase};
use ext::{Birth, Ext};
use std::any::TypeId;
use std::cell::{Cell, RefCell, RefMut, UnsafeCell};
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

pub use ext::Behavior;

/// Messages of the system lane, handled before any user message.
pub(crate) enum SystemMsg {
    /// Stop after draining what is queued (bounded by the stop timeout), children first.
    Stop(Option<Reply<()>>),
    /// Stop now; queued user messages become dead letters.
    Kill(Option<Reply<()>>),
    /// Rebuild from the factory (an operator's restart; also lifts a suspension).
    Restart(Option<Reply<()>>),
    /// A restart whose backoff delay has passed (ignored unless still suspended).
    BackoffRestart,
    /// Lift a suspension, state kept (the parent resumed after this actor's escalation).
    Resume,
    /// `watcher` wants a `Terminated` signal when this actor stops.
    Watch(ActorId),
    /// `watcher` no longer does.
    Unwatch(ActorId),
    /// A watched actor stopped.
    Terminated { id: ActorId, reason: StopReason },
    /// A child stopped.
    ChildTerminated(ActorId),
    /// A child escalated its failure: this actor fails with it.
    ChildFailed(Failure),
    /// All-for-one: a child got `directive`; apply it to its siblings.
    Siblings { from: ActorId, directive: Directive },
    /// Report this actor's counters.
    Metrics(Reply<ActorMetrics>),
    /// The idle timeout may have passed.
    PassivationCheck,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) enum Life {
    Running,
    /// Draining its mailbox; accepts nothing new.
    Stopping,
    Dead,
}

/// What the dispatcher does with the actor after a turn.
pub(crate) enum Outcome {
    /// Nothing to do: not re-queued until a message arrives (the cell already cleared its
    /// `scheduled` flag).
    Idle,
    /// More to do: back at the end of the run queue.
    More,
    /// Stopped: finalize and free the slot.
    Finalize,
}

/// Header flags.
const SUSPENDED: u8 = 1;
/// A behavior is on the stack: messages go to it instead of `receive`.
const BEHAVING: u8 = 2;
/// Has an idle timeout: each turn records the time.
const PASSIVATING: u8 = 4;
/// Stopping, and its children were told to stop.
const CHILDREN_STOPPING: u8 = 8;

/// Every this-many turns an actor's turn is timed (a clock read costs ~25 ns, more than a
/// same-shard message, so only a sample of turns pays it).
const TIMED_TURN_EVERY: u32 = 64;

/// The untyped part every cell starts with.
pub(crate) struct Header {
    pub(crate) id: ActorId,
    pub(crate) scheduled: Cell<bool>,
    life: Cell<Life>,
    flags: Cell<u8>,
    /// `None` until `started` has run; then whether it succeeded.
    started: Cell<Option<bool>>,
    turns: Cell<u32>,
    /// Per-message handling time of the last timed turn, in nanoseconds (0: none yet).
    last_nanos: Cell<u32>,
    processed: Cell<u64>,
    system: UnsafeCell<VecDeque<SystemMsg>>,
}

impl Header {
    fn new(id: ActorId) -> Self {
        Self {
            id,
            scheduled: Cell::new(false),
            life: Cell::new(Life::Running),
            flags: Cell::new(0),
            started: Cell::new(None),
            turns: Cell::new(0),
            last_nanos: Cell::new(0),
            processed: Cell::new(0),
            system: UnsafeCell::new(VecDeque::new()),
        }
    }
    pub(crate) fn life(&self) -> Life {
        self.life.get()
    }
    fn set_life(&self, l: Life) {
        self.life.set(l)
    }
    fn flag(&self, f: u8) -> bool {
        self.flags.get() & f != 0
    }
    fn set_flag(&self, f: u8, on: bool) {
        let v = self.flags.get();
        self.flags.set(if on { v | f } else { v & !f });
    }
    pub(crate) fn push_system(&self, m: SystemMsg) {
        // SAFETY: owner-thread only, and no reference into the lane outlives a single call.
        unsafe { (*self.system.get()).push_back(m) }
    }
    fn pop_system(&self) -> Option<SystemMsg> {
        // SAFETY: as in `push_system`.
        unsafe { (*self.system.get()).pop_front() }
    }
    #[inline]
    fn has_system(&self) -> bool {
        // SAFETY: as in `push_system`.
        unsafe { !(*self.system.get()).is_empty() }
    }
}

/// The typed mailbox: each message with its sender's raw id (0: none). `#[repr(C)]` with the
/// header first, so a pointer to the cell is also a pointer to its mailbox and to its header.
#[repr(C)]
pub(crate) struct Mailbox<M> {
    pub(crate) hdr: Header,
    user: UnsafeCell<VecDeque<(M, u64)>>,
}

impl<M> Mailbox<M> {
    /// Queues a user message, or gives it back when the actor no longer accepts messages.
    #[inline]
    pub(crate) fn push(&self, m: M, sender: u64) -> Result<(), M> {
        if !self.accepts() {
            return Err(m);
        }
        self.push_unchecked(m, sender);
        Ok(())
    }

    /// Whether the actor still accepts user messages (it has not begun stopping).
    #[inline(always)]
    pub(crate) fn accepts(&self) -> bool {
        self.hdr.life.get() < Life::Stopping
    }

    /// Queues a run of user messages from one sender in order; the caller checked `accepts`.
    pub(crate) fn extend(&self, msgs: Vec<M>, sender: u64) {
        // SAFETY: as in `push_unchecked`.
        unsafe { (*self.user.get()).extend(msgs.into_iter().map(|m| (m, sender))) };
    }

    /// Queues a user message; the caller checked `accepts`.
    #[inline(always)]
    pub(crate) fn push_unchecked(&self, m: M, sender: u64) {
        // SAFETY: owner-thread only; nothing holds a reference into the queue while handlers
        // run (messages are popped by value), so this `&mut` is unique.
        unsafe { (*self.user.get()).push_back((m, sender)) };
    }
    #[inline]
    fn pop(&self) -> Option<(M, u64)> {
        // SAFETY: as in `push_unchecked`.
        unsafe { (*self.user.get()).pop_front() }
    }
    /// Puts messages back at the front, keeping their order (unstash).
    fn push_front_all(&self, msgs: impl DoubleEndedIterator<Item = (M, u64)>) {
        // SAFETY: as in `push_unchecked`.
        let q = unsafe { &mut *self.user.get() };
        for m in msgs.rev() {
            q.push_front(m);
        }
    }
    pub(crate) fn len(&self) -> usize {
        // SAFETY: as in `push_unchecked`.
        unsafe { (*self.user.get()).len() }
    }
}

/// How a message type fits a cell, for sends through an untyped address.
pub(crate) enum TypeFit {
    /// The cell's message type.
    Exact,
    /// The cell takes any message, boxed ([`crate::AnyMsg`]).
    Any,
    /// Neither.
    No,
}

/// An actor with its mailbox. `#[repr(C)]`: the mailbox (and so the header) comes first.
#[repr(C)]
pub(crate) struct ActorCell<A: Actor> {
    mbox: Mailbox<A::Msg>,
    actor: UnsafeCell<A>,
    factory: RefCell<Box<dyn FnMut() -> A>>,
    ext: RefCell<Option<Box<Ext<A>>>>,
}

/// What the dispatcher needs of any cell.
pub(crate) trait ErasedCell {
    fn header(&self) -> &Header;
    /// Runs the system lane, then up to `budget` user messages.
    fn run(&self, shard: &Shard, budget: usize) -> Outcome;
    /// Last rites: `stopped`, leftovers to dead letters, watchers and parent told. Returns the
    /// stop waiters, to be answered once the slot and names are released.
    fn finalize(&self, shard: &Shard) -> Vec<Reply<()>>;
    fn mailbox_len(&self) -> usize;
    fn type_fit(&self, t: TypeId) -> TypeFit;
}

impl<A: Actor> ActorCell<A> {
    pub(crate) fn new(
        id: ActorId,
        actor: A,
        factory: Box<dyn FnMut() -> A>,
        birth: Option<Box<Birth>>,
    ) -> Self {
        let cell = Self {
            mbox: Mailbox { hdr: Header::new(id), user: UnsafeCell::new(VecDeque::new()) },
            actor: UnsafeCell::new(actor),
            factory: RefCell::new(factory),
            ext: RefCell::new(birth.map(|b| Box::new(Ext::new(*b)))),
        };
        if cell.ext.borrow().as_ref().is_some_and(|e| e.birth.passivate.is_some()) {
            cell.mbox.hdr.set_flag(PASSIVATING, true);
        }
        cell
    }

    pub(crate) fn id(&self) -> ActorId {
        self.mbox.hdr.id
    }

    /// The cold state, allocated on first use. Never held across user code.
    pub(crate) fn ext(&self) -> RefMut<'_, Ext<A>> {
        RefMut::map(self.ext.borrow_mut(), |e| {
            &mut **e.get_or_insert_with(|| Box::new(Ext::new(Birth::default())))
        })
    }

    /// Reads the cold state if it exists.
    pub(crate) fn ext_with<R>(&self, f: impl FnOnce(&Ext<A>) -> R) -> Option<R> {
        self.ext.borrow().as_deref().map(f)
    }

    // ---- used by Ctx ------------------------------------------------------------------------

    pub(crate) fn stash(&self, m: A::Msg, sender: u64) -> Result<(), A::Msg> {
        let mut e = self.ext();
        if e.stash.len() >= e.stash_capacity() {
            return Err(m);
        }
        e.stash.push_back((m, sender));
        Ok(())
    }

    /// Moves up to `n` stashed messages, oldest first, to the front of the mailbox.
    pub(crate) fn unstash(&self, n: usize) -> usize {
        let taken: Vec<_> = match self.ext.borrow_mut().as_deref_mut() {
            Some(e) => {
                let k = n.min(e.stash.len());
                e.stash.drain(..k).collect()
            }
            None => return 0,
        };
        let k = taken.len();
        self.mbox.push_front_all(taken.into_iter());
        k
    }

    pub(crate) fn stash_len(&self) -> usize {
        self.ext_with(|e| e.stash.len()).unwrap_or(0)
    }

    /// Applies a behavior change; the flag makes the next message see it.
    pub(crate) fn set_behaviors(&self, f: impl FnOnce(&mut Vec<std::rc::Rc<Behavior<A>>>)) {
        let mut e = self.ext();
        f(&mut e.behaviors);
        self.mbox.hdr.set_flag(BEHAVING, !e.behaviors.is_empty());
    }

    pub(crate) fn tasks(&self) -> std::rc::Rc<ext::Tasks> {
        self.ext().tasks.get_or_insert_with(Default::default).clone()
    }

    pub(crate) fn parent(&self) -> Option<ActorId> {
        self.ext_with(|e| e.birth.parent).flatten()
    }

    /// A child was spawned (bookkeeping on the parent).
    pub(crate) fn add_child(&self, child: ActorId) {
        self.ext().children.push(child);
    }

    /// The strategy this actor gives its children.
    pub(crate) fn child_supervisor(&self) -> Option<std::sync::Arc<crate::Supervisor>> {
        self.ext_with(|e| e.birth.child_supervisor.clone()).flatten()
    }

    pub(crate) fn children(&self) -> Vec<ActorId> {
        self.ext_with(|e| e.children.clone()).unwrap_or_default()
    }

    // ---- the turn ---------------------------------------------------------------------------

    /// Runs `started` once. `Some` when the turn ends here (it failed).
    fn start(&self, shard: &Shard) -> Option<Outcome> {
        let h = &self.mbox.hdr;
        h.started.set(Some(false));
        let mut ctx = Ctx::new(shard, self);
        // SAFETY: the dispatcher runs one cell at a time and never re-enters `run`, so this is
        // the only reference to the state.
        let actor = unsafe { &mut *self.actor.get() };
        match catch_unwind(AssertUnwindSafe(|| actor.started(&mut ctx))) {
            Ok(Ok(())) => {
                h.started.set(Some(true));
                tracing::debug!(actor = %h.id, "started");
                shard.shared.events.publish(|| crate::Event::ActorStarted { id: h.id });
                if h.flag(PASSIVATING) {
                    self.arm_passivation(shard);
                }
                None
            }
            Ok(Err(e)) => Some(self.fail(shard, Phase::Started, crate::Cause::Error(e))),
            Err(p) => Some(self.fail(shard, Phase::Started, crate::Cause::Panic(p))),
        }
    }

    /// Hands one message to the current behavior (the top of the stack) or to `receive`.
    #[inline]
    fn handle(&self, actor: &mut A, ctx: &mut Ctx<A>, msg: A::Msg) -> Result<(), crate::ActorError> {
        if !self.mbox.hdr.flag(BEHAVING) {
            return actor.receive(ctx, msg);
        }
        let top = self.ext_with(|e| e.behaviors.last().cloned()).flatten();
        match top {
            Some(b) => b(actor, ctx, msg),
            None => actor.receive(ctx, msg),
        }
    }

    /// What comes after a turn that did not fail.
    fn after_turn(&self, shard: &Shard) -> Outcome {
        let h = &self.mbox.hdr;
        if h.has_system() {
            return Outcome::More;
        }
        let empty = self.mbox.len() == 0;
        if h.life() == Life::Stopping && empty {
            return self.finish_stopping(shard);
        }
        if empty {
            h.scheduled.set(false);
            Outcome::Idle
        } else {
            Outcome::More
        }
    }

    /// Not re-queued until a system message arrives.
    fn wait_for_system(&self) -> Outcome {
        self.mbox.hdr.scheduled.set(false);
        Outcome::Idle
    }
}

impl<A: Actor> ErasedCell for ActorCell<A> {
    fn header(&self) -> &Header {
        &self.mbox.hdr
    }

    fn run(&self, shard: &Shard, budget: usize) -> Outcome {
        let h = &self.mbox.hdr;
        if h.has_system() {
            if let Some(o) = self.run_system(shard) {
                return o;
            }
        }
        if h.flag(SUSPENDED) {
            return self.wait_for_system();
        }
        if h.started.get().is_none() {
            if let Some(o) = self.start(shard) {
                return o;
            }
        }
        let turns = h.turns.get();
        h.turns.set(turns.wrapping_add(1));
        let t0 = (turns % TIMED_TURN_EVERY == 0).then(Instant::now);
        let mut ctx = Ctx::new(shard, self);
        let done = Cell::new(0usize);
        let turn = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: as in `start`: unique for the duration of this turn.
            let actor = unsafe { &mut *self.actor.get() };
            while done.get() < budget {
                let Some((msg, sender)) = self.mbox.pop() else { break };
                done.set(done.get() + 1);
                ctx.set_sender(sender);
                self.handle(actor, &mut ctx, msg)?;
                if h.has_system() {
                    break;
                }
            }
            Ok(())
        }));
        let n = done.get();
        shard.count_processed(n);
        h.processed.set(h.processed.get() + n as u64);
        if let (Some(t0), true) = (t0, n > 0) {
            h.last_nanos.set((t0.elapsed().as_nanos() / n as u128).clamp(1, u32::MAX as u128) as u32);
        }
        match turn {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return self.fail_in_turn(shard, crate::Cause::Error(e)),
            Err(p) => return self.fail_in_turn(shard, crate::Cause::Panic(p)),
        }
        if h.flag(PASSIVATING) {
            self.ext().last_active = Some(Instant::now());
        }
        self.after_turn(shard)
    }

    fn finalize(&self, shard: &Shard) -> Vec<Reply<()>> {
        self.finalize_cell(shard)
    }

    fn mailbox_len(&self) -> usize {
        self.mbox.len()
    }

    fn type_fit(&self, t: TypeId) -> TypeFit {
        if t == TypeId::of::<A::Msg>() {
            TypeFit::Exact
        } else if TypeId::of::<A::Msg>() == TypeId::of::<crate::AnyMsg>() {
            TypeFit::Any
        } else {
            TypeFit::No
        }
    }
}

impl<A: Actor> ActorCell<A> {
    /// A snapshot of this actor's counters.
    fn metrics(&self) -> ActorMetrics {
        let h = &self.mbox.hdr;
        let (children, stash_len, restarts, dead_letters) = self
            .ext_with(|e| (e.children.len(), e.stash.len(), e.restarts, e.dead_letters))
            .unwrap_or_default();
        let nanos = h.last_nanos.get();
        ActorMetrics {
            children,
            stash_len,
            restarts,
            last_processing: (nanos > 0).then(|| Duration::from_nanos(nanos as u64)),
            processed: h.processed.get(),
            mailbox_len: self.mbox.len(),
            dead_letters,
            suspended: h.flag(SUSPENDED),
        }
    }
}

/// The message of a panic payload, for logs and errors.
pub(crate) fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
