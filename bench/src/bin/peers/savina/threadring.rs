//! Savina ThreadRing: `RING` actors in a ring pass one token `n` times; each hop counts down and
//! the actor holding it at zero ends the run (checked: it is the actor `n` hops from the first).
//! Hops per second.

use crate::frameworks::{actix_main, corelane, tokio_main, Fw, PATIENCE};
use crate::Workload;
use std::time::{Duration, Instant};

pub(crate) const WORKLOAD: Workload = Workload {
    name: "savina-threadring",
    metric: "msgs_per_sec",
    unit: "msg/s",
    size: 1_000_000,
    user_path: false,
    about: "Savina ThreadRing: a token passed n times around 100 actors",
    run,
};

const RING: u64 = 100;

fn run(fw: Fw, n: u64) -> (u64, Duration) {
    let (last, t) = match fw {
        Fw::Corelane | Fw::CorelaneSpin | Fw::CorelaneBlockOn => cl(fw, n),
        Fw::Actix => ax(n),
        Fw::Kameo => km(n),
        Fw::Ractor => rc(n),
    };
    assert_eq!(last, n % RING, "{}: the token stopped where n hops end", fw.name());
    (n, t)
}

fn cl(fw: Fw, n: u64) -> (u64, Duration) {
    use corelane::{Actor, ActorError, ActorRef, Ctx, Reply};
    struct Node {
        id: u64,
        next: Option<ActorRef<Msg>>,
    }
    enum Msg {
        Next(ActorRef<Msg>, Reply<()>),
        Token(u64, Reply<u64>),
    }
    impl Actor for Node {
        type Msg = Msg;
        fn receive(&mut self, _: &mut Ctx<Self>, m: Msg) -> Result<(), ActorError> {
            match m {
                Msg::Next(next, ok) => {
                    self.next = Some(next);
                    ok.send(());
                }
                Msg::Token(0, done) => done.send(self.id),
                Msg::Token(k, done) => {
                    let _ = self.next.as_ref().expect("wired").tell(Msg::Token(k - 1, done));
                }
            }
            Ok(())
        }
    }
    let rt = corelane(fw);
    // A ring passes one token: nothing runs in parallel, so it lives on one shard (docs/guide/actors.md,
    // placement).
    let ring: Vec<_> =
        (0..RING).map(|id| rt.spawn_on(0, move || Node { id, next: None }).expect("spawn")).collect();
    for (i, a) in ring.iter().enumerate() {
        let next = ring[(i + 1) % ring.len()].clone();
        a.ask(|ok| Msg::Next(next, ok)).timeout(PATIENCE).wait().expect("wired");
    }
    let start = Instant::now();
    let last = ring[0].ask(|done| Msg::Token(n, done)).timeout(PATIENCE).wait().expect("done");
    (last, start.elapsed())
}

fn ax(n: u64) -> (u64, Duration) {
    use actix::prelude::*;
    use tokio::sync::oneshot;
    struct Node {
        id: u64,
        next: Option<Addr<Node>>,
    }
    impl Actor for Node {
        type Context = Context<Self>;
    }
    #[derive(Message)]
    #[rtype(result = "()")]
    struct Next(Addr<Node>);
    #[derive(Message)]
    #[rtype(result = "()")]
    struct Token(u64, oneshot::Sender<u64>);
    impl Handler<Next> for Node {
        type Result = ();
        fn handle(&mut self, Next(next): Next, _: &mut Context<Self>) {
            self.next = Some(next);
        }
    }
    impl Handler<Token> for Node {
        type Result = ();
        fn handle(&mut self, Token(k, done): Token, _: &mut Context<Self>) {
            if k == 0 {
                let _ = done.send(self.id);
            } else {
                self.next.as_ref().expect("wired").do_send(Token(k - 1, done));
            }
        }
    }
    actix_main(async move {
        let ring: Vec<_> = (0..RING).map(|id| Node { id, next: None }.start()).collect();
        for (i, a) in ring.iter().enumerate() {
            a.send(Next(ring[(i + 1) % ring.len()].clone())).await.expect("wired");
        }
        let (tx, rx) = oneshot::channel();
        let start = Instant::now();
        ring[0].do_send(Token(n, tx));
        let last = rx.await.expect("done");
        (last, start.elapsed())
    })
}

fn km(n: u64) -> (u64, Duration) {
    use kameo::mailbox;
    use kameo::prelude::*;
    use tokio::sync::oneshot;
    #[derive(Actor)]
    struct Node {
        id: u64,
        next: Option<ActorRef<Node>>,
    }
    struct Next(ActorRef<Node>);
    struct Token(u64, oneshot::Sender<u64>);
    impl Message<Next> for Node {
        type Reply = ();
        async fn handle(&mut self, Next(next): Next, _: &mut Context<Self, ()>) {
            self.next = Some(next);
        }
    }
    impl Message<Token> for Node {
        type Reply = ();
        async fn handle(&mut self, Token(k, done): Token, _: &mut Context<Self, ()>) {
            if k == 0 {
                let _ = done.send(self.id);
            } else {
                self.next.as_ref().expect("wired").tell(Token(k - 1, done)).await.expect("tell");
            }
        }
    }
    tokio_main(async move {
        let ring: Vec<_> = (0..RING)
            .map(|id| Node::spawn_with_mailbox(Node { id, next: None }, mailbox::unbounded()))
            .collect();
        for (i, a) in ring.iter().enumerate() {
            a.ask(Next(ring[(i + 1) % ring.len()].clone())).await.expect("wired");
        }
        let (tx, rx) = oneshot::channel();
        let start = Instant::now();
        ring[0].tell(Token(n, tx)).await.expect("tell");
        let last = rx.await.expect("done");
        (last, start.elapsed())
    })
}

fn rc(n: u64) -> (u64, Duration) {
    use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
    use tokio::sync::oneshot;
    struct Node;
    struct State {
        id: u64,
        next: Option<ActorRef<Msg>>,
    }
    enum Msg {
        Next(ActorRef<Msg>, RpcReplyPort<()>),
        Token(u64, oneshot::Sender<u64>),
    }
    impl Actor for Node {
        type Msg = Msg;
        type State = State;
        type Arguments = u64;
        async fn pre_start(&self, _: ActorRef<Msg>, id: u64) -> Result<State, ActorProcessingErr> {
            Ok(State { id, next: None })
        }
        async fn handle(&self, _: ActorRef<Msg>, m: Msg, s: &mut State) -> Result<(), ActorProcessingErr> {
            match m {
                Msg::Next(next, ok) => {
                    s.next = Some(next);
                    let _ = ok.send(());
                }
                Msg::Token(0, done) => {
                    let _ = done.send(s.id);
                }
                Msg::Token(k, done) => s.next.as_ref().expect("wired").cast(Msg::Token(k - 1, done))?,
            }
            Ok(())
        }
    }
    tokio_main(async move {
        let mut ring = Vec::new();
        for id in 0..RING {
            ring.push(Actor::spawn(None, Node, id).await.expect("spawn").0);
        }
        for (i, a) in ring.iter().enumerate() {
            let next = ring[(i + 1) % ring.len()].clone();
            ractor::call!(a, Msg::Next, next).expect("wired");
        }
        let (tx, rx) = oneshot::channel();
        let start = Instant::now();
        ring[0].cast(Msg::Token(n, tx)).expect("tell");
        let last = rx.await.expect("done");
        (last, start.elapsed())
    })
}
