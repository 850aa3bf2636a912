//! `shen-transport-memory`: the deterministic simulator that drives Shen's
//! sans-IO rings in virtual time over an in-memory network (issue 3; not
//! built yet — this crate currently exports nothing).
