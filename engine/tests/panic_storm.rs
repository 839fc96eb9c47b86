//! A panic storm: 10 000 panicking messages over eight actors that restart each time. The
//! runtime stays up, the healthy actors keep answering throughout, and the restart counts match.
//! (Its own test binary: it silences the panic hook, which is process-wide.)

use corelane::{
    Actor, ActorError, ActorRef, Ctx, DeadLetterReason, Directive, Idle, Reply, Runtime, Shards, Supervisor,
};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const FRAGILE: usize = 8;
const PANICS: usize = 10_000;

enum Msg {
    Panic,
    Ping(Reply<()>),
}

struct Fragile;
impl Actor for Fragile {
    type Msg = Msg;
    fn receive(&mut self, _: &mut Ctx<Self>, m: Msg) -> Result<(), ActorError> {
        match m {
            Msg::Panic => panic!("storm"),
            Msg::Ping(r) => r.send(()),
        }
        Ok(())
    }
}

#[test]
fn ten_thousand_panics_restart_their_actors_and_nothing_else() {
    std::panic::set_hook(Box::new(|_| {}));
    let rt = Runtime::builder()
        .shards(Shards::Count(2))
        .idle(Idle::Park)
        .supervisor(Supervisor::one_for_one().directive(Directive::Restart).max_restarts(u32::MAX, WAIT))
        .build()
        .unwrap();
    let fragile: Vec<ActorRef<Msg>> = (0..FRAGILE).map(|i| rt.spawn_on(i % 2, || Fragile).unwrap()).collect();
    let healthy: Vec<ActorRef<Msg>> = (0..4).map(|i| rt.spawn_on(i % 2, || Fragile).unwrap()).collect();
    for k in 0..PANICS {
        fragile[k % FRAGILE].tell(Msg::Panic).unwrap();
        if k % 500 == 0 {
            for h in &healthy {
                h.ask(Msg::Ping).timeout(WAIT).wait().expect("a healthy actor answers during the storm");
            }
        }
    }
    // A ping queued behind each actor's panics: once answered, all of them were handled.
    for f in &fragile {
        f.ask(Msg::Ping).timeout(WAIT).wait().expect("a restarted actor answers");
    }
    let restarts: Vec<u32> =
        fragile.iter().map(|f| f.metrics().timeout(WAIT).wait().unwrap().restarts).collect();
    assert_eq!(restarts, vec![(PANICS / FRAGILE) as u32; FRAGILE]);
    for h in &healthy {
        assert_eq!(h.metrics().timeout(WAIT).wait().unwrap().restarts, 0);
    }
    let m = rt.metrics();
    assert_eq!(m.dead_letters_for(DeadLetterReason::HandlerFailed), PANICS as u64);
    assert_eq!(m.actors, (FRAGILE + 4) as u64);
    rt.shutdown().unwrap();
}
