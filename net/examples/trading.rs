//! A small trading cluster on etcd: an order book per symbol (grains), one risk monitor for
//! the whole cluster (a singleton), an end-of-day report on a cron schedule (a cluster-wide
//! schedule that sends to the risk monitor), and a client process that places orders. Run by
//! `scripts/trading-demo.sh`: three nodes and a client, and one node SIGKILLed while orders
//! flow; the client prints what moved and how long each thing was unreachable.
//!
//! ```text
//! trading node   <etcd> <member-id>
//! trading client <etcd> <seconds> [orders per second]
//! ```
//!
//! State is not persisted: a book that moves starts empty on its new owner, and the risk monitor
//! starts from zero where it moves (a real service would keep both in a store, fenced with the
//! epoch a grain sees).

use corelane::{Actor, ActorError, Ctx, Event, EventKind, Reply, Runtime, Shards};
use corelane_net::cluster::{Cluster, ClusterClient, EtcdProvider, Grain, GrainCtx};
use corelane_net::{Accepts, Answers, Node, Protocol, RemoteConfig};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

const CLUSTER: &str = "trading";
const SYMBOLS: [&str; 6] = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "TSLA"];
const RISK: &str = "risk-monitor";
/// "End of day", compressed for the demo: every ten seconds.
const END_OF_DAY: &str = "*/10 * * * * *";

macro_rules! wire {
    ($t:ident { $($field:tt)* }) => {
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct $t { $($field)* }
        impl prost::Name for $t {
            const NAME: &'static str = stringify!($t);
            const PACKAGE: &'static str = "trading.v1";
        }
    };
}

wire!(PlaceOrder {
    #[prost(bool, tag = "1")] pub buy: bool,
    #[prost(uint64, tag = "2")] pub price: u64,
    #[prost(uint64, tag = "3")] pub qty: u64,
});
wire!(OrderAck {
    #[prost(uint64, tag = "1")] pub filled: u64,
    #[prost(uint64, tag = "2")] pub resting: u64,
    #[prost(string, tag = "3")] pub member: String,
});
wire!(Fill {
    #[prost(string, tag = "1")] pub symbol: String,
    #[prost(int64, tag = "2")] pub qty: i64,
    #[prost(uint64, tag = "3")] pub price: u64,
});
wire!(GetRisk {});
wire!(RiskReport {
    #[prost(uint64, tag = "1")] pub fills: u64,
    #[prost(uint64, tag = "2")] pub gross: u64,
    #[prost(string, tag = "3")] pub member: String,
});
wire!(EndOfDay {});

/// An order book: resting orders per price level; an order fills against the other side as
/// far as its limit allows, the rest rests.
struct Book {
    member: String,
    bids: BTreeMap<u64, u64>,
    asks: BTreeMap<u64, u64>,
}

enum BookMsg {
    Place(PlaceOrder, Reply<OrderAck>),
}
impl Answers<PlaceOrder> for BookMsg {
    type Reply = OrderAck;
    fn from_ask(o: PlaceOrder, r: Reply<OrderAck>) -> Self {
        BookMsg::Place(o, r)
    }
}

impl Grain for Book {
    const KIND: &'static str = "book";
    type Msg = BookMsg;
    fn receive(&mut self, _: &mut GrainCtx<'_, Self>, msg: BookMsg) -> Result<(), ActorError> {
        let BookMsg::Place(o, reply) = msg;
        let mut left = o.qty;
        let (other, own) =
            if o.buy { (&mut self.asks, &mut self.bids) } else { (&mut self.bids, &mut self.asks) };
        while left > 0 {
            let best = if o.buy { other.keys().next().copied() } else { other.keys().next_back().copied() };
            let Some(level) = best.filter(|p| if o.buy { *p <= o.price } else { *p >= o.price }) else {
                break;
            };
            let size = other.get_mut(&level).expect("listed");
            let take = left.min(*size);
            (*size, left) = (*size - take, left - take);
            if *size == 0 {
                other.remove(&level);
            }
        }
        if left > 0 {
            *own.entry(o.price).or_default() += left;
        }
        reply.send(OrderAck { filled: o.qty - left, resting: left, member: self.member.clone() });
        Ok(())
    }
}

/// The risk monitor: gross exposure and fills across every book; prints the end-of-day report.
struct RiskMonitor {
    member: String,
    fills: u64,
    gross: u64,
    net: HashMap<String, i64>,
    reports: u64,
}

enum RiskMsg {
    Fill(Fill),
    Get(Reply<RiskReport>),
    EndOfDay,
}
impl Accepts<Fill> for RiskMsg {
    fn from_tell(f: Fill) -> Self {
        RiskMsg::Fill(f)
    }
}
impl Accepts<EndOfDay> for RiskMsg {
    fn from_tell(_: EndOfDay) -> Self {
        RiskMsg::EndOfDay
    }
}
impl Answers<GetRisk> for RiskMsg {
    type Reply = RiskReport;
    fn from_ask(_: GetRisk, r: Reply<RiskReport>) -> Self {
        RiskMsg::Get(r)
    }
}

impl Actor for RiskMonitor {
    type Msg = RiskMsg;
    fn started(&mut self, _: &mut Ctx<Self>) -> Result<(), ActorError> {
        println!("risk monitor started on {}", self.member);
        Ok(())
    }
    fn receive(&mut self, _: &mut Ctx<Self>, msg: RiskMsg) -> Result<(), ActorError> {
        match msg {
            RiskMsg::Fill(f) => {
                self.fills += 1;
                self.gross += f.qty.unsigned_abs() * f.price;
                *self.net.entry(f.symbol).or_default() += f.qty;
            }
            RiskMsg::Get(r) => {
                r.send(RiskReport { fills: self.fills, gross: self.gross, member: self.member.clone() })
            }
            RiskMsg::EndOfDay => {
                self.reports += 1;
                let mut net: Vec<_> = self.net.iter().map(|(s, q)| format!("{s} {q:+}")).collect();
                net.sort();
                println!(
                    "end-of-day report #{} from {}: {} fills, gross {}, net {}",
                    self.reports,
                    self.member,
                    self.fills,
                    self.gross,
                    net.join(", ")
                );
            }
        }
        Ok(())
    }
}

fn node(etcd: String, id: String, rt: &Runtime, node: &Node) -> Result<(), Box<dyn std::error::Error>> {
    let risk = Protocol::<RiskMsg>::new().accepts::<Fill>().accepts::<EndOfDay>().answers::<GetRisk>();
    let me = id.clone();
    node.register_kind("risk", risk, move || RiskMonitor {
        member: me.clone(),
        fills: 0,
        gross: 0,
        net: HashMap::new(),
        reports: 0,
    });
    let me = id.clone();
    let cluster = Cluster::builder(CLUSTER)
        .ttl(Duration::from_secs(2))
        .member_id(&id)
        .grain::<Book, _>(Protocol::new().answers::<PlaceOrder>(), move |_: &str| Book {
            member: me.clone(),
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
        })
        .join(node, EtcdProvider::new([etcd]))?;
    let (_sub, events) =
        rt.subscribe_channel(|e: &Event| matches!(e.kind(), EventKind::NodeJoined | EventKind::NodeLeft));
    // Every node asks for the same singleton and schedule: the first makes them, the others
    // find them.
    let t = Duration::from_secs(10);
    let monitor = cluster.spawn_singleton(RISK, "risk").timeout(t).wait()?;
    let eod = cluster.schedule_cron("end-of-day", END_OF_DAY, RISK, &EndOfDay {}).timeout(t).wait()?;
    println!(
        "{id} ready: risk monitor at {}, end-of-day schedule run by {}",
        monitor.node_addr(),
        eod.host().unwrap_or_default()
    );
    loop {
        match events.recv() {
            Ok(Event::NodeJoined { member, .. }) => println!("{id} sees {member} join"),
            Ok(Event::NodeLeft { member, reason, .. }) => println!("{id} sees {member} leave ({reason:?})"),
            Ok(_) => {}
            Err(_) => return Ok(()),
        }
    }
}

/// Where something last answered from, and when.
struct Whereabouts {
    at: String,
    last: Instant,
}

impl Default for Whereabouts {
    fn default() -> Self {
        Whereabouts { at: String::new(), last: Instant::now() }
    }
}

impl Whereabouts {
    /// Answered from member `at`; prints a move, with how long nothing answered.
    fn reached(&mut self, what: &str, at: &str) {
        if !self.at.is_empty() && self.at != at {
            let gap = self.last.elapsed().as_secs_f64();
            println!("{what} moved from {} to {at}: no answer for {gap:.2} s", self.at);
        }
        self.at = at.to_string();
        self.last = Instant::now();
    }
}

fn client(etcd: String, seconds: u64, rate: u64, node: &Node) -> Result<(), Box<dyn std::error::Error>> {
    let client = ClusterClient::builder(CLUSTER).connect(node, EtcdProvider::new([etcd]))?;
    client.wait_for(Duration::from_secs(30), |v| v.member_ids().len() >= 3);
    let risk = client.named::<RiskMsg>(RISK);
    let mut books: HashMap<&str, Whereabouts> = HashMap::new();
    let mut monitor = Whereabouts::default();
    let (mut placed, mut acked, mut failed, mut filled) = (0u64, 0u64, 0u64, 0u64);
    let start = Instant::now();
    let every = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    while start.elapsed() < Duration::from_secs(seconds) {
        let due = start + every * placed as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let symbol = SYMBOLS[(x % SYMBOLS.len() as u64) as usize];
        let order =
            PlaceOrder { buy: (x >> 40) & 1 == 0, price: 100 + (x >> 8) % 5, qty: 1 + (x >> 16) % 10 };
        placed += 1;
        let book = client.typed_grain::<Book>(symbol);
        let sent = Instant::now();
        let answer = book.ask(&order).timeout(Duration::from_secs(5)).wait();
        if sent.elapsed() > Duration::from_millis(100) {
            println!("an order on {symbol} waited {:.2} s for its answer", sent.elapsed().as_secs_f64());
        }
        match answer {
            Ok(ack) => {
                acked += 1;
                books.entry(symbol).or_default().reached(&format!("book {symbol}"), &ack.member);
                if ack.filled > 0 {
                    filled += ack.filled;
                    let qty = if order.buy { ack.filled as i64 } else { -(ack.filled as i64) };
                    let _ = risk.tell(&Fill { symbol: symbol.to_string(), qty, price: order.price });
                }
            }
            Err(e) => {
                failed += 1;
                println!("order on {symbol} failed: {e}");
            }
        }
        if placed % 100 == 0 {
            match risk.ask(&GetRisk {}).timeout(Duration::from_millis(500)).wait() {
                Ok(r) => monitor.reached("risk monitor", &r.member),
                Err(e) => println!("risk monitor did not answer: {e}"),
            }
        }
        if placed % 1000 == 0 {
            println!("{placed} orders: {acked} acknowledged, {failed} failed, {filled} shares filled");
        }
    }
    println!(
        "done in {:.1} s: {placed} orders, {acked} acknowledged, {failed} failed (lost with a killed node), {filled} shares filled",
        start.elapsed().as_secs_f64()
    );
    client.close(Duration::from_secs(5));
    Ok(())
}

/// A trading node, or a client placing orders (run by `scripts/trading-demo.sh`).
#[derive(clap::Parser)]
#[command(name = "trading")]
enum Cli {
    /// A member hosting order books, the risk monitor (once in the cluster) and the end-of-day
    /// schedule.
    Node {
        /// etcd's client URL.
        etcd: String,
        /// This member's id.
        member_id: String,
    },
    /// Places orders for `seconds` and prints what moved and how long each thing was
    /// unreachable.
    Client {
        /// etcd's client URL.
        etcd: String,
        /// How long to place orders.
        seconds: u64,
        /// Orders per second.
        #[arg(default_value_t = 500)]
        rate: u64,
    },
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = <Cli as clap::Parser>::parse();
    let rt = Runtime::builder().shards(Shards::Count(1)).build()?;
    let n = Node::start(&rt, RemoteConfig::dev())?;
    match cli {
        Cli::Node { etcd, member_id } => node(etcd, member_id, &rt, &n),
        Cli::Client { etcd, seconds, rate } => client(etcd, seconds, rate, &n),
    }
}
