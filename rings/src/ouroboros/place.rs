//! Placement: the chains every member starts from (Ankh) and the partition of a key.

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use super::{Chain, Epoch, Members, OuroborosConfig, Table};
use crate::ankh::{partition_of_hash, AnkhConfig, AnkhRing, Member};
use crate::contract::NodeId;
use crate::hash::hash_bytes;

pub(super) fn ankh_of<I: NodeId>(
    config: &OuroborosConfig,
    nodes: impl IntoIterator<Item = I>,
) -> AnkhRing<I> {
    let ankh = AnkhConfig {
        rf: config.rf,
        partitions: config.partitions,
        ..AnkhConfig::default()
    };
    let members = nodes.into_iter().map(|id| Member {
        id,
        weight: 100,
        salt: 0,
    });
    // The config was validated and ids are distinct (they come from a set),
    // so building cannot fail; an empty ring is the fallback.
    AnkhRing::from_members(ankh.clone(), members)
        .unwrap_or_else(|_| AnkhRing::new(AnkhConfig::default()).expect("default config is valid"))
}

/// Where the log wants each partition's replicas: the Ankh chain over the
/// members that are not leaving (the same for every node that holds the
/// same member set).
pub(super) fn placement<I: NodeId>(config: &OuroborosConfig, members: &Members<I>) -> Vec<Vec<I>> {
    let ring = ankh_of(
        config,
        members.ids().filter(|m| !members.is_leaving(m)).cloned(),
    );
    (0..config.partitions)
        .map(|p| ring.chain_of(p).cloned().collect())
        .collect()
}

/// The table every member starts from: each partition's Ankh chain over
/// `members`, epoch zero; or, when the settings give founding chains that
/// fit `members` ([`OuroborosConfig::founding_chains`]), those chains with
/// their epochs, under a ballot equal to the newest of them.
///
/// Either way every founding member computes the same table from the same
/// list and settings, so it is as agreed as the Ankh one: no round has
/// run, and every later round needs a ballot above this one (Cartouche
/// generations are raised above it where the table is built, see
/// `stack::build_node_with_stores`).
pub fn initial_table<I: NodeId>(config: &OuroborosConfig, members: &[I]) -> Table<I> {
    let set: BTreeSet<I> = members.iter().cloned().collect();
    let given = &config.founding_chains;
    if !given.is_empty()
        && set.len() == members.len()
        && super::types::founding_chains_error(given, config.partitions, members.len()).is_none()
    {
        let chains: Vec<Chain<I>> = given
            .iter()
            .map(|c| Chain {
                epoch: c.epoch,
                prev: Epoch::default(),
                keep: None,
                members: c
                    .members
                    .iter()
                    .map(|&m| members[m as usize].clone())
                    .collect(),
                learners: Vec::new(),
            })
            .collect();
        return Table {
            ballot: chains.iter().map(|c| c.epoch).max().unwrap_or_default(),
            chains,
            members: Members::founding(members),
        };
    }
    let ring = ankh_of(config, set);
    Table {
        ballot: Epoch::default(),
        chains: (0..config.partitions)
            .map(|p| Chain {
                epoch: Epoch::default(),
                prev: Epoch::default(),
                keep: None,
                members: ring.chain_of(p).cloned().collect(),
                learners: Vec::new(),
            })
            .collect(),
        members: Members::founding(members),
    }
}

/// The partition a key belongs to (the Ankh partition of its hash).
pub fn partition_of_key(key: &[u8], partitions: u32) -> u32 {
    partition_of_hash(hash_bytes(key), partitions)
}
