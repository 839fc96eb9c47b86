//! Running a future on a shard from a thread outside the runtime: [`Handle::block_on`], the
//! way a `main` that drives actors runs next to them, as `actix::System::block_on` or tokio's
//! `Runtime::block_on` do, instead of paying a cross-thread round trip for every ask; and
//! [`Handle::pipe_to`], a future whose output becomes an actor's message.

use super::Handle;
use crate::actor_ref::ActorRef;
use crate::any_ref::Address;
use crate::error::{AskError, SpawnError};
use crate::packet::{Deliver, Packet};
use crate::shard::{with_current, Shard};
use std::future::Future;
use std::time::Duration;

/// A future to start as a task on the shard it reaches; built there, so it need not be `Send`.
struct RunOn<F>(F);

impl<F, Fut> Deliver for RunOn<F>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    fn deliver(self, shard: &Shard, _: u64) {
        shard.spawn_task((self.0)())
    }
}

impl Handle {
    /// Runs the future `make` builds as a task on the first shard, and blocks this thread until
    /// it is done; its output. Inside, the future is on a shard: spawns are local or go over
    /// the rings, asks are awaited (`actor.ask(..).await`), and an ask of an actor on the same
    /// shard is a local delivery, not a round trip between threads. Built on the shard, the
    /// future need not be `Send`; its output must be.
    ///
    /// ```
    /// use corelane::{Actor, ActorError, Ctx, Reply, Runtime};
    ///
    /// struct Counter(u64);
    /// enum Msg { Add(u64), Get(Reply<u64>) }
    /// impl Actor for Counter {
    ///     type Msg = Msg;
    ///     fn receive(&mut self, _: &mut Ctx<Self>, msg: Msg) -> Result<(), ActorError> {
    ///         match msg { Msg::Add(n) => self.0 += n, Msg::Get(r) => r.send(self.0) }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let rt = Runtime::builder().build()?;
    /// let handle = rt.handle().clone();
    /// let total = rt.block_on(move || async move {
    ///     let mut total = 0;
    ///     for _ in 0..100 {
    ///         let c = handle.spawn(|| Counter(0)).expect("spawn");
    ///         c.tell(Msg::Add(1)).expect("tell");
    ///         total += c.ask(Msg::Get).await.expect("ask");
    ///     }
    ///     total
    /// })?;
    /// assert_eq!(total, 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `WouldBlock` when called on a shard (spawn a task there instead); `Closed` when the
    /// runtime has shut down, or shuts down before the future is done.
    pub fn block_on<T, Fut>(&self, make: impl FnOnce() -> Fut + Send + 'static) -> Result<T, AskError>
    where
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        if with_current(|c| c.is_some()) {
            return Err(AskError::WouldBlock);
        }
        // No deadline: the future takes as long as it takes.
        let (reply, pending) = crate::ask::pair::<T>(&self.shared, Duration::MAX);
        let run = RunOn(move || async move { reply.send(make().await) });
        self.shared.inject_new(0, 0, run).map_err(|_| AskError::Closed)?;
        pending.wait().map_err(|e| match e {
            // The task was dropped unfinished: the shard shut down.
            AskError::NoReply => AskError::Closed,
            e => e,
        })
    }

    /// Runs `fut` on `target`'s shard and sends its output to `target` as a message:
    /// [`Ctx::pipe_to`](crate::Ctx::pipe_to) for code outside any actor (a plain thread, a task
    /// of another executor). The output is a dead letter if `target` has stopped by then; map
    /// an error into the message to deliver it too.
    ///
    /// ```
    /// use corelane::{Actor, ActorError, Ctx, Runtime};
    /// use std::sync::mpsc;
    ///
    /// struct Collector(mpsc::Sender<u64>);
    /// impl Actor for Collector {
    ///     type Msg = u64;
    ///     fn receive(&mut self, _: &mut Ctx<Self>, n: u64) -> Result<(), ActorError> {
    ///         self.0.send(n).ok();
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let rt = Runtime::builder().build()?;
    /// let (tx, rx) = mpsc::channel();
    /// let c = rt.spawn(move || Collector(tx.clone()))?;
    /// rt.pipe_to(&c, async { 6 * 7 })?;
    /// assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(5))?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `Closed` when the runtime has shut down (the future is dropped without running).
    pub fn pipe_to<M: Send + 'static>(
        &self,
        target: &ActorRef<M>,
        fut: impl Future<Output = M> + Send + 'static,
    ) -> Result<(), SpawnError> {
        let to = target.actor_id().shard();
        let target = target.clone();
        let run = RunOn(move || async move {
            // A stopped target makes the output a dead letter; a closed runtime drops it.
            let _ = target.tell(fut.await);
        });
        self.run_on(to, run).map_err(|()| SpawnError::Closed)
    }

    /// Has shard `to` deliver `work`: at once when called on that shard, over the ring from
    /// another shard, through the injector from any other thread. `Err` once the runtime has
    /// shut down (the work is dropped).
    pub(crate) fn run_on(&self, to: usize, work: impl Deliver) -> Result<(), ()> {
        with_current(|cur| match cur {
            Some(s) if s.belongs_to(&self.shared) && s.idx == to => {
                work.deliver(s, 0);
                Ok(())
            }
            Some(s) if s.belongs_to(&self.shared) => {
                s.push_outbound(to, Packet::new(0, work));
                Ok(())
            }
            _ => self.shared.inject_new(to, 0, work).map(|_| ()).map_err(drop),
        })
    }
}
