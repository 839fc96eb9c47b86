//! rkyv archives as payloads: sent as the archive's bytes, validated with bytecheck on arrival
//! before anything reads them, and read in place (no deserialization) or deserialized on
//! demand.

use crate::codec::{CodecError, RemoteMessage};
use bytes::{Bytes, BytesMut};
use rkyv::api::high::{HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::de::Pool;
use rkyv::rancor::{Error, Strategy};
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};
use std::marker::PhantomData;

/// A type that travels as an rkyv archive, under the name `MANIFEST`.
pub trait RkyvMessage: Archive + Send + 'static {
    /// The name it travels under (the same on every node).
    const MANIFEST: &'static str;
}

/// A validated rkyv archive of a `T`.
///
/// Build one from a value to send it ([`Rkyv::new`]); a handler that receives one reads the
/// archive in place with [`Rkyv::get`] (zero-copy: nothing is deserialized) or takes a `T`
/// with [`Rkyv::to_value`]. A received archive is validated before the handler ever sees it; a
/// payload that is not a valid archive is refused as malformed. The bytes are kept in a
/// 16-byte-aligned buffer (a payload the frame left unaligned is copied there once).
///
/// ```
/// use corelane_net::{Rkyv, RkyvMessage, RemoteMessage};
///
/// #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, PartialEq)]
/// struct Quote { symbol: String, bid: u64, ask: u64 }
/// impl RkyvMessage for Quote { const MANIFEST: &'static str = "md.Quote"; }
///
/// let q = Rkyv::new(&Quote { symbol: "ACME".into(), bid: 99, ask: 101 })?;
/// let arrived = Rkyv::<Quote>::decode(q.to_bytes())?;           // what the receiver gets
/// assert_eq!(arrived.get()?.bid, 99);                             // read in place
/// assert_eq!(arrived.to_value()?.symbol, "ACME");                 // or deserialized
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Rkyv<T> {
    bytes: AlignedVec<16>,
    _t: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Rkyv<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rkyv<{}>({} bytes)", std::any::type_name::<T>(), self.bytes.len())
    }
}

impl<T> Rkyv<T>
where
    T: RkyvMessage + for<'a> Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, Error>>,
    T::Archived: for<'a> CheckBytes<HighValidator<'a, Error>>,
{
    /// Archives `value`.
    ///
    /// # Errors
    /// What rkyv's serializer reported.
    pub fn new(value: &T) -> Result<Self, CodecError> {
        let archived = rkyv::to_bytes::<Error>(value).map_err(|e| codec_error::<T>(e))?;
        let mut bytes = AlignedVec::<16>::with_capacity(archived.len());
        bytes.extend_from_slice(&archived);
        Ok(Self { bytes, _t: PhantomData })
    }
}

impl<T> Rkyv<T>
where
    T: RkyvMessage,
    T::Archived: for<'a> CheckBytes<HighValidator<'a, Error>>,
{
    /// The archive, read in place (validated again on each call: no unchecked access).
    ///
    /// # Errors
    /// Never for an `Rkyv` built by `new` or `decode` (both validate); kept fallible so that
    /// no access goes unchecked.
    pub fn get(&self) -> Result<&T::Archived, CodecError> {
        rkyv::access::<T::Archived, Error>(&self.bytes).map_err(|e| codec_error::<T>(e))
    }

    /// Deserializes the archive into a `T`.
    ///
    /// # Errors
    /// What rkyv's deserializer reported.
    pub fn to_value(&self) -> Result<T, CodecError>
    where
        T::Archived: Deserialize<T, Strategy<Pool, Error>>,
    {
        rkyv::from_bytes::<T, Error>(&self.bytes).map_err(|e| codec_error::<T>(e))
    }
}

fn codec_error<T: RkyvMessage>(e: Error) -> CodecError {
    CodecError { manifest: T::MANIFEST.into(), detail: e.to_string() }
}

impl<T> RemoteMessage for Rkyv<T>
where
    T: RkyvMessage,
    T::Archived: for<'a> CheckBytes<HighValidator<'a, Error>>,
{
    fn manifest() -> &'static str {
        T::MANIFEST
    }
    fn encoded_len(&self) -> usize {
        self.bytes.len()
    }
    fn encode(&self, buf: &mut BytesMut) {
        buf.extend_from_slice(&self.bytes);
    }
    fn decode(payload: Bytes) -> Result<Self, CodecError> {
        let mut bytes = AlignedVec::<16>::with_capacity(payload.len());
        bytes.extend_from_slice(&payload);
        let r = Self { bytes, _t: PhantomData };
        // Validated before anything can read it.
        r.get()?;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, PartialEq)]
    struct Order {
        id: u64,
        items: Vec<String>,
    }
    impl RkyvMessage for Order {
        const MANIFEST: &'static str = "test.Order";
    }

    #[test]
    fn roundtrips_and_reads_in_place() {
        let o = Order { id: 7, items: vec!["a".into(), "bb".into()] };
        let sent = Rkyv::new(&o).unwrap();
        // Unaligned on purpose, as a frame may leave it.
        let mut wire = BytesMut::from(&[0u8][..]);
        sent.encode(&mut wire);
        let payload = Bytes::from(wire).slice(1..);
        let got = Rkyv::<Order>::decode(payload).unwrap();
        assert_eq!(got.get().unwrap().id, 7);
        assert_eq!(got.get().unwrap().items[1].as_str(), "bb");
        assert_eq!(got.to_value().unwrap(), o);
    }

    #[test]
    fn invalid_archives_are_refused_before_any_access() {
        let sent = Rkyv::new(&Order { id: 1, items: vec!["x".into()] }).unwrap();
        let mut bad = sent.to_bytes().to_vec();
        // The root (at the end) holds the vector's relative offset and length: point them
        // outside the buffer.
        let n = bad.len();
        for b in &mut bad[n - 8..] {
            *b = 0xff;
        }
        assert!(Rkyv::<Order>::decode(Bytes::from(bad)).is_err());
        assert!(Rkyv::<Order>::decode(Bytes::from_static(&[1, 2, 3])).is_err());
    }
}
