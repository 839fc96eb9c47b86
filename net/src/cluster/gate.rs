//! The gate every grain message passes: whether this member may serve, and whether anything
//! changed that a cached lookup must see.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

/// What every grain message checks, in one place shared by the member, its activations and its
/// receivers' caches (no lock, no reference count on the way).
pub(crate) struct Gate {
    pub(crate) base: Instant,
    /// Until when this member may serve: the send time of its last acknowledged renewal plus
    /// the TTL minus the margin, as nanoseconds after `base`; 0 once fenced.
    pub(crate) until: AtomicU64,
    /// Partitions gained and waiting for their handover.
    pub(crate) pending: AtomicUsize,
    /// Grain messages held.
    pub(crate) held: AtomicUsize,
    /// The current topology's epoch (as `topology` says, without its lock).
    pub(crate) epoch: AtomicU64,
    /// Bumped with every new topology (after it is published): what was looked up under an
    /// older one is looked up again.
    pub(crate) generation: AtomicU64,
    /// Fences so far (bumped before serving stops): a grain host or a named actor set up before
    /// a fence serves nothing after it, also once the member serves again under a new lease.
    fences: AtomicU64,
}

impl Gate {
    pub(crate) fn new() -> Self {
        Self {
            base: Instant::now(),
            until: AtomicU64::new(0),
            pending: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            epoch: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            fences: AtomicU64::new(0),
        }
    }

    /// Stops serving at once; whether it was serving until now (its deadline may have passed
    /// already). Everything set up before this call serves nothing more ([`Gate::serving_in`]).
    pub(crate) fn fence(&self) -> bool {
        self.fences.fetch_add(1, Ordering::AcqRel);
        self.until.swap(0, Ordering::AcqRel) != 0
    }

    /// The serving session something set up now belongs to (for [`Gate::serving_in`]).
    pub(crate) fn session(&self) -> u64 {
        self.fences.load(Ordering::Acquire)
    }

    /// [`Gate::serving_now`] for what was set up in `session`: `None` once the member fenced
    /// since. A member frozen past its deadline fences when it thaws and then joins again with a
    /// new lease; a host it made before the freeze, still draining what it had queued when the
    /// new lease begins, must not serve it: a survivor owned those grains meanwhile.
    pub(crate) fn serving_in(&self, session: u64) -> Option<u64> {
        self.serving_now().filter(|_| self.fences.load(Ordering::Acquire) == session)
    }

    /// Whether serving a grain message needs no more than an activation that is still alive:
    /// not fenced, no handover in progress, nothing held, the sender not ahead.
    pub(crate) fn quiet(&self, sender_epoch: u64) -> bool {
        self.not_fenced()
            && self.pending.load(Ordering::Acquire) == 0
            && self.held.load(Ordering::Acquire) == 0
            && sender_epoch <= self.epoch.load(Ordering::Acquire)
    }

    pub(crate) fn not_fenced(&self) -> bool {
        self.until.load(Ordering::Acquire) != 0
    }

    /// Whether the deadline has not passed (reads the clock).
    pub(crate) fn may_serve(&self) -> bool {
        self.serving_now().is_some()
    }

    /// Now, as nanoseconds after `base`, if the deadline has not passed.
    pub(crate) fn serving_now(&self) -> Option<u64> {
        let until = self.until.load(Ordering::Acquire);
        let now = self.base.elapsed().as_nanos() as u64;
        (until != 0 && now < until).then_some(now)
    }

    /// A time as passivation stamps it: units of 2^26 ns (about 67 ms) after `base`.
    pub(crate) fn tick(nanos: u64) -> u32 {
        (nanos >> 26) as u32
    }
}

/// The lease a named actor hosted by this member handles messages under: the member may serve,
/// and has not fenced since the actor was spawned. One whose member was frozen past its
/// deadline (SIGSTOP, a long pause) handles nothing more when it thaws, even what it had
/// queued, while a survivor already runs the actor under its name; nor once the member joins
/// again with a new lease.
pub(crate) struct SessionLease {
    gate: std::sync::Arc<Gate>,
    session: u64,
}

impl SessionLease {
    /// A lease for something set up now.
    pub(crate) fn now(gate: &std::sync::Arc<Gate>) -> Self {
        Self { gate: gate.clone(), session: gate.session() }
    }
}

impl corelane::Lease for SessionLease {
    fn held(&self) -> bool {
        self.gate.serving_in(self.session).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use corelane::Lease;
    use std::sync::Arc;
    use std::time::Duration;

    /// Serves for an hour from now, as an acknowledged renewal would set it.
    fn serve(g: &Gate) {
        let until = (Instant::now() + Duration::from_secs(3600)).duration_since(g.base).as_nanos() as u64;
        g.until.fetch_max(until, Ordering::AcqRel);
    }

    /// A member that fences (a freeze past its deadline) and then serves again under a new
    /// lease: what it set up before the fence (a grain host's session, a named actor's lease)
    /// serves nothing after it, what it sets up after serves.
    #[test]
    fn what_was_set_up_before_a_fence_serves_nothing_after_it_even_once_the_member_serves_again() {
        let gate = Arc::new(Gate::new());
        serve(&gate);
        let (host, named) = (gate.session(), SessionLease::now(&gate));
        assert!(gate.serving_in(host).is_some() && named.held(), "serving in its own session");
        assert!(gate.fence(), "it was serving");
        assert!(gate.serving_in(host).is_none() && !named.held(), "fenced");
        serve(&gate);
        assert!(gate.may_serve(), "the member serves again");
        assert!(gate.serving_in(host).is_none(), "a host from before the fence does not");
        assert!(!named.held(), "nor a named actor from before the fence");
        let (host2, named2) = (gate.session(), SessionLease::now(&gate));
        assert!(gate.serving_in(host2).is_some() && named2.held(), "what is set up now does");
    }
}
