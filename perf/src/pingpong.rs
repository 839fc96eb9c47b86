//! `pingpong-local` and `pingpong-cross`: two actors bounce one message, on one shard or across
//! two. Reported as the mean per round trip, and as percentiles of batch means (one sample per
//! `BATCH` round trips, so reading the clock does not dominate a round trip of tens of ns).

use crate::baseline::BATCH;
use crate::report::{fig, percentiles, Figure};
use crate::{engine_runtime, Cores};
use corelane::{Actor, ActorError, ActorRef, Ctx, Reply};
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

enum Ball {
    Peer(ActorRef<Ball>, Reply<()>),
    Serve { rounds: u64, done: Reply<(Duration, Histogram<u64>)> },
    Hit(u64),
}

#[derive(Default)]
struct Player {
    peer: Option<ActorRef<Ball>>,
    start: Option<Instant>,
    batch_start: Option<Instant>,
    hist: Option<Histogram<u64>>,
    done: Option<Reply<(Duration, Histogram<u64>)>>,
}

impl Actor for Player {
    type Msg = Ball;
    #[inline]
    fn receive(&mut self, _: &mut Ctx<Self>, m: Ball) -> Result<(), ActorError> {
        match m {
            Ball::Hit(k) => {
                if self.done.is_some() {
                    // The server counts down; every BATCH round trips it samples the clock.
                    if k % BATCH == 0 {
                        let now = Instant::now();
                        if let Some(b) = self.batch_start.replace(now) {
                            let ns = (now - b).as_nanos() as u64 / BATCH;
                            self.hist.as_mut().unwrap().record(ns.max(1)).unwrap();
                        }
                    }
                    if k == 0 {
                        let t = self.start.take().unwrap().elapsed();
                        let h = self.hist.take().unwrap();
                        self.done.take().unwrap().send((t, h));
                        return Ok(());
                    }
                    let _ = self.peer.as_ref().unwrap().tell(Ball::Hit(k - 1));
                } else {
                    let _ = self.peer.as_ref().unwrap().tell(Ball::Hit(k));
                }
            }
            Ball::Peer(p, r) => {
                self.peer = Some(p);
                r.send(());
            }
            Ball::Serve { rounds, done } => {
                self.done = Some(done);
                self.hist = Some(Histogram::new(3).unwrap());
                self.start = Some(Instant::now());
                self.batch_start = None;
                let _ = self.peer.as_ref().unwrap().tell(Ball::Hit(rounds));
            }
        }
        Ok(())
    }
}

pub(crate) fn pingpong(name: &'static str, cores: Cores, cross: bool, rounds: u64) -> Vec<Figure> {
    let rt = engine_runtime(cores, 2);
    let a = rt.spawn_on(0, Player::default).unwrap();
    let b = rt.spawn_on(if cross { 1 } else { 0 }, Player::default).unwrap();
    let wait = Duration::from_secs(120);
    a.ask(|r| Ball::Peer(b.clone(), r)).timeout(wait).wait().unwrap();
    b.ask(|r| Ball::Peer(a.clone(), r)).timeout(wait).wait().unwrap();
    a.ask(|done| Ball::Serve { rounds: rounds / 10, done }).timeout(wait).wait().unwrap();
    let (t, h) = a.ask(|done| Ball::Serve { rounds, done }).timeout(wait).wait().unwrap();
    rt.shutdown().unwrap();
    let mut out = vec![fig(name, "ns_per_roundtrip", t.as_nanos() as f64 / (rounds + 1) as f64, "ns")];
    out.extend(percentiles(name, &h));
    out
}
