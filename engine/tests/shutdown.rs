//! Coordinated shutdown: tasks run in registration order while the actors still run; a
//! failing task halts the shutdown and hands the runtime back.

use corelane::{Actor, ActorError, Ctx, Idle, Reply, Runtime, Shards, ShutdownError, SpawnError};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

struct Store(u64);
impl Actor for Store {
    type Msg = Reply<u64>;
    fn receive(&mut self, _: &mut Ctx<Self>, r: Reply<u64>) -> Result<(), ActorError> {
        self.0 += 1;
        r.send(self.0);
        Ok(())
    }
}

#[test]
fn tasks_run_in_order_before_the_actors_stop() {
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
    let rt = Runtime::builder()
        .shards(Shards::Count(2))
        .idle(Idle::Park)
        .on_shutdown("drain-http", move |_| {
            l1.lock().unwrap().push("drain-http".into());
            Ok(())
        })
        .on_shutdown("flush-store", move |h| {
            // Actors still run: the task can talk to them.
            let store = h.lookup::<Reply<u64>>("store").expect("registered");
            let n = store.ask(|r| r).timeout(WAIT).wait()?;
            l2.lock().unwrap().push(format!("flush-store saw {n}"));
            Ok(())
        })
        .on_shutdown("close-log", move |_| {
            l3.lock().unwrap().push("close-log".into());
            Ok(())
        })
        .build()
        .unwrap();
    let store = rt.spawn(|| Store(0)).unwrap();
    rt.register("store", &store).unwrap();
    rt.shutdown().unwrap();
    assert_eq!(*log.lock().unwrap(), vec!["drain-http", "flush-store saw 1", "close-log"]);
    assert!(!store.is_alive());
}

#[test]
fn a_failing_task_halts_shutdown_and_a_retry_resumes_at_it() {
    let log = Arc::new(Mutex::new(Vec::<&'static str>::new()));
    let fixed = Arc::new(AtomicBool::new(false));
    let (l1, l2, l3, f) = (log.clone(), log.clone(), log.clone(), fixed.clone());
    let rt = Runtime::builder()
        .shards(Shards::Count(2))
        .idle(Idle::Park)
        .on_shutdown("first", move |_| {
            l1.lock().unwrap().push("first");
            Ok(())
        })
        .on_shutdown("flaky", move |_| {
            if f.load(Ordering::SeqCst) {
                l2.lock().unwrap().push("flaky ok");
                Ok(())
            } else {
                Err(ActorError::msg("disk full"))
            }
        })
        .on_shutdown("last", move |_| {
            l3.lock().unwrap().push("last");
            Ok(())
        })
        .build()
        .unwrap();
    let store = rt.spawn(|| Store(0)).unwrap();
    let rt = match rt.shutdown() {
        Err(ShutdownError::TaskFailed { task, error, runtime }) => {
            assert_eq!(task, "flaky");
            assert_eq!(error.to_string(), "disk full");
            runtime
        }
        other => panic!("expected TaskFailed, got {other:?}"),
    };
    assert_eq!(*log.lock().unwrap(), vec!["first"], "later tasks did not run");
    assert_eq!(store.ask(|r| r).timeout(WAIT).wait().unwrap(), 1, "actors keep running");
    fixed.store(true, Ordering::SeqCst);
    rt.shutdown().unwrap();
    assert_eq!(*log.lock().unwrap(), vec!["first", "flaky ok", "last"]);
    assert!(!store.is_alive());
}

/// Counts what happens to a parent (which spawns a child in `started`, the guide's pattern)
/// and its child.
#[derive(Default)]
struct Tally {
    parent_started: AtomicUsize,
    parent_stopped: AtomicUsize,
    child_started: AtomicUsize,
    child_stopped: AtomicUsize,
    handled: AtomicUsize,
}

struct Parent(Arc<Tally>);
struct Child(Arc<Tally>);

impl Actor for Parent {
    type Msg = u32;
    fn started(&mut self, ctx: &mut Ctx<Self>) -> Result<(), ActorError> {
        let t = self.0.clone();
        ctx.spawn_child(move || Child(t.clone()))?;
        self.0.parent_started.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn receive(&mut self, _: &mut Ctx<Self>, _: u32) -> Result<(), ActorError> {
        self.0.handled.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn stopped(&mut self, _: &mut Ctx<Self>) {
        self.0.parent_stopped.fetch_add(1, Ordering::SeqCst);
    }
}

impl Actor for Child {
    type Msg = ();
    fn started(&mut self, _: &mut Ctx<Self>) -> Result<(), ActorError> {
        self.0.child_started.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn receive(&mut self, _: &mut Ctx<Self>, _: ()) -> Result<(), ActorError> {
        Ok(())
    }
    fn stopped(&mut self, _: &mut Ctx<Self>) {
        self.0.child_stopped.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_shutdown_right_after_a_spawn_stops_it_gracefully_and_loses_nothing() {
    for round in 0..40 {
        let rt = Runtime::builder().shards(Shards::Count(2)).idle(Idle::Park).build().unwrap();
        let t = Arc::new(Tally::default());
        let t2 = t.clone();
        let p = rt.spawn(move || Parent(t2.clone())).unwrap();
        for i in 0..300 {
            p.tell(i).unwrap();
        }
        let dead = rt.handle().clone();
        rt.shutdown().expect("shutdown");
        let n = |c: &AtomicUsize| c.load(Ordering::SeqCst);
        assert_eq!(n(&t.handled), 300, "round {round}: every message accepted before shutdown was handled");
        assert_eq!(
            (n(&t.parent_started), n(&t.parent_stopped), n(&t.child_started), n(&t.child_stopped)),
            (1, 1, 1, 1),
            "round {round}: parent and child each started and stopped once"
        );
        assert_eq!(dead.dead_letters(), 0, "round {round}");
    }
}

/// Spawns a child from `receive` once it is stopping; reports what the spawn returned.
struct LateSpawner(std::sync::mpsc::Sender<Result<(), SpawnError>>);
impl Actor for LateSpawner {
    type Msg = ();
    fn receive(&mut self, _: &mut Ctx<Self>, _: ()) -> Result<(), ActorError> {
        Ok(())
    }
    fn stopped(&mut self, ctx: &mut Ctx<Self>) {
        let tx = self.0.clone();
        let r = ctx.spawn_child(move || LateSpawner(tx.clone())).map(|_| ());
        let _ = self.0.send(r);
    }
}

#[test]
fn a_stopping_parent_gets_a_clear_error_for_a_child_spawned_during_shutdown() {
    let rt = Runtime::builder().shards(Shards::Count(1)).idle(Idle::Park).build().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    rt.spawn(move || LateSpawner(tx.clone())).unwrap();
    let h = rt.handle().clone();
    rt.shutdown().expect("shutdown");
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), Err(SpawnError::ShuttingDown));
    assert!(matches!(h.spawn(|| Store(0)), Err(SpawnError::Closed)));
}

#[test]
fn kill_right_after_spawn_always_follows_started_and_runs_stopped() {
    let rt = Runtime::builder().shards(Shards::Count(2)).idle(Idle::Park).build().unwrap();
    let t = Arc::new(Tally::default());
    for _ in 0..300 {
        let t2 = t.clone();
        let a = rt.spawn(move || Child(t2.clone())).unwrap();
        a.kill().timeout(WAIT).wait().unwrap();
    }
    let n = |c: &AtomicUsize| c.load(Ordering::SeqCst);
    assert_eq!((n(&t.child_started), n(&t.child_stopped)), (300, 300));
    rt.shutdown().unwrap();
}
