//! Messaging patterns: sender, forward, batch tell, batch ask, pipe_to, tasks tied to an
//! actor's life.

use corelane::testkit::TestKit;
use corelane::{Actor, ActorError, ActorRef, AskError, Ctx, Placement, Reply};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(5);

/// Replies to whoever sent the message.
struct Echo;
impl Actor for Echo {
    type Msg = String;
    fn receive(&mut self, ctx: &mut Ctx<Self>, m: String) -> Result<(), ActorError> {
        if let Some(s) = ctx.sender() {
            ctx.tell_any(&s, format!("echo {m}")).expect("send");
        }
        Ok(())
    }
}

/// Forwards everything to its target, keeping the original sender.
struct Relay(ActorRef<String>);
impl Actor for Relay {
    type Msg = String;
    fn receive(&mut self, ctx: &mut Ctx<Self>, m: String) -> Result<(), ActorError> {
        ctx.forward(&self.0, format!("{m} via relay")).expect("forward");
        Ok(())
    }
}

#[test]
fn the_sender_is_who_sent_it_and_a_plain_tell_has_none() {
    let kit = TestKit::new();
    let p = kit.probe();
    let echo = kit.spawn(|| Echo).unwrap();
    p.tell(&echo, "a".into());
    p.expect_message("echo a".to_string());
    echo.tell("b".into()).unwrap();
    p.expect_no_message(Duration::from_millis(100));
}

#[test]
fn forward_keeps_the_original_sender_across_shards() {
    let kit = TestKit::new();
    let p = kit.probe();
    let echo = kit.spawn_on(1, || Echo).unwrap();
    let relay = kit.spawn_on(0, move || Relay(echo.clone())).unwrap();
    p.tell(&relay, "hi".into());
    p.expect_message("echo hi via relay".to_string());
}

/// Records messages in order; answers `Dump` with what it has.
struct Log(Vec<u32>);
enum LogMsg {
    Put(u32),
    Dump(Reply<Vec<u32>>),
    Burst(ActorRef<LogMsg>),
}
impl Actor for Log {
    type Msg = LogMsg;
    fn receive(&mut self, _: &mut Ctx<Self>, m: LogMsg) -> Result<(), ActorError> {
        match m {
            LogMsg::Put(i) => self.0.push(i),
            LogMsg::Dump(r) => r.send(std::mem::take(&mut self.0)),
            LogMsg::Burst(to) => {
                to.batch_tell((1000..1100).map(LogMsg::Put)).map_err(|_| ActorError::msg("closed"))?
            }
        }
        Ok(())
    }
}

#[test]
fn batch_tell_is_handled_in_order_from_a_thread_and_from_an_actor() {
    let kit = TestKit::new();
    let log = kit.spawn_on(1, || Log(vec![])).unwrap();
    log.batch_tell((0..500).map(LogMsg::Put)).unwrap();
    assert_eq!(log.ask(LogMsg::Dump).timeout(WAIT).wait().unwrap(), (0..500).collect::<Vec<_>>());
    let sender = kit.spawn_on(0, || Log(vec![])).unwrap();
    sender.tell(LogMsg::Burst(log.clone())).unwrap();
    // The burst crossed shards; wait for all of it.
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    while got.len() < 100 && Instant::now() < deadline {
        got.extend(log.ask(LogMsg::Dump).timeout(WAIT).wait().unwrap());
    }
    assert_eq!(got, (1000..1100).collect::<Vec<_>>());
}

/// Answers requests in reverse order of arrival, once it has `n` of them; never answers
/// `Never`.
struct Reverser {
    n: usize,
    held: Vec<(u64, Reply<u64>)>,
}
enum RevMsg {
    Square(u64, Reply<u64>),
    Never(Reply<u64>),
}
impl Actor for Reverser {
    type Msg = RevMsg;
    fn receive(&mut self, _: &mut Ctx<Self>, m: RevMsg) -> Result<(), ActorError> {
        match m {
            RevMsg::Square(i, r) => {
                self.held.push((i, r));
                if self.held.len() == self.n {
                    while let Some((i, r)) = self.held.pop() {
                        r.send(i * i);
                    }
                }
            }
            RevMsg::Never(r) => std::mem::forget(r),
        }
        Ok(())
    }
}

#[test]
fn batch_ask_returns_replies_in_request_order() {
    let kit = TestKit::new();
    let r = kit.spawn(|| Reverser { n: 10, held: vec![] }).unwrap();
    let got =
        r.batch_ask((1..=10).map(|i| move |reply| RevMsg::Square(i, reply))).timeout(WAIT).wait().unwrap();
    assert_eq!(got, (1..=10).map(|i| i * i).collect::<Vec<_>>());
}

#[test]
fn batch_ask_has_one_timeout_for_the_whole_batch() {
    let kit = TestKit::new();
    let r = kit.spawn(|| Reverser { n: 2, held: vec![] }).unwrap();
    let start = Instant::now();
    let reqs: Vec<Box<dyn FnOnce(Reply<u64>) -> RevMsg>> = vec![
        Box::new(|reply| RevMsg::Square(2, reply)),
        Box::new(|reply| RevMsg::Square(3, reply)),
        Box::new(RevMsg::Never),
        Box::new(RevMsg::Never),
    ];
    let t = Duration::from_millis(200);
    assert_eq!(r.batch_ask(reqs).timeout(t).wait(), Err(AskError::Timeout));
    let took = start.elapsed();
    assert!(took >= t && took < t * 2, "two unanswered requests share one {t:?} deadline, took {took:?}");
}

/// Computes on a task and pipes the outcome back to itself.
struct Piper {
    out: ActorRef<String>,
}
enum PipeMsg {
    Start(u32),
    Done(Result<u32, String>),
}
impl Actor for Piper {
    type Msg = PipeMsg;
    fn receive(&mut self, ctx: &mut Ctx<Self>, m: PipeMsg) -> Result<(), ActorError> {
        match m {
            PipeMsg::Start(i) => {
                let work = async move {
                    if i == 0 {
                        Err("zero".to_string())
                    } else {
                        Ok(i * 10)
                    }
                };
                ctx.pipe_to(&ctx.myself(), async move { PipeMsg::Done(work.await) });
            }
            PipeMsg::Done(r) => {
                let _ = self.out.tell(format!("{r:?}"));
            }
        }
        Ok(())
    }
}

#[test]
fn pipe_to_delivers_a_future_result_or_its_error_as_a_message() {
    let kit = TestKit::new();
    let p = kit.probe();
    let out = p.actor_ref::<String>();
    let a = kit.spawn(move || Piper { out: out.clone() }).unwrap();
    a.tell(PipeMsg::Start(4)).unwrap();
    p.expect_message("Ok(40)".to_string());
    a.tell(PipeMsg::Start(0)).unwrap();
    p.expect_message("Err(\"zero\")".to_string());
}

/// Starts a task that never finishes; the task reports when it is dropped.
struct WithTask(mpsc::Sender<&'static str>);
struct DropReport(mpsc::Sender<&'static str>);
impl Drop for DropReport {
    fn drop(&mut self) {
        let _ = self.0.send("task dropped");
    }
}
impl Actor for WithTask {
    type Msg = ();
    fn started(&mut self, ctx: &mut Ctx<Self>) -> Result<(), ActorError> {
        let report = DropReport(self.0.clone());
        ctx.spawn_task(async move {
            let _r = report;
            std::future::pending::<()>().await;
        });
        Ok(())
    }
    fn receive(&mut self, _: &mut Ctx<Self>, _: ()) -> Result<(), ActorError> {
        Err(ActorError::msg("restart me"))
    }
}

#[test]
fn tasks_spawned_by_an_actor_end_with_it_and_with_each_restart() {
    let kit = TestKit::new();
    let (tx, rx) = mpsc::channel();
    let a = kit.spawn(move || WithTask(tx.clone())).unwrap();
    assert!(rx.recv_timeout(Duration::from_millis(100)).is_err(), "the task runs while the actor lives");
    a.tell(()).unwrap(); // fails: the default supervisor restarts it
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), "task dropped");
    a.stop().timeout(WAIT).wait().unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), "task dropped", "the new instance's task ends at stop");
}

/// Passes what it receives on to `0`.
struct PassTo(ActorRef<String>);
impl Actor for PassTo {
    type Msg = String;
    fn receive(&mut self, _: &mut Ctx<Self>, m: String) -> Result<(), ActorError> {
        self.0.tell(m).map_err(|_| ActorError::msg("relay target closed"))
    }
}

#[test]
fn pipe_to_from_outside_an_actor_delivers_the_output_from_a_thread_or_a_shard() {
    let kit = TestKit::new();
    let p = kit.probe();
    let out = p.actor_ref::<String>();
    let on0 = kit
        .spawn_with(Placement::Shard(0), {
            let o = out.clone();
            move || PassTo(o.clone())
        })
        .unwrap();
    let on1 = kit
        .spawn_with(Placement::Shard(1), {
            let o = out.clone();
            move || PassTo(o.clone())
        })
        .unwrap();
    // From this thread: the future runs on the target's shard.
    kit.pipe_to(&on0, async { "from a thread".to_string() }).unwrap();
    p.expect_message("from a thread".to_string());
    // From a shard (block_on runs on shard 0): to an actor on the same shard, and on the other.
    let h = kit.handle().clone();
    let (t0, t1) = (on0.clone(), on1.clone());
    kit.block_on(move || async move {
        h.pipe_to(&t0, async { "to my shard".to_string() }).unwrap();
        h.pipe_to(&t1, async { "to the other shard".to_string() }).unwrap();
    })
    .unwrap();
    let mut got = [p.expect_of_type::<String>(), p.expect_of_type::<String>()];
    got.sort();
    assert_eq!(got, ["to my shard".to_string(), "to the other shard".to_string()]);
    let h = kit.handle().clone();
    kit.shutdown().unwrap();
    assert!(matches!(h.pipe_to(&on0, async { String::new() }), Err(corelane::SpawnError::Closed)));
}
