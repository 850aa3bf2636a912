//! The composition point: one [`Node`] hosts several rings and routes each
//! incoming [`Envelope`] to the ring it names, so a transport drives exactly
//! one state machine per node.
//!
//! The node erases each ring's message type at its edge: outgoing messages
//! leave as envelopes (already postcard-encoded), timers as [`TimerKey`]s
//! (ring id + token), events as the node's event type `E` (each ring's event
//! converts `Into<E>`).
//!
//! # Held sends (group commit)
//! For a ring that *gates its sends*, the node holds every message the ring
//! produces until [`Node::flush`]. The driver calls it whenever
//! [`Node::needs_flush`] is true, after taking the input that is already
//! waiting (so one flush, one fsync, covers many inputs); the ring makes its
//! state durable in `on_flush`, then the held messages leave, or are dropped
//! if the write failed (as a crash would drop them).
//!
//! # The reactor
//! A [`Reactor`] is a plain function called with every event a ring emits,
//! inside the same step, that may run commands on other rings. The standard
//! stack (`crate::stack`) installs one: Sundial's live members feed
//! Ouroboros; Ouroboros' `WantsReconfig` requests the Cartouche token; the
//! grant's fencing number becomes the configuration round's ballot; the
//! round's end releases the grant. Drivers see nothing of this.
//!
//! # Driving a node (writing a transport)
//! Three transports do it: the simulator (`shen-transport-memory`), libp2p
//! (`shen-transport-libp2p`) and a ~200-line UDP example
//! (`examples/udp-transport`, the one to read first). The recipe:
//!
//! 1. **Ids.** Pick a `NodeId` whose `stable_bytes` are the same everywhere
//!    and forever for a node: placement hashes them.
//! 2. **Build.** `stack::build_node(&stack_config, me, &members, incarnation)`,
//!    never hand-picked rings, so a config means the same thing in every
//!    driver. The incarnation must change across restarts (a counter on disk).
//! 3. **Clock.** `Time` is µs since the driver's epoch, from a monotonic
//!    clock, never wall-clock time.
//! 4. **Loop.** [`Node::start`], then forever the first of: a frame
//!    ([`Node::handle_frame`]; an error is the peer's fault: drop or
//!    disconnect, never panic), the earliest timer ([`Node::handle_timer`]),
//!    a membership hook, a local command ([`Node::command`]). After each,
//!    drain [`Node::drain_outputs`] in order: `Send` → encode with
//!    `Envelope::to_frame` and ship it (dropping is allowed: rings expect
//!    loss); `SetTimer` → remember `(at, key)`; `CancelTimer` → forget or
//!    ignore; `Event` → the application. Then flush while `needs_flush()`.
//! 5. **Discovery.** Rings do not find peers: hand every peer you learn of to
//!    Sundial (`Sundial::add_seed` through `Node::command`); on shutdown call
//!    `Sundial::leave` and keep running a moment so the leave is sent.
//! 6. **Framing.** Datagrams carry one envelope; streams need a length prefix
//!    and must enforce `MAX_FRAME_BYTES` before buffering.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::any::Any;

use rand_core::RngCore;

use crate::contract::{Ctx, NodeId, Output, Ring, RingId, Time, TimerToken, TokenSource};
use crate::wire::{Envelope, WireError};

/// A timer armed by one of the node's rings, as the driver sees it.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct TimerKey {
    /// The ring that armed it.
    pub ring: RingId,
    /// The ring's token.
    pub token: TimerToken,
}

/// What a node asks its transport to do, or reports.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeOutput<I, E> {
    /// Send this envelope to `to`.
    Send {
        /// Destination.
        to: I,
        /// The encoded message.
        envelope: Envelope,
    },
    /// Fire [`Node::handle_timer`] with `key` at `at`.
    SetTimer {
        /// The timer.
        key: TimerKey,
        /// When.
        at: Time,
    },
    /// The timer `key` is no longer needed.
    CancelTimer {
        /// The timer.
        key: TimerKey,
    },
    /// An observable event from ring `ring`.
    Event {
        /// The ring that emitted it.
        ring: RingId,
        /// The event.
        event: E,
    },
    /// A message a ring wanted to send could not be encoded (for example it
    /// exceeded the frame limit). It was not sent; this is always a bug in
    /// the ring, surfaced instead of silently dropped.
    SendFailed {
        /// The intended destination.
        to: I,
        /// The ring.
        ring: RingId,
        /// Why.
        error: WireError,
    },
}

/// Per-call inputs shared by every ring on the node.
struct Env<'a, I, E> {
    now: Time,
    me: &'a I,
    rng: &'a mut dyn RngCore,
    tokens: &'a mut TokenSource,
    out: &'a mut Vec<NodeOutput<I, E>>,
}

/// Object-safe view of a ring hosted by a node.
trait Hosted<I: NodeId, E>: Any {
    fn id(&self) -> RingId;
    fn name(&self) -> &'static str;
    fn start(&mut self, env: Env<'_, I, E>);
    fn message(&mut self, env: Env<'_, I, E>, from: I, env_in: &Envelope) -> Result<(), WireError>;
    fn timer(&mut self, env: Env<'_, I, E>, token: TimerToken);
    fn joined(&mut self, env: Env<'_, I, E>, member: &I);
    fn failed(&mut self, env: Env<'_, I, E>, member: &I);
    fn stabilize(&mut self, env: Env<'_, I, E>);
    fn needs_flush(&self) -> bool;
    fn flush(&mut self, env: Env<'_, I, E>);
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn clone_box(&self) -> Box<dyn Hosted<I, E>>;
}

struct Slot<I: NodeId, R: Ring<I>> {
    ring: R,
    scratch: Vec<Output<I, R::Msg, R::Event>>,
    /// Sends held until the next flush (rings that gate their sends).
    held: Vec<(I, Result<Envelope, WireError>)>,
}

impl<I: NodeId, R: Ring<I>> Slot<I, R> {
    /// Run `f` against the ring with a fresh context, then translate what it
    /// produced into node outputs.
    fn run<T, E>(
        &mut self,
        env: Env<'_, I, E>,
        f: impl FnOnce(&mut R, &mut Ctx<'_, I, R::Msg, R::Event>) -> T,
    ) -> T
    where
        R::Event: Into<E>,
    {
        let Env {
            now,
            me,
            rng,
            tokens,
            out,
        } = env;
        let mut scratch = core::mem::take(&mut self.scratch);
        let result = {
            let mut cx = Ctx::new(now, me, rng, &mut scratch, tokens);
            f(&mut self.ring, &mut cx)
        };
        let gate = self.ring.gates_sends();
        for o in scratch.drain(..) {
            if gate {
                if let Output::Send { to, msg } = o {
                    self.held.push((to, Envelope::wrap(R::ID, &msg)));
                    continue;
                }
            }
            out.push(match o {
                Output::Send { to, msg } => match Envelope::wrap(R::ID, &msg) {
                    Ok(envelope) => NodeOutput::Send { to, envelope },
                    Err(error) => NodeOutput::SendFailed {
                        to,
                        ring: R::ID,
                        error,
                    },
                },
                Output::SetTimer { token, at } => NodeOutput::SetTimer {
                    key: TimerKey { ring: R::ID, token },
                    at,
                },
                Output::CancelTimer { token } => NodeOutput::CancelTimer {
                    key: TimerKey { ring: R::ID, token },
                },
                Output::Event(e) => NodeOutput::Event {
                    ring: R::ID,
                    event: e.into(),
                },
            });
        }
        self.scratch = scratch;
        result
    }
}

impl<I: NodeId, E: 'static, R: Ring<I>> Hosted<I, E> for Slot<I, R>
where
    R::Event: Into<E>,
{
    fn id(&self) -> RingId {
        R::ID
    }
    fn name(&self) -> &'static str {
        R::NAME
    }
    fn start(&mut self, env: Env<'_, I, E>) {
        self.run(env, |r, cx| r.on_start(cx));
    }
    fn message(&mut self, env: Env<'_, I, E>, from: I, e: &Envelope) -> Result<(), WireError> {
        let msg: R::Msg = e.unwrap_msg()?;
        self.run(env, |r, cx| r.on_message(cx, from, msg));
        Ok(())
    }
    fn timer(&mut self, env: Env<'_, I, E>, token: TimerToken) {
        self.run(env, |r, cx| r.on_timer(cx, token));
    }
    fn joined(&mut self, env: Env<'_, I, E>, member: &I) {
        self.run(env, |r, cx| r.on_member_joined(cx, member));
    }
    fn failed(&mut self, env: Env<'_, I, E>, member: &I) {
        self.run(env, |r, cx| r.on_member_failed(cx, member));
    }
    fn stabilize(&mut self, env: Env<'_, I, E>) {
        self.run(env, |r, cx| r.on_stabilize(cx));
    }
    fn needs_flush(&self) -> bool {
        !self.held.is_empty() || self.ring.needs_flush()
    }
    fn flush(&mut self, env: Env<'_, I, E>) {
        let Env {
            now,
            me,
            rng,
            tokens,
            out,
        } = env;
        // Messages held before the flush may leave once it returned; what
        // the flush itself sends is held again only if the ring still gates.
        let held = core::mem::take(&mut self.held);
        let at = out.len();
        let ok = self.run(
            Env {
                now,
                me,
                rng,
                tokens,
                out,
            },
            |r, cx| r.on_flush(cx),
        );
        if !ok {
            return;
        }
        let released = held.into_iter().map(|(to, e)| match e {
            Ok(envelope) => NodeOutput::Send { to, envelope },
            Err(error) => NodeOutput::SendFailed {
                to,
                ring: R::ID,
                error,
            },
        });
        // Held messages go out before anything the flush emitted.
        let mut tail = out.split_off(at);
        out.extend(released);
        out.append(&mut tail);
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn clone_box(&self) -> Box<dyn Hosted<I, E>> {
        Box::new(Slot::<I, R> {
            ring: self.ring.clone(),
            scratch: Vec::new(),
            held: self.held.clone(),
        })
    }
}

impl<I: NodeId, E: Clone + 'static> Clone for Node<I, E> {
    fn clone(&self) -> Self {
        Node {
            me: self.me.clone(),
            rings: self.rings.iter().map(|r| r.clone_box()).collect(),
            tokens: self.tokens.clone(),
            out: self.out.clone(),
            started: self.started,
            reactor: self.reactor,
            reacting: false,
        }
    }
}

/// How rings on one node react to each other's events: called with every
/// event a ring emits, inside the same step, before the driver sees the
/// outputs. It may run [`Node::command`]s (for example Ouroboros asking
/// Cartouche for the token when Sundial reports a death). It lives in the
/// node, not in a transport, so every driver gets the same behaviour.
pub type Reactor<I, E> = fn(&mut Node<I, E>, Time, &mut dyn RngCore, &E);

/// One node: its identity, the rings it runs and its pending outputs.
///
/// Drive it with `handle_*` calls; after each, drain
/// [`Node::drain_outputs`] and act on what it asks, in order.
pub struct Node<I: NodeId, E: 'static> {
    me: I,
    rings: Vec<Box<dyn Hosted<I, E>>>,
    tokens: TokenSource,
    out: Vec<NodeOutput<I, E>>,
    started: bool,
    reactor: Option<Reactor<I, E>>,
    reacting: bool,
}

impl<I: NodeId, E: Clone + 'static> Node<I, E> {
    /// A node with no rings yet. `incarnation` must differ between restarts
    /// of the same node (the driver picks it, e.g. from its seeded RNG or a
    /// persisted boot counter) so that timers from a previous life are never
    /// mistaken for current ones.
    pub fn new(me: I, incarnation: u32) -> Self {
        Node {
            me,
            rings: Vec::new(),
            tokens: TokenSource::new(incarnation),
            out: Vec::new(),
            started: false,
            reactor: None,
            reacting: false,
        }
    }

    /// Install the node's [`Reactor`].
    pub fn set_reactor(&mut self, reactor: Reactor<I, E>) {
        self.reactor = Some(reactor);
    }

    /// Feed the events emitted since output index `from` to the reactor,
    /// including events its own commands emit.
    fn react(&mut self, now: Time, rng: &mut dyn RngCore, from: usize) {
        let Some(reactor) = self.reactor else {
            return;
        };
        if self.reacting {
            // A command run by the reactor: the outer loop sees its events.
            return;
        }
        self.reacting = true;
        let mut i = from;
        while i < self.out.len() {
            if let NodeOutput::Event { event, .. } = &self.out[i] {
                let event = event.clone();
                reactor(self, now, rng, &event);
            }
            i += 1;
        }
        self.reacting = false;
    }

    /// Host `ring`. Panics if a ring with the same id is already hosted —
    /// that is a programming error in how the node was assembled, never a
    /// consequence of input.
    pub fn with_ring<R: Ring<I>>(mut self, ring: R) -> Self
    where
        R::Event: Into<E>,
    {
        self.add_ring(ring);
        self
    }

    /// Host `ring` (see [`Node::with_ring`]).
    pub fn add_ring<R: Ring<I>>(&mut self, ring: R)
    where
        R::Event: Into<E>,
    {
        assert!(
            self.index_of(R::ID).is_none(),
            "ring {:?} ({}) hosted twice",
            R::ID,
            R::NAME
        );
        self.rings.push(Box::new(Slot::<I, R> {
            ring,
            scratch: Vec::new(),
            held: Vec::new(),
        }));
        self.rings.sort_by_key(|r| r.id());
    }

    /// Host `ring` on a node that may already be running: the ring is
    /// started at once if the node has started (a ring the node adopts
    /// later, e.g. once a cluster has formed). Same panic as
    /// [`Node::add_ring`].
    pub fn add_started_ring<R: Ring<I>>(&mut self, now: Time, rng: &mut dyn RngCore, ring: R)
    where
        R::Event: Into<E>,
    {
        self.add_ring(ring);
        if !self.started {
            return;
        }
        let Some(i) = self.index_of(R::ID) else {
            return;
        };
        let from = self.out.len();
        self.start_ring(i, now, rng);
        self.react(now, rng, from);
    }

    /// Start the ring at index `i` (no reaction yet).
    fn start_ring(&mut self, i: usize, now: Time, rng: &mut dyn RngCore) {
        self.rings[i].start(Self::env(
            &self.me,
            &mut self.tokens,
            &mut self.out,
            now,
            rng,
        ));
    }

    /// This node's identity.
    pub fn id(&self) -> &I {
        &self.me
    }

    /// The ids and names of the hosted rings.
    pub fn rings(&self) -> impl Iterator<Item = (RingId, &'static str)> + '_ {
        self.rings.iter().map(|r| (r.id(), r.name()))
    }

    fn index_of(&self, id: RingId) -> Option<usize> {
        self.rings.binary_search_by_key(&id, |r| r.id()).ok()
    }

    fn env<'a>(
        me: &'a I,
        tokens: &'a mut TokenSource,
        out: &'a mut Vec<NodeOutput<I, E>>,
        now: Time,
        rng: &'a mut dyn RngCore,
    ) -> Env<'a, I, E> {
        Env {
            now,
            me,
            rng,
            tokens,
            out,
        }
    }

    /// Start every ring (idempotent).
    pub fn start(&mut self, now: Time, rng: &mut dyn RngCore) {
        if self.started {
            return;
        }
        self.started = true;
        let from = self.out.len();
        for i in 0..self.rings.len() {
            self.start_ring(i, now, rng);
        }
        self.react(now, rng, from);
    }

    /// Handle an envelope from `from`.
    pub fn handle_envelope(
        &mut self,
        now: Time,
        rng: &mut dyn RngCore,
        from: I,
        envelope: &Envelope,
    ) -> Result<(), WireError> {
        let i = self
            .index_of(envelope.ring)
            .ok_or(WireError::UnknownRing(envelope.ring))?;
        let start = self.out.len();
        let r = self.rings[i].message(
            Self::env(&self.me, &mut self.tokens, &mut self.out, now, rng),
            from,
            envelope,
        );
        self.react(now, rng, start);
        r
    }

    /// Decode a frame of untrusted bytes from `from` and handle it.
    pub fn handle_frame(
        &mut self,
        now: Time,
        rng: &mut dyn RngCore,
        from: I,
        frame: &[u8],
    ) -> Result<(), WireError> {
        let env = Envelope::from_frame(frame)?;
        self.handle_envelope(now, rng, from, &env)
    }

    /// A timer fired. Keys for rings this node does not host are ignored.
    pub fn handle_timer(&mut self, now: Time, rng: &mut dyn RngCore, key: TimerKey) {
        if let Some(i) = self.index_of(key.ring) {
            let from = self.out.len();
            self.rings[i].timer(
                Self::env(&self.me, &mut self.tokens, &mut self.out, now, rng),
                key.token,
            );
            self.react(now, rng, from);
        }
    }

    /// Fault-tolerance hook, fanned out to every ring: `member` joined.
    pub fn member_joined(&mut self, now: Time, rng: &mut dyn RngCore, member: &I) {
        let from = self.out.len();
        for r in &mut self.rings {
            r.joined(
                Self::env(&self.me, &mut self.tokens, &mut self.out, now, rng),
                member,
            );
        }
        self.react(now, rng, from);
    }

    /// Fault-tolerance hook, fanned out to every ring: `member` failed.
    pub fn member_failed(&mut self, now: Time, rng: &mut dyn RngCore, member: &I) {
        let from = self.out.len();
        for r in &mut self.rings {
            r.failed(
                Self::env(&self.me, &mut self.tokens, &mut self.out, now, rng),
                member,
            );
        }
        self.react(now, rng, from);
    }

    /// Fault-tolerance hook, fanned out to every ring: re-check invariants.
    pub fn stabilize(&mut self, now: Time, rng: &mut dyn RngCore) {
        let from = self.out.len();
        for r in &mut self.rings {
            r.stabilize(Self::env(
                &self.me,
                &mut self.tokens,
                &mut self.out,
                now,
                rng,
            ));
        }
        self.react(now, rng, from);
    }

    /// Run a local command against ring `R` (for example "request the
    /// token"). Returns `None` if this node does not host `R`.
    pub fn command<R: Ring<I>, T>(
        &mut self,
        now: Time,
        rng: &mut dyn RngCore,
        f: impl FnOnce(&mut R, &mut Ctx<'_, I, R::Msg, R::Event>) -> T,
    ) -> Option<T>
    where
        R::Event: Into<E>,
    {
        let i = self.index_of(R::ID)?;
        let from = self.out.len();
        let Node {
            me,
            rings,
            tokens,
            out,
            ..
        } = self;
        let slot = rings[i].as_any_mut().downcast_mut::<Slot<I, R>>()?;
        let r = slot.run(Self::env(me, tokens, out, now, rng), f);
        self.react(now, rng, from);
        Some(r)
    }

    /// Read-only access to ring `R`'s state.
    pub fn ring<R: Ring<I>>(&self) -> Option<&R> {
        let i = self.index_of(R::ID)?;
        self.rings[i]
            .as_any()
            .downcast_ref::<Slot<I, R>>()
            .map(|s| &s.ring)
    }

    /// True when a ring holds unsent messages or undurable state: call
    /// [`Node::flush`] (after handling whatever other input is ready, to
    /// batch the durability work).
    pub fn needs_flush(&self) -> bool {
        self.rings.iter().any(|r| r.needs_flush())
    }

    /// Make every ring's state durable ([`Ring::on_flush`]), then release
    /// the messages held since the last flush.
    pub fn flush(&mut self, now: Time, rng: &mut dyn RngCore) {
        let from = self.out.len();
        for r in &mut self.rings {
            if r.needs_flush() {
                r.flush(Self::env(
                    &self.me,
                    &mut self.tokens,
                    &mut self.out,
                    now,
                    rng,
                ));
            }
        }
        self.react(now, rng, from);
    }

    /// Take every pending output, oldest first.
    pub fn drain_outputs(&mut self) -> alloc::vec::Drain<'_, NodeOutput<I, E>> {
        self.out.drain(..)
    }

    /// Number of pending outputs.
    pub fn pending_outputs(&self) -> usize {
        self.out.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toy::{Relay, RelayEvent, RelayMsg};
    use alloc::vec;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[derive(Clone, Debug, PartialEq)]
    enum Ev {
        Relay(RelayEvent<u64>),
    }
    impl From<RelayEvent<u64>> for Ev {
        fn from(e: RelayEvent<u64>) -> Self {
            Ev::Relay(e)
        }
    }

    fn node(me: u64) -> Node<u64, Ev> {
        Node::new(me, 7).with_ring(Relay::new([1, 2, 3]))
    }

    #[test]
    fn routes_envelopes_by_ring_id_and_rejects_unknown_rings() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut n = node(2);
        n.start(Time::ZERO, &mut rng);
        let env = Envelope::wrap(RingId::RELAY, &RelayMsg::Baton { hops: 0, lap: 0 }).unwrap();
        n.handle_envelope(Time::from_millis(1), &mut rng, 1, &env)
            .unwrap();
        let outs: Vec<_> = n.drain_outputs().collect();
        assert!(outs.iter().any(|o| matches!(
            o,
            NodeOutput::Send { to: 3, envelope } if envelope.ring == RingId::RELAY
        )));
        assert!(outs.iter().any(|o| matches!(o, NodeOutput::Event { .. })));
        let foreign = Envelope::wrap(RingId(999), &0u8).unwrap();
        assert_eq!(
            n.handle_envelope(Time::ZERO, &mut rng, 1, &foreign),
            Err(WireError::UnknownRing(RingId(999)))
        );
        assert!(n.handle_frame(Time::ZERO, &mut rng, 1, &[0xff; 3]).is_err());
    }

    #[test]
    fn timers_are_keyed_by_ring_and_commands_reach_the_ring() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut n = node(1);
        n.start(Time::ZERO, &mut rng);
        let keys: Vec<TimerKey> = n
            .drain_outputs()
            .filter_map(|o| match o {
                NodeOutput::SetTimer { key, .. } => Some(key),
                _ => None,
            })
            .collect();
        assert_eq!(keys.len(), 1, "node 1 arms its launch timer");
        assert_eq!(keys[0].ring, RingId::RELAY);
        n.handle_timer(Time::from_millis(10), &mut rng, keys[0]);
        let sent: Vec<_> = n
            .drain_outputs()
            .filter(|o| matches!(o, NodeOutput::Send { to: 2, .. }))
            .collect();
        assert_eq!(sent.len(), 1, "the baton goes to the successor");
        // firing the same (now stale) timer again does nothing
        n.handle_timer(Time::from_millis(20), &mut rng, keys[0]);
        assert_eq!(n.pending_outputs(), 0);
        // a local command reaches the typed ring
        let members = n
            .command::<Relay<u64>, _>(Time::from_millis(30), &mut rng, |r, _| r.order().len())
            .unwrap();
        assert_eq!(members, 3);
        assert_eq!(n.ring::<Relay<u64>>().unwrap().order().len(), 3);
        assert_eq!(
            n.rings().collect::<Vec<_>>(),
            vec![(RingId::RELAY, "relay")]
        );
    }

    #[test]
    fn a_ring_added_to_a_running_node_starts_at_once() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        // Added before start: started by `start`, like any ring.
        let mut early = Node::<u64, Ev>::new(1, 7);
        early.add_started_ring(Time::ZERO, &mut rng, Relay::new([1, 2, 3]));
        assert_eq!(early.pending_outputs(), 0, "not started yet");
        early.start(Time::ZERO, &mut rng);
        assert_eq!(early.pending_outputs(), 1, "the launch timer");
        // Added after start: started at once (node 1 arms its launch timer).
        let mut late = Node::<u64, Ev>::new(1, 7);
        late.start(Time::ZERO, &mut rng);
        assert_eq!(late.pending_outputs(), 0);
        late.add_started_ring(Time::from_millis(5), &mut rng, Relay::new([1, 2, 3]));
        let keys: Vec<TimerKey> = late
            .drain_outputs()
            .filter_map(|o| match o {
                NodeOutput::SetTimer { key, .. } => Some(key),
                _ => None,
            })
            .collect();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].ring, RingId::RELAY);
    }

    #[test]
    fn membership_hooks_fan_out_to_rings() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut n = node(1);
        n.start(Time::ZERO, &mut rng);
        n.drain_outputs().for_each(drop);
        n.member_failed(Time::ZERO, &mut rng, &2);
        assert_eq!(
            n.ring::<Relay<u64>>()
                .unwrap()
                .order()
                .members()
                .copied()
                .collect::<Vec<_>>(),
            vec![1, 3]
        );
        n.member_joined(Time::ZERO, &mut rng, &4);
        assert!(n.ring::<Relay<u64>>().unwrap().order().contains(&4));
    }
}
