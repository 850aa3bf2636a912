//! Reachability: what AutoNAT v2 confirmed about this node, and what follows (Kademlia mode, relay reservations).
//!
//! Addresses are *candidates* until confirmed: identify reports the
//! addresses peers observe us at, AutoNAT v2 asks another member to dial
//! one back, and only a dial-back that succeeded makes it an external
//! (advertised) address. A relayed circuit address obtained through a
//! reservation is reachable by construction and is advertised too, but
//! does not make the node *public*.
//!
//! An inbound direct connection from another IP to a listen address also
//! confirms it (AutoNAT v2 asks only over connections the node dialled, so
//! a lone public member that dials no one is confirmed this way).
//!
//! - `Public`: some direct address was confirmed. Kademlia runs in server
//!   mode (this node's addresses in other peers' routing tables work) and
//!   the node offers Circuit Relay v2 (libp2p's relay enables itself once
//!   it has a confirmed external address).
//! - `Private`: probes failed and none succeeded. Kademlia runs in client
//!   mode (rust-libp2p #4074: an unreachable server poisons routing
//!   tables) and the node reserves a relay slot on up to
//!   [`MAX_RELAYS`] public members.
//! - `Unknown`: nothing tested yet; treated as private for Kademlia.
//!
//! A cluster on loopback only is `Local`: its listen addresses are its
//! external addresses and it is a Kademlia server (tests, `shen up`).

use std::collections::BTreeSet;

use libp2p::multiaddr::Protocol;
use libp2p::{kad, Multiaddr};

/// Relays an unreachable node reserves a slot on.
pub const MAX_RELAYS: usize = 2;

/// This node's reachability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reachability {
    /// Not tested yet.
    Unknown,
    /// A direct address was confirmed by a dial-back.
    Public,
    /// Dial-backs failed; reachable only through relays.
    Private,
    /// Loopback only: every listen address is external.
    Local,
}

impl Reachability {
    /// The word shown in `/status`.
    pub fn word(self) -> &'static str {
        match self {
            Reachability::Unknown => "unknown",
            Reachability::Public => "public",
            Reachability::Private => "private",
            Reachability::Local => "local",
        }
    }

    /// The Kademlia mode this reachability calls for.
    pub fn kad_mode(self) -> kad::Mode {
        match self {
            Reachability::Public | Reachability::Local => kad::Mode::Server,
            Reachability::Unknown | Reachability::Private => kad::Mode::Client,
        }
    }

    /// Whether this node should hold relay reservations.
    pub fn wants_relay(self) -> bool {
        matches!(self, Reachability::Private | Reachability::Unknown)
    }
}

/// Whether `addr` goes through a relay.
pub fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| p == Protocol::P2pCircuit)
}

/// Whether `addr` is a circuit address through `relay`
/// (`…/p2p/RELAY/p2p-circuit…`).
pub fn relayed_via(addr: &Multiaddr, relay: &libp2p::PeerId) -> bool {
    let mut prev = None;
    for p in addr.iter() {
        if p == Protocol::P2pCircuit {
            return matches!(prev, Some(Protocol::P2p(id)) if id == *relay);
        }
        prev = Some(p);
    }
    false
}

/// Whether a connection goes through a relay. An inbound circuit's
/// remote (send-back) address is only `/p2p/<source>`: the circuit shows
/// in its local address (`<relay>/p2p-circuit`), so both ends are checked.
pub fn is_relayed_endpoint(endpoint: &libp2p::core::ConnectedPoint) -> bool {
    match endpoint {
        libp2p::core::ConnectedPoint::Dialer { address, .. } => is_relayed(address),
        libp2p::core::ConnectedPoint::Listener {
            local_addr,
            send_back_addr,
        } => is_relayed(local_addr) || is_relayed(send_back_addr),
    }
}

/// What the probes said, folded into a [`Reachability`].
#[derive(Debug, Default)]
pub struct Reach {
    local: bool,
    confirmed: BTreeSet<Multiaddr>,
    failed: BTreeSet<Multiaddr>,
}

impl Reach {
    /// A fresh state; `local` for a loopback-only node.
    pub fn new(local: bool) -> Reach {
        Reach {
            local,
            ..Reach::default()
        }
    }

    /// A dial-back to `addr` succeeded (relayed addresses are ignored).
    pub fn confirmed(&mut self, addr: Multiaddr) {
        if !is_relayed(&addr) {
            self.failed.remove(&addr);
            self.confirmed.insert(addr);
        }
    }

    /// A dial-back to `addr` failed.
    pub fn failed(&mut self, addr: Multiaddr) {
        if !is_relayed(&addr) && !self.confirmed.contains(&addr) {
            self.failed.insert(addr);
        }
    }

    /// `addr` is no longer an external address (listener gone, expired).
    pub fn expired(&mut self, addr: &Multiaddr) {
        self.confirmed.remove(addr);
    }

    /// The current verdict.
    pub fn get(&self) -> Reachability {
        if self.local {
            Reachability::Local
        } else if !self.confirmed.is_empty() {
            Reachability::Public
        } else if !self.failed.is_empty() {
            Reachability::Private
        } else {
            Reachability::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn relayed_via_names_the_relay_before_the_circuit() {
        let relay = libp2p::PeerId::random();
        let other = libp2p::PeerId::random();
        let me = libp2p::PeerId::random();
        let cases: Vec<(String, bool)> = vec![
            (
                format!("/ip4/10.0.0.1/tcp/4001/p2p/{relay}/p2p-circuit"),
                true,
            ),
            (
                format!("/ip4/10.0.0.1/tcp/4001/p2p/{relay}/p2p-circuit/p2p/{me}"),
                true,
            ),
            (
                format!("/ip4/10.0.0.1/tcp/4001/p2p/{other}/p2p-circuit/p2p/{relay}"),
                false,
            ),
            (format!("/ip4/10.0.0.1/tcp/4001/p2p/{relay}"), false),
            ("/ip4/10.0.0.1/tcp/4001/p2p-circuit".to_string(), false),
        ];
        for (a, want) in cases {
            let addr: Multiaddr = a.parse().unwrap();
            assert_eq!(super::relayed_via(&addr, &relay), want, "{a}");
        }
    }

    use super::*;

    fn a(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_inbound_circuit_is_relayed_though_its_remote_address_is_bare() {
        use libp2p::core::{ConnectedPoint, Endpoint};
        let relay = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
        let src = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo";
        // What the relay client reports on the destination side.
        let inbound = ConnectedPoint::Listener {
            local_addr: a(&format!("/ip4/192.0.2.9/tcp/1/p2p/{relay}/p2p-circuit")),
            send_back_addr: a(&format!("/p2p/{src}")),
        };
        assert!(is_relayed_endpoint(&inbound));
        let outbound = ConnectedPoint::Dialer {
            address: a(&format!(
                "/ip4/192.0.2.9/tcp/1/p2p/{relay}/p2p-circuit/p2p/{src}"
            )),
            role_override: Endpoint::Dialer,
            port_use: libp2p::core::transport::PortUse::Reuse,
        };
        assert!(is_relayed_endpoint(&outbound));
        let direct = ConnectedPoint::Listener {
            local_addr: a("/ip4/192.0.2.9/tcp/4001"),
            send_back_addr: a("/ip4/192.0.2.7/tcp/50000"),
        };
        assert!(!is_relayed_endpoint(&direct));
    }

    #[test]
    fn kademlia_mode_follows_confirmed_reachability() {
        let mut r = Reach::new(false);
        assert_eq!(r.get(), Reachability::Unknown);
        assert_eq!(r.get().kad_mode(), kad::Mode::Client);
        r.failed(a("/ip4/192.0.2.1/tcp/4001"));
        assert_eq!(r.get(), Reachability::Private);
        assert_eq!(r.get().kad_mode(), kad::Mode::Client);
        assert!(r.get().wants_relay());
        // A relayed address never makes a node public.
        r.confirmed(a(
            "/ip4/192.0.2.9/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit",
        ));
        assert_eq!(r.get(), Reachability::Private);
        r.confirmed(a("/ip4/192.0.2.1/tcp/4001"));
        assert_eq!(r.get(), Reachability::Public);
        assert_eq!(r.get().kad_mode(), kad::Mode::Server);
        assert!(!r.get().wants_relay());
        // A later failure of a confirmed address does not undo it; expiry
        // does (back to untested until the next probe).
        r.failed(a("/ip4/192.0.2.1/tcp/4001"));
        assert_eq!(r.get(), Reachability::Public);
        r.expired(&a("/ip4/192.0.2.1/tcp/4001"));
        assert_eq!(r.get(), Reachability::Unknown);
        r.failed(a("/ip4/192.0.2.1/tcp/4001"));
        assert_eq!(r.get(), Reachability::Private);
        assert_eq!(Reach::new(true).get().kad_mode(), kad::Mode::Server);
    }
}
