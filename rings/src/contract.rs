//! The sans-IO contract every ring is written against.
//!
//! A ring is a plain value. Its driver (a transport) feeds it the current
//! [`Time`], a seeded RNG and one input at a time — a peer message, a fired
//! timer, a membership hook or a local command — and drains the
//! [`Output`]s it produced: messages to send, timers to set or cancel and
//! observable events. Nothing inside a ring reads a clock, touches a socket or
//! uses global randomness, so the same inputs and seed give the same outputs,
//! bit for bit, natively and in `wasm32-unknown-unknown`.
//!
//! # Timers are data
//! A ring asks for a timer with `Output::SetTimer{token, at}`; the node turns
//! it into a `TimerKey{ring, token}`. Tokens come from a per-incarnation
//! [`TokenSource`] (the node's incarnation is the token's high 32 bits), so a
//! timer armed before a restart never matches one armed after it. Rings keep
//! the token of each armed timer in a [`TimerSlot`] and ignore any other
//! token: a cancelled or superseded timer that fires anyway is harmless, so
//! drivers may be lazy about cancellation, and a timer may fire late (that
//! only delays the ring) but never early.
//!
//! # Determinism
//! Same inputs + same RNG seed ⇒ same outputs, bit for bit. Rings never
//! iterate a `HashMap` to produce output (ordered collections only) and take
//! floating-point transcendental functions from `libm`.
//!
//! # The durability barrier
//! A ring whose messages must not leave before its state is on disk says so
//! with [`Ring::gates_sends`]; it reports pending state with
//! [`Ring::needs_flush`] and writes it in [`Ring::on_flush`] (returning
//! whether the write succeeded). See [`crate::node`] for how the node holds
//! the messages meanwhile, and `crate::ouroboros` (its `durable` module) for
//! the one ring that uses it.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Debug;
use core::hash::Hash;
use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

use rand_core::RngCore;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::order::RingOrder;

/// The identity of a node.
///
/// In a real cluster this is a libp2p `PeerId` (wrapped by the libp2p
/// transport); in the simulator it is a small integer. Placement on rings is
/// derived from [`NodeId::stable_bytes`], which must be identical on every
/// platform and every version for the same node.
pub trait NodeId: Clone + Eq + Ord + Hash + Debug + Serialize + DeserializeOwned + 'static {
    /// The bytes that identify this node for hashing. Stable across
    /// platforms, processes and versions (never derived from `Hash`).
    fn stable_bytes(&self) -> Cow<'_, [u8]>;

    /// `hash_bytes(stable_bytes())`, the node's position on hash-ordered
    /// rings. Implementations may override it to avoid an allocation; the
    /// value must stay exactly that hash.
    fn placement_hash(&self) -> u64 {
        crate::hash::hash_bytes(&self.stable_bytes())
    }
}

macro_rules! int_node_id {
    ($($t:ty),*) => {$(
        impl NodeId for $t {
            fn stable_bytes(&self) -> Cow<'_, [u8]> {
                Cow::Owned(self.to_le_bytes().to_vec())
            }
            fn placement_hash(&self) -> u64 {
                crate::hash::hash_bytes(&self.to_le_bytes())
            }
        }
    )*};
}

int_node_id!(u64, u32, u16);

impl NodeId for String {
    fn stable_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.as_bytes())
    }
}

/// A point in time as seen by the driver, in microseconds since the driver's
/// own epoch (virtual time in the simulator, process start in a real node).
///
/// Rings only ever compare times and add durations; they never ask what the
/// wall-clock time is.
#[derive(
    Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
pub struct Time(u64);

impl Time {
    /// The driver's epoch.
    pub const ZERO: Time = Time(0);
    /// The largest representable time; used as "never".
    pub const MAX: Time = Time(u64::MAX);

    /// A time `us` microseconds after the epoch.
    pub const fn from_micros(us: u64) -> Time {
        Time(us)
    }

    /// A time `ms` milliseconds after the epoch (saturating).
    pub const fn from_millis(ms: u64) -> Time {
        Time(ms.saturating_mul(1_000))
    }

    /// A time `s` seconds after the epoch (saturating).
    pub const fn from_secs(s: u64) -> Time {
        Time(s.saturating_mul(1_000_000))
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Whole milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000
    }

    /// The duration since `earlier`, or zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Time) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

fn duration_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Time {
    type Output = Time;
    /// Saturating addition: time never wraps.
    fn add(self, rhs: Duration) -> Time {
        Time(self.0.saturating_add(duration_micros(rhs)))
    }
}

impl AddAssign<Duration> for Time {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl Sub<Time> for Time {
    type Output = Duration;
    /// Saturating difference (zero when `rhs` is later).
    fn sub(self, rhs: Time) -> Duration {
        self.saturating_since(rhs)
    }
}

/// Identifies one armed timer. Tokens are never reused within one node
/// incarnation, so a timer that fires after it was cancelled or re-armed is
/// recognised as stale and ignored.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct TimerToken(pub u64);

/// Identifies a ring protocol inside the [versioned envelope](crate::wire::Envelope).
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct RingId(pub u16);

impl RingId {
    /// Ankh Ring (consistent hashing).
    pub const ANKH: RingId = RingId(1);
    /// Sundial Circle (gossip membership).
    pub const SUNDIAL: RingId = RingId(2);
    /// Cartouche Ring (token-passing mutual exclusion).
    pub const CARTOUCHE: RingId = RingId(3);
    /// Ouroboros Circle (chain replication).
    pub const OUROBOROS: RingId = RingId(4);
    /// The Shen log.
    pub const SHEN_LOG: RingId = RingId(5);
    /// The relay ring used for teaching and testing ([`crate::toy`]).
    pub const RELAY: RingId = RingId(0x100);
}

/// One thing a ring asks its driver to do, or tells it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Output<I, M, E> {
    /// Deliver `msg` to node `to`.
    Send {
        /// Destination node.
        to: I,
        /// The ring's message.
        msg: M,
    },
    /// Call the ring's timer handler with `token` at time `at` (or as soon
    /// after as the driver can).
    SetTimer {
        /// Token returned to the ring when the timer fires.
        token: TimerToken,
        /// When to fire.
        at: Time,
    },
    /// The timer with `token` is no longer wanted (firing it anyway is
    /// harmless: the ring ignores stale tokens).
    CancelTimer {
        /// The cancelled timer.
        token: TimerToken,
    },
    /// Something observable happened (for logs, metrics, tests, the browser).
    Event(E),
}

/// Allocates timer tokens. Start it from a per-incarnation nonce so tokens of
/// a crashed-and-restarted node never collide with timers still pending in the
/// driver from its previous life.
#[derive(Clone, Debug)]
pub struct TokenSource {
    next: u64,
}

impl TokenSource {
    /// A source whose tokens start at `nonce << 32`: distinct nonces give
    /// disjoint token spaces for the first 2^32 timers.
    pub fn new(nonce: u32) -> TokenSource {
        TokenSource {
            next: u64::from(nonce) << 32,
        }
    }

    /// The next unused token.
    pub fn next_token(&mut self) -> TimerToken {
        let t = TimerToken(self.next);
        self.next = self.next.wrapping_add(1);
        t
    }
}

/// Everything a ring may use while handling one input: the time, the node's
/// identity, the injected RNG and the output buffer.
pub struct Ctx<'a, I, M, E> {
    /// The current time, as given by the driver.
    pub now: Time,
    /// This node's identity.
    pub me: &'a I,
    /// The seeded RNG injected by the driver. Rings use nothing else for
    /// randomness.
    pub rng: &'a mut dyn RngCore,
    out: &'a mut Vec<Output<I, M, E>>,
    tokens: &'a mut TokenSource,
}

impl<'a, I: Clone, M: Clone, E> Ctx<'a, I, M, E> {
    /// A context writing into `out`.
    pub fn new(
        now: Time,
        me: &'a I,
        rng: &'a mut dyn RngCore,
        out: &'a mut Vec<Output<I, M, E>>,
        tokens: &'a mut TokenSource,
    ) -> Self {
        Ctx {
            now,
            me,
            rng,
            out,
            tokens,
        }
    }

    /// Send `msg` to `to`.
    pub fn send(&mut self, to: I, msg: M) {
        self.out.push(Output::Send { to, msg });
    }

    /// Arm a timer firing at `at`; the returned token comes back to
    /// [`Ring::on_timer`].
    pub fn set_timer(&mut self, at: Time) -> TimerToken {
        let token = self.tokens.next_token();
        self.out.push(Output::SetTimer { token, at });
        token
    }

    /// Arm a timer firing `after` from now.
    pub fn set_timer_after(&mut self, after: Duration) -> TimerToken {
        let at = self.now + after;
        self.set_timer(at)
    }

    /// Cancel a timer.
    pub fn cancel_timer(&mut self, token: TimerToken) {
        self.out.push(Output::CancelTimer { token });
    }

    /// Report an observable event.
    pub fn emit(&mut self, event: E) {
        self.out.push(Output::Event(event));
    }

    /// Forward `msg` to this node's clockwise successor in `order`. Returns the
    /// successor, or `None` when there is nobody else on the ring.
    pub fn send_to_successor(&mut self, order: &RingOrder<I>, msg: M) -> Option<I>
    where
        I: NodeId,
    {
        let next = order.successor(self.me)?.clone();
        if &next == self.me {
            return None;
        }
        self.send(next.clone(), msg);
        Some(next)
    }

    /// Send `msg` to every member of `order` except this node. Returns how
    /// many messages were sent.
    pub fn broadcast(&mut self, order: &RingOrder<I>, msg: &M) -> usize
    where
        I: NodeId,
    {
        let me = self.me;
        let targets: Vec<I> = order.members().filter(|m| *m != me).cloned().collect();
        let n = targets.len();
        for t in targets {
            self.out.push(Output::Send {
                to: t,
                msg: msg.clone(),
            });
        }
        n
    }

    /// Send `msg` to each node of `targets` (skipping this node). Returns how
    /// many messages were sent.
    pub fn multicast<'t>(&mut self, targets: impl IntoIterator<Item = &'t I>, msg: &M) -> usize
    where
        I: PartialEq + 't,
    {
        let mut n = 0;
        for t in targets {
            if t != self.me {
                self.out.push(Output::Send {
                    to: t.clone(),
                    msg: msg.clone(),
                });
                n += 1;
            }
        }
        n
    }
}

/// Shorthand for the context type of ring `R` on nodes of type `I`.
pub type RingCtx<'a, I, R> = Ctx<'a, I, <R as Ring<I>>::Msg, <R as Ring<I>>::Event>;

/// A ring protocol as a sans-IO state machine.
///
/// Rings are `Clone` so a driver can snapshot a whole world (the
/// simulator's timeline) by cloning its nodes.
///
/// Local commands are plain methods on the ring type that take a [`Ctx`]; a
/// [`Node`](crate::node::Node) reaches them through
/// [`Node::with_ring`](crate::node::Node::with_ring).
pub trait Ring<I: NodeId>: Clone + 'static {
    /// The ring's wire message (carried as the payload of an envelope).
    type Msg: Serialize + DeserializeOwned + Clone + Debug;
    /// What the ring reports to observers (serializable so drivers can
    /// trace, hash and stream it).
    type Event: Clone + Debug + Serialize;
    /// The ring's id in the envelope.
    const ID: RingId;
    /// A short human-readable name.
    const NAME: &'static str;

    /// Called once when the node starts (arm the first timers here).
    fn on_start(&mut self, _cx: &mut RingCtx<'_, I, Self>) {}

    /// A message from `from` arrived.
    fn on_message(&mut self, cx: &mut RingCtx<'_, I, Self>, from: I, msg: Self::Msg);

    /// A timer armed by this ring fired. Rings must ignore tokens they no
    /// longer consider armed (see [`TimerSlot`]).
    fn on_timer(&mut self, cx: &mut RingCtx<'_, I, Self>, token: TimerToken);

    /// Fault-tolerance hook: the membership layer learned that `member` joined.
    fn on_member_joined(&mut self, _cx: &mut RingCtx<'_, I, Self>, _member: &I) {}

    /// Fault-tolerance hook: the membership layer declared `member` failed.
    fn on_member_failed(&mut self, _cx: &mut RingCtx<'_, I, Self>, _member: &I) {}

    /// Fault-tolerance hook: re-check local invariants against the current
    /// membership (called after a batch of membership changes).
    fn on_stabilize(&mut self, _cx: &mut RingCtx<'_, I, Self>) {}

    /// Durability barrier: when true, the node holds every message this
    /// ring sends until the next [`Ring::on_flush`] has returned (the ring
    /// makes its state durable there, so nothing that depends on state a
    /// crash could lose ever leaves the node). False by default: sends go
    /// out at once.
    fn gates_sends(&self) -> bool {
        false
    }

    /// True when the ring has written state it has not made durable yet
    /// (the driver should call [`Node::flush`](crate::node::Node::flush)
    /// soon; it may first handle more input to batch the work).
    fn needs_flush(&self) -> bool {
        false
    }

    /// Make everything written so far durable. When it returns true the
    /// node releases the messages held since the last flush; false means
    /// the state could not be made durable: they are dropped (as a crash
    /// would drop them) and the ring must stop acting on that state.
    fn on_flush(&mut self, _cx: &mut RingCtx<'_, I, Self>) -> bool {
        true
    }
}

/// One named timer of a ring: remembers the token of the armed instance so a
/// stale firing (after a cancel or a re-arm) is recognised.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimerSlot {
    armed: Option<TimerToken>,
}

impl TimerSlot {
    /// An unarmed slot.
    pub const fn new() -> TimerSlot {
        TimerSlot { armed: None }
    }

    /// Arm (or re-arm) the slot to fire at `at`, cancelling a previous arming.
    pub fn arm<I: Clone, M: Clone, E>(&mut self, cx: &mut Ctx<'_, I, M, E>, at: Time) {
        if let Some(old) = self.armed.take() {
            cx.cancel_timer(old);
        }
        self.armed = Some(cx.set_timer(at));
    }

    /// Disarm the slot.
    pub fn disarm<I: Clone, M: Clone, E>(&mut self, cx: &mut Ctx<'_, I, M, E>) {
        if let Some(old) = self.armed.take() {
            cx.cancel_timer(old);
        }
    }

    /// If `token` is this slot's armed timer, consume it and return `true`.
    pub fn fired(&mut self, token: TimerToken) -> bool {
        if self.armed == Some(token) {
            self.armed = None;
            true
        } else {
            false
        }
    }

    /// Whether the slot is armed.
    pub fn is_armed(&self) -> bool {
        self.armed.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn integer_placement_hash_matches_the_default() {
        for x in [0u64, 1, 42, u64::MAX] {
            assert_eq!(
                x.placement_hash(),
                crate::hash::hash_bytes(&x.stable_bytes())
            );
        }
        assert_eq!(
            7u16.placement_hash(),
            crate::hash::hash_bytes(&7u16.stable_bytes())
        );
    }

    #[test]
    fn time_arithmetic_saturates() {
        let t = Time::from_millis(5);
        assert_eq!(t + Duration::from_micros(7), Time::from_micros(5_007));
        assert_eq!(Time::from_secs(1) - Time::from_secs(3), Duration::ZERO);
        assert_eq!(Time::MAX + Duration::from_secs(1), Time::MAX);
        assert_eq!(Time::from_secs(2).as_millis(), 2_000);
    }

    #[test]
    fn token_sources_with_distinct_nonces_do_not_collide() {
        let mut a = TokenSource::new(1);
        let mut b = TokenSource::new(2);
        let ta: Vec<_> = (0..100).map(|_| a.next_token()).collect();
        let tb: Vec<_> = (0..100).map(|_| b.next_token()).collect();
        assert!(ta.iter().all(|t| !tb.contains(t)));
    }

    #[test]
    fn timer_slot_ignores_stale_tokens() {
        let me = 1u64;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut out: Vec<Output<u64, (), ()>> = Vec::new();
        let mut tokens = TokenSource::new(0);
        let mut cx = Ctx::new(Time::ZERO, &me, &mut rng, &mut out, &mut tokens);
        let mut slot = TimerSlot::new();
        slot.arm(&mut cx, Time::from_secs(1));
        slot.arm(&mut cx, Time::from_secs(2));
        let tokens: Vec<TimerToken> = out
            .iter()
            .filter_map(|o| match o {
                Output::SetTimer { token, .. } => Some(*token),
                _ => None,
            })
            .collect();
        assert_eq!(tokens.len(), 2);
        assert!(out.contains(&Output::CancelTimer { token: tokens[0] }));
        assert!(!slot.fired(tokens[0]), "the first arming is stale");
        assert!(slot.fired(tokens[1]));
        assert!(!slot.fired(tokens[1]), "a timer fires once");
    }
}
