//! UDP transport: one non-blocking socket per network of this node, registered with mio, and the
//! peers' addresses from the node table. Best effort by design: a datagram the kernel cannot
//! take now is dropped and counted, because every protocol message is retransmitted by the core
//! (heartbeats are periodic; protocol rounds resend on timeout).
use disklayout::NodeEntry;
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use std::io;
use std::net::SocketAddr;

/// A UDP datagram never exceeds this; a larger one is truncated by the kernel and then fails its
/// MAC, which is the right outcome.
pub const DATAGRAM_BYTES_MAX: usize = 2048;
/// How many datagrams one readiness event reads before yielding to timers (fairness bound).
const RECEIVES_PER_EVENT_MAX: usize = 256;

/// Why the transport could not start. Each says which address and why, for one clear line.
#[derive(Debug)]
pub enum TransportError {
    /// Binding this node's address on a network failed (port in use, address not on this host).
    Bind {
        network: usize,
        address: SocketAddr,
        source: io::Error,
    },
    /// Registering a socket with the event loop failed.
    Register(io::Error),
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportError::Bind {
                network,
                address,
                source,
            } if source.kind() == io::ErrorKind::AddrInUse => {
                write!(
                    f,
                    "cannot listen on {address} (network {network}): the port is in use"
                )
            }
            TransportError::Bind {
                network,
                address,
                source,
            } if source.kind() == io::ErrorKind::AddrNotAvailable => {
                write!(f, "cannot listen on {address} (network {network}): that address is not on this host")
            }
            TransportError::Bind {
                network,
                address,
                source,
            } => {
                write!(
                    f,
                    "cannot listen on {address} (network {network}): {source}"
                )
            }
            TransportError::Register(source) => {
                write!(f, "cannot register a socket with the event loop: {source}")
            }
        }
    }
}

impl std::error::Error for TransportError {}

/// Counters of what the transport could not do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportCounters {
    pub sent: u64,
    pub received: u64,
    /// The kernel refused a send (buffer full, network unreachable): the datagram is lost.
    pub send_failures: u64,
    /// A send to a node or network the node table does not have.
    pub no_route: u64,
}

/// This node's sockets and its peers' addresses.
pub struct Transport {
    sockets: Vec<UdpSocket>,
    /// `peers[node_id - 1][network]`: where that node listens on that network.
    peers: Vec<Vec<SocketAddr>>,
    first_token: usize,
    buffer: Box<[u8; DATAGRAM_BYTES_MAX]>,
    pub counters: TransportCounters,
}

impl Transport {
    /// Binds one socket per address of `own` and registers each as `Token(first_token + network)`.
    pub fn bind(
        own: &NodeEntry,
        table: &[NodeEntry],
        registry: &Registry,
        first_token: usize,
    ) -> Result<Transport, TransportError> {
        let mut sockets = Vec::with_capacity(own.addresses.len());
        for (network, address) in own.addresses.iter().enumerate() {
            let mut socket = UdpSocket::bind(*address).map_err(|source| TransportError::Bind {
                network,
                address: *address,
                source,
            })?;
            registry
                .register(
                    &mut socket,
                    Token(first_token + network),
                    Interest::READABLE,
                )
                .map_err(TransportError::Register)?;
            sockets.push(socket);
        }
        let mut peers = vec![Vec::new(); disklayout::NODE_ID_MAX as usize];
        for entry in table {
            peers[entry.node_id as usize - 1] = entry.addresses.clone();
        }
        Ok(Transport {
            sockets,
            peers,
            first_token,
            buffer: Box::new([0; DATAGRAM_BYTES_MAX]),
            counters: Default::default(),
        })
    }

    /// The network a readiness token belongs to, if it is one of ours.
    pub fn network_of(&self, token: Token) -> Option<u8> {
        let network = token.0.checked_sub(self.first_token)?;
        (network < self.sockets.len()).then_some(network as u8)
    }

    /// How many networks this node has.
    pub fn networks(&self) -> usize {
        self.sockets.len()
    }

    /// Sends one datagram to node `to` on `network`, from this node's socket on that network.
    pub fn send(&mut self, to: u8, network: u8, datagram: &[u8]) {
        let target = self
            .peers
            .get((to as usize).wrapping_sub(1))
            .and_then(|addresses| addresses.get(network as usize));
        let (Some(target), Some(socket)) = (target, self.sockets.get(network as usize)) else {
            self.counters.no_route += 1;
            return;
        };
        match socket.send_to(datagram, *target) {
            Ok(_) => self.counters.sent += 1,
            Err(_) => self.counters.send_failures += 1,
        }
    }

    /// Reads the datagrams waiting on `network`, handing each to `deliver`, until the socket is
    /// empty or the fairness bound is reached (mio is edge-triggered: the caller must call again
    /// on the next loop iteration when this returns true).
    pub fn receive(&mut self, network: u8, mut deliver: impl FnMut(&[u8], SocketAddr)) -> bool {
        let Some(socket) = self.sockets.get(network as usize) else {
            return false;
        };
        for _ in 0..RECEIVES_PER_EVENT_MAX {
            match socket.recv_from(&mut self.buffer[..]) {
                Ok((length, from)) => {
                    self.counters.received += 1;
                    deliver(&self.buffer[..length], from);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return false,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                // ICMP errors from an earlier send surface here (ECONNREFUSED): not our input.
                Err(_) => continue,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};
    use std::time::{Duration, Instant};

    fn entry(node_id: u8, addresses: Vec<SocketAddr>) -> NodeEntry {
        NodeEntry {
            node_id,
            name: format!("n{node_id}"),
            addresses,
        }
    }

    fn free_port() -> u16 {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|socket| socket.local_addr())
            .map(|a| a.port())
            .expect("port")
    }

    #[test]
    fn datagrams_reach_the_peer_on_each_network() {
        let (a0, a1, b0, b1) = (free_port(), free_port(), free_port(), free_port());
        let address = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let table = vec![
            entry(1, vec![address(a0), address(a1)]),
            entry(2, vec![address(b0), address(b1)]),
        ];
        let poll_a = Poll::new().expect("poll");
        let mut poll_b = Poll::new().expect("poll");
        let mut node_a = Transport::bind(&table[0], &table, poll_a.registry(), 10).expect("bind a");
        let mut node_b = Transport::bind(&table[1], &table, poll_b.registry(), 10).expect("bind b");
        node_a.send(2, 0, b"on network zero");
        node_a.send(2, 1, b"on network one");
        node_a.send(3, 0, b"nobody");
        assert_eq!(node_a.counters.no_route, 1);
        let mut got = Vec::new();
        let mut events = Events::with_capacity(8);
        let deadline = Instant::now() + Duration::from_secs(30);
        while got.len() < 2 && Instant::now() < deadline {
            poll_b
                .poll(&mut events, Some(Duration::from_millis(100)))
                .expect("poll");
            for event in events.iter() {
                let network = node_b.network_of(event.token()).expect("our token");
                node_b.receive(network, |bytes, from| {
                    got.push((network, bytes.to_vec(), from))
                });
            }
        }
        got.sort();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].0, got[0].1.as_slice(), got[0].2),
            (0, &b"on network zero"[..], address(a0))
        );
        assert_eq!(
            (got[1].0, got[1].1.as_slice(), got[1].2),
            (1, &b"on network one"[..], address(a1))
        );
    }

    #[test]
    fn a_port_in_use_is_named() {
        let port = free_port();
        let _holder = std::net::UdpSocket::bind(("127.0.0.1", port)).expect("hold");
        let own = entry(1, vec![SocketAddr::from(([127, 0, 0, 1], port))]);
        let poll = Poll::new().expect("poll");
        let error = Transport::bind(&own, std::slice::from_ref(&own), poll.registry(), 0)
            .err()
            .expect("in use");
        assert_eq!(
            error.to_string(),
            format!("cannot listen on 127.0.0.1:{port} (network 0): the port is in use")
        );
    }
}
