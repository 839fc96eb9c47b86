//! Waiting, from any thread, until a set of actors has stopped ([`Handle::stopped`]): a small
//! actor watches them all and answers once the last one is gone.

use super::Handle;
use crate::actor::{Actor, ActorError};
use crate::any_ref::{Address, AnyRef};
use crate::ask::{Pending, Reply};
use crate::context::Ctx;
use crate::scheduler::Scheduled;
use crate::signal::Signal;
use crate::spawn_options::SpawnOptions;
use std::time::Duration;

/// How often a waiter checks whether whoever waits for it has given up.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// Watches `left` actors; answers when the last has stopped, or stops when nobody waits.
struct Waiter {
    watch: Vec<AnyRef>,
    left: usize,
    done: Option<Reply<()>>,
    check: Option<Scheduled>,
}

/// The waiter's own tick: is anybody still waiting?
struct Check;

impl Waiter {
    fn finish(&mut self, ctx: &mut Ctx<Self>) {
        if let Some(r) = self.done.take() {
            r.send(());
        }
        if let Some(c) = self.check.take() {
            c.cancel();
        }
        ctx.stop();
    }
}

impl Actor for Waiter {
    type Msg = Check;

    fn started(&mut self, ctx: &mut Ctx<Self>) -> Result<(), ActorError> {
        for a in std::mem::take(&mut self.watch) {
            ctx.watch(&a);
        }
        if self.left == 0 {
            self.finish(ctx);
        } else {
            let me = ctx.myself();
            self.check = Some(ctx.schedule(CHECK_EVERY, CHECK_EVERY, &me, || Check));
        }
        Ok(())
    }

    fn receive(&mut self, ctx: &mut Ctx<Self>, _: Check) -> Result<(), ActorError> {
        if self.done.as_ref().is_none_or(Reply::is_canceled) {
            self.finish(ctx);
        }
        Ok(())
    }

    fn signal(&mut self, ctx: &mut Ctx<Self>, sig: Signal) -> Result<(), ActorError> {
        let Signal::Terminated { .. } = sig;
        self.left = self.left.saturating_sub(1);
        if self.left == 0 {
            self.finish(ctx);
        }
        Ok(())
    }
}

impl Handle {
    /// Completes when every actor in `actors` has stopped (for whatever [`StopReason`](crate::StopReason),
    /// including actors already gone); wait for it on a plain thread
    /// (`rt.stopped(refs).timeout(d).wait()`) or await it on a shard. It is a [`Pending`] like
    /// an ask's: its timeout is the runtime's `ask_timeout` unless set, and giving up (a
    /// timeout, dropping it) stops the watching too. It does not stop anything itself.
    ///
    /// ```
    /// use corelane::{Actor, ActorError, Ctx, Runtime};
    /// use std::time::Duration;
    ///
    /// struct Worker;
    /// impl Actor for Worker {
    ///     type Msg = ();
    ///     fn receive(&mut self, ctx: &mut Ctx<Self>, _: ()) -> Result<(), ActorError> {
    ///         ctx.stop(); // one job, then done
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let rt = Runtime::builder().build()?;
    /// let workers: Vec<_> = (0..4).map(|_| rt.spawn(|| Worker)).collect::<Result<_, _>>()?;
    /// for w in &workers {
    ///     w.tell(())?;
    /// }
    /// rt.stopped(&workers).timeout(Duration::from_secs(5)).wait()?;
    /// assert!(workers.iter().all(|w| !w.is_alive()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stopped<'a, T: Address + 'a>(&self, actors: impl IntoIterator<Item = &'a T>) -> Pending<()> {
        let mut ids: Vec<_> = actors.into_iter().map(Address::actor_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let watch: Vec<AnyRef> = ids.into_iter().map(|id| AnyRef::new(self.shared.clone(), id)).collect();
        let (reply, pending) = crate::ask::pair(&self.shared, self.shared.cfg.ask_timeout);
        let left = watch.len();
        let mut waiter = Some(Waiter { watch, left, done: Some(reply), check: None });
        let opts = SpawnOptions::new().never_passivate();
        // Built once: a waiter that fails is not rebuilt (it has nothing to fail on).
        let spawned = self.spawn_with(opts, move || {
            waiter.take().unwrap_or(Waiter { watch: Vec::new(), left: 0, done: None, check: None })
        });
        match spawned {
            Ok(_) => pending,
            Err(_) => Pending::ready(Err(crate::AskError::Closed)),
        }
    }
}
