//! Reads the ledgers member processes write (see `grains::Ledger`) and checks that no two
//! activations of one grain ever served at the same time.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::path::Path;

/// One activation's serving interval: from its activation to the last message it handled.
#[derive(Debug, Clone)]
pub struct Interval {
    pub member: String,
    pub pid: u32,
    pub activation: u64,
    pub start: u128,
    pub end: u128,
    pub handled: u64,
}

/// Every activation in the ledgers, by grain identity.
pub fn read(paths: &[&Path]) -> HashMap<String, Vec<Interval>> {
    let mut by_key: HashMap<(String, String, u32, u64), Interval> = HashMap::new();
    for p in paths {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [t, member, pid, what, identity, activation, _epoch] = f[..] else { continue };
            let (t, pid, activation): (u128, u32, u64) =
                (t.parse().unwrap(), pid.parse().unwrap(), activation.parse().unwrap());
            let key = (identity.to_string(), member.to_string(), pid, activation);
            let i = by_key.entry(key).or_insert(Interval {
                member: member.to_string(),
                pid,
                activation,
                start: t,
                end: t,
                handled: 0,
            });
            match what {
                "activate" => i.start = i.start.min(t),
                "handle" => {
                    i.end = i.end.max(t);
                    i.handled += 1;
                }
                _ => {}
            }
        }
    }
    let mut out: HashMap<String, Vec<Interval>> = HashMap::new();
    for ((identity, ..), i) in by_key {
        out.entry(identity).or_default().push(i);
    }
    out
}

/// The pairs of activations of one grain whose serving intervals overlap.
pub fn overlaps(ledger: &HashMap<String, Vec<Interval>>) -> Vec<(String, Interval, Interval)> {
    let mut bad = Vec::new();
    for (id, intervals) in ledger {
        let mut v = intervals.clone();
        v.sort_by_key(|i| i.start);
        for w in v.windows(2) {
            if w[1].start <= w[0].end {
                bad.push((id.clone(), w[0].clone(), w[1].clone()));
            }
        }
    }
    bad
}
