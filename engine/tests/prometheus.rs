//! What a Prometheus scrape shows of a runtime exported through the `metrics` facade:
//! per-shard and per-kind series, rendered by metrics-exporter-prometheus (its own test binary:
//! it installs the process's recorder).

use corelane::export::{self, Exporter};
use corelane::{Actor, ActorError, Ctx, Idle, Reply, Runtime, Shards};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

struct Adder(u64);
impl Actor for Adder {
    type Msg = (u64, Option<Reply<u64>>);
    fn receive(&mut self, _: &mut Ctx<Self>, (n, r): (u64, Option<Reply<u64>>)) -> Result<(), ActorError> {
        self.0 += n;
        if let Some(r) = r {
            r.send(self.0);
        }
        Ok(())
    }
}

#[test]
fn a_scrape_shows_per_shard_and_per_kind_figures() {
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().unwrap();
    let rt = Runtime::builder().shards(Shards::Count(2)).idle(Idle::Park).build().unwrap();
    let adders: Vec<_> = (0..4).map(|_| rt.spawn(|| Adder(0)).unwrap()).collect();
    for a in &adders {
        for n in 0..10 {
            a.tell((n, None)).unwrap();
        }
        assert_eq!(a.ask(|r| (0, Some(r))).timeout(WAIT).wait().unwrap(), 45);
    }
    let exporter = Exporter::start(rt.handle(), Duration::from_millis(10)).unwrap();
    exporter.watch("adder-0", &adders[0].untyped());
    // Scrape until the exporter's first period has recorded everything.
    let deadline = Instant::now() + WAIT;
    let page = loop {
        let page = prometheus.render();
        if page.contains("corelane_kind_actors{kind=\"prometheus::Adder\"} 4")
            && page.contains("corelane_actor_processed_total{actor=\"adder-0\"} 11")
        {
            break page;
        }
        assert!(Instant::now() < deadline, "not scraped: {page}");
        std::thread::yield_now();
    };
    assert!(page.contains("# TYPE corelane_shard_processed_total counter"), "{page}");
    for shard in ["0", "1"] {
        assert!(page.contains(&format!("corelane_shard_processed_total{{shard=\"{shard}\"}}")), "{page}");
        assert!(page.contains(&format!("corelane_shard_run_queue_depth{{shard=\"{shard}\"}}")), "{page}");
    }
    assert!(page.contains("corelane_kind_processed{kind=\"prometheus::Adder\"} 44"), "{page}");
    assert!(page.contains("corelane_dead_letters_total{reason=\"ActorStopped\"} 0"), "{page}");
    // By hand, once, the same figures.
    export::record(rt.handle());
    assert!(prometheus.render().contains("corelane_actors "), "the runtime's own figures");
    exporter.stop();
    rt.shutdown().unwrap();
}
