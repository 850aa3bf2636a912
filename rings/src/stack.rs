//! The standard ring stack: which rings a Shen node runs, their settings as
//! one serde struct, and the node-wide event type.
//!
//! Every driver (the simulator, the browser, the libp2p node) builds its
//! nodes through [`build_node`], so a scenario or config file means the same
//! thing everywhere. Each ring that lands adds a field here and a variant to
//! [`ShenEvent`].

use alloc::vec::Vec;
use core::time::Duration;

use serde::{Deserialize, Serialize};

use crate::contract::NodeId;
use crate::node::Node;
use crate::toy::{Relay, RelayEvent};

/// Settings of the Relay teaching ring.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// How long the launcher waits for a lap before relaunching, in ms.
    #[serde(default = "default_lap_timeout_ms")]
    pub lap_timeout_ms: u64,
}

fn default_lap_timeout_ms() -> u64 {
    1_000
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            lap_timeout_ms: default_lap_timeout_ms(),
        }
    }
}

/// Which rings a node runs, with their settings. A ring whose field is
/// `None` is not run.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackConfig {
    /// The Relay teaching ring.
    #[serde(default)]
    pub relay: Option<RelayConfig>,
}

impl StackConfig {
    /// True when no ring is enabled.
    pub fn is_empty(&self) -> bool {
        self.relay.is_none()
    }
}

/// Every event any standard ring can report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShenEvent<I> {
    /// From the Relay ring.
    Relay(RelayEvent<I>),
}

impl<I> ShenEvent<I> {
    /// Every name [`ShenEvent::name`] can return (lets drivers reject a
    /// misspelled event name in a scenario or filter).
    pub const NAMES: &'static [&'static str] =
        &["relay.received", "relay.lap_completed", "relay.relaunched"];

    /// A stable dotted name (`ring.event`) for counting and filtering.
    pub fn name(&self) -> &'static str {
        match self {
            ShenEvent::Relay(RelayEvent::Received { .. }) => "relay.received",
            ShenEvent::Relay(RelayEvent::LapCompleted { .. }) => "relay.lap_completed",
            ShenEvent::Relay(RelayEvent::Relaunched { .. }) => "relay.relaunched",
        }
    }
}

impl<I> From<RelayEvent<I>> for ShenEvent<I> {
    fn from(e: RelayEvent<I>) -> Self {
        ShenEvent::Relay(e)
    }
}

/// Build node `me` running the rings of `config`, knowing `members` as the
/// initial member list. `incarnation` must differ across restarts of the
/// same node.
pub fn build_node<I: NodeId>(
    config: &StackConfig,
    me: I,
    members: &[I],
    incarnation: u32,
) -> Node<I, ShenEvent<I>> {
    let mut node = Node::new(me, incarnation);
    if let Some(r) = &config.relay {
        let members: Vec<I> = members.to_vec();
        node.add_ring(
            Relay::new(members).with_lap_timeout(Duration::from_millis(r.lap_timeout_ms)),
        );
    }
    node
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_name_is_listed() {
        let all: [ShenEvent<u64>; 3] = [
            ShenEvent::Relay(RelayEvent::Received {
                from: 1,
                hops: 1,
                lap: 1,
            }),
            ShenEvent::Relay(RelayEvent::LapCompleted { lap: 1, hops: 1 }),
            ShenEvent::Relay(RelayEvent::Relaunched { lap: 1 }),
        ];
        for e in &all {
            assert!(ShenEvent::<u64>::NAMES.contains(&e.name()), "{}", e.name());
        }
        assert_eq!(all.len(), ShenEvent::<u64>::NAMES.len());
    }
}
