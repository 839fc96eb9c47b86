//! Last rites of an actor: remaining children killed, tasks cancelled, `stopped`, leftovers to
//! dead letters, watchers and parent told, events published.

use super::{ActorCell, Life, SystemMsg};
use crate::actor::Actor;
use crate::ask::Reply;
use crate::context::Ctx;
use crate::events::Event;
use crate::metrics::DeadLetterReason;
use crate::shard::Shard;
use crate::signal::StopReason;
use std::panic::{catch_unwind, AssertUnwindSafe};

impl<A: Actor> ActorCell<A> {
    pub(super) fn finalize_cell(&self, shard: &Shard) -> Vec<Reply<()>> {
        let h = &self.mbox.hdr;
        let id = h.id;
        h.set_life(Life::Dead);
        shard.slots().mark_dead(id.slot(), id.gen());
        // Children still there (kill, failure, stop timeout) go first.
        for c in self.children() {
            shard.send_system(c, SystemMsg::Kill(None));
        }
        if let Some(t) = self.ext_with(|e| e.tasks.clone()).flatten() {
            t.cancel_all();
        }
        if h.started.get() == Some(true) {
            let mut ctx = Ctx::new(shard, self);
            // SAFETY: the actor is not running (finalize is called by the dispatcher between
            // turns), so this is the only reference to the state.
            let actor = unsafe { &mut *self.actor.get() };
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| actor.stopped(&mut ctx))) {
                tracing::error!(actor = %id, panic = super::panic_text(&p), "stopped panicked");
            }
        }
        let ext = self.ext.borrow_mut().take();
        let mut dropped = 0u64;
        while let Some(m) = self.mbox.pop() {
            drop(m);
            dropped += 1;
        }
        // What a custom queue still holds after it panicked.
        dropped += self.mbox.discard_queue() as u64;
        let reason = ext.as_ref().map_or(StopReason::Stopped, |e| e.stop_reason);
        let mut waiters = Vec::new();
        if let Some(mut e) = ext {
            dropped += e.stash.len() as u64;
            e.stash.clear();
            for w in e.watchers.drain(..) {
                shard.send_system(w, SystemMsg::Terminated { id, reason });
            }
            if let Some(p) = e.birth.parent {
                shard.send_system(p, SystemMsg::ChildTerminated(id));
            }
            for t in e.watching.drain(..) {
                shard.send_system(t, SystemMsg::Unwatch(id));
            }
            waiters = std::mem::take(&mut e.waiters);
        }
        shard.dead_letters(
            DeadLetterReason::ActorStopped,
            dropped,
            Some(id),
            std::any::type_name::<A::Msg>(),
        );
        while let Some(sys) = h.pop_system() {
            match sys {
                SystemMsg::Stop(Some(w)) | SystemMsg::Kill(Some(w)) | SystemMsg::Restart(Some(w)) => {
                    waiters.push(w)
                }
                SystemMsg::Watch(w) => shard.send_system(w, SystemMsg::Terminated { id, reason }),
                _ => {}
            }
        }
        let events = &shard.shared.events;
        if reason == StopReason::Passivated {
            events.publish(|| Event::ActorPassivated { id });
        }
        events.publish(|| Event::ActorStopped { id, reason });
        tracing::debug!(actor = %id, ?reason, "stopped");
        waiters
    }
}
