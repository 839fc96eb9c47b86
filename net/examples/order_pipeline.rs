//! An order-processing pipeline split over two nodes:
//!
//! ```text
//!   front node:  orders ──► validation ──┐
//!                                        │ QUIC (one connection, order kept)
//!   back node:                           └──► payment ──► ledger ──► notification
//! ```
//!
//! ```text
//! cargo run --release -p corelane-net --example order_pipeline              # both nodes here
//! cargo run --release -p corelane-net --example order_pipeline -- back ADDR [--ops ADDR]
//! cargo run --release -p corelane-net --example order_pipeline -- front ADDR [ORDERS]
//! ```
//!
//! With `--ops ADDR` the back node serves `/health`, `/ready` and `/metrics` (Prometheus text:
//! its runtime, shards and actor kinds, and the payment, ledger and notification actors) on
//! ADDR: the probes of `deploy/order-pipeline/kubernetes.yaml`.
//!
//! The front node places ORDERS orders (default 100 000; one in ten is invalid and stops at
//! validation), then asks the back node's notification actor how many went through, until all
//! valid ones have, and prints the throughput.

use corelane::export::Exporter;
use corelane::{Actor, ActorError, ActorRef, Ctx, Reply, Runtime, Shards};
use corelane_net::ops::Ops;
use corelane_net::{Node, Protocol, RemoteConfig, RemoteRef};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What validation sends to payment, over the wire.
#[derive(Clone, PartialEq, prost::Message)]
struct Charge {
    #[prost(uint64, tag = "1")]
    order_id: u64,
    #[prost(uint64, tag = "2")]
    cents: u64,
}
impl prost::Name for Charge {
    const NAME: &'static str = "Charge";
    const PACKAGE: &'static str = "shop.v1";
}

/// How many orders were notified, and the money booked.
#[derive(Clone, PartialEq, prost::Message)]
struct Stats {
    #[prost(uint64, tag = "1")]
    notified: u64,
    #[prost(uint64, tag = "2")]
    booked_cents: u64,
}
impl prost::Name for Stats {
    const NAME: &'static str = "Stats";
    const PACKAGE: &'static str = "shop.v1";
}

// ---- back node: payment → ledger → notification -----------------------------------------

struct Notification {
    stats: Stats,
}
enum NotificationMsg {
    Paid { cents: u64 },
    Stats(Reply<Stats>),
}
impl Actor for Notification {
    type Msg = NotificationMsg;
    fn receive(&mut self, _: &mut Ctx<Self>, msg: NotificationMsg) -> Result<(), ActorError> {
        match msg {
            NotificationMsg::Paid { cents } => {
                self.stats.notified += 1;
                self.stats.booked_cents += cents;
            }
            NotificationMsg::Stats(r) => r.send(self.stats.clone()),
        }
        Ok(())
    }
}

struct Ledger {
    balance: u64,
    notify: ActorRef<NotificationMsg>,
}
impl Actor for Ledger {
    type Msg = Charge;
    fn receive(&mut self, _: &mut Ctx<Self>, c: Charge) -> Result<(), ActorError> {
        self.balance += c.cents;
        let _ = self.notify.tell(NotificationMsg::Paid { cents: c.cents });
        Ok(())
    }
}

struct Payment {
    ledger: ActorRef<Charge>,
}
impl Actor for Payment {
    type Msg = Charge;
    fn receive(&mut self, _: &mut Ctx<Self>, c: Charge) -> Result<(), ActorError> {
        // A real service would call a payment provider here.
        let _ = self.ledger.tell(c);
        Ok(())
    }
}

fn back(bind: SocketAddr) -> Result<(Runtime, Node), Box<dyn std::error::Error>> {
    let rt = Runtime::builder().shards(Shards::Count(1)).build()?;
    let node = Node::start(&rt, RemoteConfig { bind, ..RemoteConfig::dev() })?;
    let notify = rt.spawn(|| Notification { stats: Stats::default() })?;
    let n = notify.clone();
    let ledger = rt.spawn(move || Ledger { balance: 0, notify: n.clone() })?;
    let ledger_ref = ledger.clone();
    let payment = rt.spawn(move || Payment { ledger: ledger.clone() })?;
    node.serve(Protocol::new().tell(|c: Charge| c));
    node.serve(Protocol::new().ask(|_: Stats, r| NotificationMsg::Stats(r)));
    rt.register("payment", &payment)?;
    rt.register("notification", &notify)?;
    rt.register("ledger", &ledger_ref)?;
    Ok((rt, node))
}

// ---- front node: orders → validation → (payment on the back node) -------------------------

struct Order {
    id: u64,
    cents: u64,
    quantity: u32,
}

struct Validation {
    payment: RemoteRef,
    rejected: u64,
}
impl Actor for Validation {
    type Msg = Order;
    fn receive(&mut self, _: &mut Ctx<Self>, o: Order) -> Result<(), ActorError> {
        if o.cents == 0 || o.quantity == 0 || o.quantity > 100 {
            self.rejected += 1;
            return Ok(());
        }
        self.payment
            .tell(&Charge { order_id: o.id, cents: o.cents * u64::from(o.quantity) })
            .map_err(|e| ActorError::msg(e.to_string()))
    }
}

struct Orders {
    validation: ActorRef<Order>,
}
impl Actor for Orders {
    type Msg = Order;
    fn receive(&mut self, _: &mut Ctx<Self>, o: Order) -> Result<(), ActorError> {
        let _ = self.validation.tell(o);
        Ok(())
    }
}

fn front(back_addr: SocketAddr, orders: u64) -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::builder().shards(Shards::Count(1)).build()?;
    let node = Node::start(&rt, RemoteConfig::dev())?;
    let remote = node.remote(back_addr);
    let t = Duration::from_secs(10);
    let payment = remote.lookup("payment").timeout(t).wait()?;
    let notification = remote.lookup("notification").timeout(t).wait()?;
    let validation = rt.spawn(move || Validation { payment: payment.clone(), rejected: 0 })?;
    let entry = rt.spawn(move || Orders { validation: validation.clone() })?;

    let start = Instant::now();
    let mut valid = 0;
    for id in 0..orders {
        let bad = id % 10 == 9;
        valid += u64::from(!bad);
        entry.tell(Order { id, cents: if bad { 0 } else { 250 }, quantity: 2 })?;
    }
    let stats = loop {
        let s: Stats = notification.ask(&Stats::default()).timeout(t).wait()?;
        if s.notified >= valid {
            break s;
        }
    };
    let took = start.elapsed();
    println!(
        "{orders} orders, {} notified on the back node ({} rejected at validation), {} cents booked, in {took:?}: {:.0} orders/s",
        stats.notified,
        orders - valid,
        stats.booked_cents,
        orders as f64 / took.as_secs_f64()
    );
    node.shutdown();
    Ok(())
}

/// The example's command line.
#[derive(clap::Parser)]
#[command(about = "An order-processing pipeline split over two nodes")]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
}

#[derive(clap::Subcommand)]
enum Mode {
    /// Both nodes in this process (the default).
    All {
        /// Orders to place.
        #[arg(default_value_t = 100_000)]
        orders: u64,
    },
    /// The back node alone (payment, ledger, notification), until killed.
    Back {
        /// Where its node listens.
        #[arg(default_value = "127.0.0.1:4710")]
        addr: SocketAddr,
        /// Serve /health, /ready and /metrics here.
        #[arg(long)]
        ops: Option<SocketAddr>,
    },
    /// The front node: places the orders against a back node.
    Front {
        /// The back node's address.
        #[arg(default_value = "127.0.0.1:4710")]
        addr: SocketAddr,
        /// Orders to place.
        #[arg(default_value_t = 100_000)]
        orders: u64,
    },
}

/// The back node's operations endpoint, its metrics recorded every 5 s.
fn serve_ops(
    rt: &Runtime,
    node: &Node,
    at: SocketAddr,
) -> Result<(Ops, Exporter), Box<dyn std::error::Error>> {
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    let exporter = Exporter::start(rt.handle(), Duration::from_secs(5))?;
    let stages = [
        ("payment", rt.lookup::<Charge>("payment").map(|a| a.untyped())),
        ("ledger", rt.lookup::<Charge>("ledger").map(|a| a.untyped())),
        ("notification", rt.lookup::<NotificationMsg>("notification").map(|a| a.untyped())),
    ];
    for (name, actor) in stages {
        if let Some(a) = actor {
            exporter.watch(name, &a);
        }
    }
    let ops = Ops::start(node, at, move || prometheus.render())?;
    println!("operations endpoint on http://{}", ops.addr());
    Ok((ops, exporter))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    match <Cli as clap::Parser>::parse().mode.unwrap_or(Mode::All { orders: 100_000 }) {
        Mode::Back { addr, ops } => {
            let (rt, node) = back(addr)?;
            println!("back node listening on {}", node.addr());
            // Kept for as long as the node serves.
            let _ops = ops.map(|at| serve_ops(&rt, &node, at)).transpose()?;
            loop {
                std::thread::park();
            }
        }
        Mode::Front { addr, orders } => front(addr, orders),
        Mode::All { orders } => {
            let (_rt, node) = back("127.0.0.1:0".parse()?)?;
            front(node.addr(), orders)
        }
    }
}
