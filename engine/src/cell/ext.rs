//! The cold part of an actor cell: family, watches, stash, behaviors, supervision records,
//! passivation, tasks. Boxed and allocated on first use, so an actor that uses none of it
//! (the common idle actor) pays one pointer.

use crate::actor::{Actor, ActorError};
use crate::ask::Reply;
use crate::context::Ctx;
use crate::executor::TaskHandle;
use crate::id::ActorId;
use crate::signal::StopReason;
use crate::supervision::{RestartWindow, Supervisor};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::SystemMsg;

/// A behavior: a handler that replaces `receive` while it is on top of the stack.
pub type Behavior<A> = dyn Fn(&mut A, &mut Ctx<A>, <A as Actor>::Msg) -> Result<(), ActorError>;

/// Stash capacity when the spawn options set none.
pub(crate) const DEFAULT_STASH_CAPACITY: usize = 10_000;

/// How an actor starts life: set at spawn, kept across restarts.
#[derive(Default)]
pub(crate) struct Birth {
    pub(crate) parent: Option<ActorId>,
    /// The strategy that supervises this actor (its parent's); `None`: the runtime's.
    pub(crate) supervised_by: Option<Arc<Supervisor>>,
    /// The strategy this actor gives its children.
    pub(crate) child_supervisor: Option<Arc<Supervisor>>,
    pub(crate) passivate: Option<Duration>,
    pub(crate) stash_capacity: Option<usize>,
    /// `None`: unbounded.
    pub(crate) mailbox: Option<crate::MailboxKind>,
    /// Checked before each user message (`SpawnOptions::lease`).
    pub(crate) lease: Option<crate::lease::LeaseRef>,
}

/// Local tasks tied to an actor's life, cancelled when it stops or restarts.
#[derive(Default)]
pub(crate) struct Tasks {
    pub(crate) live: RefCell<HashMap<u64, TaskHandle>>,
    pub(crate) next: Cell<u64>,
}

impl Tasks {
    pub(crate) fn cancel_all(&self) {
        let live = std::mem::take(&mut *self.live.borrow_mut());
        for (_, t) in live {
            t.cancel();
        }
    }
}

pub(crate) struct Ext<A: Actor> {
    pub(crate) birth: Birth,
    pub(crate) children: Vec<ActorId>,
    pub(crate) watchers: Vec<ActorId>,
    pub(crate) watching: Vec<ActorId>,
    pub(crate) stash: VecDeque<(A::Msg, u64)>,
    pub(crate) behaviors: Vec<Rc<Behavior<A>>>,
    pub(crate) restarts: u32,
    pub(crate) window: RestartWindow,
    pub(crate) last_active: Option<Instant>,
    /// A passivation check is pending in the shard's timers.
    pub(crate) passivation_armed: bool,
    pub(crate) tasks: Option<Rc<Tasks>>,
    pub(crate) dead_letters: u64,
    /// Children whose escalated failure this actor is handling (resumed with it).
    pub(crate) escalated: Vec<ActorId>,
    /// Signals that arrived while suspended, delivered once it runs again.
    pub(crate) deferred: Vec<SystemMsg>,
    pub(crate) stop_reason: StopReason,
    /// While stopping: when draining the mailbox ends (the stop timeout).
    pub(crate) stop_deadline: Option<Instant>,
    pub(crate) waiters: Vec<Reply<()>>,
}

impl<A: Actor> Ext<A> {
    pub(crate) fn new(birth: Birth) -> Self {
        Self {
            birth,
            children: Vec::new(),
            watchers: Vec::new(),
            watching: Vec::new(),
            stash: VecDeque::new(),
            behaviors: Vec::new(),
            restarts: 0,
            window: RestartWindow::default(),
            last_active: None,
            passivation_armed: false,
            tasks: None,
            dead_letters: 0,
            escalated: Vec::new(),
            deferred: Vec::new(),
            stop_reason: StopReason::Stopped,
            stop_deadline: None,
            waiters: Vec::new(),
        }
    }

    pub(crate) fn stash_capacity(&self) -> usize {
        self.birth.stash_capacity.unwrap_or(DEFAULT_STASH_CAPACITY)
    }
}

/// Adds `id` to a small set kept as a vector.
pub(crate) fn insert_once(v: &mut Vec<ActorId>, id: ActorId) -> bool {
    if v.contains(&id) {
        false
    } else {
        v.push(id);
        true
    }
}

/// Removes `id` from a small set kept as a vector. Returns whether it was there.
pub(crate) fn remove(v: &mut Vec<ActorId>, id: ActorId) -> bool {
    let before = v.len();
    v.retain(|x| *x != id);
    v.len() != before
}
