//! The trading example (`net/examples/trading.rs`, shown in the README) as the demo runs it:
//! three node processes and a client process on a real etcd, one node SIGKILLed while orders
//! flow. The client goes on (only orders in flight on the killed node fail), what the killed
//! node owned answers from survivors, and the end-of-day report goes on from a survivor.
#![cfg(feature = "etcd")]

mod common;

use common::processes::{example, Etcd};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// A process of the example and the lines it prints.
struct Proc {
    child: Child,
    /// Each line with when it was read.
    lines: Receiver<(Instant, String)>,
    seen: Vec<String>,
}

impl Proc {
    fn start(args: &[&str]) -> Proc {
        let mut child = Command::new(example("trading"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("trading process");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), l)).is_err() {
                    break;
                }
            }
        });
        Proc { child, lines, seen: Vec::new() }
    }

    /// Waits (at most `d`) for a line containing `text`; the line.
    fn until(&mut self, text: &str, d: Duration) -> Option<String> {
        self.until_after(text, d, None)
    }

    /// As `until`, for a line printed after `after`.
    fn until_after(&mut self, text: &str, d: Duration, after: Option<Instant>) -> Option<String> {
        let deadline = Instant::now() + d;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let (at, l) = self.lines.recv_timeout(left).ok()?;
            self.seen.push(l.clone());
            if l.contains(text) && after.is_none_or(|a| at > a) {
                return Some(l);
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_trading_example_goes_on_when_a_node_is_killed_while_orders_flow() {
    let etcd = Etcd::start();
    let endpoint = etcd.endpoint();
    let wait = Duration::from_secs(60);
    let mut nodes: Vec<Proc> =
        ["a", "b", "c"].iter().map(|id| Proc::start(&["node", &endpoint, id])).collect();
    for n in &mut nodes {
        assert!(n.until("ready", wait).is_some(), "a node got ready");
    }
    let mut client = Proc::start(&["client", &endpoint, "14", "300"]);
    assert!(client.until("1000 orders", wait).is_some(), "orders flow");
    let killed = Instant::now();
    let _ = nodes[1].child.kill();
    let _ = nodes[1].child.wait();

    let done =
        client.until("done in", wait).unwrap_or_else(|| panic!("the client finished: {:#?}", client.seen));
    // "done in <s> s: <n> orders, <n> acknowledged, <n> failed (...), <n> shares filled"
    let n: Vec<u64> = done.split([' ', ',', ':']).filter_map(|w| w.parse().ok()).collect();
    let (placed, acked, failed) = (n[0], n[1], n[2]);
    assert_eq!(acked + failed, placed, "{done}");
    assert!(failed <= 3, "only orders in flight on the killed node fail: {done}\n{:#?}", client.seen);
    assert!(placed >= 2000, "{done}");
    assert!(
        client.seen.iter().any(|l| l.contains("moved from b to")),
        "what b held answered again from a survivor: {:#?}",
        client.seen
    );
    // The end-of-day report goes on from a survivor (every ten seconds on the clock).
    let deadline = killed + wait;
    let reported = loop {
        let slice = Duration::from_millis(100);
        if let Some(l) =
            [0, 2].into_iter().find_map(|i| nodes[i].until_after("end-of-day report", slice, Some(killed)))
        {
            break Some(l);
        }
        if Instant::now() > deadline {
            break None;
        }
    };
    assert!(reported.is_some(), "a survivor reported: a {:#?}, c {:#?}", nodes[0].seen, nodes[2].seen);
}
