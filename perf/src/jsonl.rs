//! JSON Lines: the first line describes the run (tool version, git revision, date, CPU, cores,
//! shards, idle policy, flags); then one line per figure with every run's value, written as each
//! workload finishes so a run cut short keeps what it measured. The peers binary writes the same
//! shape with a `framework` field. Reading accepts both, and the older one-value lines.

use crate::report::Series;
use serde_json::{json, Value};
use std::fs::File;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::Path;

/// What a run was measured on and with.
pub(crate) struct RunInfo<'a> {
    pub(crate) cores: &'a [usize],
    pub(crate) shards: Option<usize>,
    pub(crate) idle: Option<String>,
    pub(crate) runs: usize,
    pub(crate) quick: bool,
    pub(crate) max_spread: f64,
}

/// The metadata line.
pub(crate) fn meta(info: &RunInfo<'_>) -> Value {
    let (rev, dirty) = git_revision();
    json!({
        "kind": "meta",
        "tool": "corelane-perf",
        "version": env!("CARGO_PKG_VERSION"),
        "git_rev": rev,
        "git_dirty": dirty,
        "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "cpu": cpu_model(),
        "logical_cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        "cores": info.cores,
        "shards": info.shards,
        "idle": info.idle.clone().unwrap_or_else(|| "harness default (spin; builder default for user paths)".into()),
        "executor": executor(),
        "runs": info.runs,
        "quick": info.quick,
        "max_spread": info.max_spread,
        "args": std::env::args().skip(1).collect::<Vec<_>>(),
    })
}

/// The executor the runtimes of this process run on: what the builder's choice
/// (`CORELANE_EXECUTOR`, else `auto`) gives on this machine, read off a one-shard runtime.
fn executor() -> String {
    let choice = std::env::var("CORELANE_EXECUTOR").unwrap_or_else(|_| "auto".into());
    let running = corelane::Runtime::builder()
        .shards(corelane::Shards::Count(1))
        .pin(false)
        .build()
        .map(|rt| {
            let e = rt.executor();
            let _ = rt.shutdown();
            format!("{e:?}").to_lowercase()
        })
        .unwrap_or_else(|e| format!("none ({e})"));
    format!("{running} (chosen: {choice})")
}

/// One figure's line.
pub(crate) fn record(s: &Series, max_spread: f64) -> Value {
    let target = s.target().map(|t| match t {
        crate::targets::Target::AtMost(v) => json!({ "op": "<=", "value": v }),
        crate::targets::Target::AtLeast(v) => json!({ "op": ">=", "value": v }),
    });
    json!({
        "kind": "figure",
        "workload": s.workload,
        "metric": s.metric,
        "unit": s.unit,
        "median": s.median(),
        "min": s.min(),
        "max": s.max(),
        "spread": s.spread(),
        "unstable": s.unstable(max_spread),
        "runs": s.runs,
        "target": target,
        "verdict": s.verdict(max_spread),
    })
}

/// Lines written and flushed one at a time.
pub(crate) struct Writer(BufWriter<File>);

impl Writer {
    pub(crate) fn create(path: &Path) -> io::Result<Writer> {
        Ok(Writer(BufWriter::new(File::create(path)?)))
    }
    pub(crate) fn line(&mut self, v: &Value) -> io::Result<()> {
        writeln!(self.0, "{v}")?;
        self.0.flush()
    }
}

/// A figure read back from a file.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) framework: Option<String>,
    pub(crate) series: Series,
}

impl Record {
    /// What identifies the figure across files.
    pub(crate) fn key(&self) -> (String, String, String) {
        (self.series.workload.clone(), self.framework.clone().unwrap_or_default(), self.series.metric.clone())
    }
}

/// A file's metadata line (if any) and its figures, in order.
pub(crate) struct Loaded {
    pub(crate) meta: Option<Value>,
    pub(crate) records: Vec<Record>,
}

pub(crate) fn read(path: &Path) -> io::Result<Loaded> {
    let f = io::BufReader::new(File::open(path)?);
    let mut loaded = Loaded { meta: None, records: Vec::new() };
    for (n, line) in f.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: &str| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{}:{}: {why}", path.display(), n + 1))
        };
        let v: Value = serde_json::from_str(&line).map_err(|e| bad(&e.to_string()))?;
        if v["kind"] == "meta" {
            loaded.meta = Some(v);
            continue;
        }
        let text = |k: &str| v[k].as_str().map(str::to_string);
        let (Some(workload), Some(metric)) = (text("workload"), text("metric")) else {
            return Err(bad("a figure needs a workload and a metric"));
        };
        let runs: Vec<f64> = match v["runs"].as_array() {
            Some(a) => a.iter().filter_map(Value::as_f64).collect(),
            None => v["median"].as_f64().or(v["value"].as_f64()).into_iter().collect(),
        };
        if runs.is_empty() {
            return Err(bad("a figure needs runs, a median or a value"));
        }
        let unit = text("unit").unwrap_or_default();
        loaded
            .records
            .push(Record { framework: text("framework"), series: Series { workload, metric, unit, runs } });
    }
    Ok(loaded)
}

/// Merges files of separate processes: one run per file and figure (that file's median), in
/// the first file's order; writes them with a metadata line naming the sources.
pub(crate) fn merge(files: &[std::path::PathBuf], out: &Path) -> io::Result<Vec<Series>> {
    let mut merged: Vec<Record> = Vec::new();
    let mut meta = None;
    for f in files {
        let l = read(f)?;
        meta = meta.or(l.meta);
        for r in l.records {
            let m = r.series.median();
            match merged.iter_mut().find(|x| x.key() == r.key()) {
                Some(x) => x.series.runs.push(m),
                None => merged
                    .push(Record { series: Series { runs: vec![m], ..r.series }, framework: r.framework }),
            }
        }
    }
    let mut w = Writer::create(out)?;
    let mut head = meta.unwrap_or_else(|| json!({ "kind": "meta" }));
    head["merged_from"] = json!(files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>());
    w.line(&head)?;
    for r in &merged {
        let mut line = record(&r.series, 1.5);
        if let Some(fw) = &r.framework {
            line["framework"] = json!(fw);
        }
        w.line(&line)?;
    }
    Ok(merged.into_iter().map(|r| r.series).collect())
}

/// The revision the harness was built from and whether the tree had changes (recorded by
/// `build.rs`; `None` when built outside a git checkout).
fn git_revision() -> (Option<String>, Option<bool>) {
    let rev = Some(env!("CORELANE_PERF_GIT_REV")).filter(|r| !r.is_empty()).map(str::to_string);
    let dirty = env!("CORELANE_PERF_GIT_DIRTY").parse().ok();
    (rev, dirty)
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_written_read_back_with_every_run() {
        let dir = std::env::temp_dir().join(format!("corelane-perf-jsonl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.jsonl");
        let s = Series {
            workload: "raw-c2c".into(),
            metric: "ns_per_roundtrip".into(),
            unit: "ns".into(),
            runs: vec![100.0, 90.0, 120.0],
        };
        let info = RunInfo {
            cores: &[0, 1],
            shards: None,
            idle: Some("spin".into()),
            runs: 3,
            quick: true,
            max_spread: 1.5,
        };
        let mut w = Writer::create(&path).unwrap();
        w.line(&meta(&info)).unwrap();
        w.line(&record(&s, 1.5)).unwrap();
        // An older line (one value) and a peer's line (a framework) read too.
        w.line(&json!({"workload": "tell-cross", "metric": "msgs_per_sec", "value": 5.0, "unit": "msg/s"}))
            .unwrap();
        w.line(&json!({"kind": "figure", "framework": "actix", "workload": "savina-pingpong", "metric": "msgs_per_sec", "unit": "msg/s", "runs": [1.0, 2.0]})).unwrap();
        drop(w);
        let l = read(&path).unwrap();
        let m = l.meta.expect("meta line");
        assert_eq!(m["cores"], json!([0, 1]));
        assert_eq!(m["idle"], "spin");
        assert!(m["date"].as_str().unwrap().ends_with('Z'));
        assert_eq!(l.records.len(), 3);
        assert_eq!(l.records[0].series.runs, vec![100.0, 90.0, 120.0]);
        assert_eq!(l.records[1].series.runs, vec![5.0]);
        assert_eq!(l.records[2].framework.as_deref(), Some("actix"));
        // Merging two processes' files: one run per file, their medians.
        let other = dir.join("b.jsonl");
        let mut w = Writer::create(&other).unwrap();
        let s2 = Series { runs: vec![200.0], ..s.clone() };
        w.line(&record(&s2, 1.5)).unwrap();
        drop(w);
        let merged = merge(&[path.clone(), other], &dir.join("m.jsonl")).unwrap();
        let c2c = merged.iter().find(|s| s.workload == "raw-c2c").unwrap();
        assert_eq!(c2c.runs, vec![100.0, 200.0]);
        assert_eq!(c2c.spread(), 2.0);
        let back = read(&dir.join("m.jsonl")).unwrap();
        assert!(back.meta.unwrap()["merged_from"].as_array().unwrap().len() == 2);
        assert_eq!(
            back.records.iter().find(|r| r.framework.is_some()).unwrap().framework.as_deref(),
            Some("actix")
        );
        std::fs::write(&path, "{\"kind\":\"figure\"}\n").unwrap();
        let e = read(&path).err().expect("a figure without a name is refused");
        assert!(e.to_string().contains(":1:"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(test)]
mod executor_tests {
    /// The metadata names the executor that actually runs, and the choice that led to it.
    #[test]
    fn the_metadata_says_which_executor_runs() {
        let e = super::executor();
        assert!(e.starts_with("glommio (chosen: ") || e.starts_with("portable (chosen: "), "{e}");
    }
}
