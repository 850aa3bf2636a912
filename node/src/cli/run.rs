//! `shen run`: one cluster node over libp2p, with its admin HTTP API.
//!
//! Settings come from flags, then environment variables (`SHEN_*`), then a
//! TOML file (`--config`), then defaults (`crate::daemon::resolve`). The
//! node runs the rings of the `[stack]` table (Sundial by default), hands
//! every peer the transport discovers to Sundial as a join candidate, serves
//! the admin HTTP API (`crate::admin`) on 127.0.0.1, and on SIGINT/SIGTERM
//! leaves the cluster, flushes and exits 0.

use std::process::ExitCode;

use shen_transport_libp2p::identity::load_psk;
use tracing::{error, info};

use crate::admin;
use crate::daemon::{self, Daemon, Ops, RunArgs, Settings};

/// Run `shen run`.
pub fn run(args: RunArgs) -> ExitCode {
    let settings = match daemon::resolve(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // A bad key file is bad input (exit 2), found before anything starts.
    let psk = match &settings.psk {
        Some(p) => match load_psk(p) {
            Ok(k) => Some(k),
            Err(e) => {
                eprintln!("error: --psk {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let rt = match daemon::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    daemon::init_tracing();
    match rt.block_on(serve(settings, psk)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(
    settings: Settings,
    psk: Option<shen_transport_libp2p::libp2p::pnet::PreSharedKey>,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(settings.admin)
        .await
        .map_err(|e| format!("cannot bind admin HTTP on {}: {e}", settings.admin))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("admin HTTP: {e}"))?;
    let (node, ops) = Daemon::open(&settings, psk, addr)?;
    info!("admin HTTP on http://{addr}/status");
    tokio::spawn(admin::serve(listener, ops.clone()));
    tokio::spawn(shutdown_on_signal(ops));
    node.run().await;
    Ok(())
}

async fn shutdown_on_signal(ops: Ops) {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            error!("cannot install signal handlers");
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM"),
        _ = int.recv() => info!("SIGINT"),
    }
    ops.shutdown();
}
