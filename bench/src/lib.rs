//! What the benchmarks share: the actors their workloads drive. criterion micro-benchmarks of
//! corelane live in `benches/`, the same workloads on actix, kameo and ractor in the `peers`
//! binary (`--features peers`); the perf harness (`corelane-perf`) holds the workload suite and
//! its raw baselines, and takes its actors from here too.

pub mod workload;

/// The median of `runs` (sorted in place): the middle value, or the mean of the two middle
/// ones for an even count, as the harness's reports take it. `NaN` for no runs.
pub fn median(runs: &mut [f64]) -> f64 {
    runs.sort_by(f64::total_cmp);
    match runs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => runs[n / 2],
        n => (runs[n / 2 - 1] + runs[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    /// Six processes (`--rounds 6`) are an even count: the median is the mean of the middle
    /// two, not the upper one, which moved each framework's figure toward its faster processes
    /// (and so each ratio to the best peer either way).
    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0, 6.0, 5.0]), 3.5);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert!(median(&mut []).is_nan());
    }
}
