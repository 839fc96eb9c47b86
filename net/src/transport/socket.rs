//! The UDP socket a node's endpoint binds, with buffers sized for bursts.
//!
//! Datagrams wait in the socket's receive buffer until the net thread reads them. Linux gives a
//! socket 208 KiB by default (`net.core.rmem_default`): about 150 full-size QUIC packets, under
//! a millisecond of a sender's stream at 2 Gbit/s. A burst that arrives while the net thread is
//! busy elsewhere overflows it, the kernel drops datagrams, and QUIC, reading the loss as
//! congestion, cuts its sending rate each time (measured on loopback with the default: 0.8 %
//! of packets lost, 39 congestion events and a congestion window of 250 KB in 2 M tells; see
//! `docs/benchmarks.md`). So the node asks for [`RemoteConfig::socket_buffer`] bytes each way;
//! the kernel grants at most `net.core.rmem_max` / `net.core.wmem_max`, and a smaller grant is
//! warned about at start with the setting that raises it.

use crate::config::RemoteConfig;
use quinn::udp::{UdpSockRef, UdpSocketState};
use std::io;
use std::net::{SocketAddr, UdpSocket};

/// What the kernel granted of the buffers asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketBuffers {
    /// Bytes asked for each way.
    pub asked: usize,
    /// Receive buffer granted (bytes a peer's datagrams may occupy before the kernel drops).
    pub receive: usize,
    /// Send buffer granted.
    pub send: usize,
}

impl SocketBuffers {
    /// Whether the kernel granted less than asked either way.
    pub fn short(&self) -> bool {
        self.receive < self.asked || self.send < self.asked
    }
}

/// A UDP socket bound to `cfg.bind` with the buffers `cfg.socket_buffer` asks for, as far as
/// the kernel grants them, as every node binds it; and what was granted. For tools that speak
/// QUIC next to nodes, such as the perf harness's raw baseline, so they measure the same
/// transport (with [`quic_configs`](crate::quic_configs)).
///
/// # Errors
/// The address cannot be bound, or the socket refuses its options.
pub fn udp_socket(cfg: &RemoteConfig) -> io::Result<(UdpSocket, SocketBuffers)> {
    bind(cfg.bind, cfg.socket_buffer)
}

/// A UDP socket bound to `addr` with buffers of `asked` bytes each way, as far as granted.
pub(super) fn bind(addr: SocketAddr, asked: usize) -> io::Result<(UdpSocket, SocketBuffers)> {
    let socket = UdpSocket::bind(addr)?;
    let state = UdpSocketState::new(UdpSockRef::from(&socket))?;
    // A refusal leaves the default; what the kernel holds is read back either way.
    let _ = state.set_recv_buffer_size(UdpSockRef::from(&socket), asked);
    let _ = state.set_send_buffer_size(UdpSockRef::from(&socket), asked);
    let receive = granted(state.recv_buffer_size(UdpSockRef::from(&socket))?);
    let send = granted(state.send_buffer_size(UdpSockRef::from(&socket))?);
    Ok((socket, SocketBuffers { asked, receive, send }))
}

/// The size a socket option reads back as, in the bytes that were set: Linux doubles what it
/// grants (the other half is its bookkeeping) and reports the double.
fn granted(read: usize) -> usize {
    if cfg!(target_os = "linux") {
        read / 2
    } else {
        read
    }
}

/// Says, once at start, that the kernel granted less than asked, and how to raise its limit.
pub(crate) fn warn_if_short(b: &SocketBuffers) {
    if b.short() {
        tracing::warn!(
            "UDP socket buffers: asked {} bytes each way, the kernel granted {} to receive and {} \
             to send; bursts beyond them are dropped and resent at a lower rate. Raise the limit \
             with `sysctl -w net.core.rmem_max={asked} net.core.wmem_max={asked}` (or set \
             RemoteConfig::socket_buffer lower to silence this).",
            b.asked,
            b.receive,
            b.send,
            asked = b.asked,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_gets_the_buffers_asked_for_within_the_kernels_limit() {
        let small = RemoteConfig { socket_buffer: 256 << 10, ..RemoteConfig::default() };
        let (s, b) = udp_socket(&small).unwrap();
        assert!(s.local_addr().unwrap().ip().is_loopback());
        // What is read back is what was set, or the kernel's limit if that is lower.
        let limit = |f: &str| std::fs::read_to_string(f).ok().and_then(|s| s.trim().parse::<usize>().ok());
        if let (Some(r), Some(w)) =
            (limit("/proc/sys/net/core/rmem_max"), limit("/proc/sys/net/core/wmem_max"))
        {
            assert_eq!(b.receive, b.asked.min(r), "{b:?}");
            assert_eq!(b.send, b.asked.min(w), "{b:?}");
            assert_eq!(b.short(), b.asked > r || b.asked > w);
        }
        // Asking more than any kernel grants is short, and says so.
        let huge = RemoteConfig { socket_buffer: i32::MAX as usize, ..RemoteConfig::default() };
        let (_, b) = udp_socket(&huge).unwrap();
        assert!(b.short() && b.receive < b.asked, "{b:?}");
    }
}
