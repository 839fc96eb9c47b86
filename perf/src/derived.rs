//! Figures derived from two others measured in the same run (an engine figure over its raw
//! baseline), run by run: run i of the one over run i of the other, so the spread shows too.

use crate::report::{Results, Series};

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
];

/// The derived figures whose two inputs are in `r` and that are not in it yet.
pub(crate) fn new_ratios(r: &Results) -> Vec<Series> {
    let mut out = Vec::new();
    for q in RATIOS {
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
    use crate::report::fig;

    #[test]
    fn a_ratio_appears_once_both_inputs_are_measured_run_by_run() {
        let mut r = Results::default();
        r.add(vec![fig("pingpong-cross", "ns_per_roundtrip", 300.0, "ns")]);
        r.add(vec![fig("pingpong-cross", "ns_per_roundtrip", 330.0, "ns")]);
        assert!(new_ratios(&r).is_empty(), "no baseline yet");
        r.add(vec![fig("raw-c2c", "ns_per_roundtrip", 100.0, "ns")]);
        r.add(vec![fig("raw-c2c", "ns_per_roundtrip", 110.0, "ns")]);
        let d = new_ratios(&r);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].metric, "x_raw_c2c");
        assert_eq!(d[0].runs, vec![3.0, 3.0]);
        r.add_series(d[0].clone());
        assert!(new_ratios(&r).is_empty(), "each once");
    }
}
