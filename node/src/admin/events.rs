//! `GET /events`: ring events as Server-Sent Events (`id:` the event number, `data:` an `EventLine`), with keep-alive comments.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{self, Stream};
use tokio::sync::broadcast::error::RecvError;

use super::AdminState;

/// How often an idle stream sends a comment (keeps proxies and NAT
/// entries open, and shows the reader the node is alive).
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub(crate) async fn events(
    State(st): State<AdminState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = st.ops.subscribe_events();
    let first = Event::default().comment("shen ring events");
    let stream = stream::unfold((rx, Some(first)), |(mut rx, first)| async move {
        if let Some(ev) = first {
            return Some((Ok(ev), (rx, None)));
        }
        let ev = match rx.recv().await {
            Ok((seq, line)) => Event::default().id(seq.to_string()).data(line),
            Err(RecvError::Lagged(n)) => {
                Event::default().comment(format!("{n} events skipped (slow reader)"))
            }
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(ev), (rx, None)))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
}
