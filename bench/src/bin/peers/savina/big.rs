//! Savina Big: `ACTORS` actors each send `n` pings, one at a time, to neighbours picked at
//! random; a pinged actor answers with a pong, and the next ping goes out on the pong. Each
//! reports to a sink when its `n`-th pong arrives (checked: every actor got `n` pongs).
//! Messages per second (pings and pongs).

use crate::frameworks::{actix_main, corelane, tokio_main, Fw, Rng, Tally, PATIENCE};
use crate::Workload;
use std::time::{Duration, Instant};

pub(crate) const WORKLOAD: Workload = Workload {
    name: "savina-big",
    metric: "msgs_per_sec",
    unit: "msg/s",
    size: 4_000,
    user_path: false,
    about: "Savina Big: 120 actors ping random neighbours n times each",
    run,
};

const ACTORS: u64 = 120;

fn run(fw: Fw, n: u64) -> (u64, Duration) {
    let (pongs, t) = match fw {
        Fw::Corelane | Fw::CorelaneSpin | Fw::CorelaneBlockOn => cl(fw, n),
        Fw::Actix => ax(n),
        Fw::Kameo => km(n),
        Fw::Ractor => rc(n),
    };
    assert_eq!(pongs, ACTORS * n, "{}: every ping answered", fw.name());
    (2 * ACTORS * n, t)
}

/// One actor's state, the same in every framework; `R` is how it reaches a neighbour.
struct Big<R> {
    id: usize,
    peers: Vec<R>,
    rng: Rng,
    left: u64,
    pongs: u64,
}

impl<R> Big<R> {
    fn new(id: usize) -> Self {
        Big { id, peers: Vec::new(), rng: Rng::new(id as u64 + 1), left: 0, pongs: 0 }
    }
    /// Whom to ping next, or `None` when done.
    fn next(&mut self) -> Option<&R> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let i = self.rng.below(self.peers.len() as u64) as usize;
        Some(&self.peers[i])
    }
}

fn cl(fw: Fw, n: u64) -> (u64, Duration) {
    use corelane::{Actor, ActorError, ActorRef, Ctx, Reply};
    enum Msg {
        Peers(Vec<ActorRef<Msg>>, Reply<()>),
        Start(u64),
        Ping(usize),
        Pong,
    }
    enum SinkMsg {
        Done(u64),
        Wait(Reply<u64>),
    }
    struct Node(Big<ActorRef<Msg>>, ActorRef<SinkMsg>);
    impl Actor for Node {
        type Msg = Msg;
        fn receive(&mut self, _: &mut Ctx<Self>, m: Msg) -> Result<(), ActorError> {
            let b = &mut self.0;
            match m {
                Msg::Peers(p, ok) => {
                    b.peers = p;
                    ok.send(());
                }
                Msg::Ping(from) => {
                    let _ = b.peers[from].tell(Msg::Pong);
                }
                Msg::Start(n) => {
                    b.left = n;
                    let id = b.id;
                    if let Some(p) = b.next() {
                        let _ = p.tell(Msg::Ping(id));
                    }
                }
                Msg::Pong => {
                    b.pongs += 1;
                    let id = b.id;
                    match b.next() {
                        Some(p) => {
                            let _ = p.tell(Msg::Ping(id));
                        }
                        None => {
                            let _ = self.1.tell(SinkMsg::Done(b.pongs));
                        }
                    }
                }
            }
            Ok(())
        }
    }
    struct SinkActor(Tally<Reply<u64>>);
    impl Actor for SinkActor {
        type Msg = SinkMsg;
        fn receive(&mut self, _: &mut Ctx<Self>, m: SinkMsg) -> Result<(), ActorError> {
            let done = match m {
                SinkMsg::Done(p) => self.0.report(p),
                SinkMsg::Wait(d) => self.0.wait(d),
            };
            if let Some((d, p)) = done {
                d.send(p);
            }
            Ok(())
        }
    }
    let rt = corelane(fw);
    let sink = rt.spawn(|| SinkActor(Tally::new(ACTORS, None))).expect("spawn");
    let nodes: Vec<_> = (0..ACTORS as usize)
        .map(|id| {
            let sink = sink.clone();
            rt.spawn(move || Node(Big::new(id), sink.clone())).expect("spawn")
        })
        .collect();
    for a in &nodes {
        a.ask(|ok| Msg::Peers(nodes.clone(), ok)).timeout(PATIENCE).wait().expect("wired");
    }
    let start = Instant::now();
    for a in &nodes {
        a.tell(Msg::Start(n)).expect("tell");
    }
    let pongs = sink.ask(SinkMsg::Wait).timeout(PATIENCE).wait().expect("done");
    (pongs, start.elapsed())
}

fn ax(n: u64) -> (u64, Duration) {
    use actix::prelude::*;
    use tokio::sync::oneshot;
    struct Node(Big<Addr<Node>>, Addr<SinkActor>);
    impl Actor for Node {
        type Context = Context<Self>;
    }
    #[derive(Message)]
    #[rtype(result = "()")]
    struct Peers(Vec<Addr<Node>>);
    #[derive(Message)]
    #[rtype(result = "()")]
    enum Msg {
        Start(u64),
        Ping(usize),
        Pong,
    }
    impl Handler<Peers> for Node {
        type Result = ();
        fn handle(&mut self, Peers(p): Peers, _: &mut Context<Self>) {
            self.0.peers = p;
        }
    }
    impl Handler<Msg> for Node {
        type Result = ();
        fn handle(&mut self, m: Msg, _: &mut Context<Self>) {
            let b = &mut self.0;
            match m {
                Msg::Ping(from) => b.peers[from].do_send(Msg::Pong),
                Msg::Start(n) => {
                    b.left = n;
                    let id = b.id;
                    if let Some(p) = b.next() {
                        p.do_send(Msg::Ping(id));
                    }
                }
                Msg::Pong => {
                    b.pongs += 1;
                    let id = b.id;
                    match b.next() {
                        Some(p) => p.do_send(Msg::Ping(id)),
                        None => self.1.do_send(Done(b.pongs)),
                    }
                }
            }
        }
    }
    struct SinkActor(Tally<oneshot::Sender<u64>>);
    impl Actor for SinkActor {
        type Context = Context<Self>;
    }
    #[derive(Message)]
    #[rtype(result = "()")]
    struct Done(u64);
    impl Handler<Done> for SinkActor {
        type Result = ();
        fn handle(&mut self, Done(p): Done, _: &mut Context<Self>) {
            if let Some((d, p)) = self.0.report(p) {
                let _ = d.send(p);
            }
        }
    }
    actix_main(async move {
        let (tx, rx) = oneshot::channel();
        let sink = SinkActor(Tally::new(ACTORS, Some(tx))).start();
        let nodes: Vec<_> = (0..ACTORS as usize).map(|id| Node(Big::new(id), sink.clone()).start()).collect();
        for a in &nodes {
            a.send(Peers(nodes.clone())).await.expect("wired");
        }
        let start = Instant::now();
        for a in &nodes {
            a.do_send(Msg::Start(n));
        }
        let pongs = rx.await.expect("done");
        (pongs, start.elapsed())
    })
}

fn km(n: u64) -> (u64, Duration) {
    use kameo::mailbox;
    use kameo::prelude::*;
    use tokio::sync::oneshot;
    #[derive(Actor)]
    struct Node(Big<ActorRef<Node>>, ActorRef<SinkActor>);
    struct Peers(Vec<ActorRef<Node>>);
    enum Msg {
        Start(u64),
        Ping(usize),
        Pong,
    }
    impl Message<Peers> for Node {
        type Reply = ();
        async fn handle(&mut self, Peers(p): Peers, _: &mut Context<Self, ()>) {
            self.0.peers = p;
        }
    }
    impl Message<Msg> for Node {
        type Reply = ();
        async fn handle(&mut self, m: Msg, _: &mut Context<Self, ()>) {
            let b = &mut self.0;
            match m {
                Msg::Ping(from) => b.peers[from].tell(Msg::Pong).await.expect("tell"),
                Msg::Start(n) => {
                    b.left = n;
                    let id = b.id;
                    if let Some(p) = b.next() {
                        p.tell(Msg::Ping(id)).await.expect("tell");
                    }
                }
                Msg::Pong => {
                    b.pongs += 1;
                    let id = b.id;
                    match b.next() {
                        Some(p) => p.tell(Msg::Ping(id)).await.expect("tell"),
                        None => self.1.tell(Done(b.pongs)).await.expect("tell"),
                    }
                }
            }
        }
    }
    #[derive(Actor)]
    struct SinkActor(Tally<oneshot::Sender<u64>>);
    struct Done(u64);
    impl Message<Done> for SinkActor {
        type Reply = ();
        async fn handle(&mut self, Done(p): Done, _: &mut Context<Self, ()>) {
            if let Some((d, p)) = self.0.report(p) {
                let _ = d.send(p);
            }
        }
    }
    tokio_main(async move {
        let (tx, rx) = oneshot::channel();
        let sink =
            SinkActor::spawn_with_mailbox(SinkActor(Tally::new(ACTORS, Some(tx))), mailbox::unbounded());
        let nodes: Vec<_> = (0..ACTORS as usize)
            .map(|id| Node::spawn_with_mailbox(Node(Big::new(id), sink.clone()), mailbox::unbounded()))
            .collect();
        for a in &nodes {
            a.ask(Peers(nodes.clone())).await.expect("wired");
        }
        let start = Instant::now();
        for a in &nodes {
            a.tell(Msg::Start(n)).await.expect("tell");
        }
        let pongs = rx.await.expect("done");
        (pongs, start.elapsed())
    })
}

fn rc(n: u64) -> (u64, Duration) {
    use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
    use tokio::sync::oneshot;
    enum Msg {
        Peers(Vec<ActorRef<Msg>>, RpcReplyPort<()>),
        Start(u64),
        Ping(usize),
        Pong,
    }
    struct Node;
    type NodeState = (Big<ActorRef<Msg>>, ActorRef<Done>);
    impl Actor for Node {
        type Msg = Msg;
        type State = NodeState;
        type Arguments = (usize, ActorRef<Done>);
        async fn pre_start(
            &self,
            _: ActorRef<Msg>,
            (id, sink): Self::Arguments,
        ) -> Result<NodeState, ActorProcessingErr> {
            Ok((Big::new(id), sink))
        }
        async fn handle(
            &self,
            _: ActorRef<Msg>,
            m: Msg,
            (b, sink): &mut NodeState,
        ) -> Result<(), ActorProcessingErr> {
            match m {
                Msg::Peers(p, ok) => {
                    b.peers = p;
                    let _ = ok.send(());
                }
                Msg::Ping(from) => b.peers[from].cast(Msg::Pong)?,
                Msg::Start(n) => {
                    b.left = n;
                    let id = b.id;
                    if let Some(p) = b.next() {
                        p.cast(Msg::Ping(id))?;
                    }
                }
                Msg::Pong => {
                    b.pongs += 1;
                    let id = b.id;
                    match b.next() {
                        Some(p) => p.cast(Msg::Ping(id))?,
                        None => sink.cast(Done(b.pongs))?,
                    }
                }
            }
            Ok(())
        }
    }
    struct SinkActor;
    struct Done(u64);
    impl Actor for SinkActor {
        type Msg = Done;
        type State = Tally<oneshot::Sender<u64>>;
        type Arguments = oneshot::Sender<u64>;
        async fn pre_start(
            &self,
            _: ActorRef<Done>,
            done: oneshot::Sender<u64>,
        ) -> Result<Self::State, ActorProcessingErr> {
            Ok(Tally::new(ACTORS, Some(done)))
        }
        async fn handle(
            &self,
            _: ActorRef<Done>,
            Done(p): Done,
            s: &mut Self::State,
        ) -> Result<(), ActorProcessingErr> {
            if let Some((d, p)) = s.report(p) {
                let _ = d.send(p);
            }
            Ok(())
        }
    }
    tokio_main(async move {
        let (tx, rx) = oneshot::channel();
        let (sink, _) = Actor::spawn(None, SinkActor, tx).await.expect("spawn");
        let mut nodes = Vec::new();
        for id in 0..ACTORS as usize {
            nodes.push(Actor::spawn(None, Node, (id, sink.clone())).await.expect("spawn").0);
        }
        for a in &nodes {
            ractor::call!(a, Msg::Peers, nodes.clone()).expect("wired");
        }
        let start = Instant::now();
        for a in &nodes {
            a.cast(Msg::Start(n)).expect("tell");
        }
        let pongs = rx.await.expect("done");
        (pongs, start.elapsed())
    })
}
