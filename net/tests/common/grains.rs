//! A grain for the cluster tests and examples' callers: a counter that says who it is, where it
//! runs and since which epoch.
#![allow(dead_code, unreachable_pub)]

use corelane::{ActorError, Reply};
use corelane_net::cluster::{Grain, GrainCtx};
use corelane_net::{Accepts, Answers, Protocol};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Names a test wire message `<package>.<type>` (also used by the other test messages: this
/// file is included on its own by the examples, so the macro lives here).
macro_rules! named {
    ($t:ident, $package:literal) => {
        impl prost::Name for $t {
            const NAME: &'static str = stringify!($t);
            const PACKAGE: &'static str = $package;
        }
    };
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Add {
    #[prost(uint64, tag = "1")]
    pub amount: u64,
}
named!(Add, "cluster.test.v1");

#[derive(Clone, PartialEq, prost::Message)]
pub struct Get {}
named!(Get, "cluster.test.v1");

/// Told, the counter ends its activation (`GrainCtx::deactivate`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Deactivate {}
named!(Deactivate, "cluster.test.v1");

/// Asked, the counter keeps the reply and never answers it (an ask in flight for good).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Park {}
named!(Park, "cluster.test.v1");

/// Told, the counter's handler returns an error (its activation ends).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Fail {}
named!(Fail, "cluster.test.v1");

/// Told, the counter's handler panics (its activation ends).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Panic {}
named!(Panic, "cluster.test.v1");

#[derive(Clone, PartialEq, prost::Message)]
pub struct Count {
    #[prost(uint64, tag = "1")]
    pub value: u64,
    #[prost(string, tag = "2")]
    pub identity: String,
    /// The member it runs on.
    #[prost(string, tag = "3")]
    pub member: String,
    /// The epoch its activation began at.
    #[prost(uint64, tag = "4")]
    pub epoch: u64,
    /// The trace id the ask was handled in (hex; empty: none).
    #[prost(string, tag = "5")]
    pub trace_id: String,
}
named!(Count, "cluster.test.v1");

pub enum CounterMsg {
    Add(u64),
    Get(Reply<Count>),
    Park(Reply<Count>),
    Deactivate,
    Fail,
    Panic,
}

/// Counts what it is told; activations and deactivations are counted per member (and written
/// to a ledger when there is one).
pub struct Counter {
    identity: String,
    member: String,
    value: u64,
    stats: Arc<Activity>,
    /// This activation's number on this member.
    seq: u64,
    parked: Vec<Reply<Count>>,
}

/// Activations started and ended on one member.
#[derive(Default, Debug)]
pub struct Activity {
    pub activated: AtomicU64,
    pub deactivated: AtomicU64,
    /// The most activations of one grain live at once on this member (any grain: the tests
    /// that read it use one).
    pub max_live: AtomicU64,
    pub ledger: Option<Ledger>,
}

impl Activity {
    pub fn live(&self) -> u64 {
        self.activated.load(Ordering::SeqCst) - self.deactivated.load(Ordering::SeqCst)
    }
}

/// One line per activation, handled message and deactivation, appended (each line one write,
/// so a process killed at any moment leaves whole lines):
/// `<unix nanos> <member> <pid> <activate|handle|deactivate> <identity> <activation> <epoch>`.
#[derive(Debug)]
pub struct Ledger {
    file: std::sync::Mutex<std::fs::File>,
    member: String,
}

impl Ledger {
    pub fn open(path: &str, member: &str) -> std::io::Result<Ledger> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Ledger { file: std::sync::Mutex::new(file), member: member.to_string() })
    }

    fn record(&self, what: &str, identity: &str, activation: u64, epoch: u64) {
        use std::io::Write;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let line =
            format!("{now} {} {} {what} {identity} {activation} {epoch}\n", self.member, std::process::id());
        let _ = self.file.lock().unwrap().write_all(line.as_bytes());
    }
}

impl Grain for Counter {
    const KIND: &'static str = "counter";
    type Msg = CounterMsg;

    fn activated(&mut self, ctx: &mut GrainCtx<'_, Self>) -> Result<(), ActorError> {
        self.seq = self.stats.activated.fetch_add(1, Ordering::SeqCst) + 1;
        self.stats.max_live.fetch_max(self.stats.live(), Ordering::SeqCst);
        if let Some(l) = &self.stats.ledger {
            l.record("activate", ctx.identity(), self.seq, ctx.epoch());
        }
        Ok(())
    }

    fn receive(&mut self, ctx: &mut GrainCtx<'_, Self>, msg: CounterMsg) -> Result<(), ActorError> {
        if let Some(l) = &self.stats.ledger {
            l.record("handle", ctx.identity(), self.seq, ctx.epoch());
        }
        match msg {
            CounterMsg::Add(n) => self.value += n,
            CounterMsg::Get(r) => r.send(Count {
                value: self.value,
                identity: ctx.identity().to_string(),
                member: self.member.clone(),
                epoch: ctx.epoch(),
                trace_id: corelane::trace::current()
                    .map(|t| format!("{:032x}", t.trace_id()))
                    .unwrap_or_default(),
            }),
            CounterMsg::Park(r) => self.parked.push(r),
            CounterMsg::Deactivate => ctx.deactivate(),
            CounterMsg::Fail => return Err(ActorError::msg("told to fail")),
            CounterMsg::Panic => panic!("told to panic"),
        }
        Ok(())
    }

    fn deactivated(&mut self, ctx: &mut GrainCtx<'_, Self>) {
        self.stats.deactivated.fetch_add(1, Ordering::SeqCst);
        if let Some(l) = &self.stats.ledger {
            l.record("deactivate", ctx.identity(), self.seq, ctx.epoch());
        }
    }
}

/// Declares what counters (and desks) accept: `$msg => $variant` for tells, `$msg ? $variant`
/// for asks answered with a `Count`.
macro_rules! counter_accepts {
    ($($msg:ident => $variant:expr),* ; $($ask:ident ? $avariant:path),*) => {
        $(impl Accepts<$msg> for CounterMsg {
            fn from_tell(m: $msg) -> Self {
                $variant(m)
            }
        })*
        $(impl Answers<$ask> for CounterMsg {
            type Reply = Count;
            fn from_ask(_: $ask, r: Reply<Count>) -> Self {
                $avariant(r)
            }
        })*
    };
}
counter_accepts!(
    Add => |a: Add| CounterMsg::Add(a.amount),
    Deactivate => |_| CounterMsg::Deactivate,
    Fail => |_| CounterMsg::Fail,
    Panic => |_| CounterMsg::Panic;
    Get ? CounterMsg::Get,
    Park ? CounterMsg::Park
);

pub fn counter_protocol() -> Protocol<CounterMsg> {
    Protocol::new()
        .accepts::<Add>()
        .answers::<Get>()
        .answers::<Park>()
        .accepts::<Deactivate>()
        .accepts::<Fail>()
        .accepts::<Panic>()
}

/// The factory of counters on member `member`, counting into `stats`.
pub fn counters(
    member: &str,
    stats: Arc<Activity>,
) -> impl Fn(&str) -> Counter + Send + Sync + Clone + 'static {
    let member = member.to_string();
    move |identity: &str| Counter {
        identity: identity.to_string(),
        member: member.clone(),
        value: 0,
        stats: stats.clone(),
        seq: 0,
        parked: Vec::new(),
    }
}

/// A plain actor for named actors and singletons: counts what it is told, answers `Get` with
/// the member it runs on; writes `start` and `stop` (and `handle`) lines to a ledger if given
/// one, as a counter activation does.
pub struct Desk {
    member: String,
    value: u64,
    ledger: Option<Arc<Ledger>>,
    seq: u64,
}

static DESKS: AtomicU64 = AtomicU64::new(0);

impl corelane::Actor for Desk {
    type Msg = CounterMsg;

    fn started(&mut self, _: &mut corelane::Ctx<Self>) -> Result<(), ActorError> {
        if let Some(l) = &self.ledger {
            l.record("activate", "desk", self.seq, 0);
        }
        Ok(())
    }

    fn receive(&mut self, _: &mut corelane::Ctx<Self>, msg: CounterMsg) -> Result<(), ActorError> {
        if let Some(l) = &self.ledger {
            l.record("handle", "desk", self.seq, 0);
        }
        match msg {
            CounterMsg::Add(n) => self.value += n,
            CounterMsg::Get(r) => r.send(Count {
                value: self.value,
                identity: String::new(),
                member: self.member.clone(),
                epoch: 0,
                trace_id: String::new(),
            }),
            CounterMsg::Park(r) => drop(r),
            CounterMsg::Deactivate | CounterMsg::Fail => return Err(ActorError::msg("told to fail")),
            CounterMsg::Panic => panic!("told to panic"),
        }
        Ok(())
    }

    fn stopped(&mut self, _: &mut corelane::Ctx<Self>) {
        if let Some(l) = &self.ledger {
            l.record("deactivate", "desk", self.seq, 0);
        }
    }
}

/// The factory of desks on member `member`.
pub fn desks(member: &str, ledger: Option<Arc<Ledger>>) -> impl Fn() -> Desk + Send + Sync + Clone + 'static {
    let member = member.to_string();
    move || Desk {
        member: member.clone(),
        value: 0,
        ledger: ledger.clone(),
        seq: DESKS.fetch_add(1, Ordering::Relaxed) + 1,
    }
}
