//! [`MailboxKind`]: how an actor's mailbox queues user messages (unbounded, bounded with an
//! [`Overflow`] policy, by priority, or in a queue of the user's own), chosen at spawn with
//! [`SpawnOptions::mailbox`](crate::SpawnOptions::mailbox).
//!
//! The system lane (stop, watch, supervision) is never bounded and always runs first, whatever
//! the kind. What each kind costs per message is in `docs/runtime-semantics.md`.

use std::any::{Any, TypeId};
use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

mod custom;
pub use custom::{CustomQueue, MailboxQueue, Push, Queued};

/// What a bounded mailbox does with a message that finds it full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Overflow {
    /// The arriving message becomes a dead letter (`MailboxFull`).
    DropNewest,
    /// The oldest queued message becomes a dead letter (`MailboxFull`) and the arriving one is
    /// queued.
    DropOldest,
    /// The arriving message is refused: a same-shard `try_tell` gets it back
    /// ([`TrySendError::Full`](crate::TrySendError::Full)); any other send (a `tell`, a send from
    /// another shard or thread, which cannot wait for the answer) makes it a dead letter
    /// (`MailboxFull`).
    Reject,
}

/// An ordering of messages: `Greater` is handled first.
pub(crate) type Order<M> = dyn Fn(&M, &M) -> Ordering + Send + Sync;

/// A message ordering with its message type erased, so that the untyped [`SpawnOptions`]
/// can carry it; the spawn checks the type.
///
/// [`SpawnOptions`]: crate::SpawnOptions
#[derive(Clone)]
pub(crate) struct ErasedOrder {
    /// An `Arc<Order<M>>`.
    order: Arc<dyn Any + Send + Sync>,
    pub(crate) msg_type: TypeId,
    pub(crate) msg_type_name: &'static str,
}

impl ErasedOrder {
    /// The ordering, if it orders `M`.
    pub(crate) fn typed<M: 'static>(&self) -> Option<Arc<Order<M>>> {
        self.order.downcast_ref::<Arc<Order<M>>>().cloned()
    }
}

/// How an actor's mailbox queues user messages.
///
/// ```
/// use corelane::{MailboxKind, Overflow, SpawnOptions};
///
/// enum Msg { Tick(u64), Halt }
/// // At most 1 000 queued messages; when full, the oldest is dropped to dead letters.
/// let bounded = SpawnOptions::new().mailbox(MailboxKind::bounded(1_000, Overflow::DropOldest));
/// // `Halt` overtakes queued ticks; ticks keep their order among themselves.
/// let urgent_first = SpawnOptions::new().mailbox(MailboxKind::priority(|a: &Msg, b: &Msg| {
///     let rank = |m: &Msg| matches!(m, Msg::Halt) as u8;
///     rank(a).cmp(&rank(b))
/// }));
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum MailboxKind {
    /// Grows as needed (the default): a message is never refused while the actor runs.
    #[default]
    Unbounded,
    /// Holds at most `capacity` user messages; `overflow` says what happens to one more.
    Bounded {
        /// The most user messages queued at once (at least 1).
        capacity: usize,
        /// What a message that finds the mailbox full does.
        overflow: Overflow,
    },
    /// Handles the message of highest priority first, and messages of equal priority in the
    /// order they arrived. Built by [`MailboxKind::priority`].
    Priority(PriorityOrder),
    /// A queue of the user's own (see [`MailboxQueue`]). Built by [`MailboxKind::custom`].
    Custom(CustomQueue),
}

/// The ordering of a priority mailbox (built by [`MailboxKind::priority`]).
#[derive(Clone)]
pub struct PriorityOrder(pub(crate) ErasedOrder);

impl MailboxKind {
    /// A bounded mailbox of `capacity` user messages (a capacity of 0 is taken as 1).
    pub fn bounded(capacity: usize, overflow: Overflow) -> Self {
        MailboxKind::Bounded { capacity: capacity.max(1), overflow }
    }

    /// A priority mailbox: `order(a, b) == Greater` means `a` is handled before `b`; messages
    /// that compare `Equal` are handled in arrival order. Spawning an actor whose message type
    /// is not `M` with it fails with [`SpawnError::MailboxType`](crate::SpawnError::MailboxType).
    pub fn priority<M: 'static>(order: impl Fn(&M, &M) -> Ordering + Send + Sync + 'static) -> Self {
        let order: Arc<Order<M>> = Arc::new(order);
        MailboxKind::Priority(PriorityOrder(ErasedOrder {
            order: Arc::new(order),
            msg_type: TypeId::of::<M>(),
            msg_type_name: std::any::type_name::<M>(),
        }))
    }

    /// A custom mailbox: `make` builds each actor's queue on its shard when it is spawned (see
    /// [`MailboxQueue`] for what the runtime keeps around it). Spawning an actor whose message
    /// type is not `M` with it fails with
    /// [`SpawnError::MailboxType`](crate::SpawnError::MailboxType); a `make` that panics fails
    /// the spawn with [`SpawnError::FactoryPanicked`](crate::SpawnError::FactoryPanicked).
    pub fn custom<M: 'static, Q: MailboxQueue<M>>(make: impl Fn() -> Q + Send + Sync + 'static) -> Self {
        MailboxKind::Custom(CustomQueue::new(make))
    }

    /// The message type this kind is written for, if it is written for one.
    pub(crate) fn msg_type(&self) -> Option<(TypeId, &'static str)> {
        match self {
            MailboxKind::Priority(p) => Some((p.0.msg_type, p.0.msg_type_name)),
            MailboxKind::Custom(c) => Some((c.msg_type, c.msg_type_name)),
            _ => None,
        }
    }
}

impl fmt::Debug for MailboxKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MailboxKind::Unbounded => f.write_str("Unbounded"),
            MailboxKind::Bounded { capacity, overflow } => {
                f.debug_struct("Bounded").field("capacity", capacity).field("overflow", overflow).finish()
            }
            MailboxKind::Priority(p) => write!(f, "Priority<{}>", p.0.msg_type_name),
            MailboxKind::Custom(c) => write!(f, "Custom<{}>", c.queue_type_name),
        }
    }
}
impl fmt::Debug for PriorityOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PriorityOrder<{}>", self.0.msg_type_name)
    }
}
