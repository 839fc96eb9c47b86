//! The peers comparison as Markdown tables, from the `peers` binary's JSON Lines: every
//! framework side by side (medians across processes) with corelane's ratio to the best peer
//! and its spread; and, given a second file measured under load, loaded against quiet.
//! `docs/benchmarks.md` takes its peer and Savina tables from here.

use crate::jsonl::Record;
use crate::report::median;
use std::fmt::Write;

/// The frameworks, in the order of the columns.
const FRAMEWORKS: [&str; 6] = ["corelane", "corelane-spin", "corelane-block-on", "actix", "kameo", "ractor"];

/// corelane's ratio to the best peer, written by `peers` next to each workload's figure.
const X_BEST: &str = "x_best_peer";

/// One file's figures, looked up by workload, framework and metric.
struct Figures<'a>(&'a [Record]);

impl Figures<'_> {
    /// Workloads in first-seen order, each with its measured metric (not the ratio).
    fn workloads(&self) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = Vec::new();
        for r in self.0 {
            let s = &r.series;
            if s.metric != X_BEST && !out.iter().any(|(w, _)| *w == s.workload) {
                out.push((&s.workload, &s.metric));
            }
        }
        out
    }

    fn runs(&self, workload: &str, framework: &str, metric: &str) -> Option<&[f64]> {
        self.0
            .iter()
            .find(|r| {
                r.series.workload == workload
                    && r.framework.as_deref() == Some(framework)
                    && r.series.metric == metric
            })
            .map(|r| &r.series.runs[..])
    }

    fn median(&self, workload: &str, framework: &str, metric: &str) -> Option<f64> {
        self.runs(workload, framework, metric).map(median)
    }

    fn spread(&self, workload: &str, framework: &str, metric: &str) -> Option<f64> {
        self.runs(workload, framework, metric).map(|r| {
            let (lo, hi) = r.iter().fold((f64::INFINITY, 0f64), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
            hi / lo
        })
    }
}

/// Rates as people read them: 3.1 M, 43 K, 512.
fn rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0} K", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn or_dash(v: Option<String>) -> String {
    v.unwrap_or_else(|| "–".into())
}

/// The tables for `quiet` and, when given, `loaded` (the same workloads under load).
pub(crate) fn tables(quiet: &[Record], loaded: Option<&[Record]>) -> String {
    let q = Figures(quiet);
    let mut md = String::new();
    let _ = writeln!(
        md,
        "| workload | {} | corelane / best peer (spin) | max/min corelane (spin) |",
        FRAMEWORKS.join(" | ")
    );
    let _ = writeln!(md, "|---|{}---|---|", "---|".repeat(FRAMEWORKS.len()));
    for (w, m) in q.workloads() {
        let cells: Vec<String> = FRAMEWORKS.iter().map(|f| or_dash(q.median(w, f, m).map(rate))).collect();
        let pair = |a: Option<f64>, b: Option<f64>| {
            or_dash(a.map(|a| format!("{a:.2} ({})", or_dash(b.map(|b| format!("{b:.2}"))))))
        };
        let x = pair(q.median(w, "corelane", X_BEST), q.median(w, "corelane-spin", X_BEST));
        let spread = pair(q.spread(w, "corelane", m), q.spread(w, "corelane-spin", m));
        let _ = writeln!(md, "| {w} | {} | {x} | {spread} |", cells.join(" | "));
    }
    let Some(loaded) = loaded else { return md };
    let l = Figures(loaded);
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "| workload | corelane quiet | corelane loaded | loaded/quiet | corelane-spin loaded/quiet | \
         block-on loaded/quiet | actix loaded/quiet | corelane loaded max/min | corelane loaded / best peer loaded |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
    for (w, m) in q.workloads() {
        let ratio =
            |f: &str| or_dash(q.median(w, f, m).zip(l.median(w, f, m)).map(|(a, b)| format!("{:.2}", b / a)));
        let _ = writeln!(
            md,
            "| {w} | {} | {} | {} | {} | {} | {} | {} | {} |",
            or_dash(q.median(w, "corelane", m).map(rate)),
            or_dash(l.median(w, "corelane", m).map(rate)),
            ratio("corelane"),
            ratio("corelane-spin"),
            ratio("corelane-block-on"),
            ratio("actix"),
            or_dash(l.spread(w, "corelane", m).map(|s| format!("{s:.2}"))),
            or_dash(l.median(w, "corelane", X_BEST).map(|x| format!("{x:.2}"))),
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Series;

    fn rec(w: &str, f: &str, m: &str, runs: &[f64]) -> Record {
        Record {
            framework: Some(f.into()),
            series: Series { workload: w.into(), metric: m.into(), unit: String::new(), runs: runs.to_vec() },
        }
    }

    #[test]
    fn frameworks_side_by_side_then_loaded_against_quiet() {
        let quiet = [
            rec("tell", "corelane", "msgs_per_sec", &[40e6, 44e6, 42e6]),
            rec("tell", "corelane-spin", "msgs_per_sec", &[41e6]),
            rec("tell", "actix", "msgs_per_sec", &[20e6, 21e6]),
            rec("tell", "corelane", X_BEST, &[2.1, 2.0, 1.9]),
            rec("tell", "corelane-spin", X_BEST, &[1.95]),
        ];
        let loaded = [
            rec("tell", "corelane", "msgs_per_sec", &[21e6, 42e6]),
            rec("tell", "actix", "msgs_per_sec", &[20.5e6]),
            rec("tell", "corelane", X_BEST, &[1.5]),
        ];
        let md = tables(&quiet, Some(&loaded));
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines[2], "| tell | 42.0 M | 41.0 M | – | 20.5 M | – | – | 2.00 (1.95) | 1.10 (1.00) |");
        assert_eq!(lines[6], "| tell | 42.0 M | 31.5 M | 0.75 | – | – | 1.00 | 2.00 | 1.50 |");
        assert_eq!(tables(&quiet, None).lines().count(), 3);
    }
}
