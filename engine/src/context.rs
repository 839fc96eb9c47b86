//! [`Ctx`]: what a handler can do besides changing its own state.

use crate::actor::{Actor, ActorError};
use crate::actor_ref::ActorRef;
use crate::any_ref::{Address, AnyRef};
use crate::ask::Pending;
use crate::cell::{ActorCell, SystemMsg};
use crate::error::{AskError, SpawnError, StashFull};
use crate::events::Event;
use crate::id::ActorId;
use crate::runtime::{Handle, Placement};
use crate::shard::Shard;
use crate::signal::StopReason;
use crate::spawn_options::SpawnOptions;
use std::future::Future;
use std::ptr::NonNull;
use std::rc::Rc;
use std::time::Duration;

/// The context handed to every handler of actor `A`. It lives only for the call and never
/// leaves the shard (it is neither `Send` nor `Clone`).
pub struct Ctx<A: Actor> {
    shard: NonNull<Shard>,
    cell: NonNull<ActorCell<A>>,
    sender: u64,
}

impl<A: Actor> Ctx<A> {
    pub(crate) fn new(shard: &Shard, cell: &ActorCell<A>) -> Self {
        Self { shard: NonNull::from(shard), cell: NonNull::from(cell), sender: 0 }
    }

    #[inline(always)]
    pub(crate) fn set_sender(&mut self, s: u64) {
        self.sender = s;
    }

    pub(crate) fn shard(&self) -> &Shard {
        // SAFETY: a Ctx is created by the dispatcher for one handler call on the shard thread
        // and cannot outlive it (not Send, not Clone, handed out as `&mut`); the shard lives
        // for the whole dispatcher loop.
        unsafe { self.shard.as_ref() }
    }

    fn cell(&self) -> &ActorCell<A> {
        // SAFETY: as for the shard: the cell is boxed in the slab and freed only by the
        // dispatcher after the handler that holds this Ctx has returned.
        unsafe { self.cell.as_ref() }
    }

    fn any_ref(&self, id: ActorId) -> AnyRef {
        AnyRef::new(self.shard().shared.clone(), id)
    }

    /// This actor's id.
    pub fn id(&self) -> ActorId {
        self.cell().id()
    }

    /// The shard this actor runs on.
    pub fn shard_index(&self) -> usize {
        self.id().shard()
    }

    /// This actor's own address.
    pub fn myself(&self) -> ActorRef<A::Msg> {
        ActorRef::new(self.shard().shared.clone(), self.id())
    }

    /// A handle to the runtime (spawn anywhere, names, metrics, events).
    pub fn runtime(&self) -> Handle {
        Handle { shared: self.shard().shared.clone() }
    }

    /// Says the message being handled is not one this actor handles (in its current behaviour):
    /// it is counted as a dead letter ([`DeadLetterReason::Unhandled`](crate::DeadLetterReason::Unhandled))
    /// and published as an `Event::Deadletter`, so it shows in metrics and to subscribers
    /// instead of vanishing. The actor goes on.
    pub fn unhandled(&self) {
        self.shard().dead_letters(
            crate::DeadLetterReason::Unhandled,
            1,
            Some(self.id()),
            std::any::type_name::<A::Msg>(),
        );
    }

    /// Stops this actor gracefully after the current message: what is queued is still handled
    /// (within the stop timeout), its children stop first, nothing new is accepted.
    pub fn stop(&self) {
        self.shard().deliver_system(self.id(), SystemMsg::Stop(None));
    }

    /// Stops this actor gracefully, as `stop` does, with `reason` as the reason its watchers
    /// are told (for actors that stand in for something else: a remote actor's local stand-in
    /// stops with the remote actor's reason, or `NodeDown`).
    pub fn stop_because(&self, reason: StopReason) {
        self.cell().ext().stop_reason = reason;
        self.stop();
    }

    /// Messages waiting in this actor's mailbox.
    pub fn mailbox_len(&self) -> usize {
        self.shard().mailbox_len(self.id()).unwrap_or(0)
    }

    // ---- messaging patterns --------------------------------------------------------------

    /// Who sent the message being handled, if it was sent with a sender: by `Ctx::tell` or
    /// `Ctx::tell_any` (the sending actor), forwarded (the original sender), or by a test
    /// probe. A plain `ActorRef::tell` has no sender (it costs nothing extra). A reply through
    /// it is type-checked on arrival (see [`AnyRef::tell`]).
    pub fn sender(&self) -> Option<AnyRef> {
        (self.sender != 0).then(|| self.any_ref(ActorId::from_u64(self.sender)))
    }

    /// Sends `msg` to `target` with this actor as the sender (`ctx.sender()` there).
    pub fn tell<M: Send + 'static>(&self, target: &ActorRef<M>, msg: M) {
        // A runtime that is shutting down turns it into a dead letter.
        let _ = target.tell_with_sender(msg, self.id().as_u64());
    }

    /// Sends `msg` through an untyped address with this actor as the sender (a reply to
    /// `ctx.sender()` that expects one back, for instance).
    pub fn tell_any<T: Send + 'static>(&self, target: &AnyRef, msg: T) {
        let _ = target.tell_with_sender(msg, self.id().as_u64());
    }

    /// Sends `msg` to `target` on behalf of the current message's sender, so the target's
    /// `ctx.sender()` is the original sender, not this actor.
    pub fn forward<M: Send + 'static>(&self, target: &ActorRef<M>, msg: M) {
        // A runtime that is shutting down turns it into a dead letter.
        let _ = target.tell_with_sender(msg, self.sender);
    }

    /// Runs `fut` on this shard's executor and sends its output to `target` as a message (map
    /// an error into the message to deliver it too). The future is not tied to this actor's
    /// life; its output is a dead letter if `target` has stopped.
    pub fn pipe_to<M: Send + 'static>(&self, target: &ActorRef<M>, fut: impl Future<Output = M> + 'static) {
        let target = target.clone();
        self.shard().spawn_task(async move {
            let _ = target.tell(fut.await);
        });
    }

    /// Runs `fut` as a local task on this shard, tied to this actor's life: it is cancelled
    /// when the actor stops or restarts. It may hold non-`Send` data.
    pub fn spawn(&self, fut: impl Future<Output = ()> + 'static) {
        let tasks = self.cell().tasks();
        let key = tasks.next.get();
        tasks.next.set(key + 1);
        let weak = Rc::downgrade(&tasks);
        let handle = self.shard().spawn_task_handle(async move {
            fut.await;
            if let Some(t) = weak.upgrade() {
                t.live.borrow_mut().remove(&key);
            }
        });
        tasks.live.borrow_mut().insert(key, handle);
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
        self.spawn(async move {
            let r = pending.await;
            let _ = me.tell(map(r));
        });
    }

    // ---- children ------------------------------------------------------------------------

    /// Spawns a child on this shard, supervised by this actor's supervisor strategy and
    /// stopped before this actor stops.
    pub fn spawn_child<B, F>(&self, factory: F) -> Result<ActorRef<B::Msg>, SpawnError>
    where
        B: Actor,
        F: FnMut() -> B + Send + 'static,
    {
        self.spawn_child_with(SpawnOptions::new(), factory)
    }

    /// Spawns a child with options (placement defaults to this shard).
    pub fn spawn_child_with<B, F>(
        &self,
        opts: SpawnOptions,
        factory: F,
    ) -> Result<ActorRef<B::Msg>, SpawnError>
    where
        B: Actor,
        F: FnMut() -> B + Send + 'static,
    {
        let placement = opts.placement.unwrap_or(Placement::Local);
        let me = self.id();
        if self.shard().shared.is_closing() && !self.cell().is_running() {
            return Err(SpawnError::ShuttingDown);
        }
        let supervised_by = self.cell().child_supervisor();
        let child = self.runtime().spawn_inner(placement, &opts, Some((me, supervised_by)), factory)?;
        self.cell().add_child(child.id());
        tracing::debug!(parent = %me, child = %child.id(), "child spawned");
        self.shard().shared.events.publish(|| Event::ActorChildCreated { parent: me, child: child.id() });
        Ok(child)
    }

    /// Gracefully stops `child` if it is a child of this actor. Returns whether it was.
    pub fn stop_child(&self, child: &impl Address) -> bool {
        let id = child.actor_id();
        if !self.cell().children().contains(&id) {
            return false;
        }
        self.shard().send_system(id, SystemMsg::Stop(None));
        true
    }

    /// This actor's children that have not yet reported their stop.
    pub fn children(&self) -> Vec<AnyRef> {
        self.cell().children().into_iter().map(|id| self.any_ref(id)).collect()
    }

    /// The parent, for a child.
    pub fn parent(&self) -> Option<AnyRef> {
        self.cell().parent().map(|id| self.any_ref(id))
    }

    // ---- watch ---------------------------------------------------------------------------

    /// Watches `target`: when it stops (or if it already has), this actor's `signal` receives
    /// `Signal::Terminated`, once. Works across shards.
    pub fn watch(&self, target: &impl Address) {
        let id = target.actor_id();
        if crate::cell::ext::insert_once(&mut self.cell().ext().watching, id) {
            self.shard().send_system(id, SystemMsg::Watch(self.id()));
        }
    }

    /// Stops watching `target`; a `Terminated` already on its way is not delivered.
    pub fn unwatch(&self, target: &impl Address) {
        let id = target.actor_id();
        if crate::cell::ext::remove(&mut self.cell().ext().watching, id) {
            self.shard().send_system(id, SystemMsg::Unwatch(self.id()));
        }
    }

    // ---- stash ---------------------------------------------------------------------------

    /// Sets the current message aside (with its sender) until `unstash`. Refused with the
    /// message back when the stash is at capacity.
    pub fn stash(&self, msg: A::Msg) -> Result<(), StashFull<A::Msg>> {
        self.cell().stash(msg, self.sender).map_err(StashFull)
    }

    /// Puts the oldest stashed message at the front of the mailbox. Returns whether there was
    /// one.
    pub fn unstash(&self) -> bool {
        self.cell().unstash(1) == 1
    }

    /// Puts every stashed message at the front of the mailbox, in the order they were stashed,
    /// ahead of messages already queued. Returns how many.
    pub fn unstash_all(&self) -> usize {
        self.cell().unstash(usize::MAX)
    }

    /// Messages in the stash.
    pub fn stash_len(&self) -> usize {
        self.cell().stash_len()
    }

    // ---- behaviors -----------------------------------------------------------------------

    /// Replaces the current behavior with `b` from the next message on (`receive` stays at the
    /// bottom of the stack).
    pub fn r#become(&self, b: impl Fn(&mut A, &mut Ctx<A>, A::Msg) -> Result<(), ActorError> + 'static) {
        let b: Rc<crate::cell::Behavior<A>> = Rc::new(b);
        self.cell().set_behaviors(|s| {
            s.pop();
            s.push(b)
        });
    }

    /// Goes back to `receive` from the next message on, dropping every stacked behavior.
    pub fn unbecome(&self) {
        self.cell().set_behaviors(|s| s.clear());
    }

    /// Pushes `b` on top of the behavior stack from the next message on.
    pub fn become_stacked(
        &self,
        b: impl Fn(&mut A, &mut Ctx<A>, A::Msg) -> Result<(), ActorError> + 'static,
    ) {
        let b: Rc<crate::cell::Behavior<A>> = Rc::new(b);
        self.cell().set_behaviors(|s| s.push(b));
    }

    /// Pops the top behavior; the one below (or `receive`) handles the next message.
    pub fn unbecome_stacked(&self) {
        self.cell().set_behaviors(|s| {
            s.pop();
        });
    }
}
