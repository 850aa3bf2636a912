//! A synthetic load for benchmarks: the Scatter ring, where every node
//! keeps a few small messages bouncing to random peers. The simulator never
//! refers to it; it only gives benches and `shen sim bench` something to
//! drive.

use std::rc::Rc;

use rand_chacha::rand_core::RngCore;
use serde::{Deserialize, Serialize};
use shen_rings::node::Node;
use shen_rings::{Ring, RingCtx, RingId, TimerToken};

use crate::event::SimEvent;
use crate::sim::{NodeFactory, NodeInit};

/// Scatter's ring id (outside the range of the standard rings).
pub const SCATTER_RING: RingId = RingId(0x7f01);

/// Scatter's message: how many hops it has made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hop(pub u32);

/// Scatter reports nothing (the bench measures the transport, not event
/// handling).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ScatterEvent {}

impl SimEvent for ScatterEvent {
    fn name(&self) -> &'static str {
        match *self {}
    }

    fn known_names() -> Option<&'static [&'static str]> {
        Some(&[])
    }
}

/// The Scatter ring of one node.
#[derive(Clone, Debug)]
pub struct Scatter {
    nodes: u64,
    batons: u32,
}

impl Scatter {
    /// A node of a world of `nodes` nodes that launches `batons` messages at
    /// start.
    pub fn new(nodes: u64, batons: u32) -> Scatter {
        Scatter {
            nodes: nodes.max(1),
            batons,
        }
    }

    fn peer(&self, me: u64, rng: &mut dyn RngCore) -> u64 {
        let to = rng.next_u64() % self.nodes;
        if to == me && self.nodes > 1 {
            (to + 1) % self.nodes
        } else {
            to
        }
    }
}

impl Ring<u64> for Scatter {
    type Msg = Hop;
    type Event = ScatterEvent;
    const ID: RingId = SCATTER_RING;
    const NAME: &'static str = "scatter";

    fn on_start(&mut self, cx: &mut RingCtx<'_, u64, Self>) {
        for _ in 0..self.batons {
            let to = self.peer(*cx.me, cx.rng);
            cx.send(to, Hop(0));
        }
    }

    fn on_message(&mut self, cx: &mut RingCtx<'_, u64, Self>, _from: u64, msg: Hop) {
        let to = self.peer(*cx.me, cx.rng);
        cx.send(to, Hop(msg.0.wrapping_add(1)));
    }

    fn on_timer(&mut self, _cx: &mut RingCtx<'_, u64, Self>, _token: TimerToken) {}
}

/// A factory whose nodes run Scatter with `batons` messages each, in a world
/// of `nodes` nodes.
pub fn scatter_factory(nodes: u64, batons: u32) -> NodeFactory<ScatterEvent> {
    Rc::new(move |init: &NodeInit<'_>| {
        Node::new(init.id, init.incarnation).with_ring(Scatter::new(nodes, batons))
    })
}
