//! Payload codecs: how a message type travels. Any prost message with a name travels as
//! itself, under its full protobuf name.

use bytes::{Bytes, BytesMut};

/// A message type that can cross nodes: a manifest (the name it travels under, the same on
/// both nodes) and its encoding.
///
/// Implemented for every `prost::Message + prost::Name`; see `Rkyv` for rkyv archives.
pub trait RemoteMessage: Sized + Send + 'static {
    /// The name this type travels under.
    fn manifest() -> &'static str;
    /// The length of the encoding.
    fn encoded_len(&self) -> usize;
    /// Appends the encoding (exactly `encoded_len` bytes) to `buf`.
    fn encode(&self, buf: &mut BytesMut);
    /// Decodes a payload (which may be anything a peer sent).
    ///
    /// # Errors
    /// A payload that is not a valid encoding of this type.
    fn decode(payload: Bytes) -> Result<Self, CodecError>;

    /// The encoding as `Bytes`.
    fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::new();
        self.encode(&mut buf);
        buf.freeze()
    }
}

/// A payload that did not decode as the type its manifest names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("payload does not decode as {manifest}: {detail}")]
pub struct CodecError {
    /// The type it should have been.
    pub manifest: String,
    /// What the decoder said.
    pub detail: String,
}

impl<T: prost::Message + prost::Name + Default + Send + 'static> RemoteMessage for T {
    fn manifest() -> &'static str {
        static_name::<T>()
    }
    fn encoded_len(&self) -> usize {
        prost::Message::encoded_len(self)
    }
    fn encode(&self, buf: &mut BytesMut) {
        buf.reserve(prost::Message::encoded_len(self));
        self.encode_raw(buf);
    }
    fn decode(payload: Bytes) -> Result<Self, CodecError> {
        <T as prost::Message>::decode(payload)
            .map_err(|e| CodecError { manifest: T::full_name(), detail: e.to_string() })
    }
}

/// `T::full_name()` as a `&'static str`: computed once per type and kept for the life of the
/// process (one small string per message type), so sending does not format it every time.
/// Every send looks it up, so the thread's map is keyed with a fast hash (a `TypeId` is a hash
/// already; SipHash was 7 % of a telling thread's time), behind the type last looked up.
fn static_name<T: prost::Name + 'static>() -> &'static str {
    use std::any::TypeId;
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;
    type Names = HashMap<TypeId, &'static str, foldhash::fast::FixedState>;
    thread_local! {
        static LAST: Cell<Option<(TypeId, &'static str)>> = const { Cell::new(None) };
        static NAMES: RefCell<Names> = RefCell::new(Names::default());
    }
    let id = TypeId::of::<T>();
    if let Some((_, name)) = LAST.get().filter(|(last, _)| *last == id) {
        return name;
    }
    let name = NAMES.with(|names| *names.borrow_mut().entry(id).or_insert_with(|| global_name::<T>()));
    LAST.set(Some((id, name)));
    name
}

/// The process-wide copy, so each type's name is leaked once, not once per thread.
fn global_name<T: prost::Name + 'static>() -> &'static str {
    use std::any::TypeId;
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashMap<TypeId, &'static str>>> = OnceLock::new();
    let mut names = NAMES.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    names.entry(TypeId::of::<T>()).or_insert_with(|| Box::leak(T::full_name().into_boxed_str()))
}

#[cfg(test)]
mod tests {
    use super::RemoteMessage;
    use corelane_proto::v1::{Done, Found};

    #[test]
    fn each_type_travels_under_its_own_name_whichever_was_looked_up_last() {
        let (done, found) = (<Done as prost::Name>::full_name(), <Found as prost::Name>::full_name());
        assert_ne!(done, found);
        for _ in 0..3 {
            assert_eq!(Done::manifest(), done);
            assert_eq!(Done::manifest(), done, "the type looked up last, again");
            assert_eq!(Found::manifest(), found, "another type after it");
        }
        // The same on another thread, and the same leaked string process-wide.
        let there = std::thread::spawn(|| (Found::manifest(), Done::manifest())).join().unwrap();
        assert_eq!(there, (Found::manifest(), Done::manifest()));
        assert!(std::ptr::eq(there.0, Found::manifest()), "one copy per type");
    }
}
