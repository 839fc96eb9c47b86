//! [`Lease`]: a condition an actor handles messages under, such as a cluster member's lease on
//! the name the actor runs under. Checked before each user message; once it no longer holds,
//! the message and every later one are dead letters ([`DeadLetterReason::LeaseLost`]) and the
//! actor is killed. Actors spawned without one never check anything.
//!
//! [`DeadLetterReason::LeaseLost`]: crate::DeadLetterReason::LeaseLost

use std::sync::Arc;

/// Whether an actor may still handle messages ([`SpawnOptions::lease`](crate::SpawnOptions::lease)).
///
/// `held` runs on the actor's shard before each of its user messages: keep it cheap (an atomic
/// load, a clock read). It may run user code of its own but must not block.
///
/// ```
/// use corelane::Lease;
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// struct Flag(AtomicBool);
/// impl Lease for Flag {
///     fn held(&self) -> bool {
///         self.0.load(Ordering::Acquire)
///     }
/// }
/// ```
pub trait Lease: Send + Sync + 'static {
    /// Whether the lease still holds. Once it returns false the actor stops; it is not asked
    /// again.
    fn held(&self) -> bool;
}

/// A lease as spawn options carry it.
#[derive(Clone)]
pub(crate) struct LeaseRef(pub(crate) Arc<dyn Lease>);

impl std::fmt::Debug for LeaseRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lease")
    }
}
