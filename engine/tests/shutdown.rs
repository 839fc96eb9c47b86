//! Coordinated shutdown: tasks run in registration order while the actors still run; a
//! failing task halts the shutdown and hands the runtime back.

use corelane::{Actor, ActorError, Ctx, Idle, Reply, Runtime, Shards, ShutdownError};
use std::sync::atomic::{AtomicBool, Ordering};
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
