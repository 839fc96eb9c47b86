//! The cluster client in one process: three members on the in-memory store and a client that
//! is not a member. It computes grain owners itself (each message one hop: answered by the
//! owner, nothing refused or retried), balances named-actor spawns, and offers kinds, stop,
//! tell, ask, whereis and respawn. Against etcd and real processes: `cluster_named_etcd.rs`.

mod common;

use common::grains::{counter_protocol, counters, Activity, Add, Count, Counter, Get};
use common::members::{self, Member};
use common::{account_protocol, Account, AccountMsg, Balance, Deposit, GetBalance};
use corelane_net::cluster::{Cluster, ClusterClient, ClusterError, MemoryProvider, Placement};
use corelane_net::{ErrorCode, Node, RemoteAskError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

fn member(store: &MemoryProvider, id: &str) -> Member {
    let setup = |n: &Node| {
        n.register_kind("account", account_protocol(), Account::default);
    };
    members::join(store, "client", id, setup, |b| {
        b.grain::<Counter, _>(counter_protocol(), counters(id, Arc::new(Activity::default())))
    })
}

struct Setup {
    members: Vec<Member>,
    client: ClusterClient,
    _node: Node,
    _rt: corelane::Runtime,
}

fn setup(store: &MemoryProvider) -> Setup {
    let members: Vec<Member> = ["a", "b", "c"].iter().map(|id| member(store, id)).collect();
    let rt = common::runtime();
    let node = common::node(&rt);
    let client = ClusterClient::builder("client").connect(&node, store.clone()).expect("connects");
    assert!(
        client.wait_for(T, |v| v.member_ids() == ["a", "b", "c"]),
        "the client sees the three, not itself"
    );
    for m in &members {
        assert!(
            m.cluster.wait_for(T, |v| v.member_ids() == ["a", "b", "c"]),
            "the members do not see the client"
        );
    }
    Setup { members, client, _node: node, _rt: rt }
}

#[test]
fn the_client_reaches_each_grain_in_one_hop_from_the_owner_it_computes() {
    let store = MemoryProvider::new();
    let s = setup(&store);
    assert_eq!(s.client.grain_kinds(), ["counter"]);
    assert_eq!(s.client.kinds(), ["account"]);
    let mut by_owner: HashMap<String, usize> = HashMap::new();
    for i in 0..60 {
        let id = format!("g{i}");
        let owner = s.client.owner_of("counter", &id).expect("an owner").id;
        assert_eq!(
            s.members[0].cluster.owner_of("counter", &id).unwrap().id,
            owner,
            "the same table as the members'"
        );
        let g = s.client.grain::<Counter>(&id);
        g.tell(&Add { amount: 2 }).unwrap();
        let c: Count = g.ask(&Get {}).timeout(T).wait().unwrap();
        assert_eq!((c.member.as_str(), c.value), (owner.as_str(), 2), "{id}: answered by its owner");
        *by_owner.entry(owner).or_default() += 1;
    }
    assert_eq!(by_owner.len(), 3, "spread over the members: {by_owner:?}");
    // One hop each: nothing was refused by a member that was not the owner, nothing sent again.
    assert_eq!(s.client.stats().retries, 0);
    for m in &s.members {
        assert_eq!(m.cluster.stats().refused, 0, "{} refused nothing", m.cluster.member_id());
    }
    // Typed, from the client too.
    let typed = s.client.typed_grain::<Counter>("g0");
    assert_eq!(typed.ask(&Get {}).timeout(T).wait().unwrap().value, 2);
}

#[test]
fn the_client_balances_spawns_and_stops_tells_asks_finds_and_respawns_named_actors() {
    let store = MemoryProvider::new();
    let s = setup(&store);
    let hosts = |names: &[String]| -> HashMap<String, usize> {
        let mut n = HashMap::new();
        for name in names {
            *n.entry(s.client.host_of(name).expect("held")).or_default() += 1;
        }
        n
    };
    let spawn_all = |prefix: &str, n: usize, p: Placement| -> Vec<String> {
        let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
        for name in &names {
            s.client.spawn(name, "account").placement(p).timeout(T).wait().expect("spawned");
            // Seen in the client's copy of the registry, which the next least-load spawn counts.
            assert!(common::until(T, || s.client.host_of(name).is_some()));
        }
        names
    };
    // Round-robin: each member in turn.
    let rr = spawn_all("rr-", 9, Placement::RoundRobin);
    assert!(hosts(&rr).values().all(|n| *n == 3), "{:?}", hosts(&rr));
    // Least load: after two more on a, the next two go to b and c.
    for name in ["extra-0", "extra-1"] {
        s.members[0]
            .cluster
            .spawn_named(name, "account")
            .placement(Placement::Local)
            .timeout(T)
            .wait()
            .unwrap();
    }
    assert!(common::until(T, || s.client.host_of("extra-1").is_some()));
    let ll = spawn_all("ll-", 2, Placement::LeastLoad);
    let mut ll_hosts: Vec<String> = ll.iter().map(|n| s.client.host_of(n).unwrap()).collect();
    ll_hosts.sort();
    assert_eq!(ll_hosts, ["b", "c"]);
    // Random: each lands on some member.
    let random = spawn_all("rnd-", 6, Placement::Random);
    assert_eq!(hosts(&random).values().sum::<usize>(), 6);
    // Local: the client hosts nothing.
    let local = s.client.spawn("here", "account").placement(Placement::Local).timeout(T).wait();
    assert!(matches!(local, Err(RemoteAskError::Refused { code: ErrorCode::UnknownKind, .. })), "{local:?}");

    // Tell, ask, whereis, stop, respawn.
    s.client.tell("rr-0", &Deposit { amount: 5, from: 0, seq: 1 }).unwrap();
    let b: Balance = s.client.ask("rr-0", &GetBalance {}, T).wait().unwrap();
    assert_eq!(b.amount, 5);
    assert_eq!(s.client.named::<AccountMsg>("rr-0").ask(&GetBalance {}).timeout(T).wait().unwrap().amount, 5);
    let old = s.client.whereis("rr-0").expect("found");
    let fresh = s.client.respawn("rr-0").timeout(T).wait().expect("respawned");
    assert_ne!(fresh, old);
    assert_eq!(
        s.client.ask::<_, Balance>("rr-0", &GetBalance {}, T).wait().unwrap().amount,
        0,
        "a fresh actor"
    );
    s.client.stop("rr-1").timeout(T).wait().expect("stopped");
    assert!(common::until(T, || s.client.whereis("rr-1").is_none()), "its name went");
    let gone = s.client.stop("rr-1").timeout(T).wait();
    assert!(matches!(gone, Err(RemoteAskError::Refused { code: ErrorCode::NotFound, .. })), "{gone:?}");
    let none = s.client.respawn("nobody").timeout(T).wait();
    assert!(matches!(none, Err(RemoteAskError::Refused { code: ErrorCode::NotFound, .. })), "{none:?}");
}

#[test]
fn the_client_follows_the_member_set_and_hosts_nothing() {
    let store = MemoryProvider::new();
    let mut s = setup(&store);
    let owned_by_c: Vec<String> = (0..60)
        .map(|i| format!("g{i}"))
        .filter(|id| s.client.owner_of("counter", id).unwrap().id == "c")
        .collect();
    assert!(!owned_by_c.is_empty());
    let c = s.members.pop().unwrap();
    assert!(c.cluster.leave(T));
    assert!(s.client.wait_for(T, |v| v.member_ids() == ["a", "b"]));
    for id in &owned_by_c {
        let owner = s.client.owner_of("counter", id).unwrap().id;
        let got: Count = s.client.grain::<Counter>(id).ask(&Get {}).timeout(T).wait().unwrap();
        assert_eq!(got.member, owner, "{id} answers from its new owner");
    }
    // A client takes no grains.
    let rt = common::runtime();
    let node = common::node(&rt);
    let refused = Cluster::builder("client")
        .grain::<Counter, _>(counter_protocol(), counters("x", Arc::new(Activity::default())))
        .connect(&node, store.clone());
    assert!(matches!(refused, Err(ClusterError::Config(_))));
    assert!(s.client.close(T));
}
