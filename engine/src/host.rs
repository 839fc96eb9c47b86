//! What the host says about a placement: which cores are isolated from the scheduler, which
//! share a physical core (SMT siblings), which NUMA node each core sits on. Read from Linux's
//! sysfs once, when a runtime with named cores starts, to warn about a placement that cannot
//! give the latencies it was chosen for (`scripts/tune-host.sh` checks the rest of the host,
//! docs/deployment.md explains each point).
//!
//! ```
//! use corelane::host::Topology;
//!
//! let topology = Topology::read();
//! for warning in topology.placement_warnings(&[1], None) {
//!     eprintln!("{warning}");
//! }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// The host's CPU topology as far as it can be read (`None`: not readable here). Build one
/// by hand (for a test of a placement) from `Topology::default()` and its fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Topology {
    /// Cores isolated from the scheduler (`isolcpus`, `/sys/devices/system/cpu/isolated`).
    pub isolated: Option<Vec<usize>>,
    /// Each core's SMT siblings, itself included (`topology/thread_siblings_list`).
    pub siblings: BTreeMap<usize, Vec<usize>>,
    /// Each core's NUMA node.
    pub node: BTreeMap<usize, usize>,
}

/// Something about a placement that costs latency.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlacementWarning {
    /// A core a shard (or the net thread) is pinned to is not isolated: other threads and
    /// kernel work are scheduled there.
    NotIsolated {
        /// The core.
        core: usize,
    },
    /// Two pinned threads share one physical core (SMT siblings): each runs at part speed and
    /// disturbs the other.
    SharedCore {
        /// One of them.
        core: usize,
        /// Its sibling, also pinned.
        sibling: usize,
    },
    /// The pinned cores sit on more than one NUMA node: messages between them cross the
    /// interconnect.
    NumaNodes {
        /// Each node used, with its cores.
        nodes: BTreeMap<usize, Vec<usize>>,
    },
    /// The net thread's core is on another NUMA node than the network card.
    NicNode {
        /// The net thread's core.
        core: usize,
        /// Its node.
        node: usize,
        /// The card's node.
        nic_node: usize,
    },
}

impl fmt::Display for PlacementWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlacementWarning::NotIsolated { core } => write!(
                f,
                "core {core} is not isolated: other threads and kernel work run there (kernel parameter \
                 isolcpus, or a cpuset; scripts/tune-host.sh)"
            ),
            PlacementWarning::SharedCore { core, sibling } => write!(
                f,
                "cores {core} and {sibling} are SMT siblings of one physical core, both pinned: choose one \
                 thread per physical core"
            ),
            PlacementWarning::NumaNodes { nodes } => {
                write!(f, "the pinned cores span NUMA nodes {nodes:?}: keep a runtime on one node")
            }
            PlacementWarning::NicNode { core, node, nic_node } => write!(
                f,
                "the net thread's core {core} is on NUMA node {node}, the network card on node {nic_node}"
            ),
        }
    }
}

impl Topology {
    /// Reads this host's topology from sysfs (empty where it cannot be read).
    pub fn read() -> Self {
        Self::read_from(Path::new("/sys/devices/system/cpu"))
    }

    fn read_from(cpu: &Path) -> Self {
        let read = |p: &Path| std::fs::read_to_string(p).ok().map(|s| s.trim().to_string());
        let isolated = read(&cpu.join("isolated")).map(|s| parse_list(&s).unwrap_or_default());
        let mut siblings = BTreeMap::new();
        let mut node = BTreeMap::new();
        let online = read(&cpu.join("online")).and_then(|s| parse_list(&s)).unwrap_or_default();
        for c in online {
            let dir = cpu.join(format!("cpu{c}"));
            if let Some(list) = read(&dir.join("topology/thread_siblings_list")).and_then(|s| parse_list(&s))
            {
                siblings.insert(c, list);
            }
            let numa = std::fs::read_dir(&dir).ok().and_then(|entries| {
                entries.flatten().find_map(|e| e.file_name().to_str()?.strip_prefix("node")?.parse().ok())
            });
            if let Some(n) = numa {
                node.insert(c, n);
            }
        }
        Self { isolated, siblings, node }
    }

    /// What costs latency in pinning shards to `shard_cores` and the net thread to `net`
    /// (with the network card's NUMA node, when known). Cores the topology does not know are
    /// not judged.
    pub fn placement_warnings(
        &self,
        shard_cores: &[usize],
        net: Option<(usize, Option<usize>)>,
    ) -> Vec<PlacementWarning> {
        let mut pinned: Vec<usize> = shard_cores.to_vec();
        if let Some((core, _)) = net {
            pinned.push(core);
        }
        pinned.sort_unstable();
        pinned.dedup();
        let mut out = Vec::new();
        if let Some(isolated) = &self.isolated {
            for &c in &pinned {
                if !isolated.contains(&c) {
                    out.push(PlacementWarning::NotIsolated { core: c });
                }
            }
        }
        for &c in &pinned {
            for &s in self.siblings.get(&c).into_iter().flatten() {
                if s > c && pinned.contains(&s) {
                    out.push(PlacementWarning::SharedCore { core: c, sibling: s });
                }
            }
        }
        let mut nodes: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for &c in &pinned {
            if let Some(&n) = self.node.get(&c) {
                nodes.entry(n).or_default().push(c);
            }
        }
        if nodes.len() > 1 {
            out.push(PlacementWarning::NumaNodes { nodes });
        }
        if let Some((core, Some(nic_node))) = net {
            if let Some(&node) = self.node.get(&core) {
                if node != nic_node {
                    out.push(PlacementWarning::NicNode { core, node, nic_node });
                }
            }
        }
        out
    }
}

/// The NUMA node of network interface `iface` (`None`: a virtual interface, a host of one
/// node, or not readable).
pub fn nic_node(iface: &str) -> Option<usize> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{iface}/device/numa_node")).ok()?;
    text.trim().parse::<i64>().ok().and_then(|n| usize::try_from(n).ok())
}

/// The interface of the IPv4 default route: the one remote traffic takes unless a bind address
/// says otherwise (`None` when there is none or `/proc/net/route` cannot be read).
pub fn default_route_interface() -> Option<String> {
    default_route_in(&std::fs::read_to_string("/proc/net/route").ok()?)
}

/// The default route's interface in the text of `/proc/net/route`.
fn default_route_in(table: &str) -> Option<String> {
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 2 && f[1] == "00000000").then(|| f[0].to_string())
    })
}

/// A Linux CPU list (`0-3,8,10-11`); `None` when malformed. An empty list is empty.
pub fn parse_list(s: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if a > b {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Topology {
        // Two nodes of two physical cores, two threads each: (0,4) (1,5) on node 0, (2,6) (3,7)
        // on node 1; cores 1-3 and 5-7 isolated.
        let siblings = (0..8).map(|c| (c, vec![c % 4, c % 4 + 4])).collect();
        let node = (0..8).map(|c| (c, (c % 4) / 2)).collect();
        Topology { isolated: Some(vec![1, 2, 3, 5, 6, 7]), siblings, node }
    }

    #[test]
    fn a_good_plan_has_no_warning_and_each_mistake_one() {
        let t = host();
        assert_eq!(
            t.placement_warnings(&[2, 3], Some((1, Some(0)))),
            vec![PlacementWarning::NumaNodes { nodes: BTreeMap::from([(0, vec![1]), (1, vec![2, 3])]) }]
        );
        assert!(t.placement_warnings(&[2, 3], Some((6, None))).len() == 1, "6 and 2 are siblings");
        assert_eq!(t.placement_warnings(&[2, 3], None), vec![]);
        assert_eq!(t.placement_warnings(&[0, 1], None), vec![PlacementWarning::NotIsolated { core: 0 }]);
        assert_eq!(
            t.placement_warnings(&[1, 5], None),
            vec![PlacementWarning::SharedCore { core: 1, sibling: 5 }]
        );
        assert_eq!(
            t.placement_warnings(&[2], Some((3, Some(0)))),
            vec![PlacementWarning::NicNode { core: 3, node: 1, nic_node: 0 }]
        );
        // Unknown: nothing judged.
        assert_eq!(Topology::default().placement_warnings(&[0, 1], Some((2, Some(1)))), vec![]);
    }

    #[test]
    fn cpu_lists_parse_as_linux_writes_them() {
        assert_eq!(parse_list("0-3,8,10-11"), Some(vec![0, 1, 2, 3, 8, 10, 11]));
        assert_eq!(parse_list(""), Some(vec![]));
        assert_eq!(parse_list("3-1"), None);
        assert_eq!(parse_list("x"), None);
    }

    #[test]
    fn the_default_route_is_the_all_zero_destination() {
        let table = "Iface\tDestination\tGateway \tFlags\n\
                     eth1\t0010A8C0\t00000000\t0001\n\
                     eth0\t00000000\t0100A8C0\t0003\n";
        assert_eq!(default_route_in(table).as_deref(), Some("eth0"));
        assert_eq!(default_route_in("Iface\tDestination\n"), None);
    }

    #[test]
    fn this_host_reads_without_failing() {
        let t = Topology::read();
        if cfg!(target_os = "linux") {
            assert!(!t.siblings.is_empty() || !Path::new("/sys/devices/system/cpu/cpu0/topology").exists());
        }
    }
}
