//! Building a runtime changes a process-wide limit only out loud: a `RLIMIT_MEMLOCK` too low
//! for the shards' io_uring buffers is raised (or the buffers shrunk), and the log says so with
//! the values (its own test binary: it changes the process's limit and installs its `tracing`
//! subscriber).

use corelane::testkit::capture_logs;
use corelane::{Executor, Idle, Runtime, Shards};

fn memlock() -> (u64, u64) {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `r` is a valid, writable rlimit for the duration of the call.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) }, 0);
    (r.rlim_cur, r.rlim_max)
}

#[test]
fn a_memlock_limit_too_low_is_raised_or_worked_around_and_the_log_says_which() {
    let log = capture_logs(tracing::Level::INFO);
    let (_, max) = memlock();
    // A soft limit below what two shards' buffers need (2 × 512 KiB and slack).
    let low = libc::rlimit { rlim_cur: 256 << 10, rlim_max: max };
    // SAFETY: `low` is a valid rlimit; lowering the soft limit needs no privilege.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &low) }, 0);
    // Auto: io_uring's buffers count (whatever CORELANE_EXECUTOR says for the other tests).
    let rt = Runtime::builder()
        .shards(Shards::Count(2))
        .idle(Idle::Park)
        .executor(Executor::Auto)
        .build()
        .unwrap();
    let (cur, _) = memlock();
    let text = log.text();
    let said =
        text.lines().find(|l| l.contains("RLIMIT_MEMLOCK")).unwrap_or_else(|| panic!("not said: {text}"));
    if cur > 256 << 10 {
        assert!(said.contains("INFO") && said.contains("raised"), "{said}");
        assert!(
            said.contains("from=262144") && said.contains(&format!("to={cur}")),
            "old and new values: {said}"
        );
    } else {
        assert!(said.contains("WARN") && said.contains("shrinking"), "{said}");
    }
    rt.shutdown().unwrap();
}
