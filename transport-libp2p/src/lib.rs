//! `shen-transport-libp2p`: drives Shen's sans-IO rings over libp2p with
//! real time (issue 7; not built yet — this crate currently exports nothing).
