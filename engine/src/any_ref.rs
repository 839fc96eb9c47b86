//! Untyped addresses and messages: [`AnyRef`] reaches an actor whose message type is not known
//! statically (a message's sender, a parent, a child); [`AnyMsg`] is the message type of actors
//! that take anything.
//!
//! A send through an `AnyRef` is checked on the target's shard: a message of the actor's own
//! type is queued as usual, any message is boxed into an `AnyMsg` for an actor whose type is
//! `AnyMsg`, and anything else is a dead letter (`TypeMismatch`). The typed `ActorRef<M>` path
//! has no such check and costs nothing extra.

use crate::ask::{pair, Pending, Reply};
use crate::cell::SystemMsg;
use crate::error::{AskError, SendError};
use crate::id::ActorId;
use crate::metrics::ActorMetrics;
use crate::packet::Deliver;
use crate::runtime::Shared;
use crate::shard::{Shard, SysMsg};
use std::any::Any;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Anything that addresses one actor of this runtime.
pub trait Address {
    /// The actor's identity.
    fn actor_id(&self) -> ActorId;
}

/// The address of an actor whose message type is not known here. Compared and hashed by
/// identity, like [`ActorRef`](crate::ActorRef).
#[derive(Clone)]
pub struct AnyRef {
    pub(crate) shared: Arc<Shared>,
    pub(crate) id: ActorId,
}

impl PartialEq for AnyRef {
    fn eq(&self, o: &Self) -> bool {
        self.id == o.id && Arc::ptr_eq(&self.shared, &o.shared)
    }
}
impl Eq for AnyRef {}
impl Hash for AnyRef {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.id.hash(h)
    }
}
impl fmt::Debug for AnyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AnyRef({})", self.id)
    }
}

impl Address for AnyRef {
    fn actor_id(&self) -> ActorId {
        self.id
    }
}

impl AnyRef {
    pub(crate) fn new(shared: Arc<Shared>, id: ActorId) -> Self {
        Self { shared, id }
    }

    /// The actor's identity.
    pub fn id(&self) -> ActorId {
        self.id
    }

    /// Whether the actor accepts messages (it has not begun stopping). Readable from anywhere.
    pub fn is_alive(&self) -> bool {
        self.shared.shards[self.id.shard()].slots.is_live(self.id.slot(), self.id.gen())
    }

    /// Whether the actor failed and waits, handling no messages, for a decision (a restart or a
    /// stop). Readable from anywhere.
    pub fn is_suspended(&self) -> bool {
        self.shared.shards[self.id.shard()].slots.is_suspended(self.id.slot(), self.id.gen())
    }

    /// Sends a message of any type, without a sender (use `Ctx::tell_any` to send as the
    /// calling actor). It is queued if the actor's message type is `T` (or [`AnyMsg`]);
    /// otherwise it becomes a dead letter (`TypeMismatch`). The only error is a runtime that
    /// has shut down.
    pub fn tell<T: Send + 'static>(&self, msg: T) -> Result<(), SendError<T>> {
        self.tell_with_sender(msg, 0)
    }

    pub(crate) fn tell_with_sender<T: Send + 'static>(
        &self,
        msg: T,
        sender: u64,
    ) -> Result<(), SendError<T>> {
        self.shared
            .route(self.id.shard(), self.id.as_u64(), CheckedMsg(msg, sender))
            .map_err(|p| crate::actor_ref::returned::<CheckedMsg<T>, T>(p, |CheckedMsg(m, _)| m))
    }

    /// Stops the actor gracefully: it handles what is already queued (within the stop
    /// timeout), its children stop first, then `stopped` runs. The [`Pending`] completes when
    /// the actor is gone.
    pub fn stop(&self) -> Pending<()> {
        self.system(|r| SystemMsg::Stop(Some(r)), Ok(()))
    }

    /// Stops the actor now: queued messages become dead letters, then `stopped` runs.
    pub fn kill(&self) -> Pending<()> {
        self.system(|r| SystemMsg::Kill(Some(r)), Ok(()))
    }

    /// Rebuilds the actor from its factory, keeping its mailbox (also lifts a suspension).
    /// Completes when done; `NoReply` if the actor is gone.
    pub fn restart(&self) -> Pending<()> {
        self.system(|r| SystemMsg::Restart(Some(r)), Err(AskError::Closed))
    }

    /// The actor's counters, gathered on its shard.
    pub fn metrics(&self) -> Pending<ActorMetrics> {
        self.system(SystemMsg::Metrics, Err(AskError::Closed))
    }

    /// Sends a system request; `closed` is the answer when the runtime is already down.
    fn system<T: Send + 'static>(
        &self,
        make: impl FnOnce(Reply<T>) -> SystemMsg,
        closed: Result<T, AskError>,
    ) -> Pending<T> {
        let (reply, pending) = pair(&self.shared, self.shared.cfg.stop_timeout * 2);
        match self.shared.route(self.id.shard(), self.id.as_u64(), SysMsg(make(reply))) {
            Ok(()) => pending,
            Err(p) => {
                drop(p);
                drop(pending);
                Pending::ready(closed)
            }
        }
    }
}

/// A message whose type was checked on arrival.
pub(crate) struct CheckedMsg<T>(pub(crate) T, pub(crate) u64);
impl<T: Send + 'static> Deliver for CheckedMsg<T> {
    fn deliver(self, shard: &Shard, target: u64) {
        shard.deliver_checked(ActorId::from_u64(target), self.0, self.1)
    }
    fn type_name() -> &'static str {
        std::any::type_name::<T>()
    }
}

/// A message of any type, for actors that take anything (`type Msg = AnyMsg`): what reaches
/// them through an [`AnyRef`] is boxed into one of these.
pub struct AnyMsg {
    msg: Box<dyn Any + Send>,
    type_name: &'static str,
}

impl AnyMsg {
    /// Boxes a message.
    pub fn new<T: Send + 'static>(m: T) -> Self {
        Self { msg: Box::new(m), type_name: std::any::type_name::<T>() }
    }
    /// Whether the message is a `T`.
    pub fn is<T: 'static>(&self) -> bool {
        self.msg.is::<T>()
    }
    /// The message as a `T`, or itself back.
    pub fn downcast<T: 'static>(self) -> Result<T, AnyMsg> {
        match self.msg.downcast::<T>() {
            Ok(m) => Ok(*m),
            Err(msg) => Err(AnyMsg { msg, type_name: self.type_name }),
        }
    }
    /// A reference to the message as a `T`.
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        self.msg.downcast_ref::<T>()
    }
    /// The message's type name.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }
    /// The boxed message.
    pub fn into_box(self) -> Box<dyn Any + Send> {
        self.msg
    }
}

impl fmt::Debug for AnyMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AnyMsg({})", self.type_name)
    }
}
