//! Loom models of the lanes: order through the overflow, and causal order across lanes,
//! lone senders, lanes registered during a pass and the injector.

use super::*;
use crate::packet::Deliver;
use crate::shard::Shard;

struct V(u64);
impl Deliver for V {
    fn deliver(self, _: &Shard, _: u64) {}
}

/// A thread sends five messages down a lane of two slots (so most go through the queue)
/// while the shard drains one at a time: they arrive in order, none lost.
#[test]
fn loom_a_lane_keeps_order_across_its_queue() {
    loom::model(|| {
        let (mut tx, mut rx) = lane_of(2);
        let t = loom::thread::spawn(move || {
            for v in 0..5u64 {
                assert!(tx.push(v, Packet::new(0, V(v))).is_ok());
            }
        });
        let mut got = Vec::new();
        while got.len() < 5 {
            let mut out = Vec::new();
            rx.take_below_flat(u64::MAX, &mut out);
            got.extend(out.into_iter().map(|(_, p)| p.take::<V>().ok().expect("a V").0));
            loom::thread::yield_now();
        }
        t.join().unwrap();
        assert_eq!(got, [0, 1, 2, 3, 4]);
    });
}

/// A message that may travel in runs (`run`).
struct R(u64);
impl Deliver for R {
    fn deliver(self, _: &Shard, _: u64) {}
    const RUNS: bool = true;
}

/// A lone sender streams four messages to one actor while the shard is behind, so all but the
/// first go in a run, and the shard takes them as they come: each arrives once, in order.
#[test]
fn loom_a_run_hands_each_message_over_once_in_order() {
    loom::model(|| {
        let (mut tx, mut rx) = lane_of(2);
        tx.state.behind.store(true, Ordering::Relaxed);
        let t = loom::thread::spawn(move || {
            for v in 0..4u64 {
                if let Err(back) = tx.push_new(0, 1, R(v)) {
                    assert!(tx.push(0, Packet::new(1, back)).is_ok());
                }
            }
        });
        let mut got = Vec::new();
        while got.len() < 4 {
            let mut out = Vec::new();
            rx.take_below_flat(u64::MAX, &mut out);
            for (_, p) in out {
                match p.take::<R>() {
                    Ok(R(v)) => got.push(v),
                    Err(p) => {
                        got.extend(p.take::<run::RunPart<R>>().ok().expect("a run's part").map(|R(v)| v))
                    }
                }
            }
            loom::thread::yield_now();
        }
        t.join().unwrap();
        assert_eq!(got, [0, 1, 2, 3]);
    });
}

/// One pass of a shard, as `Shard::drain_outside` makes it: the lanes' one message at once,
/// or else adopt new lanes, take what is due, deliver it (into `got`), drop the lanes that
/// are finished.
fn pass(reg: &LaneRegistry, lanes: &mut Vec<LaneRx>, held: &mut Vec<Stamped>, got: &mut Vec<u64>) {
    if held.is_empty() {
        if let Some(p) = take_lone(reg, lanes, || false) {
            got.push(p.take::<V>().ok().expect("a V").0);
            return;
        }
    }
    let mut due = Vec::new();
    take_due_flat(reg, lanes, held, &mut due, |_| {});
    got.extend(due.into_iter().map(|(_, p)| p.take::<V>().ok().expect("a V").0));
    let live = lanes.len();
    lanes.retain(|l| !l.is_finished());
    reg.dropped(live - lanes.len());
}

fn delivered_in_order(got: &[u64], first: u64, then: u64) {
    if let Some(i) = got.iter().position(|&v| v == then) {
        assert!(got[..i].contains(&first), "{then} was delivered before {first}: {got:?}");
    }
}

/// Thread A sends `1` down its lane and then tells thread B (a flag), which sends `2` down
/// its own: a shard that delivers `2` has delivered `1` before it, whatever it sees when.
/// Both lanes are live, so both take stamps from the counter.
#[test]
fn loom_a_message_sent_after_another_is_delivered_after_it_across_lanes() {
    loom::model(|| {
        let reg = Arc::new(LaneRegistry::default());
        let said = Arc::new(AtomicBool::new(false));
        let (mut ta, ra) = lane_of(2);
        let (mut tb, rb) = lane_of(2);
        assert!(reg.register(ra) && reg.register(rb));
        let (r1, said1) = (reg.clone(), said.clone());
        let a = loom::thread::spawn(move || {
            assert!(ta.push(r1.stamp(), Packet::new(0, V(1))).is_ok());
            said1.store(true, Ordering::Release);
        });
        let (r2, said2) = (reg.clone(), said.clone());
        let b = loom::thread::spawn(move || {
            if said2.load(Ordering::Acquire) {
                assert!(tb.push(r2.stamp(), Packet::new(0, V(2))).is_ok());
            }
        });
        let (mut lanes, mut held, mut got) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..2 {
            pass(&reg, &mut lanes, &mut held, &mut got);
        }
        a.join().unwrap();
        b.join().unwrap();
        delivered_in_order(&got, 1, 2);
    });
}

/// The stamps of a lone sender (read, not taken): B's lane is live, B sends `2`, leaves
/// and tells A, whose lane may be the only one left by then (the shard dropped B's); A's
/// `1` is delivered after `2`. And A alone sends `3` before B's lane is registered: `3`
/// comes before `2`.
#[test]
fn loom_a_lone_senders_stamps_keep_causal_order_as_lanes_come_and_go() {
    loom::model(|| {
        let reg = Arc::new(LaneRegistry::default());
        let said = Arc::new(AtomicBool::new(false));
        let (mut ta, ra) = lane_of(4);
        let (mut tb, rb) = lane_of(4);
        assert!(reg.register(ra));
        let (r1, said1) = (reg.clone(), said.clone());
        let b = loom::thread::spawn(move || {
            if said1.load(Ordering::Acquire) {
                assert!(r1.register(rb));
                assert!(tb.push(r1.stamp(), Packet::new(0, V(2))).is_ok());
                tb.leave();
                said1.store(false, Ordering::Release);
            }
        });
        let (r2, said2) = (reg.clone(), said.clone());
        let a = loom::thread::spawn(move || {
            assert!(ta.push(r2.stamp(), Packet::new(0, V(3))).is_ok());
            said2.store(true, Ordering::Release);
            loom::thread::yield_now();
            // B answered (set the flag back): what A sends now follows B's `2`.
            if !said2.load(Ordering::Acquire) {
                assert!(ta.push(r2.stamp(), Packet::new(0, V(1))).is_ok());
            }
        });
        let (mut lanes, mut held, mut got) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..2 {
            pass(&reg, &mut lanes, &mut held, &mut got);
        }
        a.join().unwrap();
        b.join().unwrap();
        pass(&reg, &mut lanes, &mut held, &mut got);
        delivered_in_order(&got, 2, 1);
        delivered_in_order(&got, 3, 2);
    });
}

/// A lone sender A sends `1` down its lane and tells thread X, which sends `2` through a
/// locked queue (the injector's shape, with a stamp taken from the counter): `2` is never
/// delivered before `1`, although the pass's first round may scan the lane before `1`
/// lands and find `2` in the queue after (then the rounds must run, one lane or not).
#[test]
fn loom_a_message_from_the_injector_after_a_lone_senders_is_delivered_after_it() {
    loom::model(|| {
        let (reg, queue, said, mut ta) = injector_model();
        let (r1, said1) = (reg.clone(), said.clone());
        let a = loom::thread::spawn(move || {
            assert!(ta.push(r1.stamp(), Packet::new(0, V(1))).is_ok());
            said1.store(true, Ordering::Release);
        });
        let (r2, q2, said2) = (reg.clone(), queue.clone(), said.clone());
        let x = loom::thread::spawn(move || {
            if said2.load(Ordering::Acquire) {
                q2.lock().unwrap().push((r2.fresh_stamp(), Packet::new(0, V(2))));
            }
        });
        let (mut lanes, mut held, mut got) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..2 {
            injector_pass(&reg, &mut lanes, &mut held, &queue, &mut got);
        }
        a.join().unwrap();
        x.join().unwrap();
        delivered_in_order(&got, 1, 2);
    });
}

/// The injector models' parts: the registry, an injector-shaped queue, a flag between the
/// threads, and the sending end of one registered lane.
#[allow(clippy::type_complexity)]
fn injector_model() -> (Arc<LaneRegistry>, Arc<Mutex<Vec<Stamped>>>, Arc<AtomicBool>, LaneTx) {
    let reg = Arc::new(LaneRegistry::default());
    let (ta, ra) = lane_of(2);
    assert!(reg.register(ra));
    (reg, Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)), ta)
}

/// A pass with an injector-shaped queue, as `Shard::drain_outside` makes it: the lanes' one
/// message at once when the queue is empty once it is taken, or else the rounds.
fn injector_pass(
    reg: &LaneRegistry,
    lanes: &mut Vec<LaneRx>,
    held: &mut Vec<Stamped>,
    queue: &Mutex<Vec<Stamped>>,
    got: &mut Vec<u64>,
) {
    if held.is_empty() {
        if let Some(p) = take_lone(reg, lanes, || !queue.lock().unwrap().is_empty()) {
            got.push(p.take::<V>().ok().expect("a V").0);
            return;
        }
    }
    let mut due = Vec::new();
    take_due_flat(reg, lanes, held, &mut due, |o| o.append(&mut queue.lock().unwrap()));
    got.extend(due.into_iter().map(|(_, p)| p.take::<V>().ok().expect("a V").0));
}

/// Thread X sends `2` through the injector-shaped queue and tells A, a lone sender, which
/// then sends `1` down its lane: `1` is never delivered before `2`, although the shard may
/// take `1` as the lanes' one message (`take_lone`) and look at the queue only after.
#[test]
fn loom_a_message_from_the_injector_before_a_lone_senders_is_delivered_before_it() {
    loom::model(|| {
        let (reg, queue, said, mut ta) = injector_model();
        let (mut lanes, mut held, mut got) = (Vec::new(), Vec::new(), Vec::new());
        // The lane is adopted before anything is sent, so later passes may take it alone.
        injector_pass(&reg, &mut lanes, &mut held, &queue, &mut got);
        let (r1, q1, said1) = (reg.clone(), queue.clone(), said.clone());
        let x = loom::thread::spawn(move || {
            q1.lock().unwrap().push((r1.fresh_stamp(), Packet::new(0, V(2))));
            said1.store(true, Ordering::Release);
        });
        let (r2, said2) = (reg.clone(), said.clone());
        let a = loom::thread::spawn(move || {
            if said2.load(Ordering::Acquire) {
                assert!(ta.push(r2.stamp(), Packet::new(0, V(1))).is_ok());
            }
        });
        for _ in 0..2 {
            injector_pass(&reg, &mut lanes, &mut held, &queue, &mut got);
        }
        a.join().unwrap();
        x.join().unwrap();
        injector_pass(&reg, &mut lanes, &mut held, &queue, &mut got);
        delivered_in_order(&got, 2, 1);
    });
}
