//! `trading-pipeline`: market-data ticks → per-symbol order books → a strategy → a risk check
//! → an order gateway, the same logic three ways in one run:
//! - **actors**: a feed, `SYMBOLS` book actors and the strategy on shard 0, risk and the
//!   gateway on shard 1 (the hop across cores sits where the bare-ring version has its ring);
//! - **rings**: the same two stages on two pinned threads joined by a bare SPSC ring;
//! - **plain**: every stage a function call on one thread (the floor).
//!
//! Latency (tick created → order recorded at the gateway; p50 / p99 / p99.9) with ticks paced
//! at `PACE`, then throughput with ticks as fast as each version takes them. Checked: every
//! tick became exactly one order, and risk approved the same number in every version.

use crate::report::{fig, Figure};
use crate::spsc::spsc;
use crate::{engine_runtime, pin, Cores};
use corelane::{Actor, ActorError, ActorRef, Ctx, Reply};
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

const SYMBOLS: usize = 64;
/// Largest position risk allows per symbol, either way.
const LIMIT: i64 = 5;
/// One tick every `PACE` in the latency run (500 K ticks/s).
const PACE: Duration = Duration::from_micros(2);

#[derive(Clone, Copy)]
struct Tick {
    symbol: usize,
    bid: i64,
    ask: i64,
    at: Instant,
}

/// The `i`-th tick of the session (the same sequence in every version).
fn tick(i: u64, at: Instant) -> Tick {
    let bid = 10_000 + ((i * 7919) % 23) as i64;
    Tick { symbol: (i % SYMBOLS as u64) as usize, bid, ask: bid + 1 + (i % 3) as i64, at }
}

#[derive(Clone, Copy)]
struct Order {
    symbol: usize,
    buy: bool,
    price: i64,
    at: Instant,
}

#[derive(Default, Clone, Copy)]
struct Book {
    bid: i64,
    ask: i64,
}

impl Book {
    fn apply(&mut self, t: &Tick) {
        (self.bid, self.ask) = (t.bid, t.ask);
    }
}

/// Buys when the mid did not rise since the symbol's last tick, sells otherwise.
struct Strategy {
    last_mid: [i64; SYMBOLS],
}

impl Strategy {
    fn new() -> Self {
        Strategy { last_mid: [0; SYMBOLS] }
    }
    fn decide(&mut self, symbol: usize, book: Book, at: Instant) -> Order {
        let mid = (book.bid + book.ask) / 2;
        let buy = mid <= self.last_mid[symbol];
        self.last_mid[symbol] = mid;
        Order { symbol, buy, price: if buy { book.bid } else { book.ask }, at }
    }
}

struct Risk {
    position: [i64; SYMBOLS],
}

impl Risk {
    fn new() -> Self {
        Risk { position: [0; SYMBOLS] }
    }
    fn check(&mut self, o: &Order) -> bool {
        let next = self.position[o.symbol] + if o.buy { 1 } else { -1 };
        let ok = next.abs() <= LIMIT && o.price > 0;
        if ok {
            self.position[o.symbol] = next;
        }
        ok
    }
}

/// What a run produced.
struct Session {
    latency: Histogram<u64>,
    orders: u64,
    approved: u64,
    elapsed: Duration,
}

struct Gateway {
    latency: Histogram<u64>,
    orders: u64,
    approved: u64,
}

impl Gateway {
    fn new() -> Self {
        Gateway { latency: Histogram::new(3).expect("histogram"), orders: 0, approved: 0 }
    }
    fn record(&mut self, o: &Order, ok: bool) {
        let _ = self.latency.record(o.at.elapsed().as_nanos() as u64);
        self.orders += 1;
        self.approved += u64::from(ok);
    }
}

/// When tick `i` is due.
#[inline]
fn due(start: Instant, pace: Duration, i: u64) -> Instant {
    start + pace * i as u32
}

/// Tick `i`, made when it is due (spinning until then).
#[inline]
fn tick_when_due(start: Instant, pace: Duration, i: u64) -> Tick {
    let at = due(start, pace, i);
    while Instant::now() < at {
        std::hint::spin_loop();
    }
    tick(i, Instant::now())
}

fn plain(cores: Cores, n: u64, pace: Duration) -> Session {
    std::thread::scope(|s| {
        s.spawn(|| {
            pin(cores.a);
            let (mut books, mut strategy, mut risk, mut gw) =
                ([Book::default(); SYMBOLS], Strategy::new(), Risk::new(), Gateway::new());
            let start = Instant::now();
            for i in 0..n {
                let t = tick_when_due(start, pace, i);
                books[t.symbol].apply(&t);
                let o = strategy.decide(t.symbol, books[t.symbol], t.at);
                let ok = risk.check(&o);
                gw.record(&o, ok);
            }
            Session {
                latency: gw.latency,
                orders: gw.orders,
                approved: gw.approved,
                elapsed: start.elapsed(),
            }
        })
        .join()
        .expect("plain run")
    })
}

fn rings(cores: Cores, n: u64, pace: Duration) -> Session {
    let (tx, rx) = spsc::<Order>(1024, 1);
    std::thread::scope(|s| {
        let front = s.spawn(move || {
            pin(cores.a);
            let mut tx = tx;
            let (mut books, mut strategy) = ([Book::default(); SYMBOLS], Strategy::new());
            let start = Instant::now();
            for i in 0..n {
                let t = tick_when_due(start, pace, i);
                books[t.symbol].apply(&t);
                tx.push(strategy.decide(t.symbol, books[t.symbol], t.at));
            }
            start
        });
        let back = s.spawn(move || {
            pin(cores.b);
            let mut rx = rx;
            let (mut risk, mut gw) = (Risk::new(), Gateway::new());
            while gw.orders < n {
                match rx.pop() {
                    Some(o) => {
                        let ok = risk.check(&o);
                        gw.record(&o, ok);
                    }
                    None => std::hint::spin_loop(),
                }
            }
            (gw, Instant::now())
        });
        let start = front.join().expect("front stage");
        let (gw, end) = back.join().expect("back stage");
        Session { latency: gw.latency, orders: gw.orders, approved: gw.approved, elapsed: end - start }
    })
}

enum FeedMsg {
    Run { n: u64, pace: Duration, books: Vec<ActorRef<Tick>> },
    Next,
}

struct Feed {
    books: Vec<ActorRef<Tick>>,
    n: u64,
    i: u64,
    pace: Duration,
    start: Instant,
}

impl Actor for Feed {
    type Msg = FeedMsg;
    fn receive(&mut self, ctx: &mut Ctx<Self>, m: FeedMsg) -> Result<(), ActorError> {
        if let FeedMsg::Run { n, pace, books } = m {
            (self.n, self.i, self.pace, self.books, self.start) = (n, 0, pace, books, Instant::now());
        }
        if self.pace.is_zero() {
            // Throughput: a burst per message, then the rest behind whatever is queued.
            for _ in 0..64.min(self.n - self.i) {
                let t = tick(self.i, Instant::now());
                self.books[t.symbol].tell(t)?;
                self.i += 1;
            }
            if self.i < self.n {
                ctx.myself().tell(FeedMsg::Next)?;
            }
            return Ok(());
        }
        // Latency: one tick when it is due, the next one on a timer, so the books and the
        // strategy run between ticks (a message to itself would be taken in the same turn).
        let now = Instant::now();
        if self.i < self.n && now >= due(self.start, self.pace, self.i) {
            let t = tick(self.i, now);
            self.books[t.symbol].tell(t)?;
            self.i += 1;
        }
        if self.i < self.n {
            let wait = due(self.start, self.pace, self.i).saturating_duration_since(Instant::now());
            ctx.schedule_once(wait, &ctx.myself(), FeedMsg::Next);
        }
        Ok(())
    }
}

struct BookActor(Book, ActorRef<(usize, Book, Instant)>);
impl Actor for BookActor {
    type Msg = Tick;
    fn receive(&mut self, _: &mut Ctx<Self>, t: Tick) -> Result<(), ActorError> {
        self.0.apply(&t);
        self.1.tell((t.symbol, self.0, t.at))?;
        Ok(())
    }
}

struct StrategyActor(Strategy, ActorRef<Order>);
impl Actor for StrategyActor {
    type Msg = (usize, Book, Instant);
    fn receive(
        &mut self,
        _: &mut Ctx<Self>,
        (symbol, book, at): (usize, Book, Instant),
    ) -> Result<(), ActorError> {
        self.1.tell(self.0.decide(symbol, book, at))?;
        Ok(())
    }
}

struct RiskActor(Risk, ActorRef<GatewayMsg>);
impl Actor for RiskActor {
    type Msg = Order;
    fn receive(&mut self, _: &mut Ctx<Self>, o: Order) -> Result<(), ActorError> {
        let ok = self.0.check(&o);
        self.1.tell(GatewayMsg::Order(o, ok))?;
        Ok(())
    }
}

enum GatewayMsg {
    Order(Order, bool),
    /// Answered with the session once `n` orders are in.
    Wait(u64, Reply<Session>),
}

struct GatewayActor(Option<Gateway>, Option<(u64, Reply<Session>)>, Instant);
impl Actor for GatewayActor {
    type Msg = GatewayMsg;
    fn receive(&mut self, _: &mut Ctx<Self>, m: GatewayMsg) -> Result<(), ActorError> {
        match m {
            GatewayMsg::Order(o, ok) => self.0.as_mut().expect("open").record(&o, ok),
            GatewayMsg::Wait(n, r) => {
                self.1 = Some((n, r));
                self.2 = Instant::now();
            }
        }
        let orders = self.0.as_ref().map_or(0, |g| g.orders);
        if matches!(self.1, Some((n, _)) if n == orders) {
            let (_, r) = self.1.take().expect("waiting");
            let gw = self.0.take().expect("open");
            r.send(Session {
                latency: gw.latency,
                orders: gw.orders,
                approved: gw.approved,
                elapsed: self.2.elapsed(),
            });
            self.0 = Some(Gateway::new());
        }
        Ok(())
    }
}

fn actors(rt: &corelane::Runtime, n: u64, pace: Duration) -> Session {
    let gateway = rt.spawn_on(1, || GatewayActor(Some(Gateway::new()), None, Instant::now())).expect("spawn");
    let g = gateway.clone();
    let risk = rt.spawn_on(1, move || RiskActor(Risk::new(), g.clone())).expect("spawn");
    let strategy = rt.spawn_on(0, move || StrategyActor(Strategy::new(), risk.clone())).expect("spawn");
    let books: Vec<_> = (0..SYMBOLS)
        .map(|_| {
            let s = strategy.clone();
            rt.spawn_on(0, move || BookActor(Book::default(), s.clone())).expect("spawn")
        })
        .collect();
    let feed = rt
        .spawn_on(0, || Feed { books: Vec::new(), n: 0, i: 0, pace: Duration::ZERO, start: Instant::now() })
        .expect("spawn");
    let session = gateway.ask(|r| GatewayMsg::Wait(n, r));
    feed.tell(FeedMsg::Run { n, pace, books }).expect("tell");
    session.timeout(Duration::from_secs(120)).wait().expect("every order reached the gateway")
}

/// The actor version on a runtime of its own, shut down before anything else runs (its
/// spinning shards would share the cores with the other versions' threads).
fn actors_alone(cores: Cores, n: u64, pace: Duration) -> Session {
    let rt = engine_runtime(cores, 2);
    actors(&rt, (n / 10).max(1), pace);
    let s = actors(&rt, n, pace);
    rt.shutdown().expect("shutdown");
    s
}

pub(crate) fn trading_pipeline(cores: Cores, n: u64) -> Vec<Figure> {
    const W: &str = "trading-pipeline";
    let mut out = Vec::new();
    let mut approved = None;
    let mut check = |name: &str, s: &Session| {
        assert_eq!(s.orders, n, "{name}: every tick became one order");
        assert_eq!(*approved.get_or_insert(s.approved), s.approved, "{name}: risk approved the same orders");
    };
    let mut p = Vec::new();
    for (name, s) in [
        ("actors", actors_alone(cores, n, PACE)),
        ("rings", rings(cores, n, PACE)),
        ("plain", plain(cores, n, PACE)),
    ] {
        check(name, &s);
        for (q, at) in [("p50", 0.5), ("p99", 0.99), ("p999", 0.999)] {
            out.push(fig(W, &format!("{name}_{q}_ns"), s.latency.value_at_quantile(at) as f64, "ns"));
        }
        p.push((s.latency.value_at_quantile(0.5) as f64, s.latency.value_at_quantile(0.99) as f64));
    }
    out.push(fig(W, "p50_x_rings", p[0].0 / p[1].0, "ratio"));
    out.push(fig(W, "p99_x_rings", p[0].1 / p[1].1, "ratio"));
    let mut rate = Vec::new();
    for (name, s) in [
        ("actors", actors_alone(cores, n, Duration::ZERO)),
        ("rings", rings(cores, n, Duration::ZERO)),
        ("plain", plain(cores, n, Duration::ZERO)),
    ] {
        check(name, &s);
        let r = n as f64 / s.elapsed.as_secs_f64();
        out.push(fig(W, &format!("{name}_ticks_per_sec"), r, "tick/s"));
        rate.push(r);
    }
    out.push(fig(W, "throughput_share_of_rings", rate[0] / rate[1], "ratio"));
    out
}
