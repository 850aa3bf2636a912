//! What the simulator needs from a node's event type.

use core::fmt::Debug;

use serde::Serialize;
use shen_rings::stack::ShenEvent;

/// A node-wide event type the simulator can host: cloneable (world
/// snapshots), serializable (the trace and its hash) and named (counting and
/// expectations).
pub trait SimEvent: Clone + Debug + Serialize + 'static {
    /// A stable dotted name (`ring.event`) used to count events.
    fn name(&self) -> &'static str;

    /// Every name [`SimEvent::name`] can return, if the type knows them;
    /// lets scenario validation reject misspelled expectations.
    fn known_names() -> Option<&'static [&'static str]> {
        None
    }
}

impl SimEvent for ShenEvent<u64> {
    fn name(&self) -> &'static str {
        ShenEvent::name(self)
    }

    fn known_names() -> Option<&'static [&'static str]> {
        Some(ShenEvent::<u64>::NAMES)
    }
}
