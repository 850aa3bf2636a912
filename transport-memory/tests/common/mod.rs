//! A probe ring for the simulator's tests: pings on command, reports what it
//! receives, optionally ticks on a timer, and keeps a disk handle.
#![allow(dead_code)]

use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shen_rings::node::Node;
use shen_rings::{Ring, RingCtx, RingId, Time, TimerSlot, TimerToken};
use shen_transport_memory::{
    NetConfig, NodeFactory, NodeInit, Sim, SimConfig, SimDisk, SimEvent, TraceKind, TraceMode,
};

pub const PROBE: RingId = RingId(0x7e00);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProbeMsg {
    Ping(u64),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum ProbeEvent {
    Got {
        from: u64,
        n: u64,
    },
    Tick {
        local_us: u64,
    },
    Booted {
        a: Option<Vec<u8>>,
        b: Option<Vec<u8>>,
    },
}

impl SimEvent for ProbeEvent {
    fn name(&self) -> &'static str {
        match self {
            ProbeEvent::Got { .. } => "probe.got",
            ProbeEvent::Tick { .. } => "probe.tick",
            ProbeEvent::Booted { .. } => "probe.booted",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Probe {
    pub disk: SimDisk,
    pub tick: Option<Duration>,
    pub slot: TimerSlot,
    pub booted_with: (Option<Vec<u8>>, Option<Vec<u8>>),
}

impl Probe {
    pub fn ping(&mut self, cx: &mut RingCtx<'_, u64, Self>, to: u64, n: u64) {
        cx.send(to, ProbeMsg::Ping(n));
    }
}

impl Ring<u64> for Probe {
    type Msg = ProbeMsg;
    type Event = ProbeEvent;
    const ID: RingId = PROBE;
    const NAME: &'static str = "probe";

    fn on_start(&mut self, cx: &mut RingCtx<'_, u64, Self>) {
        cx.emit(ProbeEvent::Booted {
            a: self.booted_with.0.clone(),
            b: self.booted_with.1.clone(),
        });
        if let Some(t) = self.tick {
            let at = cx.now + t;
            self.slot.arm(cx, at);
        }
    }

    fn on_message(&mut self, cx: &mut RingCtx<'_, u64, Self>, from: u64, msg: ProbeMsg) {
        let ProbeMsg::Ping(n) = msg;
        cx.emit(ProbeEvent::Got { from, n });
    }

    fn on_timer(&mut self, cx: &mut RingCtx<'_, u64, Self>, token: TimerToken) {
        if !self.slot.fired(token) {
            return;
        }
        cx.emit(ProbeEvent::Tick {
            local_us: cx.now.as_micros(),
        });
        if let Some(t) = self.tick {
            let at = cx.now + t;
            self.slot.arm(cx, at);
        }
    }
}

/// Nodes run the probe (except those in `bare`, which run no ring); with
/// `tick`, each node's probe ticks at that period of its local clock.
pub fn probe_factory(tick: Option<Duration>, bare: &'static [u64]) -> NodeFactory<ProbeEvent> {
    Rc::new(move |init: &NodeInit<'_>| {
        let node = Node::new(init.id, init.incarnation);
        if bare.contains(&init.id) {
            return node;
        }
        node.with_ring(Probe {
            disk: init.disk.clone(),
            tick,
            slot: TimerSlot::new(),
            booted_with: (init.disk.read("a"), init.disk.read("b")),
        })
    })
}

pub fn probe_world(nodes: u64, net: NetConfig, tick: Option<Duration>) -> Sim<ProbeEvent> {
    probe_world_with(nodes, net, tick, &[], 1)
}

pub fn probe_world_with(
    nodes: u64,
    net: NetConfig,
    tick: Option<Duration>,
    bare: &'static [u64],
    seed: u64,
) -> Sim<ProbeEvent> {
    Sim::new(
        SimConfig {
            seed,
            nodes,
            network: net,
            trace: TraceMode::Full,
        },
        probe_factory(tick, bare),
    )
    .expect("valid config")
}

/// Node `from` pings `to` with `n`.
pub fn ping(sim: &mut Sim<ProbeEvent>, from: u64, to: u64, n: u64) {
    sim.command::<Probe, _>(from, |p, cx| p.ping(cx, to, n))
        .expect("node exists and is up")
        .expect("node runs the probe");
}

/// The pings node `to` received, as `(time, from, n)`.
pub fn received(sim: &Sim<ProbeEvent>, to: u64) -> Vec<(Time, u64, u64)> {
    sim.trace()
        .entries()
        .filter_map(|e| match &e.kind {
            TraceKind::Event {
                node,
                event: ProbeEvent::Got { from, n },
                ..
            } if *node == to => Some((e.at, *from, *n)),
            _ => None,
        })
        .collect()
}

/// The local times at which node `node` ticked, with the virtual time.
pub fn ticks(sim: &Sim<ProbeEvent>, node: u64) -> Vec<(Time, u64)> {
    sim.trace()
        .entries()
        .filter_map(|e| match &e.kind {
            TraceKind::Event {
                node: n,
                event: ProbeEvent::Tick { local_us },
                ..
            } if *n == node => Some((e.at, *local_us)),
            _ => None,
        })
        .collect()
}

pub fn fixed(ms: f64) -> NetConfig {
    NetConfig {
        latency: shen_transport_memory::Latency::Fixed(ms),
        ..NetConfig::default()
    }
}
