//! A minimal third transport for Shen's rings: plain UDP on tokio.
//!
//! It exists to prove the transport seam with something other than the
//! simulator and libp2p, in a couple of hundred lines. It does exactly what
//! ARCHITECTURE.md's "Write your own transport" asks:
//!
//! 1. own one [`Node`] (built by `stack::build_node`), a clock and an RNG;
//! 2. turn `NodeOutput::Send` into a datagram, `SetTimer` into an entry of a
//!    timer queue, `Event` into whatever the application wants;
//! 3. feed datagrams back with `handle_frame` and due timers with
//!    `handle_timer`, draining outputs after every call.
//!
//! Node ids are `u64`; peers' socket addresses come from a static address
//! book. A datagram is `sender id (8 bytes, LE) | envelope frame`. There is
//! no encryption or authentication: a toy for a trusted network, not for
//! production (use the libp2p transport).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use shen_rings::stack::{build_node, ShenEvent, StackConfig};
use shen_rings::sundial::Sundial;
use shen_rings::{Node, NodeOutput, Time, TimerKey};
use tokio::net::UdpSocket;
use tokio::sync::watch;

/// Largest datagram accepted.
pub const MAX_DATAGRAM: usize = 64 * 1024;

/// What one UDP node needs.
pub struct UdpNodeConfig {
    /// This node's id.
    pub id: u64,
    /// Every node's address, this one included.
    pub book: HashMap<u64, SocketAddr>,
    /// Which rings run (as in a scenario or `shen run` config).
    pub stack: StackConfig,
}

/// Counters the node publishes while it runs.
#[derive(Default, Debug)]
pub struct Observed {
    /// Sundial's live member count.
    pub live: AtomicU64,
    /// Datagrams received that could not be decoded.
    pub bad_datagrams: AtomicU64,
    /// Ring events.
    pub events: AtomicU64,
}

struct Driver {
    me: u64,
    sock: UdpSocket,
    book: HashMap<u64, SocketAddr>,
    node: Node<u64, ShenEvent<u64>>,
    rng: ChaCha8Rng,
    start: Instant,
    timers: BTreeSet<(Time, TimerKey)>,
    observed: Arc<Observed>,
}

impl Driver {
    fn now(&self) -> Time {
        Time::from_micros(self.start.elapsed().as_micros() as u64)
    }

    /// Act on every output the node produced.
    async fn drain(&mut self) {
        let outputs: Vec<_> = self.node.drain_outputs().collect();
        for o in outputs {
            match o {
                NodeOutput::Send { to, envelope } => {
                    let (Some(addr), Ok(frame)) = (self.book.get(&to), envelope.to_frame()) else {
                        continue; // unknown peer or unencodable: dropped, like a lost datagram
                    };
                    let mut dgram = self.me.to_le_bytes().to_vec();
                    dgram.extend_from_slice(&frame);
                    let _ = self.sock.send_to(&dgram, addr).await;
                }
                // Lazy cancellation is allowed: a stale timer is ignored by its ring.
                NodeOutput::SetTimer { key, at } => {
                    self.timers.insert((at, key));
                }
                NodeOutput::CancelTimer { .. } => {}
                NodeOutput::Event { .. } => {
                    self.observed.events.fetch_add(1, Ordering::Relaxed);
                }
                NodeOutput::SendFailed { .. } => {}
            }
        }
        if let Some(s) = self.node.ring::<Sundial<u64>>() {
            self.observed
                .live
                .store(s.live_count() as u64, Ordering::Relaxed);
        }
    }

    fn on_datagram(&mut self, bytes: &[u8]) {
        let now = self.now();
        let ok = bytes.len() > 8 && {
            let mut id = [0u8; 8];
            id.copy_from_slice(&bytes[..8]);
            let from = u64::from_le_bytes(id);
            self.book.contains_key(&from)
                && self
                    .node
                    .handle_frame(now, &mut self.rng, from, &bytes[8..])
                    .is_ok()
        };
        if !ok {
            self.observed.bad_datagrams.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn fire_due(&mut self) {
        let now = self.now();
        while let Some(&(at, key)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, key));
            self.node.handle_timer(now, &mut self.rng, key);
        }
    }
}

/// Bind the node's address from the book (must be run inside a tokio
/// runtime; the node is not `Send`, so use a current-thread runtime or a
/// `LocalSet`). Runs until `stop` becomes true.
pub async fn run_udp_node(
    config: UdpNodeConfig,
    observed: Arc<Observed>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let addr = *config.book.get(&config.id).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "own id not in the book")
    })?;
    let sock = UdpSocket::bind(addr).await?;
    let mut members: Vec<u64> = config.book.keys().copied().collect();
    members.sort();
    let incarnation = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        & 0xffff_ffff) as u32;
    let node = build_node(&config.stack, config.id, &members, incarnation);
    let mut d = Driver {
        me: config.id,
        sock,
        book: config.book,
        node,
        rng: ChaCha8Rng::from_os_rng(),
        start: Instant::now(),
        timers: BTreeSet::new(),
        observed,
    };
    let now = d.now();
    d.node.start(now, &mut d.rng);
    d.drain().await;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let wake = d
            .timers
            .first()
            .map(|(t, _)| d.start + Duration::from_micros(t.as_micros()))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        tokio::select! {
            r = d.sock.recv_from(&mut buf) => {
                if let Ok((n, _)) = r {
                    let bytes = buf[..n].to_vec();
                    d.on_datagram(&bytes);
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => d.fire_due(),
            _ = stop.changed() => {
                if *stop.borrow() {
                    return Ok(());
                }
            }
        }
        d.drain().await;
    }
}
