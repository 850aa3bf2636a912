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
use shen_api::{AppendReply, ReadQuery, ReadReply, RecordDoc, TxnRecord, TxnReply, TxnRequest};
use shen_client::{ClientError, Http, ShenClient};

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

    fn client(&self) -> Result<ShenClient, String> {
        admin_address(&self.admin, self.data_dir.as_deref())
            .map(|a| ShenClient::new(a).with_timeout(CLIENT_TIMEOUT))
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
    #[arg(conflicts_with = "lines")]
    value: Option<String>,
    /// One record per line of standard input (without its line end), sent
    /// in order over one kept-alive connection.
    #[arg(long)]
    lines: bool,
    /// The idempotent producer id to append as (default: a random one).
    /// With the same id and --seq, an append is written at most once
    /// however often it is retried.
    #[arg(long, value_name = "ID", value_parser = clap::value_parser!(u64).range(1..))]
    producer: Option<u64>,
    /// The (first) record's sequence number for --producer (with --lines,
    /// the next lines take the next numbers).
    #[arg(long, value_name = "N", default_value_t = 1, requires = "producer")]
    seq: u64,
    /// Keep retrying an append whose outcome is unknown (timeout) or whose
    /// chain is being reconfigured for this long, in seconds, with the
    /// same producer id and sequence (0: no retries).
    #[arg(long, value_name = "S", default_value_t = 30)]
    retry_s: u64,
    /// Print the node's JSON answer (one line per record with --lines).
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

/// How `shen read` and `shen tail` print keys and values.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// UTF-8 text as it is; anything else (bytes that are not UTF-8, a tab,
    /// a line end or another control character, or text that starts with
    /// `base64:`) as `base64:` and standard base64.
    #[default]
    Auto,
    /// As text (bytes that are not UTF-8 replaced by U+FFFD).
    Text,
    /// Always lowercase hex.
    Hex,
    /// Always standard base64.
    Base64,
    /// One JSON object per record (the node's record document plus
    /// `partition`).
    Json,
}

/// Which partition a read or tail is about.
#[derive(Args, Debug, Clone)]
pub struct PartitionArgs {
    /// The partition number.
    #[arg(long, short, value_name = "P", conflicts_with_all = ["key", "id"])]
    partition: Option<u32>,
    /// Or only the records of this key (its partition is read and the other
    /// keys' records skipped).
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
    /// How keys and values are printed.
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    format: Format,
    /// Print the node's JSON answer (with --key: its records of that key).
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
    /// How keys and values are printed.
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    format: Format,
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
    let client = match args.target.client() {
        Ok(c) => c,
        Err(e) => return fail(e, 2),
    };
    let producer = args
        .producer
        .unwrap_or_else(shen_client::random_producer_id);
    let client = client
        .with_producer(producer, args.seq)
        .with_retry_for(Duration::from_secs(args.retry_s));
    if args.lines {
        return append_lines(&client, &args, producer);
    }
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
    match client.append_with(args.key.as_bytes(), &data, args.seq) {
        Ok(a) if args.json => println!("{}", appended_json(&a)),
        Ok(a) => println!(
            "appended to partition {} at offset {} (id {})",
            a.partition, a.offset, a.id
        ),
        Err(e) => {
            let hint = unknown_hint(&e, producer, args.seq);
            return fail(format!("{e}{hint}"), exit_of(&e));
        }
    }
    ExitCode::SUCCESS
}

/// What to do after an append failed, when its outcome is unknown.
fn unknown_hint(e: &ClientError, producer: u64, seq: u64) -> String {
    match e {
        ClientError::Timeout(_) | ClientError::Unreachable(_) => format!(
            "\nthe record may be in the log; to retry safely, send it again with --producer {producer} --seq {seq} (it is written at most once); without them a retry may write it twice"
        ),
        _ => String::new(),
    }
}

fn appended_json(a: &shen_client::Appended) -> String {
    serde_json::to_string(&AppendReply {
        partition: a.partition,
        offset: a.offset,
        id: a.id.to_string(),
    })
    .unwrap_or_default()
}

/// `shen append --lines`: one record per line of standard input, in order,
/// numbered from `args.seq`.
fn append_lines(client: &ShenClient, args: &AppendArgs, producer: u64) -> ExitCode {
    let stdin = std::io::stdin().lock();
    let mut out = std::io::stdout().lock();
    let mut n = 0u64;
    for (i, line) in std::io::BufRead::split(stdin, b'\n').enumerate() {
        let mut data = match line {
            Ok(l) => l,
            Err(e) => {
                return fail(
                    format!("cannot read standard input: {e} ({n} records appended)"),
                    1,
                )
            }
        };
        if data.last() == Some(&b'\r') {
            data.pop();
        }
        if data.len() > shen_rings::logstore::MAX_RECORD_LEN {
            return fail(
                format!(
                    "line {}: record of {} bytes exceeds the 1 MiB limit (lines before it were appended)",
                    i + 1,
                    data.len()
                ),
                2,
            );
        }
        let seq = args.seq + i as u64;
        match client.append_with(args.key.as_bytes(), &data, seq) {
            Ok(a) => {
                n += 1;
                if args.json && writeln!(out, "{}", appended_json(&a)).is_err() {
                    return ExitCode::SUCCESS;
                }
            }
            Err(e) => {
                let hint = match &e {
                    ClientError::Timeout(_) | ClientError::Unreachable(_) => format!(
                        "\nlines 1 to {i} are in the log; line {} may be: to go on safely, send the input from line {} again with --producer {producer} --seq {seq} (written at most once)",
                        i + 1,
                        i + 1
                    ),
                    _ => format!("\nlines 1 to {i} are in the log; line {} and later are not", i + 1),
                };
                return fail(format!("line {}: {e}{hint}", i + 1), exit_of(&e));
            }
        }
    }
    if !args.json {
        println!(
            "appended {n} records under key {:?} (producer {producer})",
            args.key
        );
    }
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

/// Bytes as `format` prints them (never `Json`).
fn show(bytes: &[u8], format: Format) -> String {
    use base64::Engine as _;
    let b64 = || base64::engine::general_purpose::STANDARD.encode(bytes);
    match format {
        Format::Text => String::from_utf8_lossy(bytes).into_owned(),
        Format::Hex => shen_api::hex_encode(bytes),
        Format::Base64 => b64(),
        Format::Auto | Format::Json => match std::str::from_utf8(bytes) {
            Ok(t) if !t.starts_with("base64:") && !t.chars().any(char::is_control) => t.to_string(),
            _ => format!("base64:{}", b64()),
        },
    }
}

/// A record as one output line: `partition:offset<TAB>key<TAB>value`, key
/// and value as `format` says (`Json`: the record document as JSON).
fn record_line(partition: u32, r: &RecordDoc, format: Format) -> String {
    if format == Format::Json {
        let mut v = serde_json::to_value(r).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("partition".into(), partition.into());
        }
        return v.to_string();
    }
    let key = r.key_bytes().ok().flatten().unwrap_or_default();
    let data = r.payload().unwrap_or_default();
    format!(
        "{partition}:{}\t{}\t{}",
        r.offset,
        show(&key, format),
        show(&data, format)
    )
}

/// Whether `r` is one of the records `which` asks for (with `--key`, only
/// that key's).
fn wanted(which: &PartitionArgs, r: &RecordDoc) -> bool {
    match (&which.key, which.partition) {
        (Some(k), None) => r.key_bytes().ok().flatten().as_deref() == Some(k.as_bytes()),
        _ => true,
    }
}

/// Run `shen read`.
pub fn read(args: ReadArgs) -> ExitCode {
    let http = match args.target.http() {
        Ok(h) => h,
        Err(e) => return fail(e, 2),
    };
    let mut q = match args.which.query(args.which.from, args.max) {
        Ok(q) => q,
        Err(e) => return fail(e, 2),
    };
    let mut v = match read_once(&http, &q) {
        Ok(v) => v,
        Err((e, code)) => return fail(e, code),
    };
    if args.which.id.is_none() {
        // A node answers at most 1,024 records (and 640 KiB) at a time:
        // page through the partition until `max` records (of the key, with
        // --key) are found or the committed end is reached.
        let mut found: Vec<RecordDoc> = Vec::new();
        loop {
            let next = v.records.last().map(|r| r.offset + 1);
            found.extend(v.records.drain(..).filter(|r| wanted(&args.which, r)));
            let Some(next) = next.filter(|_| found.len() < args.max as usize) else {
                break;
            };
            q.from = next;
            q.max = ReadQuery::LIMIT;
            match read_once(&http, &q) {
                Ok(more) => v.records = more.records,
                Err((e, code)) => return fail(e, code),
            }
        }
        found.truncate(args.max as usize);
        v.records = found;
    }
    if args.json {
        println!("{}", serde_json::to_string(&v).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    let mut out = std::io::stdout().lock();
    for r in &v.records {
        if writeln!(out, "{}", record_line(v.partition, r, args.format)).is_err() {
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
                    next = r.offset + 1;
                    if !wanted(&args.which, r) {
                        continue;
                    }
                    if writeln!(out, "{}", record_line(v.partition, r, args.format)).is_err() {
                        return ExitCode::SUCCESS;
                    }
                    let _ = out.flush();
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
