//! The numbers to reach (DESIGN §6), each as a bound on one figure, and which way is better for
//! figures without one.

use std::fmt;

/// A bound on one figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Target {
    /// At most this.
    AtMost(f64),
    /// At least this.
    AtLeast(f64),
}

impl Target {
    pub(crate) fn met_by(self, v: f64) -> bool {
        match self {
            Target::AtMost(t) => v <= t,
            Target::AtLeast(t) => v >= t,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (op, v) = match self {
            Target::AtMost(v) => ("<=", v),
            Target::AtLeast(v) => (">=", v),
        };
        write!(f, "{op} {}", crate::report::pretty(*v))
    }
}

/// The target of `workload`'s `metric`, if DESIGN sets one.
pub(crate) fn target(workload: &str, metric: &str) -> Option<Target> {
    use Target::*;
    Some(match (workload, metric) {
        ("tell-local", "msgs_per_sec") => AtLeast(100e6),
        ("pingpong-cross", "x_raw_c2c") => AtMost(1.3),
        ("tell-cross", "share_of_raw_spsc") => AtLeast(0.25),
        ("ask-external", "p50_x_raw_c2c") => AtMost(1.5),
        // Wake latency (issue 16): spinning one way and a parked shard's wake, near their floors.
        ("oneway-spin", "p50_x_raw_oneway") => AtMost(1.2),
        ("wake-parked", "p50_x_raw_futex_wake") => AtMost(1.2),
        // 1 M idle actors or grains in at most 300 MB.
        ("idle-memory", "bytes_per_actor") => AtMost(300.0),
        ("grain-memory", "bytes_per_grain") => AtMost(300.0),
        ("remote-pingpong", "p50_x_raw_quic") => AtMost(1.1),
        ("remote-tell", "msgs_per_sec") => AtLeast(5e6),
        ("grain-ask" | "named-ask", "p50_x_remote_pingpong") => AtMost(1.05),
        ("client-grain-ask", "p50_x_member") => AtMost(1.05),
        ("grain-ask" | "named-ask" | "client-grain-ask", "store_requests_per_msg") => AtMost(0.0),
        ("trading-pipeline", "p99_x_rings") => AtMost(1.5),
        // Peers and Savina: corelane at least twice the best peer.
        (_, "x_best_peer") => AtLeast(2.0),
        _ => return None,
    })
}

/// Whether a smaller value of this figure is better (latencies, sizes, ratios to a floor).
pub(crate) fn lower_is_better(workload: &str, metric: &str, unit: &str) -> bool {
    match target(workload, metric) {
        Some(Target::AtMost(_)) => true,
        Some(Target::AtLeast(_)) => false,
        None => {
            matches!(unit, "ns" | "us" | "ms" | "s" | "B" | "MiB" | "req")
                || metric.contains("_x_")
                || metric.starts_with("x_")
        }
    }
}
