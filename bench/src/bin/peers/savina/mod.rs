//! The Savina actor benchmark suite (Imam and Sarkar, AGERE! 2014), the workloads its paper
//! lists, with its sizes scaled so each run finishes in seconds; every one checks its result.
//! Each file holds one workload on every framework, so the same logic and counts sit side by
//! side. Peers whose default mailbox is bounded (kameo: 64) get an unbounded one here, as their
//! docs show, because Savina's actors send in cycles that a bounded mailbox could deadlock.

pub(crate) mod bank;
pub(crate) mod barber;
pub(crate) mod big;
pub(crate) mod chameneos;
pub(crate) mod counting;
pub(crate) mod dictionary;
pub(crate) mod forkjoin;
pub(crate) mod pingpong;
pub(crate) mod threadring;
