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
//! Submodules: `mailbox` (the typed user queue and its kind), `ext` (the cold state), `system` (the system lane: stop, watch, children,
//! metrics, passivation), `failure` (supervision directives, restart), `finalize` (last rites).

pub(crate) mod ext;
mod failure;
mod finalize;
mod header;
mod mailbox;
mod priority;
mod system;

pub(crate) use header::Header;
use header::*;
pub(crate) use mailbox::{Mailbox, Offer, Refused};

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
    /// A stopping actor's stop timeout passed while it drained its mailbox: finalize it now.
    DrainExpired,
    /// A closure the engine ran on this actor's behalf outside its handlers (the maker of a
    /// message it scheduled) failed: supervised like a failing handler.
    ClosureFailed(Phase, crate::supervision::Cause),
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

/// How a message type fits a cell, for sends through an untyped address.
pub(crate) enum TypeFit {
    /// The cell's message type.
    Exact,
    /// The cell takes any message, boxed ([`crate::AnyMsg`]).
    Any,
    /// Neither: the cell takes this message type (its name).
    No(&'static str),
}

/// An actor with its mailbox. `#[repr(C)]`: the mailbox (and so the header) comes first.
#[repr(C)]
pub(crate) struct ActorCell<A: Actor> {
    mbox: Mailbox<A::Msg>,
    actor: UnsafeCell<A>,
    /// Called only by `restart`, which no user code can re-enter for this cell.
    factory: UnsafeCell<Box<dyn FnMut() -> A>>,
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
    /// The actor's type, for figures by kind.
    fn kind(&self) -> &'static str;
    fn type_fit(&self, t: TypeId) -> TypeFit;
    /// Records the per-message time of a sampled turn.
    fn record_turn_time(&self, per_msg: Duration);
}

impl<A: Actor> ActorCell<A> {
    /// A cell for `actor`, with the mailbox built for it (`Mailbox::new`).
    pub(crate) fn new(
        mbox: Mailbox<A::Msg>,
        actor: A,
        factory: Box<dyn FnMut() -> A>,
        birth: Option<Box<Birth>>,
    ) -> Self {
        let cell = Self {
            mbox,
            actor: UnsafeCell::new(actor),
            factory: UnsafeCell::new(factory),
            ext: RefCell::new(birth.map(|b| Box::new(Ext::new(*b)))),
        };
        if cell.ext.borrow().as_ref().is_some_and(|e| e.birth.passivate.is_some()) {
            cell.mbox.hdr.set_flag(PASSIVATING, true);
        }
        if cell.ext.borrow().as_ref().is_some_and(|e| e.birth.lease.is_some()) {
            cell.mbox.hdr.set_flag(CHECKED, true);
        }
        cell
    }

    pub(crate) fn id(&self) -> ActorId {
        self.mbox.hdr.id
    }

    /// Whether the actor has not begun to stop.
    pub(crate) fn is_running(&self) -> bool {
        self.mbox.hdr.life() == Life::Running
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
    #[cold]
    #[inline(never)]
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
                // Signals that arrived before it started (during a restart) are handled next.
                self.redeliver_deferred();
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

    /// The slow path of a message, out of line so that the turn's loop stays small: looks up
    /// its sender (while the `SENDERS` flag is up, which lasts to the end of the turn, every
    /// message comes here and gets its own sender, possibly none) and hands it to the current
    /// behavior. Gives it back when `receive` should handle it.
    #[inline(never)]
    fn special(
        &self,
        actor: &mut A,
        ctx: &mut Ctx<A>,
        msg: A::Msg,
    ) -> Result<Option<A::Msg>, crate::ActorError> {
        let h = &self.mbox.hdr;
        if h.flag(SENDERS | PRIORITY) {
            #[allow(unused_variables)]
            let (sender, trace) = self.mbox.take_meta();
            ctx.set_sender(sender);
            #[cfg(feature = "tracing-spans")]
            crate::trace::enter_message(trace);
        }
        if h.flag(CHECKED) {
            if let Some(reason) = self.refused() {
                drop(msg);
                let ty = std::any::type_name::<A::Msg>();
                ctx.shard().dead_letters(reason, 1, Some(h.id), ty);
                return Ok(None);
            }
        }
        if h.flag(BEHAVING) {
            if let Some(b) = self.ext_with(|e| e.behaviors.last().cloned()).flatten() {
                b(actor, ctx, msg)?;
                return Ok(None);
            }
        }
        Ok(Some(msg))
    }

    /// The slow start of a turn: `started`, system messages, a suspension. `Some` when the
    /// turn ends here.
    ///
    /// `started` comes first: a new (or restarted) instance always starts before it handles
    /// anything, a stop or a kill included, so an actor whose `started` ran always gets its
    /// `stopped`, however soon after the spawn it is stopped or killed.
    #[cold]
    #[inline(never)]
    fn attend(&self, shard: &Shard) -> Option<Outcome> {
        let h = &self.mbox.hdr;
        if h.started.get().is_none() && !h.flag(SUSPENDED) {
            if let Some(o) = self.start(shard) {
                return Some(o);
            }
        }
        if h.has_system() {
            if let Some(o) = self.run_system(shard) {
                return Some(o);
            }
        }
        if h.flag(SUSPENDED) {
            return Some(self.wait_for_system());
        }
        if h.started.get().is_none() {
            // Restarted by the system lane just now.
            return self.start(shard);
        }
        None
    }

    /// Records activity for the idle timer; lowers the `SENDERS` flag once no queued message
    /// has a sender.
    #[cold]
    #[inline(never)]
    fn after_special_turn(&self, handled: usize) {
        if handled > 0 && self.mbox.hdr.flag(PASSIVATING) {
            self.ext().last_active = Some(Instant::now());
        }
        if self.mbox.hdr.flag(SENDERS) {
            self.mbox.settle_senders_flag();
        }
    }

    /// What comes after a turn that did not fail.
    fn after_turn(&self, shard: &Shard) -> Outcome {
        let h = &self.mbox.hdr;
        if h.has_system() {
            return Outcome::More;
        }
        let empty = self.mbox.is_empty();
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

    /// Why the next user message may not be handled, if it may not: the actor's lease no
    /// longer holds (it is killed: the system lane, checked right after, does it), or a
    /// stopping actor's time to drain its mailbox is over (this message and the rest are dead
    /// letters; the system lane finalizes the actor).
    #[cold]
    fn refused(&self) -> Option<crate::DeadLetterReason> {
        let h = &self.mbox.hdr;
        let (deadline, lease) = self.ext_with(|e| (e.stop_deadline, e.birth.lease.clone()))?;
        // `held` may be user code: no borrow is held while it runs.
        if lease.is_some_and(|l| !l.0.held()) {
            h.push_system(SystemMsg::Kill(None));
            return Some(crate::DeadLetterReason::LeaseLost);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let mut e = self.ext();
            e.stop_deadline = None;
            let lease = e.birth.lease.is_some();
            drop(e);
            if !lease {
                h.set_flag(CHECKED, false);
            }
            h.push_system(SystemMsg::DrainExpired);
            return Some(crate::DeadLetterReason::ActorStopped);
        }
        None
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
        if h.has_system() || h.flag(SUSPENDED) || h.started.get().is_none() {
            if let Some(o) = self.attend(shard) {
                return o;
            }
            // An actor's first turn with messages is timed (later ones are sampled per shard).
            if h.last_nanos.get() == 0 && !self.mbox.is_empty() {
                return shard.timed_turn(self, budget);
            }
        }
        let mut ctx = Ctx::new(shard, self);
        let done = Cell::new(0usize);
        let turn = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the dispatcher runs one cell at a time and never re-enters `run`, so this
            // is the only reference to the state for the duration of this turn.
            let actor = unsafe { &mut *self.actor.get() };
            while done.get() < budget {
                let Some(mut msg) = self.mbox.pop_msg() else {
                    // A custom mailbox's queue gives its next message only when the ordinary
                    // queue runs dry (out of line: once per turn).
                    if h.custom() && self.mbox.pull() {
                        continue;
                    }
                    break;
                };
                done.set(done.get() + 1);
                // One span per message, around whichever handler takes it (compiled out
                // without the feature).
                #[cfg(feature = "tracing-spans")]
                let _span = {
                    // The message's trace context, if it came with one, is recorded by `special`.
                    crate::trace::enter_message(None);
                    let ty = std::any::type_name::<A::Msg>();
                    let empty = tracing::field::Empty;
                    tracing::trace_span!("receive", actor = %h.id, msg = ty, trace_id = empty, parent_span = empty)
                        .entered()
                };
                if h.flags.get() & SPECIAL != 0 {
                    match self.special(actor, &mut ctx, msg)? {
                        Some(m) => msg = m,
                        None => {
                            if h.has_system() {
                                break;
                            }
                            continue;
                        }
                    }
                }
                // The one call of `receive`: a single call site lets it be inlined here.
                actor.receive(&mut ctx, msg)?;
                if h.has_system() {
                    break;
                }
            }
            Ok(())
        }));
        #[cfg(feature = "tracing-spans")]
        crate::trace::enter_message(None);
        let n = done.get();
        shard.count_processed(n);
        h.processed.set(h.processed.get() + n as u64);
        match turn {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return self.fail_in_turn(shard, crate::Cause::Error(e)),
            Err(p) => return self.fail_in_turn(shard, crate::Cause::Panic(p)),
        }
        if h.flags.get() & (PASSIVATING | SENDERS) != 0 {
            self.after_special_turn(n);
        }
        self.after_turn(shard)
    }

    fn record_turn_time(&self, per_msg: Duration) {
        self.mbox.hdr.last_nanos.set(per_msg.as_nanos().clamp(1, u32::MAX as u128) as u32);
    }

    fn finalize(&self, shard: &Shard) -> Vec<Reply<()>> {
        self.finalize_cell(shard)
    }

    fn kind(&self) -> &'static str {
        std::any::type_name::<A>()
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
            TypeFit::No(std::any::type_name::<A::Msg>())
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
            dead_letters: dead_letters + self.mbox.dropped(),
            suspended: h.flag(SUSPENDED),
            // Kept by the shard beside the cell; filled in there.
            uptime: Duration::ZERO,
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

#[cfg(all(test, not(corelane_loom)))]
mod size_tests {
    use super::*;
    struct Idle;
    impl Actor for Idle {
        type Msg = ();
        fn receive(&mut self, _: &mut Ctx<Self>, _: ()) -> Result<(), crate::ActorError> {
            Ok(())
        }
    }
    /// Idle memory per actor is mostly this cell: keep it within the allocator's 112-byte size
    /// class (one byte more in the header costs 16 per actor).
    #[test]
    fn an_idle_actor_cell_fits_112_bytes() {
        assert!(std::mem::size_of::<ActorCell<Idle>>() <= 112, "{}", std::mem::size_of::<ActorCell<Idle>>());
    }
}
