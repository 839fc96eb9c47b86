//! `--plot DIR` and `corelane-perf plot`: SVG charts (plotters' SVG backend, so no fonts or
//! system libraries) and an `index.md` page that shows them above the table.
//!
//! - `latency.svg`: percentile curves (p50 … max) of every latency workload, log scale;
//! - `ratios.svg`: every ratio to a baseline next to its target, with the runs' range;
//! - `peers.svg` and `savina.svg`: each framework's median relative to the best one per
//!   workload (1.0 = the best), with the runs' range as error bars.

use crate::jsonl::Record;
use crate::report::pretty;
use crate::targets::{lower_is_better, target};
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

type PlotResult<T> = Result<T, Box<dyn std::error::Error>>;

const QUANTILES: [(&str, &str); 5] =
    [("p50_ns", "p50"), ("p90_ns", "p90"), ("p99_ns", "p99"), ("p999_ns", "p99.9"), ("max_ns", "max")];

/// Writes the charts that `records` can fill and the page; returns the files written.
pub(crate) fn plot(records: &[Record], dir: &Path) -> PlotResult<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let own: Vec<&Record> = records.iter().filter(|r| r.framework.is_none()).collect();
    if latency(&own, &dir.join("latency.svg"))? {
        written.push("latency.svg".to_string());
    }
    if ratios(&own, &dir.join("ratios.svg"))? {
        written.push("ratios.svg".to_string());
    }
    // Each framework's own figures (the ratios to the best peer are what the bars show).
    let peers: Vec<&Record> =
        records.iter().filter(|r| r.framework.is_some() && r.series.metric != "x_best_peer").collect();
    for (file, savina) in [("peers.svg", false), ("savina.svg", true)] {
        let part: Vec<&Record> =
            peers.iter().copied().filter(|r| r.series.workload.starts_with("savina-") == savina).collect();
        if frameworks(&part, &dir.join(file), if savina { "Savina" } else { "Peer workloads" })? {
            written.push(file.to_string());
        }
    }
    std::fs::write(dir.join("index.md"), page(records, &written))?;
    written.push("index.md".to_string());
    Ok(written)
}

fn latency(records: &[&Record], path: &Path) -> PlotResult<bool> {
    let mut curves: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for r in records {
        if let Some(i) = QUANTILES.iter().position(|(m, _)| *m == r.series.metric) {
            curves
                .entry(r.series.workload.as_str())
                .or_default()
                .push((i as f64, r.series.median().max(1.0)));
        }
    }
    curves.retain(|_, v| v.len() >= 3);
    if curves.is_empty() {
        return Ok(false);
    }
    let top = curves.values().flatten().map(|p| p.1).fold(1.0, f64::max) * 2.0;
    let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Latency percentiles (median of runs)", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.2f64..4.2f64, (10f64..top).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(5)
        .x_label_formatter(&|x| QUANTILES.get(x.round() as usize).map_or(String::new(), |q| q.1.to_string()))
        .y_desc("ns")
        .y_label_formatter(&|y| pretty(*y))
        .draw()?;
    for (i, (name, mut pts)) in curves.into_iter().enumerate() {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.9)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(true)
}

fn ratios(records: &[&Record], path: &Path) -> PlotResult<bool> {
    let rows: Vec<&Record> = records.iter().copied().filter(|r| r.series.unit == "ratio").collect();
    if rows.is_empty() {
        return Ok(false);
    }
    let top = rows.iter().map(|r| r.series.max()).fold(1.0, f64::max) * 1.15;
    let root = SVGBackend::new(path, (960, 120 + 26 * rows.len() as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Ratios to baselines measured in the same run (| = target)", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(330)
        .build_cartesian_2d(0f64..top, -0.5f64..rows.len() as f64 - 0.5)?;
    let labels: Vec<String> =
        rows.iter().map(|r| format!("{} {}", r.series.workload, r.series.metric)).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(rows.len())
        .y_label_formatter(&|y| {
            let i = y.round();
            if (y - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .draw()?;
    for (i, r) in rows.iter().enumerate() {
        let y = i as f64;
        let s = &r.series;
        let t = target(&s.workload, &s.metric);
        let color = match t {
            Some(t) if t.met_by(s.median()) => GREEN.mix(0.7),
            Some(_) => RED.mix(0.7),
            None => BLUE.mix(0.5),
        };
        chart.draw_series([Rectangle::new([(0.0, y - 0.35), (s.median(), y + 0.35)], color.filled())])?;
        chart.draw_series([ErrorBar::new_horizontal(y, s.min(), s.median(), s.max(), BLACK.filled(), 6)])?;
        if let Some(t) = t {
            let v = match t {
                crate::targets::Target::AtMost(v) | crate::targets::Target::AtLeast(v) => v,
            };
            chart
                .draw_series([PathElement::new(vec![(v, y - 0.45), (v, y + 0.45)], BLACK.stroke_width(3))])?;
        }
    }
    root.present()?;
    Ok(true)
}

fn frameworks(records: &[&Record], path: &Path, title: &str) -> PlotResult<bool> {
    if records.is_empty() {
        return Ok(false);
    }
    // One group per (workload, metric), one bar per framework, relative to the group's best.
    let mut groups: Vec<(String, Vec<&Record>)> = Vec::new();
    for r in records {
        let name = format!("{} {}", r.series.workload.trim_start_matches("savina-"), r.series.metric);
        match groups.iter_mut().find(|g| g.0 == name) {
            Some(g) => g.1.push(r),
            None => groups.push((name, vec![r])),
        }
    }
    let mut names: Vec<String> = Vec::new();
    for r in records {
        let f = r.framework.clone().unwrap_or_default();
        if !names.contains(&f) {
            names.push(f);
        }
    }
    let width = 0.8 / names.len() as f64;
    let root = SVGBackend::new(path, (220 + 120 * groups.len() as u32, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{title}: each framework relative to the best (1.0 = best, higher is better)"),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(90)
        .y_label_area_size(50)
        .build_cartesian_2d(-0.5f64..groups.len() as f64 - 0.5, 0f64..1.25f64)?;
    let group_names: Vec<String> = groups.iter().map(|g| g.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups.len())
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                group_names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("relative to the best")
        .draw()?;
    for (j, fw) in names.iter().enumerate() {
        let color = Palette99::pick(j).to_rgba();
        let mut bars = Vec::new();
        let mut errs = Vec::new();
        for (i, (_, rs)) in groups.iter().enumerate() {
            let Some(r) = rs.iter().find(|r| r.framework.as_deref() == Some(fw.as_str())) else { continue };
            let s = &r.series;
            let lower = lower_is_better(&s.workload, &s.metric, &s.unit);
            let rel = |v: f64| {
                let best = if lower {
                    rs.iter().map(|r| r.series.median()).fold(f64::INFINITY, f64::min)
                } else {
                    rs.iter().map(|r| r.series.median()).fold(0.0, f64::max)
                };
                if lower {
                    best / v
                } else {
                    v / best
                }
            };
            let x0 = i as f64 - 0.4 + j as f64 * width;
            bars.push(Rectangle::new([(x0, 0.0), (x0 + width * 0.9, rel(s.median()))], color.filled()));
            let (lo, hi) = if lower { (rel(s.max()), rel(s.min())) } else { (rel(s.min()), rel(s.max())) };
            errs.push(ErrorBar::new_vertical(x0 + width * 0.45, lo, rel(s.median()), hi, BLACK.filled(), 4));
        }
        chart
            .draw_series(bars)?
            .label(fw.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
        chart.draw_series(errs)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(true)
}

/// The page: the charts, then every figure with its range and target.
fn page(records: &[Record], charts: &[String]) -> String {
    let mut md = String::from("# corelane-perf results\n\n");
    for c in charts {
        let _ = writeln!(md, "![{c}]({c})\n");
    }
    md.push_str("| workload | framework | metric | median | min-max | unit | target |\n|---|---|---|---:|---:|---|---|\n");
    for r in records {
        let s = &r.series;
        let t = target(&s.workload, &s.metric).map(|t| t.to_string()).unwrap_or_default();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {}-{} | {} | {} |",
            s.workload,
            r.framework.as_deref().unwrap_or(""),
            s.metric,
            pretty(s.median()),
            pretty(s.min()),
            pretty(s.max()),
            s.unit,
            t.replace('<', "&lt;").replace('>', "&gt;")
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Series;

    fn rec(fw: Option<&str>, w: &str, m: &str, unit: &str, runs: &[f64]) -> Record {
        Record {
            framework: fw.map(str::to_string),
            series: Series { workload: w.into(), metric: m.into(), unit: unit.into(), runs: runs.to_vec() },
        }
    }

    #[test]
    fn charts_and_the_page_are_written_for_what_the_records_hold() {
        let dir = std::env::temp_dir().join(format!("corelane-perf-plot-{}", std::process::id()));
        let mut records = Vec::new();
        for (m, v) in [
            ("p50_ns", 250.0),
            ("p90_ns", 300.0),
            ("p99_ns", 900.0),
            ("p999_ns", 4000.0),
            ("max_ns", 90000.0),
        ] {
            records.push(rec(None, "ask-external", m, "ns", &[v, v * 1.1]));
        }
        records.push(rec(None, "pingpong-cross", "x_raw_c2c", "ratio", &[2.7, 3.0]));
        for (fw, v) in [("corelane", 9e6), ("actix", 3e6), ("kameo", 1e6)] {
            records.push(rec(Some(fw), "savina-pingpong", "msgs_per_sec", "msg/s", &[v, v * 1.2]));
            records.push(rec(Some(fw), "spawn-external", "actors_per_sec", "actor/s", &[v]));
        }
        let written = plot(&records, &dir).unwrap();
        assert_eq!(written, ["latency.svg", "ratios.svg", "peers.svg", "savina.svg", "index.md"]);
        for f in &written[..4] {
            let svg = std::fs::read_to_string(dir.join(f)).unwrap();
            assert!(svg.starts_with("<svg") && svg.contains("</svg>"), "{f}");
        }
        let latency = std::fs::read_to_string(dir.join("latency.svg")).unwrap();
        assert!(latency.contains("ask-external") && latency.contains("p99.9"));
        let savina = std::fs::read_to_string(dir.join("savina.svg")).unwrap();
        assert!(savina.contains("actix") && savina.contains("pingpong"));
        let md = std::fs::read_to_string(dir.join("index.md")).unwrap();
        assert!(md.contains("![savina.svg](savina.svg)"));
        assert!(
            md.contains("| pingpong-cross |  | x_raw_c2c | 2.85 | 2.70-3.00 | ratio | &lt;= 1.30 |"),
            "{md}"
        );
        // Nothing to draw: only the page.
        let empty = dir.join("empty");
        assert_eq!(plot(&[], &empty).unwrap(), ["index.md"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
