//! `scripts/tune-host.sh`, the host check, run here as an operator would: a complete report
//! (every item, a verdict each, a fix for each problem), verdicts that agree with what this
//! test reads itself, nothing changed on the host, and `--apply` refused without root with the
//! list of what it would change.

use corelane::host::parse_list;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

/// Every item the report must cover.
const ITEMS: &[&str] = &[
    "environment",
    "cores",
    "isolcpus",
    "nohz_full",
    "rcu_nocbs",
    "irq_affinity",
    "irqbalance",
    "governor",
    "frequency",
    "cstates",
    "smt",
    "thp",
    "numa",
    "memlock",
    "udp_buffers",
    "io_uring",
    "clocksource",
    "timer_migration",
    "damon",
];

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/tune-host.sh")
}

fn run(args: &[&str]) -> Output {
    Command::new("bash").arg(script()).args(args).output().expect("bash runs")
}

/// item → (status, detail, fix)
fn report(args: &[&str]) -> BTreeMap<String, (String, String, String)> {
    let out = run(&[&["--format", "tsv"], args].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut items = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 4, "item, status, detail, fix: {line:?}");
        assert!(["ok", "warn", "fail", "unknown"].contains(&f[1]), "{line:?}");
        assert!(!f[2].is_empty(), "a detail for {line:?}");
        if matches!(f[1], "warn" | "fail") {
            assert!(!f[3].is_empty(), "a problem comes with its fix: {line:?}");
        }
        assert!(
            items.insert(f[0].to_string(), (f[1].into(), f[2].into(), f[3].into())).is_none(),
            "{line:?} twice"
        );
    }
    items
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

#[test]
fn the_report_is_complete_and_agrees_with_the_host() {
    let before =
        (read("/sys/kernel/mm/transparent_hugepage/enabled"), read("/proc/sys/kernel/timer_migration"));
    let items = report(&[]);
    let names: Vec<&str> = items.keys().map(String::as_str).collect();
    for item in ITEMS {
        assert!(names.contains(item), "{item} missing from {names:?}");
    }
    assert_eq!(items["cores"].0, "ok", "the cores this process may use: {:?}", items["cores"]);

    // Verdicts this test can check for itself.
    if let Some(thp) = read("/sys/kernel/mm/transparent_hugepage/enabled") {
        let want = if thp.contains("[always]") { "warn" } else { "ok" };
        assert_eq!(items["thp"].0, want, "{thp}: {:?}", items["thp"]);
    }
    if let Some(tm) = read("/proc/sys/kernel/timer_migration") {
        assert_eq!(items["timer_migration"].0, if tm == "0" { "ok" } else { "warn" });
    }
    if let Some(clk) = read("/sys/devices/system/clocksource/clocksource0/current_clocksource") {
        assert_eq!(items["clocksource"].0, if clk == "tsc" { "ok" } else { "warn" });
    }
    if let (Some(r), Some(w)) = (read("/proc/sys/net/core/rmem_max"), read("/proc/sys/net/core/wmem_max")) {
        let enough = |v: &str| v.parse::<u64>().is_ok_and(|v| v >= 8 << 20);
        let want = if enough(&r) && enough(&w) { "ok" } else { "warn" };
        assert_eq!(items["udp_buffers"].0, want, "{r} / {w}: {:?}", items["udp_buffers"]);
        if want == "warn" {
            assert!(items["udp_buffers"].2.contains("net.core.rmem_max="), "{:?}", items["udp_buffers"]);
        }
    }
    // DAMON's threads, as `ps` shows them to anyone: one allowed on a core checked (all this
    // process may use) is a warning, naming it.
    let allowed = |pid: &str| {
        read(&format!("/proc/{pid}/status"))
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:").and_then(parse_list)))
            .unwrap_or_default()
            .into_iter()
            .collect::<std::collections::BTreeSet<usize>>()
    };
    let ours = allowed("self");
    let kdamonds: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|pid| read(&format!("/proc/{pid}/comm")).is_some_and(|c| c.starts_with("kdamond")))
        .filter(|pid| !allowed(pid).is_disjoint(&ours))
        .collect();
    assert_eq!(
        items["damon"].0,
        if kdamonds.is_empty() { "ok" } else { "warn" },
        "{kdamonds:?}: {:?}",
        items["damon"]
    );
    for pid in &kdamonds {
        assert!(items["damon"].1.contains(pid.as_str()), "kdamond {pid} named: {:?}", items["damon"]);
    }
    if read("/sys/devices/system/cpu/isolated").is_some_and(|s| s.is_empty()) {
        assert_eq!(items["isolcpus"].0, "warn", "nothing is isolated here");
        assert!(items["isolcpus"].2.contains("isolcpus="), "{:?}", items["isolcpus"]);
    }

    // A core this process may not use fails, naming it.
    let missing = report(&["--cores", "4095"]);
    assert_eq!(missing["cores"].0, "fail");
    assert!(missing["cores"].1.contains("4095"), "{:?}", missing["cores"]);

    // The text form says the same.
    let text = String::from_utf8(run(&[]).stdout).unwrap();
    let count = |s: &str| items.values().filter(|v| v.0 == s).count();
    let summary = format!(
        "summary: {} ok, {} warn, {} fail, {} unknown",
        count("ok"),
        count("warn"),
        count("fail"),
        count("unknown")
    );
    assert!(text.contains(&summary), "{summary} in\n{text}");

    // Bad usage.
    assert_eq!(run(&["--cores", "x"]).status.code(), Some(2));
    assert_eq!(run(&["--frobnicate"]).status.code(), Some(2));

    // Nothing was changed.
    let after =
        (read("/sys/kernel/mm/transparent_hugepage/enabled"), read("/proc/sys/kernel/timer_migration"));
    assert_eq!(before, after);
}

#[test]
fn apply_without_root_refuses_and_lists_what_it_would_change() {
    // As root, drop to an unprivileged user for this run (setpriv, util-linux).
    let root = read("/proc/self/status")
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Uid:").map(|u| u.split_whitespace().next() == Some("0")))
        })
        .unwrap_or(false);
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "bash"]);
        c
    } else {
        Command::new("bash")
    };
    let before = (read("/proc/sys/kernel/timer_migration"), read("/proc/sys/net/core/rmem_max"));
    let out = cmd.arg(script()).arg("--apply").output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let items = report(&[]);
    let changeable =
        ["thp", "timer_migration", "irqbalance", "governor", "irq_affinity", "udp_buffers", "damon"]
            .iter()
            .any(|i| {
                items[*i].0 == "warn" && (*i == "irqbalance" || items[*i].2.contains("--apply does it"))
            });
    if changeable {
        assert_eq!(out.status.code(), Some(2), "refused: {text}");
        assert!(text.contains("apply: refused: changing the host needs root"), "{text}");
        assert!(text.lines().any(|l| l.trim_start().starts_with("would: ")), "{text}");
        if items["timer_migration"].0 == "warn" {
            assert!(text.contains("would: kernel.timer_migration to 0"), "{text}");
        }
        if items["udp_buffers"].0 == "warn" {
            assert!(text.contains("would: net.core.rmem_max and wmem_max to 8388608"), "{text}");
        }
    } else {
        assert!(out.status.success(), "{text}");
        assert!(text.contains("nothing to change"), "{text}");
    }
    let after = (read("/proc/sys/kernel/timer_migration"), read("/proc/sys/net/core/rmem_max"));
    assert_eq!(after, before, "nothing changed");
}
