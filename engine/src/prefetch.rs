//! Asking the core for cache lines it is about to write, before the write.
//!
//! Every buffer that carries messages from one core to another (a ring's slots, a batch's
//! storage, a run's items) is read by the other core, so when the sender writes it again the
//! line must first be taken back from there: a read-for-ownership, a cross-core round trip
//! (~150–300 ns with the vCPUs of this project's hosts on separate cores). A store waits for
//! it in the store buffer, stores retire in order, so a stream of messages written into such
//! lines runs one round trip per line, and the sender stalls on every line it starts.
//! `prefetchw` starts those transfers ahead, many at once, while the sender writes the lines
//! before them (`tell-cross`, a shard streaming batches to another shard: 17–19 → 42–54 M
//! msg/s with the vCPUs on separate cores, 67–72 → 102–140 M on SMT siblings, alternated
//! processes; `docs/benchmarks.md`, session 14).
//!
//! A prefetch is a hint: it faults on no address and changes no data, so a line past the end
//! of a buffer costs at most a transfer. Elsewhere than x86-64 these are no-ops.

/// Bytes ahead of the write position that a stream of writes asks for: enough lines in flight
/// to cover a cross-core round trip at the rate a sender fills lines.
pub(crate) const AHEAD: usize = 1024;

/// Asks for the line holding `p`, to write it.
#[inline(always)]
pub(crate) fn line<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetchw` only reads its address register: it writes no register, no memory
    // the program can see and no flag, and an address nothing is mapped at is ignored, not a
    // fault (so any `p`, dangling or past an allocation's end, is sound here).
    unsafe {
        std::arch::asm!("prefetchw [{0}]", in(reg) p, options(nostack, preserves_flags, readonly))
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Asks for every line of the `len` bytes at `p`, to write them.
#[inline]
pub(crate) fn lines<T>(p: *const T, len: usize) {
    let p = p.cast::<u8>();
    let mut off = 0;
    while off < len {
        line(p.wrapping_add(off));
        off += 64;
    }
}

#[cfg(test)]
mod tests {
    /// A prefetch of addresses nothing is mapped at (null, the first page, past a buffer's end
    /// into whatever follows) is ignored: the buffers' tails rely on it.
    #[test]
    fn a_prefetch_of_an_unmapped_address_is_ignored() {
        super::line(std::ptr::null::<u8>());
        super::lines(16 as *const u8, 4096);
        let buf = vec![0u8; 64];
        super::lines(buf.as_ptr(), 1 << 20);
        assert_eq!(buf, vec![0u8; 64], "a prefetch changes no data");
    }
}
