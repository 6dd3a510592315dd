//! What a node learns from the shared disk before it starts: the cluster id, the shared timing,
//! the node table, and its own incarnation. Nothing is written here: a node that cannot start
//! leaves the disk as it found it.
use crate::disk::storage::Storage;
use disklayout::{decode, Block, NodeEntry, NodeSlot, Sealed, Superblock, BLOCK_SIZE};

/// Everything the disk says about the cluster and this node.
#[derive(Clone, Debug)]
pub struct DiskConfig {
    pub cluster_id: u64,
    pub superblock: Superblock,
    /// Every configured node, ascending by id.
    pub nodes: Vec<NodeEntry>,
    /// This node's entry.
    pub own: NodeEntry,
    /// Larger than any incarnation this node used before (its slot's) and than its wall clock in
    /// ms, so a restart is recognised even if the slot write of the last life was lost.
    pub incarnation: u64,
    /// Each peer's incarnation as its slot records it (peers with no valid slot are absent).
    /// Frames of an older incarnation of that peer are replays from a previous life: the
    /// daemon makes this the wire's replay floor, so a node that restarts with empty replay
    /// windows still refuses them.
    pub peer_incarnations: Vec<(u8, u64)>,
}

/// Why the node cannot start from this disk; each is one line naming the disk or the node.
#[derive(Debug, PartialEq, Eq)]
pub enum StartupError {
    Read(String),
    NotFormatted(String),
    BadSuperblock(String),
    UnknownNode { node_id: u8, configured: Vec<u8> },
    BadNodeEntry { node_id: u8, problem: String },
    BadOwnSlot { node_id: u8, problem: String },
}

impl std::fmt::Display for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartupError::Read(error) => write!(f, "cannot read the shared disk: {error}"),
            StartupError::NotFormatted(path) => {
                write!(f, "{path} is not a wolfpack disk (block 0 is empty); run 'wolfpack disk format' first")
            }
            StartupError::BadSuperblock(problem) => {
                write!(f, "{problem}")
            }
            StartupError::UnknownNode {
                node_id,
                configured,
            } => {
                let ids: Vec<String> = configured.iter().map(u8::to_string).collect();
                write!(
                    f,
                    "node id {node_id} is not in the disk's node table (configured: {})",
                    ids.join(", ")
                )
            }
            StartupError::BadOwnSlot { node_id, problem } => {
                write!(f, "the node slot of node {node_id} is bad: {problem}")
            }
            StartupError::BadNodeEntry { node_id, problem } => {
                write!(
                    f,
                    "the node table entry of node {node_id} is bad: {problem}"
                )
            }
        }
    }
}

impl std::error::Error for StartupError {}

/// Reads the superblock, the node table and this node's slot.
pub fn read_disk_config(
    disk: &mut dyn Storage,
    path: &str,
    node_id: u8,
    realtime_ms: u64,
) -> Result<DiskConfig, StartupError> {
    let mut block: Box<Block> = Box::new([0u8; BLOCK_SIZE]);
    let mut read = |offset_bytes: u64, block: &mut Block| {
        disk.read_at(offset_bytes, &mut block[..])
            .map_err(|error| StartupError::Read(error.to_string()))
    };
    read(0, &mut block)?;
    let superblock = match decode::<Superblock>(&block[..]) {
        Ok(Some(superblock)) => superblock,
        Ok(None) => return Err(StartupError::NotFormatted(path.to_string())),
        Err(error) => {
            let problem = disklayout::inspect::InspectError::BadSuperblock(error);
            return Err(StartupError::BadSuperblock(format!("{path}: {problem}")));
        }
    };
    let Sealed {
        cluster_id,
        record: superblock,
        ..
    } = superblock;
    let geometry = superblock.geometry;
    let mut nodes = Vec::new();
    for id in 1..=disklayout::NODE_ID_MAX {
        read(geometry.node_entry_offset(id), &mut block)?;
        match decode::<NodeEntry>(&block[..]) {
            Ok(Some(entry)) if entry.cluster_id == cluster_id && entry.record.node_id == id => {
                nodes.push(entry.record)
            }
            Ok(None) => {}
            Ok(Some(_)) if id == node_id => {
                let problem = String::from("stale or misplaced (another cluster id or node id)");
                return Err(StartupError::BadNodeEntry { node_id, problem });
            }
            Err(error) if id == node_id => {
                return Err(StartupError::BadNodeEntry {
                    node_id,
                    problem: error.to_string(),
                });
            }
            // Another node's bad entry must not stop this one; that node will refuse to start.
            _ => log::warn!("ignoring the bad node table entry of node {id}"),
        }
    }
    let Some(own) = nodes.iter().find(|entry| entry.node_id == node_id).cloned() else {
        let configured = nodes.iter().map(|entry| entry.node_id).collect();
        return Err(StartupError::UnknownNode {
            node_id,
            configured,
        });
    };
    read(geometry.node_slot_offset(node_id), &mut block)?;
    let previous = match decode::<NodeSlot>(&block[..]) {
        Ok(Some(slot)) if slot.cluster_id == cluster_id => slot.record.incarnation,
        _ => 0,
    };
    let incarnation = previous.saturating_add(1).max(realtime_ms);
    // A slot at the top of the counter range (a hostile or corrupt disk with a valid CRC)
    // would give an incarnation no record may carry: every slot write would then be refused,
    // and the node would run without ever forming. Refuse to start instead, naming the slot.
    if !disklayout::is_counter(incarnation) {
        return Err(StartupError::BadOwnSlot {
            node_id,
            problem: format!(
                "its incarnation {previous} leaves no larger one (the largest is 2^62-1): wolfpack never writes such a slot; see 'wolfpack disk check'"
            ),
        });
    }
    let mut peer_incarnations = Vec::new();
    for peer in nodes
        .iter()
        .map(|entry| entry.node_id)
        .filter(|&id| id != node_id)
    {
        read(geometry.node_slot_offset(peer), &mut block)?;
        if let Ok(Some(slot)) = decode::<NodeSlot>(&block[..]) {
            if slot.cluster_id == cluster_id {
                peer_incarnations.push((peer, slot.record.incarnation));
            }
        }
    }
    Ok(DiskConfig {
        cluster_id,
        superblock,
        nodes,
        own,
        incarnation,
        peer_incarnations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::storage::MemoryStorage;
    use disklayout::{encode, format_blocks, Geometry, NodeState, Timing};

    fn formatted() -> (MemoryStorage, u64) {
        let size_bytes = 2 << 20;
        let mut disk = MemoryStorage::new(size_bytes);
        let geometry = Geometry::for_disk(size_bytes, 8).expect("fits");
        let superblock = Superblock {
            cluster_name: "t".into(),
            disk_size_bytes: size_bytes,
            geometry,
            timing: Timing::default(),
            watchdog: Default::default(),
        };
        let nodes = [1u8, 3].map(|node_id| NodeEntry {
            node_id,
            name: format!("n{node_id}"),
            addresses: vec![([127, 0, 0, 1], 7400 + node_id as u16).into()],
        });
        for (offset, block) in format_blocks(77, &superblock, &nodes).expect("valid") {
            disk.write_at(offset, &block[..]).expect("write");
        }
        (disk, geometry.node_slot_offset(3))
    }

    #[test]
    fn reads_the_table_and_picks_a_fresh_incarnation() {
        let (mut disk, slot_offset) = formatted();
        let config = read_disk_config(&mut disk, "d", 3, 1000).expect("starts");
        assert_eq!(config.cluster_id, 77);
        assert_eq!(
            config.nodes.iter().map(|n| n.node_id).collect::<Vec<_>>(),
            vec![1, 3]
        );
        assert_eq!(config.own.name, "n3");
        assert_eq!(config.incarnation, 1000);

        let slot = NodeSlot {
            node_id: 3,
            state: NodeState::Member,
            incarnation: 5000,
            epoch: 2,
            members: 0b101,
            realtime_ms: 0,
            lease_valid_ms: 0,
        };
        let mut block = Box::new([0u8; BLOCK_SIZE]);
        encode(
            &Sealed {
                cluster_id: 77,
                sequence: 9,
                record: slot,
            },
            &mut block,
        )
        .expect("valid");
        disk.write_at(slot_offset, &block[..]).expect("write");
        let restarted = read_disk_config(&mut disk, "d", 3, 1000).expect("starts");
        assert_eq!(
            restarted.incarnation, 5001,
            "a clock that went back still gives a larger incarnation"
        );
        assert!(
            restarted.peer_incarnations.is_empty(),
            "node 1 never wrote its slot"
        );
        // Issue 16, finding 5: node 1 restarting learns node 3's incarnation from its slot, so
        // frames of node 3's earlier lives are replays even to a node with empty windows.
        let peer_view = read_disk_config(&mut disk, "d", 1, 1000).expect("starts");
        assert_eq!(peer_view.peer_incarnations, vec![(3, 5000)]);
    }

    #[test]
    fn refuses_unknown_nodes_and_unformatted_disks() {
        let (mut disk, _) = formatted();
        let unknown = read_disk_config(&mut disk, "d", 2, 0).expect_err("not configured");
        assert_eq!(
            unknown.to_string(),
            "node id 2 is not in the disk's node table (configured: 1, 3)"
        );
        let mut blank = MemoryStorage::new(2 << 20);
        let error = read_disk_config(&mut blank, "blank.img", 1, 0).expect_err("blank");
        assert!(
            error
                .to_string()
                .starts_with("blank.img is not a wolfpack disk"),
            "{error}"
        );
    }
}
