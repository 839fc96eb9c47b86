//! A raw QUIC peer for the hostile-input tests: its own endpoint and runtime, speaking bytes
//! (frames, envelopes, hellos) instead of going through a node.

use bytes::BytesMut;
use corelane_net::{quic_configs, RemoteConfig};
use corelane_proto::decode_envelope;
#[allow(unused_imports)]
pub use corelane_proto::frame::PREFIX_LEN;
use corelane_proto::frame::{encode_frame, encode_message, FrameDecoder};
use corelane_proto::v1::system_message::Body;
use corelane_proto::v1::{Envelope, Hello};
use corelane_proto::WIRE_VERSION;
use std::net::SocketAddr;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

/// A raw QUIC peer: its own endpoint and runtime, speaking bytes.
pub struct Raw {
    pub rt: tokio::runtime::Runtime,
    pub conn: quinn::Connection,
    _ep: quinn::Endpoint,
}

/// The address raw peers claim unless told otherwise.
pub const ME: &str = "127.0.0.1:9";

impl Raw {
    pub fn connect(to: SocketAddr) -> Raw {
        Self::try_connect(to).expect("connected")
    }

    /// Connects, or says why the node refused.
    pub fn try_connect(to: SocketAddr) -> Result<Raw, quinn::ConnectionError> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let crypto = quic_configs(&RemoteConfig::dev()).unwrap();
        let (ep, conn) = rt.block_on(async {
            let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
            ep.set_default_client_config(crypto.client);
            let conn = tokio::time::timeout(T, ep.connect(to, &crypto.server_name).unwrap()).await.unwrap();
            (ep, conn)
        });
        Ok(Raw { rt, conn: conn?, _ep: ep })
    }

    /// Opens a stream and writes `bytes` without finishing it; the stream stays open.
    pub fn open_with(&self, bytes: Vec<u8>) -> quinn::SendStream {
        self.rt.block_on(async {
            let mut s = self.conn.open_uni().await.unwrap();
            s.write_all(&bytes).await.unwrap();
            s
        })
    }

    /// Sends `bytes` on a new stream and finishes it.
    pub fn stream(&self, bytes: Vec<u8>) {
        self.rt.block_on(async {
            let mut s = self.conn.open_uni().await.unwrap();
            s.write_all(&bytes).await.unwrap();
            s.finish().unwrap();
            let _ = s.stopped().await;
        });
    }

    /// Reads envelopes from the first stream the node opens back, until `n` besides its hello.
    pub fn read(&self, n: usize) -> Vec<Envelope> {
        self.rt.block_on(async {
            let mut s = tokio::time::timeout(T, self.conn.accept_uni()).await.unwrap().unwrap();
            let mut dec = FrameDecoder::new(usize::MAX);
            let mut got = vec![];
            while got.len() < n + 1 {
                let chunk =
                    tokio::time::timeout(T, s.read_chunk(usize::MAX, true)).await.unwrap().unwrap().unwrap();
                dec.push(chunk.bytes);
                while let Some(f) = dec.next_frame().unwrap() {
                    got.push(decode_envelope(f).unwrap());
                }
            }
            got.split_off(1)
        })
    }

    /// Waits for the node to close the connection; its code.
    pub fn closed(&self) -> quinn::ConnectionError {
        self.rt.block_on(async { tokio::time::timeout(T, self.conn.closed()).await.unwrap() })
    }
}

pub fn frame(env: &Envelope) -> Vec<u8> {
    let mut b = BytesMut::new();
    encode_message(env, &mut b, usize::MAX).unwrap();
    b.to_vec()
}

pub fn hello() -> Vec<u8> {
    hello_as(ME)
}

/// A `Hello` claiming to be the node at `node`.
pub fn hello_as(node: &str) -> Vec<u8> {
    frame(&Envelope::system(
        0,
        0,
        Body::Hello(Hello { node: node.into(), version: WIRE_VERSION, incarnation: 1, addressed: 0 }),
    ))
}

pub fn raw_frame(body: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    encode_frame(body, &mut b, usize::MAX).unwrap();
    b.to_vec()
}
