//! `shen member` and `shen leave`: show and change the log's member set through a running node.
//!
//! `add` and `remove` ask the node for the change and return once it is
//! asked (the cluster makes it in its next configuration rounds; `--wait`
//! waits until the node's table shows it). `shen leave` asks the node to
//! decommission itself and waits until its partitions have moved away and
//! it is out of the member set: exit 0 then, 1 if `--timeout` passes
//! first (the leave goes on; run it again to keep waiting).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use shen_api::{LogDoc, MemberOp};
use shen_client::ShenClient;

use super::admin_address;
use crate::daemon::parse_duration;
use crate::daemon::DEFAULT_ADMIN;

/// Where the node is.
#[derive(Args, Debug, Clone)]
pub struct NodeAddr {
    /// The node's admin address (HOST:PORT, as given to `shen run --admin`).
    #[arg(long, global = true, env = "SHEN_ADMIN", default_value = DEFAULT_ADMIN, value_name = "HOST:PORT")]
    pub admin: String,
    /// Find the admin address in a node's data directory (its node.json)
    /// instead.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// `shen member`.
#[derive(Args, Debug, Clone)]
pub struct MemberArgs {
    /// What to do (default: list).
    #[command(subcommand)]
    pub cmd: Option<MemberCmd>,
    /// The node to ask.
    #[command(flatten)]
    pub node: NodeAddr,
}

/// `shen member` subcommands.
#[derive(Subcommand, Debug, Clone)]
pub enum MemberCmd {
    /// The member set, its version, who is leaving, and each member's
    /// replicas as the log places them.
    List,
    /// Add a node (by PeerId) to the log's member set: for nodes started
    /// with --no-auto-join. Its partitions arrive by state transfer.
    Add(ChangeArgs),
    /// Remove a member (by PeerId): at once if it is dead, else gracefully
    /// (its partitions move away first).
    Remove(ChangeArgs),
}

/// `shen member add|remove` arguments.
#[derive(Args, Debug, Clone)]
pub struct ChangeArgs {
    /// The node's PeerId.
    pub peer_id: String,
    /// Wait until the member set shows the change.
    #[arg(long)]
    pub wait: bool,
    /// How long `--wait` waits (`90s`, `10m`).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Remove even if fewer members than the replication factor stay.
    #[arg(long)]
    pub force: bool,
}

/// `shen leave`.
#[derive(Args, Debug, Clone)]
pub struct LeaveArgs {
    /// The node to decommission (it leaves itself).
    #[command(flatten)]
    pub node: NodeAddr,
    /// How long to wait for the partitions to move away (`90s`, `10m`).
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Leave even if fewer members than the replication factor stay
    /// (chains then keep fewer copies).
    #[arg(long)]
    pub force: bool,
}

fn client(node: &NodeAddr) -> Result<ShenClient, String> {
    let admin = admin_address(&node.admin, node.data_dir.as_deref())?;
    Ok(ShenClient::new(admin).with_timeout(Duration::from_secs(10)))
}

fn short(id: &str) -> String {
    super::status::short(id)
}

/// The member set of a `/status` log section, as a table.
pub fn render(log: &LogDoc) -> String {
    if !log.formed || log.members.is_empty() {
        return "log: this node knows no log yet\n".into();
    }
    let mut out = format!(
        "member set v{}: {} members{}\n",
        log.members_version.unwrap_or(0),
        log.members.len(),
        if log.leaving.is_empty() {
            String::new()
        } else {
            format!(", {} leaving", log.leaving.len())
        }
    );
    out.push_str(&format!(
        "{:<54} {:>8} {:>6} {:>9} {:>7}  {}\n",
        "MEMBER", "REPLICAS", "HEADS", "LEARNING", "SHARE", "STATE"
    ));
    for s in &log.shares {
        let state = if log.leaving.contains(&s.id) {
            "leaving"
        } else {
            "member"
        };
        out.push_str(&format!(
            "{:<54} {:>8} {:>6} {:>9} {:>6.1}%  {}\n",
            s.id,
            s.replicas,
            s.heads,
            s.learning,
            s.share * 100.0,
            state
        ));
    }
    if let Some(r) = &log.rebalance {
        if r.moving > 0 {
            out.push_str(&format!(
                "moving: {} partitions{}\n",
                r.moving,
                if r.learning_here > 0 {
                    format!(
                        " ({} to this node: {} records, ~{} bytes to go, {} bytes received)",
                        r.learning_here, r.records_behind, r.bytes_remaining, r.bytes_done
                    )
                } else {
                    String::new()
                }
            ));
        }
    }
    for c in &log.pending_changes {
        out.push_str(&format!("asked here, not done yet: {c}\n"));
    }
    out
}

/// Run `shen member`.
pub fn member(a: MemberArgs) -> ExitCode {
    let c = match client(&a.node) {
        Ok(c) => c,
        Err(e) => return fail(e, 2),
    };
    match a.cmd.unwrap_or(MemberCmd::List) {
        MemberCmd::List => match c.status() {
            Ok(doc) => super::write_stdout(&render(&doc.log)),
            Err(e) => fail(e.to_string(), 1),
        },
        MemberCmd::Add(x) => change(&c, MemberOp::Add, &x),
        MemberCmd::Remove(x) => change(&c, MemberOp::Remove, &x),
    }
}

fn fail(msg: impl std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(code)
}

fn change(c: &ShenClient, op: MemberOp, x: &ChangeArgs) -> ExitCode {
    let reply = match c.member_change(op, Some(&x.peer_id), x.force) {
        Ok(r) => r,
        Err(e) => return fail(e, 1),
    };
    let what = if op == MemberOp::Add { "add" } else { "remove" };
    if reply.done {
        println!(
            "{what} {}: already true of member set v{}",
            reply.node, reply.members_version
        );
        return ExitCode::SUCCESS;
    }
    println!(
        "{what} {}: asked (member set v{})",
        reply.node, reply.members_version
    );
    if !x.wait {
        return ExitCode::SUCCESS;
    }
    let want_member = op == MemberOp::Add;
    wait_until(c, x.timeout, |log| {
        log.members.contains(&reply.node) == want_member
    })
}

/// Poll the node's status until `done` holds (printing progress), or fail
/// after `timeout`.
fn wait_until(c: &ShenClient, timeout: Duration, done: impl Fn(&LogDoc) -> bool) -> ExitCode {
    let start = Instant::now();
    let mut last = String::new();
    loop {
        match c.status() {
            Ok(doc) => {
                if done(&doc.log) {
                    println!(
                        "done: member set v{} ({} members)",
                        doc.log.members_version.unwrap_or(0),
                        doc.log.members.len()
                    );
                    return ExitCode::SUCCESS;
                }
                let line = progress(&doc.log);
                if line != last {
                    println!("{line}");
                    last = line;
                }
            }
            Err(e) => eprintln!("warning: {e}"),
        }
        if start.elapsed() >= timeout {
            return fail(
                format!(
                    "not done after {:.0} s (the change goes on; run the command again to keep waiting)",
                    timeout.as_secs_f64()
                ),
                1,
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn progress(log: &LogDoc) -> String {
    let moving = log.rebalance.as_ref().map_or(0, |r| r.moving);
    format!(
        "member set v{}: {} members, {} leaving, {} partitions moving",
        log.members_version.unwrap_or(0),
        log.members.len(),
        log.leaving.len(),
        moving
    )
}

/// Run `shen leave`.
pub fn leave(a: LeaveArgs) -> ExitCode {
    let c = match client(&a.node) {
        Ok(c) => c,
        Err(e) => return fail(e, 2),
    };
    let reply = match c.member_change(MemberOp::Leave, None, a.force) {
        Ok(r) => r,
        Err(e) => return fail(e, 1),
    };
    let me = reply.node.clone();
    if reply.done {
        println!("{} is not a member: nothing to do", short(&me));
        return ExitCode::SUCCESS;
    }
    println!(
        "{}: leaving (member set v{}); its partitions move away first",
        short(&me),
        reply.members_version
    );
    // The node keeps asking until the leave is marked (also across a
    // restart of the node, as this command asks again below).
    let start = Instant::now();
    let mut asked_at = Instant::now();
    let mut last = String::new();
    loop {
        match c.status() {
            Ok(doc) => {
                let log = &doc.log;
                if !log.members.contains(&me) && !log.members.is_empty() {
                    println!(
                        "{} left: member set v{} ({} members)",
                        short(&me),
                        log.members_version.unwrap_or(0),
                        log.members.len()
                    );
                    return ExitCode::SUCCESS;
                }
                let line = format!(
                    "{}, {} partitions here",
                    progress(log),
                    log.shares
                        .iter()
                        .find(|s| s.id == me)
                        .map_or(0, |s| s.replicas + s.learning)
                );
                if line != last {
                    println!("{line}");
                    last = line;
                }
                // Not marked leaving and not asking any more (the node
                // restarted): ask again.
                if !log.leaving.contains(&me)
                    && log.pending_changes.is_empty()
                    && asked_at.elapsed() > Duration::from_secs(2)
                {
                    asked_at = Instant::now();
                    let _ = c.member_change(MemberOp::Leave, None, a.force);
                }
            }
            Err(e) => eprintln!("warning: {e}"),
        }
        if start.elapsed() >= a.timeout {
            return fail(
                format!(
                    "still a member after {:.0} s (the leave goes on; run `shen leave` again to keep waiting)",
                    a.timeout.as_secs_f64()
                ),
                1,
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
