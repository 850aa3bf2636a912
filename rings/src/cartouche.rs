//! Cartouche Ring: token-passing mutual exclusion that survives a lost
//! token without ever granting two holders.
//!
//! (About 1,050 lines on purpose: what is left here is one state machine
//! whose token, confirmation, candidacy and acceptor handlers share its
//! fields; its data lives in `fencing` and `msg`.)
//!
//! # The token
//! Members are arranged clockwise by hash ([`RingOrder`]); one token
//! travels clockwise carrying a *generation*, the last *grant sequence
//! number* and the FIFO queue of pending requests (ordered by request time,
//! then node id). A node adds its own pending requests when the token
//! passes; when its request is at the head of the queue it may grant it.
//! Each grant gets the fencing number `(generation, sequence)`, which
//! strictly increases cluster-wide.
//!
//! # Why two holders cannot coexist
//! 1. **A grant needs a majority.** Before granting `(g, s)` the holder
//!    sends `Confirm(g, s)` to every member and waits for acknowledgements
//!    from a majority (itself included). A member acknowledges `(g, s)` only
//!    if it has promised no generation above `g` and has acknowledged no
//!    fencing number `>= (g, s)`. Two grants with the same number would need
//!    two majorities, which intersect in a member that acknowledged twice:
//!    impossible. So duplicated or replayed tokens cannot grant.
//! 2. **A new generation needs a majority of promises.** A member that
//!    stops seeing the token (loss timeout: a lease plus two circulations)
//!    first asks for *pre-votes* ("does the token look lost to you too?",
//!    which change no state) and only with a majority of them asks every
//!    member to *promise* generation `g + 1`. A member that promises `g + 1` rejects every
//!    message of a lower generation from then on, and only with a majority
//!    of promises is the new token created. A minority side of a partition
//!    can never collect one, so it never regenerates, and thanks to the
//!    pre-vote it never raises anyone's generation either, so healing a
//!    partition does not disturb the majority's token.
//! 3. **Promises wait for leases.** A grant is valid for `lease`, measured
//!    by the holder from the moment it *sent* its `Confirm`. A member that
//!    acknowledged `(g, s)` refuses to promise any new generation until
//!    `lease × (1 + 2·max_drift) + margin` has passed on its own clock. The
//!    majority that creates `g + 1` intersects the majority that confirmed
//!    the last grant of `g`, so the new token's first grant starts only
//!    after the old grant's lease ended — as long as clock *rates* stay
//!    within `max_drift` (no assumption on clock offsets or message delays).
//! 4. **Fencing is the last line.** A holder that is paused past its lease
//!    still believes it holds; every action it takes carries its fencing
//!    number, and resources ([`FencedResource`]) reject numbers lower than
//!    the highest they have seen.
//!
//! Restarts: acceptor state (promised generation, highest acknowledged
//! fencing number) is made durable before any answer that rests on it
//! leaves the node when an [`AcceptorStore`] is attached
//! ([`Cartouche::with_store`]; the argument is in `durable`), and a
//! restarted member refuses promises for a lease after boot; the checker
//! restarts members from their disks. Without a store the argument covers
//! crash-stop failures only (a member that restarts forgets its promises).
//! Ouroboros does not rest on it: its configuration rounds are Paxos over
//! durable acceptor state, safe even if two configurators hold "the" token
//! at once. A clock drift above
//! `max_drift` voids point 3 (fencing still protects resources); the
//! checker (`shen sim token`, in `shen-checks`) drifts clocks by ±5%
//! against the default 10%.
//!
//! # Generations are ballots
//! A generation is `round · 2^16 + creator index`, so two candidates never
//! propose the same one, the higher wins, and a duplicated `Prepare` for
//! the generation already promised is answered yes again (it can only come
//! from its creator). Loss timers fire at a random point of the last 200 ms
//! of the loss timeout, so usually one candidate runs alone: a lost token
//! is replaced within the loss timeout plus two round trips. A live token
//! ends any candidacy at the node it reaches, whatever generation the
//! candidacy was for (a candidacy kept past a live token lost its retry
//! timer, shared with the confirm rounds, and blocked every later one:
//! `shen sim log` seed 1221); a loss timer that finds a candidacy nothing
//! retries starts a fresh one.
//!
//! # Copies and stale requests
//! Hand-offs are acknowledged; an unacknowledged hand-off is retried to the
//! next member (the unresponsive one is skipped for a while). A retry can
//! make two copies of the token; copies are ordered by `(generation,
//! sequence, hops)` and the less advanced one is dropped wherever they
//! meet (and by point 1 neither can grant twice). Requests are refreshed as
//! the token passes their node; one not refreshed for two circulations (its
//! node crashed or is cut off) is dropped so it cannot block the queue, and
//! is re-added on the next visit. An idle token rests `idle_pass` (5 ms) at
//! each node.
//!
//! # Idle-token shortcut
//! A member that requests the token while not holding it multicasts
//! `Want{request}`. A member holding the token *idle* (no grant, no
//! confirmation, no hand-off in progress, nobody else queued) sends it
//! straight to the requester with the request queued (a normal,
//! acknowledged hand-off); a busy or absent token ignores `Want`, and the
//! request rides the token when it next visits. Safety is untouched; the
//! price is ring order: a token that jumped resumes its walk from the
//! requester. `CartoucheConfig::want_shortcut = false` turns the shortcut
//! off (no `Want` is sent, and one received is ignored), which the
//! browser's side-by-side mode compares against.
//!
//! # API
//! `request(name) -> id`; a `Granted{id, fencing, lease_until}` event;
//! `guard(id)` gives a `#[must_use]` [`Guard`] carrying the fencing number;
//! `release_guard(guard)` / `release(id)`. A dropped guard keeps the grant
//! until its lease ends.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use rand_core::RngCore;
use serde::{Deserialize, Serialize};

use crate::contract::{NodeId, Ring, RingCtx, RingId, Time, TimerSlot, TimerToken};
use crate::order::{Placement, RingOrder};

mod durable;
mod fencing;
mod msg;

pub use durable::{decode_state, encode_state, AcceptorState, AcceptorStore, MemoryAcceptorStore};
pub use fencing::{FencedResource, Fencing, Guard};
pub use msg::{CartoucheEvent, CartoucheMsg, Request, Token};

/// Cartouche settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CartoucheConfig {
    /// Longest a grant may be held (the holder releases or loses it).
    pub lease: Duration,
    /// How long an idle token rests at a node before moving on.
    pub idle_pass: Duration,
    /// Expected worst one-way message delay (sizes the loss timeout).
    pub hop_latency: Duration,
    /// Bound on clock *rate* error between members (0.1 = 10%).
    pub max_drift: f64,
    /// How long a holder or candidate waits for a majority before asking
    /// again.
    pub quorum_timeout: Duration,
    /// Upper bound of the random back-off before a candidacy.
    pub backoff: Duration,
    /// Multicast `Want` when requesting without the token, and answer
    /// others' `Want` with an idle token (the idle-token shortcut; on by
    /// default). Off, requests only ride the token round the ring.
    pub want_shortcut: bool,
}

impl Default for CartoucheConfig {
    fn default() -> Self {
        CartoucheConfig {
            lease: Duration::from_millis(300),
            idle_pass: Duration::from_millis(5),
            hop_latency: Duration::from_millis(25),
            max_drift: 0.1,
            quorum_timeout: Duration::from_millis(100),
            backoff: Duration::from_millis(200),
            want_shortcut: true,
        }
    }
}

#[derive(Clone, Debug)]
struct Grant<I> {
    request: Request<I>,
    fencing: Fencing,
    lease_until: Time,
}

/// A token passed on but not yet acknowledged by its receiver.
#[derive(Clone, Debug)]
struct Handoff<I> {
    token: Token<I>,
    /// How many clockwise members have been tried.
    skip: usize,
    target: Option<I>,
}

#[derive(Clone, Debug)]
struct Confirming<I> {
    fencing: Fencing,
    request: Request<I>,
    sent_at: Time,
    acks: BTreeSet<I>,
    nacks: BTreeSet<I>,
}

#[derive(Clone, Debug)]
struct Candidacy<I> {
    generation: u64,
    /// Pre-vote phase: members that agree the token looks lost. Only with
    /// a majority of these does the candidate ask for real promises, so a
    /// node cut off in a minority never raises anyone's generation.
    prevotes: BTreeSet<I>,
    preparing: bool,
    promises: BTreeSet<I>,
    requests: Vec<Request<I>>,
    max_confirmed: Fencing,
}

/// Counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartoucheStats {
    /// Grants made here.
    pub grants: u64,
    /// Tokens dropped as stale or duplicate.
    pub discarded: u64,
    /// Generations created here.
    pub regenerations: u64,
    /// Candidacies started here.
    pub candidacies: u64,
    /// Idle tokens sent straight to a requester (`Want`).
    #[serde(default)]
    pub shortcuts: u64,
}

/// The Cartouche state of one node.
#[derive(Clone, Debug)]
pub struct Cartouche<I> {
    config: CartoucheConfig,
    /// Configured members: the quorum is a majority of these.
    members: RingOrder<I>,
    /// Members the token visits (configured minus failed).
    order: RingOrder<I>,
    // acceptor
    promised: u64,
    confirmed: Fencing,
    promise_blocked_until: Time,
    // token
    token: Option<Token<I>>,
    last_seen: (u64, u64, u64),
    last_activity: Option<Time>,
    last_promise: Option<Time>,
    // requests
    pending: BTreeMap<u64, Request<I>>,
    next_request: u64,
    grant: Option<Grant<I>>,
    confirming: Option<Confirming<I>>,
    candidacy: Option<Candidacy<I>>,
    handoff: Option<Handoff<I>>,
    /// Members that did not acknowledge a hand-off, skipped until then.
    unresponsive: BTreeMap<I, Time>,
    // timers
    loss: TimerSlot,
    pass: TimerSlot,
    lease: TimerSlot,
    retry: TimerSlot,
    handoff_timer: TimerSlot,
    stats: CartoucheStats,
    founder: bool,
    /// Where the acceptor state is made durable, if anywhere.
    store: Option<durable::Store>,
    /// The acceptor state last made durable.
    stored: AcceptorState,
    /// Rebuilt from the store at start (a restart).
    restored: bool,
    /// The store failed: this member stopped taking part.
    store_failed: bool,
    /// Creator indexes given with the member set (`set_members`); without
    /// them a member's index is its position.
    slots: BTreeMap<I, u16>,
}

impl<I: NodeId> Cartouche<I> {
    /// A node of a ring whose configured members are `members` (this node
    /// among them). The lowest member by ring order creates generation 1
    /// at start, through the same promise round as any regeneration.
    pub fn new(members: impl IntoIterator<Item = I>, config: CartoucheConfig) -> Self {
        let members = RingOrder::with_members(Placement::ByHash, members);
        Cartouche {
            config,
            order: members.clone(),
            members,
            promised: 0,
            confirmed: Fencing::default(),
            promise_blocked_until: Time::ZERO,
            token: None,
            last_seen: (0, 0, 0),
            last_activity: None,
            last_promise: None,
            pending: BTreeMap::new(),
            next_request: 0,
            grant: None,
            confirming: None,
            candidacy: None,
            handoff: None,
            unresponsive: BTreeMap::new(),
            loss: TimerSlot::new(),
            pass: TimerSlot::new(),
            lease: TimerSlot::new(),
            retry: TimerSlot::new(),
            handoff_timer: TimerSlot::new(),
            stats: CartoucheStats::default(),
            founder: false,
            store: None,
            stored: AcceptorState::default(),
            restored: false,
            store_failed: false,
            slots: BTreeMap::new(),
        }
    }

    /// Replace the member set while running (the Shen log hands over its
    /// committed member set). Each member comes with its slot, its
    /// creator index in generations, which the caller never gives to two
    /// nodes. Members new to the ring are taken as live; members gone
    /// leave the ring order at once.
    ///
    /// Safety: two members whose sets differ by one node count majorities
    /// that intersect, so points 1-3 of the module doc hold across a
    /// change; the log changes its set one node at a time and every
    /// member installs each committed set. A member lagging further
    /// behind can at worst take part in a grant the others do not see,
    /// which the fencing number (point 4) still orders; Ouroboros's own
    /// rounds do not rest on Cartouche for safety.
    pub fn set_members(&mut self, members: &[(I, u16)]) {
        let ids: Vec<I> = members.iter().map(|(n, _)| n.clone()).collect();
        let next = RingOrder::with_members(Placement::ByHash, ids.iter().cloned());
        let gone: Vec<I> = self
            .order
            .members()
            .filter(|n| !next.contains(n))
            .cloned()
            .collect();
        for n in gone {
            self.order.remove(&n);
        }
        for n in &ids {
            if !self.members.contains(n) {
                self.order.insert(n.clone());
            }
        }
        self.members = next;
        self.slots = members.iter().cloned().collect();
    }

    /// Keep the acceptor state in `store`: load what it holds (a restart
    /// then resumes those promises) and from now on store every change
    /// before an answer that rests on it leaves (sends are gated until the
    /// flush). A record that cannot be read is an error, never a fresh
    /// start.
    pub fn with_store(mut self, mut store: Box<dyn AcceptorStore>) -> Result<Self, String> {
        if let Some(r) = store.load()? {
            let s = durable::decode_state(&r)?;
            self.promised = s.promised;
            self.confirmed = s.confirmed;
            self.last_seen = (s.confirmed.generation, s.confirmed.sequence, 0);
            self.stored = s;
            self.restored = true;
        }
        self.store = Some(alloc::rc::Rc::new(core::cell::RefCell::new(store)));
        Ok(self)
    }

    /// True when the acceptor state was loaded from a store at start.
    pub fn is_restored(&self) -> bool {
        self.restored
    }

    /// True when the store failed (the member stopped taking part).
    pub fn storage_failed(&self) -> bool {
        self.store_failed
    }

    /// The acceptor state now (maybe not yet durable).
    pub fn acceptor_state(&self) -> AcceptorState {
        AcceptorState {
            promised: self.promised,
            confirmed: self.confirmed,
        }
    }

    fn majority(&self) -> usize {
        self.members.len() / 2 + 1
    }

    /// How long without any sign of the token before suspecting its loss:
    /// a full lease plus a few trips around the ring.
    pub fn loss_timeout(&self) -> Duration {
        let n = self.order.len().max(1) as u32;
        let lease = self.config.lease.mul_f64(1.0 + 2.0 * self.config.max_drift);
        lease
            + (self.config.idle_pass + self.config.hop_latency) * (2 * n)
            + self.config.quorum_timeout * 2
    }

    fn promise_block(&self) -> Duration {
        self.config.lease.mul_f64(1.0 + 2.0 * self.config.max_drift) + self.config.hop_latency
    }

    /// The active grant's fencing number, if this node holds one whose lease
    /// has not run out at local time `now`.
    pub fn holding(&self, now: Time) -> Option<Fencing> {
        self.grant
            .as_ref()
            .filter(|g| now < g.lease_until)
            .map(|g| g.fencing)
    }

    /// The active grant's request id and lease end (local clock), if any.
    pub fn grant(&self) -> Option<(u64, Fencing, Time)> {
        self.grant
            .as_ref()
            .map(|g| (g.request.id, g.fencing, g.lease_until))
    }

    /// A guard for request `id` if it is the active grant.
    pub fn guard(&self, id: u64) -> Option<Guard> {
        self.grant
            .as_ref()
            .filter(|g| g.request.id == id)
            .map(|g| Guard {
                id,
                fencing: g.fencing,
                lease_until: g.lease_until,
            })
    }

    /// Release the grant behind `guard` (no-op if it already ended).
    pub fn release_guard(&mut self, cx: &mut RingCtx<'_, I, Self>, guard: Guard) {
        self.release(cx, guard.id);
    }

    /// Whether the token is at this node.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// The highest generation this node has promised.
    pub fn promised(&self) -> u64 {
        self.promised
    }

    /// Start as if this member had promised `generation` already: every
    /// token generation it creates or accepts from now on is above it. A
    /// world that continues a running cluster (the browser's fork) calls
    /// it on every member before the first message, with the newest epoch
    /// generation of the log's founding table, so that the rounds' ballots
    /// (grant fencing numbers) exceed that table's. Only raises: a
    /// promise is never taken back, so no safety argument changes.
    pub fn promise_at_least(&mut self, generation: u64) {
        self.promised = self.promised.max(generation);
    }

    /// This node's pending (not yet granted) requests.
    pub fn pending(&self) -> impl Iterator<Item = &Request<I>> + '_ {
        self.pending.values()
    }

    /// Counters.
    pub fn stats(&self) -> &CartoucheStats {
        &self.stats
    }

    /// The members the token visits, clockwise.
    pub fn order(&self) -> &RingOrder<I> {
        &self.order
    }

    // ---- commands ------------------------------------------------------

    /// Ask for the token for critical section `name`. Returns the request
    /// id; `Granted` with this id follows.
    pub fn request(&mut self, cx: &mut RingCtx<'_, I, Self>, name: &str) -> u64 {
        self.next_request += 1;
        let id = self.next_request;
        let req = Request {
            at: cx.now.as_micros(),
            node: cx.me.clone(),
            id,
            name: String::from(name),
            refreshed: 0,
        };
        self.pending.insert(id, req.clone());
        cx.emit(CartoucheEvent::Requested { id });
        if self.token.is_some() && self.grant.is_none() && self.confirming.is_none() {
            self.process_token(cx);
        } else if self.config.want_shortcut && self.token.is_none() && self.handoff.is_none() {
            let me = cx.me.clone();
            let others: Vec<I> = self
                .members
                .members()
                .filter(|m| **m != me)
                .cloned()
                .collect();
            cx.multicast(others.iter(), &CartoucheMsg::Want { request: req });
        }
        id
    }

    /// Release grant `id` (no-op if it is not the active grant).
    pub fn release(&mut self, cx: &mut RingCtx<'_, I, Self>, id: u64) {
        let Some(g) = &self.grant else {
            return;
        };
        if g.request.id != id {
            return;
        }
        let g = self.grant.take().expect("checked");
        self.lease.disarm(cx);
        cx.emit(CartoucheEvent::Released {
            id,
            fencing: g.fencing,
        });
        self.after_grant(cx);
    }

    // ---- token handling ------------------------------------------------

    fn saw_token_activity(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        self.last_activity = Some(cx.now);
        // Each node's timer fires at a random point of the last `backoff`
        // of the loss timeout, so one candidate usually finishes its two
        // round trips before the next one wakes up: no duel, and a new
        // generation within the loss timeout plus two round trips.
        let spread = self.random_backoff(cx.rng);
        let at = cx.now + self.loss_timeout().saturating_sub(self.config.backoff) + spread;
        self.loss.arm(cx, at);
    }

    /// A candidacy elsewhere is in progress: look again soon rather than
    /// after a whole loss timeout.
    fn watch_candidate(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        let at = cx.now + self.config.quorum_timeout * 2 + self.random_backoff(cx.rng);
        self.loss.arm(cx, at);
    }

    /// Whether this node also believes the token is lost (pre-vote).
    fn token_looks_lost(&self, now: Time) -> bool {
        // A promise made moments ago means a candidacy is in flight: let it
        // finish instead of pre-empting it with a higher generation.
        if self
            .last_promise
            .is_some_and(|t| now < t + self.config.quorum_timeout * 2)
        {
            return false;
        }
        match self.last_activity {
            None => self.token.is_none(),
            Some(t) => self.token.is_none() && now >= t + self.loss_timeout().mul_f64(0.75),
        }
    }

    fn receive_token(&mut self, cx: &mut RingCtx<'_, I, Self>, tok: Token<I>) {
        let id = (tok.generation, tok.sequence, tok.hops);
        // Copies of one token (a hand-off retried after a lost
        // acknowledgement) are ordered by (generation, sequence, hops): the
        // most advanced copy wins wherever two meet.
        let stale = tok.generation < self.promised || id <= self.last_seen;
        if stale {
            self.stats.discarded += 1;
            cx.emit(CartoucheEvent::TokenDiscarded {
                generation: tok.generation,
                sequence: tok.sequence,
            });
            return;
        }
        if self.handoff.take().is_some() {
            self.handoff_timer.disarm(cx);
        }
        self.last_seen = id;
        self.promised = self.promised.max(tok.generation);
        // A live token ends any candidacy here, even one for a higher
        // generation: regeneration is for a lost token, and the loss timer
        // starts a new candidacy if this one is lost too. (A candidacy kept
        // past a live token lost its retry timer to the token's confirm
        // rounds, which share it, and then blocked every later candidacy:
        // found by `shen sim log` seed 1221.)
        if self.candidacy.take().is_some() {
            self.retry.disarm(cx);
        }
        if let Some(old) = self.token.take() {
            // The copy held here is superseded by a more advanced one.
            self.stats.discarded += 1;
            self.confirming = None;
            self.retry.disarm(cx);
            cx.emit(CartoucheEvent::TokenDiscarded {
                generation: old.generation,
                sequence: old.sequence,
            });
        }
        self.token = Some(tok);
        self.saw_token_activity(cx);
        if self.grant.is_none() {
            self.process_token(cx);
        }
    }

    /// The token is here and nothing is in progress: grant or pass on.
    fn process_token(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        let me = cx.me.clone();
        let Some(tok) = self.token.as_mut() else {
            return;
        };
        // Merge this node's pending requests; drop requests of nodes the
        // token no longer visits and of this node's finished requests.
        let hops = tok.hops;
        for r in self.pending.values() {
            match tok
                .queue
                .iter_mut()
                .find(|q| q.node == r.node && q.id == r.id)
            {
                Some(q) => q.refreshed = hops,
                None => tok.queue.push(Request {
                    refreshed: hops,
                    ..r.clone()
                }),
            }
        }
        let pending = &self.pending;
        let order = &self.order;
        let horizon = 2 * order.len() as u64 + 2;
        tok.queue.retain(|q| {
            order.contains(&q.node)
                && (q.node != me || pending.contains_key(&q.id))
                && hops.saturating_sub(q.refreshed) <= horizon
        });
        tok.queue.sort();
        match tok.queue.first() {
            Some(head) if head.node == me => {
                let fencing = Fencing {
                    generation: tok.generation,
                    sequence: tok.sequence.saturating_add(1),
                };
                let request = head.clone();
                self.start_confirm(cx, fencing, request);
            }
            Some(_) => {
                // Someone else is waiting: pass on at once.
                self.pass.disarm(cx);
                self.pass_token(cx);
            }
            None => {
                let at = cx.now + self.config.idle_pass;
                self.pass.arm(cx, at);
            }
        }
    }

    fn start_confirm(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        fencing: Fencing,
        request: Request<I>,
    ) {
        let me = cx.me.clone();
        let mut acks = BTreeSet::new();
        if self.acceptor_confirm(cx.now, fencing) {
            acks.insert(me.clone());
        }
        self.confirming = Some(Confirming {
            fencing,
            request,
            sent_at: cx.now,
            acks,
            nacks: BTreeSet::new(),
        });
        cx.multicast(self.members.members(), &CartoucheMsg::Confirm { fencing });
        let at = cx.now + self.config.quorum_timeout;
        self.retry.arm(cx, at);
        self.check_confirmed(cx);
    }

    fn check_confirmed(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        let Some(c) = &self.confirming else {
            return;
        };
        if c.acks.len() < self.majority() {
            return;
        }
        let c = self.confirming.take().expect("checked");
        self.retry.disarm(cx);
        let Some(tok) = self.token.as_mut() else {
            return;
        };
        tok.sequence = c.fencing.sequence;
        tok.queue
            .retain(|q| !(q.node == c.request.node && q.id == c.request.id));
        self.pending.remove(&c.request.id);
        let lease_until = c.sent_at + self.config.lease;
        self.grant = Some(Grant {
            request: c.request.clone(),
            fencing: c.fencing,
            lease_until,
        });
        self.stats.grants += 1;
        self.lease.arm(cx, lease_until);
        cx.emit(CartoucheEvent::Granted {
            id: c.request.id,
            fencing: c.fencing,
            lease_until: lease_until.as_micros(),
        });
    }

    /// Drop the token copy held here (it can no longer grant).
    fn abandon_token(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        self.confirming = None;
        self.retry.disarm(cx);
        if let Some(t) = self.token.take() {
            self.stats.discarded += 1;
            cx.emit(CartoucheEvent::TokenDiscarded {
                generation: t.generation,
                sequence: t.sequence,
            });
        }
        self.saw_token_activity(cx);
    }

    /// A grant ended: grant the next local request or pass the token on.
    fn after_grant(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        if self.token.is_some() {
            self.saw_token_activity(cx);
            self.process_token(cx);
        }
    }

    fn pass_token(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        let Some(mut tok) = self.token.take() else {
            return;
        };
        tok.hops = tok.hops.saturating_add(1);
        self.last_seen = (tok.generation, tok.sequence, tok.hops);
        self.handoff = Some(Handoff {
            token: tok,
            skip: 0,
            target: None,
        });
        self.try_handoff(cx);
    }

    /// An idle token held here goes straight to `to`, whose request `request`
    /// joins its queue (the shortcut of `Want`). Returns false (and does
    /// nothing) unless the token is here and idle.
    fn send_idle_token_to(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        to: I,
        request: Request<I>,
    ) -> bool {
        if self.grant.is_some()
            || self.confirming.is_some()
            || self.handoff.is_some()
            || *cx.me == to
            || !self.order.contains(&to)
        {
            return false;
        }
        let Some(mut tok) = self.token.take() else {
            return false;
        };
        // Someone else already queued: the token is not idle.
        if tok.queue.iter().any(|q| q.node != to) || !self.pending.is_empty() {
            self.token = Some(tok);
            return false;
        }
        if !tok.queue.iter().any(|q| q.node == to && q.id == request.id) {
            tok.queue.push(Request {
                refreshed: tok.hops,
                ..request
            });
        }
        self.pass.disarm(cx);
        tok.hops = tok.hops.saturating_add(1);
        self.last_seen = (tok.generation, tok.sequence, tok.hops);
        cx.send(to.clone(), CartoucheMsg::Token(tok.clone()));
        self.handoff = Some(Handoff {
            token: tok,
            skip: 0,
            target: Some(to),
        });
        self.stats.shortcuts += 1;
        let at = cx.now + self.config.hop_latency * 2 + self.config.idle_pass;
        self.handoff_timer.arm(cx, at);
        true
    }

    /// Send the token in hand-off to the next clockwise member that is not
    /// known to be unresponsive; keep it if nobody is left.
    fn try_handoff(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        let me = cx.me.clone();
        let now = cx.now;
        let Some(h) = self.handoff.as_mut() else {
            return;
        };
        let others = self
            .order
            .len()
            .saturating_sub(usize::from(self.order.contains(&me)));
        let mut target = None;
        while h.skip < others {
            h.skip += 1;
            if let Some(n) = self.order.nth_successor(&me, h.skip) {
                let quiet = self.unresponsive.get(n).is_some_and(|until| now < *until);
                if *n != me && !quiet {
                    target = Some(n.clone());
                    break;
                }
            }
        }
        match target {
            Some(n) => {
                h.target = Some(n.clone());
                cx.send(n, CartoucheMsg::Token(h.token.clone()));
                let at = now + self.config.hop_latency * 2 + self.config.idle_pass;
                self.handoff_timer.arm(cx, at);
            }
            None => {
                // Alone (or everyone else unresponsive): keep the token and
                // look again later.
                let h = self.handoff.take().expect("checked");
                self.token = Some(h.token);
                self.unresponsive.clear();
                let at = now + self.config.idle_pass + self.config.hop_latency;
                self.pass.arm(cx, at);
            }
        }
    }

    // ---- acceptor --------------------------------------------------------

    fn acceptor_confirm(&mut self, now: Time, fencing: Fencing) -> bool {
        if fencing.generation < self.promised || fencing <= self.confirmed {
            return false;
        }
        self.promised = fencing.generation;
        self.confirmed = fencing;
        let until = now + self.promise_block();
        if until > self.promise_blocked_until {
            self.promise_blocked_until = until;
        }
        true
    }

    fn acceptor_promise(&mut self, now: Time, generation: u64) -> bool {
        if generation <= self.promised || now < self.promise_blocked_until {
            return false;
        }
        self.promised = generation;
        self.last_promise = Some(now);
        // A token of an older generation held here is dead from now on.
        if self
            .token
            .as_ref()
            .is_some_and(|t| t.generation < generation)
            && self.grant.is_none()
        {
            self.token = None;
            self.confirming = None;
        }
        true
    }

    // ---- regeneration ----------------------------------------------------

    fn start_candidacy(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        let me = cx.me.clone();
        // A node outside the member set (a log joiner) never runs.
        if !self.members.contains(&me) {
            let at = cx.now + self.loss_timeout();
            self.loss.arm(cx, at);
            return;
        }
        let generation = self.next_generation(&me);
        let mut cand = Candidacy {
            generation,
            prevotes: BTreeSet::new(),
            preparing: false,
            promises: BTreeSet::new(),
            requests: self.pending.values().cloned().collect(),
            max_confirmed: self.confirmed,
        };
        if self.token_looks_lost(cx.now) || self.last_activity.is_none() {
            cand.prevotes.insert(me.clone());
        }
        self.candidacy = Some(cand);
        self.stats.candidacies += 1;
        cx.multicast(
            self.members.members(),
            &CartoucheMsg::PreVote { generation },
        );
        let backoff = self.random_backoff(cx.rng);
        let at = cx.now + self.config.quorum_timeout + backoff;
        self.retry.arm(cx, at);
        self.check_prevotes(cx);
    }

    /// With a majority of pre-votes, ask for real promises.
    fn check_prevotes(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        let majority = self.majority();
        let Some(c) = self.candidacy.as_mut() else {
            return;
        };
        if c.preparing || c.prevotes.len() < majority {
            return;
        }
        c.preparing = true;
        let generation = c.generation;
        let me = cx.me.clone();
        if self.acceptor_promise(cx.now, generation) {
            if let Some(c) = self.candidacy.as_mut() {
                c.promises.insert(me.clone());
            }
        }
        cx.emit(CartoucheEvent::Candidate { generation });
        cx.multicast(
            self.members.members(),
            &CartoucheMsg::Prepare { generation },
        );
        let backoff = self.random_backoff(cx.rng);
        let at = cx.now + self.config.quorum_timeout + backoff;
        self.retry.arm(cx, at);
        self.check_promised(cx);
    }

    /// Generations are ballots: `round · 2^16 + the candidate's index` among
    /// the members. Two candidates of one round propose different
    /// generations, the higher one wins every acceptor it reaches, and a
    /// duel ends in one round trip instead of a retry.
    fn next_generation(&self, me: &I) -> u64 {
        let round = self.promised.max(self.last_seen.0) >> 16;
        let index = match self.slots.get(me) {
            Some(slot) => u64::from(*slot),
            None => self.members.index_of(me).unwrap_or(0) as u64 & 0xffff,
        };
        ((round + 1) << 16) | index
    }

    fn random_backoff(&self, rng: &mut dyn RngCore) -> Duration {
        let us = self.config.backoff.as_micros() as u64;
        Duration::from_micros(if us == 0 { 0 } else { rng.next_u64() % us })
    }

    fn check_promised(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        let Some(c) = &self.candidacy else {
            return;
        };
        if c.promises.len() < self.majority() {
            return;
        }
        let c = self.candidacy.take().expect("checked");
        self.retry.disarm(cx);
        let mut queue = c.requests;
        queue.sort();
        queue.dedup_by(|a, b| a.node == b.node && a.id == b.id);
        let tok = Token {
            generation: c.generation,
            sequence: 0,
            hops: 0,
            queue,
        };
        self.stats.regenerations += 1;
        cx.emit(CartoucheEvent::Regenerated {
            generation: c.generation,
        });
        self.token = None; // any older token held here is dead
        self.last_seen = (c.generation, 0, 0);
        self.token = Some(tok);
        self.saw_token_activity(cx);
        self.process_token(cx);
    }
}

impl<I: NodeId> Ring<I> for Cartouche<I> {
    type Msg = CartoucheMsg<I>;
    type Event = CartoucheEvent;
    const ID: RingId = RingId::CARTOUCHE;
    const NAME: &'static str = "cartouche";

    fn gates_sends(&self) -> bool {
        self.store.is_some()
    }

    fn needs_flush(&self) -> bool {
        self.store.is_some() && !self.store_failed && self.acceptor_state() != self.stored
    }

    fn on_flush(&mut self, _cx: &mut RingCtx<'_, I, Self>) -> bool {
        let Some(store) = self.store.clone() else {
            return true;
        };
        if self.store_failed {
            return false;
        }
        let now = self.acceptor_state();
        if now == self.stored {
            return true;
        }
        let wrote = store.borrow_mut().store(&durable::encode_state(&now));
        match wrote {
            Ok(()) => {
                self.stored = now;
                true
            }
            Err(_) => {
                // Stop answering: what was held rests on state a crash
                // could take back.
                self.store_failed = true;
                false
            }
        }
    }

    fn on_start(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        if self.restored {
            // The clock restarted with the process: block promises for a
            // whole lease from now (covers any acknowledgement before the
            // crash), and do not found a generation again.
            self.promise_blocked_until = cx.now + self.promise_block();
        }
        self.founder = !self.restored && self.members.members().next() == Some(cx.me);
        if self.founder {
            // Create generation 1 through an ordinary promise round.
            self.start_candidacy(cx);
        } else {
            // No token exists yet: watch for the founder's, but keep
            // agreeing to pre-votes (no activity seen) so it can be made.
            let at = cx.now + self.loss_timeout();
            self.loss.arm(cx, at);
        }
    }

    fn on_message(&mut self, cx: &mut RingCtx<'_, I, Self>, from: I, msg: CartoucheMsg<I>) {
        if !self.members.contains(&from) || self.store_failed {
            return;
        }
        match msg {
            CartoucheMsg::Want { request } => {
                // Busy or in hand-off: ignore; the request rides the token
                // when it next visits the requester. (Queueing it on a busy
                // token was tried: it delayed regeneration after a holder
                // crash past the loss timeout + 2 RTT bound in 1 of 3,000
                // seeds.)
                if self.config.want_shortcut && request.node == from {
                    self.send_idle_token_to(cx, from, request);
                }
            }
            CartoucheMsg::Token(tok) => {
                // Acknowledge every copy (even one dropped as a duplicate) so
                // the sender stops retrying.
                cx.send(
                    from,
                    CartoucheMsg::TokenAck {
                        generation: tok.generation,
                        hops: tok.hops,
                    },
                );
                self.receive_token(cx, tok)
            }
            CartoucheMsg::TokenAck { generation, hops } => {
                if self.handoff.as_ref().is_some_and(|h| {
                    h.token.generation == generation
                        && h.token.hops == hops
                        && h.target.as_ref() == Some(&from)
                }) {
                    self.handoff = None;
                    self.handoff_timer.disarm(cx);
                    self.unresponsive.remove(&from);
                }
            }
            CartoucheMsg::Confirm { fencing } => {
                let ok = self.acceptor_confirm(cx.now, fencing);
                if ok {
                    // A live token of the current generation: no need to
                    // suspect a loss.
                    self.saw_token_activity(cx);
                }
                let promised = self.promised;
                let confirmed = self.confirmed;
                cx.send(
                    from,
                    CartoucheMsg::ConfirmAck {
                        fencing,
                        ok,
                        promised,
                        confirmed,
                    },
                );
            }
            CartoucheMsg::ConfirmAck {
                fencing,
                ok,
                promised,
                confirmed,
            } => {
                let Some(c) = self.confirming.as_mut() else {
                    return;
                };
                if c.fencing != fencing {
                    return;
                }
                if ok {
                    c.acks.insert(from);
                    self.check_confirmed(cx);
                    return;
                }
                if c.acks.contains(&from) {
                    return; // a duplicated Confirm's second answer
                }
                c.nacks.insert(from);
                // Dead when a newer generation exists, or when so many
                // members refused this number (another copy of the token
                // took it) that a majority is out of reach.
                let hopeless = c.nacks.len() > self.members.len() - self.majority();
                if promised > fencing.generation || (confirmed >= fencing && hopeless) {
                    self.promised = self.promised.max(promised);
                    self.abandon_token(cx);
                }
            }
            CartoucheMsg::PreVote { generation } => {
                let ok = generation > self.promised && self.token_looks_lost(cx.now);
                cx.send(from, CartoucheMsg::PreVoteReply { generation, ok });
            }
            CartoucheMsg::PreVoteReply { generation, ok } => {
                if let Some(c) = self.candidacy.as_mut() {
                    if ok && c.generation == generation && !c.preparing {
                        c.prevotes.insert(from);
                        self.check_prevotes(cx);
                    }
                }
            }
            CartoucheMsg::Prepare { generation } => {
                // Generations are ballots unique to their creator, so a
                // repeated (duplicated) Prepare for the generation already
                // promised is the same candidate asking again: say yes again.
                let ok = generation == self.promised || self.acceptor_promise(cx.now, generation);
                if ok {
                    // Give the candidate time to finish before competing.
                    self.watch_candidate(cx);
                    if self
                        .candidacy
                        .as_ref()
                        .is_some_and(|c| c.generation < generation)
                    {
                        self.candidacy = None;
                        self.retry.disarm(cx);
                    }
                }
                let reply = CartoucheMsg::Promise {
                    generation,
                    ok,
                    promised: self.promised,
                    confirmed: self.confirmed,
                    requests: self.pending.values().cloned().collect(),
                };
                cx.send(from, reply);
            }
            CartoucheMsg::Promise {
                generation,
                ok,
                promised,
                confirmed,
                requests,
            } => {
                let Some(c) = self.candidacy.as_mut() else {
                    return;
                };
                if c.generation != generation || !c.preparing {
                    return;
                }
                if ok {
                    c.promises.insert(from);
                    c.max_confirmed = c.max_confirmed.max(confirmed);
                    for r in requests {
                        if !c.requests.iter().any(|q| q.node == r.node && q.id == r.id) {
                            c.requests.push(r);
                        }
                    }
                    self.check_promised(cx);
                } else if promised >= generation {
                    // Someone else is ahead: step back, and look again soon.
                    self.promised = self.promised.max(promised);
                    self.candidacy = None;
                    self.retry.disarm(cx);
                    self.watch_candidate(cx);
                }
            }
        }
    }

    fn on_timer(&mut self, cx: &mut RingCtx<'_, I, Self>, token: TimerToken) {
        if self.store_failed {
            return;
        }
        if self.pass.fired(token) {
            if self.grant.is_none() && self.confirming.is_none() {
                // Idle: look for new local requests, else move on.
                let has_local = !self.pending.is_empty();
                if has_local {
                    self.process_token(cx);
                } else {
                    self.pass_token(cx);
                }
            }
        } else if self.handoff_timer.fired(token) {
            // No acknowledgement: skip that member for a while and try the
            // next one. If the token did arrive after all, the copy is
            // harmless: a grant needs a majority for its fencing number.
            if let Some(t) = self.handoff.as_ref().and_then(|h| h.target.clone()) {
                let until = cx.now + self.config.quorum_timeout * 2;
                self.unresponsive.insert(t, until);
            }
            self.try_handoff(cx);
        } else if self.lease.fired(token) {
            if let Some(g) = self.grant.take() {
                cx.emit(CartoucheEvent::LeaseExpired {
                    id: g.request.id,
                    fencing: g.fencing,
                });
                self.after_grant(cx);
            }
        } else if self.retry.fired(token) {
            if let Some(c) = self.confirming.clone() {
                if cx.now.saturating_since(c.sent_at) > self.loss_timeout() / 2 {
                    // Stuck (e.g. two copies split the votes): give the
                    // token up; the ring regenerates it safely.
                    self.abandon_token(cx);
                    return;
                }
                // No majority yet: ask again (same fencing number).
                let me = cx.me.clone();
                let targets: Vec<I> = self
                    .members
                    .members()
                    .filter(|m| **m != me && !c.acks.contains(m))
                    .cloned()
                    .collect();
                for t in targets {
                    cx.send(t, CartoucheMsg::Confirm { fencing: c.fencing });
                }
                let at = cx.now + self.config.quorum_timeout;
                self.retry.arm(cx, at);
            } else if self.candidacy.is_some() {
                // No majority of promises: try a higher generation later.
                self.candidacy = None;
                self.start_candidacy(cx);
            }
        } else if self.loss.fired(token) {
            if self.token.is_none() && self.candidacy.is_some() && !self.retry.is_armed() {
                // A candidacy nothing will retry any more: start afresh.
                self.candidacy = None;
            }
            if self.token.is_none() && self.candidacy.is_none() {
                self.start_candidacy(cx);
            } else {
                self.saw_token_activity(cx);
            }
        }
    }

    fn on_member_failed(&mut self, cx: &mut RingCtx<'_, I, Self>, member: &I) {
        self.order.remove(member);
        if self.token.is_some() && self.grant.is_none() && self.confirming.is_none() {
            self.process_token(cx);
        }
    }

    fn on_member_joined(&mut self, _cx: &mut RingCtx<'_, I, Self>, member: &I) {
        if self.members.contains(member) {
            self.order.insert(member.clone());
        }
    }
}

#[cfg(test)]
mod tests;
