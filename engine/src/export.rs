//! The runtime's figures through the [`metrics`] facade, so that whatever exporter the service
//! installed (Prometheus, StatsD, OpenTelemetry, a log) carries them. With the `metrics`
//! feature.
//!
//! [`record`] writes the runtime's and each shard's figures once; [`record_kinds`] the live
//! actors by kind (actor type: a bounded set of series however many actors there are);
//! [`record_actor`] one actor's, under a name the caller gives (per-actor series are for the
//! actors you choose: a million actors must not become a million series). [`Exporter`] does
//! all three on a fixed period, from an actor of the runtime. Nothing is recorded unless you call these: with no exporter
//! started, the feature costs nothing on the message paths. The series are the process's: with
//! several runtimes in one process, record one of them (or give each process its own
//! exporter's global labels).
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `corelane_uptime_seconds` | gauge | |
//! | `corelane_actors` | gauge | |
//! | `corelane_dead_letters_total` | counter | `reason` |
//! | `corelane_shard_processed_total`, `corelane_shard_wakes_total`, `corelane_shard_yields_to_waiters_total`, `corelane_shard_waiters_moved_off_total` | counter | `shard` |
//! | `corelane_shard_actors`, `corelane_shard_run_queue_depth`, `corelane_shard_inbound_depth`, `corelane_shard_idle_ratio` | gauge | `shard` |
//! | `corelane_kind_actors`, `corelane_kind_processed`, `corelane_kind_queued` | gauge | `kind` |
//! | `corelane_actor_processed_total`, `corelane_actor_restarts_total`, `corelane_actor_dead_letters_total` | counter | `actor` |
//! | `corelane_actor_mailbox_len`, `corelane_actor_stash_len`, `corelane_actor_children`, `corelane_actor_uptime_seconds`, `corelane_actor_last_processing_seconds`, `corelane_actor_suspended` | gauge | `actor` |
//!
//! ```
//! use corelane::{export::Exporter, Actor, ActorError, Ctx, Runtime};
//! use std::time::Duration;
//!
//! #[derive(Clone)]
//! struct Worker;
//! impl Actor for Worker {
//!     type Msg = ();
//!     fn receive(&mut self, _: &mut Ctx<Self>, _: ()) -> Result<(), ActorError> {
//!         Ok(())
//!     }
//! }
//!
//! let rt = Runtime::builder().build()?;
//! // Install an exporter's recorder first (metrics-exporter-prometheus, for instance): see
//! // the `prometheus` example.
//! let exporter = Exporter::start(rt.handle(), Duration::from_secs(10))?;
//! let worker = rt.spawn_value(Worker)?;
//! exporter.watch("worker", &worker.untyped());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::actor::{Actor, ActorError};
use crate::any_ref::AnyRef;
use crate::context::Ctx;
use crate::error::SpawnError;
use crate::metrics::{ActorMetrics, KindMetrics};
use crate::runtime::Handle;
use crate::scheduler::Scheduled;
use crate::spawn_options::SpawnOptions;
use crate::ActorRef;
use metrics::{counter, gauge};
use std::time::Duration;

/// Records the runtime's figures and each shard's, once.
pub fn record(handle: &Handle) {
    let m = handle.metrics();
    gauge!("corelane_uptime_seconds").set(m.uptime.as_secs_f64());
    gauge!("corelane_actors").set(m.actors as f64);
    for (reason, n) in &m.dead_letters_by_reason {
        counter!("corelane_dead_letters_total", "reason" => reason.name()).absolute(*n);
    }
    for (i, s) in m.shards.iter().enumerate() {
        let shard = i.to_string();
        counter!("corelane_shard_processed_total", "shard" => shard.clone()).absolute(s.processed);
        counter!("corelane_shard_wakes_total", "shard" => shard.clone()).absolute(s.wakes);
        counter!("corelane_shard_yields_to_waiters_total", "shard" => shard.clone())
            .absolute(s.yields_to_waiters);
        counter!("corelane_shard_waiters_moved_off_total", "shard" => shard.clone())
            .absolute(s.waiters_moved_off);
        gauge!("corelane_shard_actors", "shard" => shard.clone()).set(s.actors as f64);
        gauge!("corelane_shard_run_queue_depth", "shard" => shard.clone()).set(s.run_queue_depth as f64);
        gauge!("corelane_shard_inbound_depth", "shard" => shard.clone()).set(s.inbound_depth as f64);
        gauge!("corelane_shard_idle_ratio", "shard" => shard).set(s.idle_share);
    }
}

/// Records the live actors by kind (from [`Handle::kind_metrics`]), labelled `kind` with the
/// actor type. Gauges: the figures are of the actors alive now.
pub fn record_kinds(kinds: &[KindMetrics]) {
    for k in kinds {
        gauge!("corelane_kind_actors", "kind" => k.kind).set(k.actors as f64);
        gauge!("corelane_kind_processed", "kind" => k.kind).set(k.processed as f64);
        gauge!("corelane_kind_queued", "kind" => k.kind).set(k.queued as f64);
    }
}

/// Records one actor's figures under the label `actor = name`.
pub fn record_actor(name: &str, m: &ActorMetrics) {
    let actor = name.to_string();
    counter!("corelane_actor_processed_total", "actor" => actor.clone()).absolute(m.processed);
    counter!("corelane_actor_restarts_total", "actor" => actor.clone()).absolute(u64::from(m.restarts));
    counter!("corelane_actor_dead_letters_total", "actor" => actor.clone()).absolute(m.dead_letters);
    gauge!("corelane_actor_mailbox_len", "actor" => actor.clone()).set(m.mailbox_len as f64);
    gauge!("corelane_actor_stash_len", "actor" => actor.clone()).set(m.stash_len as f64);
    gauge!("corelane_actor_children", "actor" => actor.clone()).set(m.children as f64);
    gauge!("corelane_actor_uptime_seconds", "actor" => actor.clone()).set(m.uptime.as_secs_f64());
    let last = m.last_processing.map_or(0.0, |d| d.as_secs_f64());
    gauge!("corelane_actor_last_processing_seconds", "actor" => actor.clone()).set(last);
    gauge!("corelane_actor_suspended", "actor" => actor).set(if m.suspended { 1.0 } else { 0.0 });
}

/// What the exporting actor is told.
enum ExportMsg {
    Tick,
    Watch(String, AnyRef),
    Forget(String),
}

/// Records on every tick: the runtime, then each watched actor (asked for its figures).
struct Recorder {
    every: Duration,
    watched: Vec<(String, AnyRef)>,
    tick: Option<Scheduled>,
}

impl Actor for Recorder {
    type Msg = ExportMsg;

    fn started(&mut self, ctx: &mut Ctx<Self>) -> Result<(), ActorError> {
        let me = ctx.myself();
        self.tick = Some(ctx.schedule(Duration::ZERO, self.every, &me, || ExportMsg::Tick));
        Ok(())
    }

    fn receive(&mut self, ctx: &mut Ctx<Self>, msg: ExportMsg) -> Result<(), ActorError> {
        match msg {
            ExportMsg::Tick => {
                let rt = ctx.runtime();
                record(&rt);
                let kinds = rt.kind_metrics();
                ctx.spawn_task(async move {
                    // A runtime shutting down answers nothing more: nothing to record.
                    if let Ok(k) = kinds.await {
                        record_kinds(&k);
                    }
                });
                for (name, actor) in &self.watched {
                    let pending = actor.metrics();
                    let (name, me) = (name.clone(), ctx.myself());
                    ctx.spawn_task(async move {
                        match pending.await {
                            Ok(m) => record_actor(&name, &m),
                            // Gone: its series keep their last values; it is not asked again.
                            Err(_) => drop(me.tell(ExportMsg::Forget(name))),
                        }
                    });
                }
            }
            ExportMsg::Watch(name, actor) => {
                self.watched.retain(|(n, _)| *n != name);
                self.watched.push((name, actor));
            }
            ExportMsg::Forget(name) => self.watched.retain(|(n, _)| *n != name),
        }
        Ok(())
    }

    fn stopped(&mut self, _: &mut Ctx<Self>) {
        if let Some(t) = self.tick.take() {
            t.cancel();
        }
    }
}

/// Records the runtime's figures, and those of the actors it is told to watch, every period,
/// from an actor of the runtime. Stops with [`Exporter::stop`], or with the runtime.
pub struct Exporter {
    actor: ActorRef<ExportMsg>,
}

impl Exporter {
    /// Starts recording every `every` (the first time at once).
    ///
    /// # Errors
    /// What spawning its actor returns (`Closed` once the runtime has shut down).
    pub fn start(handle: &Handle, every: Duration) -> Result<Self, SpawnError> {
        let every = every.max(crate::MIN_INTERVAL);
        let opts = SpawnOptions::new().never_passivate();
        let actor = handle.spawn_with(opts, move || Recorder { every, watched: Vec::new(), tick: None })?;
        Ok(Self { actor })
    }

    /// Records `actor`'s figures too, labelled `actor = name` (a name watched again replaces
    /// the earlier actor). An actor that stops is no longer asked; its series keep their last
    /// values.
    pub fn watch(&self, name: impl Into<String>, actor: &AnyRef) {
        // A runtime that has shut down records nothing more anyway.
        let _ = self.actor.tell(ExportMsg::Watch(name.into(), actor.clone()));
    }

    /// Stops recording.
    pub fn stop(self) {
        drop(self.actor.stop());
    }
}
