//! Where io_uring is refused (simulated through the executor seam), `Executor::Auto` runs the
//! shards on the portable executor and says why and how to allow io_uring, once; an explicit
//! `Executor::Glommio` fails with an error that says io_uring. Its own test binary: the
//! simulation and the `tracing` subscriber are process-wide.

use corelane::testkit::capture_logs;
use corelane::{integration, Actor, ActorError, Ctx, Executor, Idle, Reply, Runtime, Shards};
use std::time::Duration;

struct Echo;
impl Actor for Echo {
    type Msg = Reply<u8>;
    fn receive(&mut self, _: &mut Ctx<Self>, r: Reply<u8>) -> Result<(), ActorError> {
        r.send(7);
        Ok(())
    }
}

#[test]
fn auto_falls_back_to_the_portable_executor_and_says_why_and_glommio_alone_fails() {
    let log = capture_logs(tracing::Level::INFO);
    integration::simulate_io_uring_refused(true);
    let builder = || Runtime::builder().shards(Shards::Count(2)).idle(Idle::Park);
    for _ in 0..2 {
        let rt = builder().executor(Executor::Auto).build().expect("Auto falls back");
        assert_eq!(rt.executor(), Executor::Portable);
        let e = rt.spawn_on(1, || Echo).unwrap();
        assert_eq!(e.ask(|r| r).timeout(Duration::from_secs(10)).wait(), Ok(7));
        rt.shutdown().unwrap();
    }
    let warnings: Vec<String> =
        log.text().lines().filter(|l| l.contains("portable executor")).map(str::to_string).collect();
    assert_eq!(warnings.len(), 1, "said once per process: {warnings:?}");
    assert!(warnings[0].contains("WARN") && warnings[0].contains("seccomp"), "{}", warnings[0]);
    let err = builder().executor(Executor::Glommio).build().expect_err("glommio alone cannot start");
    assert!(std::error::Error::source(&err).is_some_and(|s| s.to_string().contains("io_uring")), "{err}");
    integration::simulate_io_uring_refused(false);
    let rt = builder().executor(Executor::Auto).build().unwrap();
    assert_eq!(rt.executor(), Executor::Glommio, "with io_uring back, Auto is glommio");
    rt.shutdown().unwrap();
}
