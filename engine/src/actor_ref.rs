//! [`ActorRef`]: the address of an actor, usable from any thread.

use crate::any_ref::{Address, AnyRef};
use crate::ask::{unbound_pair, Pending, Reply};
use crate::batch::BatchPending;
use crate::cell::Refused;
use crate::error::{AskError, SendError, TrySendError};
use crate::id::ActorId;
use crate::metrics::ActorMetrics;
use crate::packet::Packet;
use crate::runtime::Shared;
use crate::shard::{current_ptr, BatchMsg, SentMsg, UserMsg};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::sync::Arc;

/// Address of an actor whose message type is `M`. Small (two words), `Send + Sync + Clone`,
/// compared and hashed by identity.
///
/// Sending picks the path from the calling thread: on the actor's own shard the message goes
/// straight into its mailbox; on another shard of the runtime it goes through that pair's
/// ring; from any other thread it goes through the target shard's injector.
pub struct ActorRef<M> {
    addr: AnyRef,
    _m: PhantomData<fn(M)>,
}

impl<M> Clone for ActorRef<M> {
    fn clone(&self) -> Self {
        Self { addr: self.addr.clone(), _m: PhantomData }
    }
}

impl<M> PartialEq for ActorRef<M> {
    fn eq(&self, o: &Self) -> bool {
        self.addr == o.addr
    }
}
impl<M> Eq for ActorRef<M> {}
impl<M> Hash for ActorRef<M> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.addr.hash(h)
    }
}
impl<M> fmt::Debug for ActorRef<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorRef({})", self.addr.id)
    }
}
impl<M> Address for ActorRef<M> {
    fn actor_id(&self) -> ActorId {
        self.addr.id
    }
}
impl<M> From<ActorRef<M>> for AnyRef {
    fn from(r: ActorRef<M>) -> AnyRef {
        r.addr
    }
}

impl<M: Send + 'static> ActorRef<M> {
    pub(crate) fn new(shared: Arc<Shared>, id: ActorId) -> Self {
        Self { addr: AnyRef::new(shared, id), _m: PhantomData }
    }

    #[inline(always)]
    fn shared(&self) -> &Arc<Shared> {
        &self.addr.shared
    }

    /// The actor's identity.
    #[inline(always)]
    pub fn id(&self) -> ActorId {
        self.addr.id
    }

    /// The same address without its message type.
    pub fn untyped(&self) -> AnyRef {
        self.addr.clone()
    }

    /// Whether the actor accepts messages (it has not begun stopping). Readable from anywhere.
    pub fn is_alive(&self) -> bool {
        self.addr.is_alive()
    }

    /// Whether the actor failed and waits, handling no messages, for a decision (a restart or a
    /// stop). Readable from anywhere.
    pub fn is_suspended(&self) -> bool {
        self.addr.is_suspended()
    }

    /// Sends a message, fire-and-forget, without a sender (use `Ctx::tell` to send as the
    /// calling actor). A message to a stopped actor becomes a counted dead letter; the only
    /// error is a runtime that has shut down, which returns the message.
    #[inline(always)]
    pub fn tell(&self, msg: M) -> Result<(), SendError<M>> {
        self.tell_with_sender(msg, 0)
    }

    /// `tell` with a sender's raw id (0: none).
    #[inline(always)]
    pub(crate) fn tell_with_sender(&self, msg: M, sender: u64) -> Result<(), SendError<M>> {
        let to = self.id().shard();
        // SAFETY: a non-null pointer is the shard this thread is running, alive for as long as
        // this call (see `shard::with_current`); the reference does not escape it.
        if let Some(s) = unsafe { current_ptr().as_ref() } {
            if s.belongs_to(self.shared()) {
                if s.idx == to {
                    s.deliver_user(self.id(), msg, sender);
                } else if sender == 0 {
                    s.send_user_outbound(to, self.id().as_u64(), msg);
                } else {
                    s.push_outbound(to, Packet::new(self.id().as_u64(), SentMsg(msg, sender)));
                }
                return Ok(());
            }
        }
        self.tell_from_outside(to, msg, sender)
    }

    /// `tell` with a trace context (see `integration::tell_traced`).
    #[cfg(feature = "tracing-spans")]
    pub(crate) fn tell_traced(&self, msg: M, trace: crate::trace::TraceContext) -> Result<(), SendError<M>> {
        use crate::shard::TracedMsg;
        self.shared()
            .route(self.id().shard(), self.id().as_u64(), TracedMsg(msg, trace))
            .map_err(|p| returned::<TracedMsg<M>, M>(p, |TracedMsg(m, _)| m))
    }

    /// A send from a thread outside the runtime: inlined into `tell` for the common case (no
    /// sender), with the rest out of line so that the path every message takes stays short.
    #[inline(always)]
    fn tell_from_outside(&self, to: usize, msg: M, sender: u64) -> Result<(), SendError<M>> {
        if sender != 0 {
            return self.tell_sent_from_outside(to, msg, sender);
        }
        match self.shared().inject_new(to, self.id().as_u64(), UserMsg(msg)) {
            Ok(()) => Ok(()),
            Err(p) => Err(returned::<UserMsg<M>, M>(p, |UserMsg(m)| m)),
        }
    }

    /// `tell_from_outside` with a sender.
    #[inline(never)]
    fn tell_sent_from_outside(&self, to: usize, msg: M, sender: u64) -> Result<(), SendError<M>> {
        match self.shared().inject_new(to, self.id().as_u64(), SentMsg(msg, sender)) {
            Ok(()) => Ok(()),
            Err(p) => Err(returned::<SentMsg<M>, M>(p, |SentMsg(m, _)| m)),
        }
    }

    /// Sends messages that the actor handles in this order, with nothing else from this sender
    /// in between. From outside the runtime they travel as one packet. The error returns what
    /// was not sent.
    pub fn batch_tell(&self, msgs: impl IntoIterator<Item = M>) -> Result<(), SendError<Vec<M>>> {
        let on_runtime = crate::shard::with_current(|c| c.is_some_and(|s| s.belongs_to(self.shared())));
        if on_runtime {
            for m in msgs {
                // On a shard of the runtime `tell` cannot fail.
                let _ = self.tell(m);
            }
            return Ok(());
        }
        let msgs: Vec<M> = msgs.into_iter().collect();
        if msgs.is_empty() {
            return Ok(());
        }
        self.shared()
            .inject_new(self.id().shard(), self.id().as_u64(), BatchMsg(msgs))
            .map_err(|p| returned::<BatchMsg<M>, Vec<M>>(p, |BatchMsg(m)| m))
    }

    /// Sends a message unless the actor is known to have stopped, or its bounded mailbox with
    /// the `Reject` policy is known to be full; then the message comes back. On the actor's
    /// shard both checks are exact. From elsewhere only the shared liveness table is read: a
    /// stop that races the message in flight, or a full mailbox it finds on arrival, makes it a
    /// dead letter. Once the runtime has shut down the answer is `Closed`, as `tell`'s is.
    pub fn try_tell(&self, msg: M) -> Result<(), TrySendError<M>> {
        let to = self.id().shard();
        // SAFETY: as in `tell`: the current shard outlives this call.
        if let Some(s) = unsafe { current_ptr().as_ref() } {
            if s.belongs_to(self.shared()) && s.idx == to {
                return s.try_deliver_user(self.id(), msg, 0).map_err(|r| match r {
                    Refused::Stopped(m) => TrySendError::Stopped(m),
                    Refused::Full(m) => TrySendError::Full(m),
                });
            }
        }
        if !self.is_alive() {
            return Err(if self.shared().shards[to].injector.is_closed() {
                TrySendError::Closed(msg)
            } else {
                TrySendError::Stopped(msg)
            });
        }
        self.tell(msg).map_err(|SendError::Closed(m)| TrySendError::Closed(m))
    }

    /// Sends a request built around a fresh [`Reply`] and returns the [`Pending`] answer.
    ///
    /// ```no_run
    /// # use corelane::{ActorRef, Reply};
    /// # use std::time::Duration;
    /// # enum Msg { Get(Reply<u64>) }
    /// # fn f(counter: ActorRef<Msg>) -> Result<(), corelane::AskError> {
    /// let n = counter.ask(Msg::Get).timeout(Duration::from_millis(50)).wait()?;
    /// # Ok(()) }
    /// ```
    pub fn ask<T: Send + 'static>(&self, make: impl FnOnce(Reply<T>) -> M) -> Pending<T> {
        let (reply, pending) = unbound_pair(self.shared().cfg.ask_timeout);
        match self.tell(make(reply)) {
            Ok(()) => pending.bound_to(self.shared()).answered_on(self.id().shard()),
            Err(SendError::Closed(m)) => {
                drop(m);
                drop(pending);
                Pending::ready(Err(AskError::Closed))
            }
        }
    }

    /// Sends several requests in order and returns their answers in the same order, under one
    /// timeout for the whole batch.
    ///
    /// ```no_run
    /// # use corelane::{ActorRef, Reply};
    /// # use std::time::Duration;
    /// # enum Msg { Square(u64, Reply<u64>) }
    /// # fn f(calc: ActorRef<Msg>) -> Result<(), corelane::AskError> {
    /// let squares = calc
    ///     .batch_ask((1..=3).map(|i| move |r| Msg::Square(i, r)))
    ///     .timeout(Duration::from_millis(100))
    ///     .wait()?;
    /// assert_eq!(squares, vec![1, 4, 9]);
    /// # Ok(()) }
    /// ```
    pub fn batch_ask<T, F>(&self, requests: impl IntoIterator<Item = F>) -> BatchPending<T>
    where
        T: Send + 'static,
        F: FnOnce(Reply<T>) -> M,
    {
        let items = requests.into_iter().map(|make| self.ask(make)).collect();
        BatchPending::new(items, self.shared().cfg.ask_timeout)
    }

    /// Stops the actor gracefully: it handles what is already queued (within the stop
    /// timeout), its children stop first, then `stopped` runs. Later messages are dead
    /// letters. The returned [`Pending`] completes when the actor is gone.
    pub fn stop(&self) -> Pending<()> {
        self.addr.stop()
    }

    /// Stops the actor now: queued messages become dead letters, then `stopped` runs.
    pub fn kill(&self) -> Pending<()> {
        self.addr.kill()
    }

    /// Rebuilds the actor from its factory, keeping its mailbox (also lifts a suspension).
    pub fn restart(&self) -> Pending<()> {
        self.addr.restart()
    }

    /// The actor's counters, gathered on its shard.
    pub fn metrics(&self) -> Pending<ActorMetrics> {
        self.addr.metrics()
    }
}

/// The message of a packet that came back because the runtime has stopped, as the send error
/// that returns it.
#[cold]
#[inline(never)]
pub(crate) fn returned<P: crate::packet::Deliver, M>(p: Packet, msg: impl FnOnce(P) -> M) -> SendError<M> {
    match p.take::<P>() {
        Ok(payload) => SendError::Closed(msg(payload)),
        Err(_) => unreachable!("the packet was built from this payload type"),
    }
}
