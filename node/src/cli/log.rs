//! `shen append`, `shen txn`, `shen read`, `shen tail`: the log's commands, over `shen-client`.
//!
//! Exit codes: 0 done, 1 the cluster could not do it (the message says why
//! and whether retrying is safe), 2 bad input.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde::de::DeserializeOwned;
use shen_api::{
    AppendQuery, AppendReply, ReadQuery, ReadReply, RecordDoc, TxnRecord, TxnReply, TxnRequest,
};
use shen_client::{ClientError, Http};

use super::admin_address;
use crate::daemon::DEFAULT_ADMIN;

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
    fn http(&self) -> Result<Http, String> {
        admin_address(&self.admin, self.data_dir.as_deref()).map(|a| Http::new(a, CLIENT_TIMEOUT))
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
    fn query(&self, from: u64, max: u32) -> Result<ReadQuery, String> {
        let mut q = ReadQuery {
            from,
            max,
            ..ReadQuery::default()
        };
        match (&self.partition, &self.key, &self.id) {
            (Some(p), _, _) => q.partition = Some(*p),
            (None, Some(k), _) => q.key = Some(k.as_bytes().to_vec()),
            (None, None, Some(id)) => q.id = Some(id.clone()),
            (None, None, None) => return Err("give --partition P, --key KEY or --id SCARAB".into()),
        }
        Ok(q)
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

/// The exit code of a failed request: 2 for a request the node refused as
/// malformed, 1 for everything the cluster could not do.
fn exit_of(e: &ClientError) -> u8 {
    if matches!(e, ClientError::BadRequest(_)) {
        2
    } else {
        1
    }
}

/// Send a request; a 200 decodes as `T` (with `json`, its body is
/// printed as it came and `Err(SUCCESS)` returned); anything else is
/// explained and becomes the exit code.
fn call<T: DeserializeOwned>(
    http: &Http,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
    json: bool,
) -> Result<T, ExitCode> {
    let a = http
        .request(method, path, content_type, body)
        .map_err(|e| fail(e.to_string(), exit_of(&e)))?;
    if a.status != 200 {
        let e = a.error();
        return Err(fail(e.to_string(), exit_of(&e)));
    }
    if json {
        print!("{}", a.text());
        return Err(ExitCode::SUCCESS);
    }
    serde_json::from_slice(&a.body)
        .map_err(|e| fail(format!("{}{path}: unexpected answer: {e}", http.admin()), 1))
}

/// Run `shen append`.
pub fn append(args: AppendArgs) -> ExitCode {
    let http = match args.target.http() {
        Ok(h) => h,
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
    let path = AppendQuery {
        key: args.key.into_bytes(),
    }
    .to_path();
    let a: AppendReply = match call(
        &http,
        "POST",
        &path,
        "application/octet-stream",
        &data,
        args.json,
    ) {
        Ok(a) => a,
        Err(code) => return code,
    };
    println!(
        "appended to partition {} at offset {} (id {})",
        a.partition, a.offset, a.id
    );
    ExitCode::SUCCESS
}

/// Run `shen txn`.
pub fn txn(args: TxnArgs) -> ExitCode {
    let http = match args.target.http() {
        Ok(h) => h,
        Err(e) => return fail(e, 2),
    };
    if !args.pairs.len().is_multiple_of(2) {
        return fail(
            "give KEY VALUE pairs (an even number of arguments)".into(),
            2,
        );
    }
    let records = args
        .pairs
        .chunks(2)
        .map(|kv| TxnRecord {
            key: kv[0].clone(),
            data: Some(kv[1].clone()),
            data_hex: None,
        })
        .collect();
    let body = serde_json::to_vec(&TxnRequest { records }).unwrap_or_default();
    let r: TxnReply = match call(
        &http,
        "POST",
        shen_api::routes::TXN,
        "application/json",
        &body,
        args.json,
    ) {
        Ok(r) => r,
        Err(code) => return code,
    };
    println!("committed {} records atomically:", r.records.len());
    for a in r.records {
        println!(
            "  partition {} offset {} (id {})",
            a.partition, a.offset, a.id
        );
    }
    ExitCode::SUCCESS
}

/// One read.
fn read_once(http: &Http, q: &ReadQuery) -> Result<ReadReply, (String, u8)> {
    let a = http
        .request("GET", &q.to_path(), "", &[])
        .map_err(|e| (e.to_string(), exit_of(&e)))?;
    if a.status != 200 {
        let e = a.error();
        return Err((e.to_string(), exit_of(&e)));
    }
    serde_json::from_slice(&a.body)
        .map_err(|e| (format!("{}: unexpected answer: {e}", http.admin()), 1))
}

/// A record as one output line: `partition:offset<TAB>data` (binary
/// payloads as `0x` and hex).
fn record_line(partition: u32, r: &RecordDoc) -> String {
    let data = match (&r.data, &r.data_hex) {
        (Some(t), _) => t.clone(),
        (None, Some(h)) => format!("0x{h}"),
        (None, None) => String::new(),
    };
    format!("{partition}:{}\t{data}", r.offset)
}

/// Run `shen read`.
pub fn read(args: ReadArgs) -> ExitCode {
    let http = match args.target.http() {
        Ok(h) => h,
        Err(e) => return fail(e, 2),
    };
    let q = match args.which.query(args.which.from, args.max) {
        Ok(q) => q,
        Err(e) => return fail(e, 2),
    };
    let v = match read_once(&http, &q) {
        Ok(v) => v,
        Err((e, code)) => return fail(e, code),
    };
    if args.json {
        println!("{}", serde_json::to_string(&v).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    let mut out = std::io::stdout().lock();
    for r in &v.records {
        if writeln!(out, "{}", record_line(v.partition, r)).is_err() {
            return ExitCode::SUCCESS;
        }
    }
    ExitCode::SUCCESS
}

/// Run `shen tail`: follow a partition.
pub fn tail(args: TailArgs) -> ExitCode {
    let http = match args.target.http() {
        Ok(h) => h,
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
        let q = match args.which.query(next, 1000) {
            Ok(q) => q,
            Err(e) => return fail(e, 2),
        };
        match read_once(&http, &q) {
            Ok(v) => {
                let mut out = std::io::stdout().lock();
                for r in &v.records {
                    if writeln!(out, "{}", record_line(v.partition, r)).is_err() {
                        return ExitCode::SUCCESS;
                    }
                    let _ = out.flush();
                    next = r.offset + 1;
                    printed += 1;
                    if args.count.is_some_and(|c| printed >= c) {
                        return ExitCode::SUCCESS;
                    }
                }
                if v.records.is_empty() {
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
