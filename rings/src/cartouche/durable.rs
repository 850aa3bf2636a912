//! Cartouche on a disk: the acceptor state (promised generation, highest acknowledged fencing number) made durable before any answer that rests on it leaves the node.
//!
//! # The argument
//! Mutual exclusion rests on two acceptor facts (see `cartouche`): a member
//! that acknowledged `(g, s)` never acknowledges a number `<= (g, s)` again
//! (point 1: one grant per number), and a member that promised `g` never
//! accepts a message of a generation below it (point 2). Both are promises
//! about the *future* made by a member's answers, so a member that forgot
//! them on a restart could break them. With an [`AcceptorStore`] attached,
//! Cartouche *gates its sends* (like Ouroboros with its write-ahead log):
//! every message it produces waits in the node until the next flush, and the
//! flush first stores `(promised, confirmed)` if it changed, and returns
//! only once it is durable. So a restarted member loads a state at least as
//! advanced as every answer it ever gave; to the others it is a member whose
//! messages were delayed and some lost, which the protocol tolerates.
//!
//! Point 3 (promises wait for leases) rests on the member's clock, which a
//! restart resets: a restarted member therefore refuses every promise for a
//! full `lease × (1 + 2·max_drift) + hop_latency` measured from its boot.
//! Whatever it acknowledged before the crash was acknowledged before the
//! boot, so the block it owed ends earlier than the one it keeps.
//!
//! A restarted member also does not found generation 1 again (it joins as
//! a follower and regenerates only through the ordinary loss timeout and
//! pre-vote). If the store fails, the member stops taking part (held
//! messages are dropped as a crash would drop them) until restarted.

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

use serde::{Deserialize, Serialize};

use super::Fencing;

/// What a Cartouche acceptor must not forget.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptorState {
    /// The highest generation promised.
    pub promised: u64,
    /// The highest fencing number acknowledged.
    pub confirmed: Fencing,
}

/// Where a member keeps its [`AcceptorState`]: one small record, replaced
/// as a whole.
pub trait AcceptorStore: core::fmt::Debug {
    /// The last record stored, `None` if none ever was. A record that was
    /// stored but cannot be read back must be an error, never `None`.
    fn load(&mut self) -> Result<Option<Vec<u8>>, String>;
    /// Replace the record, returning only once it is durable.
    fn store(&mut self, record: &[u8]) -> Result<(), String>;
}

/// A shared handle to the store (clones of the ring share it).
pub(super) type Store = Rc<RefCell<Box<dyn AcceptorStore>>>;

/// Record format version.
const VERSION: u8 = 1;

/// The record of `s`: a version byte, then postcard.
pub fn encode_state(s: &AcceptorState) -> Vec<u8> {
    let mut out = alloc::vec![VERSION];
    // Two integers and a pair: postcard cannot fail on them.
    out.extend(postcard::to_allocvec(s).unwrap_or_default());
    out
}

/// The state in record `r`, or why it is not one.
pub fn decode_state(r: &[u8]) -> Result<AcceptorState, String> {
    match r.split_first() {
        Some((&VERSION, rest)) => match postcard::take_from_bytes::<AcceptorState>(rest) {
            Ok((s, [])) => Ok(s),
            Ok(_) => Err("the Cartouche acceptor record has trailing bytes".into()),
            Err(e) => Err(alloc::format!(
                "the Cartouche acceptor record is damaged: {e}"
            )),
        },
        Some((v, _)) => Err(alloc::format!(
            "the Cartouche acceptor record has unknown version {v}"
        )),
        None => Err("the Cartouche acceptor record is empty".into()),
    }
}

/// An [`AcceptorStore`] in memory (tests): shared by its clones, it can
/// "lose power" (forget what was not stored) and fail on demand.
#[derive(Clone, Debug, Default)]
pub struct MemoryAcceptorStore {
    inner: Rc<RefCell<Slot>>,
}

/// The record, whether stores fail, and how many were stored.
type Slot = (Option<Vec<u8>>, bool, u64);

impl MemoryAcceptorStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Make every later `store` fail (or succeed again).
    pub fn set_failing(&self, failing: bool) {
        self.inner.borrow_mut().1 = failing;
    }

    /// How many records were stored.
    pub fn writes(&self) -> u64 {
        self.inner.borrow().2
    }
}

impl AcceptorStore for MemoryAcceptorStore {
    fn load(&mut self) -> Result<Option<Vec<u8>>, String> {
        Ok(self.inner.borrow().0.clone())
    }
    fn store(&mut self, record: &[u8]) -> Result<(), String> {
        let mut i = self.inner.borrow_mut();
        if i.1 {
            return Err("simulated storage failure".into());
        }
        i.0 = Some(record.to_vec());
        i.2 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_is_named() {
        let s = AcceptorState {
            promised: 1 << 16,
            confirmed: Fencing {
                generation: 1 << 16,
                sequence: 9,
            },
        };
        let r = encode_state(&s);
        assert_eq!(decode_state(&r), Ok(s));
        assert!(decode_state(&[]).unwrap_err().contains("empty"));
        assert!(decode_state(&[9, 0]).unwrap_err().contains("version 9"));
        let mut long = r.clone();
        long.push(0);
        assert!(decode_state(&long).unwrap_err().contains("trailing"));
        assert!(decode_state(&r[..2]).unwrap_err().contains("damaged"));
    }
}
