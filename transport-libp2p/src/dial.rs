//! Addresses offered when dialling a peer by id: the peer store's, and circuits through the relays we know.
//!
//! A member behind a NAT is in no Kademlia routing table (it runs in client
//! mode), so the only ways to reach it are addresses seen before (the peer
//! store) and its relay reservation. Ring traffic dials members by peer id;
//! this behaviour answers with the stored addresses and with
//! `<relay>/p2p/<relay id>/p2p-circuit/p2p/<peer>` for every reachable
//! member we know offers Circuit Relay v2 (a relay that holds no
//! reservation for the peer refuses the circuit; the next address is
//! tried). Bounded: at most [`MAX_RELAYS_KNOWN`] relays and
//! [`MAX_HINTS`] addresses per peer.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    dummy, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

/// Relays remembered for circuit addresses.
pub const MAX_RELAYS_KNOWN: usize = 8;
/// Stored addresses kept per peer for dialling.
pub const MAX_HINTS: usize = 8;
/// Peers with stored addresses.
pub const MAX_PEERS_HINTED: usize = 512;

/// The address book behaviour.
#[derive(Default)]
pub struct Hints {
    relays: BTreeMap<PeerId, Multiaddr>,
    addrs: HashMap<PeerId, VecDeque<Multiaddr>>,
}

impl Hints {
    /// Remember `addr` (a direct address) as a way to reach `peer`.
    pub fn add_addr(&mut self, peer: PeerId, addr: Multiaddr) {
        if self.addrs.len() >= MAX_PEERS_HINTED && !self.addrs.contains_key(&peer) {
            return;
        }
        let q = self.addrs.entry(peer).or_default();
        q.retain(|a| *a != addr);
        q.push_front(addr);
        q.truncate(MAX_HINTS);
    }

    /// `peer` offers Circuit Relay v2 at `addr` (a direct address).
    pub fn add_relay(&mut self, peer: PeerId, addr: Multiaddr) {
        if self.relays.len() < MAX_RELAYS_KNOWN || self.relays.contains_key(&peer) {
            self.relays.insert(peer, addr);
        }
    }

    /// `peer` no longer relays (disconnected, protocol gone).
    pub fn remove_relay(&mut self, peer: &PeerId) {
        self.relays.remove(peer);
    }

    /// The relays known, with their addresses.
    pub fn relays(&self) -> impl Iterator<Item = (&PeerId, &Multiaddr)> {
        self.relays.iter()
    }

    /// Every address to try for `peer`.
    pub fn addresses_for(&self, peer: &PeerId) -> Vec<Multiaddr> {
        let mut out: Vec<Multiaddr> = self
            .addrs
            .get(peer)
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default();
        for (relay, addr) in &self.relays {
            if relay == peer {
                continue;
            }
            out.push(circuit(addr, *relay, *peer));
        }
        out
    }
}

/// `<relay addr>/p2p/<relay>/p2p-circuit/p2p/<peer>`.
pub fn circuit(relay_addr: &Multiaddr, relay: PeerId, peer: PeerId) -> Multiaddr {
    let mut a: Multiaddr = relay_addr
        .iter()
        .filter(|p| !matches!(p, Protocol::P2p(_)))
        .collect();
    a.push(Protocol::P2p(relay));
    a.push(Protocol::P2pCircuit);
    a.push(Protocol::P2p(peer));
    a
}

impl NetworkBehaviour for Hints {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = std::convert::Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        maybe_peer: Option<PeerId>,
        _: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        Ok(maybe_peer
            .map(|p| self.addresses_for(&p))
            .unwrap_or_default())
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        ev: THandlerOutEvent<Self>,
    ) {
        match ev {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_stored_addresses_then_circuits_bounded() {
        let mut h = Hints::default();
        let (p, r1, r2) = (PeerId::random(), PeerId::random(), PeerId::random());
        for i in 0..20 {
            h.add_addr(p, format!("/ip4/10.0.0.{i}/tcp/1").parse().unwrap());
        }
        h.add_relay(r1, "/ip4/10.9.0.1/tcp/4001".parse().unwrap());
        h.add_relay(
            r2,
            format!("/ip4/10.9.0.2/tcp/4001/p2p/{r2}").parse().unwrap(),
        );
        let got = h.addresses_for(&p);
        assert_eq!(got.len(), MAX_HINTS + 2);
        assert_eq!(got[0], "/ip4/10.0.0.19/tcp/1".parse::<Multiaddr>().unwrap());
        assert!(got.contains(&circuit(&"/ip4/10.9.0.2/tcp/4001".parse().unwrap(), r2, p)));
        assert_eq!(
            circuit(&"/ip4/10.9.0.1/tcp/4001".parse().unwrap(), r1, p).to_string(),
            format!("/ip4/10.9.0.1/tcp/4001/p2p/{r1}/p2p-circuit/p2p/{p}")
        );
        // A relay is never offered as a circuit to itself.
        assert!(h
            .addresses_for(&r1)
            .iter()
            .all(|a| !a.to_string().contains("p2p-circuit/p2p/{r1}")));
        assert_eq!(h.addresses_for(&r1).len(), 1);
        for _ in 0..20 {
            h.add_relay(PeerId::random(), "/ip4/10.9.0.3/tcp/1".parse().unwrap());
        }
        assert_eq!(h.relays().count(), MAX_RELAYS_KNOWN);
    }
}
