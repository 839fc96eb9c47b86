//! # corelane
//!
//! A thread-per-core, shared-nothing actor engine for latency-critical services.
//!
//! ## Why thread-per-core
//! Every actor lives on one **shard**: one thread, optionally pinned to one core, running a
//! glommio executor and a dispatcher. An actor's state and mailbox are touched only by that
//! thread, so the same-shard message path has no locks, no atomics and no allocation: a tell is
//! a push into a ring buffer and, if the actor was idle, a push onto the run queue. Shards talk
//! only through single-producer/single-consumer rings (one per ordered pair of shards), whose
//! cache lines move between exactly two cores. Nothing is shared that does not have to be, so
//! the cost of a message is close to what the hardware charges for moving it.
//!
//! ## What it costs
//! - **Placement is yours.** An actor never migrates; a hot actor keeps its core busy while
//!   others idle. Spread load with placement at spawn time.
//! - **A blocking handler blocks the shard.** Every actor on that shard waits. Do blocking work
//!   elsewhere and send the result back.
//! - **Spinning burns cores.** `Idle::Spin` gives the lowest latency and keeps each shard's core
//!   at 100 %; `Idle::Park` sleeps and pays a wake-up (microseconds) on the next message;
//!   `Idle::SpinThenPark` (the default) spins briefly, then sleeps.
//! - **Cross-shard messages are batched.** They are published at the end of the sending
//!   actor's turn (or every 32 messages), which is what makes them cheap.
//!
//! ## A first actor
//! ```
//! use corelane::{Actor, ActorError, Ctx, Reply, Runtime, Shards};
//! use std::time::Duration;
//!
//! enum CounterMsg { Add(u64), Get(Reply<u64>) }
//!
//! #[derive(Default)]
//! struct Counter { n: u64 }
//!
//! impl Actor for Counter {
//!     type Msg = CounterMsg;
//!     fn receive(&mut self, _ctx: &mut Ctx<Self>, msg: CounterMsg) -> Result<(), ActorError> {
//!         match msg {
//!             CounterMsg::Add(k) => self.n += k,
//!             CounterMsg::Get(reply) => reply.send(self.n),
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let rt = Runtime::builder().shards(Shards::Count(2)).build()?;
//! let counter = rt.spawn(Counter::default)?;
//! counter.tell(CounterMsg::Add(1))?;
//! assert_eq!(counter.ask(CounterMsg::Get).timeout(Duration::from_secs(1)).wait()?, 1);
//! rt.shutdown()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! See `docs/architecture.md` and `docs/runtime-semantics.md` in the repository for the
//! design and the guarantees (ordering, priorities, stop and ask semantics).

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod actor;
mod actor_ref;
mod any_ref;
mod ask;
mod backoff;
mod batch;
mod cell;
mod context;
mod cpu;
mod cron;
mod error;
mod events;
mod executor;
#[cfg(feature = "metrics")]
pub mod export;
pub mod host;
mod id;
mod injector;
pub mod integration;
mod lane;
mod lease;
mod mailbox;
mod memlock;
pub mod metrics;
mod oneshot;
mod packet;
mod park;
mod prefetch;
mod registry;
mod ring;
mod router;
mod runtime;
mod scheduler;
mod shard;
mod signal;
mod slots;
mod spawn_options;
mod supervision;
mod sync;
#[cfg(feature = "testkit")]
pub mod testkit;
mod timers;
pub mod trace;

pub use actor::{Actor, ActorError};
pub use actor_ref::ActorRef;
pub use any_ref::{Address, AnyMsg, AnyRef};
pub use ask::{Pending, Reply};
pub use backoff::Backoff;
pub use batch::BatchPending;
pub use cell::Behavior;
pub use context::{Ctx, CtxAsk};
pub use cron::{Cron, CronError};
pub use error::{
    AskError, BuildError, RegisterError, SendError, ShutdownError, SpawnError, StashFull, TrySendError,
};
pub use events::{Event, EventKind, LeftReason, Subscription};
pub use id::ActorId;
pub use lease::Lease;
pub use mailbox::{CustomQueue, MailboxKind, MailboxQueue, Overflow, PriorityOrder, Push, Queued};
pub use metrics::{ActorMetrics, DeadLetterReason, KindMetrics, RemoteReason, RuntimeMetrics, ShardMetrics};
pub use router::{PoolPlacement, Routing};
pub use runtime::{
    Builder, Executor, Handle, Idle, KindsPending, ParseIdleError, Placement, Runtime, Shards,
};
pub use scheduler::{Scheduled, MIN_INTERVAL};
pub use signal::{Signal, StopReason};
pub use spawn_options::SpawnOptions;
pub use supervision::{Cause, Directive, Failure, Phase, Strategy, Supervisor};

/// The guide's chapters, compiled and run as doctests.
#[cfg(doctest)]
mod guide {
    #[doc = include_str!("../../docs/guide/actors.md")]
    struct Actors;
    #[doc = include_str!("../../docs/guide/supervision.md")]
    struct Supervision;
    #[doc = include_str!("../../docs/guide/watch.md")]
    struct Watch;
    #[doc = include_str!("../../docs/guide/stash-and-behaviors.md")]
    struct StashAndBehaviors;
    #[doc = include_str!("../../docs/guide/passivation.md")]
    struct Passivation;
    #[doc = include_str!("../../docs/guide/messaging-patterns.md")]
    struct MessagingPatterns;
    #[doc = include_str!("../../docs/guide/events.md")]
    struct Events;
    #[doc = include_str!("../../docs/guide/shutdown.md")]
    struct Shutdown;
    #[doc = include_str!("../../docs/guide/metrics.md")]
    struct Metrics;
    #[cfg(feature = "testkit")]
    #[doc = include_str!("../../docs/guide/testkit.md")]
    struct Testkit;
    #[doc = include_str!("../../docs/guide/routers.md")]
    struct Routers;
    #[doc = include_str!("../../docs/guide/scheduler.md")]
    struct Scheduler;
    #[doc = include_str!("../../docs/guide/mailboxes.md")]
    struct Mailboxes;
}
