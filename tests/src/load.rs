//! A write load like a real producer's, for the elastic-log tests: several
//! concurrent writers, each key a new one (so keys spread over the
//! partitions), every append bounded by a short timeout after which the
//! writer moves on to its next key. An append that was not acknowledged may
//! or may not have landed; only acknowledged ones are booked (and must be
//! read back exactly once: [`check_read_back`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the writers saw: acknowledged appends (key -> partition, offset)
/// with when, and failed ones (timeouts, errors) with when.
#[derive(Default, Debug)]
pub struct Book {
    /// Acknowledged appends: key (also the record's data) -> (partition, offset).
    pub acked: BTreeMap<String, (u64, u64)>,
    /// When each acknowledgement came.
    pub times: Vec<Instant>,
    /// Failed appends: when, and what was said.
    pub failures: Vec<(Instant, String)>,
}

impl Book {
    /// Acknowledged appends per second in `[from, to)`.
    pub fn rate(&self, from: Instant, to: Instant) -> f64 {
        let n = self
            .times
            .iter()
            .filter(|t| **t >= from && **t < to)
            .count();
        n as f64 / to.saturating_duration_since(from).as_secs_f64().max(1e-3)
    }

    /// Acknowledged appends per second during a change that ran from
    /// `from` to `to`, counted over at least `floor` from its start: a
    /// change over in well under a second (a removal, a leave) pauses the
    /// chains it touches for a few hundred milliseconds, and a rate over
    /// the change alone would then measure that one pause, not the
    /// throughput while the cluster changes. The floor is the writers'
    /// per-append timeout, the longest a writer waits on one append.
    pub fn change_rate(&self, from: Instant, to: Instant, floor: Duration) -> f64 {
        self.rate(from, to.max(from + floor))
    }

    /// Acknowledgements per `step` from `from` for `n` steps (to show
    /// where a rate went).
    pub fn histogram(&self, from: Instant, step: Duration, n: u32) -> Vec<usize> {
        (0..n)
            .map(|i| {
                let lo = from + step * i;
                let hi = lo + step;
                self.times.iter().filter(|t| **t >= lo && **t < hi).count()
            })
            .collect()
    }

    /// Failed appends in `[from, to)`, and up to 3 of them.
    pub fn failures_in(&self, from: Instant, to: Instant) -> (usize, Vec<&str>) {
        let f: Vec<&str> = self
            .failures
            .iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .map(|(_, s)| s.as_str())
            .collect();
        let n = f.len();
        (n, f.into_iter().take(3).collect())
    }
}

/// A running load: `writers` threads appending through the targets in
/// turn until [`Load::stop`], at most `limit` long and at most 100,000
/// appends per writer.
pub struct Load {
    targets: Arc<Mutex<Vec<usize>>>,
    book: Arc<Mutex<Book>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// One append: (writer, target, key) -> (partition, offset) when
/// acknowledged. Called on the writer's own thread; it must give up after
/// its timeout.
pub type AppendFn = dyn Fn(usize, usize, &str) -> Result<(u64, u64), String> + Send + Sync;

impl Load {
    /// Start `writers` writers over `targets` (indices the caller's
    /// `append` understands). The record of key `w{writer}-{n}` is the key
    /// itself.
    pub fn start(
        writers: usize,
        targets: Vec<usize>,
        limit: Duration,
        append: Arc<AppendFn>,
    ) -> Load {
        assert!(!targets.is_empty(), "a load needs a target");
        let targets = Arc::new(Mutex::new(targets));
        let book = Arc::new(Mutex::new(Book::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..writers)
            .map(|w| {
                let (targets, book, stop) = (targets.clone(), book.clone(), stop.clone());
                let append = append.clone();
                std::thread::spawn(move || {
                    let t0 = Instant::now();
                    for n in 0..100_000usize {
                        if stop.load(Ordering::Relaxed) || t0.elapsed() > limit {
                            break;
                        }
                        let target = {
                            let t = targets.lock().unwrap();
                            t[(w + n) % t.len()]
                        };
                        let key = format!("w{w}-{n}");
                        let sent = Instant::now();
                        match append(w, target, &key) {
                            Ok(at) => {
                                let mut b = book.lock().unwrap();
                                b.acked.insert(key, at);
                                b.times.push(Instant::now());
                            }
                            Err(e) => {
                                book.lock()
                                    .unwrap()
                                    .failures
                                    .push((Instant::now(), format!("target {target}: {e}")));
                                // A fast refusal (a node going away): do not spin.
                                if sent.elapsed() < Duration::from_millis(50) {
                                    std::thread::sleep(Duration::from_millis(50));
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            targets,
            book,
            stop,
            threads,
        }
    }

    /// The book so far.
    pub fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap()
    }

    /// Acknowledged appends per second over the next `d`.
    pub fn measure(&self, d: Duration) -> f64 {
        let from = Instant::now();
        std::thread::sleep(d);
        self.book().rate(from, Instant::now())
    }

    /// Write through `t` too.
    pub fn add_target(&self, t: usize) {
        self.targets.lock().unwrap().push(t);
    }

    /// Stop writing through `t` (before it is stopped).
    pub fn remove_target(&self, t: usize) {
        let mut ts = self.targets.lock().unwrap();
        ts.retain(|x| *x != t);
        assert!(!ts.is_empty(), "no target left");
    }

    /// Stop the writers and hand back the book.
    pub fn stop(mut self) -> Book {
        self.stop.store(true, Ordering::Relaxed);
        for t in std::mem::take(&mut self.threads) {
            t.join().expect("a writer panicked");
        }
        std::mem::take(&mut *self.book())
    }
}

impl Drop for Load {
    /// A test that fails with its load running stops the writers too, so
    /// what they hold (a namespace lab, say) is dropped with the test.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in std::mem::take(&mut self.threads) {
            let _ = t.join();
        }
    }
}

/// The (partition, offset) of an append's JSON answer.
pub fn appended_at(body: &str) -> Result<(u64, u64), String> {
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("append answer {body:?}: {e}"))?;
    match (v["partition"].as_u64(), v["offset"].as_u64()) {
        (Some(p), Some(o)) => Ok((p, o)),
        _ => Err(format!("append answer without partition/offset: {body}")),
    }
}

/// Read every partition the book wrote to, page by page, with `read`
/// (`GET` path -> body of the answer), and check that each acknowledged
/// append is at its offset and appears exactly once in its partition.
/// Returns how many records were read in all.
pub fn check_read_back(book: &Book, read: impl Fn(&str) -> Result<String, String>) -> usize {
    let mut by_part: BTreeMap<u64, Vec<(u64, &str)>> = BTreeMap::new();
    for (k, (p, o)) in &book.acked {
        by_part.entry(*p).or_default().push((*o, k));
    }
    let mut total = 0;
    for (p, want) in &by_part {
        let mut got: BTreeMap<u64, String> = BTreeMap::new();
        let mut seen: BTreeMap<String, u64> = BTreeMap::new();
        let mut from = 0;
        // Bounded: at most 1,000 pages of 1,000 records.
        for _ in 0..1000 {
            let path = format!("/log/read?partition={p}&from={from}&max=1000");
            let body = read(&path).unwrap_or_else(|e| panic!("read {p}: {e}"));
            let v: serde_json::Value =
                serde_json::from_str(&body).unwrap_or_else(|e| panic!("read {p}: {e}: {body}"));
            let recs = v["records"]
                .as_array()
                .unwrap_or_else(|| panic!("read {p}: {body}"));
            if recs.is_empty() {
                break;
            }
            for r in recs {
                let o = r["offset"].as_u64().unwrap();
                let d = r["data"].as_str().unwrap_or("").to_string();
                *seen.entry(d.clone()).or_default() += 1;
                got.insert(o, d);
                from = o + 1;
                total += 1;
            }
        }
        for (o, k) in want {
            assert_eq!(
                got.get(o).map(String::as_str),
                Some(*k),
                "acknowledged append {k} lost at partition {p} offset {o}"
            );
            assert_eq!(
                seen.get(*k),
                Some(&1),
                "{k} written {:?} times in partition {p}",
                seen.get(*k)
            );
        }
    }
    total
}

/// A change to the cluster under load, with the steady rate measured just
/// before it (so that the machine's own load, which moves, weighs the same
/// on both).
#[derive(Debug, Clone)]
pub struct Change {
    /// What changed.
    pub what: &'static str,
    /// Acknowledged appends per second in the seconds before it.
    pub steady: f64,
    /// When it started.
    pub from: Instant,
    /// When it was over (as the test saw it: the cluster settled).
    pub to: Instant,
}

/// Print each change's rate and assert that appends went on during it at
/// `fraction` of its steady rate or more, counted over at least `floor`
/// ([`Book::change_rate`]).
pub fn check_changes(book: &Book, changes: &[Change], floor: Duration, fraction: f64) {
    for c in changes {
        let r = book.change_rate(c.from, c.to, floor);
        let (n, some) = book.failures_in(c.from, c.to.max(c.from + floor));
        // Acknowledgements per 100 ms from the change's start.
        let hist = book.histogram(c.from, Duration::from_millis(100), 30);
        eprintln!(
            "during {} ({:.1} s): {r:.1} appends/s over {:.1} s, {:.0}% of the {:.1}/s steady before it ({:.1}/s in the change itself), {n} failed\n  per 100 ms: {hist:?}",
            c.what,
            (c.to - c.from).as_secs_f64(),
            (c.to - c.from).max(floor).as_secs_f64(),
            100.0 * r / c.steady,
            c.steady,
            book.rate(c.from, c.to),
        );
        assert!(
            r >= c.steady * fraction,
            "during {}: {r:.1} appends/s against {:.1} steady before it ({n} failures: {some:?}; per 100 ms from its start: {hist:?})",
            c.what,
            c.steady
        );
    }
}
