//! Relay: a deliberately small ring used to teach the contract and to
//! exercise drivers (the simulator's many-seed tests and its speed bench).
//!
//! The lowest member launches a baton that travels clockwise, one hop per
//! message. Each receiver reports the hop and forwards it to its successor.
//! The launcher watches for the baton's return; if a lap takes longer than
//! `lap_timeout` (the baton was lost to a crash or a dropped message) it
//! launches a fresh baton for the next lap.

use alloc::vec::Vec;
use core::time::Duration;

use serde::{Deserialize, Serialize};

use crate::contract::{NodeId, Ring, RingCtx, RingId, TimerSlot, TimerToken};
use crate::order::{Placement, RingOrder};

/// Relay's wire message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayMsg {
    /// The baton, with the hops it has made and the lap it belongs to.
    Baton {
        /// Hops made so far in this lap.
        hops: u64,
        /// Lap number (a relaunch starts a new lap).
        lap: u64,
    },
}

/// What Relay reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayEvent<I> {
    /// This node received the baton from `from`.
    Received {
        /// The sender.
        from: I,
        /// Hops made so far in the lap.
        hops: u64,
        /// The lap.
        lap: u64,
    },
    /// The launcher saw the baton complete a lap.
    LapCompleted {
        /// The lap.
        lap: u64,
        /// Hops it took.
        hops: u64,
    },
    /// The launcher gave up on the current baton and launched a new lap.
    Relaunched {
        /// The new lap.
        lap: u64,
    },
}

/// The Relay ring state of one node.
#[derive(Clone, Debug)]
pub struct Relay<I> {
    order: RingOrder<I>,
    lap_timeout: Duration,
    launch_delay: Duration,
    lap: u64,
    watchdog: TimerSlot,
}

impl<I: NodeId> Relay<I> {
    /// A relay over `members` (this node should be one of them), with a
    /// 1 s lap timeout and a 1 ms launch delay.
    pub fn new(members: impl IntoIterator<Item = I>) -> Self {
        Relay {
            order: RingOrder::with_members(Placement::ById, members),
            lap_timeout: Duration::from_secs(1),
            launch_delay: Duration::from_millis(1),
            lap: 0,
            watchdog: TimerSlot::new(),
        }
    }

    /// Change the lap timeout.
    pub fn with_lap_timeout(mut self, t: Duration) -> Self {
        self.lap_timeout = t;
        self
    }

    /// The ring order the baton follows.
    pub fn order(&self) -> &RingOrder<I> {
        &self.order
    }

    /// The current lap as known by this node.
    pub fn lap(&self) -> u64 {
        self.lap
    }

    fn is_launcher(&self, me: &I) -> bool {
        self.order.members().next() == Some(me)
    }

    fn launch(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        self.lap += 1;
        let at = cx.now + self.lap_timeout;
        self.watchdog.arm(cx, at);
        cx.send_to_successor(
            &self.order,
            RelayMsg::Baton {
                hops: 1,
                lap: self.lap,
            },
        );
    }
}

impl<I: NodeId> Ring<I> for Relay<I> {
    type Msg = RelayMsg;
    type Event = RelayEvent<I>;
    const ID: RingId = RingId::RELAY;
    const NAME: &'static str = "relay";

    fn on_start(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        if self.is_launcher(cx.me) {
            let at = cx.now + self.launch_delay;
            self.watchdog.arm(cx, at);
        }
    }

    fn on_message(&mut self, cx: &mut RingCtx<'_, I, Self>, from: I, msg: RelayMsg) {
        let RelayMsg::Baton { hops, lap } = msg;
        if lap < self.lap && self.is_launcher(cx.me) {
            return; // a baton from an abandoned lap: drop it
        }
        self.lap = self.lap.max(lap);
        cx.emit(RelayEvent::Received { from, hops, lap });
        if self.is_launcher(cx.me) {
            cx.emit(RelayEvent::LapCompleted { lap, hops });
            self.launch(cx);
        } else {
            cx.send_to_successor(
                &self.order,
                RelayMsg::Baton {
                    hops: hops + 1,
                    lap,
                },
            );
        }
    }

    fn on_timer(&mut self, cx: &mut RingCtx<'_, I, Self>, token: TimerToken) {
        if !self.watchdog.fired(token) {
            return;
        }
        if self.lap > 0 {
            cx.emit(RelayEvent::Relaunched { lap: self.lap + 1 });
        }
        self.launch(cx);
    }

    fn on_member_joined(&mut self, _cx: &mut RingCtx<'_, I, Self>, member: &I) {
        self.order.insert(member.clone());
    }

    fn on_member_failed(&mut self, cx: &mut RingCtx<'_, I, Self>, member: &I) {
        self.order.remove(member);
        if self.is_launcher(cx.me) && !self.watchdog.is_armed() {
            let at = cx.now + self.launch_delay;
            self.watchdog.arm(cx, at);
        }
    }
}

/// The members of a relay as a vector (handy in tests).
pub fn members_of<I: NodeId>(r: &Relay<I>) -> Vec<I> {
    r.order.members().cloned().collect()
}
