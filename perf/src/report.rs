//! Figures and their runs: the median, the range and the spread of every figure, its target
//! with a verdict, and the text table.

use crate::targets::{target, Target};
use hdrhistogram::Histogram;
use std::collections::HashMap;

/// One measured number of one run.
#[derive(Debug, Clone)]
pub(crate) struct Figure {
    pub(crate) workload: String,
    pub(crate) metric: String,
    pub(crate) value: f64,
    pub(crate) unit: &'static str,
}

pub(crate) fn fig(workload: &str, metric: &str, value: f64, unit: &'static str) -> Figure {
    Figure { workload: workload.to_string(), metric: metric.to_string(), value, unit }
}

/// p50/p90/p99/p999/max of a latency histogram (nanoseconds).
pub(crate) fn percentiles(workload: &str, h: &Histogram<u64>) -> Vec<Figure> {
    let mut v = vec![];
    for (name, q) in [("p50_ns", 0.5), ("p90_ns", 0.9), ("p99_ns", 0.99), ("p999_ns", 0.999)] {
        v.push(fig(workload, name, h.value_at_quantile(q) as f64, "ns"));
    }
    v.push(fig(workload, "max_ns", h.max() as f64, "ns"));
    v
}

/// One figure over all its runs.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub(crate) workload: String,
    pub(crate) metric: String,
    pub(crate) unit: String,
    pub(crate) runs: Vec<f64>,
}

impl Series {
    pub(crate) fn median(&self) -> f64 {
        median(&self.runs)
    }
    pub(crate) fn min(&self) -> f64 {
        self.runs.iter().copied().fold(f64::INFINITY, f64::min)
    }
    pub(crate) fn max(&self) -> f64 {
        self.runs.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }
    /// max / min of the runs (1.0 when they agree; infinite when they straddle zero).
    pub(crate) fn spread(&self) -> f64 {
        let (lo, hi) = (self.min(), self.max());
        if lo == hi {
            1.0
        } else if lo > 0.0 {
            hi / lo
        } else {
            f64::INFINITY
        }
    }
    /// The runs disagree beyond `max_spread` (only meaningful with two runs or more).
    pub(crate) fn unstable(&self, max_spread: f64) -> bool {
        self.runs.len() > 1 && self.spread() > max_spread
    }
    pub(crate) fn target(&self) -> Option<Target> {
        target(&self.workload, &self.metric)
    }
    /// `pass`, `FAIL`, `unstable` (whatever the median says) or nothing when there is no target.
    pub(crate) fn verdict(&self, max_spread: f64) -> Option<&'static str> {
        let t = self.target()?;
        Some(if self.unstable(max_spread) {
            "unstable"
        } else if t.met_by(self.median()) {
            "pass"
        } else {
            "FAIL"
        })
    }
}

/// Every figure's runs, in the order first measured.
#[derive(Default)]
pub(crate) struct Results {
    series: Vec<Series>,
    index: HashMap<(String, String), usize>,
}

impl Results {
    /// Adds one run's figures; returns the indices of the series they extended.
    pub(crate) fn add(&mut self, figs: Vec<Figure>) -> Vec<usize> {
        let mut touched = Vec::new();
        for f in figs {
            let key = (f.workload.clone(), f.metric.clone());
            let i = *self.index.entry(key).or_insert_with(|| {
                self.series.push(Series {
                    workload: f.workload,
                    metric: f.metric,
                    unit: f.unit.to_string(),
                    runs: Vec::new(),
                });
                self.series.len() - 1
            });
            self.series[i].runs.push(f.value);
            if !touched.contains(&i) {
                touched.push(i);
            }
        }
        touched
    }

    /// Adds a whole series (a derived figure); returns its index.
    pub(crate) fn add_series(&mut self, s: Series) -> usize {
        let key = (s.workload.clone(), s.metric.clone());
        self.series.push(s);
        let i = self.series.len() - 1;
        self.index.insert(key, i);
        i
    }

    pub(crate) fn get(&self, workload: &str, metric: &str) -> Option<&Series> {
        self.index.get(&(workload.to_string(), metric.to_string())).map(|&i| &self.series[i])
    }

    pub(crate) fn all(&self) -> &[Series] {
        &self.series
    }

    pub(crate) fn series(&self, i: usize) -> &Series {
        &self.series[i]
    }

    pub(crate) fn print_table(&self, max_spread: f64) {
        print!("{}", table(&self.series, max_spread));
    }
}

/// The text table: median (marked `?` when the runs disagree), range, spread, target, verdict.
pub(crate) fn table(series: &[Series], max_spread: f64) -> String {
    let mut out = format!(
        "{:<18} {:<24} {:>12} {:>23} {:>7} {:<8} {:>9} {:<8}\n",
        "workload", "metric", "median", "min-max", "spread", "unit", "target", "verdict"
    );
    out.push_str(&"-".repeat(118));
    out.push('\n');
    for s in series {
        let mark = if s.unstable(max_spread) { "?" } else { " " };
        let target = s.target().map(|t| t.to_string()).unwrap_or_default();
        let verdict = s.verdict(max_spread).unwrap_or("");
        out.push_str(&format!(
            "{:<18} {:<24} {:>11}{mark} {:>23} {:>7} {:<8} {:>9} {:<8}\n",
            s.workload,
            s.metric,
            pretty(s.median()),
            format!("{}-{}", pretty(s.min()), pretty(s.max())),
            format!("{:.2}", s.spread()),
            s.unit,
            target,
            verdict
        ));
    }
    out
}

pub(crate) fn median(v: &[f64]) -> f64 {
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

pub(crate) fn pretty(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(w: &str, m: &str, runs: &[f64]) -> Series {
        Series { workload: w.into(), metric: m.into(), unit: "ratio".into(), runs: runs.to_vec() }
    }

    #[test]
    fn a_figure_within_its_target_passes_and_one_beyond_fails() {
        let ok = series("pingpong-cross", "x_raw_c2c", &[1.2, 1.25, 1.28]);
        assert_eq!(ok.verdict(1.5), Some("pass"));
        let bad = series("pingpong-cross", "x_raw_c2c", &[2.7, 2.9, 3.0]);
        assert_eq!(bad.verdict(1.5), Some("FAIL"));
        let share = series("tell-cross", "share_of_raw_spsc", &[0.3, 0.31, 0.29]);
        assert_eq!(share.verdict(1.5), Some("pass"));
        assert_eq!(series("tell-cross", "nothing_to_reach", &[1.0]).verdict(1.5), None);
    }

    #[test]
    fn runs_that_disagree_are_flagged_not_reported_as_a_clean_median() {
        let s = series("pingpong-cross", "x_raw_c2c", &[1.0, 1.1, 2.0]);
        assert!(s.unstable(1.5));
        assert_eq!(s.verdict(1.5), Some("unstable"));
        let row = table(&[s], 1.5);
        assert!(row.contains("1.10?"), "{row}");
        assert!(row.contains("unstable"), "{row}");
        // One run cannot disagree with itself.
        assert!(!series("a", "b", &[5.0]).unstable(1.5));
    }

    #[test]
    fn median_range_and_spread() {
        let s = series("a", "b", &[4.0, 1.0, 2.0, 3.0]);
        assert_eq!(s.median(), 2.5);
        assert_eq!((s.min(), s.max()), (1.0, 4.0));
        assert_eq!(s.spread(), 4.0);
    }

    #[test]
    fn runs_add_up_per_figure_in_first_seen_order() {
        let mut r = Results::default();
        r.add(vec![fig("w", "x", 1.0, "ns"), fig("w", "y", 10.0, "ns")]);
        r.add(vec![fig("w", "x", 3.0, "ns"), fig("w", "y", 30.0, "ns")]);
        assert_eq!(r.get("w", "x").unwrap().runs, vec![1.0, 3.0]);
        let order: Vec<&str> = r.all().iter().map(|s| s.metric.as_str()).collect();
        assert_eq!(order, ["x", "y"]);
    }
}
