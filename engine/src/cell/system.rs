//! The system lane: stop and kill, restarts and resumes, watches, children, metrics and
//! passivation. It runs before any user message of the turn.

use super::ext::{insert_once, remove};
use super::{ActorCell, Life, Outcome, SystemMsg, CHECKED, CHILDREN_STOPPING, SUSPENDED};
use crate::actor::Actor;
use crate::ask::Reply;
use crate::context::Ctx;
use crate::shard::Shard;
use crate::signal::{Signal, StopReason};
use crate::supervision::{Cause, Directive, Failure, Phase};
use crate::timers::{deadline_after, TimerAction};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

impl<A: Actor> ActorCell<A> {
    /// Runs the system lane. `Some` when the turn ends here. Out of line: most turns have
    /// no system message, and the turn's hot loop stays small.
    #[cold]
    #[inline(never)]
    pub(super) fn run_system(&self, shard: &Shard) -> Option<Outcome> {
        let h = &self.mbox.hdr;
        while let Some(sys) = h.pop_system() {
            match sys {
                SystemMsg::Stop(w) => {
                    self.add_waiter(w);
                    if h.life() == Life::Running {
                        self.begin_stopping(shard, StopReason::Stopped);
                        if h.flag(SUSPENDED) {
                            // A suspended actor cannot drain its mailbox.
                            return Some(Outcome::Finalize);
                        }
                    }
                }
                SystemMsg::Kill(w) => {
                    self.add_waiter(w);
                    self.ext().stop_reason = StopReason::Killed;
                    return Some(Outcome::Finalize);
                }
                SystemMsg::Restart(w) => {
                    if h.life() == Life::Running && self.restart(shard).is_err() {
                        self.add_waiter(w);
                        return Some(Outcome::Finalize);
                    }
                    if let Some(w) = w {
                        w.complete(());
                    }
                }
                SystemMsg::BackoffRestart => {
                    if h.life() == Life::Running && h.flag(SUSPENDED) && self.restart(shard).is_err() {
                        return Some(Outcome::Finalize);
                    }
                }
                SystemMsg::Resume => {
                    if h.flag(SUSPENDED) {
                        self.resume(shard);
                    }
                }
                SystemMsg::Watch(w) => {
                    insert_once(&mut self.ext().watchers, w);
                }
                SystemMsg::Unwatch(w) => {
                    remove(&mut self.ext().watchers, w);
                }
                SystemMsg::Terminated { id, reason } => {
                    if h.flag(SUSPENDED) || h.started.get() != Some(true) {
                        self.ext().deferred.push(SystemMsg::Terminated { id, reason });
                        continue;
                    }
                    if !remove(&mut self.ext().watching, id) {
                        continue;
                    }
                    if let Some(o) = self.signal(shard, Signal::Terminated { id, reason }) {
                        return Some(o);
                    }
                }
                SystemMsg::ChildTerminated(c) => {
                    let mut e = self.ext();
                    remove(&mut e.children, c);
                    remove(&mut e.escalated, c);
                }
                SystemMsg::ChildFailed(f) => {
                    if h.life() != Life::Running {
                        continue; // stopping: the child is being stopped anyway
                    }
                    self.ext().escalated.push(f.actor);
                    let f =
                        Failure { actor: h.id, origin: f.origin, phase: Phase::Escalated, cause: f.cause };
                    return Some(self.fail_with(shard, f, false));
                }
                SystemMsg::Siblings { from, directive } => {
                    for c in self.children().into_iter().filter(|c| *c != from) {
                        match directive {
                            Directive::Restart => shard.send_system(c, SystemMsg::Restart(None)),
                            Directive::Stop => shard.send_system(c, SystemMsg::Stop(None)),
                            Directive::Resume | Directive::Escalate => {}
                        }
                    }
                }
                SystemMsg::Metrics(r) => {
                    let mut m = self.metrics();
                    m.uptime = shard.uptime_of(h.id);
                    r.complete(m);
                }
                SystemMsg::PassivationCheck => self.check_passivation(shard),
                SystemMsg::DrainExpired => {
                    if h.life() == Life::Stopping {
                        tracing::warn!(actor = %h.id, left = self.mbox.len(), "stop timeout: what is still queued is dropped");
                        return Some(Outcome::Finalize);
                    }
                }
                SystemMsg::ClosureFailed(phase, cause) => {
                    if h.life() == Life::Running {
                        return Some(self.fail(shard, phase, cause));
                    }
                }
            }
        }
        None
    }

    fn add_waiter(&self, w: Option<Reply<()>>) {
        if let Some(w) = w {
            self.ext().waiters.push(w);
        }
    }

    /// Delivers a signal to the actor's `signal` handler. `Some` when it failed.
    fn signal(&self, shard: &Shard, sig: Signal) -> Option<Outcome> {
        let mut ctx = Ctx::new(shard, self);
        // SAFETY: the dispatcher runs one cell at a time and never re-enters it; no other
        // reference to the state exists during this call.
        let actor = unsafe { &mut *self.actor.get() };
        match catch_unwind(AssertUnwindSafe(|| actor.signal(&mut ctx, sig))) {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(self.fail(shard, Phase::Signal, Cause::Error(e))),
            Err(p) => Some(self.fail(shard, Phase::Signal, Cause::Panic(p))),
        }
    }

    /// Puts signals held during a suspension back into the lane.
    pub(super) fn redeliver_deferred(&self) {
        if self.ext_with(|e| !e.deferred.is_empty()).unwrap_or(false) {
            let held = std::mem::take(&mut self.ext().deferred);
            for m in held {
                self.mbox.hdr.push_system(m);
            }
        }
    }

    /// Stops accepting messages; what is queued is still handled, within the stop timeout.
    pub(super) fn begin_stopping(&self, shard: &Shard, reason: StopReason) {
        let h = &self.mbox.hdr;
        h.set_life(Life::Stopping);
        if reason != StopReason::Stopped {
            self.ext().stop_reason = reason;
        }
        tracing::debug!(actor = %h.id, ?reason, "stopping");
        shard.slots().mark_dead(h.id.slot(), h.id.gen());
        // Nothing to drain and no child to wait for: the stop ends in this turn, so there is no
        // deadline to keep (a stop of many idle actors, as at shutdown, allocates nothing per
        // actor: no extension state, no timer).
        if self.mbox.is_empty() && !self.ext_with(|e| !e.children.is_empty()).unwrap_or(false) {
            return;
        }
        let deadline = shard.stop_deadline_for(h.id);
        self.ext().stop_deadline = Some(deadline);
        h.set_flag(CHECKED, true);
    }

    /// A stopping actor with an empty mailbox: children first, then finalize.
    #[cold]
    pub(super) fn finish_stopping(&self, shard: &Shard) -> Outcome {
        let children = self.children();
        if children.is_empty() {
            return Outcome::Finalize;
        }
        let h = &self.mbox.hdr;
        if !h.flag(CHILDREN_STOPPING) {
            h.set_flag(CHILDREN_STOPPING, true);
            for c in children {
                shard.send_system(c, SystemMsg::Stop(None));
            }
        }
        // Each child's `ChildTerminated` wakes this actor again.
        self.wait_for_system()
    }

    /// Starts the idle clock (after `started`), once.
    pub(super) fn arm_passivation(&self, shard: &Shard) {
        let mut e = self.ext();
        let Some(d) = e.birth.passivate else { return };
        let now = Instant::now();
        e.last_active = Some(now);
        if !e.passivation_armed {
            e.passivation_armed = true;
            shard.add_timer(deadline_after(now, d), TimerAction::Passivate(self.id()));
        }
    }

    /// The idle timer fired: passivate if idle long enough, else check again when it could be.
    fn check_passivation(&self, shard: &Shard) {
        let h = &self.mbox.hdr;
        let now = Instant::now();
        let mut e = self.ext();
        e.passivation_armed = false;
        let Some(d) = e.birth.passivate else { return };
        if h.life() != Life::Running {
            return;
        }
        let last = e.last_active.unwrap_or(now);
        let busy = h.flag(SUSPENDED) || !self.mbox.is_empty();
        if busy || now.duration_since(last) < d {
            let at = deadline_after(if busy { now } else { last }, d);
            e.passivation_armed = true;
            shard.add_timer(at, TimerAction::Passivate(h.id));
            return;
        }
        drop(e);
        tracing::debug!(actor = %h.id, idle = ?now.duration_since(last), "passivating");
        self.begin_stopping(shard, StopReason::Passivated);
    }
}
