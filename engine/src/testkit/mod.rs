//! Testing actors: a [`TestKit`] (a runtime for tests) and [`Probe`]s that receive messages,
//! signals and events on the test thread and assert on them, waiting on a channel with a
//! timeout, never sleeping.
//!
//! ```
//! use corelane::testkit::TestKit;
//! use corelane::{Actor, ActorError, Ctx};
//!
//! struct Echo;
//! impl Actor for Echo {
//!     type Msg = String;
//!     fn receive(&mut self, ctx: &mut Ctx<Self>, msg: String) -> Result<(), ActorError> {
//!         if let Some(sender) = ctx.sender() {
//!             sender.tell(format!("echo: {msg}"))?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let kit = TestKit::new();
//! let probe = kit.probe();
//! let echo = kit.spawn(|| Echo)?;
//! probe.tell(&echo, "hi".to_string());
//! probe.expect_message("echo: hi".to_string());
//! echo.stop();
//! probe.expect_terminated(&echo);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Each `expect_*` takes the next item the probe received, in arrival order, and panics with
//! what arrived instead (or that nothing did) when it is not what was expected.
//!
//! [`capture_logs`] captures what the code under test logs, to assert on it.

mod logs;
pub use logs::{capture_logs, Logs};

use crate::actor::{Actor, ActorError};
use crate::actor_ref::ActorRef;
use crate::any_ref::{Address, AnyMsg, AnyRef};
use crate::ask::Reply;
use crate::context::Ctx;
use crate::error::ShutdownError;
use crate::events::{Event, Subscription};
use crate::id::ActorId;
use crate::runtime::{Builder, Idle, Placement, Runtime, Shards};
use crate::signal::{Signal, StopReason};
use crate::spawn_options::SpawnOptions;
use parking_lot::Mutex;
use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// How long an `expect_*` without an explicit duration waits, unless the kit sets another.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// A runtime for tests: two shards (so cross-shard paths are exercised on any machine),
/// parking when idle (tests share the CPUs), and a default timeout for expectations. It derefs
/// to the [`Runtime`]; dropping it shuts the runtime down.
pub struct TestKit {
    rt: Option<Runtime>,
    timeout: Duration,
}

impl Default for TestKit {
    fn default() -> Self {
        Self::new()
    }
}

impl TestKit {
    /// Two shards, `Idle::Park`, 3 s expectation timeout.
    pub fn new() -> Self {
        Self::with_runtime(Runtime::builder().shards(Shards::Count(2)).idle(Idle::Park).name("testkit"))
    }

    /// A kit over a runtime built from `builder`. Panics if it does not build.
    pub fn with_runtime(builder: Builder) -> Self {
        let rt = builder.build().unwrap_or_else(|e| panic!("test runtime failed to build: {e}"));
        Self { rt: Some(rt), timeout: DEFAULT_TIMEOUT }
    }

    /// Sets how long expectations without an explicit duration wait.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        self.rt.as_ref().expect("runtime present until shutdown")
    }

    /// A new probe backed by an actor of this runtime.
    pub fn probe(&self) -> Probe {
        let (tx, rx) = mpsc::channel();
        let t = tx.clone();
        let actor = self
            .spawn_with(SpawnOptions::new().never_passivate(), move || ProbeActor { tx: t.clone() })
            .expect("probe actor spawns");
        // Its start (and `ActorStarted` event) is over before the probe is handed out.
        actor
            .ask(|r| AnyMsg::new(ProbeCtl::Sync(r)))
            .timeout(self.timeout)
            .wait()
            .unwrap_or_else(|e| panic!("probe actor did not start: {e}"));
        Probe {
            actor: Some(actor),
            tx,
            rx,
            timeout: self.timeout,
            adapters: Mutex::default(),
            watched: Mutex::default(),
            sub: None,
        }
    }

    /// A probe that receives the runtime's events that `filter` accepts, as [`Event`]
    /// messages (use `expect_of_type::<Event>()` or `expect_message(event)`).
    pub fn event_probe(&self, filter: impl Fn(&Event) -> bool + Send + Sync + 'static) -> Probe {
        let mut p = self.probe();
        let tx = p.tx.clone();
        let sink = Box::new(move |ev: Event| tx.send(Received::new(ev)).is_ok());
        let shared = &self.runtime().handle().shared;
        let id = shared.events.add(Box::new(filter), sink);
        p.sub = Some(Subscription::new(id, Arc::downgrade(shared)));
        p
    }

    /// Shuts the runtime down and returns what `Runtime::shutdown` returned.
    pub fn shutdown(mut self) -> Result<(), ShutdownError> {
        self.rt.take().map_or(Ok(()), Runtime::shutdown)
    }
}

impl std::ops::Deref for TestKit {
    type Target = Runtime;
    fn deref(&self) -> &Runtime {
        self.runtime()
    }
}

/// One item a probe received: a message (with its `Debug` text when known, else its type
/// name) or a `Signal`.
pub struct Received {
    msg: Box<dyn Any + Send>,
    shown: String,
}

impl Received {
    fn new<T: Debug + Send + 'static>(m: T) -> Self {
        Self { shown: format!("{m:?}"), msg: Box::new(m) }
    }
    /// Whether it is a `T`.
    pub fn is<T: 'static>(&self) -> bool {
        self.msg.is::<T>()
    }
    /// It as a `T`, or itself back.
    pub fn downcast<T: 'static>(self) -> Result<T, Received> {
        match self.msg.downcast::<T>() {
            Ok(m) => Ok(*m),
            Err(msg) => Err(Received { msg, shown: self.shown }),
        }
    }
}

impl Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// Receives on behalf of a test: give its addresses to actors (or send with it as the
/// sender), then assert on what arrives.
pub struct Probe {
    actor: Option<ActorRef<AnyMsg>>,
    tx: mpsc::Sender<Received>,
    rx: mpsc::Receiver<Received>,
    timeout: Duration,
    adapters: Mutex<HashMap<TypeId, AnyRef>>,
    watched: Mutex<HashSet<ActorId>>,
    sub: Option<Subscription>,
}

/// Control messages for the probe's actor.
enum ProbeCtl {
    /// Watch the actor; answer once the watch has reached it.
    Watch(ActorId, Reply<()>),
    /// Stop watching it; answer once that has reached it.
    Unwatch(ActorId, Reply<()>),
    /// Answer (the actor has started).
    Sync(Reply<()>),
}

/// The probe's actor: forwards everything it receives, and the `Terminated` signals of what it
/// watches, to the test thread.
struct ProbeActor {
    tx: mpsc::Sender<Received>,
}

impl Actor for ProbeActor {
    type Msg = AnyMsg;
    fn receive(&mut self, ctx: &mut Ctx<Self>, msg: AnyMsg) -> Result<(), ActorError> {
        match msg.downcast::<ProbeCtl>() {
            Ok(ProbeCtl::Sync(r)) => r.send(()),
            Ok(ProbeCtl::Watch(id, done)) => {
                let target = AnyRef::new(ctx.runtime().shared.clone(), id);
                ctx.watch(&target);
                answer_once_landed(ctx, &target, done);
            }
            Ok(ProbeCtl::Unwatch(id, done)) => {
                let target = AnyRef::new(ctx.runtime().shared.clone(), id);
                ctx.unwatch(&target);
                answer_once_landed(ctx, &target, done);
            }
            Err(m) => {
                let shown = m.type_name().to_string();
                let _ = self.tx.send(Received { msg: m.into_box(), shown });
            }
        }
        Ok(())
    }
    fn signal(&mut self, _: &mut Ctx<Self>, sig: Signal) -> Result<(), ActorError> {
        let _ = self.tx.send(Received::new(sig));
        Ok(())
    }
}

/// Answers `done` once what the probe just sent `target` on its system lane (a watch, an
/// unwatch) has reached it: the lane is FIFO along one path, so a request sent after it is
/// answered (or dropped, if the target is gone) only after.
fn answer_once_landed(ctx: &mut Ctx<ProbeActor>, target: &AnyRef, done: Reply<()>) {
    let landed = target.metrics();
    ctx.spawn_task(async move {
        let _ = landed.await;
        done.send(());
    });
}

/// Forwards messages of one type, with their `Debug` text, to a probe.
struct Adapter<T> {
    tx: mpsc::Sender<Received>,
    _t: std::marker::PhantomData<fn(T)>,
}

impl<T: Debug + Send + 'static> Actor for Adapter<T> {
    type Msg = T;
    fn receive(&mut self, _: &mut Ctx<Self>, msg: T) -> Result<(), ActorError> {
        let _ = self.tx.send(Received::new(msg));
        Ok(())
    }
}

impl Probe {
    fn actor(&self) -> &ActorRef<AnyMsg> {
        self.actor.as_ref().expect("probe actor present until drop")
    }

    /// The probe's address for any message type: what an actor sends through it (for example
    /// a reply to `ctx.sender()` when the probe sent the request) arrives here.
    pub fn any_ref(&self) -> AnyRef {
        self.actor().untyped()
    }

    /// A typed address whose messages arrive at this probe (one small forwarding actor per
    /// type, on the same shard as the probe's actor).
    pub fn actor_ref<T: Debug + Send + 'static>(&self) -> ActorRef<T> {
        let mut adapters = self.adapters.lock();
        if let Some(r) = adapters.get(&TypeId::of::<T>()) {
            return ActorRef::new(r.shared.clone(), r.id);
        }
        let me = self.actor();
        let tx = self.tx.clone();
        let opts = SpawnOptions::new().placement(Placement::Shard(me.id().shard())).never_passivate();
        let r = crate::runtime::Handle { shared: me.untyped().shared }
            .spawn_with(opts, move || Adapter::<T> { tx: tx.clone(), _t: std::marker::PhantomData })
            .expect("probe adapter spawns");
        adapters.insert(TypeId::of::<T>(), r.untyped());
        r
    }

    /// Sends `msg` to `target` with this probe as the sender.
    pub fn tell<M: Send + 'static>(&self, target: &ActorRef<M>, msg: M) {
        let sender = self.actor().id().as_u64();
        target
            .tell_with_sender(msg, sender)
            .unwrap_or_else(|_| panic!("probe tell: the runtime has shut down"));
    }

    /// Asks `target` and waits (up to the kit's timeout) for the answer. Panics if none comes.
    pub fn ask<M: Send + 'static, T: Send + 'static>(
        &self,
        target: &ActorRef<M>,
        make: impl FnOnce(Reply<T>) -> M,
    ) -> T {
        target
            .ask(make)
            .timeout(self.timeout)
            .wait()
            .unwrap_or_else(|e| panic!("probe ask to {target:?} failed: {e}"))
    }

    /// Watches `target` and returns once the watch has reached it, so a stop that follows is
    /// seen with its reason: its stop arrives as `Signal::Terminated` (see
    /// `expect_terminated`). Watching an actor already gone gives `StopReason::NotFound`.
    pub fn watch(&self, target: &impl Address) {
        let id = target.actor_id();
        self.watched.lock().insert(id);
        self.actor()
            .ask(|done| AnyMsg::new(ProbeCtl::Watch(id, done)))
            .timeout(self.timeout)
            .wait()
            .unwrap_or_else(|e| panic!("probe watch of {id} failed: {e}"));
    }

    /// Stops watching `target` and returns once that has reached it: a stop that follows is not
    /// reported.
    pub fn unwatch(&self, target: &impl Address) {
        let id = target.actor_id();
        self.watched.lock().remove(&id);
        self.actor()
            .ask(|done| AnyMsg::new(ProbeCtl::Unwatch(id, done)))
            .timeout(self.timeout)
            .wait()
            .unwrap_or_else(|e| panic!("probe unwatch of {id} failed: {e}"));
    }

    fn next(&self, d: Duration) -> Option<Received> {
        self.rx.recv_timeout(d).ok()
    }

    /// The next item if one arrives within `d` (no expectation: for "at most one more").
    pub fn next_within(&self, d: Duration) -> Option<Received> {
        self.next(d)
    }

    /// Expects the next item, within the kit's timeout, to equal `expected`.
    #[track_caller]
    pub fn expect_message<T: PartialEq + Debug + 'static>(&self, expected: T) {
        self.expect_message_within(self.timeout, expected)
    }

    /// Expects the next item, within `d`, to equal `expected`.
    #[track_caller]
    pub fn expect_message_within<T: PartialEq + Debug + 'static>(&self, d: Duration, expected: T) {
        match self.next(d) {
            None => panic!("expected {expected:?} within {d:?}, got nothing"),
            Some(r) => match r.downcast::<T>() {
                Ok(m) if m == expected => {}
                Ok(m) => panic!("expected {expected:?}, got {m:?}"),
                Err(r) => panic!("expected {expected:?}, got {r:?}"),
            },
        }
    }

    /// Expects nothing to arrive for `d`.
    #[track_caller]
    pub fn expect_no_message(&self, d: Duration) {
        if let Some(r) = self.next(d) {
            panic!("expected no message for {d:?}, got {r:?}");
        }
    }

    /// Expects some item within the kit's timeout, and returns it.
    #[track_caller]
    pub fn expect_any(&self) -> Received {
        self.expect_any_within(self.timeout)
    }

    /// Expects some item within `d`, and returns it.
    #[track_caller]
    pub fn expect_any_within(&self, d: Duration) -> Received {
        self.next(d).unwrap_or_else(|| panic!("expected a message within {d:?}, got nothing"))
    }

    /// Expects the next item to be a `T`, and returns it.
    #[track_caller]
    pub fn expect_of_type<T: 'static>(&self) -> T {
        self.expect_of_type_within(self.timeout)
    }

    /// Expects the next item, within `d`, to be a `T`, and returns it (GoAkt's
    /// `ExpectMessageOfTypeWithin`).
    #[track_caller]
    pub fn expect_of_type_within<T: 'static>(&self, d: Duration) -> T {
        match self.next(d) {
            None => panic!("expected a {} within {d:?}, got nothing", std::any::type_name::<T>()),
            Some(r) => r
                .downcast::<T>()
                .unwrap_or_else(|r| panic!("expected a {}, got {r:?}", std::any::type_name::<T>())),
        }
    }

    /// Expects `target` to stop: watches it (if it is already gone, the reason is `NotFound`)
    /// and expects the next item to be its `Signal::Terminated`. Returns the reason.
    #[track_caller]
    pub fn expect_terminated(&self, target: &impl Address) -> StopReason {
        let id = target.actor_id();
        if !self.watched.lock().contains(&id) {
            self.watch(target);
        }
        let d = self.timeout;
        match self.next(d) {
            None => panic!("expected {id} to terminate within {d:?}, got nothing"),
            Some(r) => match r.downcast::<Signal>() {
                Ok(Signal::Terminated { id: got, reason }) if got == id => reason,
                Ok(other) => panic!("expected {id} to terminate, got {other:?}"),
                Err(r) => panic!("expected {id} to terminate, got {r:?}"),
            },
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if let Some(s) = self.sub.take() {
            s.unsubscribe();
        }
        for (_, a) in self.adapters.lock().drain() {
            drop(a.stop());
        }
        if let Some(a) = self.actor.take() {
            drop(a.stop());
        }
    }
}
