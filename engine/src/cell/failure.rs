//! Failures: suspend, ask the supervisor, apply its directive (resume, restart with limits and
//! backoff, stop, escalate), and the restart itself.

use super::{ActorCell, Life, Outcome, SystemMsg, SUSPENDED};
use crate::actor::Actor;
use crate::context::Ctx;
use crate::events::Event;
use crate::metrics::DeadLetterReason;
use crate::shard::Shard;
use crate::signal::StopReason;
use crate::supervision::{Cause, Directive, Failure, Phase, RestartPlan, Strategy};
use crate::timers::{deadline_after, TimerAction};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

impl<A: Actor> ActorCell<A> {
    /// `receive` (or a behavior) failed: the message it was handling is lost.
    #[cold]
    #[inline(never)]
    pub(super) fn fail_in_turn(&self, shard: &Shard, cause: Cause) -> Outcome {
        let id = self.id();
        self.fail_with(shard, Failure { actor: id, origin: id, phase: Phase::Receive, cause }, true)
    }

    /// `started` or `signal` failed.
    pub(super) fn fail(&self, shard: &Shard, phase: Phase, cause: Cause) -> Outcome {
        let id = self.id();
        self.fail_with(shard, Failure { actor: id, origin: id, phase, cause }, false)
    }

    /// Suspends the actor and applies its supervisor's directive.
    pub(super) fn fail_with(&self, shard: &Shard, f: Failure, lost_message: bool) -> Outcome {
        let h = &self.mbox.hdr;
        if h.life() != Life::Running {
            tracing::warn!(actor = %h.id, failure = %f, "failed while stopping; stopping now");
            if lost_message {
                self.lost_message(shard);
            }
            return Outcome::Finalize;
        }
        self.set_suspended(shard, true);
        // A child whose parent set no strategy gets the default one; a top-level actor, the
        // runtime's.
        let (sup, parent) =
            self.ext_with(|e| (e.birth.supervised_by.clone(), e.birth.parent)).unwrap_or_default();
        let sup = sup.unwrap_or_else(|| match parent {
            Some(_) => shard.shared.child_supervisor.clone(),
            None => shard.shared.supervisor.clone(),
        });
        let d = sup.decide(&f);
        tracing::warn!(actor = %h.id, failure = %f, directive = ?d, "actor failed");
        if lost_message && d != Directive::Resume {
            self.lost_message(shard);
        }
        if sup.strategy() == Strategy::AllForOne && matches!(d, Directive::Restart | Directive::Stop) {
            if let Some(p) = parent {
                shard.send_system(p, SystemMsg::Siblings { from: h.id, directive: d });
            }
        }
        match d {
            Directive::Resume => {
                self.resume(shard);
                Outcome::More
            }
            Directive::Restart => {
                let plan = self.ext().window.plan(&sup, Instant::now());
                match plan {
                    RestartPlan::Now => match self.restart(shard) {
                        Ok(()) => Outcome::More,
                        Err(()) => Outcome::Finalize,
                    },
                    RestartPlan::After(delay) => {
                        tracing::info!(actor = %h.id, ?delay, "restarting after backoff");
                        shard.add_timer(deadline_after(Instant::now(), delay), TimerAction::Restart(h.id));
                        self.wait_for_system()
                    }
                    RestartPlan::LimitReached => {
                        tracing::warn!(actor = %h.id, "restart limit reached; stopping");
                        self.ext().stop_reason = StopReason::Failed;
                        Outcome::Finalize
                    }
                }
            }
            Directive::Stop => {
                self.ext().stop_reason = StopReason::Failed;
                Outcome::Finalize
            }
            Directive::Escalate => {
                let text = f.to_string();
                match parent {
                    Some(p) => {
                        tracing::warn!(actor = %h.id, parent = %p, "escalated; suspended until the parent decides");
                        shard.send_system(p, SystemMsg::ChildFailed(f));
                    }
                    None => {
                        tracing::error!(actor = %h.id, "escalated with no supervisor above; suspended until restarted or stopped")
                    }
                }
                shard.shared.events.publish(|| Event::ActorSuspended { id: h.id, failure: text });
                self.wait_for_system()
            }
        }
    }

    /// The message whose handler failed is a dead letter.
    fn lost_message(&self, shard: &Shard) {
        self.ext().dead_letters += 1;
        shard.dead_letters(
            DeadLetterReason::HandlerFailed,
            1,
            Some(self.id()),
            std::any::type_name::<A::Msg>(),
        );
    }

    pub(super) fn set_suspended(&self, shard: &Shard, on: bool) {
        let h = &self.mbox.hdr;
        h.set_flag(SUSPENDED, on);
        shard.slots().set_suspended(h.id.slot(), h.id.gen(), on);
    }

    /// Lifts a suspension with the state kept; children that escalated resume too.
    pub(super) fn resume(&self, shard: &Shard) {
        let h = &self.mbox.hdr;
        self.set_suspended(shard, false);
        if h.started.get() == Some(false) {
            h.started.set(Some(true)); // resumed after a failed `started`: it counts as started
        }
        let escalated = self.ext_with(|e| !e.escalated.is_empty()).unwrap_or(false);
        if escalated {
            for c in std::mem::take(&mut self.ext().escalated) {
                shard.send_system(c, SystemMsg::Resume);
            }
        }
        self.redeliver_deferred();
        tracing::info!(actor = %h.id, "resumed");
    }

    /// Rebuilds the actor from its factory: local tasks cancelled, children stopped, `stopped`
    /// on the old instance, a new instance whose `started` runs before the next message. The
    /// mailbox is kept; stashed messages go back to its front; behaviors are cleared.
    /// `Err` when the factory panicked (the actor must stop).
    pub(super) fn restart(&self, shard: &Shard) -> Result<(), ()> {
        let h = &self.mbox.hdr;
        if let Some(t) = self.ext_with(|e| e.tasks.clone()).flatten() {
            t.cancel_all();
        }
        for c in self.children() {
            shard.send_system(c, SystemMsg::Stop(None));
        }
        if h.started.get() == Some(true) {
            let mut ctx = Ctx::new(shard, self);
            // SAFETY: the actor is not running (the dispatcher is between handlers), so this is
            // the only reference to the state.
            let actor = unsafe { &mut *self.actor.get() };
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| actor.stopped(&mut ctx))) {
                tracing::error!(actor = %h.id, panic = super::panic_text(&p), "stopped panicked");
            }
        }
        h.started.set(Some(false));
        // SAFETY: only `restart` touches the factory, and the factory has no way back into
        // this cell (it gets no context), so this is the only reference while it runs.
        let factory = unsafe { &mut *self.factory.get() };
        let fresh = catch_unwind(AssertUnwindSafe(factory));
        match fresh {
            Ok(a) => {
                // SAFETY: as above; no reference to the old state exists.
                let old = std::mem::replace(unsafe { &mut *self.actor.get() }, a);
                drop(old);
            }
            Err(p) => {
                tracing::error!(actor = %h.id, panic = super::panic_text(&p), "factory panicked on restart; stopping");
                self.ext().stop_reason = StopReason::Failed;
                return Err(());
            }
        }
        h.started.set(None);
        self.set_behaviors(|b| b.clear());
        self.unstash(usize::MAX);
        let restarts = {
            let mut e = self.ext();
            e.restarts += 1;
            e.restarts
        };
        self.set_suspended(shard, false);
        self.redeliver_deferred();
        tracing::info!(actor = %h.id, restarts, "restarted");
        shard.shared.events.publish(|| Event::ActorRestarted { id: h.id, restarts });
        Ok(())
    }
}
