//! Type-erased ring slot: what crosses from one shard (or thread) to another.
//!
//! A packet is 56 bytes (a ring slot with its sequence word is one cache line): the target's id,
//! a pointer to a static vtable, and 40 bytes of inline storage. A payload that fits (size ≤ 40,
//! align ≤ 8) travels inline; a bigger one is
//! boxed and the box pointer travels. On arrival the vtable's `deliver` moves the payload out
//! and hands it, typed again, to the receiving shard (a user message into its typed mailbox, a
//! spawn request into the slab, a reply wake-up to a local task).

use crate::lane::RunPart;
use crate::shard::Shard;
use std::any::TypeId;
use std::mem::{align_of, size_of, ManuallyDrop, MaybeUninit};

const INLINE_WORDS: usize = 5;

/// A payload that knows what to do when it reaches its shard.
pub(crate) trait Deliver: Send + Sized + 'static {
    /// Runs on the receiving shard's thread.
    fn deliver(self, shard: &Shard, target: u64);
    /// What to call it in a dead-letter event.
    fn type_name() -> &'static str {
        std::any::type_name::<Self>()
    }
    /// How many messages it carries (counted one by one when it cannot be delivered).
    fn messages(&self) -> usize {
        1
    }
    /// Merges `next` (a packet of this type) into `last`, the packet queued just before it
    /// towards the same shard, when both can travel as one; gives `next` back otherwise.
    /// The caller answers for the order: nothing may be delivered between the two.
    fn join(last: &mut Packet, next: Packet) -> Result<(), Packet> {
        let _ = last;
        Err(next)
    }
    /// Whether a lone sender's stream of these to one target may travel in runs
    /// (`crate::lane::run`).
    const RUNS: bool = false;
    /// Whether this is a run's announcement (`crate::lane::run::RunOpen`), which the lane
    /// takes apart instead of handing it over.
    const OPENS_RUN: bool = false;
    /// Delivers the messages of a run, in order.
    fn deliver_run(items: RunPart<Self>, shard: &Shard, target: u64) {
        for p in items {
            p.deliver(shard, target);
        }
    }
}

struct VTable {
    deliver: unsafe fn(*mut u8, &Shard, u64),
    drop: unsafe fn(*mut u8),
    messages: unsafe fn(*mut u8) -> usize,
    join: fn(&mut Packet, Packet) -> Result<(), Packet>,
    type_id: fn() -> TypeId,
    type_name: fn() -> &'static str,
    /// Whether the payload needs the storage's last word (inline and over `HEAD_WORDS` words).
    long: bool,
    /// `Deliver::OPENS_RUN`, read without a call.
    opens_run: bool,
}

/// Storage words that a short payload (or a box pointer) fits in: with the target and the
/// vtable pointer, the first 48 bytes of a packet.
const HEAD_WORDS: usize = 4;

#[repr(C)]
pub(crate) struct Packet {
    target: u64,
    vt: &'static VTable,
    data: MaybeUninit<[usize; INLINE_WORDS]>,
}

// SAFETY: a packet owns a `P: Deliver` (which is `Send`), inline or boxed.
unsafe impl Send for Packet {}

const fn inline<P>() -> bool {
    size_of::<P>() <= INLINE_WORDS * size_of::<usize>() && align_of::<P>() <= align_of::<usize>()
}

/// Moves the payload out of packet storage `p`.
///
/// # Safety
/// `p` must point at packet storage that holds a live `P` written by `Packet::new::<P>`, and the
/// payload must not be read again afterwards.
unsafe fn read<P: Deliver>(p: *mut u8) -> P {
    if inline::<P>() {
        // SAFETY: per the contract, the storage holds a `P` inline (suitably aligned: the
        // storage is word-aligned and `inline` checked `align_of::<P>()`).
        unsafe { (p as *mut P).read() }
    } else {
        // SAFETY: per the contract, the storage holds a `Box<P>` raw pointer.
        unsafe { *Box::from_raw((p as *mut *mut P).read()) }
    }
}

unsafe fn deliver_fn<P: Deliver>(p: *mut u8, shard: &Shard, target: u64) {
    // SAFETY: called once per packet, by `Packet::deliver`, with its own storage.
    unsafe { read::<P>(p) }.deliver(shard, target)
}

unsafe fn drop_fn<P: Deliver>(p: *mut u8) {
    // SAFETY: called once per packet, by `Drop`, with its own storage.
    drop(unsafe { read::<P>(p) })
}

/// Where the payload in packet storage `p` lives: the storage itself (inline), or the box the
/// storage points at.
///
/// # Safety
/// `p` must point at packet storage that holds a live `P` written by `Packet::write::<P>`.
unsafe fn payload<P: Deliver>(p: *mut u8) -> *mut P {
    if inline::<P>() {
        // Inline: the storage is word-aligned and `inline` checked `align_of::<P>()`.
        p as *mut P
    } else {
        // SAFETY: per the contract the storage holds a `Box<P>` raw pointer.
        unsafe { (p as *mut *mut P).read() }
    }
}

unsafe fn messages_fn<P: Deliver>(p: *mut u8) -> usize {
    // SAFETY: called by `Packet::messages` with its own, live storage, only read here.
    unsafe { &*payload::<P>(p) }.messages()
}

struct Vt<P>(std::marker::PhantomData<P>);
impl<P: Deliver> Vt<P> {
    const V: VTable = VTable {
        deliver: deliver_fn::<P>,
        drop: drop_fn::<P>,
        messages: messages_fn::<P>,
        join: P::join,
        type_id: TypeId::of::<P>,
        type_name: P::type_name,
        long: inline::<P>() && size_of::<P>() > HEAD_WORDS * size_of::<usize>(),
        opens_run: P::OPENS_RUN,
    };
}

impl Packet {
    /// Wraps `payload` for `target`.
    #[inline]
    pub(crate) fn new<P: Deliver>(target: u64, payload: P) -> Self {
        let mut p = MaybeUninit::<Packet>::uninit();
        // SAFETY: `p` is valid for writes and is fully initialized by `write`.
        unsafe {
            Packet::write(p.as_mut_ptr(), target, payload);
            p.assume_init()
        }
    }

    /// Builds a packet in place at `dst` (a ring slot), field by field, so the payload is
    /// stored once, where it travels.
    ///
    /// # Safety
    /// `dst` must be valid for writes of a `Packet`; whatever it held is overwritten, not
    /// dropped.
    #[inline(always)]
    pub(crate) unsafe fn write<P: Deliver>(dst: *mut Packet, target: u64, payload: P) {
        // SAFETY: the caller guarantees `dst` is writable; field pointers stay inside it.
        unsafe {
            std::ptr::addr_of_mut!((*dst).target).write(target);
            std::ptr::addr_of_mut!((*dst).vt).write(&Vt::<P>::V);
            let data = std::ptr::addr_of_mut!((*dst).data) as *mut u8;
            if inline::<P>() {
                // `inline` checked size and alignment against the word-aligned storage.
                (data as *mut P).write(payload);
            } else {
                // A pointer always fits in the storage.
                (data as *mut *mut P).write(Box::into_raw(Box::new(payload)));
            }
        }
    }

    /// Offset of the payload storage in a packet.
    #[cfg_attr(corelane_loom, allow(dead_code))]
    pub(crate) const DATA_OFFSET: usize = std::mem::offset_of!(Packet, data);
    /// The bytes a short packet (a payload of up to 32 bytes, or a boxed one) occupies from its
    /// start: all that [`Packet::move_to`] and [`Packet::move_from`] copy of it.
    #[cfg_attr(corelane_loom, allow(dead_code))]
    pub(crate) const HEAD: usize = Self::DATA_OFFSET + HEAD_WORDS * size_of::<usize>();

    /// Moves the packet to `dst`, copying only the storage its payload uses: the first
    /// [`Packet::HEAD`] bytes for a payload of up to 32 bytes or a boxed one. A packet placed in
    /// a slot that straddles two cache lines (a lane's) then writes only the first line, and
    /// [`Packet::move_from`] reads only that line, so one line per message crosses cores.
    ///
    /// # Safety
    /// `dst` must be valid for writes of a `Packet`; whatever it held is overwritten, not
    /// dropped.
    #[inline(always)]
    pub(crate) unsafe fn move_to(self, dst: *mut Packet) {
        let me = ManuallyDrop::new(self);
        // SAFETY: the caller guarantees `dst` is writable; field pointers stay inside it. The
        // storage is copied as `MaybeUninit` words (it may hold uninitialized bytes), the words
        // the payload uses included; `ManuallyDrop` hands the payload over to `dst`.
        unsafe {
            std::ptr::addr_of_mut!((*dst).target).write(me.target);
            std::ptr::addr_of_mut!((*dst).vt).write(me.vt);
            copy_storage(me.vt.long, me.data.as_ptr().cast(), std::ptr::addr_of_mut!((*dst).data).cast());
        }
    }

    /// Moves a packet out of `src`, reading only the storage its payload uses (see
    /// [`Packet::move_to`]).
    ///
    /// # Safety
    /// `src` must hold a live packet (written by [`Packet::write`], [`Packet::move_to`] or a
    /// move), which the caller owns and does not use again.
    #[inline(always)]
    pub(crate) unsafe fn move_from(src: *const Packet) -> Packet {
        let mut p = MaybeUninit::<Packet>::uninit();
        let dst = p.as_mut_ptr();
        // The target, the vtable, and the storage words the payload uses are written (the
        // others may stay uninitialized, which `MaybeUninit` storage allows).
        // SAFETY: `src` holds a live packet (contract) and `dst` is our own uninitialized
        // packet; field pointers stay inside each; every field of `dst` is written.
        unsafe {
            let vt = std::ptr::addr_of!((*src).vt).read();
            std::ptr::addr_of_mut!((*dst).target).write(std::ptr::addr_of!((*src).target).read());
            std::ptr::addr_of_mut!((*dst).vt).write(vt);
            copy_storage(
                vt.long,
                std::ptr::addr_of!((*src).data).cast(),
                std::ptr::addr_of_mut!((*dst).data).cast(),
            );
            p.assume_init()
        }
    }

    /// Where an inline payload of type `P` lives inside the packet at `dst`.
    ///
    /// # Safety
    /// `dst` must point at a packet written by `Packet::write::<P>`, and `P` must be inline
    /// (asserted).
    #[inline(always)]
    pub(crate) unsafe fn inline_payload<P: Deliver>(dst: *mut Packet) -> *mut P {
        assert!(inline::<P>(), "payload is boxed, not inline");
        // SAFETY: the caller guarantees `dst` is a packet; the field pointer stays inside it.
        unsafe { std::ptr::addr_of_mut!((*dst).data) as *mut P }
    }

    /// Hands the payload to its handler on `shard`.
    #[inline]
    pub(crate) fn deliver(self, shard: &Shard) {
        let mut me = ManuallyDrop::new(self);
        let (vt, target) = (me.vt, me.target);
        // SAFETY: the storage holds the payload `vt` was made for; `ManuallyDrop` keeps `Drop`
        // from touching it again.
        unsafe { (vt.deliver)(me.data.as_mut_ptr() as *mut u8, shard, target) }
    }

    /// Whether the packet announces a run (`crate::lane::run::RunOpen`): one load, no call.
    #[inline(always)]
    pub(crate) fn opens_run(&self) -> bool {
        self.vt.opens_run
    }

    /// The actor (or other target) the packet is for.
    pub(crate) fn target(&self) -> u64 {
        self.target
    }

    /// How many messages the packet carries (a batch more than one).
    pub(crate) fn messages(&self) -> usize {
        // SAFETY: the storage holds the live payload `vt` was made for; it is only read (the
        // pointer is `*mut` for the helper's sake).
        unsafe { (self.vt.messages)(self.data.as_ptr() as *mut u8) }
    }

    /// Merges `next` into this packet (the one queued just before it towards the same shard)
    /// when its type allows, so both travel as one; gives `next` back otherwise. The caller
    /// answers for the order: nothing may be delivered between the two.
    pub(crate) fn join(&mut self, next: Packet) -> Result<(), Packet> {
        (next.vt.join)(self, next)
    }

    /// The payload, if it is a `P`.
    pub(crate) fn payload_mut<P: Deliver>(&mut self) -> Option<&mut P> {
        if (self.vt.type_id)() != TypeId::of::<P>() {
            return None;
        }
        // SAFETY: the type check above proves the storage holds a live `P`; the `&mut self`
        // borrow keeps it unaliased for the result's life.
        Some(unsafe { &mut *payload::<P>(self.data.as_mut_ptr() as *mut u8) })
    }

    /// The payload's type name, for dead-letter events.
    pub(crate) fn type_name(&self) -> &'static str {
        (self.vt.type_name)()
    }

    /// Takes the payload back out if it is a `P` (used to return an undeliverable message).
    pub(crate) fn take<P: Deliver>(self) -> Result<P, Packet> {
        if (self.vt.type_id)() != TypeId::of::<P>() {
            return Err(self);
        }
        let mut me = ManuallyDrop::new(self);
        // SAFETY: the type check above proves the storage holds a `P`; `ManuallyDrop` keeps
        // `Drop` from reading it again.
        Ok(unsafe { read::<P>(me.data.as_mut_ptr() as *mut u8) })
    }
}

/// Copies the storage words a payload uses: `HEAD_WORDS`, or all of them for a long one.
///
/// # Safety
/// `src` must be valid for reads and `dst` for writes of `INLINE_WORDS` words, not overlapping.
#[inline(always)]
unsafe fn copy_storage(long: bool, src: *const MaybeUninit<usize>, dst: *mut MaybeUninit<usize>) {
    // SAFETY: per the contract; `MaybeUninit` words may be copied whatever they hold.
    unsafe {
        if long {
            std::ptr::copy_nonoverlapping(src, dst, INLINE_WORDS);
        } else {
            std::ptr::copy_nonoverlapping(src, dst, HEAD_WORDS);
        }
    }
}

impl Drop for Packet {
    fn drop(&mut self) {
        // SAFETY: a packet that was neither delivered nor taken still owns its payload.
        unsafe { (self.vt.drop)(self.data.as_mut_ptr() as *mut u8) }
    }
}

#[cfg(all(test, not(corelane_loom)))]
mod tests {
    use super::*;

    struct Small(#[allow(dead_code)] std::sync::Arc<()>);
    impl Deliver for Small {
        fn deliver(self, _: &Shard, _: u64) {}
    }
    struct Big([u64; 32], #[allow(dead_code)] std::sync::Arc<()>);
    impl Deliver for Big {
        fn deliver(self, _: &Shard, _: u64) {}
    }

    #[test]
    fn fits_a_ring_slot_line() {
        assert_eq!(size_of::<Packet>(), 56);
    }

    /// 40 bytes inline: the storage's last word is used.
    struct Long([u64; 4], #[allow(dead_code)] std::sync::Arc<()>);
    impl Deliver for Long {
        fn deliver(self, _: &Shard, _: u64) {}
    }

    /// A packet moved by `move_to` / `move_from` (through storage whose bytes are not the
    /// packet's, so a word that is not copied shows) keeps its payload, short, long or boxed,
    /// and drops it once.
    #[test]
    fn a_packet_moved_by_the_words_it_uses_keeps_its_payload() {
        let m = std::sync::Arc::new(());
        let through = |p: Packet| {
            let mut slot = MaybeUninit::<Packet>::uninit();
            // SAFETY: the slot is writable; filled with garbage first, so a word `move_to` did
            // not write is not what the packet held.
            unsafe {
                std::ptr::write_bytes(slot.as_mut_ptr() as *mut u8, 0xA5, size_of::<Packet>());
                p.move_to(slot.as_mut_ptr());
                Packet::move_from(slot.as_ptr())
            }
        };
        let p = through(Packet::new(1, Small(m.clone())));
        assert_eq!(p.target(), 1);
        drop(p.take::<Small>().ok().expect("a short payload comes back"));
        let l =
            through(Packet::new(2, Long([1, 2, 3, 4], m.clone()))).take::<Long>().ok().expect("a long one");
        assert_eq!(l.0, [1, 2, 3, 4]);
        drop(l);
        let b = through(Packet::new(3, Big([9; 32], m.clone()))).take::<Big>().ok().expect("a boxed one");
        assert_eq!(b.0[31], 9);
        drop(b);
        drop(through(Packet::new(4, Long([5; 4], m.clone()))));
        assert_eq!(std::sync::Arc::strong_count(&m), 1, "each payload dropped once");
        assert!(Packet::HEAD <= 48 && size_of::<Long>() > Packet::HEAD - Packet::DATA_OFFSET);
    }

    #[test]
    fn take_and_drop_inline_and_boxed() {
        let m = std::sync::Arc::new(());
        let p = Packet::new(1, Small(m.clone()));
        let p = p.take::<Big>().err().expect("wrong type is refused");
        let s = p.take::<Small>().ok().expect("right type comes back");
        drop(s);
        drop(Packet::new(2, Small(m.clone())));
        drop(Packet::new(3, Big([7; 32], m.clone())));
        let b = Packet::new(4, Big([9; 32], m.clone())).take::<Big>().ok().unwrap();
        assert_eq!(b.0[31], 9);
        drop(b);
        assert_eq!(std::sync::Arc::strong_count(&m), 1);
    }
}
