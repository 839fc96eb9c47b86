//! Payload codecs: how a message type travels. Any prost message with a name travels as
//! itself, under its full protobuf name.

use bytes::{Bytes, BytesMut};

/// A message type that can cross nodes: a manifest (the name it travels under, the same on
/// both nodes) and its encoding.
///
/// Implemented for every `prost::Message + prost::Name`; see `Rkyv` for rkyv archives.
pub trait RemoteMessage: Sized + Send + 'static {
    /// The name this type travels under.
    fn manifest() -> String;
    /// Appends the encoding to `buf`.
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
    fn manifest() -> String {
        T::full_name()
    }
    fn encode(&self, buf: &mut BytesMut) {
        buf.reserve(self.encoded_len());
        self.encode_raw(buf);
    }
    fn decode(payload: Bytes) -> Result<Self, CodecError> {
        <T as prost::Message>::decode(payload)
            .map_err(|e| CodecError { manifest: T::full_name(), detail: e.to_string() })
    }
}
