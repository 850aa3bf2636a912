//! The `shen` commands: each file parses its flags, calls the daemon, the client or the simulator, and renders the answer.
//!
//! Architecture invariant: commands that talk to a running node go through
//! `shen-client` (HTTP); only `shen run` starts a daemon.

pub mod bench;
pub mod bench_storage;
pub mod log;
pub mod member;
pub mod ring_stats;
pub mod run;
pub mod sim;
pub mod status;
pub mod up;
pub mod viz;

use std::path::Path;
use std::process::ExitCode;

/// Exit code for bad input (flags, files).
pub const EXIT_USAGE: u8 = 2;

/// The admin address to use: the one in `data_dir/node.json` when given,
/// else `admin`.
pub fn admin_address(admin: &str, data_dir: Option<&Path>) -> Result<String, String> {
    match data_dir {
        Some(d) => shen_client::node_info(d).map(|i| i.admin),
        None => Ok(admin.to_string()),
    }
}

/// Write to stdout; a closed pipe (`shen ... | head`) is not an error.
pub fn write_stdout(text: &str) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write output: {e}");
            ExitCode::FAILURE
        }
    }
}
