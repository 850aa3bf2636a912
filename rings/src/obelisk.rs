//! Obelisk: a persistent, strictly increasing counter that never hands out a
//! value twice — across clean restarts, crashes and `kill -9`.
//!
//! # How
//!
//! Making every increment durable would cost one `fsync` per value. Instead
//! an [`Obelisk`] *reserves* a range of values ahead of use: it durably
//! stores the range's upper end (the *high-water mark*) in a
//! [`DurableCell`], and only after the cell reports the write durable does it
//! hand out values from the range — each one an increment and a compare, with
//! no allocation and no I/O. When the range runs out, the next range is
//! reserved the same way. After a restart, [`Obelisk::open`] resumes strictly
//! above the stored high-water mark, so no value that could have been handed
//! out before the crash is ever handed out again.
//!
//! # The trade-off: gaps
//!
//! Values reserved but not handed out before a crash or restart are skipped:
//! a restart leaves a gap of up to one range ([`ObeliskConfig::range`]).
//! Larger ranges mean fewer durable writes (one per range) but bigger gaps;
//! smaller ranges mean smaller gaps but more writes. The default, 2^20 values
//! per range, costs one `fsync` per million values and wastes at most about
//! a million values per restart — 2^64 values last forever at that rate.
//!
//! The sequence is strictly increasing and unique, **not** gap-free.
//!
//! # Example
//!
//! ```
//! use shen_rings::obelisk::{MemoryCell, Obelisk, ObeliskConfig};
//!
//! let cell = MemoryCell::new();
//! let mut ids = Obelisk::open(cell.clone(), ObeliskConfig::with_range(100)).unwrap();
//! assert_eq!(ids.next().unwrap(), 0);
//! assert_eq!(ids.next_batch(3).unwrap(), 1..4);
//! assert_eq!(cell.value(), Some(99)); // values 0..=99 are reserved
//!
//! drop(ids); // a crash: no shutdown step
//! let mut ids = Obelisk::open(cell, ObeliskConfig::with_range(100)).unwrap();
//! assert_eq!(ids.next().unwrap(), 100); // resumes above the high-water mark
//! ```
//!
//! # Sans-IO
//!
//! The storage is behind the [`DurableCell`] trait: [`MemoryCell`] here (for
//! the browser and the simulator), a crash-safe file in `shen-storage`'s
//! `FileCell`.

use alloc::sync::Arc;
use core::ops::Range;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A single `u64` that survives crashes: where an [`Obelisk`] keeps its
/// high-water mark.
///
/// Implementations must guarantee that once
/// [`store_durable`](DurableCell::store_durable) returns `Ok`, a later
/// [`load`](DurableCell::load) — in this process or any process after a crash
/// or power loss — returns that value or a later stored one, never an older
/// one and never a torn mix. A store that returns `Err` may or may not have
/// taken effect.
pub trait DurableCell {
    /// Why loading or storing failed.
    type Error: core::error::Error + 'static;

    /// The last durably stored value, or `None` if nothing was ever stored.
    ///
    /// Must return an error, never `None`, if a value was stored but can no
    /// longer be read back (corruption): `None` would restart the counter.
    fn load(&mut self) -> Result<Option<u64>, Self::Error>;

    /// Store `value`, returning only once it is durable.
    fn store_durable(&mut self, value: u64) -> Result<(), Self::Error>;
}

impl<C: DurableCell + ?Sized> DurableCell for &mut C {
    type Error = C::Error;

    fn load(&mut self) -> Result<Option<u64>, Self::Error> {
        (**self).load()
    }

    fn store_durable(&mut self, value: u64) -> Result<(), Self::Error> {
        (**self).store_durable(value)
    }
}

/// The error of a [`MemoryCell`] whose fault injection is switched on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MemoryCellError {
    /// [`MemoryCell::set_fail_loads`] is on.
    #[error("injected load failure")]
    InjectedLoadFailure,
    /// [`MemoryCell::set_fail_stores`] is on.
    #[error("injected store failure")]
    InjectedStoreFailure,
}

#[derive(Debug, Default)]
struct MemoryCellInner {
    present: AtomicBool,
    value: AtomicU64,
    fail_loads: AtomicBool,
    fail_stores: AtomicBool,
    stores: AtomicU64,
}

/// An in-memory [`DurableCell`] for the browser, the simulator and tests.
///
/// "Durable" here means: survives the [`Obelisk`] that uses it. Clones share
/// one value, so a test or simulator simulates a crash by dropping an
/// `Obelisk` (without any shutdown step) and opening a new one over a clone
/// of the same cell. Stores and loads can be made to fail to inject disk
/// faults.
#[derive(Debug, Clone, Default)]
pub struct MemoryCell {
    inner: Arc<MemoryCellInner>,
}

impl MemoryCell {
    /// An empty cell (nothing stored yet).
    pub fn new() -> MemoryCell {
        MemoryCell::default()
    }

    /// A cell that already holds `value`, as if stored by an earlier run.
    pub fn with_value(value: u64) -> MemoryCell {
        let cell = MemoryCell::new();
        cell.inner.value.store(value, Ordering::Relaxed);
        cell.inner.present.store(true, Ordering::Release);
        cell
    }

    /// The stored value, if any (what a [`DurableCell::load`] would return).
    pub fn value(&self) -> Option<u64> {
        if self.inner.present.load(Ordering::Acquire) {
            Some(self.inner.value.load(Ordering::Relaxed))
        } else {
            None
        }
    }

    /// How many stores succeeded so far (across all clones).
    pub fn store_count(&self) -> u64 {
        self.inner.stores.load(Ordering::Relaxed)
    }

    /// Make every following load fail (`true`) or succeed again (`false`).
    pub fn set_fail_loads(&self, fail: bool) {
        self.inner.fail_loads.store(fail, Ordering::Relaxed);
    }

    /// Make every following store fail without storing (`true`) or succeed
    /// again (`false`).
    pub fn set_fail_stores(&self, fail: bool) {
        self.inner.fail_stores.store(fail, Ordering::Relaxed);
    }
}

impl DurableCell for MemoryCell {
    type Error = MemoryCellError;

    fn load(&mut self) -> Result<Option<u64>, MemoryCellError> {
        if self.inner.fail_loads.load(Ordering::Relaxed) {
            return Err(MemoryCellError::InjectedLoadFailure);
        }
        Ok(self.value())
    }

    fn store_durable(&mut self, value: u64) -> Result<(), MemoryCellError> {
        if self.inner.fail_stores.load(Ordering::Relaxed) {
            return Err(MemoryCellError::InjectedStoreFailure);
        }
        self.inner.value.store(value, Ordering::Relaxed);
        self.inner.present.store(true, Ordering::Release);
        self.inner.stores.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Errors of an [`Obelisk`], generic over its cell's error `E`.
#[derive(Debug, thiserror::Error)]
pub enum ObeliskError<E> {
    /// Reading the high-water mark failed; the counter cannot resume safely.
    #[error("obelisk: loading the high-water mark failed")]
    Load(#[source] E),
    /// Persisting a new high-water mark failed; nothing from the new range
    /// was handed out. A retry stores again.
    #[error("obelisk: persisting the high-water mark failed")]
    Store(#[source] E),
    /// The counter cannot hand out `requested` more values without passing
    /// [`Obelisk::MAX_VALUE`]. It never wraps.
    #[error("obelisk exhausted: cannot hand out {requested} more value(s) after {next}")]
    Exhausted {
        /// The next value the counter would have handed out.
        next: u64,
        /// How many values were asked for.
        requested: u64,
    },
    /// [`ObeliskConfig::range`] is zero.
    #[error("obelisk: the reservation range must be at least 1")]
    ZeroRange,
}

/// Settings of an [`Obelisk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObeliskConfig {
    /// How many values one durable write reserves (at least 1). Also the
    /// largest gap a crash or restart can leave in the sequence; see the
    /// [module docs](self) for the trade-off. Default: 2^20.
    pub range: u64,
    /// The first value of a brand-new counter (one whose cell is empty), and
    /// a floor below which nothing is handed out. Default: 0.
    pub first_value: u64,
}

impl ObeliskConfig {
    /// The default reservation range: 2^20 values.
    pub const DEFAULT_RANGE: u64 = 1 << 20;

    /// The default settings with `range` values per reservation.
    pub const fn with_range(range: u64) -> ObeliskConfig {
        ObeliskConfig {
            range,
            first_value: 0,
        }
    }
}

impl Default for ObeliskConfig {
    fn default() -> ObeliskConfig {
        ObeliskConfig::with_range(ObeliskConfig::DEFAULT_RANGE)
    }
}

/// A crash-safe, strictly increasing `u64` counter over a [`DurableCell`].
///
/// Values handed out are unique and strictly increasing across restarts and
/// crashes, but not gap-free (see the [module docs](self)). The largest value
/// ever handed out is [`Obelisk::MAX_VALUE`] (`u64::MAX - 1`), so that every
/// batch is an ordinary half-open [`Range`].
///
/// The cell stores the *inclusive* highest reserved value. An `Obelisk` is
/// the only writer of its cell: two live `Obelisk`s over the same cell would
/// hand out the same values.
#[derive(Debug)]
pub struct Obelisk<C: DurableCell> {
    cell: C,
    /// The next value to hand out.
    next: u64,
    /// Exclusive end of the durably reserved range: `[next, end)` may be
    /// handed out without I/O. `end - 1` is what the cell holds (once
    /// anything was reserved in this run).
    end: u64,
    range: u64,
}

impl<C: DurableCell> Obelisk<C> {
    /// The largest value an `Obelisk` ever hands out.
    pub const MAX_VALUE: u64 = u64::MAX - 1;

    /// Open a counter over `cell`: load the high-water mark and resume
    /// strictly above it (or at [`ObeliskConfig::first_value`] if the cell is
    /// empty). Performs no write; the first [`next`](Obelisk::next) reserves
    /// the first range.
    pub fn open(mut cell: C, config: ObeliskConfig) -> Result<Obelisk<C>, ObeliskError<C::Error>> {
        if config.range == 0 {
            return Err(ObeliskError::ZeroRange);
        }
        let start = match cell.load().map_err(ObeliskError::Load)? {
            // A stored u64::MAX saturates: the counter is then exhausted.
            Some(high_water) => high_water.saturating_add(1).max(config.first_value),
            None => config.first_value,
        };
        Ok(Obelisk {
            cell,
            next: start,
            end: start,
            range: config.range,
        })
    }

    /// Hand out the next value.
    ///
    /// Within a reserved range this is an increment and a compare. At the
    /// end of a range it first durably reserves the next range; if that
    /// fails it returns [`ObeliskError::Store`] and hands out nothing.
    #[inline]
    // Not `Iterator::next`: it is fallible and the error must not be lost.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<u64, ObeliskError<C::Error>> {
        let value = self.next;
        if value < self.end {
            self.next = value + 1;
            Ok(value)
        } else {
            self.next_after_reserve()
        }
    }

    #[cold]
    #[inline(never)]
    fn next_after_reserve(&mut self) -> Result<u64, ObeliskError<C::Error>> {
        self.reserve(1)?;
        let value = self.next;
        self.next = value + 1;
        Ok(value)
    }

    /// Hand out `n` consecutive values at once, as the range
    /// `start..start + n`. Reserves (durably) as needed first — at least
    /// enough for the whole batch, so batches larger than
    /// [`ObeliskConfig::range`] work. `n == 0` returns an empty range and
    /// never does I/O.
    pub fn next_batch(&mut self, n: u64) -> Result<Range<u64>, ObeliskError<C::Error>> {
        let start = self.next;
        let end = start.checked_add(n).ok_or(ObeliskError::Exhausted {
            next: start,
            requested: n,
        })?;
        if end > self.end {
            self.reserve(n)?;
        }
        self.next = end;
        Ok(start..end)
    }

    /// Durably extend the reservation so that `[next, next + n)` is covered,
    /// by at least one whole range. Only called when it is not covered yet.
    fn reserve(&mut self, n: u64) -> Result<(), ObeliskError<C::Error>> {
        let exhausted = ObeliskError::Exhausted {
            next: self.next,
            requested: n,
        };
        // `end` is exclusive and at most u64::MAX, so values stop at MAX - 1.
        let needed_end = self.next.checked_add(n).ok_or(exhausted)?;
        let new_end = needed_end.max(self.end.saturating_add(self.range));
        debug_assert!(new_end > self.end);
        // Persist first, then widen what may be handed out.
        self.cell
            .store_durable(new_end - 1)
            .map_err(ObeliskError::Store)?;
        self.end = new_end;
        Ok(())
    }

    /// The value the next [`next`](Obelisk::next) call would hand out (if it
    /// succeeds).
    pub fn peek(&self) -> u64 {
        self.next
    }

    /// How many values can be handed out before the next durable write.
    pub fn remaining_in_range(&self) -> u64 {
        self.end - self.next
    }

    /// The exclusive end of the durably reserved range: everything handed
    /// out so far is below it, and a restart resumes at (or above) it.
    pub fn reserved_end(&self) -> u64 {
        self.end
    }

    /// The configured range size.
    pub fn range(&self) -> u64 {
        self.range
    }

    /// The underlying cell.
    pub fn cell(&self) -> &C {
        &self.cell
    }

    /// Give the cell back. Unused values of the current range are lost (a
    /// gap), exactly as after a crash.
    pub fn into_cell(self) -> C {
        self.cell
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn open(cell: &MemoryCell, range: u64) -> Obelisk<MemoryCell> {
        Obelisk::open(cell.clone(), ObeliskConfig::with_range(range)).unwrap()
    }

    #[test]
    fn fresh_counter_starts_at_first_value_and_reserves_lazily() {
        let cell = MemoryCell::new();
        let mut o = open(&cell, 10);
        assert_eq!(cell.store_count(), 0, "open does not write");
        assert_eq!(o.next().unwrap(), 0);
        assert_eq!(cell.value(), Some(9));
        for expected in 1..10 {
            assert_eq!(o.next().unwrap(), expected);
        }
        assert_eq!(cell.store_count(), 1, "one write per range");
        assert_eq!(o.next().unwrap(), 10);
        assert_eq!(cell.value(), Some(19));
        assert_eq!(cell.store_count(), 2);

        let cfg = ObeliskConfig {
            range: 4,
            first_value: 1_000,
        };
        let mut o = Obelisk::open(MemoryCell::new(), cfg).unwrap();
        assert_eq!(o.next().unwrap(), 1_000);
    }

    #[test]
    fn restart_resumes_above_the_high_water_mark() {
        let cell = MemoryCell::new();
        let mut o = open(&cell, 100);
        let before: Vec<u64> = (0..150).map(|_| o.next().unwrap()).collect();
        assert_eq!(o.reserved_end(), 200);
        drop(o); // crash: 50 reserved values are lost
        let mut o = open(&cell, 100);
        let after = o.next().unwrap();
        assert_eq!(after, 200);
        assert!(after > *before.last().unwrap());
    }

    #[test]
    fn zero_range_is_rejected() {
        assert!(matches!(
            Obelisk::open(MemoryCell::new(), ObeliskConfig::with_range(0)),
            Err(ObeliskError::ZeroRange)
        ));
    }

    #[test]
    fn failed_load_fails_open() {
        let cell = MemoryCell::with_value(5);
        cell.set_fail_loads(true);
        assert!(matches!(
            Obelisk::open(cell.clone(), ObeliskConfig::default()),
            Err(ObeliskError::Load(MemoryCellError::InjectedLoadFailure))
        ));
    }

    #[test]
    fn failed_store_hands_out_nothing_unreserved() {
        let cell = MemoryCell::new();
        let mut o = open(&cell, 3);
        assert_eq!(o.next().unwrap(), 0);
        cell.set_fail_stores(true);
        // The rest of the reserved range is still fine...
        assert_eq!(o.next().unwrap(), 1);
        assert_eq!(o.next().unwrap(), 2);
        // ...but nothing beyond it.
        for _ in 0..3 {
            assert!(matches!(
                o.next(),
                Err(ObeliskError::Store(MemoryCellError::InjectedStoreFailure))
            ));
            assert!(matches!(o.next_batch(2), Err(ObeliskError::Store(_))));
        }
        assert_eq!(cell.value(), Some(2));
        assert_eq!(o.peek(), 3);
        // Recovery: once stores work again, the counter continues.
        cell.set_fail_stores(false);
        assert_eq!(o.next().unwrap(), 3);
        assert_eq!(cell.value(), Some(5));
    }

    #[test]
    fn batches() {
        let cell = MemoryCell::new();
        let mut o = open(&cell, 10);
        assert_eq!(o.next_batch(0).unwrap(), 0..0);
        assert_eq!(cell.store_count(), 0);
        assert_eq!(o.next_batch(4).unwrap(), 0..4);
        assert_eq!(o.next_batch(4).unwrap(), 4..8);
        assert_eq!(cell.store_count(), 1);
        // Crosses the range end: contiguous, extends by a whole range.
        assert_eq!(o.next_batch(4).unwrap(), 8..12);
        assert_eq!(cell.value(), Some(19));
        // Bigger than a range.
        assert_eq!(o.next_batch(25).unwrap(), 12..37);
        assert_eq!(cell.value(), Some(36));
        assert_eq!(o.next().unwrap(), 37);
        assert_eq!(cell.value(), Some(46));
    }

    #[test]
    fn exhaustion_near_u64_max_never_wraps() {
        let max = Obelisk::<MemoryCell>::MAX_VALUE;
        let cell = MemoryCell::with_value(max - 3);
        let mut o = open(&cell, 1_000);
        assert_eq!(o.next().unwrap(), max - 2);
        assert_eq!(cell.value(), Some(max), "reservation saturates");
        assert_eq!(o.next().unwrap(), max - 1);
        assert_eq!(o.next().unwrap(), max);
        for _ in 0..2 {
            assert!(matches!(
                o.next(),
                Err(ObeliskError::Exhausted {
                    next: u64::MAX,
                    requested: 1
                })
            ));
        }
        // Restarting does not help either.
        let mut o = open(&cell, 1_000);
        assert!(matches!(o.next(), Err(ObeliskError::Exhausted { .. })));
        assert!(matches!(
            o.next_batch(1),
            Err(ObeliskError::Exhausted { .. })
        ));
        assert_eq!(o.next_batch(0).unwrap(), u64::MAX..u64::MAX);
        // A stored u64::MAX (not written by us) is exhausted too.
        let mut o = open(&MemoryCell::with_value(u64::MAX), 1);
        assert!(matches!(o.next(), Err(ObeliskError::Exhausted { .. })));
        // Batches that do not fit are refused whole.
        let mut o = open(&MemoryCell::with_value(max - 5), 1);
        assert!(matches!(
            o.next_batch(10),
            Err(ObeliskError::Exhausted { requested: 10, .. })
        ));
        assert_eq!(o.next_batch(5).unwrap(), max - 4..u64::MAX);
    }

    #[test]
    fn works_through_a_mutable_reference() {
        let mut cell = MemoryCell::new();
        {
            let mut o = Obelisk::open(&mut cell, ObeliskConfig::with_range(2)).unwrap();
            assert_eq!(o.next().unwrap(), 0);
        }
        assert_eq!(cell.value(), Some(1));
    }

    /// One step of a simulated node lifetime.
    #[derive(Debug, Clone)]
    enum Op {
        Next,
        Batch(u64),
        FailStores(bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => Just(Op::Next),
            2 => (0u64..40).prop_map(Op::Batch),
            1 => any::<bool>().prop_map(Op::FailStores),
        ]
    }

    proptest! {
        /// Runs of operations separated by crashes (the Obelisk is dropped
        /// with no shutdown and reopened over the same cell, sometimes with a
        /// different range): every value ever handed out is unique, strictly
        /// increasing across all runs, and covered by the durable high-water
        /// mark at the moment it is handed out.
        #[test]
        fn restarts_never_repeat(
            runs in proptest::collection::vec(
                (1u64..50, proptest::collection::vec(op(), 0..80)),
                1..12,
            ),
        ) {
            let cell = MemoryCell::new();
            let mut last: Option<u64> = None;
            for (range, ops) in runs {
                cell.set_fail_stores(false);
                let mut o = open(&cell, range);
                for op in ops {
                    let got: Vec<u64> = match op {
                        Op::Next => o.next().map(|v| alloc::vec![v]).unwrap_or_default(),
                        Op::Batch(n) => o.next_batch(n).map(|r| r.collect()).unwrap_or_default(),
                        Op::FailStores(f) => {
                            cell.set_fail_stores(f);
                            Vec::new()
                        }
                    };
                    for v in got {
                        prop_assert!(last.is_none_or(|l| v > l), "{} after {:?}", v, last);
                        let durable = cell.value();
                        prop_assert!(durable.is_some_and(|d| v <= d), "{} above hwm {:?}", v, durable);
                        last = Some(v);
                    }
                }
                drop(o);
            }
        }
    }
}
