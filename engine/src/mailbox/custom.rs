//! Custom mailboxes: a queue of the user's own ([`MailboxQueue`]) holds an actor's user
//! messages, chosen at spawn with [`MailboxKind::custom`](crate::MailboxKind::custom).
//!
//! The runtime keeps what it must around the queue: the system lane still goes first, senders
//! travel with their messages inside [`Queued`], unstashed messages go back ahead of the queue,
//! and every call into the queue is fenced (a message the queue's code sends to its own actor
//! waits until the call ends; a panic fails the actor instead of the shard).

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

/// A message in a custom mailbox, with what the runtime keeps about it (its sender, which the
/// actor reads as `ctx.sender()`).
///
/// A queue moves these around and hands each one back exactly once: from
/// [`MailboxQueue::pop`], or inside a [`Push`] that drops or refuses it. It can read and change
/// the message, but not take it out.
pub struct Queued<M> {
    pub(crate) msg: M,
    pub(crate) sender: u64,
}

impl<M> Queued<M> {
    /// The message.
    pub fn msg(&self) -> &M {
        &self.msg
    }

    /// The message, to change in place (for example to merge a newer update into it).
    pub fn msg_mut(&mut self) -> &mut M {
        &mut self.msg
    }

    /// Whether the message came with a sender (`Ctx::tell`, `forward`, a probe).
    pub fn has_sender(&self) -> bool {
        self.sender != 0
    }
}

impl<M: fmt::Debug> fmt::Debug for Queued<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queued").field("msg", &self.msg).field("has_sender", &self.has_sender()).finish()
    }
}

/// What a [`MailboxQueue`] did with an arriving message.
#[derive(Debug)]
#[non_exhaustive]
pub enum Push<M> {
    /// Queued: one more message waits.
    Queued,
    /// As many messages wait as before: the queue kept the arriving message and dropped this
    /// earlier one (a full queue dropping its oldest, a conflating queue replacing an older
    /// update), or dropped the arriving message itself. It becomes a `MailboxFull` dead letter.
    Dropped(Queued<M>),
    /// Not queued: the arriving message, given back. A same-shard `try_tell` gets it back as
    /// [`TrySendError::Full`](crate::TrySendError::Full); any other send makes it a
    /// `MailboxFull` dead letter.
    Refused(Queued<M>),
}

/// A queue of an actor's user messages, written by the user: ordering, bounds, conflation
/// (keep only the newest update per key), fairness between sources, anything a message alone
/// can decide.
///
/// It lives on the actor's shard (it need not be `Send`), one per actor, built by the factory
/// given to [`MailboxKind::custom`](crate::MailboxKind::custom) when the actor is spawned, and
/// kept across restarts like any mailbox.
///
/// What the runtime keeps around it:
/// - The **count**: the runtime counts what waits (one more per [`Push::Queued`], one fewer per
///   message popped), and asks for a message only while the count says one waits. A queue must
///   give back every message it keeps; if `pop` returns `None` while the count says otherwise,
///   the runtime believes the queue (and logs it).
/// - **Order of the turn**: the actor handles one message at a time, popped just before it is
///   handled, so a message that arrives meanwhile competes with everything still queued.
/// - **Unstash**: unstashed messages were accepted once; they are handled before anything in
///   the queue, in their stashed order, without passing through it again.
/// - **Re-entry**: a message that `push` or `pop` sends to this same actor (through anything
///   they call) is not pushed while the call runs: it waits and is pushed when the call ends.
/// - **Panics**: a panic in `push` makes the arriving message a `HandlerFailed` dead letter
///   and fails the actor (`Phase::Mailbox`, handled by its supervisor); a panic in `pop` fails
///   the actor the same way. Neither takes the shard down.
///
/// ```
/// use corelane::{MailboxKind, MailboxQueue, Push, Queued, SpawnOptions};
/// use std::collections::VecDeque;
///
/// /// Market data: only the newest price per symbol matters.
/// pub enum Tick { Price { symbol: u32, px: f64 } }
///
/// #[derive(Default)]
/// struct Conflating(VecDeque<Queued<Tick>>);
///
/// impl MailboxQueue<Tick> for Conflating {
///     fn push(&mut self, item: Queued<Tick>) -> Push<Tick> {
///         let Tick::Price { symbol, .. } = *item.msg();
///         match self.0.iter_mut().find(|q| matches!(q.msg(), Tick::Price { symbol: s, .. } if *s == symbol)) {
///             // The older update makes way (a dead letter, counted) and the newer takes its place.
///             Some(slot) => Push::Dropped(std::mem::replace(slot, item)),
///             None => {
///                 self.0.push_back(item);
///                 Push::Queued
///             }
///         }
///     }
///     fn pop(&mut self) -> Option<Queued<Tick>> {
///         self.0.pop_front()
///     }
/// }
///
/// let opts = SpawnOptions::new().mailbox(MailboxKind::custom(Conflating::default));
/// ```
pub trait MailboxQueue<M>: 'static {
    /// Takes an arriving message: queues it, or says what it dropped or refused instead.
    fn push(&mut self, item: Queued<M>) -> Push<M>;

    /// The message the actor handles next, if any.
    fn pop(&mut self) -> Option<Queued<M>>;
}

/// Builds one queue per actor.
pub(crate) type MakeQueue<M> = dyn Fn() -> Box<dyn MailboxQueue<M>> + Send + Sync;

/// A queue factory with its message type erased, so that the untyped
/// [`SpawnOptions`](crate::SpawnOptions) can carry it; the spawn checks the type.
#[derive(Clone)]
pub struct CustomQueue {
    /// An `Arc<MakeQueue<M>>`.
    make: Arc<dyn Any + Send + Sync>,
    pub(crate) msg_type: TypeId,
    pub(crate) msg_type_name: &'static str,
    pub(crate) queue_type_name: &'static str,
}

impl CustomQueue {
    pub(crate) fn new<M: 'static, Q: MailboxQueue<M>>(make: impl Fn() -> Q + Send + Sync + 'static) -> Self {
        let make: Arc<MakeQueue<M>> = Arc::new(move || Box::new(make()) as Box<dyn MailboxQueue<M>>);
        Self {
            make: Arc::new(make),
            msg_type: TypeId::of::<M>(),
            msg_type_name: std::any::type_name::<M>(),
            queue_type_name: std::any::type_name::<Q>(),
        }
    }

    /// The factory, if its queues hold `M`.
    pub(crate) fn typed<M: 'static>(&self) -> Option<Arc<MakeQueue<M>>> {
        self.make.downcast_ref::<Arc<MakeQueue<M>>>().cloned()
    }
}

impl fmt::Debug for CustomQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CustomQueue<{}>", self.queue_type_name)
    }
}
