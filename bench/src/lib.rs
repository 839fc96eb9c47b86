//! What the benchmarks share: the actors their workloads drive. criterion micro-benchmarks of
//! corelane live in `benches/`, the same workloads on actix, kameo and ractor in the `peers`
//! binary (`--features peers`); the perf harness (`corelane-perf`) holds the workload suite and
//! its raw baselines, and takes its actors from here too.

pub mod workload;
