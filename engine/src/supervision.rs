//! Supervision: what happens when a handler fails.
//!
//! A failure is an `Err` returned by a handler (`started`, `receive`, `signal`) or a panic caught
//! around it. The failing actor is suspended at once (it handles no user messages) and its
//! supervisor's [`Supervisor`] decides a [`Directive`]:
//! - `Resume`: carry on with the next message, state kept;
//! - `Restart`: rebuild the actor from its factory (`stopped` on the old instance, `started` on
//!   the new one), keep the mailbox, drop the failing message to dead letters; limited to
//!   `max_restarts` within a window, optionally spaced by exponential backoff;
//! - `Stop`: stop the actor; its queued messages become dead letters;
//! - `Escalate`: the parent fails with this failure, and the parent's supervisor decides for the
//!   parent.
//!
//! The supervisor of a child is the strategy its parent was spawned with
//! ([`SpawnOptions::supervisor`](crate::SpawnOptions::supervisor)); top-level actors are
//! supervised by the runtime's strategy ([`Builder::supervisor`](crate::Builder::supervisor)).
//! The default: one-for-one, `Restart` for every failure, at most 10 restarts within 10 seconds,
//! then `Stop`.

use crate::actor::ActorError;
use crate::cell::panic_text;
use crate::id::ActorId;
use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Whom a directive applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Strategy {
    /// Only the failing child.
    OneForOne,
    /// The failing child and all its siblings (children of the same parent). For top-level
    /// actors, which have no siblings under a parent, it acts as `OneForOne`.
    AllForOne,
}

/// What a supervisor decides for a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Directive {
    /// Keep the state and go on with the next message.
    Resume,
    /// Rebuild the actor from its factory, keeping its mailbox.
    Restart,
    /// Stop the actor; what is queued becomes dead letters.
    Stop,
    /// Fail the parent with this failure.
    Escalate,
}

/// Where in the actor's life a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// In `Actor::started`.
    Started,
    /// In `Actor::receive` (or the current behavior).
    Receive,
    /// In `Actor::signal`.
    Signal,
    /// A child's failure escalated to this actor.
    Escalated,
    /// In a closure the engine ran for this actor outside its handlers: the maker of a message
    /// it scheduled.
    Scheduled,
    /// In the actor's mailbox: a priority ordering or a custom queue
    /// ([`MailboxQueue`](crate::MailboxQueue)) panicked.
    Mailbox,
}

/// What went wrong.
#[non_exhaustive]
pub enum Cause {
    /// A handler returned this error.
    Error(ActorError),
    /// A handler panicked with this payload.
    Panic(Box<dyn Any + Send>),
}

/// A failure, as the supervisor's decider sees it.
pub struct Failure {
    pub(crate) actor: ActorId,
    pub(crate) origin: ActorId,
    pub(crate) phase: Phase,
    pub(crate) cause: Cause,
}

impl Failure {
    /// The actor that failed at this level (for an escalation: the parent being decided for).
    pub fn actor(&self) -> ActorId {
        self.actor
    }
    /// The actor whose handler failed first (differs from `actor` after escalation).
    pub fn origin(&self) -> ActorId {
        self.origin
    }
    /// Where the original failure happened, or `Escalated`.
    pub fn phase(&self) -> Phase {
        self.phase
    }
    /// The cause.
    pub fn cause(&self) -> &Cause {
        &self.cause
    }
    /// Whether a panic caused it.
    pub fn is_panic(&self) -> bool {
        matches!(self.cause, Cause::Panic(_))
    }
    /// The error a handler returned, if that was the cause.
    pub fn error(&self) -> Option<&ActorError> {
        match &self.cause {
            Cause::Error(e) => Some(e),
            Cause::Panic(_) => None,
        }
    }
    /// The returned error as a concrete type, for classifying by kind.
    pub fn error_as<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.error().and_then(|e| e.inner().downcast_ref::<E>())
    }
    /// The panic payload as a concrete type (`&'static str` or `String` for `panic!` with a
    /// message; any type for `std::panic::panic_any`).
    pub fn panic_as<T: 'static>(&self) -> Option<&T> {
        match &self.cause {
            Cause::Panic(p) => p.downcast_ref::<T>(),
            Cause::Error(_) => None,
        }
    }
    /// The panic message, when the payload is a string.
    pub fn panic_message(&self) -> Option<&str> {
        self.panic_as::<&'static str>().copied().or_else(|| self.panic_as::<String>().map(|s| s.as_str()))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Cause::Error(e) => write!(f, "error: {e}"),
            Cause::Panic(p) => write!(f, "panic: {}", panic_text(p)),
        }
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Failure({} from {} in {:?}: {self})", self.actor, self.origin, self.phase)
    }
}

type Decider = dyn Fn(&Failure) -> Directive + Send + Sync;

/// How an actor's children are supervised: the strategy, the decider (a classifier from a
/// failure to a directive), the restart limit and the backoff.
///
/// ```
/// use corelane::{Directive, Supervisor};
/// use std::time::Duration;
///
/// #[derive(Debug)]
/// struct Corrupt;
/// impl std::fmt::Display for Corrupt {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("corrupt") }
/// }
/// impl std::error::Error for Corrupt {}
///
/// let sup = Supervisor::one_for_one()
///     .decider(|f| {
///         if f.error_as::<Corrupt>().is_some() { Directive::Stop }
///         else if f.is_panic() { Directive::Restart }
///         else { Directive::Resume }
///     })
///     .max_restarts(5, Duration::from_secs(30))
///     .backoff(Duration::from_millis(10), Duration::from_secs(1));
/// ```
#[derive(Clone)]
pub struct Supervisor {
    strategy: Strategy,
    decider: Arc<Decider>,
    max_restarts: u32,
    within: Duration,
    backoff: Option<(Duration, Duration)>,
}

impl Default for Supervisor {
    /// One-for-one, `Restart` for every failure, at most 10 restarts within 10 s, no backoff.
    fn default() -> Self {
        Self::one_for_one()
    }
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("strategy", &self.strategy)
            .field("max_restarts", &self.max_restarts)
            .field("within", &self.within)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    fn new(strategy: Strategy) -> Self {
        Self {
            strategy,
            decider: Arc::new(|_| Directive::Restart),
            max_restarts: 10,
            within: Duration::from_secs(10),
            backoff: None,
        }
    }
    /// Directives apply to the failing child only (the default decider restarts it).
    pub fn one_for_one() -> Self {
        Self::new(Strategy::OneForOne)
    }
    /// Directives apply to the failing child and all its siblings.
    pub fn all_for_one() -> Self {
        Self::new(Strategy::AllForOne)
    }
    /// Chooses the directive per failure (by error type, panic payload, phase, ...).
    pub fn decider(mut self, f: impl Fn(&Failure) -> Directive + Send + Sync + 'static) -> Self {
        self.decider = Arc::new(f);
        self
    }
    /// The same directive for every failure.
    pub fn directive(self, d: Directive) -> Self {
        self.decider(move |_| d)
    }
    /// At most `n` restarts within `within` (counted per actor); one more failure that asks
    /// for a restart stops the actor instead. `n = 0` turns every restart into a stop.
    pub fn max_restarts(mut self, n: u32, within: Duration) -> Self {
        self.max_restarts = n;
        self.within = within;
        self
    }
    /// Spaces restarts exponentially: the k-th restart within the window waits a step of
    /// `min * 2^(k-1)`, at most `max`, jittered into the upper half of the step (so actors
    /// that failed together do not restart together; see [`crate::Backoff`]). The actor stays
    /// suspended meanwhile.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff = Some((min, max.max(min)));
        self
    }
    /// The strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Runs the decider; a decider that panics stops the actor.
    pub(crate) fn decide(&self, f: &Failure) -> Directive {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.decider)(f))).unwrap_or_else(|p| {
            tracing::error!(actor = %f.actor, panic = panic_text(&p), "supervisor decider panicked; stopping");
            Directive::Stop
        })
    }
}

/// Restarts of one actor within the current window.
#[derive(Debug, Default)]
pub(crate) struct RestartWindow {
    start: Option<Instant>,
    count: u32,
}

/// What the restart limit allows.
pub(crate) enum RestartPlan {
    /// Restart now.
    Now,
    /// Restart after this delay.
    After(Duration),
    /// The limit is reached: stop.
    LimitReached,
}

impl RestartWindow {
    /// Counts one more restart at `now` against `sup`'s limit and backoff.
    pub(crate) fn plan(&mut self, sup: &Supervisor, now: Instant) -> RestartPlan {
        if self.start.is_none_or(|s| now.duration_since(s) > sup.within) {
            self.start = Some(now);
            self.count = 0;
        }
        if self.count >= sup.max_restarts {
            return RestartPlan::LimitReached;
        }
        self.count += 1;
        match sup.backoff {
            None => RestartPlan::Now,
            Some((min, max)) => {
                // The step doubles with each restart in the window; the delay is jittered.
                let factor = 1u32.checked_shl(self.count - 1).unwrap_or(u32::MAX);
                RestartPlan::After(crate::backoff::jittered(min.saturating_mul(factor).min(max)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_limits_and_backoff_doubles() {
        let sup = Supervisor::one_for_one()
            .max_restarts(3, Duration::from_secs(10))
            .backoff(Duration::from_millis(10), Duration::from_millis(25));
        let mut w = RestartWindow::default();
        let t0 = Instant::now();
        let delays: Vec<_> = (0..4)
            .map(|_| match w.plan(&sup, t0) {
                RestartPlan::After(d) => Some(d),
                RestartPlan::Now => unreachable!("backoff configured"),
                RestartPlan::LimitReached => None,
            })
            .collect();
        let ms = Duration::from_millis;
        // Steps of 10, 20 and 25 (capped) ms, each delay in the upper half of its step.
        let within = |d: Option<Duration>, step: u64| d.is_some_and(|d| ms(step) / 2 <= d && d <= ms(step));
        assert!(within(delays[0], 10) && within(delays[1], 20) && within(delays[2], 25), "{delays:?}");
        assert_eq!(delays[3], None, "the limit");
        // A new window starts once the old one has passed.
        let fresh = match w.plan(&sup, t0 + Duration::from_secs(11)) {
            RestartPlan::After(d) => Some(d),
            _ => None,
        };
        assert!(within(fresh, 10), "{fresh:?}");
    }
}
