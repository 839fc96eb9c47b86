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

/// The `peers` binary's `--rounds`: a whole number of at least 1.
pub fn parse_rounds(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("at least one round is needed".into()),
        Err(_) => Err(format!("{s:?} is not a whole number")),
    }
}

/// The `peers` binary's `--scale`: a finite number above 0 (it multiplies every workload's
/// size; 0, a negative number or NaN would leave no work to measure).
pub fn parse_scale(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        Ok(_) => Err(format!("{s}: the scale multiplies sizes, a finite number above 0 (e.g. 0.5)")),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::{median, parse_rounds, parse_scale};

    #[test]
    fn rounds_and_scale_refuse_what_leaves_nothing_to_measure() {
        assert_eq!(parse_rounds("5"), Ok(5));
        for bad in ["0", "-1", "many"] {
            assert!(parse_rounds(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_scale("0.5"), Ok(0.5));
        assert_eq!(parse_scale("2"), Ok(2.0));
        for bad in ["0", "-1", "nan", "inf", "half"] {
            assert!(parse_scale(bad).is_err(), "{bad}");
        }
    }

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
