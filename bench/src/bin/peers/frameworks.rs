//! The frameworks, and how each one's `main` starts it (as its documentation shows).

use std::future::Future;
use std::time::Duration;

/// A framework (or a way of running corelane).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fw {
    /// corelane under the builder's defaults, driven from `main`'s thread.
    Corelane,
    /// corelane with `Idle::Spin`, driven from `main`'s thread.
    CorelaneSpin,
    /// corelane under the defaults, `main`'s future run on a shard (`Runtime::block_on`).
    CorelaneBlockOn,
    Actix,
    Kameo,
    Ractor,
}

impl Fw {
    pub(crate) const ALL: [Fw; 6] =
        [Fw::Corelane, Fw::CorelaneSpin, Fw::CorelaneBlockOn, Fw::Actix, Fw::Kameo, Fw::Ractor];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Fw::Corelane => "corelane",
            Fw::CorelaneSpin => "corelane-spin",
            Fw::CorelaneBlockOn => "corelane-block-on",
            Fw::Actix => "actix",
            Fw::Kameo => "kameo",
            Fw::Ractor => "ractor",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Fw> {
        Fw::ALL.into_iter().find(|f| f.name() == s)
    }

    /// One of corelane's rows.
    pub(crate) fn ours(self) -> bool {
        matches!(self, Fw::Corelane | Fw::CorelaneSpin | Fw::CorelaneBlockOn)
    }

    /// corelane driven from `block_on` (user-path workloads only).
    pub(crate) fn block_on(self) -> bool {
        self == Fw::CorelaneBlockOn
    }
}

/// How long a workload's `main` waits for its answer before calling the run broken.
pub(crate) const PATIENCE: Duration = Duration::from_secs(120);

/// A corelane runtime as a user builds it: the builder's defaults, or spinning shards.
pub(crate) fn corelane(fw: Fw) -> corelane::Runtime {
    let b = corelane::Runtime::builder();
    match fw {
        Fw::CorelaneSpin => b.idle(corelane::Idle::Spin),
        _ => b,
    }
    .build()
    .expect("a corelane runtime")
}

/// `main` for kameo and ractor: tokio's multi-threaded runtime, as `#[tokio::main]` builds it.
pub(crate) fn tokio_main<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio").block_on(f)
}

/// `main` for actix: a `System`, as `#[actix::main]` builds it.
pub(crate) fn actix_main<F: Future>(f: F) -> F::Output {
    actix::System::new().block_on(f)
}

/// The same pseudo-random sequence in every framework (Savina's workloads draw their targets
/// from a seeded generator): xorshift64*.
#[derive(Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % n
    }
}

/// Reports counted until `expect` have come in, their values summed; the sum goes to whoever
/// waits (`D`: a reply or a channel) once both the waiter and the last report are there. The
/// sinks and collectors of the Savina workloads, the same in every framework.
pub(crate) struct Tally<D> {
    expect: u64,
    seen: u64,
    sum: u64,
    done: Option<D>,
}

impl<D> Tally<D> {
    pub(crate) fn new(expect: u64, done: Option<D>) -> Self {
        Tally { expect, seen: 0, sum: 0, done }
    }
    /// One report of `value`: the waiter and the sum, if that was the last.
    pub(crate) fn report(&mut self, value: u64) -> Option<(D, u64)> {
        self.seen += 1;
        self.sum += value;
        self.finish()
    }
    /// Someone waits: the waiter back with the sum, if every report is in already.
    pub(crate) fn wait(&mut self, done: D) -> Option<(D, u64)> {
        self.done = Some(done);
        self.finish()
    }
    fn finish(&mut self) -> Option<(D, u64)> {
        if self.seen == self.expect {
            self.done.take().map(|d| (d, self.sum))
        } else {
            None
        }
    }
}

/// Savina's busy work: `n` rounds of arithmetic the optimiser cannot drop.
pub(crate) fn busy(n: u64) -> u64 {
    let mut x = n;
    for i in 0..n {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
    }
    x
}
