//! The built-in services of one interface: echo and discard over TCP and
//! UDP, like inetd's internal ones.
//!
//! Each served service has one UDP socket and a set of TCP sockets in the
//! interface's socket set. TCP keeps exactly one *spare listener* per
//! service: when the listener takes a connection, a new listener is added,
//! so any number of clients can be served at once. A connection that ends
//! (Closed) becomes the spare listener again if the service has none left
//! (keeping its buffers), and is removed otherwise. Connections per service
//! and interface are capped ([`MAX_CONNECTIONS`]): at the cap no listener is
//! left, so further clients get a RST instead of exhausting memory, and
//! idle-dead peers are dropped by keep-alive and timeout.
//!
//! Echo moves data from a connection's receive buffer to its send buffer
//! through the stack's scratch buffer, never more than the send buffer has
//! room for, so the stream comes back byte for byte however the peer paces
//! it. When the peer closes its side and everything has been echoed, the
//! service closes too (its FIN goes after the echoed data).

use std::collections::HashMap;

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp, Socket};
use smoltcp::time::Duration;
use smoltcp::wire::{IpAddress, IpCidr, IpListenEndpoint};

use super::{ProtoCounters, ProtoError, Service, TcpState};

/// Receive and send buffer of every TCP socket (service and client): room
/// for a window that keeps a fast link busy.
pub(crate) const TCP_BUFFER: usize = 256 * 1024;
/// Most TCP sockets (connections and the spare listener) one service holds
/// on one interface.
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// A service connection whose peer is silent this long while we wait for
/// it (data unacknowledged, keep-alive unanswered) is aborted.
const SERVICE_TIMEOUT: Duration = Duration::from_secs(60);
/// Keep-alive interval of service connections.
const SERVICE_KEEPALIVE: Duration = Duration::from_secs(20);
/// Datagrams a UDP socket queues each way.
pub(crate) const UDP_PACKETS: usize = 64;
/// Payload bytes a UDP socket queues each way.
pub(crate) const UDP_BUFFER: usize = 128 * 1024;

/// The receive buffer (so the largest window) of TCP sockets on an
/// interface whose device holds only `ring_frames` full-size frames on
/// receive ([`super::Port::rx_ring_frames`]); [`TCP_BUFFER`] otherwise.
///
/// A window larger than the device can buffer lets a fast peer put more in
/// flight than the card takes: a real card drops the excess (TCP then
/// retransmits, and without SACK slowly), and QEMU's NE2000 holds it back
/// and drops most of it at once later (docs/legacy-abi.md). So the window
/// is half the ring in full segments (at least two): the other half is
/// for what else arrives meanwhile (the peer's ACKs of our data, ARP,
/// other connections; a small frame still takes a whole ring page).
pub(crate) fn tcp_rx_buffer(ring_frames: Option<u32>, mtu: usize) -> usize {
    let Some(frames) = ring_frames else {
        return TCP_BUFFER;
    };
    // IPv4 and TCP headers without options: the MSS we announce.
    let mss = mtu.saturating_sub(40).max(1);
    let segments = (frames as usize / 2).max(2);
    (segments * mss).min(TCP_BUFFER)
}

/// A TCP socket with the stack's buffer sizes, acknowledging at once.
///
/// Why no delayed ACK: with a window scale above 0 (our buffers need 2),
/// the right edge we advertise is rounded down to the scale's unit at each
/// ACK, so it can move back by a few bytes; a peer that filled the earlier
/// edge then has data beyond the new one. smoltcp 0.12 (and 0.14) computes
/// the window still open with a sequence subtraction that panics in that
/// case, and reaches it only while an ACK is being delayed
/// (`Socket::window_to_update`, after `ack_to_transmit` is false or
/// deferred). Acknowledging at once never reaches it with data
/// unacknowledged, so the subtraction cannot go negative. The lab's
/// cross-driver TCP test hit the panic in about one run in ten before.
/// The cost is an ACK per poll that received data (polls are batched).
/// The receive buffer is `rx` bytes ([`tcp_rx_buffer`]), the send buffer
/// [`TCP_BUFFER`].
pub(crate) fn tcp_socket(rx: usize) -> tcp::Socket<'static> {
    let mut s = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; rx]),
        tcp::SocketBuffer::new(vec![0; TCP_BUFFER]),
    );
    s.set_ack_delay(None);
    s
}

/// A TCP socket for a service: `rx` bytes of receive buffer, the stack's
/// send buffer, keep-alive and timeout.
fn service_listener(rx: usize) -> tcp::Socket<'static> {
    let mut s = tcp_socket(rx);
    s.set_timeout(Some(SERVICE_TIMEOUT));
    s.set_keep_alive(Some(SERVICE_KEEPALIVE));
    s
}

/// A UDP socket with the stack's buffer sizes.
pub(crate) fn udp_socket() -> udp::Socket<'static> {
    let buffer = || {
        udp::PacketBuffer::new(
            vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
            vec![0; UDP_BUFFER],
        )
    };
    udp::Socket::new(buffer(), buffer())
}

/// The service sockets of one interface.
pub(crate) struct ServiceSockets {
    /// Receive buffer of the TCP sockets ([`tcp_rx_buffer`]).
    tcp_rx: usize,
    /// Every service socket, TCP and UDP, and the service it serves.
    slots: HashMap<SocketHandle, Service>,
    /// Services installed, by `Service::index`.
    served: [bool; Service::ALL.len()],
    /// Each service's spare listener.
    ///
    /// Invariant: a handle here is in the socket set. Sockets leave the set
    /// only in `run`, which never removes the tracked listener, so
    /// `SocketSet::get` on it (which panics on a stale handle) cannot panic.
    listener: [Option<SocketHandle>; Service::ALL.len()],
    /// TCP sockets each service holds, its listener included.
    tcp_count: [usize; Service::ALL.len()],
    /// Connections found closed by the last `run` (kept to reuse its memory).
    closed: Vec<SocketHandle>,
}

impl ServiceSockets {
    /// No services yet; TCP connections get `tcp_rx` bytes of receive
    /// buffer.
    pub(crate) fn new(tcp_rx: usize) -> ServiceSockets {
        ServiceSockets {
            tcp_rx,
            slots: HashMap::new(),
            served: [false; Service::ALL.len()],
            listener: [None; Service::ALL.len()],
            tcp_count: [0; Service::ALL.len()],
            closed: Vec::new(),
        }
    }

    /// Starts serving `svc` in `sockets`; serving it twice is a no-op.
    pub(crate) fn install(
        &mut self,
        sockets: &mut SocketSet<'static>,
        svc: Service,
    ) -> Result<(), ProtoError> {
        let i = svc.index();
        if self.served[i] {
            return Ok(());
        }
        let mut udp = udp_socket();
        udp.bind(IpListenEndpoint {
            addr: None,
            port: svc.port(),
        })?;
        let mut listener = service_listener(self.tcp_rx);
        listener.listen(svc.port())?;
        self.slots.insert(sockets.add(udp), svc);
        let h = sockets.add(listener);
        self.slots.insert(h, svc);
        self.listener[i] = Some(h);
        self.tcp_count[i] = 1;
        self.served[i] = true;
        Ok(())
    }

    /// Gives every service whose listener just took a connection a new
    /// listener (below [`MAX_CONNECTIONS`]). Called after every received
    /// packet that changed a socket's state, so a burst of SYNs in one
    /// receive batch finds a listener for each: smoltcp has no listen
    /// backlog, and a SYN that finds no listener is answered with RST.
    /// Cheap: one lookup per served service.
    pub(crate) fn replenish(&mut self, sockets: &mut SocketSet<'static>) {
        for svc in Service::ALL {
            let i = svc.index();
            if !self.served[i] {
                continue;
            }
            if let Some(h) = self.listener[i] {
                // The invariant on `listener` makes this get panic-free.
                if sockets.get::<tcp::Socket>(h).is_listening() {
                    continue;
                }
                self.listener[i] = None; // it is a connection now
            }
            if self.tcp_count[i] >= MAX_CONNECTIONS {
                continue;
            }
            let mut listener = service_listener(self.tcp_rx);
            // listen fails only for port 0 or a socket already open.
            if listener.listen(svc.port()).is_ok() {
                let h = sockets.add(listener);
                self.slots.insert(h, svc);
                self.listener[i] = Some(h);
                self.tcp_count[i] += 1;
            }
        }
    }

    /// Serves every service socket once: answers datagrams, moves stream
    /// data, closes finished connections and keeps a spare listener per
    /// service. `addrs` are the interface's addresses (replies leave from
    /// the address a request came to). Returns whether anything moved (so
    /// the caller runs smoltcp's egress again).
    pub(crate) fn run(
        &mut self,
        sockets: &mut SocketSet<'static>,
        addrs: &[IpCidr],
        scratch: &mut [u8],
        counters: &mut ProtoCounters,
    ) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let mut moved = false;
        self.closed.clear();
        for (handle, socket) in sockets.iter_mut() {
            let Some(&svc) = self.slots.get(&handle) else {
                continue;
            };
            match socket {
                Socket::Tcp(s) => match s.state() {
                    TcpState::Listen => {}
                    TcpState::Closed => self.closed.push(handle),
                    _ => moved |= serve_tcp(svc, s, scratch),
                },
                Socket::Udp(s) => moved |= serve_udp(svc, s, addrs, scratch, counters),
                _ => {}
            }
        }
        for &handle in &self.closed {
            let Some(&svc) = self.slots.get(&handle) else {
                continue;
            };
            let i = svc.index();
            let tracked = self.listener[i] == Some(handle);
            if (tracked || self.listener[i].is_none()) && relisten(sockets, handle, svc.port()) {
                self.listener[i] = Some(handle);
                continue;
            }
            if tracked {
                self.listener[i] = None;
            }
            // The handle came from iterating this very set just above and
            // nothing removed it since, so `remove` (which panics on a stale
            // handle) cannot panic here.
            sockets.remove(handle);
            self.slots.remove(&handle);
            self.tcp_count[i] -= 1;
        }
        self.replenish(sockets);
        moved
    }

    /// Whether `handle` is a service socket (client helpers refuse those).
    pub(crate) fn owns(&self, handle: SocketHandle) -> bool {
        self.slots.contains_key(&handle)
    }

    /// TCP sockets (connections and the spare listener) `svc` holds.
    pub(crate) fn tcp_sockets(&self, svc: Service) -> usize {
        self.tcp_count[svc.index()]
    }
}

/// Puts a closed connection back to listening; false if it is gone or
/// refuses.
fn relisten(sockets: &mut SocketSet<'static>, handle: SocketHandle, port: u16) -> bool {
    match sockets.iter_mut().find(|(h, _)| *h == handle) {
        Some((_, Socket::Tcp(s))) => s.listen(port).is_ok(),
        _ => false,
    }
}

/// Serves one TCP connection; returns whether data moved or it was closed.
fn serve_tcp(svc: Service, s: &mut tcp::Socket<'static>, scratch: &mut [u8]) -> bool {
    let mut moved = false;
    match svc {
        Service::Echo if s.may_send() => {
            while s.can_recv() {
                let room = s.send_capacity() - s.send_queue();
                let want = room.min(scratch.len());
                if want == 0 {
                    break; // the peer is not reading; wait for acks
                }
                let n = match s.recv_slice(&mut scratch[..want]) {
                    Ok(n) if n > 0 => n,
                    _ => break,
                };
                // Cannot fall short: n <= the room measured above.
                let _ = s.send_slice(&scratch[..n]);
                moved = true;
            }
        }
        // Discard, or echo to a peer we can no longer send to: consume.
        _ => {
            while let Ok(n) = s.recv(|buf| (buf.len(), buf.len())) {
                if n == 0 {
                    break;
                }
                moved = true;
            }
        }
    }
    if s.state() == TcpState::CloseWait && s.recv_queue() == 0 {
        s.close();
        moved = true;
    }
    moved
}

/// Serves one UDP socket; returns whether any datagram was handled.
fn serve_udp(
    svc: Service,
    s: &mut udp::Socket<'static>,
    addrs: &[IpCidr],
    scratch: &mut [u8],
    counters: &mut ProtoCounters,
) -> bool {
    let mut moved = false;
    while s.can_recv() {
        let (n, meta) = match s.recv_slice(scratch) {
            Ok(got) => got,
            // Longer than the scratch buffer: smoltcp dropped it.
            Err(udp::RecvError::Truncated) => {
                counters.service_drops += 1;
                continue;
            }
            Err(udp::RecvError::Exhausted) => break,
        };
        moved = true;
        if svc != Service::Echo || !meta.endpoint.addr.is_unicast() {
            continue;
        }
        // Answer from the address the request came to, if it is one of
        // ours (not a broadcast or multicast group).
        let mut reply = udp::UdpMetadata::from(meta.endpoint);
        reply.local_address = meta.local_address.filter(|a| is_ours(addrs, a));
        if s.send_slice(&scratch[..n], reply).is_err() {
            counters.service_drops += 1;
        }
    }
    moved
}

fn is_ours(addrs: &[IpCidr], a: &IpAddress) -> bool {
    addrs.iter().any(|c| c.address() == *a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_window_fits_a_small_receive_ring() {
        // No ring limit: the stack's buffer.
        assert_eq!(tcp_rx_buffer(None, 1500), TCP_BUFFER);
        // QEMU's 32 KiB NE2000: 20 frames, 10 full segments.
        assert_eq!(tcp_rx_buffer(Some(20), 1500), 10 * 1460);
        // A 16 KiB NE2000: 9 frames, 4 segments.
        assert_eq!(tcp_rx_buffer(Some(9), 1500), 4 * 1460);
        // A smaller MTU gives smaller segments; never under two of them.
        assert_eq!(tcp_rx_buffer(Some(1), 576), 2 * 536);
        // A large ring is bounded by the stack's buffer.
        assert_eq!(tcp_rx_buffer(Some(4096), 1500), TCP_BUFFER);
        // The socket gets it as its receive buffer (its largest window).
        assert_eq!(tcp_socket(10 * 1460).recv_capacity(), 10 * 1460);
    }
}
