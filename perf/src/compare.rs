//! `corelane-perf compare A.jsonl B.jsonl`: every figure present in both files, B's median over
//! A's, each side's range, and a flag where the change goes beyond the spread (the two ranges of
//! runs do not overlap, and the medians differ by more than `NOISE`).

use crate::jsonl::{self, Loaded, Record};
use crate::report::pretty;
use crate::targets::lower_is_better;
use std::path::Path;

/// Below this relative difference of medians nothing is flagged, even when single runs do not
/// overlap.
const NOISE: f64 = 0.05;

/// Which way a figure moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Within the spread (or the noise floor).
    Same,
    Better,
    Worse,
}

/// One figure in both files.
pub(crate) struct Row {
    pub(crate) a: Record,
    pub(crate) b: Record,
    pub(crate) ratio: f64,
    pub(crate) change: Change,
}

pub(crate) fn rows(a: &Loaded, b: &Loaded) -> Vec<Row> {
    let mut out = Vec::new();
    for ra in &a.records {
        let Some(rb) = b.records.iter().find(|r| r.key() == ra.key()) else { continue };
        let (sa, sb) = (&ra.series, &rb.series);
        let ratio = sb.median() / sa.median();
        let apart = sb.min() > sa.max() || sb.max() < sa.min();
        let change = if !apart || (ratio - 1.0).abs() <= NOISE || !ratio.is_finite() {
            Change::Same
        } else if (ratio < 1.0) == lower_is_better(&sa.workload, &sa.metric, &sa.unit) {
            Change::Better
        } else {
            Change::Worse
        };
        out.push(Row { a: ra.clone(), b: rb.clone(), ratio, change });
    }
    out
}

/// Prints the comparison; returns whether anything got worse beyond its spread.
pub(crate) fn run(a: &Path, b: &Path) -> std::io::Result<bool> {
    let (la, lb) = (jsonl::read(a)?, jsonl::read(b)?);
    for (name, l, p) in [("A", &la, a), ("B", &lb, b)] {
        let m = l.meta.as_ref();
        let field = |k: &str| m.and_then(|m| m[k].as_str()).unwrap_or("?").to_string();
        let rev: String = field("git_rev").chars().take(10).collect();
        println!("{name}: {} (rev {rev}, {}, idle {})", p.display(), field("date"), field("idle"));
    }
    let rows = rows(&la, &lb);
    println!(
        "{:<20} {:<10} {:<24} {:>12} {:>23} {:>12} {:>23} {:>7}  change",
        "workload", "framework", "metric", "A median", "A min-max", "B median", "B min-max", "B / A"
    );
    println!("{}", "-".repeat(148));
    let mut worse = false;
    for r in &rows {
        let (sa, sb) = (&r.a.series, &r.b.series);
        let flag = match r.change {
            Change::Same => "",
            Change::Better => "better",
            Change::Worse => {
                worse = true;
                "WORSE"
            }
        };
        println!(
            "{:<20} {:<10} {:<24} {:>12} {:>23} {:>12} {:>23} {:>7.3}  {flag}",
            sa.workload,
            r.a.framework.as_deref().unwrap_or(""),
            sa.metric,
            pretty(sa.median()),
            format!("{}-{}", pretty(sa.min()), pretty(sa.max())),
            pretty(sb.median()),
            format!("{}-{}", pretty(sb.min()), pretty(sb.max())),
            r.ratio,
        );
    }
    let only = |x: &Loaded, y: &Loaded| {
        x.records.iter().filter(|r| !y.records.iter().any(|s| s.key() == r.key())).count()
    };
    println!("{} figures in both; {} only in A, {} only in B", rows.len(), only(&la, &lb), only(&lb, &la));
    Ok(worse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Series;

    fn rec(w: &str, m: &str, unit: &str, runs: &[f64]) -> Record {
        Record {
            framework: None,
            series: Series { workload: w.into(), metric: m.into(), unit: unit.into(), runs: runs.to_vec() },
        }
    }
    fn loaded(r: Vec<Record>) -> Loaded {
        Loaded { meta: None, records: r }
    }

    #[test]
    fn changes_beyond_the_spread_are_flagged_with_their_direction() {
        let a = loaded(vec![
            rec("raw-c2c", "ns_per_roundtrip", "ns", &[100.0, 105.0, 110.0]),
            rec("tell-cross", "msgs_per_sec", "msg/s", &[10e6, 11e6, 12e6]),
            rec("pingpong-cross", "x_raw_c2c", "ratio", &[2.0, 2.1, 2.2]),
            rec("spawn", "actors_per_sec", "actor/s", &[1e6, 1.5e6, 2e6]),
            rec("only-a", "x", "ns", &[1.0]),
        ]);
        let b = loaded(vec![
            rec("raw-c2c", "ns_per_roundtrip", "ns", &[150.0, 155.0, 160.0]),
            rec("tell-cross", "msgs_per_sec", "msg/s", &[20e6, 21e6, 22e6]),
            rec("pingpong-cross", "x_raw_c2c", "ratio", &[1.2, 1.25, 1.3]),
            // Overlapping ranges: within the spread, whatever the medians say.
            rec("spawn", "actors_per_sec", "actor/s", &[1.8e6, 1.9e6, 2.5e6]),
        ]);
        let rows = rows(&a, &b);
        assert_eq!(rows.len(), 4, "only figures in both");
        let change = |w: &str| rows.iter().find(|r| r.a.series.workload == w).unwrap().change;
        assert_eq!(change("raw-c2c"), Change::Worse, "latency up");
        assert_eq!(change("tell-cross"), Change::Better, "throughput up");
        assert_eq!(change("pingpong-cross"), Change::Better, "a ratio with an upper bound down");
        assert_eq!(change("spawn"), Change::Same);
        let r = rows.iter().find(|r| r.a.series.workload == "raw-c2c").unwrap();
        assert!((r.ratio - 155.0 / 105.0).abs() < 1e-9);
    }

    #[test]
    fn single_runs_within_the_noise_floor_are_not_flagged() {
        let a = loaded(vec![rec("w", "p50_ns", "ns", &[100.0])]);
        let b = loaded(vec![rec("w", "p50_ns", "ns", &[103.0])]);
        assert_eq!(rows(&a, &b)[0].change, Change::Same);
        let c = loaded(vec![rec("w", "p50_ns", "ns", &[120.0])]);
        assert_eq!(rows(&a, &c)[0].change, Change::Worse);
    }

    #[test]
    fn peers_compare_per_framework() {
        let mut x = rec("savina-pingpong", "msgs_per_sec", "msg/s", &[1.0]);
        x.framework = Some("actix".into());
        let mut y = rec("savina-pingpong", "msgs_per_sec", "msg/s", &[9.0]);
        y.framework = Some("kameo".into());
        assert!(rows(&loaded(vec![x.clone()]), &loaded(vec![y])).is_empty(), "another framework's figure");
        assert_eq!(rows(&loaded(vec![x.clone()]), &loaded(vec![x])).len(), 1);
    }
}
