//! Figures, their medians over runs, the table and the JSON Lines output.

use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::io::Write;

/// One measured number.
#[derive(Debug, Clone)]
pub(crate) struct Figure {
    pub(crate) workload: &'static str,
    pub(crate) metric: String,
    pub(crate) value: f64,
    pub(crate) unit: &'static str,
}

pub(crate) fn fig(workload: &'static str, metric: &str, value: f64, unit: &'static str) -> Figure {
    Figure { workload, metric: metric.to_string(), value, unit }
}

/// p50/p90/p99/p999/max of a latency histogram (nanoseconds).
pub(crate) fn percentiles(workload: &'static str, h: &Histogram<u64>) -> Vec<Figure> {
    let mut v = vec![];
    for (name, q) in [("p50_ns", 0.5), ("p90_ns", 0.9), ("p99_ns", 0.99), ("p999_ns", 0.999)] {
        v.push(fig(workload, name, h.value_at_quantile(q) as f64, "ns"));
    }
    v.push(fig(workload, "max_ns", h.max() as f64, "ns"));
    v
}

/// Every run's figures, keyed by (workload, metric).
#[derive(Default)]
pub(crate) struct Results {
    runs: BTreeMap<(String, String), (Vec<f64>, &'static str, usize)>,
    order: usize,
}

impl Results {
    pub(crate) fn add(&mut self, figs: Vec<Figure>) {
        for f in figs {
            self.order += 1;
            let order = self.order;
            let e = self.runs.entry((f.workload.to_string(), f.metric)).or_insert((vec![], f.unit, order));
            e.0.push(f.value);
        }
    }

    pub(crate) fn median(&self, workload: &str, metric: &str) -> Option<f64> {
        self.runs.get(&(workload.to_string(), metric.to_string())).map(|(v, _, _)| median(v))
    }

    /// (workload, metric, median, unit, runs), in the order first measured.
    pub(crate) fn rows(&self) -> Vec<(String, String, f64, &'static str, usize)> {
        let mut rows: Vec<_> = self
            .runs
            .iter()
            .map(|((w, m), (v, unit, order))| (*order, w.clone(), m.clone(), median(v), *unit, v.len()))
            .collect();
        rows.sort_by_key(|r| r.0);
        rows.into_iter().map(|(_, w, m, v, u, n)| (w, m, v, u, n)).collect()
    }

    pub(crate) fn print_table(&self) {
        println!("{:<16} {:<22} {:>16} {:<10} {:>4}", "workload", "metric", "median", "unit", "runs");
        println!("{}", "-".repeat(72));
        for (w, m, v, u, n) in self.rows() {
            println!("{w:<16} {m:<22} {:>16} {u:<10} {n:>4}", pretty(v));
        }
    }

    pub(crate) fn write_json(&self, path: &std::path::Path) -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        for (w, m, v, u, _) in self.rows() {
            let line = serde_json::json!({ "workload": w, "metric": m, "value": v, "unit": u });
            writeln!(f, "{line}")?;
        }
        f.flush()
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn pretty(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}
