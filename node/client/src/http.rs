//! The pooled HTTP/1.1 connection to one node's admin API (ureq's agent), and `node.json`.

use std::path::Path;
use std::time::Duration;

use shen_api::{ErrorBody, NodeInfo};

use crate::ClientError;

/// Largest answer read (a read of 10,000 records of up to 1 MiB is far
/// below this only for small records; bigger reads come in pages).
const MAX_ANSWER: u64 = 256 << 20;

/// Raw requests to one node's admin API over a connection pool with
/// keep-alive. Clones share the pool.
#[derive(Debug, Clone)]
pub struct Http {
    admin: String,
    agent: ureq::Agent,
    timeout: Duration,
}

/// An HTTP answer, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The error a non-200 answer stands for.
    pub fn error(&self) -> ClientError {
        match serde_json::from_slice::<ErrorBody>(&self.body) {
            Ok(b) => ClientError::from_body(self.status, b),
            Err(_) => {
                ClientError::Protocol(format!("HTTP {}: {}", self.status, self.text().trim()))
            }
        }
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .max_idle_connections_per_host(64)
        .build()
        .into()
}

impl Http {
    /// A pool for the admin API at `admin` (HOST:PORT); every request
    /// waits at most `timeout`.
    pub fn new(admin: impl Into<String>, timeout: Duration) -> Http {
        Http {
            admin: admin.into(),
            agent: agent(timeout),
            timeout,
        }
    }

    /// The same node with another deadline (a new pool).
    pub fn with_timeout(self, timeout: Duration) -> Http {
        Http::new(self.admin, timeout)
    }

    /// HOST:PORT.
    pub fn admin(&self) -> &str {
        &self.admin
    }

    /// Send `method path` with `body` (of `content_type`, when not empty).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Answer, ClientError> {
        let url = format!("http://{}{path}", self.admin);
        let sent = match method {
            "GET" => self.agent.get(&url).call(),
            "POST" => {
                let mut req = self.agent.post(&url);
                if !content_type.is_empty() {
                    req = req.header("Content-Type", content_type);
                }
                req.send(body)
            }
            other => {
                return Err(ClientError::BadRequest(format!(
                    "method {other} is not used by the admin API"
                )))
            }
        };
        let mut resp = sent.map_err(|e| self.transport_error(e))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .map_err(|e| self.transport_error(e))?;
        Ok(Answer { status, body })
    }

    /// GET `path`: the body of a 200 as text, or the error.
    pub fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let a = self.request("GET", path, "", &[])?;
        if a.status == 200 {
            Ok(a.text())
        } else {
            Err(a.error())
        }
    }

    fn transport_error(&self, e: ureq::Error) -> ClientError {
        let at = &self.admin;
        match e {
            ureq::Error::Timeout(_) => {
                ClientError::Timeout(format!("{at}: no answer within {:?}", self.timeout))
            }
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                ClientError::Timeout(format!("{at}: {io}"))
            }
            ureq::Error::Io(io) => ClientError::Unreachable(format!(
                "cannot reach a node at {at}: {io} (is `shen run` running?)"
            )),
            ureq::Error::HostNotFound | ureq::Error::BadUri(_) => {
                ClientError::Unreachable(format!("invalid admin address '{at}'"))
            }
            ureq::Error::ConnectionFailed => ClientError::Unreachable(format!(
                "cannot reach a node at {at} (is `shen run` running?)"
            )),
            other => ClientError::Unreachable(format!("{at}: {other}")),
        }
    }
}

/// The [`NodeInfo`] a node wrote to `dir/node.json` (its admin address).
pub fn node_info(dir: &Path) -> Result<NodeInfo, String> {
    let p = dir.join(shen_api::NODE_INFO_FILE);
    let text = std::fs::read_to_string(&p)
        .map_err(|e| format!("cannot read {}: {e} (has the node started?)", p.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
}
