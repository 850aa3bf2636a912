//! The shape every checker shares: validate a config, run one seed, fold
//! per-seed results in seed order into a report.

use core::fmt;
use core::ops::Range;

/// A many-seed checker: a typed config that can run any one of its seeds.
///
/// `run_seed` depends only on the config and the seed, so seeds may run in
/// any order or in parallel; folding their results in seed order gives the
/// same report as [`run_all`].
pub trait Check {
    /// One seed's result.
    type Run;
    /// The report over every seed.
    type Report;
    /// Folds runs, in seed order, into the report.
    type Fold: Fold<Run = Self::Run, Report = Self::Report>;

    /// Reject a config the checker cannot run; the message names the flag.
    fn validate(&self) -> Result<(), String>;
    /// The seeds to run.
    fn seeds(&self) -> Range<u64>;
    /// Run one seed (the config should be valid).
    fn run_seed(&self, seed: u64) -> Result<Self::Run, String>;
    /// An empty fold for this config.
    fn fold(&self) -> Self::Fold;
}

/// Folds per-seed results, pushed in seed order, into a report.
pub trait Fold {
    /// One seed's result.
    type Run;
    /// The report.
    type Report;

    /// Add the next seed's result.
    fn push(&mut self, run: Self::Run);
    /// The report over every run pushed.
    fn finish(self) -> Self::Report;
}

/// Why a many-seed check produced no report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckError {
    /// The config is invalid (the message names the flag).
    Invalid(String),
    /// A seed could not run (the first such seed in seed order).
    Seed {
        /// The seed.
        seed: u64,
        /// What went wrong.
        error: String,
    },
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Invalid(e) => f.write_str(e),
            CheckError::Seed { seed, error } => write!(f, "seed {seed}: {error}"),
        }
    }
}

impl std::error::Error for CheckError {}

/// Validate `check`, run its seeds one after the other and fold them.
pub fn run_all<C: Check>(check: &C) -> Result<C::Report, CheckError> {
    check.validate().map_err(CheckError::Invalid)?;
    let mut fold = check.fold();
    for seed in check.seeds() {
        let run = check
            .run_seed(seed)
            .map_err(|error| CheckError::Seed { seed, error })?;
        fold.push(run);
    }
    Ok(fold.finish())
}
