//! Circuit Relay v2 offered by reachable members: the bounded server configuration.
//!
//! Every node carries the relay server; libp2p enables it only once the
//! node has a confirmed external address (see [`crate::reach`]), so only
//! publicly reachable members relay and no dedicated infrastructure is
//! needed. Every resource is bounded: reservations (in all and per peer,
//! with a per-peer and per-IP rate), circuits (in all and per peer, with a
//! per-source rate), and each circuit's bytes and duration. A request past
//! a limit is refused with a status code; the relay keeps serving. A
//! circuit that hits its byte or time limit closes, and the writer dials
//! again (through the relay, or directly once hole punching succeeded).

use std::num::NonZeroU32;
use std::time::Duration;

use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::relay;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

use crate::reach::is_relayed;

/// The relay's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayLimits {
    /// Reservations held at once.
    pub max_reservations: usize,
    /// Reservations one peer may hold.
    pub max_reservations_per_peer: usize,
    /// How long a reservation lasts before it must be renewed.
    pub reservation_duration: Duration,
    /// Reservation requests one peer (and one IP, twice that) may make per minute.
    pub reservations_per_minute: u32,
    /// Circuits relayed at once.
    pub max_circuits: usize,
    /// Circuits one peer may have at once.
    pub max_circuits_per_peer: usize,
    /// Longest a circuit lives.
    pub max_circuit_duration: Duration,
    /// Most bytes a circuit carries (both directions).
    pub max_circuit_bytes: u64,
    /// Circuits one source peer (and one IP, twice that) may open per minute.
    pub circuits_per_minute: u32,
}

impl Default for RelayLimits {
    /// Sized for a cluster's own members: Shen keeps one long-lived stream
    /// per peer, so circuits live long and carry ring traffic.
    fn default() -> RelayLimits {
        RelayLimits {
            max_reservations: 64,
            max_reservations_per_peer: 2,
            reservation_duration: Duration::from_secs(15 * 60),
            reservations_per_minute: 10,
            max_circuits: 64,
            max_circuits_per_peer: 8,
            max_circuit_duration: Duration::from_secs(30 * 60),
            max_circuit_bytes: 64 << 20,
            circuits_per_minute: 30,
        }
    }
}

impl RelayLimits {
    /// The libp2p relay configuration with these bounds.
    pub fn config(&self) -> relay::Config {
        let minute = Duration::from_secs(60);
        let per = |n: u32| NonZeroU32::new(n.max(1)).expect("at least 1");
        relay::Config {
            max_reservations: self.max_reservations,
            max_reservations_per_peer: self.max_reservations_per_peer,
            reservation_duration: self.reservation_duration,
            reservation_rate_limiters: Vec::new(),
            max_circuits: self.max_circuits,
            max_circuits_per_peer: self.max_circuits_per_peer,
            max_circuit_duration: self.max_circuit_duration,
            max_circuit_bytes: self.max_circuit_bytes,
            circuit_src_rate_limiters: Vec::new(),
        }
        .reservation_rate_per_peer(per(self.reservations_per_minute), minute)
        .reservation_rate_per_ip(per(self.reservations_per_minute.saturating_mul(2)), minute)
        .circuit_src_per_peer(per(self.circuits_per_minute), minute)
        .circuit_src_per_ip(per(self.circuits_per_minute.saturating_mul(2)), minute)
    }
}

/// How a peer is connected, as `/status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConnKind {
    /// Only through a relay's circuit.
    Relayed,
    /// A direct connection (dialled or accepted).
    Direct,
    /// A direct connection obtained by DCUtR hole punching.
    Punched,
}

impl ConnKind {
    /// The word shown in `/status`.
    pub fn word(self) -> &'static str {
        match self {
            ConnKind::Relayed => "relayed",
            ConnKind::Direct => "direct",
            ConnKind::Punched => "hole-punched",
        }
    }
}

/// The relay server, blind to circuit (relayed) external addresses.
///
/// libp2p enables its relay server as soon as the swarm has any confirmed
/// external address, and a NAT'd member confirms its circuit address on
/// the relay: it would then offer relaying it cannot do. Worse, in
/// libp2p-relay 0.22 a status change notifies every connection's handler,
/// and a relayed connection's handler is a dummy that panics on any event
/// (libp2p-swarm `either.rs`: unreachable). Hiding circuit addresses keeps
/// the server disabled on NAT'd members, so its status never flips while
/// they hold relayed connections.
pub struct ReachableRelay(pub relay::Behaviour);

impl NetworkBehaviour for ReachableRelay {
    type ConnectionHandler = <relay::Behaviour as NetworkBehaviour>::ConnectionHandler;
    type ToSwarm = relay::Event;

    fn handle_pending_inbound_connection(
        &mut self,
        id: ConnectionId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.0.handle_pending_inbound_connection(id, local, remote)
    }

    fn handle_established_inbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.0
            .handle_established_inbound_connection(id, peer, local, remote)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: Option<PeerId>,
        addrs: &[Multiaddr],
        role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.0
            .handle_pending_outbound_connection(id, peer, addrs, role)
    }

    fn handle_established_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.0
            .handle_established_outbound_connection(id, peer, addr, role, port_use)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match &event {
            FromSwarm::ExternalAddrConfirmed(e) if is_relayed(e.addr) => {}
            FromSwarm::ExternalAddrExpired(e) if is_relayed(e.addr) => {}
            _ => self.0.on_swarm_event(event),
        }
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.0.on_connection_handler_event(peer, id, event)
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        self.0.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use libp2p::multiaddr::Protocol;
    use libp2p::swarm::SwarmEvent;
    use libp2p::{noise, tcp, yamux, Multiaddr, SwarmBuilder};

    /// A flood of reservation requests from more peers than the relay
    /// admits: the excess is refused, the admitted ones are served, and the
    /// relay keeps answering.
    #[tokio::test]
    async fn a_reservation_flood_is_refused_and_the_relay_keeps_serving() {
        let limits = RelayLimits {
            max_reservations: 3,
            ..RelayLimits::default()
        };
        let mut server = SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|k| relay::Behaviour::new(k.public().to_peer_id(), limits.config()))
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
            .build();
        server
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .unwrap();
        let addr = loop {
            if let SwarmEvent::NewListenAddr { address, .. } = server.select_next_some().await {
                break address;
            }
        };
        server.add_external_address(addr.clone());
        let relay_id = *server.local_peer_id();
        let circuit: Multiaddr = addr
            .clone()
            .with(Protocol::P2p(relay_id))
            .with(Protocol::P2pCircuit);
        let clients = 8;
        for _ in 0..clients {
            let mut c = SwarmBuilder::with_new_identity()
                .with_tokio()
                .with_tcp(
                    tcp::Config::default(),
                    noise::Config::new,
                    yamux::Config::default,
                )
                .unwrap()
                .with_relay_client(noise::Config::new, yamux::Config::default)
                .unwrap()
                .with_behaviour(|_, r| r)
                .unwrap()
                .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
                .build();
            c.listen_on(circuit.clone()).unwrap();
            tokio::spawn(async move {
                loop {
                    let _ = c.select_next_some().await;
                }
            });
        }
        let (mut accepted, mut denied) = (0, 0);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while accepted + denied < clients && tokio::time::Instant::now() < deadline {
            let ev = tokio::time::timeout_at(deadline, server.select_next_some()).await;
            match ev {
                Ok(SwarmEvent::Behaviour(relay::Event::ReservationReqAccepted { .. })) => {
                    accepted += 1
                }
                Ok(SwarmEvent::Behaviour(relay::Event::ReservationReqDenied { .. })) => denied += 1,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        assert_eq!(accepted, 3, "accepted {accepted}, denied {denied}");
        assert_eq!(denied, clients - 3);
    }

    #[test]
    fn default_limits_are_bounded() {
        let c = RelayLimits::default().config();
        assert!(c.max_reservations <= 64 && c.max_circuits <= 64);
        assert!(c.max_circuit_bytes <= 64 << 20);
        assert!(c.max_circuit_duration <= Duration::from_secs(3600));
        assert_eq!(c.reservation_rate_limiters.len(), 2);
        assert_eq!(c.circuit_src_rate_limiters.len(), 2);
    }
}
