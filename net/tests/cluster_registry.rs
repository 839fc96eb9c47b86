//! The registry of names every provider keeps (`/<cluster>/names/<name>`): one holder per name
//! cluster-wide, claimed by create-if-absent under the holder's lease, freed when the lease
//! ends, watched; and the records swapped by revision. The same checks run against the in-memory store and a real etcd.

mod common;

use corelane_net::cluster::{Claimed, ClusterProvider, MemoryProvider, NameChange, NameWatch, ProviderError};
use std::sync::{Arc, Barrier};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// The next registry changes the watch reports (within `WAIT`), names and kinds only.
async fn next_changes(w: &mut Box<dyn NameWatch>) -> Vec<String> {
    let changes =
        tokio::time::timeout(WAIT, w.next()).await.expect("changes within the wait").expect("watching");
    changes
        .into_iter()
        .map(|(c, _)| match c {
            NameChange::Put(r) => format!("put {} {}", r.name, String::from_utf8_lossy(&r.value)),
            NameChange::Delete { name } => format!("delete {name}"),
        })
        .collect()
}

/// `claimants` providers (each its own client of the same store) claim one name at the same
/// moment, each under its own lease: exactly one wins, every other is told who holds it.
fn one_of_many_claims_wins(claimants: Vec<Arc<dyn ClusterProvider>>) {
    let n = claimants.len();
    let start = Arc::new(Barrier::new(n));
    let threads: Vec<_> = claimants
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let start = start.clone();
            std::thread::spawn(move || {
                block_on(async {
                    let lease = p.grant(Duration::from_secs(10)).await.expect("lease");
                    start.wait();
                    let value = format!("claimant {i}").into_bytes();
                    (lease, p.claim("reg", "the-one", &value, lease, None).await.expect("claim answered"))
                })
            })
        })
        .collect();
    let outcomes: Vec<(i64, Claimed)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let winners: Vec<i64> =
        outcomes.iter().filter(|(_, c)| matches!(c, Claimed::Won { .. })).map(|(l, _)| *l).collect();
    assert_eq!(winners.len(), 1, "exactly one claim wins: {outcomes:?}");
    for (_, c) in &outcomes {
        if let Claimed::Taken(held) = c {
            assert_eq!(held.lease, winners[0], "the others are told the winner's record: {held:?}");
            assert!(held.value.starts_with(b"claimant "));
        }
    }
}

/// Claim, refuse, release only by the holder, free on the holder's lease's end, watch it all.
fn a_name_has_one_holder_and_frees_itself(p: &dyn ClusterProvider) {
    block_on(async {
        let a = p.grant(Duration::from_secs(10)).await.unwrap();
        let b = p.grant(Duration::from_secs(10)).await.unwrap();
        let (names, rev) = p.names("reg2").await.unwrap();
        assert!(names.is_empty());
        let mut watch = p.watch_names("reg2", rev).await.unwrap();

        let won = p.claim("reg2", "svc", b"from a", a, None).await.unwrap();
        let Claimed::Won { revision } = won else { panic!("the first claim wins: {won:?}") };
        let Claimed::Taken(held) = p.claim("reg2", "svc", b"from b", b, None).await.unwrap() else {
            panic!("a held name is taken")
        };
        assert_eq!((held.value.as_slice(), held.lease, held.revision), (&b"from a"[..], a, revision));
        // Another cluster's registry is another namespace.
        assert!(matches!(p.claim("other", "svc", b"x", b, None).await.unwrap(), Claimed::Won { .. }));

        assert!(!p.release("reg2", "svc", b, false).await.unwrap(), "only the holder releases");
        let (names, _) = p.names("reg2").await.unwrap();
        assert_eq!(names.len(), 1);
        assert_eq!((names[0].name.as_str(), names[0].lease), ("svc", a));

        // The holder's lease ends (its member left or died): the name is free.
        p.revoke(a).await.unwrap();
        assert!(matches!(p.claim("reg2", "svc", b"from b", b, None).await.unwrap(), Claimed::Won { .. }));
        assert!(p.release("reg2", "svc", b, false).await.unwrap());
        assert!(p.names("reg2").await.unwrap().0.is_empty());
        // A claim under a lease that is gone is refused as such.
        assert_eq!(p.claim("reg2", "late", b"x", a, None).await, Err(ProviderError::LeaseExpired));

        // The watch saw this registry's changes, in order, and nothing of the other's.
        let mut seen = Vec::new();
        while seen.len() < 4 {
            seen.extend(next_changes(&mut watch).await);
        }
        assert_eq!(seen, ["put svc from a", "delete svc", "put svc from b", "delete svc"]);
    });
}

/// A spec outlives its name's holder; forgetting the name takes it; batched claims report
/// each name's outcome, a held one as taken.
fn specs_outlive_holders_and_batches_claim_each_name(p: &dyn ClusterProvider) {
    block_on(async {
        let a = p.grant(Duration::from_secs(10)).await.unwrap();
        let b = p.grant(Duration::from_secs(10)).await.unwrap();
        let won = p.claim("reg3", "kept", b"a1", a, Some(b"spec of kept")).await.unwrap();
        assert!(matches!(won, Claimed::Won { .. }));
        p.claim("reg3", "gone", b"a2", a, Some(b"spec of gone")).await.unwrap();
        // A refused claim writes no spec.
        p.claim("reg3", "kept", b"b1", b, Some(b"other spec")).await.unwrap();
        let specs = p.specs("reg3").await.unwrap();
        assert_eq!(
            specs,
            [("gone".into(), b"spec of gone".to_vec()), ("kept".into(), b"spec of kept".to_vec())]
        );

        // Forgetting a name takes its spec; a lease's end takes the names only.
        assert!(p.release("reg3", "gone", a, true).await.unwrap());
        p.revoke(a).await.unwrap();
        assert!(p.names("reg3").await.unwrap().0.is_empty());
        assert_eq!(p.specs("reg3").await.unwrap(), [("kept".into(), b"spec of kept".to_vec())]);

        // 250 names in a batch (more than one etcd transaction), one of them held.
        p.claim("reg3", "n-0117", b"held", b, None).await.unwrap();
        let c = p.grant(Duration::from_secs(10)).await.unwrap();
        let claims: Vec<(String, Vec<u8>)> = (0..250).map(|i| (format!("n-{i:04}"), b"c".to_vec())).collect();
        let out = p.claim_all("reg3", &claims, c).await.unwrap();
        assert_eq!(out.len(), 250);
        for (i, o) in out.iter().enumerate() {
            match o {
                Claimed::Taken(h) if i == 117 => assert_eq!((h.value.as_slice(), h.lease), (&b"held"[..], b)),
                Claimed::Won { .. } if i != 117 => {}
                other => panic!("name {i}: {other:?}"),
            }
        }
        assert_eq!(p.names("reg3").await.unwrap().0.len(), 250);
    });
}

/// Records: compare-and-swap on the revision of the last write, by concurrent writers (each
/// its own client of the store, made by `client` in the runtime it is used in): exactly one of
/// those expecting the same revision wins.
fn records_are_swapped_by_revision_once(
    client: impl Fn() -> Arc<dyn ClusterProvider> + Send + Sync + Clone + 'static,
) {
    block_on(async {
        let p = client();
        assert_eq!(p.read("rec", "tick").await.unwrap(), None);
        assert_eq!(p.swap("rec", "tick", 5, b"never").await.unwrap(), None, "not at 5: there is none");
    });
    let mut expect = 0;
    for round in 0..3 {
        let start = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (client, start) = (client.clone(), start.clone());
                std::thread::spawn(move || {
                    block_on(async {
                        let w = client();
                        start.wait();
                        let value = format!("round {round} writer {i}").into_bytes();
                        w.swap("rec", "tick", expect, &value).await.expect("answered")
                    })
                })
            })
            .collect();
        let won: Vec<(usize, u64)> = threads
            .into_iter()
            .enumerate()
            .filter_map(|(i, t)| t.join().unwrap().map(|rev| (i, rev)))
            .collect();
        assert_eq!(won.len(), 1, "round {round}: exactly one swap at revision {expect} wins: {won:?}");
        let (i, rev) = won[0];
        let (value, read_rev) = block_on(client().read("rec", "tick")).unwrap().expect("written");
        assert_eq!((value, read_rev), (format!("round {round} writer {i}").into_bytes(), rev));
        assert!(rev > expect);
        expect = rev;
    }
    block_on(async {
        let p = client();
        // Another cluster's records are another namespace; a removed record can be created again.
        assert!(p.swap("other", "tick", 0, b"x").await.unwrap().is_some());
        assert!(p.remove("rec", "tick").await.unwrap().is_some_and(|v| v.starts_with(b"round 2 writer ")));
        assert_eq!(p.read("rec", "tick").await.unwrap(), None);
        assert_eq!(
            p.swap("rec", "tick", expect, b"stale").await.unwrap(),
            None,
            "gone: not at the old revision"
        );
        assert!(p.swap("rec", "tick", 0, b"again").await.unwrap().is_some());
        assert_eq!(p.remove("rec", "nothing").await.unwrap(), None);
    });
}

#[test]
fn in_memory_records_are_swapped_by_revision_once() {
    let store = MemoryProvider::new();
    records_are_swapped_by_revision_once(move || Arc::new(store.clone()));
}

#[test]
fn in_memory_specs_outlive_holders_and_batches_claim_each_name() {
    specs_outlive_holders_and_batches_claim_each_name(&MemoryProvider::new());
}

#[test]
fn in_memory_one_of_many_concurrent_claims_wins() {
    let store = MemoryProvider::new();
    one_of_many_claims_wins((0..8).map(|_| Arc::new(store.clone()) as Arc<dyn ClusterProvider>).collect());
}

#[test]
fn in_memory_a_name_has_one_holder_and_frees_itself() {
    a_name_has_one_holder_and_frees_itself(&MemoryProvider::new());
}

#[cfg(feature = "etcd")]
#[test]
fn on_etcd_one_of_many_concurrent_claims_wins_and_a_name_frees_itself() {
    use common::processes::Etcd;
    use corelane_net::cluster::EtcdProvider;
    let etcd = Etcd::start();
    one_of_many_claims_wins(
        (0..8).map(|_| Arc::new(EtcdProvider::new([etcd.endpoint()])) as Arc<dyn ClusterProvider>).collect(),
    );
    a_name_has_one_holder_and_frees_itself(&EtcdProvider::new([etcd.endpoint()]));
    specs_outlive_holders_and_batches_claim_each_name(&EtcdProvider::new([etcd.endpoint()]));
    let endpoint = etcd.endpoint();
    records_are_swapped_by_revision_once(move || Arc::new(EtcdProvider::new([endpoint.clone()])));
}
