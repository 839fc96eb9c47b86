//! criterion micro-benchmarks of corelane live in `benches/`; the perf harness
//! (`corelane-perf`) holds the workload suite and its raw baselines.
