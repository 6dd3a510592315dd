//! What a fresh format writes: the superblock and the node table. Everything else is zero.
use crate::error::EncodeError;
use crate::{encode, Block, NodeEntry, Sealed, Superblock, BLOCK_SIZE};

/// The blocks a format writes after zeroing every block up to `geometry.end_bytes()`, as
/// (offset, block) pairs in offset order.
pub fn format_blocks(
    cluster_id: u64,
    superblock: &Superblock,
    nodes: &[NodeEntry],
) -> Result<Vec<(u64, Box<Block>)>, EncodeError> {
    if cluster_id == 0 {
        return Err(EncodeError::field(
            "cluster_id",
            "0 is reserved for empty blocks",
        ));
    }
    if nodes.is_empty() {
        return Err(EncodeError::field(
            "nodes",
            "a cluster needs at least one node",
        ));
    }
    let mut seen = [false; crate::NODE_ID_MAX as usize + 1];
    for node in nodes {
        if crate::is_node_id(node.node_id)
            && std::mem::replace(&mut seen[node.node_id as usize], true)
        {
            return Err(EncodeError::field(
                "node_id",
                format!("node {} is given twice", node.node_id),
            ));
        }
    }
    let mut blocks = Vec::with_capacity(1 + nodes.len());
    let mut block = Box::new([0u8; BLOCK_SIZE]);
    encode(
        &Sealed {
            cluster_id,
            sequence: 1,
            record: superblock.clone(),
        },
        &mut block,
    )?;
    blocks.push((0, block));
    let mut sorted: Vec<&NodeEntry> = nodes.iter().collect();
    sorted.sort_by_key(|node| node.node_id);
    for node in sorted {
        let mut block = Box::new([0u8; BLOCK_SIZE]);
        encode(
            &Sealed {
                cluster_id,
                sequence: 1,
                record: node.clone(),
            },
            &mut block,
        )?;
        blocks.push((superblock.geometry.node_entry_offset(node.node_id), block));
    }
    Ok(blocks)
}
