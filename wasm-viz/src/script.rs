//! The fault script: every action a user took, with its virtual time, in a
//! compact text form that fits in a URL (`#seed=7&faults=...`).
//!
//! Format: actions separated by `,`; each is `TIME:OP[:ARG]` with `TIME` in
//! whole microseconds of virtual time:
//!
//! | text | action |
//! |---|---|
//! | `1200000:crash:3` | crash node 3 |
//! | `1500000:restart:3` | restart node 3 (disk kept) |
//! | `2000000:part:0.1.2/3.4` | partition into groups `{0,1,2}` and `{3,4}` |
//! | `3000000:heal` | remove every partition |
//! | `3500000:loss:0.2` | global message loss probability |
//! | `3600000:lat:40` | global mean latency in ms (uniform ±50%) |
//! | `4000000:drop:812` | drop in-flight message 812 |
//! | `4500123:add` | add a node |
//! | `4600123:req:2` | node 2 asks for the Cartouche token |
//! | `4700000:app:2.k7` | node 2 appends to the Shen log under key `k7` (log worlds) |
//! | `4800000:read:2.5` | node 2 reads partition 5 of the log at its tail (log worlds) |
//! | `4900123:leave:2` | node 2 asks to leave the log's member set; it stops once out (log worlds) |
//! | `4900456:remove:2` | the lowest other running node asks to remove (dead) member 2 (log worlds) |
//! | `5000000:pause:2.800` | stall node 2 for 800 ms (a GC pause) |
//! | `5100000:skew:2.-300` | step node 2's clock by −300 ms |
//! | `5200000:power:2` | power loss: restart node 2, losing its unsynced disk writes |
//! | `5300123:deliver:812` | delivery choice: message 812 is delivered now |
//! | `5300456:fire:2.3.7` | delivery choice: node 2's timer 7 of ring 3 fires now |
//! | `5300789:lose:812` | delivery choice: message 812 is lost now |
//!
//! Faults (`crash` ... `drop`, `pause`, `skew`, `power`) happen on whole milliseconds, so a script made
//! only of them is also a scenario's fault schedule; `add`, `req`, `app`,
//! `read`, `leave`, `remove` and the delivery choices (`deliver`, `fire`, `lose`) happen at any
//! microsecond, exactly when they were made.

use core::fmt;

use shen_rings::cartouche::Fencing;
use shen_rings::ouroboros::FoundingChain;
use shen_rings::stack::StartState;

/// One user action.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Crash a node.
    Crash(u64),
    /// Restart a node, keeping its disk.
    Restart(u64),
    /// Partition into groups (unlisted nodes form one more group).
    Partition(Vec<Vec<u64>>),
    /// Remove every partition.
    Heal,
    /// Global loss probability in `[0, 1]`.
    Loss(f64),
    /// Global mean latency in ms (`> 0`).
    Latency(f64),
    /// Drop one in-flight message.
    Drop(u64),
    /// Add a node (the next id).
    AddNode,
    /// A node asks for the Cartouche token.
    Request(u64),
    /// A node appends to the Shen log (Ouroboros) under a key; the payload
    /// is the key and the append's ordinal in the script (`k7#3`).
    Append {
        /// The client node.
        node: u64,
        /// The routing key ([`valid_key`]).
        key: String,
    },
    /// A node reads a partition of the Shen log at its tail (from offset
    /// 0, up to the read limit).
    Read {
        /// The client node.
        node: u64,
        /// The partition.
        partition: u32,
    },
    /// A log member asks to leave the log's member set (`shen leave`): its
    /// chains move away, and once its own table no longer lists it, the
    /// world stops it for good.
    Leave(u64),
    /// The lowest running member asks to remove member `n`, which is down,
    /// from the log's member set (`shen member remove` of a dead node).
    RemoveMember(u64),
    /// Stall a node for `ms` (deliveries and timers due meanwhile wait).
    Pause {
        /// The node.
        node: u64,
        /// How long, ms (`> 0`).
        ms: f64,
    },
    /// Step a node's clock by `ms` (negative: backwards).
    Skew {
        /// The node.
        node: u64,
        /// The step, ms.
        ms: f64,
    },
    /// Power loss: restart a node; its writes not yet fsynced are lost.
    PowerLoss(u64),
    /// Delivery choice: deliver this in-flight message now.
    Deliver(u64),
    /// Delivery choice: fire this armed timer now.
    Fire {
        /// The node.
        node: u64,
        /// The ring's number ([`shen_rings::RingId`]).
        ring: u16,
        /// The ring's timer token.
        token: u64,
    },
    /// Delivery choice: lose this in-flight message now.
    Lose(u64),
}

/// The longest pause or clock step the page offers, ms.
pub const MAX_STALL_MS: f64 = 60_000.0;

/// Longest log key a script may carry.
pub const MAX_KEY_LEN: usize = 32;

/// A log key fits in a URL as is: 1 to [`MAX_KEY_LEN`] ASCII letters,
/// digits, `_` or `-`.
pub fn valid_key(key: &str) -> bool {
    (1..=MAX_KEY_LEN).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Op {
    /// Whether the action is a simulator fault (scheduled on a whole
    /// millisecond) rather than an immediate action (`add`, `req`).
    pub fn is_fault(&self) -> bool {
        !matches!(
            self,
            Op::AddNode
                | Op::Request(_)
                | Op::Append { .. }
                | Op::Read { .. }
                | Op::Leave(_)
                | Op::RemoveMember(_)
                | Op::Deliver(_)
                | Op::Fire { .. }
                | Op::Lose(_)
        )
    }
}

/// An action at a virtual time.
#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    /// Virtual time in microseconds.
    pub at_us: u64,
    /// What happened.
    pub op: Op,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.at_us)?;
        match &self.op {
            Op::Crash(n) => write!(f, "crash:{n}"),
            Op::Restart(n) => write!(f, "restart:{n}"),
            Op::Partition(groups) => {
                f.write_str("part:")?;
                for (i, g) in groups.iter().enumerate() {
                    if i > 0 {
                        f.write_str("/")?;
                    }
                    let ids: Vec<String> = g.iter().map(u64::to_string).collect();
                    f.write_str(&ids.join("."))?;
                }
                Ok(())
            }
            Op::Heal => f.write_str("heal"),
            Op::Loss(p) => write!(f, "loss:{p}"),
            Op::Latency(ms) => write!(f, "lat:{ms}"),
            Op::Drop(id) => write!(f, "drop:{id}"),
            Op::AddNode => f.write_str("add"),
            Op::Request(n) => write!(f, "req:{n}"),
            Op::Append { node, key } => write!(f, "app:{node}.{key}"),
            Op::Read { node, partition } => write!(f, "read:{node}.{partition}"),
            Op::Leave(n) => write!(f, "leave:{n}"),
            Op::RemoveMember(n) => write!(f, "remove:{n}"),
            Op::Pause { node, ms } => write!(f, "pause:{node}.{ms}"),
            Op::Skew { node, ms } => write!(f, "skew:{node}.{ms}"),
            Op::PowerLoss(n) => write!(f, "power:{n}"),
            Op::Deliver(id) => write!(f, "deliver:{id}"),
            Op::Fire { node, ring, token } => write!(f, "fire:{node}.{ring}.{token}"),
            Op::Lose(id) => write!(f, "lose:{id}"),
        }
    }
}

/// A pause (`pause`: `0 < ms`) or clock step (`|ms|`, not 0) must be
/// finite and at most [`MAX_STALL_MS`].
///
/// # Errors
/// What is wrong with `ms`.
pub fn check_stall(pause: bool, ms: f64) -> Result<(), String> {
    let what = if pause { "a pause" } else { "a clock step" };
    let ok = ms.is_finite() && ms.abs() <= MAX_STALL_MS && if pause { ms > 0.0 } else { ms != 0.0 };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} must be {} and at most {MAX_STALL_MS} ms, got {ms}",
            if pause { "positive" } else { "non-zero" }
        ))
    }
}

/// Format a whole script.
pub fn format_script(actions: &[Action]) -> String {
    let parts: Vec<String> = actions.iter().map(Action::to_string).collect();
    parts.join(",")
}

fn num<T: core::str::FromStr>(text: &str, what: &str, item: usize) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("faults item {item}: {what} `{text}` is not a valid number"))
}

/// Parse a script (the empty string is no action). Times must not go
/// backwards; fault times must be whole milliseconds.
///
/// # Errors
///
/// A message naming the item (1-based) and what is wrong with it.
pub fn parse_script(text: &str) -> Result<Vec<Action>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let mut out: Vec<Action> = Vec::new();
    for (i, item) in text.split(',').enumerate() {
        let item_no = i + 1;
        let mut parts = item.trim().splitn(3, ':');
        let at_us: u64 = num(parts.next().unwrap_or(""), "time", item_no)?;
        let op = parts.next().unwrap_or("");
        let arg = parts.next();
        let need = |name: &str| {
            arg.ok_or_else(|| format!("faults item {item_no}: `{name}` needs an argument"))
        };
        let op = match op {
            "crash" => Op::Crash(num(need("crash")?, "node", item_no)?),
            "restart" => Op::Restart(num(need("restart")?, "node", item_no)?),
            "part" => {
                let mut groups = Vec::new();
                for g in need("part")?.split('/') {
                    let ids = g
                        .split('.')
                        .map(|n| num::<u64>(n, "node", item_no))
                        .collect::<Result<Vec<_>, _>>()?;
                    groups.push(ids);
                }
                Op::Partition(groups)
            }
            "heal" => Op::Heal,
            "loss" => {
                let p: f64 = num(need("loss")?, "loss", item_no)?;
                if !(0.0..=1.0).contains(&p) {
                    return Err(format!(
                        "faults item {item_no}: loss must be within [0, 1], got {p}"
                    ));
                }
                Op::Loss(p)
            }
            "lat" => {
                let ms: f64 = num(need("lat")?, "latency", item_no)?;
                if !(ms.is_finite() && ms > 0.0 && ms <= 10_000.0) {
                    return Err(format!(
                        "faults item {item_no}: latency must be within (0, 10000] ms, got {ms}"
                    ));
                }
                Op::Latency(ms)
            }
            "drop" => Op::Drop(num(need("drop")?, "message", item_no)?),
            "add" => Op::AddNode,
            "req" => Op::Request(num(need("req")?, "node", item_no)?),
            "app" => {
                let arg = need("app")?;
                let (node, key) = arg.split_once('.').ok_or_else(|| {
                    format!("faults item {item_no}: `app` wants NODE.KEY, got `{arg}`")
                })?;
                if !valid_key(key) {
                    return Err(format!(
                        "faults item {item_no}: key `{key}`: want 1 to {MAX_KEY_LEN} letters, \
                         digits, `_` or `-`"
                    ));
                }
                Op::Append {
                    node: num(node, "node", item_no)?,
                    key: key.to_string(),
                }
            }
            "read" => {
                let arg = need("read")?;
                let (node, p) = arg.split_once('.').ok_or_else(|| {
                    format!("faults item {item_no}: `read` wants NODE.PARTITION, got `{arg}`")
                })?;
                Op::Read {
                    node: num(node, "node", item_no)?,
                    partition: num(p, "partition", item_no)?,
                }
            }
            "pause" | "skew" => {
                let arg = need(op)?;
                let (node, ms) = arg.split_once('.').ok_or_else(|| {
                    format!("faults item {item_no}: `{op}` wants NODE.MS, got `{arg}`")
                })?;
                let node = num(node, "node", item_no)?;
                let ms: f64 = num(ms, "ms", item_no)?;
                check_stall(op == "pause", ms)
                    .map_err(|e| format!("faults item {item_no}: {e}"))?;
                if op == "pause" {
                    Op::Pause { node, ms }
                } else {
                    Op::Skew { node, ms }
                }
            }
            "power" => Op::PowerLoss(num(need("power")?, "node", item_no)?),
            "leave" => Op::Leave(num(need("leave")?, "node", item_no)?),
            "remove" => Op::RemoveMember(num(need("remove")?, "node", item_no)?),
            "deliver" => Op::Deliver(num(need("deliver")?, "message", item_no)?),
            "lose" => Op::Lose(num(need("lose")?, "message", item_no)?),
            "fire" => {
                let arg = need("fire")?;
                let mut it = arg.splitn(3, '.');
                let (Some(node), Some(ring), Some(token)) = (it.next(), it.next(), it.next())
                else {
                    return Err(format!(
                        "faults item {item_no}: `fire` wants NODE.RING.TOKEN, got `{arg}`"
                    ));
                };
                Op::Fire {
                    node: num(node, "node", item_no)?,
                    ring: num(ring, "ring", item_no)?,
                    token: num(token, "token", item_no)?,
                }
            }
            other => {
                return Err(format!(
                    "faults item {item_no}: unknown action `{other}` (crash, restart, part, heal, \
                     loss, lat, drop, add, req, app, read, leave, remove, pause, skew, power, deliver, \
                     fire, lose)"
                ))
            }
        };
        if matches!(op, Op::Heal | Op::AddNode) && arg.is_some() {
            return Err(format!(
                "faults item {item_no}: this action takes no argument"
            ));
        }
        if op.is_fault() && at_us % 1000 != 0 {
            return Err(format!(
                "faults item {item_no}: fault times are whole milliseconds (got {at_us} µs)"
            ));
        }
        if let Some(prev) = out.last() {
            // Faults are scheduled a little ahead of the click that made
            // them, so a later immediate action may carry an earlier time;
            // but no action may precede the previous immediate action.
            let floor = out
                .iter()
                .rev()
                .find(|a| !a.op.is_fault())
                .map_or(0, |a| a.at_us);
            if at_us < floor || (!op.is_fault() && at_us + 1000 < prev.at_us) {
                return Err(format!(
                    "faults item {item_no}: time {at_us} goes backwards"
                ));
            }
        }
        out.push(Action { at_us, op });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_action() {
        let script = vec![
            Action {
                at_us: 1_000,
                op: Op::Crash(3),
            },
            Action {
                at_us: 2_000,
                op: Op::Restart(3),
            },
            Action {
                at_us: 3_000,
                op: Op::Partition(vec![vec![0, 1], vec![2]]),
            },
            Action {
                at_us: 4_000,
                op: Op::Heal,
            },
            Action {
                at_us: 5_000,
                op: Op::Loss(0.25),
            },
            Action {
                at_us: 6_000,
                op: Op::Latency(40.0),
            },
            Action {
                at_us: 7_000,
                op: Op::Drop(812),
            },
            Action {
                at_us: 7_123,
                op: Op::AddNode,
            },
            Action {
                at_us: 7_200,
                op: Op::Request(2),
            },
            Action {
                at_us: 7_300,
                op: Op::Append {
                    node: 1,
                    key: "k-7_x".into(),
                },
            },
            Action {
                at_us: 7_400,
                op: Op::Read {
                    node: 0,
                    partition: 5,
                },
            },
            Action {
                at_us: 8_000,
                op: Op::Pause { node: 2, ms: 800.0 },
            },
            Action {
                at_us: 9_000,
                op: Op::Skew {
                    node: 1,
                    ms: -250.5,
                },
            },
            Action {
                at_us: 10_000,
                op: Op::PowerLoss(4),
            },
            Action {
                at_us: 10_001,
                op: Op::Deliver(77),
            },
            Action {
                at_us: 10_002,
                op: Op::Fire {
                    node: 1,
                    ring: 3,
                    token: 9,
                },
            },
            Action {
                at_us: 10_003,
                op: Op::Lose(78),
            },
            Action {
                at_us: 10_004,
                op: Op::Leave(2),
            },
            Action {
                at_us: 10_005,
                op: Op::RemoveMember(3),
            },
        ];
        let text = format_script(&script);
        assert_eq!(
            text,
            "1000:crash:3,2000:restart:3,3000:part:0.1/2,4000:heal,5000:loss:0.25,\
             6000:lat:40,7000:drop:812,7123:add,7200:req:2,7300:app:1.k-7_x,7400:read:0.5,\
             8000:pause:2.800,9000:skew:1.-250.5,10000:power:4,10001:deliver:77,10002:fire:1.3.9,\
             10003:lose:78,10004:leave:2,10005:remove:3"
        );
        assert_eq!(parse_script(&text).unwrap(), script);
        assert_eq!(parse_script("").unwrap(), vec![]);
        assert_eq!(parse_script("  ").unwrap(), vec![]);
    }

    #[test]
    fn a_fault_may_be_scheduled_just_after_a_later_click() {
        // Crash clicked at 1.2 ms is scheduled at 2 ms; an add clicked at
        // 1.5 ms comes after it in the script.
        let s = parse_script("2000:crash:1,1500:add,1600:req:0").unwrap();
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn bad_scripts_are_errors_naming_the_item() {
        for (text, want) in [
            ("x:crash:1", "item 1: time `x`"),
            ("1000:crash", "item 1: `crash` needs an argument"),
            ("1000:crash:a", "item 1: node `a`"),
            ("1000:heal,2000:boom", "item 2: unknown action `boom`"),
            ("1000:loss:2", "loss must be within"),
            ("1000:lat:0", "latency must be within"),
            ("1000:lat:NaN", "latency must be within"),
            ("1000:pause:2", "item 1: `pause` wants NODE.MS"),
            ("1000:pause:2.0", "a pause must be positive"),
            ("1000:pause:2.-5", "a pause must be positive"),
            ("1000:skew:2.0", "a clock step must be non-zero"),
            ("1000:skew:2.1e9", "at most 60000 ms"),
            ("1000:power:x", "item 1: node `x`"),
            ("1000:fire:1.2", "item 1: `fire` wants NODE.RING.TOKEN"),
            ("1000:fire:1.70000.2", "item 1: ring `70000`"),
            ("1000:deliver", "item 1: `deliver` needs an argument"),
            ("1500:crash:1", "whole milliseconds"),
            ("1000:heal:3", "takes no argument"),
            ("5000:add,1000:crash:1", "goes backwards"),
            ("9000:crash:1,5000:add", "goes backwards"),
            ("1000:part:0./1", "node ``"),
            ("1000:app:1", "`app` wants NODE.KEY"),
            ("1000:app:1.", "key ``"),
            ("1000:app:1.a b", "key `a b`"),
            ("1000:app:x.k", "node `x`"),
            ("1000:read:1", "`read` wants NODE.PARTITION"),
            ("1000:read:1.-2", "partition `-2`"),
        ] {
            let e = parse_script(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}

/// What a page URL's hash (`#seed=7&nodes=5&faults=...&t=12000`) asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct UrlParams {
    /// World seed (default 1).
    pub seed: u64,
    /// Nodes at the start (default 5).
    pub nodes: u64,
    /// Mean latency, ms (default 40).
    pub latency_ms: f64,
    /// Virtual nodes per node in the drawn Ankh ring (default 8).
    pub vnodes: u32,
    /// The fault script.
    pub faults: Vec<Action>,
    /// Run to this virtual time (µs; written `t=MS` or `t=MS.mmm`, to the
    /// microsecond) on load, if given.
    pub t_us: Option<u64>,
    /// Rings to run (`sundial`, `cartouche`, `ouroboros`); `None`: the
    /// default for the world's size.
    pub rings: Option<Vec<String>>,
    /// Sundial's peers per gossip round (`fanout=N`, 1..=[`MAX_FANOUT`]);
    /// `None`: Sundial's default.
    pub fanout: Option<usize>,
    /// Sundial's phi threshold (`phi=X`, within `(0, `[`MAX_PHI`]`]`);
    /// `None`: Sundial's default.
    pub phi: Option<f64>,
    /// Log worlds: Ouroboros bypasses a slow successor (`bypass=off`: it
    /// never does; default on).
    pub bypass: bool,
    /// Worlds with Cartouche: the idle-token `Want` shortcut
    /// (`shortcut=off`: requests wait for the token's walk; default on).
    pub shortcut: bool,
    /// Where the world starts when it continues a live cluster (the
    /// fork): `down=3,5` (nodes every view holds dead) and
    /// `chains=G.S:0-1-2,...` (each partition's chain, head first, with
    /// its epoch `generation.sequence`). Empty: a fresh cluster.
    pub start: StartState,
}

/// The most chains (partitions) a URL may give.
pub const MAX_URL_CHAINS: usize = 256;

/// `G.S:0-1-2,...` as founding chains.
fn parse_chains(v: &str) -> Result<Vec<FoundingChain>, String> {
    let mut out = Vec::new();
    for (p, item) in v.split(',').enumerate() {
        let bad = |what: &str| format!("URL `chains`: partition {p} (`{item}`): {what}");
        let (epoch, members) = item
            .split_once(':')
            .ok_or_else(|| bad("want GENERATION.SEQUENCE:NODE-NODE-..."))?;
        let (g, q) = epoch
            .split_once('.')
            .ok_or_else(|| bad("want an epoch GENERATION.SEQUENCE"))?;
        let epoch = Fencing {
            generation: g.parse().map_err(|_| bad("bad epoch generation"))?,
            sequence: q.parse().map_err(|_| bad("bad epoch sequence"))?,
        };
        let members = members
            .split('-')
            .map(|m| {
                m.parse::<u32>()
                    .map_err(|_| bad("want node numbers joined by -"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.push(FoundingChain { epoch, members });
        if out.len() > MAX_URL_CHAINS {
            return Err(format!("URL `chains`: at most {MAX_URL_CHAINS} partitions"));
        }
    }
    Ok(out)
}

/// Founding chains in their URL form (see [`parse_chains`]).
pub fn format_chains(chains: &[FoundingChain]) -> String {
    let one = |c: &FoundingChain| {
        let m: Vec<String> = c.members.iter().map(u32::to_string).collect();
        format!(
            "{}.{}:{}",
            c.epoch.generation,
            c.epoch.sequence,
            m.join("-")
        )
    };
    chains.iter().map(one).collect::<Vec<_>>().join(",")
}

/// The largest gossip fanout a URL may ask for.
pub const MAX_FANOUT: usize = 16;
/// The largest phi threshold a URL may ask for.
pub const MAX_PHI: f64 = 100.0;

/// `MS` or `MS.mmm` (1 to 3 decimals) as µs.
fn parse_ms_us(v: &str) -> Option<u64> {
    let (ms, frac) = v.split_once('.').unwrap_or((v, ""));
    if ms.is_empty() || !ms.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ms: u64 = ms.parse().ok()?;
    let us = if v.contains('.') {
        if frac.is_empty() || frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        format!("{frac:0<3}").parse::<u64>().ok()?
    } else {
        0
    };
    ms.checked_mul(1000)?.checked_add(us)
}

impl Default for UrlParams {
    fn default() -> Self {
        UrlParams {
            seed: 1,
            nodes: 5,
            latency_ms: 40.0,
            vnodes: 8,
            faults: Vec::new(),
            t_us: None,
            rings: None,
            fanout: None,
            phi: None,
            bypass: true,
            shortcut: true,
            start: StartState::default(),
        }
    }
}

impl UrlParams {
    /// Parse a URL hash (with or without the leading `#`). Unknown keys are
    /// errors, so a mistyped link is not silently another run.
    ///
    /// # Errors
    /// A message naming the key.
    pub fn parse(hash: &str) -> Result<UrlParams, String> {
        let mut p = UrlParams::default();
        let hash = hash.trim().trim_start_matches('#');
        for pair in hash.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let bad = |what: &str| format!("URL `{k}`: {what}, got `{v}`");
            match k {
                "seed" => p.seed = v.parse().map_err(|_| bad("want an integer 0..2^64"))?,
                "nodes" => {
                    p.nodes = v.parse().map_err(|_| bad("want a node count"))?;
                    if p.nodes == 0 {
                        return Err(bad("want at least 1 node"));
                    }
                }
                "lat" => {
                    p.latency_ms = v.parse().map_err(|_| bad("want ms"))?;
                    if !(p.latency_ms.is_finite() && p.latency_ms > 0.0) {
                        return Err(bad("want a positive number of ms"));
                    }
                }
                "vnodes" => {
                    p.vnodes = v.parse().map_err(|_| bad("want a count"))?;
                    if !(1..=1024).contains(&p.vnodes) {
                        return Err(bad("want 1..=1024"));
                    }
                }
                "faults" => {
                    let text = v
                        .replace("%2C", ",")
                        .replace("%3A", ":")
                        .replace("%2F", "/");
                    p.faults = parse_script(&text).map_err(|e| format!("URL `faults`: {e}"))?;
                }
                "t" => {
                    p.t_us =
                        Some(parse_ms_us(v).ok_or_else(|| bad("want ms (to the µs: 1234.567)"))?)
                }
                "rings" => {
                    let rings: Vec<String> = v
                        .split(',')
                        .filter(|r| !r.is_empty())
                        .map(str::to_string)
                        .collect();
                    if let Some(r) = rings
                        .iter()
                        .find(|r| !["sundial", "cartouche", "ouroboros"].contains(&r.as_str()))
                    {
                        return Err(format!(
                            "URL `rings`: unknown ring `{r}` (sundial, cartouche, ouroboros)"
                        ));
                    }
                    if rings.is_empty() {
                        return Err(bad("want sundial, cartouche and/or ouroboros"));
                    }
                    p.rings = Some(rings);
                }
                "fanout" => {
                    let f: usize = v.parse().map_err(|_| bad("want a count"))?;
                    if !(1..=MAX_FANOUT).contains(&f) {
                        return Err(bad(&format!("want 1..={MAX_FANOUT}")));
                    }
                    p.fanout = Some(f);
                }
                "phi" => {
                    let x: f64 = v.parse().map_err(|_| bad("want a number"))?;
                    if !(x.is_finite() && x > 0.0 && x <= MAX_PHI) {
                        return Err(bad(&format!("want a threshold within (0, {MAX_PHI}]")));
                    }
                    p.phi = Some(x);
                }
                "bypass" | "shortcut" => {
                    let on = match v {
                        "on" => true,
                        "off" => false,
                        _ => return Err(bad("want on or off")),
                    };
                    if k == "bypass" {
                        p.bypass = on;
                    } else {
                        p.shortcut = on;
                    }
                }
                "down" => {
                    p.start.down = v
                        .replace("%2C", ",")
                        .split(',')
                        .map(|d| d.parse::<u32>())
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|_| bad("want node numbers separated by commas"))?;
                }
                "chains" => {
                    let text = v.replace("%2C", ",").replace("%3A", ":");
                    p.start.chains = parse_chains(&text)?;
                }
                _ => {
                    return Err(format!(
                        "URL: unknown key `{k}` (seed, nodes, lat, vnodes, rings, fanout, phi, \
                         bypass, shortcut, down, chains, faults, t)"
                    ))
                }
            }
        }
        Ok(p)
    }

    /// The hash for these parameters (without `t` unless set).
    pub fn to_hash(&self) -> String {
        let mut s = format!("seed={}&nodes={}", self.seed, self.nodes);
        if self.latency_ms != 40.0 {
            s.push_str(&format!("&lat={}", self.latency_ms));
        }
        if self.vnodes != 8 {
            s.push_str(&format!("&vnodes={}", self.vnodes));
        }
        if let Some(r) = &self.rings {
            s.push_str("&rings=");
            s.push_str(&r.join(","));
        }
        if let Some(f) = self.fanout {
            s.push_str(&format!("&fanout={f}"));
        }
        if let Some(x) = self.phi {
            s.push_str(&format!("&phi={x}"));
        }
        if !self.bypass {
            s.push_str("&bypass=off");
        }
        if !self.shortcut {
            s.push_str("&shortcut=off");
        }
        if !self.start.down.is_empty() {
            let d: Vec<String> = self.start.down.iter().map(u32::to_string).collect();
            s.push_str("&down=");
            s.push_str(&d.join(","));
        }
        if !self.start.chains.is_empty() {
            s.push_str("&chains=");
            s.push_str(&format_chains(&self.start.chains));
        }
        if !self.faults.is_empty() {
            s.push_str("&faults=");
            s.push_str(&format_script(&self.faults));
        }
        if let Some(t) = self.t_us {
            if t % 1000 == 0 {
                s.push_str(&format!("&t={}", t / 1000));
            } else {
                s.push_str(&format!("&t={}.{:03}", t / 1000, t % 1000));
            }
        }
        s
    }
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn url_hash_round_trips_and_rejects_bad_keys() {
        let p = UrlParams::parse(
            "#seed=18446744073709551615&nodes=7&faults=1000:crash:3,2500:add&t=4000",
        )
        .unwrap();
        assert_eq!(p.seed, u64::MAX);
        assert_eq!(p.nodes, 7);
        assert_eq!(p.faults.len(), 2);
        assert_eq!(p.t_us, Some(4_000_000));
        let q = UrlParams::parse("t=12.5").unwrap();
        assert_eq!(q.t_us, Some(12_500));
        assert!(q.to_hash().ends_with("&t=12.500"));
        assert_eq!(UrlParams::parse(&q.to_hash()).unwrap(), q);
        assert_eq!(UrlParams::parse("t=7.034").unwrap().t_us, Some(7_034));
        for bad in ["t=1.2345", "t=.5", "t=1.", "t=-1", "t=x"] {
            assert!(UrlParams::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(UrlParams::parse(&p.to_hash()).unwrap(), p);
        assert_eq!(UrlParams::parse("").unwrap(), UrlParams::default());
        let log =
            UrlParams::parse("nodes=5&rings=sundial,cartouche,ouroboros&faults=1500:app:2.k1")
                .unwrap();
        assert_eq!(log.rings.as_ref().map(Vec::len), Some(3));
        assert_eq!(UrlParams::parse(&log.to_hash()).unwrap(), log);
        let tuned = UrlParams::parse("fanout=1&phi=4.5&bypass=off&shortcut=off").unwrap();
        assert_eq!(
            (tuned.fanout, tuned.phi, tuned.bypass, tuned.shortcut),
            (Some(1), Some(4.5), false, false)
        );
        assert_eq!(UrlParams::parse(&tuned.to_hash()).unwrap(), tuned);
        let forked = UrlParams::parse("nodes=4&down=3&chains=65537.2:0-1-2,9.0:3").unwrap();
        assert_eq!(forked.start.down, vec![3]);
        assert_eq!(forked.start.chains[1].members, vec![3]);
        assert_eq!(UrlParams::parse(&forked.to_hash()).unwrap(), forked);
        assert!(UrlParams::parse("bypass=on").unwrap().bypass);
        assert!(UrlParams::parse("shortcut=on").unwrap().shortcut);
        let p = UrlParams::parse("seed=3&faults=1000%3Acrash%3A1%2C2000%3Apart%3A0%2F1").unwrap();
        assert_eq!(p.faults[1].op, Op::Partition(vec![vec![0], vec![1]]));
        for (bad, want) in [
            ("seed=-1", "URL `seed`"),
            ("nodes=0", "at least 1"),
            ("nodes=x", "URL `nodes`"),
            ("lat=0", "positive"),
            ("vnodes=0", "1..=1024"),
            ("faults=1:crash:1", "whole milliseconds"),
            ("colour=red", "unknown key `colour`"),
            ("rings=relay", "unknown ring `relay`"),
            ("rings=", "want sundial"),
            ("rings=sundial,raft", "unknown ring `raft`"),
            ("fanout=0", "want 1..=16"),
            ("fanout=17", "want 1..=16"),
            ("fanout=x", "URL `fanout`"),
            ("phi=0", "within (0, 100]"),
            ("phi=inf", "within (0, 100]"),
            ("phi=101", "within (0, 100]"),
            ("bypass=maybe", "want on or off"),
            ("shortcut=1", "want on or off"),
            ("down=a", "URL `down`"),
            ("chains=3:0-1", "want an epoch"),
            ("chains=3.1", "want GENERATION.SEQUENCE:NODE"),
            ("chains=3.1:0-x", "want node numbers joined by -"),
        ] {
            let e = UrlParams::parse(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
