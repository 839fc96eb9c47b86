//! The scheduler: messages delivered later, at a fixed rate, or on a cron schedule.
//!
//! A scheduled delivery is a timer on the *target's* shard (in the shard's timer heap, fired by
//! its dispatcher), not on a global thread: scheduling sends the timer there once, and each firing
//! is a same-shard delivery. The handle and the timer share one allocation: cancelling sets its
//! flag, which the timer reads when it fires (a cancelled timer stays in the heap until then, and
//! delivers nothing). A delivery scheduled from
//! an actor (`Ctx::schedule_*`) is bound to that actor's life: it ends when the actor stops. Any
//! delivery ends when its target stops.
//!
//! Fixed rate re-arms at `first + k * interval`, so lateness of one tick does not shift the next
//! ones; when the shard falls behind by more than one interval, the missed ticks are skipped
//! (counted from the current time), not delivered in a burst.

use crate::actor_ref::ActorRef;
use crate::cell::SystemMsg;
use crate::context::Ctx;
use crate::cron::{Cron, CronError};
use crate::id::ActorId;
use crate::metrics::DeadLetterReason;
use crate::packet::Deliver;
use crate::runtime::{Handle, Shared};
use crate::shard::Shard;
use crate::supervision::{Cause, Phase};
use crate::timers::{deadline_after, TimerAction};
use crate::Actor;
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Shortest fixed-rate interval; shorter ones are raised to it (a zero interval would fire on
/// every dispatcher pass).
pub const MIN_INTERVAL: Duration = Duration::from_micros(100);

/// A scheduled delivery. Cloneable; `cancel` from any thread.
#[derive(Clone)]
pub struct Scheduled {
    delivery: Arc<dyn Flag>,
}

impl Scheduled {
    /// Stops it: no delivery happens after this returns (one already on its way may arrive).
    pub fn cancel(&self) {
        self.delivery.cancelled().store(true, Ordering::Release);
    }
    /// Whether it was cancelled, or ended because its target or owner stopped.
    pub fn is_cancelled(&self) -> bool {
        self.delivery.cancelled().load(Ordering::Acquire)
    }
}

impl std::fmt::Debug for Scheduled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduled").field("cancelled", &self.is_cancelled()).finish()
    }
}

/// The next firing of `schedule` after now, as an `Instant` (`None`: it never fires again).
fn next_cron(schedule: &Cron) -> Option<Instant> {
    let now = SystemTime::now();
    let next = schedule.after(now)?;
    let wait = next.duration_since(now).unwrap_or(Duration::ZERO);
    Some(deadline_after(Instant::now(), wait))
}

/// The fixed-rate tick after the one due at `due`, fired at `now`: on the grid
/// `first + k * interval` whatever the lateness; ticks more than one interval in the past are
/// skipped.
pub(crate) fn next_tick(due: Instant, interval: Duration, now: Instant) -> Instant {
    let mut next = deadline_after(due, interval);
    if deadline_after(next, interval) <= now {
        // Whole intervals between `next` and `now` (at least one; `now - next` is bounded by
        // the clock, so the product stays below it).
        let behind = (now - next).as_nanos() / interval.as_nanos().max(1);
        next += Duration::from_nanos((interval.as_nanos() * behind).min(u64::MAX as u128) as u64);
    }
    next
}

/// When a delivery fires again after firing at `now` (`None`: never).
trait Plan: Send + 'static {
    fn next(&mut self, now: Instant) -> Option<Instant>;
}

/// Fires once.
struct Once;
impl Plan for Once {
    fn next(&mut self, _: Instant) -> Option<Instant> {
        None
    }
}

/// Fixed rate on the grid `first + k * interval`.
struct Every {
    next: Instant,
    interval: Duration,
}
impl Plan for Every {
    fn next(&mut self, now: Instant) -> Option<Instant> {
        self.next = next_tick(self.next, self.interval, now);
        Some(self.next)
    }
}

impl Plan for Cron {
    fn next(&mut self, _: Instant) -> Option<Instant> {
        next_cron(self)
    }
}

/// One scheduled delivery, in one allocation shared by its handles (which read and set only
/// `cancelled`) and by the target shard's timer heap (through the one [`Armed`]).
struct Delivery<M, F, P> {
    cancelled: AtomicBool,
    target: ActorId,
    /// The actor whose life bounds this delivery (`target` when there is none).
    owner: ActorId,
    /// Made by the actor `owner` (which supervises its maker), not through a `Handle`.
    by_actor: bool,
    /// The message maker and the plan: touched only through the delivery's one `Armed`.
    run: UnsafeCell<(F, P)>,
    _m: PhantomData<fn() -> M>,
}

// SAFETY: `cancelled` is atomic; `run` is reached only by `Fire::fire`, which this module calls
// only from `Armed::fire`, and exactly one `Armed` (not `Clone`, taken by value) exists per
// delivery, so there is never more than one reference into `run`. `F` and `P` are `Send`, so
// whichever thread drops the last `Arc` may drop them.
unsafe impl<M, F: Send, P: Send> Sync for Delivery<M, F, P> {}

/// The cancel flag of a delivery, as its handles see it.
trait Flag: Send + Sync {
    fn cancelled(&self) -> &AtomicBool;
}
impl<M: Send + 'static, F: FnMut() -> M + Send + 'static, P: Plan> Flag for Delivery<M, F, P> {
    fn cancelled(&self) -> &AtomicBool {
        &self.cancelled
    }
}

/// A delivery as the target shard's timer heap sees it. Only `Armed::fire` calls `fire`.
trait Fire: Send + Sync {
    /// Delivers (unless cancelled or ended) and says when to fire again.
    fn fire(&self, shard: &Shard, now: Instant) -> Option<Instant>;
}

impl<M: Send + 'static, F: FnMut() -> M + Send + 'static, P: Plan> Fire for Delivery<M, F, P> {
    fn fire(&self, shard: &Shard, now: Instant) -> Option<Instant> {
        if self.cancelled.load(Ordering::Acquire) {
            return None;
        }
        let live = |id: ActorId| shard.shared.shards[id.shard()].slots.is_live(id.slot(), id.gen());
        if !live(self.target) || (self.owner != self.target && !live(self.owner)) {
            self.cancelled.store(true, Ordering::Release);
            return None;
        }
        // SAFETY: called only from `Armed::fire`, which holds the delivery's one `Armed` by
        // value: no other reference into `run` exists (see the `Sync` impl).
        let (make, plan) = unsafe { &mut *self.run.get() };
        // The maker is user code: a panic ends this schedule and goes to the supervision of the
        // actor that made it, or is counted (it must not take the shard down).
        let msg = match catch_unwind(AssertUnwindSafe(make)) {
            Ok(m) => m,
            Err(p) => {
                self.cancelled.store(true, Ordering::Release);
                self.maker_panicked(shard, p);
                return None;
            }
        };
        shard.deliver_user(self.target, msg, 0);
        plan.next(now)
    }
}

impl<M: Send + 'static, F, P> Delivery<M, F, P> {
    #[cold]
    fn maker_panicked(&self, shard: &Shard, p: Box<dyn std::any::Any + Send>) {
        tracing::error!(
            target_actor = %self.target,
            panic = crate::cell::panic_text(&p),
            "a scheduled message's maker panicked; the schedule ends"
        );
        if self.owner != self.target || self.by_actor {
            shard.send_system(self.owner, SystemMsg::ClosureFailed(Phase::Scheduled, Cause::Panic(p)));
        } else {
            drop(p);
            let ty = std::any::type_name::<M>();
            shard.dead_letters(DeadLetterReason::HandlerFailed, 1, Some(self.target), ty);
        }
    }
}

/// The timer heap's share of a scheduled delivery: exactly one per delivery.
pub(crate) struct Armed(Arc<dyn Fire>);

impl Armed {
    /// Fires on the target's shard; returns itself with the next instant when it repeats.
    pub(crate) fn fire(self, shard: &Shard, now: Instant) -> Option<(Instant, Armed)> {
        let at = self.0.fire(shard, now)?;
        Some((at, self))
    }
}

/// A timer on its way to its target's shard.
struct ArmTimer(Instant, Armed);
impl Deliver for ArmTimer {
    fn deliver(self, shard: &Shard, _: u64) {
        shard.add_timer(self.0, TimerAction::Task(self.1));
    }
}

fn arm<M: Send + 'static>(
    shared: &Arc<Shared>,
    target: &ActorRef<M>,
    at: Instant,
    make: impl FnMut() -> M + Send + 'static,
    plan: impl Plan,
    owner: Option<ActorId>,
) -> Scheduled {
    let delivery = Arc::new(Delivery {
        cancelled: AtomicBool::new(false),
        target: target.id(),
        owner: owner.unwrap_or(target.id()),
        by_actor: owner.is_some(),
        run: UnsafeCell::new((make, plan)),
        _m: PhantomData,
    });
    let handle = Scheduled { delivery: delivery.clone() };
    if shared.route(target.id().shard(), target.id().as_u64(), ArmTimer(at, Armed(delivery))).is_err() {
        handle.cancel(); // the runtime is down
    }
    handle
}

fn once<M>(msg: M) -> impl FnMut() -> M + Send + 'static
where
    M: Send + 'static,
{
    let mut msg = Some(msg);
    move || msg.take().expect("a once-timer fires once")
}

/// Where schedules are made from: the runtime, and the actor that bounds their life, if any.
/// The `Handle` and `Ctx` entry points differ only in the owner.
struct Scheduler<'a> {
    shared: &'a Arc<Shared>,
    owner: Option<ActorId>,
}

impl Scheduler<'_> {
    fn once<M: Send + 'static>(&self, delay: Duration, target: &ActorRef<M>, msg: M) -> Scheduled {
        arm(self.shared, target, deadline_after(Instant::now(), delay), once(msg), Once, self.owner)
    }

    fn every<M: Send + 'static>(
        &self,
        initial: Duration,
        interval: Duration,
        target: &ActorRef<M>,
        make: impl FnMut() -> M + Send + 'static,
    ) -> Scheduled {
        let first = deadline_after(Instant::now(), initial);
        let plan = Every { next: first, interval: interval.max(MIN_INTERVAL) };
        arm(self.shared, target, first, make, plan, self.owner)
    }

    fn cron<M: Send + 'static>(
        &self,
        expr: &str,
        target: &ActorRef<M>,
        make: impl FnMut() -> M + Send + 'static,
    ) -> Result<Scheduled, CronError> {
        let s = Cron::parse(expr)?;
        let first = next_cron(&s).ok_or_else(|| CronError {
            expr: expr.into(),
            field: "expression",
            detail: Some("it never fires".into()),
        })?;
        Ok(arm(self.shared, target, first, make, s, self.owner))
    }
}

impl Handle {
    fn scheduler(&self) -> Scheduler<'_> {
        Scheduler { shared: &self.shared, owner: None }
    }

    /// Delivers `msg` to `target` after `delay`.
    pub fn schedule_once<M: Send + 'static>(
        &self,
        delay: Duration,
        target: &ActorRef<M>,
        msg: M,
    ) -> Scheduled {
        self.scheduler().once(delay, target, msg)
    }

    /// Delivers `make()` to `target` after `initial`, then every `interval` (fixed rate).
    pub fn schedule<M: Send + 'static>(
        &self,
        initial: Duration,
        interval: Duration,
        target: &ActorRef<M>,
        make: impl FnMut() -> M + Send + 'static,
    ) -> Scheduled {
        self.scheduler().every(initial, interval, target, make)
    }

    /// Delivers `make()` to `target` at each instant of the cron expression (6 or 7 fields:
    /// seconds, minutes, hours, day of month, month, day of week, optional year; UTC). An
    /// invalid expression is an error that names the field at fault.
    pub fn schedule_cron<M: Send + 'static>(
        &self,
        expr: &str,
        target: &ActorRef<M>,
        make: impl FnMut() -> M + Send + 'static,
    ) -> Result<Scheduled, CronError> {
        self.scheduler().cron(expr, target, make)
    }
}

impl<A: Actor> Ctx<A> {
    /// `Handle::schedule_once`, ended when this actor stops.
    pub fn schedule_once<M: Send + 'static>(
        &self,
        delay: Duration,
        target: &ActorRef<M>,
        msg: M,
    ) -> Scheduled {
        let h = self.runtime();
        Scheduler { shared: &h.shared, owner: Some(self.id()) }.once(delay, target, msg)
    }

    /// `Handle::schedule`, ended when this actor stops.
    pub fn schedule<M: Send + 'static>(
        &self,
        initial: Duration,
        interval: Duration,
        target: &ActorRef<M>,
        make: impl FnMut() -> M + Send + 'static,
    ) -> Scheduled {
        let h = self.runtime();
        Scheduler { shared: &h.shared, owner: Some(self.id()) }.every(initial, interval, target, make)
    }

    /// `Handle::schedule_cron`, ended when this actor stops.
    pub fn schedule_cron<M: Send + 'static>(
        &self,
        expr: &str,
        target: &ActorRef<M>,
        make: impl FnMut() -> M + Send + 'static,
    ) -> Result<Scheduled, CronError> {
        let h = self.runtime();
        Scheduler { shared: &h.shared, owner: Some(self.id()) }.cron(expr, target, make)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_rate_stays_on_its_grid_on_a_test_clock() {
        let t0 = Instant::now();
        let i = Duration::from_millis(10);
        let mut due = t0;
        // 100 ticks, each fired 3 ms late: no lateness carries over.
        for k in 1..=100u32 {
            let fired = due + Duration::from_millis(3);
            due = next_tick(due, i, fired);
            assert_eq!(due, t0 + i * k);
        }
        // Fired 35 ms late: the ticks due in the past are skipped, the phase is kept.
        let fired = due + Duration::from_millis(35);
        assert_eq!(next_tick(due, i, fired), due + i * 3);
    }
}
