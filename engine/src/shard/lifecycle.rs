//! An actor's life on its shard: built in the slot its spawner reserved, stopped within the
//! stop timeout, finalized.

use super::*;

impl Shard {
    // ---- spawning --------------------------------------------------------------------------

    /// Builds an actor in a slot the spawner reserved on this shard.
    pub(crate) fn spawn_reserved<A: Actor>(
        &self,
        id: ActorId,
        mut factory: impl FnMut() -> A + 'static,
        birth: Option<Box<Birth>>,
    ) -> Result<(), SpawnError> {
        // Almost always nothing waits: look before hashing (a lookup in the empty map hashes the
        // key first, ~10 ns per spawn here).
        let held = {
            let mut pending = self.pending.borrow_mut();
            if pending.is_empty() {
                Vec::new()
            } else {
                pending.remove(&id.slot()).unwrap_or_default()
            }
        };
        let parent = birth.as_ref().and_then(|b| b.parent);
        let refuse = |held: Vec<Packet>, reason, err| {
            // A name given at spawn goes with it.
            self.shared.registry.remove_actor(id);
            self.slots().release(id.slot(), id.gen());
            // What waited for the build is answered as for an actor that is gone: a watcher
            // is told (it would otherwise never hear), a stop completes, the rest are dead
            // letters, each message of a batch counted.
            for p in held {
                match p.take::<SysMsg>() {
                    Ok(SysMsg(sys)) => self.system_to_absent(id, sys),
                    Err(p) => {
                        let (ty, n) = (p.type_name(), p.messages() as u64);
                        drop(p);
                        self.dead_letters(reason, n, Some(id), ty);
                    }
                }
            }
            // A parent that recorded this child hears that it is gone.
            if let Some(p) = parent {
                self.send_system(p, SystemMsg::ChildTerminated(id));
            }
            Err(err)
        };
        if self.shutting_down.get() && self.quiesced.get() && self.shared.all_quiesced() {
            return refuse(held, DeadLetterReason::RuntimeClosed, SpawnError::Closed);
        }
        // The actor and its mailbox (a custom kind builds its queue): user code, both.
        let kind = birth.as_ref().and_then(|b| b.mailbox.as_ref());
        let built =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (factory(), Mailbox::new(id, kind))));
        let (actor, mbox) = match built {
            Ok(built) => built,
            Err(p) => {
                let err = SpawnError::FactoryPanicked(crate::cell::panic_text(&p));
                return refuse(held, DeadLetterReason::ActorStopped, err);
            }
        };
        let cell: Box<dyn ErasedCell> = Box::new(ActorCell::new(mbox, actor, Box::new(factory), birth));
        {
            let mut slab = self.slab.borrow_mut();
            let slot = id.slot() as usize;
            if slab.len() <= slot {
                slab.resize_with(slot + 1, || Entry { gen: u32::MAX, born: 0, cell: None });
            }
            slab[slot] = Entry { gen: id.gen(), born: self.birth_tick(), cell: Some(cell) };
        }
        bump(&self.mine().stats.actors, 1);
        // Queue it so `started` runs before any message.
        let c = self.cell(id).expect("just inserted");
        // SAFETY: just inserted into this thread's slab.
        self.schedule(unsafe { &*c }.header());
        for p in held {
            p.deliver(self);
        }
        if self.shutting_down.get() {
            // Accepted before the shutdown reached this shard (or a running parent's child):
            // it starts, handles what was sent to it, and stops with the rest.
            if self.quiesced.replace(false) {
                self.shared.shard_unquiesced();
            }
            self.deliver_system(id, SystemMsg::Stop(None));
        }
        Ok(())
    }

    /// A stopping actor with messages to drain or children to wait for gets `stop_timeout`:
    /// returns the deadline, which its turns check before each message; the timer covers an
    /// actor that gets no turn (waiting for its children).
    pub(crate) fn stop_deadline_for(&self, id: ActorId) -> Instant {
        let at = deadline_after(Instant::now(), self.shared.cfg.stop_timeout);
        self.timers.borrow_mut().add(at, TimerAction::StopDeadline(id));
        at
    }

    pub(super) fn stop_deadline(&self, id: ActorId) {
        if let Some(c) = self.cell(id) {
            // SAFETY: live cell owned by this thread's slab.
            if unsafe { &*c }.header().life() == Life::Stopping {
                tracing::warn!(actor = %id, "stop timeout: dropping what is still queued");
                self.finalize(id);
            }
        }
    }

    /// Takes the cell out of the slab, runs its last rites and frees the slot.
    pub(super) fn finalize(&self, id: ActorId) {
        let cell = {
            let mut slab = self.slab.borrow_mut();
            match slab.get_mut(id.slot() as usize) {
                Some(e) if e.gen == id.gen() => e.cell.take(),
                _ => None,
            }
        };
        let Some(cell) = cell else { return };
        let waiters = cell.finalize(self);
        drop(cell);
        self.shared.registry.remove_actor(id);
        self.slots().release(id.slot(), id.gen());
        unbump(&self.mine().stats.actors, 1);
        // Told last: whoever waits for the stop sees the name and slot already gone.
        for w in waiters {
            w.complete(());
        }
        self.maybe_quiesce();
    }
}

#[cfg(all(test, not(corelane_loom)))]
mod tests {
    use crate::{Actor, ActorError, ActorRef, Ctx, Pending, Reply, Runtime, Shards};
    use std::time::Duration;

    /// Answers whether its shard's timers are empty; told to, sends a target ten messages and
    /// stops it in the same turn, and hands back the stop's outcome to wait for.
    struct Probe;
    enum ProbeMsg {
        TimersEmpty(Reply<bool>),
        FillAndStop(ActorRef<u32>, Reply<Pending<()>>),
    }
    impl Actor for Probe {
        type Msg = ProbeMsg;
        fn receive(&mut self, _: &mut Ctx<Self>, m: ProbeMsg) -> Result<(), ActorError> {
            match m {
                ProbeMsg::TimersEmpty(r) => {
                    r.send(crate::shard::with_current(|s| s.is_some_and(|s| s.timers.borrow().is_empty())))
                }
                ProbeMsg::FillAndStop(target, r) => {
                    for i in 0..10 {
                        target.tell(i).unwrap();
                    }
                    r.send(target.stop());
                }
            }
            Ok(())
        }
    }

    struct Idle;
    impl Actor for Idle {
        type Msg = u32;
        fn receive(&mut self, _: &mut Ctx<Self>, _: u32) -> Result<(), ActorError> {
            Ok(())
        }
    }

    /// An actor stopped with nothing queued and no children ends in that turn and keeps no
    /// stop deadline (no timer, no extension state: a stop of many idle actors allocates
    /// nothing per actor); one stopped with messages queued still gets its deadline.
    #[test]
    fn only_a_stop_with_something_to_drain_arms_the_stop_deadline() {
        let rt = Runtime::builder()
            .shards(Shards::Count(1))
            .stop_timeout(Duration::from_secs(600))
            .build()
            .unwrap();
        let wait = Duration::from_secs(10);
        let probe = rt.spawn(|| Probe).unwrap();
        let timers_empty = || probe.ask(ProbeMsg::TimersEmpty).timeout(wait).wait().unwrap();
        assert!(timers_empty());
        let idle: Vec<_> = (0..100).map(|_| rt.spawn(|| Idle).unwrap()).collect();
        // Each has handled a message (and has its mailbox's buffer) before it is stopped.
        for a in &idle {
            a.tell(1).unwrap();
        }
        assert!(timers_empty());
        for a in &idle {
            a.stop().timeout(wait).wait().unwrap();
        }
        assert!(timers_empty(), "idle actors stopped without a deadline");
        let busy = rt.spawn(|| Idle).unwrap();
        let stopped = probe.ask(|r| ProbeMsg::FillAndStop(busy.clone(), r)).timeout(wait).wait().unwrap();
        stopped.timeout(wait).wait().unwrap();
        assert!(!busy.is_alive());
        assert!(!timers_empty(), "a stop with a backlog keeps its deadline");
        rt.shutdown().unwrap();
    }
}
