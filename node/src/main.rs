//! `shen`: the Shen command-line tool.
fn main() {}
