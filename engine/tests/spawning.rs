//! Spawning: shards and their threads, placement, names, factories, and messages that race a
//! spawn.

use corelane::{Actor, ActorError, ActorRef, Ctx, Idle, Placement, Reply, Runtime, Shards};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;

use common::*;

enum WhereMsg {
    Where(Reply<(usize, String)>),
    /// The cores the shard's thread may run on.
    Cores(Reply<Vec<usize>>),
}
struct Where;
impl Actor for Where {
    type Msg = WhereMsg;
    fn receive(&mut self, ctx: &mut Ctx<Self>, msg: WhereMsg) -> Result<(), ActorError> {
        match msg {
            WhereMsg::Where(r) => {
                r.send((ctx.shard_index(), std::thread::current().name().unwrap_or("").to_string()))
            }
            WhereMsg::Cores(r) => {
                r.send(core_affinity::get_core_ids().unwrap_or_default().iter().map(|c| c.id).collect())
            }
        }
        Ok(())
    }
}

#[test]
fn four_shards_on_two_cores_unpinned() {
    let rt = Runtime::builder().shards(Shards::Count(4)).pin(false).idle(Idle::Park).build().unwrap();
    assert_eq!(rt.shard_count(), 4);
    for shard in 0..4 {
        let a = rt.spawn_on(shard, || Where).unwrap();
        let (s, thread) = a.ask(WhereMsg::Where).timeout(WAIT).wait().unwrap();
        assert_eq!(s, shard);
        assert_eq!(thread, format!("corelane-{shard}"));
    }
    rt.shutdown().unwrap();
}

#[test]
fn pinning_more_shards_than_cores_is_an_error() {
    let cores = core_count();
    let e = Runtime::builder().shards(Shards::Count(cores + 1)).pin(true).build().err().unwrap();
    assert!(matches!(e, corelane::BuildError::NotEnoughCores { .. }), "{e}");
}

#[test]
fn named_cores_are_pinned_by_default_and_a_core_that_does_not_exist_is_named() {
    let last = *core_affinity::get_core_ids().unwrap().iter().map(|c| &c.id).max().unwrap();
    let rt = Runtime::builder().shards(Shards::Cores(vec![last])).idle(Idle::Park).build().unwrap();
    let allowed = rt.spawn(|| Where).unwrap().ask(WhereMsg::Cores).timeout(WAIT).wait().unwrap();
    assert_eq!(allowed, [last], "the shard runs on its core only");
    rt.shutdown().unwrap();
    let e = Runtime::builder().shards(Shards::Cores(vec![last, 4095])).build().err().unwrap();
    assert!(matches!(e, corelane::BuildError::NoSuchCore { core: 4095, .. }), "{e}");
    assert!(e.to_string().contains("core 4095"), "{e}");
}

fn core_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[test]
fn non_send_state_compiles_and_runs() {
    enum M {
        Push(u32),
        Sum(Reply<u32>),
    }
    struct Local {
        items: Rc<RefCell<Vec<u32>>>,
    }
    impl Actor for Local {
        type Msg = M;
        fn receive(&mut self, _: &mut Ctx<Self>, m: M) -> Result<(), ActorError> {
            match m {
                M::Push(n) => self.items.borrow_mut().push(n),
                M::Sum(r) => r.send(self.items.borrow().iter().sum()),
            }
            Ok(())
        }
    }
    let rt = runtime(2, Idle::Park);
    // The factory is Send; the state it builds (an Rc) never leaves the shard.
    let a = rt.spawn_on(1, || Local { items: Rc::new(RefCell::new(Vec::new())) }).unwrap();
    for n in 1..=10 {
        a.tell(M::Push(n)).unwrap();
    }
    assert_eq!(a.ask(M::Sum).timeout(WAIT).wait().unwrap(), 55);
    rt.shutdown().unwrap();
}

#[test]
fn messages_sent_before_a_cross_shard_spawn_lands_wait_for_it() {
    enum M {
        Spawn(Reply<ActorRef<WorkMsg>>, mpsc::Sender<(u64, u64)>),
    }
    struct Spawner;
    impl Actor for Spawner {
        type Msg = M;
        fn receive(&mut self, ctx: &mut Ctx<Self>, M::Spawn(r, tx): M) -> Result<(), ActorError> {
            let w = ctx.runtime().spawn_on(1, move || Worker::new(tx.clone())).map_err(ActorError::from)?;
            // The spawn request is still unpublished in this turn; these go with it.
            for n in 1..=10 {
                w.tell(WorkMsg::Work(n)).unwrap();
            }
            r.send(w);
            Ok(())
        }
    }
    let rt = runtime(2, Idle::Park);
    let s = rt.spawn_on(0, || Spawner).unwrap();
    let (tx, rx) = mpsc::channel();
    let w = s.ask(|r| M::Spawn(r, tx)).timeout(WAIT).wait().unwrap();
    // And these come from another thread, racing the spawn request.
    for n in 11..=20 {
        w.tell(WorkMsg::Work(n)).unwrap();
    }
    w.stop().timeout(WAIT).wait().unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), (20, 210));
    rt.shutdown().unwrap();
}

#[test]
fn placement_least_loaded_and_local() {
    let rt = runtime(3, Idle::Park);
    let _a = rt.spawn_on(0, || Where).unwrap();
    let _b = rt.spawn_on(0, || Where).unwrap();
    let _c = rt.spawn_on(1, || Where).unwrap();
    // Spawns are counted when they land; a round trip to each shard makes sure they have.
    for s in 0..3 {
        rt.spawn_on(s, || Where).unwrap().ask(WhereMsg::Where).timeout(WAIT).wait().unwrap();
    }
    let d = rt.spawn_with(Placement::LeastLoaded, || Where).unwrap();
    assert_eq!(d.id().shard(), 2);
    assert!(matches!(rt.spawn_on(9, || Where), Err(corelane::SpawnError::NoSuchShard(9))));
    rt.shutdown().unwrap();
}

#[test]
fn names_are_unique_typed_and_dropped_on_stop() {
    let rt = runtime(2, Idle::Park);
    let a = rt.spawn_on(0, || Where).unwrap();
    let b = rt.spawn_on(1, || Where).unwrap();
    rt.register("where", &a).unwrap();
    assert!(matches!(rt.register("where", &b), Err(corelane::RegisterError::Taken(_))));
    assert_eq!(rt.lookup::<WhereMsg>("where"), Some(a.clone()));
    assert!(rt.lookup::<WorkMsg>("where").is_none(), "wrong message type finds nothing");
    a.stop().timeout(WAIT).wait().unwrap();
    assert!(rt.lookup::<WhereMsg>("where").is_none());
    rt.register("where", &b).unwrap();
    rt.shutdown().unwrap();
}

#[test]
fn a_name_given_at_spawn_is_found_at_once_taken_names_spawn_nothing_and_a_failed_build_frees_it() {
    let rt = runtime(2, Idle::Park);
    let a = rt.spawn_named("where", || Where).unwrap();
    // Found the moment the spawn returns (the actor may not be built yet).
    assert_eq!(rt.lookup::<WhereMsg>("where"), Some(a.clone()));
    let taken = rt.spawn_named("where", || -> Where { panic!("never built: the name is taken") });
    assert!(matches!(taken, Err(corelane::SpawnError::NameTaken(ref n)) if n == "where"), "{taken:?}");
    assert!(a.ask(WhereMsg::Where).timeout(WAIT).wait().unwrap().1.starts_with("corelane-"), "it runs");
    a.stop().timeout(WAIT).wait().unwrap();
    assert!(rt.lookup::<WhereMsg>("where").is_none(), "the name went with the actor");
    // A factory that panics: the name it was given is free again.
    let failed = rt.spawn_with(
        corelane::SpawnOptions::new().name("broken").placement(corelane::Placement::Shard(1)),
        || -> Where { panic!("cannot build") },
    );
    let deadline = std::time::Instant::now() + WAIT;
    if failed.is_ok() {
        while rt.lookup::<WhereMsg>("broken").is_some() {
            assert!(std::time::Instant::now() < deadline, "the failed actor's name was freed");
            std::thread::yield_now();
        }
    }
    assert!(rt.spawn_named("broken", || Where).is_ok());
    rt.shutdown().unwrap();
}

#[test]
fn factory_panic_is_an_error_not_a_crash() {
    struct Never;
    impl Actor for Never {
        type Msg = ();
        fn receive(&mut self, _: &mut Ctx<Self>, _: ()) -> Result<(), ActorError> {
            Ok(())
        }
    }
    enum M {
        Spawn(Reply<Result<(), corelane::SpawnError>>),
    }
    struct Spawner;
    impl Actor for Spawner {
        type Msg = M;
        fn receive(&mut self, ctx: &mut Ctx<Self>, M::Spawn(r): M) -> Result<(), ActorError> {
            r.send(ctx.spawn_child(|| -> Never { panic!("no") }).map(|_| ()));
            Ok(())
        }
    }
    let rt = runtime(1, Idle::Park);
    let s = rt.spawn_on(0, || Spawner).unwrap();
    let r = s.ask(M::Spawn).timeout(WAIT).wait().unwrap();
    assert!(matches!(r, Err(corelane::SpawnError::FactoryPanicked(ref m)) if m == "no"), "{r:?}");
    assert!(s.ask(M::Spawn).timeout(WAIT).wait().is_ok(), "the shard keeps serving");
    rt.shutdown().unwrap();
}

#[test]
fn an_actor_spawned_from_a_value_starts_from_it_and_again_from_it_after_a_restart() {
    enum M {
        Add(u64),
        Get(Reply<u64>),
        Fail,
    }
    #[derive(Clone)]
    struct Counter {
        n: u64,
        /// A handle in hand before the spawn: moved in once, no factory to clone it into.
        peer: ActorRef<WhereMsg>,
    }
    impl Actor for Counter {
        type Msg = M;
        fn receive(&mut self, _: &mut Ctx<Self>, m: M) -> Result<(), ActorError> {
            match m {
                M::Add(k) => self.n += k,
                M::Get(r) => r.send(self.n + u64::from(self.peer.is_alive())),
                M::Fail => return Err(ActorError::msg("fail on purpose")),
            }
            Ok(())
        }
    }
    let rt = runtime(2, Idle::Park);
    let peer = rt.spawn(|| Where).unwrap();
    let c = rt.spawn_value(Counter { n: 10, peer }).unwrap();
    c.tell(M::Add(5)).unwrap();
    assert_eq!(c.ask(M::Get).timeout(WAIT).wait().unwrap(), 16, "built from the value");
    c.tell(M::Fail).unwrap();
    assert_eq!(c.ask(M::Get).timeout(WAIT).wait().unwrap(), 11, "the restart starts from the value as given");
    assert_eq!(c.metrics().timeout(WAIT).wait().unwrap().restarts, 1);
    rt.shutdown().unwrap();
}

#[test]
fn an_actors_uptime_counts_from_its_spawn_and_survives_restarts() {
    enum M {
        Fail,
        Ping(Reply<()>),
    }
    struct Fragile;
    impl Actor for Fragile {
        type Msg = M;
        fn receive(&mut self, _: &mut Ctx<Self>, m: M) -> Result<(), ActorError> {
            match m {
                M::Fail => Err(ActorError::msg("fail on purpose")),
                M::Ping(r) => {
                    r.send(());
                    Ok(())
                }
            }
        }
    }
    let rt = runtime(1, Idle::Park);
    let old = rt.spawn(|| Fragile).unwrap();
    let first = old.metrics().timeout(WAIT).wait().unwrap().uptime;
    assert!(first < Duration::from_secs(1), "a new actor is young: {first:?}");
    // Wait (on the metric itself) until the old actor has aged by at least one tick.
    let deadline = Instant::now() + WAIT;
    let aged = loop {
        let u = old.metrics().timeout(WAIT).wait().unwrap().uptime;
        if u > first {
            break u;
        }
        assert!(Instant::now() < deadline, "uptime never grew");
        std::thread::yield_now();
    };
    let young = rt.spawn(|| Fragile).unwrap();
    assert!(young.metrics().timeout(WAIT).wait().unwrap().uptime < aged, "born later, younger");
    old.tell(M::Fail).unwrap();
    // Metrics travel the system lane, ahead of user messages: a ping behind the failure first.
    old.ask(M::Ping).timeout(WAIT).wait().unwrap();
    let m = old.metrics().timeout(WAIT).wait().unwrap();
    assert_eq!(m.restarts, 1);
    assert!(m.uptime >= aged, "a restart does not reset the uptime: {:?} < {aged:?}", m.uptime);
    assert!(m.uptime <= rt.metrics().uptime + Duration::from_millis(63), "no older than its runtime");
    rt.shutdown().unwrap();
}
