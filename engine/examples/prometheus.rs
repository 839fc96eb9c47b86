//! The runtime's figures in Prometheus' text format, through the `metrics` facade.
//!
//! ```text
//! cargo run -p corelane --features metrics --example prometheus
//! ```
//!
//! Installs metrics-exporter-prometheus' recorder, does some work, records the runtime's, each
//! shard's, each actor kind's and one actor's figures, and prints the page a scrape would get. In a service, start an
//! [`Exporter`] instead (it records every period) and serve `handle.render()` from your HTTP
//! server, or turn on the exporter crate's own `http-listener`.

use corelane::export::{self, Exporter};
use corelane::{Actor, ActorError, Ctx, Reply, Runtime};
use metrics_exporter_prometheus::PrometheusBuilder;
use std::time::Duration;

enum Msg {
    Add(u64),
    Get(Reply<u64>),
}

struct Counter(u64);
impl Actor for Counter {
    type Msg = Msg;
    fn receive(&mut self, _: &mut Ctx<Self>, msg: Msg) -> Result<(), ActorError> {
        match msg {
            Msg::Add(n) => self.0 += n,
            Msg::Get(r) => r.send(self.0),
        }
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let prometheus = PrometheusBuilder::new().install_recorder()?;
    let rt = Runtime::builder().build()?;
    let counter = rt.spawn(|| Counter(0))?;
    for n in 0..1000 {
        counter.tell(Msg::Add(n))?;
    }
    let total = counter.ask(Msg::Get).timeout(Duration::from_secs(5)).wait()?;
    assert_eq!(total, 499_500);

    // Once, by hand: the runtime, its shards, the actors by kind, and the counter under the
    // label actor="counter".
    export::record(rt.handle());
    export::record_kinds(&rt.kind_metrics().timeout(Duration::from_secs(5)).wait()?);
    export::record_actor("counter", &counter.metrics().timeout(Duration::from_secs(5)).wait()?);
    print!("{}", prometheus.render());

    // What a service does: record every 10 s from an actor of the runtime.
    let exporter = Exporter::start(rt.handle(), Duration::from_secs(10))?;
    exporter.watch("counter", &counter.untyped());
    exporter.stop();
    rt.shutdown()?;
    Ok(())
}
