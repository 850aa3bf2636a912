//! `shen-transport-libp2p`: drives a sans-IO [`shen_rings::Node`] over a
//! libp2p swarm on tokio, with real time.
//!
//! - Transports: TCP + Noise + Yamux and QUIC; with a pre-shared key, TCP
//!   wrapped in libp2p `pnet` only (QUIC cannot carry pnet, so it is off).
//!   QUIC is the default-on cargo feature `quic` ([`HAS_QUIC`]): libp2p-quic
//!   0.14 / libp2p-tls 0.7 hard-wire rustls' aws-lc-rs provider, so a build
//!   without it drops aws-lc-sys (a C build) and keeps ring as the only
//!   crypto library; QUIC listen addresses are then dropped with a warning.
//! - Discovery: mDNS on the LAN, Kademlia (server mode, protocol
//!   `/shen/kad/1.0.0`) bootstrapped from mDNS and `--peer` addresses,
//!   identify. Every peer that identifies itself as speaking the Shen
//!   protocol is handed to the [`Host`] ([`Host::on_peer`]), which gives it to
//!   Sundial as a join candidate: no seed list is needed.
//! - The Shen protocol is `/shen/<PROTOCOL_VERSION>` (libp2p-stream): one
//!   long-lived outbound stream per peer carrying [`frame`]s, each one
//!   postcard [`Envelope`](shen_rings::Envelope) of at most 1 MiB. A bad
//!   frame (malformed, oversized, unknown version) or a flood closes the
//!   peer's connection with a log line; the node keeps serving.
//! - Identity: a persisted ed25519 key ([`identity`]); ring node ids are
//!   [`PeerKey`]s (the `PeerId` itself, so every member id is dialable).
//!
//! Nothing here knows any ring protocol: ring-specific reactions (hand a
//! peer to Sundial, leave on shutdown) are the [`Host`]'s.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod dial;
mod driver;
pub mod frame;
pub mod identity;
mod lanes;
mod lookup;
mod peer_key;
pub mod peers;
pub mod reach;
pub mod relay;

pub use driver::{
    is_loopback, Command, Config, Handle, Host, Metrics, MetricsSnapshot, NetView, PeerConn,
    Transport, TransportError, HAS_QUIC, MAX_INBOUND_STREAMS_PER_PEER,
};
pub use libp2p;
pub use peer_key::PeerKey;

/// The Shen stream protocol name for this build's wire version.
pub fn shen_protocol() -> libp2p::StreamProtocol {
    // PROTOCOL_VERSION is a compile-time constant; the names below are the
    // only ones ever built.
    match shen_rings::wire::PROTOCOL_VERSION {
        1 => libp2p::StreamProtocol::new("/shen/1"),
        2 => libp2p::StreamProtocol::new("/shen/2"),
        _ => libp2p::StreamProtocol::new("/shen/unknown"),
    }
}

/// The Kademlia protocol name of Shen clusters (kept apart from IPFS's DHT).
pub const KAD_PROTOCOL: &str = "/shen/kad/1.0.0";
/// The identify protocol version string.
pub const IDENTIFY_VERSION: &str = "/shen/id/1.0.0";
