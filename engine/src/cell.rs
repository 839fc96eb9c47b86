//! An actor's home on its shard: the typed mailbox, the system lane, and the state.
//!
//! Everything here is touched only by the owning shard's thread, so the mailbox is a plain
//! growable ring buffer (`VecDeque`, empty and unallocated until the first message) with no
//! atomics. A cell is boxed in the shard's slab and never moves; it is dropped only by the
//! dispatcher between turns, never while one of its handlers runs.

use crate::actor::Actor;
use crate::ask::Reply;
use crate::context::Ctx;
use crate::id::ActorId;
use crate::metrics::DeadLetterReason;
use crate::shard::Shard;
use std::cell::{Cell, UnsafeCell};
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Messages of the system lane, handled before any user message.
pub(crate) enum SystemMsg {
    /// Stop after draining what is queued (bounded by the stop timeout).
    Stop(Option<Reply<()>>),
    /// Stop now; queued user messages become dead letters.
    Kill(Option<Reply<()>>),
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
    /// Mailbox empty: not re-queued until a message arrives (the cell already cleared its
    /// `scheduled` flag).
    Idle,
    /// More to do: back at the end of the run queue.
    More,
    /// Stopped: finalize and free the slot.
    Finalize,
}

/// The untyped part every cell starts with.
pub(crate) struct Header {
    pub(crate) id: ActorId,
    pub(crate) scheduled: Cell<bool>,
    life: Cell<Life>,
    /// `None` until `started` has run; then whether it succeeded.
    started: Cell<Option<bool>>,
    system: UnsafeCell<VecDeque<SystemMsg>>,
    waiters: UnsafeCell<Vec<Reply<()>>>,
}

impl Header {
    fn new(id: ActorId) -> Self {
        Self {
            id,
            scheduled: Cell::new(false),
            life: Cell::new(Life::Running),
            started: Cell::new(None),
            system: UnsafeCell::new(VecDeque::new()),
            waiters: UnsafeCell::new(Vec::new()),
        }
    }
    pub(crate) fn life(&self) -> Life {
        self.life.get()
    }
    pub(crate) fn set_life(&self, l: Life) {
        self.life.set(l)
    }
    pub(crate) fn push_system(&self, m: SystemMsg) {
        // SAFETY: owner-thread only, and no reference into the lane outlives a single call.
        unsafe { (*self.system.get()).push_back(m) }
    }
    fn pop_system(&self) -> Option<SystemMsg> {
        // SAFETY: as in `push_system`.
        unsafe { (*self.system.get()).pop_front() }
    }
    fn has_system(&self) -> bool {
        // SAFETY: as in `push_system`.
        unsafe { !(*self.system.get()).is_empty() }
    }
    fn add_waiter(&self, w: Option<Reply<()>>) {
        if let Some(w) = w {
            // SAFETY: as in `push_system`.
            unsafe { (*self.waiters.get()).push(w) }
        }
    }
}

/// The typed mailbox. `#[repr(C)]` with the header first, so a pointer to the cell is also a
/// pointer to its mailbox and to its header.
#[repr(C)]
pub(crate) struct Mailbox<M> {
    pub(crate) hdr: Header,
    user: UnsafeCell<VecDeque<M>>,
}

impl<M> Mailbox<M> {
    /// Queues a user message, or gives it back when the actor no longer accepts messages.
    #[inline]
    pub(crate) fn push(&self, m: M) -> Result<(), M> {
        if !self.accepts() {
            return Err(m);
        }
        self.push_unchecked(m);
        Ok(())
    }

    /// Whether the actor still accepts user messages (it has not begun stopping).
    #[inline(always)]
    pub(crate) fn accepts(&self) -> bool {
        self.hdr.life.get() < Life::Stopping
    }

    /// Queues a run of user messages in order; the caller checked `accepts`.
    pub(crate) fn extend(&self, msgs: Vec<M>) {
        // SAFETY: as in `push_unchecked`.
        unsafe { (*self.user.get()).extend(msgs) };
    }

    /// Queues a user message; the caller checked `accepts`.
    #[inline(always)]
    pub(crate) fn push_unchecked(&self, m: M) {
        // SAFETY: owner-thread only; the dispatcher holds no reference into the queue while
        // handlers run (it pops one message at a time), so this `&mut` is unique.
        unsafe { (*self.user.get()).push_back(m) };
    }
    #[inline]
    fn pop(&self) -> Option<M> {
        // SAFETY: as in `push`.
        unsafe { (*self.user.get()).pop_front() }
    }
    pub(crate) fn len(&self) -> usize {
        // SAFETY: as in `push`.
        unsafe { (*self.user.get()).len() }
    }
}

/// An actor with its mailbox. `#[repr(C)]`: the mailbox (and so the header) comes first.
#[repr(C)]
pub(crate) struct ActorCell<A: Actor> {
    mbox: Mailbox<A::Msg>,
    actor: UnsafeCell<A>,
}

/// What the dispatcher needs of any cell.
pub(crate) trait ErasedCell {
    fn header(&self) -> &Header;
    /// Runs the system lane, then up to `budget` user messages.
    fn run(&self, shard: &Shard, budget: usize) -> Outcome;
    /// Last rites: `stopped`, leftovers to dead letters. Returns the stop waiters, to be
    /// answered once the slot and names are released.
    fn finalize(&self, shard: &Shard) -> Vec<Reply<()>>;
    fn mailbox_len(&self) -> usize;
}

impl<A: Actor> ActorCell<A> {
    pub(crate) fn new(id: ActorId, actor: A) -> Self {
        Self {
            mbox: Mailbox { hdr: Header::new(id), user: UnsafeCell::new(VecDeque::new()) },
            actor: UnsafeCell::new(actor),
        }
    }
}

impl<A: Actor> ErasedCell for ActorCell<A> {
    fn header(&self) -> &Header {
        &self.mbox.hdr
    }

    fn run(&self, shard: &Shard, budget: usize) -> Outcome {
        let h = &self.mbox.hdr;
        while let Some(sys) = h.pop_system() {
            match sys {
                SystemMsg::Stop(w) => {
                    h.add_waiter(w);
                    if h.life() < Life::Stopping {
                        h.set_life(Life::Stopping);
                        shard.begin_stop(h.id);
                    }
                }
                SystemMsg::Kill(w) => {
                    h.add_waiter(w);
                    return Outcome::Finalize;
                }
            }
        }
        let mut ctx = Ctx::<A>::new(shard, h.id);
        if h.started.get().is_none() {
            h.started.set(Some(false));
            // SAFETY: the dispatcher runs one cell at a time and never re-enters `run`, so this
            // is the only reference to the state.
            let actor = unsafe { &mut *self.actor.get() };
            match catch_unwind(AssertUnwindSafe(|| actor.started(&mut ctx))) {
                Ok(Ok(())) => h.started.set(Some(true)),
                Ok(Err(e)) => {
                    tracing::error!(actor = %h.id, error = %e, "started failed; stopping");
                    return Outcome::Finalize;
                }
                Err(p) => {
                    tracing::error!(actor = %h.id, panic = panic_text(&p), "started panicked; stopping");
                    return Outcome::Finalize;
                }
            }
        }
        let done = Cell::new(0usize);
        let turn = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: as above, unique for the duration of this turn.
            let actor = unsafe { &mut *self.actor.get() };
            while done.get() < budget {
                let Some(msg) = self.mbox.pop() else { break };
                done.set(done.get() + 1);
                if let Err(e) = actor.receive(&mut ctx, msg) {
                    tracing::warn!(actor = %h.id, error = %e, "handler failed; the actor continues");
                }
                if h.has_system() {
                    break;
                }
            }
        }));
        shard.count_processed(done.get());
        if let Err(p) = turn {
            tracing::error!(actor = %h.id, panic = panic_text(&p), "handler panicked; stopping");
            return Outcome::Finalize;
        }
        if h.has_system() {
            return Outcome::More;
        }
        let empty = self.mbox.len() == 0;
        if h.life() == Life::Stopping && empty {
            return Outcome::Finalize;
        }
        if empty {
            h.scheduled.set(false);
            Outcome::Idle
        } else {
            Outcome::More
        }
    }

    fn finalize(&self, shard: &Shard) -> Vec<Reply<()>> {
        let h = &self.mbox.hdr;
        h.set_life(Life::Dead);
        shard.slots().mark_dead(h.id.slot(), h.id.gen());
        if h.started.get() == Some(true) {
            let mut ctx = Ctx::<A>::new(shard, h.id);
            // SAFETY: the actor is not running (finalize is called by the dispatcher between
            // turns), so this is the only reference to the state.
            let actor = unsafe { &mut *self.actor.get() };
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| actor.stopped(&mut ctx))) {
                tracing::error!(actor = %h.id, panic = panic_text(&p), "stopped panicked");
            }
        }
        let mut dropped = 0;
        while let Some(m) = self.mbox.pop() {
            drop(m);
            dropped += 1;
        }
        shard.dead_letters(DeadLetterReason::ActorStopped, dropped);
        while let Some(SystemMsg::Stop(w) | SystemMsg::Kill(w)) = h.pop_system() {
            h.add_waiter(w);
        }
        tracing::debug!(actor = %h.id, "stopped");
        // SAFETY: owner-thread only; no other reference into the list exists.
        std::mem::take(unsafe { &mut *h.waiters.get() })
    }

    fn mailbox_len(&self) -> usize {
        self.mbox.len()
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
