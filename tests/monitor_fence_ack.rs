//! The monitor's fast-path fence acknowledgement: written on the shared disk only after a fence
//! that left nothing running, covering every request of the node's incarnation; never after a
//! graceful shutdown.
mod monitor_support;

use disklayout::{
    decode, encode, format_blocks, Acknowledged, FenceAck, Geometry, NodeEntry, Sealed, Superblock,
    Timing,
};
use monitor_support::*;
use std::path::Path;
use std::time::Duration;
use wolfpack::monitor::fence_ack::FenceAckTarget;
use wolfpack::monitor::{MonitorClient, MonitorConfig};

const CLUSTER_ID: u64 = 0xfe;
const NODE: u8 = 2;

fn formatted_disk(scratch: &Scratch) -> (std::path::PathBuf, u64) {
    let size_bytes = 2 << 20;
    let geometry = Geometry::for_disk(size_bytes, 8).expect("fits");
    let superblock = Superblock {
        cluster_name: "t".into(),
        disk_size_bytes: size_bytes,
        geometry,
        timing: Timing::default(),
        watchdog: Default::default(),
    };
    let node = NodeEntry {
        node_id: NODE,
        name: "n".into(),
        addresses: vec![([127, 0, 0, 1], 7402).into()],
    };
    let mut image = vec![0u8; size_bytes as usize];
    for (offset, block) in format_blocks(CLUSTER_ID, &superblock, &[node]).expect("valid") {
        image[offset as usize..offset as usize + block.len()].copy_from_slice(&block[..]);
    }
    // An older acknowledgement of an earlier request: the new one must supersede it.
    let offset = geometry.fence_ack_offset(NODE);
    let older = FenceAck {
        node_id: NODE,
        incarnation: 41,
        acknowledged: Acknowledged::Request {
            requester: 2,
            requester_incarnation: 17,
            sequence: 3,
        },
        resources_stopped: true,
    };
    let mut block = Box::new([0u8; disklayout::BLOCK_SIZE]);
    encode(
        &Sealed {
            cluster_id: CLUSTER_ID,
            sequence: 5,
            record: older,
        },
        &mut block,
    )
    .expect("valid");
    image[offset as usize..offset as usize + block.len()].copy_from_slice(&block[..]);
    let path = scratch.file("disk.img");
    std::fs::write(&path, image).expect("disk");
    (path, offset)
}

fn spawn_with_ack(scratch: &Scratch, disk: &Path, offset_bytes: u64) -> MonitorClient {
    let mut config = MonitorConfig::new(NODE, 600_000, scratch.file("events.log"));
    config.fence_ack = Some(FenceAckTarget {
        disk: disk.to_path_buf(),
        disk_io: None,
        offset_bytes,
        cluster_id: CLUSTER_ID,
        node_id: NODE,
        incarnation: 42,
    });
    MonitorClient::spawn(Path::new(env!("CARGO_BIN_EXE_wolfpack")), config).expect("spawn monitor")
}

fn ack_on_disk(disk: &Path, offset: u64) -> Sealed<FenceAck> {
    let bytes = std::fs::read(disk).expect("disk");
    decode::<FenceAck>(&bytes[offset as usize..offset as usize + disklayout::BLOCK_SIZE])
        .expect("valid")
        .expect("present")
}

#[test]
fn a_fence_acknowledges_every_request_of_the_incarnation() {
    let scratch = Scratch::new("monitor-ack");
    let (disk, offset) = formatted_disk(&scratch);
    let mut client = spawn_with_ack(&scratch, &disk, offset);
    client
        .send(&start_process("web", "exec sleep 1000", &[], None))
        .expect("send");
    wait_for(
        &mut client,
        |event| matches!(event, wolfpack::monitor::Event::Done { resource, .. } if resource == "web"),
    );
    let monitor = client.child_pid() as i32;
    drop(client);
    wait_until("the monitor fenced and exited", || {
        let mut status = 0;
        // SAFETY: waitpid on our own child's pid with a valid status pointer.
        let reaped = unsafe { libc::waitpid(monitor, &mut status, libc::WNOHANG) };
        reaped == monitor
    });
    let ack = ack_on_disk(&disk, offset);
    assert_eq!(
        ack.sequence, 6,
        "a larger ack counter than the one it replaces"
    );
    assert_eq!(
        ack.record,
        FenceAck {
            node_id: NODE,
            incarnation: 42,
            acknowledged: Acknowledged::Every,
            resources_stopped: true
        }
    );
}

#[test]
fn a_graceful_shutdown_writes_no_acknowledgement() {
    let scratch = Scratch::new("monitor-noack");
    let (disk, offset) = formatted_disk(&scratch);
    let client = spawn_with_ack(&scratch, &disk, offset);
    let (status, _) = client.shutdown(Duration::from_secs(30)).expect("shut down");
    assert!(status.success());
    assert_eq!(
        ack_on_disk(&disk, offset).record.incarnation,
        41,
        "the older ack is untouched"
    );
}
