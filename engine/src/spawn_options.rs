//! [`SpawnOptions`]: where an actor goes and how it lives (the supervisor it gives its children,
//! its idle timeout, its stash capacity, its mailbox kind).

use crate::lease::LeaseRef;
use crate::mailbox::MailboxKind;
use crate::runtime::Placement;
use crate::supervision::Supervisor;
use std::sync::Arc;
use std::time::Duration;

/// Whether an actor passivates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Passivation {
    /// The runtime's default (off unless `Builder::passivate_after` set one).
    #[default]
    RuntimeDefault,
    After(Duration),
    Never,
}

/// How to spawn an actor. `Placement` converts into it, so `spawn_with(Placement::Shard(1), f)`
/// keeps working.
///
/// ```
/// use corelane::{Directive, Placement, SpawnOptions, Supervisor};
/// use std::time::Duration;
///
/// let opts = SpawnOptions::new()
///     .placement(Placement::LeastLoaded)
///     .supervisor(Supervisor::all_for_one().directive(Directive::Restart))
///     .passivate_after(Duration::from_secs(60))
///     .stash_capacity(100);
/// ```
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    pub(crate) placement: Option<Placement>,
    pub(crate) supervisor: Option<Arc<Supervisor>>,
    pub(crate) passivation: Passivation,
    pub(crate) stash_capacity: Option<usize>,
    pub(crate) mailbox: Option<MailboxKind>,
    pub(crate) lease: Option<LeaseRef>,
    pub(crate) name: Option<String>,
}

impl SpawnOptions {
    /// The defaults: round-robin for top-level actors and the parent's shard for children, the
    /// runtime's supervisor for its children, the runtime's passivation, a stash of 10 000, an
    /// unbounded mailbox.
    pub fn new() -> Self {
        Self::default()
    }
    /// Where the actor goes.
    pub fn placement(mut self, p: Placement) -> Self {
        self.placement = Some(p);
        self
    }
    /// How this actor supervises its children (their failures are decided by it).
    pub fn supervisor(mut self, s: Supervisor) -> Self {
        self.supervisor = Some(Arc::new(s));
        self
    }
    /// Stop the actor gracefully after it has handled no message for `d` (publishes
    /// `ActorPassivated`).
    pub fn passivate_after(mut self, d: Duration) -> Self {
        self.passivation = Passivation::After(d);
        self
    }
    /// Never passivate, whatever the runtime's default.
    pub fn never_passivate(mut self) -> Self {
        self.passivation = Passivation::Never;
        self
    }
    /// At most `n` stashed messages; one more is refused with `StashFull`.
    pub fn stash_capacity(mut self, n: usize) -> Self {
        self.stash_capacity = Some(n);
        self
    }
    /// Registers the actor under `name` (unique in the runtime) as it is spawned: a lookup
    /// finds it from the moment the spawn returns (messages wait for the actor to be built),
    /// and a name already taken fails the spawn with
    /// [`SpawnError::NameTaken`](crate::SpawnError::NameTaken), spawning nothing. The name
    /// goes when the actor stops, or if it fails to build. (Not for a pool's routees, which
    /// share their options.)
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// How the mailbox queues user messages: unbounded (the default), bounded with an overflow
    /// policy, or by priority. Kept across restarts.
    pub fn mailbox(mut self, kind: MailboxKind) -> Self {
        self.mailbox = match kind {
            MailboxKind::Unbounded => None,
            k => Some(k),
        };
        self
    }
}

impl SpawnOptions {
    /// Handle messages only while `lease` holds: it is checked before each user message, and
    /// once it does not hold the message and every later one are dead letters
    /// ([`DeadLetterReason::LeaseLost`](crate::DeadLetterReason::LeaseLost)) and the actor is
    /// killed. Kept across restarts.
    pub fn lease(mut self, lease: Arc<dyn crate::Lease>) -> Self {
        self.lease = Some(LeaseRef(lease));
        self
    }
}

impl From<Placement> for SpawnOptions {
    fn from(p: Placement) -> Self {
        SpawnOptions::new().placement(p)
    }
}
