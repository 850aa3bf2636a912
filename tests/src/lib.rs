//! `shen-tests`: cross-crate and multi-process tests for Shen (the tests live in `tests/tests/`).
