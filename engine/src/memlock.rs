//! Locked memory for the executors' io_uring buffers.
//!
//! glommio registers its I/O buffers with io_uring, which counts against `RLIMIT_MEMLOCK`.
//! Before starting shards we make sure the limit covers them: raise it where the process may
//! (up to the hard limit, or beyond it with `CAP_SYS_RESOURCE`), otherwise shrink the buffers to
//! fit, and only if even the minimum does not fit, fail with an error naming the limit. Every
//! change to the limit is logged at info level with the old and new values; shrinking the
//! buffers is a warning.

use crate::error::BuildError;

/// Smallest buffer area per shard worth running with.
const MIN_IO_MEMORY: usize = 64 << 10;
/// Headroom for everything else that locks memory.
const SLACK: u64 = 1 << 20;

fn get() -> Option<(u64, u64)> {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `r` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } != 0 {
        return None;
    }
    Some((r.rlim_cur, r.rlim_max))
}

fn set(cur: u64, max: u64) -> bool {
    let r = libc::rlimit { rlim_cur: cur, rlim_max: max };
    // SAFETY: `r` is a valid rlimit; the call only reads it.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &r) == 0 }
}

/// Returns the io_memory per shard to use: `wanted`, or less if the limit cannot be raised.
pub(crate) fn fit(shards: usize, wanted: usize) -> Result<usize, BuildError> {
    let Some((cur, max)) = get() else { return Ok(wanted) };
    let need = shards as u64 * wanted as u64 + SLACK;
    if cur == libc::RLIM_INFINITY || cur >= need {
        return Ok(wanted);
    }
    // A process-wide limit changes: said every time, with what it was and what it is now.
    if max == libc::RLIM_INFINITY || max >= need {
        if set(need, max) {
            tracing::info!(
                from = cur,
                to = need,
                shards,
                "raised this process's RLIMIT_MEMLOCK soft limit for the shards' io_uring buffers \
                 (Builder::io_memory sets their size)"
            );
            return Ok(wanted);
        }
    } else if set(need, need) {
        tracing::info!(
            from = cur,
            to = need,
            hard_from = max,
            shards,
            "raised this process's RLIMIT_MEMLOCK soft and hard limits for the shards' io_uring \
             buffers (Builder::io_memory sets their size)"
        );
        return Ok(wanted);
    }
    let (cur, _) = get().unwrap_or((cur, max));
    let per = (cur.saturating_sub(SLACK) / shards as u64) as usize;
    if per >= MIN_IO_MEMORY {
        tracing::warn!(per, wanted, "RLIMIT_MEMLOCK too low to raise; shrinking io_memory");
        return Ok(per);
    }
    Err(BuildError::MemlockTooLow {
        have_kib: cur / 1024,
        need_kib: (shards as u64 * MIN_IO_MEMORY as u64 + SLACK) / 1024,
        shards,
    })
}
