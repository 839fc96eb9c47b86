//! The event stream: lifecycle, supervision and dead-letter events, published by the shards to
//! whoever subscribed.
//!
//! Publishing first reads one relaxed counter of subscribers; with none, no event is built,
//! nothing is allocated and nothing is sent. With subscribers, each event is offered to every
//! subscription whose filter accepts it, in subscription order. Delivery to an actor is a
//! `try_tell` (ordered per publishing shard, like any message); delivery to a channel is a send.
//! A subscriber that is gone (stopped actor, dropped receiver) is removed.
//!
//! Filters and sinks are user code run by whichever thread publishes. They run on a snapshot
//! of the subscription list, outside its lock, so they may subscribe, unsubscribe or send
//! anything; a filter or sink that panics is contained: its subscription ends, the event counts
//! as a `HandlerFailed` dead letter, and the publisher (often a shard) goes on.

use crate::actor_ref::ActorRef;
use crate::error::TrySendError;
use crate::id::ActorId;
use crate::metrics::{DeadLetterReason, SharedDeadLetters};
use crate::runtime::Shared;
use crate::signal::StopReason;
use parking_lot::RwLock;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Weak};

/// Something that happened in the runtime.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An actor's `started` succeeded (also after each restart).
    ActorStarted {
        /// The actor.
        id: ActorId,
    },
    /// An actor stopped.
    ActorStopped {
        /// The actor.
        id: ActorId,
        /// Why.
        reason: StopReason,
    },
    /// An actor was stopped by its idle timeout (an `ActorStopped` follows).
    ActorPassivated {
        /// The actor.
        id: ActorId,
    },
    /// An actor spawned a child.
    ActorChildCreated {
        /// The parent.
        parent: ActorId,
        /// The new child.
        child: ActorId,
    },
    /// An actor was rebuilt from its factory.
    ActorRestarted {
        /// The actor.
        id: ActorId,
        /// Restarts of this actor so far.
        restarts: u32,
    },
    /// An actor failed and was left suspended: it escalated to its parent, or nobody above it
    /// could decide.
    ActorSuspended {
        /// The actor.
        id: ActorId,
        /// The failure, as text.
        failure: String,
    },
    /// A router's last routee stopped; the router stops too (an `ActorStopped` follows).
    RouterEmptied {
        /// The router.
        id: ActorId,
    },
    /// Messages that could not be delivered.
    Deadletter {
        /// The actor they were for, when known.
        target: Option<ActorId>,
        /// The message type (`std::any::type_name`).
        message_type: &'static str,
        /// Why they were not delivered.
        reason: DeadLetterReason,
        /// How many (several when a stopping actor's mailbox is dropped).
        count: u64,
    },
    /// A member joined this node's cluster (published by `corelane-net`'s cluster).
    NodeJoined {
        /// The member's id.
        member: String,
        /// Where its node is reached.
        addr: std::net::SocketAddr,
        /// Its roles (sorted).
        roles: Vec<String>,
    },
    /// A member left this node's cluster.
    NodeLeft {
        /// The member's id.
        member: String,
        /// Where its node was reached.
        addr: std::net::SocketAddr,
        /// Its roles (sorted).
        roles: Vec<String>,
        /// Why.
        reason: LeftReason,
    },
    /// The cluster's member set changed: a new topology epoch.
    TopologyChanged {
        /// The new epoch.
        epoch: u64,
        /// Members in it.
        members: usize,
    },
}

/// Why a member left its cluster ([`Event::NodeLeft`]).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftReason {
    /// It left gracefully.
    Left,
    /// Its lease expired: it died, froze or lost the membership store.
    LeaseExpired,
}

/// The kind of an [`Event`], for filters. (`Event::kind` matches every event, so a new event
/// without its kind does not compile.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// [`Event::ActorStarted`].
    ActorStarted,
    /// [`Event::ActorStopped`].
    ActorStopped,
    /// [`Event::ActorPassivated`].
    ActorPassivated,
    /// [`Event::ActorChildCreated`].
    ActorChildCreated,
    /// [`Event::ActorRestarted`].
    ActorRestarted,
    /// [`Event::ActorSuspended`].
    ActorSuspended,
    /// [`Event::RouterEmptied`].
    RouterEmptied,
    /// [`Event::Deadletter`].
    Deadletter,
    /// [`Event::NodeJoined`].
    NodeJoined,
    /// [`Event::NodeLeft`].
    NodeLeft,
    /// [`Event::TopologyChanged`].
    TopologyChanged,
}

impl Event {
    /// This event's kind.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::ActorStarted { .. } => EventKind::ActorStarted,
            Event::ActorStopped { .. } => EventKind::ActorStopped,
            Event::ActorPassivated { .. } => EventKind::ActorPassivated,
            Event::ActorChildCreated { .. } => EventKind::ActorChildCreated,
            Event::ActorRestarted { .. } => EventKind::ActorRestarted,
            Event::ActorSuspended { .. } => EventKind::ActorSuspended,
            Event::RouterEmptied { .. } => EventKind::RouterEmptied,
            Event::Deadletter { .. } => EventKind::Deadletter,
            Event::NodeJoined { .. } => EventKind::NodeJoined,
            Event::NodeLeft { .. } => EventKind::NodeLeft,
            Event::TopologyChanged { .. } => EventKind::TopologyChanged,
        }
    }
}

type Filter = Box<dyn Fn(&Event) -> bool + Send + Sync>;
/// Delivers one event; returns whether the subscriber is still there.
pub(crate) type Sink = Box<dyn Fn(Event) -> bool + Send + Sync>;

struct Sub {
    id: u64,
    filter: Filter,
    sink: Sink,
}

#[derive(Default)]
pub(crate) struct EventStream {
    /// Copied on write: publishers take the current list (one reference count) and run the
    /// filters without holding the lock.
    subs: RwLock<Arc<Vec<Arc<Sub>>>>,
    active: AtomicUsize,
    next_id: AtomicU64,
    /// Events lost because a filter or sink panicked.
    pub(crate) failed: SharedDeadLetters,
}

thread_local! {
    /// Set while this thread publishes: an event raised by delivering an event (a dead letter
    /// to a subscriber that just stopped) is not published again.
    static PUBLISHING: Cell<bool> = const { Cell::new(false) };
}

impl EventStream {
    /// Publishes the event `make` builds, if anyone subscribed.
    #[inline]
    pub(crate) fn publish(&self, make: impl FnOnce() -> Event) {
        if self.active.load(Ordering::Relaxed) != 0 {
            self.publish_slow(make());
        }
    }

    #[cold]
    fn publish_slow(&self, ev: Event) {
        if PUBLISHING.with(|p| p.replace(true)) {
            return;
        }
        let subs = self.subs.read().clone();
        let mut gone = Vec::new();
        for s in subs.iter() {
            let delivered = catch_unwind(AssertUnwindSafe(|| !(s.filter)(&ev) || (s.sink)(ev.clone())));
            match delivered {
                Ok(true) => {}
                Ok(false) => gone.push(s.id),
                Err(p) => {
                    tracing::error!(
                        subscription = s.id,
                        panic = crate::cell::panic_text(&p),
                        "an event filter or sink panicked; its subscription ends"
                    );
                    self.failed.add(DeadLetterReason::HandlerFailed, 1);
                    gone.push(s.id);
                }
            }
        }
        PUBLISHING.with(|p| p.set(false));
        for id in gone {
            self.remove(id);
        }
    }

    pub(crate) fn add(&self, filter: Filter, sink: Sink) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut subs = self.subs.write();
        let mut next = Vec::clone(&subs);
        next.push(Arc::new(Sub { id, filter, sink }));
        self.active.store(next.len(), Ordering::Relaxed);
        *subs = Arc::new(next);
        id
    }

    pub(crate) fn remove(&self, id: u64) -> bool {
        let mut subs = self.subs.write();
        if !subs.iter().any(|s| s.id == id) {
            return false;
        }
        let next: Vec<Arc<Sub>> = subs.iter().filter(|s| s.id != id).cloned().collect();
        self.active.store(next.len(), Ordering::Relaxed);
        *subs = Arc::new(next);
        true
    }
}

/// A subscription to the event stream. It lasts while this handle lives: dropping it (or
/// [`Subscription::unsubscribe`]) ends it, and so does its subscriber going away (a stopped
/// actor, a dropped receiver). [`Subscription::detach`] lets it last as long as its subscriber.
#[derive(Debug)]
#[must_use = "dropping a Subscription ends it: keep it, or call detach() to let it last as long as its subscriber"]
pub struct Subscription {
    id: u64,
    /// Empty once ended or detached.
    shared: Weak<Shared>,
}

impl Subscription {
    pub(crate) fn new(id: u64, shared: Weak<Shared>) -> Self {
        Self { id, shared }
    }

    /// Ends the subscription. Returns whether it was still active.
    pub fn unsubscribe(mut self) -> bool {
        self.end()
    }

    /// Lets the subscription last as long as its subscriber (an actor until it stops, a
    /// channel until its receiver is dropped), without this handle.
    pub fn detach(mut self) {
        self.shared = Weak::new();
    }

    fn end(&mut self) -> bool {
        std::mem::take(&mut self.shared).upgrade().is_some_and(|s| s.events.remove(self.id))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.end();
    }
}

/// The sink that delivers events to an actor.
pub(crate) fn actor_sink<M: From<Event> + Send + 'static>(to: ActorRef<M>) -> Sink {
    Box::new(move |ev| match to.try_tell(M::from(ev)) {
        Ok(()) => true,
        // A full bounded mailbox that rejects: `tell` makes the event a counted dead letter.
        Err(TrySendError::Full(ev)) => {
            let _ = to.tell(ev);
            true
        }
        Err(TrySendError::Stopped(_) | TrySendError::Closed(_)) => false,
    })
}

/// The sink that delivers events to a channel.
pub(crate) fn channel_sink(tx: mpsc::Sender<Event>) -> Sink {
    Box::new(move |ev| tx.send(ev).is_ok())
}
