//! [`ActorRef`]: the address of an actor, usable from any thread.

use crate::ask::{pair, Pending, Reply};
use crate::cell::SystemMsg;
use crate::error::{AskError, SendError, TrySendError};
use crate::id::ActorId;
use crate::packet::Packet;
use crate::runtime::Shared;
use crate::shard::{current_ptr, SysMsg, UserMsg};
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
    shared: Arc<Shared>,
    id: ActorId,
    _m: PhantomData<fn(M)>,
}

impl<M> Clone for ActorRef<M> {
    fn clone(&self) -> Self {
        Self { shared: self.shared.clone(), id: self.id, _m: PhantomData }
    }
}

impl<M> PartialEq for ActorRef<M> {
    fn eq(&self, o: &Self) -> bool {
        self.id == o.id && Arc::ptr_eq(&self.shared, &o.shared)
    }
}
impl<M> Eq for ActorRef<M> {}
impl<M> Hash for ActorRef<M> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.id.hash(h)
    }
}
impl<M> fmt::Debug for ActorRef<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorRef({})", self.id)
    }
}

impl<M: Send + 'static> ActorRef<M> {
    pub(crate) fn new(shared: Arc<Shared>, id: ActorId) -> Self {
        Self { shared, id, _m: PhantomData }
    }

    /// The actor's identity.
    pub fn id(&self) -> ActorId {
        self.id
    }

    /// Whether the actor accepts messages (it has not begun stopping). Readable from anywhere.
    pub fn is_alive(&self) -> bool {
        self.shared.shards[self.id.shard()].slots.is_live(self.id.slot(), self.id.gen())
    }

    /// Sends a message, fire-and-forget. A message to a stopped actor becomes a counted dead
    /// letter; the only error is a runtime that has shut down, which returns the message.
    #[inline(always)]
    pub fn tell(&self, msg: M) -> Result<(), SendError<M>> {
        let to = self.id.shard();
        // SAFETY: a non-null pointer is the shard this thread is running, alive for as long as
        // this call (see `shard::with_current`); the reference does not escape it.
        if let Some(s) = unsafe { current_ptr().as_ref() } {
            if s.belongs_to(&self.shared) {
                if s.idx == to {
                    s.deliver_user(self.id, msg);
                } else {
                    s.send_user_outbound(to, self.id.as_u64(), msg);
                }
                return Ok(());
            }
        }
        self.tell_from_outside(to, msg)
    }

    fn tell_from_outside(&self, to: usize, msg: M) -> Result<(), SendError<M>> {
        self.shared
            .inject(to, Packet::new(self.id.as_u64(), UserMsg(msg)))
            .map_err(|p| SendError::Closed(take_msg(p)))
    }

    /// Sends a message unless the actor is known to have stopped, in which case the message
    /// comes back. On the actor's shard the check is exact; from elsewhere it reads the shared
    /// liveness table, and a stop that races the message in flight still ends in a dead letter.
    pub fn try_tell(&self, msg: M) -> Result<(), TrySendError<M>> {
        let to = self.id.shard();
        // SAFETY: as in `tell`: the current shard outlives this call.
        if let Some(s) = unsafe { current_ptr().as_ref() } {
            if s.belongs_to(&self.shared) && s.idx == to {
                return s.try_deliver_user(self.id, msg).map_err(TrySendError::Stopped);
            }
        }
        if !self.is_alive() {
            return Err(TrySendError::Stopped(msg));
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
        let (reply, pending) = pair(&self.shared, self.shared.cfg.ask_timeout);
        match self.tell(make(reply)) {
            Ok(()) => pending,
            Err(SendError::Closed(m)) => {
                drop(m);
                drop(pending);
                Pending::ready(Err(AskError::Closed))
            }
        }
    }

    /// Stops the actor gracefully: it handles what is already queued (within the stop
    /// timeout), then `stopped` runs. Later messages are dead letters. The returned
    /// [`Pending`] completes when the actor is gone.
    pub fn stop(&self) -> Pending<()> {
        self.system(|r| SystemMsg::Stop(Some(r)))
    }

    /// Stops the actor now: queued messages become dead letters, then `stopped` runs.
    pub fn kill(&self) -> Pending<()> {
        self.system(|r| SystemMsg::Kill(Some(r)))
    }

    fn system(&self, make: impl FnOnce(Reply<()>) -> SystemMsg) -> Pending<()> {
        let (reply, pending) = pair(&self.shared, self.shared.cfg.stop_timeout * 2);
        let p = Packet::new(self.id.as_u64(), SysMsg(make(reply)));
        match self.shared.route(self.id.shard(), p) {
            Ok(()) => pending,
            // The runtime is down, so the actor is too.
            Err(p) => {
                drop(p);
                drop(pending);
                Pending::ready(Ok(()))
            }
        }
    }
}

fn take_msg<M: Send + 'static>(p: Packet) -> M {
    match p.take::<UserMsg<M>>() {
        Ok(UserMsg(m)) => m,
        Err(_) => unreachable!("packet built from UserMsg<M> just above"),
    }
}
