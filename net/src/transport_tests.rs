//! The transport over real QUIC on loopback: ordering, replies on the adopted connection,
//! dead peers, mutual TLS.

use crate::transport::{BadInput, Inbound, Transport};
use crate::{RemoteConfig, Tls, TlsPem};
use bytes::Bytes;
use corelane_proto::v1::Envelope;
use std::net::SocketAddr;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub(crate) enum Event {
    Envelope(SocketAddr, Envelope),
    Down(SocketAddr),
    Bad(Option<SocketAddr>, BadInput),
    Dropped(SocketAddr, usize),
}

pub(crate) struct Recorder(Mutex<Sender<Event>>);
impl Inbound for Recorder {
    fn hello(&self, _: corelane_proto::stream::PeerHello) {}
    fn envelope(&self, peer: SocketAddr, _: u64, env: Envelope) {
        let _ = self.0.lock().unwrap().send(Event::Envelope(peer, env));
    }
    fn peer_down(&self, peer: SocketAddr) {
        let _ = self.0.lock().unwrap().send(Event::Down(peer));
    }
    fn bad_input(&self, peer: Option<SocketAddr>, what: BadInput) {
        let _ = self.0.lock().unwrap().send(Event::Bad(peer, what));
    }
    fn dropped(&self, peer: SocketAddr, count: usize) {
        let _ = self.0.lock().unwrap().send(Event::Dropped(peer, count));
    }
}

/// Sending whole envelopes, for the tests.
trait SendEnvelope {
    fn send_env(&self, peer: SocketAddr, env: Envelope);
}
impl SendEnvelope for Transport {
    fn send_env(&self, peer: SocketAddr, env: Envelope) {
        let mut buf = bytes::BytesMut::new();
        corelane_proto::frame::encode_message(&env, &mut buf, usize::MAX).unwrap();
        self.send(peer, &buf, 0);
    }
}

pub(crate) fn node(cfg: RemoteConfig) -> (Transport, Receiver<Event>) {
    let (tx, rx) = channel();
    (Transport::start(&cfg, 1, Arc::new(Recorder(Mutex::new(tx)))).unwrap(), rx)
}

fn next_envelope(rx: &Receiver<Event>) -> (SocketAddr, Envelope) {
    match rx.recv_timeout(WAIT).expect("an envelope within the wait") {
        Event::Envelope(p, e) => (p, e),
        other => panic!("expected an envelope, got {other:?}"),
    }
}

#[test]
fn envelopes_arrive_in_order_and_replies_come_back() {
    let (a, _arx) = node(RemoteConfig::dev());
    let (b, brx) = node(RemoteConfig::dev());
    for i in 0..2000u64 {
        a.send_env(b.advertised(), Envelope::tell(i, "t", Bytes::from(i.to_le_bytes().to_vec())));
    }
    for i in 0..2000u64 {
        let (from, env) = next_envelope(&brx);
        assert_eq!(from, a.advertised());
        assert_eq!(env.target, i);
    }
    // B answers over the connection A opened.
    let (_, arx) = (&a, _arx);
    b.send_env(a.advertised(), Envelope::reply(7, "r", Bytes::new()));
    let (from, env) = next_envelope(&arx);
    assert_eq!((from, env.correlation_id), (b.advertised(), 7));
}

#[test]
fn an_unreachable_peer_is_reported_down_and_its_messages_dropped() {
    let cfg =
        RemoteConfig { connect_attempts: 2, backoff_min: Duration::from_millis(1), ..RemoteConfig::dev() };
    let (a, arx) = node(cfg);
    // A port nobody listens on: bind a UDP socket, note its port, close it.
    let gone = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    a.send_env(gone, Envelope::tell(1, "t", Bytes::new()));
    let mut down = false;
    let mut dropped = 0;
    while !(down && dropped == 1) {
        match arx.recv_timeout(WAIT).expect("down and dropped reported") {
            Event::Down(p) => down = p == gone,
            Event::Dropped(p, n) if p == gone => dropped += n,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn an_idle_close_is_not_a_loss_and_the_next_message_reconnects() {
    let idle = RemoteConfig { idle_timeout: Duration::from_millis(100), ..RemoteConfig::dev() };
    let (a, arx) = node(idle.clone());
    let (b, brx) = node(idle);
    a.send_env(b.advertised(), Envelope::tell(1, "t", Bytes::new()));
    next_envelope(&brx);
    // A closes the idle connection; neither side reports a loss (one would arrive at once).
    if let Ok(e) = arx.recv_timeout(Duration::from_millis(600)).or_else(|_| brx.try_recv()) {
        panic!("an idle close is not a loss: {e:?}");
    }
    a.send_env(b.advertised(), Envelope::tell(2, "t", Bytes::new()));
    assert_eq!(next_envelope(&brx).1.target, 2);
}

#[test]
fn a_peer_that_shuts_down_is_reported_down() {
    let (a, arx) = node(RemoteConfig::dev());
    let (b, brx) = node(RemoteConfig::dev());
    a.send_env(b.advertised(), Envelope::tell(1, "t", Bytes::new()));
    next_envelope(&brx);
    let gone = b.advertised();
    b.shutdown();
    match arx.recv_timeout(WAIT).expect("the loss is reported") {
        Event::Down(p) => assert_eq!(p, gone),
        e => panic!("unexpected {e:?}"),
    }
}

/// A CA and certificates it signs, for `localhost`.
pub(crate) struct Ca {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

impl Ca {
    pub(crate) fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self { pem: cert.pem(), issuer: rcgen::Issuer::new(params, key) }
    }

    pub(crate) fn node_tls(&self, mutual: bool) -> Tls {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Tls::Pem(TlsPem {
            cert_chain: cert.pem(),
            key: key.serialize_pem(),
            ca: self.pem.clone(),
            mutual,
            server_name: "localhost".into(),
        })
    }
}

#[test]
fn pem_files_are_read_and_used() {
    let ca = Ca::new();
    let Tls::Pem(pem) = ca.node_tls(true) else { unreachable!() };
    let dir = std::env::temp_dir().join(format!("corelane-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (c, k, a) = (dir.join("node.pem"), dir.join("node.key"), dir.join("ca.pem"));
    std::fs::write(&c, &pem.cert_chain).unwrap();
    std::fs::write(&k, &pem.key).unwrap();
    std::fs::write(&a, &pem.ca).unwrap();
    let from_files = TlsPem::from_files(&c, &k, &a, true).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let (server, srx) = node(RemoteConfig { tls: Tls::Pem(from_files), ..RemoteConfig::dev() });
    let (client, _crx) = node(RemoteConfig { tls: ca.node_tls(true), ..RemoteConfig::dev() });
    client.send_env(server.advertised(), Envelope::tell(3, "t", Bytes::new()));
    assert_eq!(next_envelope(&srx).1.target, 3);
    // A missing file is an error that names it.
    let missing = TlsPem::from_files(&c, &k, &a, true).unwrap_err();
    assert!(missing.to_string().contains("node.pem"), "{missing}");
}

#[test]
fn mutual_tls_accepts_a_ca_signed_peer_and_rejects_others() {
    let ca = Ca::new();
    let quick = |tls| RemoteConfig { tls, connect_attempts: 1, ..RemoteConfig::dev() };
    let (server, srx) = node(quick(ca.node_tls(true)));
    let (good, _grx) = node(quick(ca.node_tls(true)));
    good.send_env(server.advertised(), Envelope::tell(1, "t", Bytes::new()));
    assert_eq!(next_envelope(&srx).0, good.advertised());

    // Signed by another CA; and no client certificate at all (dev mode).
    let other = Ca::new();
    for tls in [other.node_tls(true), Tls::DevSelfSigned] {
        let (bad, brx) = node(quick(tls));
        bad.send_env(server.advertised(), Envelope::tell(2, "t", Bytes::new()));
        match brx.recv_timeout(WAIT).expect("the rejected peer hears of it") {
            // TLS 1.3: the client may finish its side of the handshake before the server
            // refuses its certificate, so it hears of the refusal either way.
            Event::Dropped(..) | Event::Down(_) => {}
            e => panic!("unexpected {e:?}"),
        }
        assert!(srx.try_recv().is_err(), "nothing from an unauthenticated peer reached the server");
    }
}

#[test]
fn under_mutual_tls_a_node_address_belongs_to_the_certificate_first_seen_for_it() {
    let ca = Ca::new();
    let quick = |tls| RemoteConfig { tls, connect_attempts: 1, ..RemoteConfig::dev() };
    let (server, srx) = node(quick(ca.node_tls(true)));
    let (a, _arx) = node(quick(ca.node_tls(true)));
    a.send_env(server.advertised(), Envelope::tell(1, "t", Bytes::new()));
    assert_eq!(next_envelope(&srx).0, a.advertised());
    // Another certificate of the same CA claims to be `a`: refused, and nothing it sends lands.
    let other = RemoteConfig { tls: ca.node_tls(true), ..RemoteConfig::dev() };
    let mut claim = hello_from(a.advertised());
    claim.extend(frame(&prost::Message::encode_to_vec(&Envelope::tell(2, "t", Bytes::new()))));
    raw_streams_with(&other, server.advertised(), vec![claim]);
    assert_eq!(next_bad(&srx), (Some(a.advertised()), BadInput::Identity));
    // `a` itself still gets through.
    a.send_env(server.advertised(), Envelope::tell(3, "t", Bytes::new()));
    assert_eq!(next_envelope(&srx).1.target, 3);
}

/// Raw bytes on a fresh connection to `to`, each item one uni stream (finished after it).
fn raw_streams(to: SocketAddr, streams: Vec<Vec<u8>>) {
    raw_streams_with(&RemoteConfig::dev(), to, streams)
}

/// As `raw_streams`, with the TLS of `cfg`.
fn raw_streams_with(cfg: &RemoteConfig, to: SocketAddr, streams: Vec<Vec<u8>>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let crypto = crate::quic_configs(cfg).unwrap();
        let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        ep.set_default_client_config(crypto.client);
        let conn = ep.connect(to, "localhost").unwrap().await.unwrap();
        for bytes in streams {
            let mut s = conn.open_uni().await.unwrap();
            s.write_all(&bytes).await.unwrap();
            s.finish().unwrap();
            let _ = s.stopped().await;
        }
        conn.close(0u32.into(), b"");
        ep.wait_idle().await;
    });
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    corelane_proto::frame::encode_frame(body, &mut out, usize::MAX).unwrap();
    out.to_vec()
}

fn hello_from(addr: SocketAddr) -> Vec<u8> {
    use corelane_proto::v1::{system_message::Body, Hello};
    use prost::Message;
    let h = Envelope::system(
        0,
        0,
        Body::Hello(Hello {
            node: addr.to_string(),
            version: corelane_proto::WIRE_VERSION,
            incarnation: 1,
            addressed: 0,
        }),
    );
    frame(&h.encode_to_vec())
}

/// The next report of bad input, skipping the loss reports of the raw clients' closes.
fn next_bad(rx: &Receiver<Event>) -> (Option<SocketAddr>, BadInput) {
    loop {
        match rx.recv_timeout(WAIT).expect("a report within the wait") {
            Event::Bad(p, what) => return (p, what),
            Event::Down(_) => {}
            e => panic!("expected bad input, got {e:?}"),
        }
    }
}

#[test]
fn bad_input_is_reported_and_costs_at_most_its_connection() {
    use corelane_proto::frame::FrameError;
    use prost::Message;
    let (b, brx) = node(RemoteConfig { max_frame: 1024, ..RemoteConfig::dev() });
    let me: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let good = frame(&Envelope::tell(5, "t", Bytes::new()).encode_to_vec());

    // Garbage in a frame after hello: skipped, the next frame arrives.
    let mut s = hello_from(me);
    s.extend(frame(&[0xff; 12]));
    s.extend(&good);
    // A stream cut inside a frame: that frame is lost.
    let mut cut = hello_from(me);
    cut.extend(&good[..good.len() - 1]);
    raw_streams(b.advertised(), vec![s, cut]);
    assert!(matches!(next_bad(&brx), (Some(p), BadInput::Envelope(_)) if p == me));
    assert!(matches!(next_envelope(&brx), (p, e) if p == me && e.target == 5));
    match next_bad(&brx) {
        (Some(p), BadInput::Frame(FrameError::Truncated { .. })) => assert_eq!(p, me),
        e => panic!("unexpected {e:?}"),
    }

    // No hello; and an oversized frame: each closes its connection.
    raw_streams(b.advertised(), vec![good.clone()]);
    assert_eq!(next_bad(&brx), (None, BadInput::NoHello));
    let mut big = hello_from(me);
    big.extend(frame(&[0; 2000]));
    raw_streams(b.advertised(), vec![big]);
    assert_eq!(next_bad(&brx), (Some(me), BadInput::Frame(FrameError::Oversized { len: 2000, max: 1024 })));

    // The node still serves everyone else.
    let (a, _arx) = node(RemoteConfig::dev());
    a.send_env(b.advertised(), Envelope::tell(6, "t", Bytes::new()));
    loop {
        match brx.recv_timeout(WAIT).expect("the good peer's envelope") {
            Event::Envelope(p, e) => break assert_eq!((p, e.target), (a.advertised(), 6)),
            Event::Down(_) => {}
            e => panic!("unexpected {e:?}"),
        }
    }
}
