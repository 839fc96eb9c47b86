//! [`Ctx`]: what a handler can do besides changing its own state.

use crate::actor::{Actor, ActorError};
use crate::actor_ref::ActorRef;
use crate::any_ref::{Address, AnyRef};
use crate::ask::Pending;
use crate::cell::{ActorCell, SystemMsg};
use crate::error::{AskError, SendError, SpawnError, StashFull};
use crate::events::Event;
use crate::id::ActorId;
use crate::runtime::{Handle, Placement};
use crate::shard::Shard;
use crate::signal::StopReason;
use crate::spawn_options::SpawnOptions;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// The context handed to every handler of actor `A`. It lives only for the call and never
/// leaves the shard (it is neither `Send` nor `Clone`).
pub struct Ctx<A: Actor> {
    shard: NonNull<Shard>,
    cell: NonNull<ActorCell<A>>,
    sender: u64,
    /// This actor's address, lent by `myself_ref` without touching the runtime's reference
    /// count: it shares the shard's strong reference and is never dropped.
    me: ManuallyDrop<ActorRef<A::Msg>>,
}

impl<A: Actor> Ctx<A> {
    pub(crate) fn new(shard: &Shard, cell: &ActorCell<A>) -> Self {
        let ptr = Arc::as_ptr(&shard.shared);
        // The Arc rebuilt below is wrapped in ManuallyDrop and never dropped: it neither gives
        // back a count it did not take nor frees anything; clones of the ActorRef it lends take
        // their own counts as usual.
        // SAFETY: `ptr` is the shard's own `Arc<Shared>`, alive with a strong count for as long
        // as the shard runs, and a Ctx never outlives its handler call (not Send, not Clone,
        // handed out as `&mut`); the rebuilt Arc is never dropped (above).
        let shared = unsafe { Arc::from_raw(ptr) };
        let me = ManuallyDrop::new(ActorRef::new(shared, cell.id()));
        Self { shard: NonNull::from(shard), cell: NonNull::from(cell), sender: 0, me }
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

    /// This actor's own address, owned (to hand to another actor or move into a task). It
    /// takes a count on the runtime's shared state; to send to yourself or compare, borrow
    /// [`myself_ref`](Self::myself_ref), which costs nothing.
    pub fn myself(&self) -> ActorRef<A::Msg> {
        (*self.me).clone()
    }

    /// This actor's own address, borrowed for the handler call: no reference count touched
    /// (`ctx.myself_ref().tell(..)`, `ctx.myself_ref() == &other`). `.clone()` it to keep it.
    pub fn myself_ref(&self) -> &ActorRef<A::Msg> {
        &self.me
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

    /// `stop` with `reason` told to the watchers ([`integration::stop_because`](crate::integration::stop_because)).
    pub(crate) fn stop_because(&self, reason: StopReason) {
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

    /// Sends `msg` to `target` with this actor as the sender (`ctx.sender()` there). Returns
    /// what [`ActorRef::tell`] returns: the message back when it cannot be sent (the runtime
    /// has shut down); a target that has stopped makes it a dead letter, as for any tell.
    pub fn tell<M: Send + 'static>(&self, target: &ActorRef<M>, msg: M) -> Result<(), SendError<M>> {
        target.tell_with_sender(msg, self.id().as_u64())
    }

    /// Sends `msg` through an untyped address with this actor as the sender (a reply to
    /// `ctx.sender()` that expects one back, for instance). Returns what [`AnyRef::tell`]
    /// returns.
    pub fn tell_any<T: Send + 'static>(&self, target: &AnyRef, msg: T) -> Result<(), SendError<T>> {
        target.tell_with_sender(msg, self.id().as_u64())
    }

    /// Sends `msg` to `target` on behalf of the current message's sender, so the target's
    /// `ctx.sender()` is the original sender, not this actor. Returns what `tell` returns.
    pub fn forward<M: Send + 'static>(&self, target: &ActorRef<M>, msg: M) -> Result<(), SendError<M>> {
        target.tell_with_sender(msg, self.sender)
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
    /// when the actor stops or restarts. It may hold non-`Send` data. (Actors are spawned with
    /// `spawn_child`; this spawns a task.)
    pub fn spawn_task(&self, fut: impl Future<Output = ()> + 'static) {
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

    /// Former name of [`spawn_task`](Self::spawn_task).
    #[doc(hidden)]
    #[deprecated(note = "renamed `spawn_task`: `spawn` means an actor everywhere else")]
    pub fn spawn(&self, fut: impl Future<Output = ()> + 'static) {
        self.spawn_task(fut);
    }

    /// Asks `target`, the same builder as [`ActorRef::ask`]: set a timeout if the runtime's
    /// `ask_timeout` does not suit, then [`deliver`](CtxAsk::deliver) the outcome to this
    /// actor as a message. The handler does not wait: the answer arrives as a later message.
    ///
    /// ```ignore
    /// ctx.ask(&store, StoreMsg::Get).timeout(Duration::from_millis(50)).deliver(Msg::Got);
    /// ```
    pub fn ask<M, T>(&self, target: &ActorRef<M>, make: impl FnOnce(crate::Reply<T>) -> M) -> CtxAsk<'_, A, T>
    where
        M: Send + 'static,
        T: Send + 'static,
    {
        CtxAsk { ctx: self, pending: target.ask(make) }
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
    /// bottom of the stack). Akka's and Proto.Actor's `become`, a reserved word in Rust.
    pub fn become_behavior(
        &self,
        b: impl Fn(&mut A, &mut Ctx<A>, A::Msg) -> Result<(), ActorError> + 'static,
    ) {
        let b: Rc<crate::cell::Behavior<A>> = Rc::new(b);
        self.cell().set_behaviors(|s| {
            s.pop();
            s.push(b)
        });
    }

    /// Former name of [`become_behavior`](Self::become_behavior).
    #[doc(hidden)]
    #[deprecated(note = "renamed `become_behavior` (no raw identifier)")]
    pub fn r#become(&self, b: impl Fn(&mut A, &mut Ctx<A>, A::Msg) -> Result<(), ActorError> + 'static) {
        self.become_behavior(b);
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

/// An ask made from a handler ([`Ctx::ask`]): choose the timeout, then say which message of
/// this actor carries the outcome.
#[must_use = "an ask from a handler is sent by `deliver`"]
pub struct CtxAsk<'a, A: Actor, T: Send + 'static> {
    ctx: &'a Ctx<A>,
    pending: Pending<T>,
}

impl<A: Actor, T: Send + 'static> CtxAsk<'_, A, T> {
    /// Gives up after `d` (instead of the runtime's `ask_timeout`): the outcome is then
    /// `Err(AskError::Timeout)` and a later answer is a dead letter.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.pending = self.pending.timeout(d);
        self
    }

    /// Sends the ask; its outcome comes back to this actor as the message `map` builds. The
    /// wait is tied to this actor's life (a task of [`Ctx::spawn_task`]): if the actor stops or
    /// restarts first, nothing is delivered.
    pub fn deliver(self, map: impl FnOnce(Result<T, AskError>) -> A::Msg + 'static) {
        let pending = self.pending;
        let me = self.ctx.myself();
        self.ctx.spawn_task(async move {
            let r = pending.await;
            // This actor is alive while the task runs (the task ends with it).
            let _ = me.tell(map(r));
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::{Actor, ActorError, Ctx, Idle, Runtime, Shards};
    use std::sync::{mpsc, Arc};
    use std::time::Duration;

    /// Reports the runtime's reference count around borrowing and owning its own address.
    struct Me(mpsc::Sender<(usize, usize, usize, bool)>);
    impl Actor for Me {
        type Msg = ();
        fn receive(&mut self, ctx: &mut Ctx<Self>, _: ()) -> Result<(), ActorError> {
            let count = |ctx: &Ctx<Self>| Arc::strong_count(&ctx.shard().shared);
            let before = count(ctx);
            let mut same = true;
            for _ in 0..100 {
                same &= ctx.myself_ref().id() == ctx.id();
            }
            let borrowed = count(ctx);
            let owned = ctx.myself();
            let with_owned = count(ctx);
            same &= &owned == ctx.myself_ref();
            drop(owned);
            self.0.send((before, borrowed, with_owned, same)).ok();
            Ok(())
        }
    }

    #[test]
    fn myself_ref_lends_the_address_without_touching_the_reference_count() {
        let rt = Runtime::builder().shards(Shards::Count(1)).idle(Idle::Park).build().unwrap();
        let (tx, rx) = mpsc::channel();
        let me = rt.spawn(move || Me(tx.clone())).unwrap();
        me.tell(()).unwrap();
        let (before, borrowed, with_owned, same) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(same, "the borrowed address is the actor's own");
        assert_eq!(borrowed, before, "borrowing took no count");
        assert_eq!(with_owned, before + 1, "an owned address takes one");
        me.tell(()).unwrap();
        let (after, ..) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(after, before, "nothing was lost or leaked between the calls");
        rt.shutdown().unwrap();
    }
}
