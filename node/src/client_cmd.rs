//! `shen append`, `shen read`, `shen tail`: clients of a running node's
//! admin API (`POST /log/append`, `GET /log/read`).
//!
//! Exit codes: 0 done, 1 the cluster could not do it (the message says why
//! and whether retrying is safe), 2 bad input.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use crate::log_cluster::percent_encode;
use crate::run_cmd::DEFAULT_ADMIN;
use crate::status_cmd::{admin_from_data_dir, http_request};

/// Which node to talk to.
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// The node's admin address (HOST:PORT, as given to `shen run --admin`).
    #[arg(long, env = "SHEN_ADMIN", default_value = DEFAULT_ADMIN, value_name = "HOST:PORT")]
    pub admin: String,
    /// Find the admin address in a node's data directory (its node.json)
    /// instead.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl Target {
    fn resolve(&self) -> Result<String, String> {
        match &self.data_dir {
            Some(d) => admin_from_data_dir(d).map(|i| i.admin),
            None => Ok(self.admin.clone()),
        }
    }
}

/// `shen append` flags.
#[derive(Args, Debug, Clone)]
pub struct AppendArgs {
    #[command(flatten)]
    target: Target,
    /// The record's key (chooses the partition).
    key: String,
    /// The record; read from standard input when absent or `-`.
    value: Option<String>,
    /// Print the node's JSON answer.
    #[arg(long)]
    json: bool,
}

/// `shen txn` flags.
#[derive(Args, Debug, Clone)]
pub struct TxnArgs {
    #[command(flatten)]
    target: Target,
    /// The records, as KEY VALUE pairs: all of them are appended, or none.
    #[arg(value_name = "KEY VALUE", num_args = 2.., required = true, allow_hyphen_values = true)]
    pairs: Vec<String>,
    /// Print the node's JSON answer.
    #[arg(long)]
    json: bool,
}

/// Which partition a read or tail is about.
#[derive(Args, Debug, Clone)]
pub struct PartitionArgs {
    /// The partition number.
    #[arg(long, short, value_name = "P", conflicts_with_all = ["key", "id"])]
    partition: Option<u32>,
    /// Or the partition of this key.
    #[arg(long, short, value_name = "KEY", conflicts_with = "id")]
    key: Option<String>,
    /// Or just the record with this Scarab ID (as `shen append` printed it).
    #[arg(long, value_name = "SCARAB")]
    id: Option<String>,
    /// First offset.
    #[arg(long, default_value_t = 0, value_name = "OFFSET")]
    from: u64,
}

impl PartitionArgs {
    fn query(&self, from: u64, max: u32) -> Result<String, String> {
        let which = match (&self.partition, &self.key, &self.id) {
            (Some(p), _, _) => format!("partition={p}"),
            (None, Some(k), _) => format!("key={}", percent_encode(k.as_bytes())),
            (None, None, Some(id)) => format!("id={}", percent_encode(id.as_bytes())),
            (None, None, None) => return Err("give --partition P, --key KEY or --id SCARAB".into()),
        };
        Ok(format!("/log/read?{which}&from={from}&max={max}"))
    }
}

/// `shen read` flags.
#[derive(Args, Debug, Clone)]
pub struct ReadArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    which: PartitionArgs,
    /// Most records to return.
    #[arg(long, default_value_t = 100, value_name = "N")]
    max: u32,
    /// Print the node's JSON answer.
    #[arg(long)]
    json: bool,
}

/// `shen tail` flags.
#[derive(Args, Debug, Clone)]
pub struct TailArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    which: PartitionArgs,
    /// Stop after this many records (default: follow until Ctrl-C).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// How often to ask for new records when caught up, in milliseconds.
    #[arg(long, default_value_t = 200, value_name = "MS")]
    poll_ms: u64,
}

/// How long a client request may take (the node answers within its own
/// request timeout, 3 s by default, plus margin).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

fn fail(e: String, code: u8) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(code)
}

/// An error answer in words (the node's `error` field).
fn explain(status: &str, body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
        .unwrap_or_else(|| format!("{status}: {}", body.trim()))
}

/// A node's answer to a write: its JSON body, or the exit code once the
/// failure was explained (or, with `json`, the body printed as it is).
fn write_answer(
    answer: Result<(u16, String, String), String>,
    json: bool,
) -> Result<Value, ExitCode> {
    let (code, status, body) = answer.map_err(|e| fail(e, 1))?;
    if code != 200 {
        return Err(fail(
            explain(&status, &body),
            if code == 400 { 2 } else { 1 },
        ));
    }
    if json {
        print!("{body}");
        return Err(ExitCode::SUCCESS);
    }
    Ok(serde_json::from_str(&body).unwrap_or_default())
}

/// Run `shen append`.
pub fn append(args: AppendArgs) -> ExitCode {
    let admin = match args.target.resolve() {
        Ok(a) => a,
        Err(e) => return fail(e, 2),
    };
    let data = match args.value.as_deref() {
        Some(v) if v != "-" => v.as_bytes().to_vec(),
        _ => {
            let mut buf = Vec::new();
            if let Err(e) = std::io::stdin().read_to_end(&mut buf) {
                return fail(format!("cannot read standard input: {e}"), 2);
            }
            buf
        }
    };
    if data.len() > shen_rings::logstore::MAX_RECORD_LEN {
        return fail(
            format!("record of {} bytes exceeds the 1 MiB limit", data.len()),
            2,
        );
    }
    let path = format!("/log/append?key={}", percent_encode(args.key.as_bytes()));
    let answer = http_request(&admin, "POST", &path, &data, CLIENT_TIMEOUT);
    let v = match write_answer(answer, args.json) {
        Ok(v) => v,
        Err(code) => return code,
    };
    println!(
        "appended to partition {} at offset {} (id {})",
        v["partition"],
        v["offset"],
        v["id"].as_str().unwrap_or("?")
    );
    ExitCode::SUCCESS
}

/// Run `shen txn`.
pub fn txn(args: TxnArgs) -> ExitCode {
    let admin = match args.target.resolve() {
        Ok(a) => a,
        Err(e) => return fail(e, 2),
    };
    if !args.pairs.len().is_multiple_of(2) {
        return fail(
            "give KEY VALUE pairs (an even number of arguments)".into(),
            2,
        );
    }
    let records: Vec<Value> = args
        .pairs
        .chunks(2)
        .map(|kv| serde_json::json!({ "key": kv[0], "data": kv[1] }))
        .collect();
    let body = serde_json::json!({ "records": records }).to_string();
    let answer = crate::status_cmd::http_request_typed(
        &admin,
        "POST",
        "/log/txn",
        "application/json",
        body.as_bytes(),
        CLIENT_TIMEOUT,
    );
    let v = match write_answer(answer, args.json) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let recs = v["records"].as_array().cloned().unwrap_or_default();
    println!("committed {} records atomically:", recs.len());
    for r in recs {
        println!(
            "  partition {} offset {} (id {})",
            r["partition"],
            r["offset"],
            r["id"].as_str().unwrap_or("?")
        );
    }
    ExitCode::SUCCESS
}

/// One read: the node's JSON answer.
fn read_once(admin: &str, path: &str) -> Result<Value, (String, u8)> {
    let (code, status, body) =
        http_request(admin, "GET", path, &[], CLIENT_TIMEOUT).map_err(|e| (e, 1))?;
    if code != 200 {
        return Err((explain(&status, &body), if code == 400 { 2 } else { 1 }));
    }
    serde_json::from_str(&body).map_err(|e| (format!("{admin}{path}: not JSON: {e}"), 1))
}

/// A record as one output line: `partition:offset<TAB>data`.
fn record_line(partition: &Value, r: &Value) -> String {
    let data = r
        .get("data")
        .and_then(|d| d.as_str())
        .map(String::from)
        .or_else(|| {
            r.get("data_hex")
                .and_then(|d| d.as_str())
                .map(|h| format!("0x{h}"))
        })
        .unwrap_or_default();
    format!("{}:{}\t{}", partition, r["offset"], data)
}

/// Run `shen read`.
pub fn read(args: ReadArgs) -> ExitCode {
    let admin = match args.target.resolve() {
        Ok(a) => a,
        Err(e) => return fail(e, 2),
    };
    let path = match args.which.query(args.which.from, args.max) {
        Ok(p) => p,
        Err(e) => return fail(e, 2),
    };
    let v = match read_once(&admin, &path) {
        Ok(v) => v,
        Err((e, code)) => return fail(e, code),
    };
    if args.json {
        println!("{v}");
        return ExitCode::SUCCESS;
    }
    let mut out = std::io::stdout().lock();
    for r in v["records"].as_array().cloned().unwrap_or_default() {
        if writeln!(out, "{}", record_line(&v["partition"], &r)).is_err() {
            return ExitCode::SUCCESS;
        }
    }
    ExitCode::SUCCESS
}

/// Run `shen tail`: follow a partition.
pub fn tail(args: TailArgs) -> ExitCode {
    let admin = match args.target.resolve() {
        Ok(a) => a,
        Err(e) => return fail(e, 2),
    };
    if args.which.id.is_some() {
        return fail(
            "shen tail follows a partition: give --partition P or --key KEY, not --id".into(),
            2,
        );
    }
    if let Err(e) = args.which.query(0, 1) {
        return fail(e, 2);
    }
    let mut next = args.which.from;
    let mut printed = 0u64;
    let poll = Duration::from_millis(args.poll_ms.clamp(10, 60_000));
    loop {
        let path = match args.which.query(next, 1000) {
            Ok(p) => p,
            Err(e) => return fail(e, 2),
        };
        match read_once(&admin, &path) {
            Ok(v) => {
                let recs = v["records"].as_array().cloned().unwrap_or_default();
                let mut out = std::io::stdout().lock();
                for r in &recs {
                    if writeln!(out, "{}", record_line(&v["partition"], r)).is_err() {
                        return ExitCode::SUCCESS;
                    }
                    let _ = out.flush();
                    next = r["offset"].as_u64().map(|o| o + 1).unwrap_or(next);
                    printed += 1;
                    if args.count.is_some_and(|c| printed >= c) {
                        return ExitCode::SUCCESS;
                    }
                }
                if recs.is_empty() {
                    std::thread::sleep(poll);
                }
            }
            Err((e, 2)) => return fail(e, 2),
            Err((e, _)) => {
                // The chain may be reconfiguring: say so and keep following.
                eprintln!("warning: {e} (retrying)");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}
