//! Client requests waiting for their outcome: Ouroboros events and Cartouche grants, by request number.

use std::collections::HashMap;
use std::sync::Mutex;

use shen_rings::cartouche::{CartoucheEvent, Fencing};
use shen_rings::ouroboros::OuroborosEvent;
use shen_rings::stack::ShenEvent;
use shen_transport_libp2p::PeerKey;
use tokio::sync::oneshot;

/// A client operation's outcome, as Ouroboros reported it.
pub type Outcome = OuroborosEvent<PeerKey>;

/// Client requests waiting for their Ouroboros event, by request number.
#[derive(Default)]
pub struct Waiters {
    map: Mutex<HashMap<u64, oneshot::Sender<Outcome>>>,
    /// Cartouche requests made for clients: request id → (fencing, lease end).
    tokens: Mutex<HashMap<u64, oneshot::Sender<Fencing>>>,
}

impl Waiters {
    /// Wait for request `req`'s outcome.
    pub fn register(&self, req: u64) -> oneshot::Receiver<Outcome> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut m) = self.map.lock() {
            m.insert(req, tx);
        }
        rx
    }

    /// Wait for Cartouche request `id` to be granted.
    pub fn register_token(&self, id: u64) -> oneshot::Receiver<Fencing> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut m) = self.tokens.lock() {
            m.insert(id, tx);
        }
        rx
    }

    /// Forget a token request whose caller gave up.
    pub fn forget_token(&self, id: u64) {
        if let Ok(mut m) = self.tokens.lock() {
            m.remove(&id);
        }
    }

    /// Deliver `event` to its waiter, if it is a client outcome.
    pub fn deliver(&self, event: &ShenEvent<PeerKey>) {
        if let ShenEvent::Cartouche(CartoucheEvent::Granted { id, fencing, .. }) = event {
            let tx = self.tokens.lock().ok().and_then(|mut m| m.remove(id));
            if let Some(tx) = tx {
                let _ = tx.send(*fencing);
            }
            return;
        }
        let ShenEvent::Ouroboros(ev) = event else {
            return;
        };
        let req = match ev {
            OuroborosEvent::Appended { req, .. }
            | OuroborosEvent::AppendFailed { req, .. }
            | OuroborosEvent::ReadDone { req, .. }
            | OuroborosEvent::ReadFailed { req, .. }
            | OuroborosEvent::TxnDone { req, .. } => *req,
            _ => return,
        };
        let tx = self.map.lock().ok().and_then(|mut m| m.remove(&req));
        if let Some(tx) = tx {
            let _ = tx.send(ev.clone());
        }
    }

    /// Forget a request whose caller gave up.
    pub fn forget(&self, req: u64) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(&req);
        }
    }
}
