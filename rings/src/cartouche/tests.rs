//! Unit tests of the pieces; the many-seed safety and liveness checker runs
//! in the simulator (`tests/tests/cartouche_safety.rs`).

use super::*;
use crate::contract::{Ctx, Output, TokenSource};
use alloc::vec;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

type Out = Output<u64, CartoucheMsg<u64>, CartoucheEvent>;

fn call<T>(
    c: &mut Cartouche<u64>,
    me: u64,
    now: Time,
    out: &mut Vec<Out>,
    f: impl FnOnce(&mut Cartouche<u64>, &mut RingCtx<'_, u64, Cartouche<u64>>) -> T,
) -> T {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut tokens = TokenSource::new(1);
    let mut cx = Ctx::new(now, &me, &mut rng, out, &mut tokens);
    f(c, &mut cx)
}

#[test]
fn fenced_resource_rejects_lower_numbers() {
    let mut r = FencedResource::new();
    let f = |g, s| Fencing {
        generation: g,
        sequence: s,
    };
    assert!(r.accept(f(1, 1)));
    assert!(r.accept(f(1, 1)), "several actions under one grant");
    assert!(r.accept(f(1, 5)));
    assert!(!r.accept(f(1, 4)));
    assert!(
        r.accept(f(2, 1)),
        "a new generation outranks any old sequence"
    );
    assert!(!r.accept(f(1, 9)));
    assert_eq!(r.counts(), (4, 2));
    assert_eq!(r.highest(), Some(f(2, 1)));
}

#[test]
fn acceptor_acks_each_fencing_number_once_and_blocks_promises_for_a_lease() {
    let mut c = Cartouche::new([1u64, 2, 3], CartoucheConfig::default());
    let t0 = Time::from_secs(1);
    let f = Fencing {
        generation: 1,
        sequence: 1,
    };
    assert!(c.acceptor_confirm(t0, f));
    assert!(
        !c.acceptor_confirm(t0, f),
        "no second ack for the same number"
    );
    // promises for a new generation wait for the acknowledged lease
    assert!(!c.acceptor_promise(t0 + Duration::from_millis(100), 2));
    let after = t0 + c.promise_block() + Duration::from_millis(1);
    assert!(c.acceptor_promise(after, 2));
    // and after promising 2, confirms of generation 1 are refused
    assert!(!c.acceptor_confirm(
        after,
        Fencing {
            generation: 1,
            sequence: 2
        }
    ));
    assert!(
        !c.acceptor_promise(after, 2),
        "a generation is promised once"
    );
}

#[test]
fn a_lone_member_creates_the_token_and_grants_itself() {
    let mut c = Cartouche::new([7u64], CartoucheConfig::default());
    let mut out = Vec::new();
    call(&mut c, 7, Time::ZERO, &mut out, |c, cx| c.on_start(cx));
    assert!(c.has_token());
    let id = call(&mut c, 7, Time::from_millis(1), &mut out, |c, cx| {
        c.request(cx, "cfg")
    });
    // round 1, creator index 0
    assert_eq!(
        c.holding(Time::from_millis(2)).map(|f| f.generation),
        Some(1 << 16)
    );
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Event(CartoucheEvent::Granted { id: i, .. }) if *i == id)));
    let guard = c.guard(id).expect("a guard for the active grant");
    assert_eq!(guard.fencing().generation, 1 << 16);
    assert!(c.guard(id + 1).is_none());
    call(&mut c, 7, Time::from_millis(3), &mut out, |c, cx| {
        c.release_guard(cx, guard)
    });
    assert_eq!(c.holding(Time::from_millis(4)), None);
    assert!(c.guard(id).is_none());
    // the lease bounds a grant that is never released
    let id2 = call(&mut c, 7, Time::from_millis(5), &mut out, |c, cx| {
        c.request(cx, "cfg")
    });
    let (gid, _, until) = c.grant().unwrap();
    assert_eq!(gid, id2);
    assert!(c.holding(until).is_none());
}

#[test]
fn stale_and_duplicate_tokens_are_discarded() {
    let mut c = Cartouche::new([1u64, 2, 3], CartoucheConfig::default());
    let mut out = Vec::new();
    let tok = |g, s, h| Token {
        generation: g,
        sequence: s,
        hops: h,
        queue: vec![],
    };
    call(&mut c, 2, Time::ZERO, &mut out, |c, cx| {
        c.on_message(cx, 1, CartoucheMsg::Token(tok(3, 4, 10)))
    });
    assert!(c.has_token());
    // pass it on, then see a duplicate and an older generation
    call(&mut c, 2, Time::from_millis(10), &mut out, |c, cx| {
        c.pass_token(cx)
    });
    assert!(!c.has_token());
    call(&mut c, 2, Time::from_millis(11), &mut out, |c, cx| {
        c.on_message(cx, 1, CartoucheMsg::Token(tok(3, 4, 10)))
    });
    call(&mut c, 2, Time::from_millis(12), &mut out, |c, cx| {
        c.on_message(cx, 1, CartoucheMsg::Token(tok(2, 40, 99)))
    });
    assert!(!c.has_token());
    assert_eq!(c.stats().discarded, 2);
}

#[test]
fn a_minority_never_regenerates() {
    // Node 1 of {1..5}: without a majority of pre-votes it never even asks
    // for promises, and without a majority of promises it never creates a
    // token.
    let mut c = Cartouche::new([1u64, 2, 3, 4, 5], CartoucheConfig::default());
    let mut out = Vec::new();
    call(&mut c, 1, Time::ZERO, &mut out, |c, cx| {
        c.start_candidacy(cx)
    });
    let g = c.candidacy.as_ref().unwrap().generation;
    let prevote = |c: &mut Cartouche<u64>, from: u64, out: &mut Vec<Out>| {
        call(c, 1, Time::from_millis(1), out, |c, cx| {
            c.on_message(
                cx,
                from,
                CartoucheMsg::PreVoteReply {
                    generation: g,
                    ok: true,
                },
            )
        })
    };
    let promise = |c: &mut Cartouche<u64>, from: u64, out: &mut Vec<Out>| {
        call(c, 1, Time::from_millis(2), out, |c, cx| {
            c.on_message(
                cx,
                from,
                CartoucheMsg::Promise {
                    generation: g,
                    ok: true,
                    promised: g,
                    confirmed: Fencing::default(),
                    requests: vec![],
                },
            )
        })
    };
    prevote(&mut c, 2, &mut out);
    promise(&mut c, 2, &mut out);
    promise(&mut c, 3, &mut out);
    assert!(!c.has_token(), "two pre-votes of five: no promises counted");
    assert!(!out.iter().any(|o| matches!(
        o,
        Output::Send {
            msg: CartoucheMsg::Prepare { .. },
            ..
        }
    )));
    prevote(&mut c, 3, &mut out);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Send {
            msg: CartoucheMsg::Prepare { .. },
            ..
        }
    )));
    promise(&mut c, 2, &mut out);
    assert!(!c.has_token(), "self and one promise: 2 of 5");
    assert_eq!(c.stats().regenerations, 0);
    promise(&mut c, 3, &mut out);
    assert!(c.has_token());
    assert_eq!(c.stats().regenerations, 1);
}

#[test]
fn extreme_numbers_from_peers_do_not_panic() {
    let mut c = Cartouche::new([1u64, 2, 3], CartoucheConfig::default());
    let mut out = Vec::new();
    let tok = Token {
        generation: u64::MAX,
        sequence: u64::MAX,
        hops: u64::MAX,
        queue: vec![],
    };
    call(&mut c, 2, Time::ZERO, &mut out, |c, cx| {
        c.on_message(cx, 1, CartoucheMsg::Token(tok));
        c.request(cx, "x");
        c.pass_token(cx);
        c.on_message(
            cx,
            3,
            CartoucheMsg::Prepare {
                generation: u64::MAX,
            },
        );
        c.start_candidacy(cx);
    });
}

/// Node 2 of members 1..=5, holding an idle token (generation 1) that node
/// 1 just passed it.
fn idle_holder(config: CartoucheConfig, out: &mut Vec<Out>) -> Cartouche<u64> {
    let mut c = Cartouche::new([1u64, 2, 3, 4, 5], config);
    let tok = Token {
        generation: 1,
        sequence: 0,
        hops: 3,
        queue: vec![],
    };
    call(&mut c, 2, Time::ZERO, out, |c, cx| {
        c.on_message(cx, 1, CartoucheMsg::Token(tok))
    });
    c
}

#[test]
fn an_idle_token_goes_straight_to_a_member_that_wants_it() {
    let members = [1u64, 2, 3, 4, 5];
    let mut out = Vec::new();
    // Node 2 receives the token; nobody wants it: it rests (idle).
    let mut c = idle_holder(CartoucheConfig::default(), &mut out);
    assert!(c.has_token());
    out.clear();
    // Node 5 (not 2's successor) wants it: the token goes straight there,
    // carrying 5's request.
    let want = Request {
        at: 7,
        node: 5u64,
        id: 1,
        name: "x".into(),
        refreshed: 0,
    };
    call(&mut c, 2, Time::from_millis(1), &mut out, |c, cx| {
        c.on_message(
            cx,
            5,
            CartoucheMsg::Want {
                request: want.clone(),
            },
        )
    });
    assert!(!c.has_token());
    assert_eq!(c.stats().shortcuts, 1);
    let sent: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                msg: CartoucheMsg::Token(t),
            } => Some((*to, t.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 1, "{out:?}");
    assert_eq!(sent[0].0, 5);
    assert_eq!(sent[0].1.queue.len(), 1);
    assert_eq!(sent[0].1.queue[0].node, 5);
    assert_eq!(sent[0].1.hops, 4);

    // A Want that claims to come from someone else is ignored, and so is a
    // Want while the token is away.
    out.clear();
    call(&mut c, 2, Time::from_millis(2), &mut out, |c, cx| {
        c.on_message(
            cx,
            3,
            CartoucheMsg::Want {
                request: want.clone(),
            },
        )
    });
    assert!(out.iter().all(|o| !matches!(
        o,
        Output::Send {
            msg: CartoucheMsg::Token(_),
            ..
        }
    )));

    // A busy token (someone else queued) is not diverted.
    let mut b = Cartouche::new(members, CartoucheConfig::default());
    let busy = Token {
        generation: 1,
        sequence: 0,
        hops: 3,
        queue: vec![Request {
            at: 1,
            node: 4u64,
            id: 9,
            name: "y".into(),
            refreshed: 3,
        }],
    };
    call(&mut b, 2, Time::ZERO, &mut out, |c, cx| {
        c.on_message(cx, 1, CartoucheMsg::Token(busy))
    });
    out.clear();
    call(&mut b, 2, Time::from_millis(1), &mut out, |c, cx| {
        c.on_message(cx, 5, CartoucheMsg::Want { request: want })
    });
    assert_eq!(b.stats().shortcuts, 0);
}

/// With the shortcut off, a requester without the token sends no `Want`,
/// and an idle holder keeps its token when one arrives; on, the same
/// request multicasts `Want` to the four other members.
#[test]
fn the_want_shortcut_can_be_turned_off() {
    let members = [1u64, 2, 3, 4, 5];
    let wants = |out: &[Out]| {
        out.iter()
            .filter(|o| {
                matches!(
                    o,
                    Output::Send {
                        msg: CartoucheMsg::Want { .. },
                        ..
                    }
                )
            })
            .count()
    };
    for (shortcut, want_sent) in [(true, 4), (false, 0)] {
        let config = CartoucheConfig {
            want_shortcut: shortcut,
            ..CartoucheConfig::default()
        };
        let mut c = Cartouche::new(members, config.clone());
        let mut out = Vec::new();
        call(&mut c, 5, Time::ZERO, &mut out, |c, cx| c.request(cx, "x"));
        assert_eq!(wants(&out), want_sent, "shortcut {shortcut}: {out:?}");

        let mut idle = idle_holder(config, &mut out);
        out.clear();
        let want = Request {
            at: 7,
            node: 5u64,
            id: 1,
            name: "x".into(),
            refreshed: 0,
        };
        call(&mut idle, 2, Time::from_millis(1), &mut out, |c, cx| {
            c.on_message(cx, 5, CartoucheMsg::Want { request: want })
        });
        assert_eq!(idle.has_token(), !shortcut, "shortcut {shortcut}");
        assert_eq!(idle.stats().shortcuts, u64::from(shortcut));
    }
}

/// The last timer armed in `out`.
fn last_timer(out: &[Out]) -> TimerToken {
    out.iter()
        .rev()
        .find_map(|o| match o {
            Output::SetTimer { token, .. } => Some(*token),
            _ => None,
        })
        .expect("a timer was armed")
}

#[test]
fn a_live_token_ends_a_candidacy_and_an_orphaned_one_is_restarted() {
    let mut c = Cartouche::new([1u64, 2, 3], CartoucheConfig::default());
    let mut out = Vec::new();
    let t = Time::from_secs(10);
    call(&mut c, 2, t, &mut out, |c, cx| c.start_candidacy(cx));
    let generation = c.candidacy.as_ref().expect("candidate").generation;
    // A token of a lower generation than the candidacy's arrives: the token
    // is alive, so the candidacy is over (before, it stayed and lost its
    // retry timer to the token's confirm rounds).
    let tok = Token {
        generation: 1 << 16,
        sequence: 0,
        hops: 1,
        queue: vec![],
    };
    assert!(tok.generation < generation);
    call(&mut c, 2, t, &mut out, |c, cx| {
        c.on_message(cx, 1, CartoucheMsg::Token(tok))
    });
    assert!(c.candidacy.is_none(), "a live token ends the candidacy");

    // A candidacy that nothing retries any more (its timer taken by
    // something else) is replaced when the loss timer fires, instead of
    // counting as token activity forever.
    c.token = None;
    call(&mut c, 2, t, &mut out, |c, cx| {
        c.start_candidacy(cx);
        c.retry.disarm(cx);
    });
    let before = c.stats.candidacies;
    out.clear();
    let later = t + c.loss_timeout() * 2;
    call(&mut c, 2, later, &mut out, |c, cx| c.loss.arm(cx, later));
    let loss = last_timer(&out);
    out.clear();
    call(&mut c, 2, later, &mut out, |c, cx| c.on_timer(cx, loss));
    assert_eq!(c.stats.candidacies, before + 1, "a fresh candidacy");
    assert!(c.retry.is_armed(), "and it will be retried");
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Send {
            msg: CartoucheMsg::PreVote { .. },
            ..
        }
    )));
}

#[test]
fn a_restarted_acceptor_keeps_its_promises_and_blocks_new_ones_for_a_lease() {
    let store = MemoryAcceptorStore::new();
    let mut c = Cartouche::new([1u64, 2, 3], CartoucheConfig::default())
        .with_store(Box::new(store.clone()))
        .unwrap();
    assert!(c.gates_sends() && !c.is_restored() && !c.needs_flush());
    let mut out = Vec::new();
    let f = Fencing {
        generation: 1,
        sequence: 4,
    };
    // A Confirm: the answer is produced, and the state must be flushed
    // before it may leave (the node holds it until `on_flush` says so).
    call(&mut c, 2, Time::ZERO, &mut out, |c, cx| {
        c.on_message(cx, 1, CartoucheMsg::Confirm { fencing: f })
    });
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Send {
            msg: CartoucheMsg::ConfirmAck { ok: true, .. },
            ..
        }
    )));
    assert!(c.needs_flush());
    assert!(call(&mut c, 2, Time::ZERO, &mut out, |c, cx| c.on_flush(cx)));
    assert!(!c.needs_flush());
    assert_eq!(store.writes(), 1);

    // Restart (a new process, its clock from zero): the state is back.
    let mut r = Cartouche::new([1u64, 2, 3], CartoucheConfig::default())
        .with_store(Box::new(store.clone()))
        .unwrap();
    assert!(r.is_restored());
    assert_eq!(r.acceptor_state(), c.acceptor_state());
    let mut out = Vec::new();
    call(&mut r, 2, Time::ZERO, &mut out, |c, cx| c.on_start(cx));
    // Not a second acknowledgement of the same number ...
    assert!(!r.acceptor_confirm(Time::ZERO, f));
    // ... and no promise before a whole lease after boot.
    assert!(!r.acceptor_promise(Time::from_millis(100), 2));
    let after = Time::ZERO + r.promise_block() + Duration::from_millis(1);
    assert!(r.acceptor_promise(after, 2));

    // A damaged record is an error, not a fresh start.
    let mut bad = MemoryAcceptorStore::new();
    bad.store(&[1, 0xff]).unwrap();
    assert!(Cartouche::new([1u64, 2, 3], CartoucheConfig::default())
        .with_store(Box::new(bad))
        .is_err());
}

#[test]
fn a_failing_acceptor_store_stops_the_member() {
    let store = MemoryAcceptorStore::new();
    let mut c = Cartouche::new([1u64, 2, 3], CartoucheConfig::default())
        .with_store(Box::new(store.clone()))
        .unwrap();
    let mut out = Vec::new();
    call(&mut c, 2, Time::ZERO, &mut out, |c, cx| {
        c.on_message(
            cx,
            1,
            CartoucheMsg::Confirm {
                fencing: Fencing {
                    generation: 1,
                    sequence: 1,
                },
            },
        )
    });
    store.set_failing(true);
    assert!(!call(&mut c, 2, Time::ZERO, &mut out, |c, cx| c.on_flush(cx)));
    assert!(c.storage_failed());
    let mut out = Vec::new();
    call(&mut c, 2, Time::ZERO, &mut out, |c, cx| {
        c.on_message(cx, 1, CartoucheMsg::Prepare { generation: 9 })
    });
    assert!(out.is_empty(), "a failed member answers nothing");
}
