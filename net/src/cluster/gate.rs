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
        }
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

/// Named actors hosted by this member handle messages only while it may serve: one whose
/// member was frozen past its deadline (SIGSTOP, a long pause) handles nothing more when it
/// thaws, even what it had queued, while a survivor already runs the actor under its name.
impl corelane::Lease for Gate {
    fn held(&self) -> bool {
        self.may_serve()
    }
}
