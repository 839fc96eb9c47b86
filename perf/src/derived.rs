//! Figures derived from two others measured in the same run (an engine figure over its raw
//! baseline), run by run, so the spread shows too.
//!
//! A raw baseline (a `raw-*` workload) measures the machine as it is at that moment, and on a
//! shared VM that moment matters: here the two vCPUs move between one core's SMT siblings and
//! two cores every few seconds, and `raw-c2c` with them (45 or 400 ns), while one run of a
//! workload takes a fraction of a second. So a ratio to a raw baseline is *paired*: the harness
//! measures the baseline again right before each run of the workload ([`paired_baselines`]) and
//! divides by that ([`paired_ratios`]), whether or not the baseline was chosen on its own. Ratios
//! between two engine workloads are taken run i over run i ([`new_ratios`]).

use crate::report::{fig, Figure, Results, Series};

/// `workload`'s `metric` = `num` / `den`, each a (workload, metric).
struct Ratio {
    workload: &'static str,
    metric: &'static str,
    num: (&'static str, &'static str),
    den: (&'static str, &'static str),
}

const fn ratio(
    workload: &'static str,
    metric: &'static str,
    num: (&'static str, &'static str),
    den: (&'static str, &'static str),
) -> Ratio {
    Ratio { workload, metric, num, den }
}

const RATIOS: &[Ratio] = &[
    ratio(
        "pingpong-cross",
        "x_raw_c2c",
        ("pingpong-cross", "ns_per_roundtrip"),
        ("raw-c2c", "ns_per_roundtrip"),
    ),
    ratio(
        "pingpong-cross",
        "x_raw_c2c_pair",
        ("pingpong-cross", "ns_per_roundtrip"),
        ("raw-c2c-pair", "ns_per_roundtrip"),
    ),
    ratio("oneway-spin", "p50_x_raw_oneway", ("oneway-spin", "p50_ns"), ("raw-oneway", "p50_ns")),
    ratio("oneway-spin", "p99_x_raw_oneway", ("oneway-spin", "p99_ns"), ("raw-oneway", "p99_ns")),
    ratio(
        "oneway-spin-then-park",
        "p50_x_raw_oneway",
        ("oneway-spin-then-park", "p50_ns"),
        ("raw-oneway", "p50_ns"),
    ),
    ratio("oneway-park", "p50_x_raw_futex_wake", ("oneway-park", "p50_ns"), ("raw-futex-wake", "p50_ns")),
    ratio("wake-parked", "p50_x_raw_futex_wake", ("wake-parked", "p50_ns"), ("raw-futex-wake", "p50_ns")),
    ratio("wake-parked", "p99_x_raw_futex_wake", ("wake-parked", "p99_ns"), ("raw-futex-wake", "p99_ns")),
    ratio("tell-cross", "share_of_raw_spsc", ("tell-cross", "msgs_per_sec"), ("raw-spsc", "msgs_per_sec")),
    ratio("tell-local", "share_of_raw_spsc", ("tell-local", "msgs_per_sec"), ("raw-spsc", "msgs_per_sec")),
    ratio(
        "tell-bounded",
        "share_of_tell_local",
        ("tell-bounded", "msgs_per_sec"),
        ("tell-local", "msgs_per_sec"),
    ),
    ratio(
        "tell-priority",
        "share_of_tell_local",
        ("tell-priority", "msgs_per_sec"),
        ("tell-local", "msgs_per_sec"),
    ),
    ratio("router-rr", "share_of_tell_cross", ("router-rr", "msgs_per_sec"), ("tell-cross", "msgs_per_sec")),
    ratio("remote-pingpong", "p50_x_raw_quic", ("remote-pingpong", "p50_ns"), ("raw-quic", "p50_ns")),
    ratio("remote-pingpong", "p99_x_raw_quic", ("remote-pingpong", "p99_ns"), ("raw-quic", "p99_ns")),
    ratio(
        "remote-tell",
        "share_of_raw_quic_stream",
        ("remote-tell", "msgs_per_sec"),
        ("raw-quic-stream", "msgs_per_sec"),
    ),
    ratio("grain-ask", "p50_x_remote_pingpong", ("grain-ask", "p50_ns"), ("remote-pingpong", "p50_ns")),
    ratio("grain-ask", "p99_x_remote_pingpong", ("grain-ask", "p99_ns"), ("remote-pingpong", "p99_ns")),
    ratio("named-ask", "p50_x_remote_pingpong", ("named-ask", "p50_ns"), ("remote-pingpong", "p50_ns")),
    ratio("named-ask", "p99_x_remote_pingpong", ("named-ask", "p99_ns"), ("remote-pingpong", "p99_ns")),
    ratio(
        "grain-tell",
        "share_of_remote_tell",
        ("grain-tell", "msgs_per_sec"),
        ("remote-tell", "msgs_per_sec"),
    ),
    ratio("grain-activate", "p50_x_grain_ask", ("grain-activate", "p50_ns"), ("grain-ask", "p50_ns")),
    ratio("ask-external", "p50_x_raw_c2c", ("ask-external", "p50_ns"), ("raw-c2c", "ns_per_roundtrip")),
    ratio(
        "ask-external",
        "p50_x_raw_c2c_pair",
        ("ask-external", "p50_ns"),
        ("raw-c2c-pair", "ns_per_roundtrip"),
    ),
    ratio("ask-same-core", "p50_x_raw_same_core", ("ask-same-core", "p50_ns"), ("raw-same-core", "p50_ns")),
];

impl Ratio {
    /// Whether the denominator is a raw baseline, measured again before each run.
    fn paired(&self) -> bool {
        self.den.0.starts_with("raw-")
    }
}

/// The raw baselines that `workload`'s ratios divide by, each once, in the order of `RATIOS`.
pub(crate) fn paired_baselines(workload: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    for q in RATIOS.iter().filter(|q| q.paired() && q.num.0 == workload) {
        if !out.contains(&q.den.0) {
            out.push(q.den.0);
        }
    }
    out
}

/// The paired ratios of one run of `workload` (its figures `run`) over the baselines measured
/// just before it (`baselines`).
pub(crate) fn paired_ratios(workload: &str, run: &[Figure], baselines: &[Figure]) -> Vec<Figure> {
    let find = |figs: &[Figure], (w, m): (&str, &str)| {
        figs.iter().find(|f| f.workload == w && f.metric == m).map(|f| f.value)
    };
    RATIOS
        .iter()
        .filter(|q| q.paired() && q.num.0 == workload)
        .filter_map(|q| {
            let (a, b) = (find(run, q.num)?, find(baselines, q.den)?);
            Some(fig(q.workload, q.metric, a / b, "ratio"))
        })
        .collect()
}

/// The derived figures between engine workloads whose two inputs are in `r` and that are not
/// in it yet (ratios to raw baselines are paired instead).
pub(crate) fn new_ratios(r: &Results) -> Vec<Series> {
    let mut out = Vec::new();
    for q in RATIOS.iter().filter(|q| !q.paired()) {
        if r.get(q.workload, q.metric).is_some() {
            continue;
        }
        if let (Some(a), Some(b)) = (r.get(q.num.0, q.num.1), r.get(q.den.0, q.den.1)) {
            let runs = a.runs.iter().zip(&b.runs).map(|(x, y)| x / y).collect();
            out.push(Series {
                workload: q.workload.into(),
                metric: q.metric.into(),
                unit: "ratio".into(),
                runs,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ratio_between_engine_workloads_appears_once_both_are_measured_run_by_run() {
        let mut r = Results::default();
        r.add(vec![fig("tell-bounded", "msgs_per_sec", 300.0, "msg/s")]);
        r.add(vec![fig("tell-bounded", "msgs_per_sec", 330.0, "msg/s")]);
        assert!(new_ratios(&r).is_empty(), "no denominator yet");
        r.add(vec![fig("tell-local", "msgs_per_sec", 600.0, "msg/s")]);
        r.add(vec![fig("tell-local", "msgs_per_sec", 1100.0, "msg/s")]);
        let d = new_ratios(&r);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].metric, "share_of_tell_local");
        assert_eq!(d[0].runs, vec![0.5, 0.3]);
        r.add_series(d[0].clone());
        assert!(new_ratios(&r).is_empty(), "each once");
    }

    #[test]
    fn ratios_to_raw_baselines_are_paired_with_the_baseline_run_just_before() {
        assert_eq!(paired_baselines("pingpong-cross"), vec!["raw-c2c", "raw-c2c-pair"]);
        assert_eq!(paired_baselines("ask-external"), vec!["raw-c2c", "raw-c2c-pair"]);
        assert_eq!(paired_baselines("oneway-spin"), vec!["raw-oneway"]);
        assert!(paired_baselines("tell-bounded").is_empty(), "its ratio is to an engine workload");
        assert!(paired_baselines("raw-c2c").is_empty());
        let run = [fig("oneway-spin", "p50_ns", 130.0, "ns"), fig("oneway-spin", "p99_ns", 300.0, "ns")];
        let base = [fig("raw-oneway", "p50_ns", 65.0, "ns"), fig("raw-oneway", "p99_ns", 100.0, "ns")];
        let r = paired_ratios("oneway-spin", &run, &base);
        let got: Vec<(&str, f64)> = r.iter().map(|f| (f.metric.as_str(), f.value)).collect();
        assert_eq!(got, vec![("p50_x_raw_oneway", 2.0), ("p99_x_raw_oneway", 3.0)]);
        assert!(r.iter().all(|f| f.workload == "oneway-spin" && f.unit == "ratio"));
        // The paired ratios never come from the results' separate baseline runs.
        let mut all = Results::default();
        all.add(run.to_vec());
        all.add(base.to_vec());
        assert!(new_ratios(&all).is_empty());
        assert!(paired_ratios("oneway-spin", &run, &[]).is_empty(), "no baseline, no ratio");
    }
}
