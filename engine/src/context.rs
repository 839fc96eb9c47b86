//! [`Ctx`]: what a handler can do besides changing its own state.

use crate::actor::Actor;
use crate::actor_ref::ActorRef;
use crate::ask::Pending;
use crate::cell::SystemMsg;
use crate::error::{AskError, SpawnError};
use crate::id::ActorId;
use crate::runtime::{Handle, Placement};
use crate::shard::Shard;
use std::future::Future;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::time::Duration;

/// The context handed to every handler of actor `A`. It lives only for the call and never
/// leaves the shard (it is neither `Send` nor `Clone`).
pub struct Ctx<A: Actor> {
    id: ActorId,
    shard: NonNull<Shard>,
    _a: PhantomData<*const A>,
}

impl<A: Actor> Ctx<A> {
    pub(crate) fn new(shard: &Shard, id: ActorId) -> Self {
        Self { id, shard: NonNull::from(shard), _a: PhantomData }
    }

    fn shard(&self) -> &Shard {
        // SAFETY: a Ctx is created by the dispatcher for one handler call on the shard thread
        // and cannot outlive it (not Send, not Clone, handed out as `&mut`); the shard lives
        // for the whole dispatcher loop.
        unsafe { self.shard.as_ref() }
    }

    /// This actor's id.
    pub fn id(&self) -> ActorId {
        self.id
    }

    /// The shard this actor runs on.
    pub fn shard_index(&self) -> usize {
        self.id.shard()
    }

    /// This actor's own address.
    pub fn myself(&self) -> ActorRef<A::Msg> {
        ActorRef::new(self.shard().shared.clone(), self.id)
    }

    /// A handle to the runtime (spawn anywhere, names, metrics).
    pub fn runtime(&self) -> Handle {
        Handle { shared: self.shard().shared.clone() }
    }

    /// Stops this actor gracefully after the current message: what is queued is still handled
    /// (within the stop timeout), nothing new is accepted.
    pub fn stop(&self) {
        let s = self.shard();
        s.deliver_system(self.id, SystemMsg::Stop(None));
    }

    /// Messages waiting in this actor's mailbox.
    pub fn mailbox_len(&self) -> usize {
        self.shard().mailbox_len(self.id).unwrap_or(0)
    }

    /// Spawns an actor on this shard. It is built now; its `started` runs on a later turn.
    pub fn spawn<B, F>(&self, factory: F) -> Result<ActorRef<B::Msg>, SpawnError>
    where
        B: Actor,
        F: FnOnce() -> B + Send + 'static,
    {
        self.runtime().spawn_with(Placement::Local, factory)
    }

    /// Runs a future as a local task on this shard (for async work; it may hold non-`Send`
    /// data).
    pub fn spawn_task(&self, fut: impl Future<Output = ()> + 'static) {
        self.shard().spawn_task(fut)
    }

    /// Asks `target` and delivers the outcome to this actor as a message built by `map`. The
    /// handler does not wait: the answer arrives as a later message.
    pub fn ask<M, T>(
        &self,
        target: &ActorRef<M>,
        make: impl FnOnce(crate::Reply<T>) -> M,
        timeout: Duration,
        map: impl FnOnce(Result<T, AskError>) -> A::Msg + 'static,
    ) where
        M: Send + 'static,
        T: Send + 'static,
    {
        let pending: Pending<T> = target.ask(make).timeout(timeout);
        let me = self.myself();
        self.spawn_task(async move {
            let r = pending.await;
            let _ = me.tell(map(r));
        });
    }
}
