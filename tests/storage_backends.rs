//! The storage backends on real files and a loop device.
//!
//! Temporary files live under Cargo's per-target temporary directory, not /tmp: /tmp may be a
//! tmpfs, which (on older kernels) refuses O_DIRECT. Every file is removed, and every loop
//! device detached, by a guard's Drop, so a failing assertion leaves nothing behind.
//!
//! The loop device test needs root. Without root it prints `SKIPPED` and passes, except when
//! CI=true, where skipping would hide a regression, so it fails.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use wolfpack::disk::storage::{
    self, Access, DiskIo, MemoryStorage, Operation, Storage, StorageError, BLOCK_SIZE,
};

const BLOCK_SIZE_BYTES: u64 = BLOCK_SIZE as u64;
/// More blocks than the direct backend's bounce buffer holds, so transfers are split.
const DISK_BLOCKS: usize = 80;
const DISK_SIZE_BYTES: u64 = DISK_BLOCKS as u64 * BLOCK_SIZE_BYTES;
const FILE_BACKENDS: [DiskIo; 2] = [DiskIo::Mmap, DiskIo::Direct];

/// A path for a temporary file, removed on drop.
struct TempPath {
    path: PathBuf,
}

impl TempPath {
    fn new(name: &str) -> TempPath {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let number = COUNTER.fetch_add(1, Ordering::Relaxed);
        let directory = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let file_name = format!("storage-{name}-{}-{number}.disk", std::process::id());
        let path = directory.join(file_name);
        let _ = fs::remove_file(&path);
        TempPath { path }
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Block `index` filled with a byte that differs between blocks and between `seed`s.
fn block_pattern(index: usize, seed: u8) -> Vec<u8> {
    vec![(index as u8).wrapping_mul(31).wrapping_add(seed); BLOCK_SIZE]
}

fn blocks_pattern(first: usize, count: usize, seed: u8) -> Vec<u8> {
    (first..first + count)
        .flat_map(|index| block_pattern(index, seed))
        .collect()
}

fn read_blocks(storage: &mut dyn Storage, first: usize, count: usize) -> Vec<u8> {
    let mut bytes = vec![0; count * BLOCK_SIZE];
    storage
        .read_at(first as u64 * BLOCK_SIZE_BYTES, &mut bytes)
        .expect("read blocks");
    bytes
}

fn write_blocks(storage: &mut dyn Storage, first: usize, bytes: &[u8]) {
    storage
        .write_at(first as u64 * BLOCK_SIZE_BYTES, bytes)
        .expect("write blocks");
}

/// Writes one block, a run crossing the bounce buffer's size, and the last block.
fn write_and_check(storage: &mut dyn Storage, seed: u8) -> Vec<u8> {
    let mut expected = vec![0; DISK_BLOCKS * BLOCK_SIZE];
    let writes = [(0, 1), (3, 70), (DISK_BLOCKS - 1, 1)];
    for (first, count) in writes {
        let bytes = blocks_pattern(first, count, seed);
        write_blocks(storage, first, &bytes);
        expected[first * BLOCK_SIZE..(first + count) * BLOCK_SIZE].copy_from_slice(&bytes);
    }
    assert!(
        read_blocks(storage, 0, DISK_BLOCKS) == expected,
        "{:?}: read back",
        storage.io()
    );
    assert!(
        read_blocks(storage, 3, 1) == block_pattern(3, seed),
        "{:?}: one block",
        storage.io()
    );
    expected
}

#[test]
fn each_file_backend_reads_back_after_flush_and_reopen() {
    for io in FILE_BACKENDS {
        let disk = TempPath::new(io.name());
        let mut storage = storage::create(&disk.path, DISK_SIZE_BYTES, Some(io)).expect("create");
        assert_eq!(storage.io(), io);
        assert_eq!(storage.size_bytes(), DISK_SIZE_BYTES);
        let expected = write_and_check(storage.as_mut(), 7);
        storage.flush().expect("flush");
        drop(storage);

        for reopen_io in FILE_BACKENDS {
            let mut storage =
                storage::open(&disk.path, Some(reopen_io), Access::ReadOnly).expect("reopen");
            assert_eq!(storage.io(), reopen_io);
            let bytes = read_blocks(storage.as_mut(), 0, DISK_BLOCKS);
            assert!(
                bytes == expected,
                "written with {io:?}, read with {reopen_io:?}"
            );
        }
        assert!(
            fs::read(&disk.path).expect("read file") == expected,
            "{io:?}: file bytes"
        );
    }
}

#[test]
fn memory_backend_reads_back() {
    let mut storage = MemoryStorage::new(DISK_SIZE_BYTES);
    assert_eq!(storage.io(), DiskIo::Memory);
    write_and_check(&mut storage, 3);
    storage.flush().expect("flush");
}

/// Every backend, opened ReadWrite on a fresh disk of DISK_SIZE_BYTES.
fn every_backend(name: &str) -> Vec<(TempPath, Box<dyn Storage>)> {
    let mut storages: Vec<(TempPath, Box<dyn Storage>)> = Vec::new();
    for io in FILE_BACKENDS {
        let disk = TempPath::new(&format!("{name}-{}", io.name()));
        let storage = storage::create(&disk.path, DISK_SIZE_BYTES, Some(io)).expect("create");
        storages.push((disk, storage));
    }
    let memory = TempPath::new(&format!("{name}-unused"));
    storages.push((memory, Box::new(MemoryStorage::new(DISK_SIZE_BYTES))));
    storages
}

#[test]
fn unaligned_accesses_are_rejected_and_change_nothing() {
    for (_disk, mut storage) in every_backend("unaligned") {
        let io = storage.io();
        write_blocks(storage.as_mut(), 0, &blocks_pattern(0, 2, 9));
        let accesses = [
            (1, BLOCK_SIZE),
            (512, BLOCK_SIZE),
            (0, 100),
            (0, BLOCK_SIZE + 512),
        ];
        for (offset_bytes, length_bytes) in accesses {
            let mut target = vec![0xee; length_bytes];
            let error = storage
                .read_at(offset_bytes, &mut target)
                .expect_err("unaligned read");
            assert!(
                matches!(
                    error,
                    StorageError::Unaligned {
                        operation: Operation::Read,
                        ..
                    }
                ),
                "{io:?}: {error}"
            );
            assert!(
                target.iter().all(|&byte| byte == 0xee),
                "{io:?}: target untouched"
            );
            let error = storage
                .write_at(offset_bytes, &target)
                .expect_err("unaligned write");
            assert!(
                matches!(
                    error,
                    StorageError::Unaligned {
                        operation: Operation::Write,
                        ..
                    }
                ),
                "{io:?}: {error}"
            );
        }
        assert!(
            read_blocks(storage.as_mut(), 0, 2) == blocks_pattern(0, 2, 9),
            "{io:?}"
        );
    }
}

#[test]
fn out_of_range_accesses_are_rejected() {
    for (_disk, mut storage) in every_backend("range") {
        let io = storage.io();
        let accesses = [
            (DISK_SIZE_BYTES, BLOCK_SIZE),
            (DISK_SIZE_BYTES - BLOCK_SIZE_BYTES, 2 * BLOCK_SIZE),
            (u64::MAX - (BLOCK_SIZE_BYTES - 1), BLOCK_SIZE),
        ];
        for (offset_bytes, length_bytes) in accesses {
            let mut target = vec![0; length_bytes];
            let error = storage
                .read_at(offset_bytes, &mut target)
                .expect_err("read past end");
            assert!(
                matches!(error, StorageError::OutOfRange { .. }),
                "{io:?}: {error}"
            );
            let error = storage
                .write_at(offset_bytes, &target)
                .expect_err("write past end");
            assert!(
                matches!(error, StorageError::OutOfRange { .. }),
                "{io:?}: {error}"
            );
        }
        // The last block is inside, and an empty access at the end is a no-op.
        let last_bytes = DISK_SIZE_BYTES - BLOCK_SIZE_BYTES;
        storage
            .write_at(last_bytes, &[1; BLOCK_SIZE])
            .expect("last block");
        storage
            .read_at(DISK_SIZE_BYTES, &mut [])
            .expect("empty read at end");
    }
}

#[test]
fn read_only_refuses_writes_and_never_changes_the_file() {
    for io in FILE_BACKENDS {
        let disk = TempPath::new(&format!("readonly-{}", io.name()));
        let mut storage = storage::create(&disk.path, DISK_SIZE_BYTES, Some(io)).expect("create");
        write_and_check(storage.as_mut(), 5);
        storage.flush().expect("flush");
        drop(storage);
        let bytes_before = fs::read(&disk.path).expect("read file");
        let metadata_before = fs::metadata(&disk.path).expect("metadata");

        let mut storage = storage::open(&disk.path, Some(io), Access::ReadOnly).expect("open");
        let error = storage
            .write_at(0, &[0; BLOCK_SIZE])
            .expect_err("write on read-only");
        assert!(
            matches!(
                error,
                StorageError::ReadOnly {
                    offset_bytes: 0,
                    ..
                }
            ),
            "{io:?}"
        );
        assert!(error.to_string().contains("read-only"), "{error}");
        assert!(
            read_blocks(storage.as_mut(), 0, DISK_BLOCKS) == bytes_before,
            "{io:?}"
        );
        storage.flush().expect("flush of a read-only storage");
        drop(storage);

        let metadata_after = fs::metadata(&disk.path).expect("metadata");
        assert!(
            fs::read(&disk.path).expect("read file") == bytes_before,
            "{io:?}: bytes"
        );
        assert_eq!(
            metadata_after.mtime(),
            metadata_before.mtime(),
            "{io:?}: mtime"
        );
        assert_eq!(
            metadata_after.mtime_nsec(),
            metadata_before.mtime_nsec(),
            "{io:?}: mtime"
        );
        assert_eq!(
            metadata_after.len(),
            metadata_before.len(),
            "{io:?}: length"
        );
    }
}

#[test]
fn direct_and_mmap_handles_on_one_host_see_each_other() {
    let disk = TempPath::new("coherence");
    let mut direct =
        storage::create(&disk.path, DISK_SIZE_BYTES, Some(DiskIo::Direct)).expect("create direct");
    let mut mapped =
        storage::open(&disk.path, Some(DiskIo::Mmap), Access::ReadWrite).expect("open mmap");

    // O_DIRECT writes invalidate the page cache the mapping reads.
    write_blocks(direct.as_mut(), 2, &blocks_pattern(2, 3, 11));
    direct.flush().expect("flush direct");
    assert!(
        read_blocks(mapped.as_mut(), 2, 3) == blocks_pattern(2, 3, 11),
        "direct -> mmap"
    );

    // O_DIRECT reads first write back dirty cached pages of the range; msync makes it certain.
    write_blocks(mapped.as_mut(), 10, &blocks_pattern(10, 2, 13));
    mapped.flush().expect("flush mmap");
    assert!(
        read_blocks(direct.as_mut(), 10, 2) == blocks_pattern(10, 2, 13),
        "mmap -> direct"
    );

    // And again over the same blocks, so neither side reads a stale copy of its own.
    write_blocks(direct.as_mut(), 10, &blocks_pattern(10, 2, 17));
    direct.flush().expect("flush direct");
    assert!(
        read_blocks(mapped.as_mut(), 10, 2) == blocks_pattern(10, 2, 17),
        "rewrite"
    );
}

#[test]
fn a_regular_file_defaults_to_mmap() {
    let disk = TempPath::new("default");
    let storage = storage::create(&disk.path, DISK_SIZE_BYTES, None).expect("create");
    assert_eq!(storage.io(), DiskIo::Mmap);
    drop(storage);
    let storage = storage::open(&disk.path, None, Access::ReadOnly).expect("open");
    assert_eq!(storage.io(), DiskIo::Mmap);
}

#[test]
fn create_grows_a_smaller_file_keeps_its_bytes_and_never_shrinks() {
    let disk = TempPath::new("grow");
    let first_block = block_pattern(0, 21);
    fs::write(&disk.path, &first_block).expect("write a one-block file");

    let mut storage = storage::create(&disk.path, 4 * BLOCK_SIZE_BYTES, None).expect("grow");
    assert_eq!(storage.size_bytes(), 4 * BLOCK_SIZE_BYTES);
    assert!(
        read_blocks(storage.as_mut(), 0, 1) == first_block,
        "kept the first block"
    );
    assert!(
        read_blocks(storage.as_mut(), 1, 3)
            .iter()
            .all(|&byte| byte == 0),
        "zero tail"
    );
    drop(storage);

    let storage = storage::create(&disk.path, 2 * BLOCK_SIZE_BYTES, None).expect("reuse");
    assert_eq!(storage.size_bytes(), 4 * BLOCK_SIZE_BYTES);
}

#[test]
fn open_rejects_missing_files_and_sizes_that_are_not_whole_blocks() {
    let disk = TempPath::new("bad-size");
    let error = storage::open(&disk.path, None, Access::ReadOnly).expect_err("missing file");
    assert!(
        matches!(
            error,
            StorageError::Open {
                operation: "open",
                ..
            }
        ),
        "{error}"
    );
    let message = error.to_string();
    let expected = format!(
        "cannot open {}: No such file or directory",
        disk.path.display()
    );
    assert_eq!(message, expected);

    fs::write(&disk.path, vec![0; BLOCK_SIZE + 100]).expect("write a ragged file");
    for io in FILE_BACKENDS {
        let error = storage::open(&disk.path, Some(io), Access::ReadOnly).expect_err("ragged");
        assert!(
            matches!(error, StorageError::SizeNotBlockMultiple { .. }),
            "{io:?}: {error}"
        );
    }
    fs::write(&disk.path, []).expect("write an empty file");
    for io in FILE_BACKENDS {
        let error = storage::open(&disk.path, Some(io), Access::ReadOnly).expect_err("empty");
        assert!(
            matches!(error, StorageError::TooSmall { .. }),
            "{io:?}: {error}"
        );
    }
}

/// Whether this test may attach loop devices; prints SKIPPED or panics (CI=true) if not.
fn may_attach_loop_devices(test_name: &str) -> bool {
    // /proc/self belongs to the effective user of this process.
    let is_root = fs::metadata("/proc/self").is_ok_and(|metadata| metadata.uid() == 0);
    if is_root {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test_name} needs root to attach a loop device, and CI=true forbids skipping it");
    }
    eprintln!("SKIPPED: {test_name} needs root (it attaches a loop device with losetup)");
    false
}

/// A loop device attached to a file, detached on drop.
struct LoopDevice {
    path: PathBuf,
}

impl LoopDevice {
    fn attach(backing_path: &Path) -> LoopDevice {
        let output = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(backing_path)
            .output()
            .expect("run losetup");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "losetup --find --show failed: {stderr}"
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        LoopDevice {
            path: PathBuf::from(stdout.trim()),
        }
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let status = Command::new("losetup")
            .arg("--detach")
            .arg(&self.path)
            .status();
        if !status.is_ok_and(|status| status.success()) {
            eprintln!(
                "could not detach {}: detach it by hand",
                self.path.display()
            );
        }
    }
}

/// The loop devices attached to `backing_path`, one line each (empty when none).
fn loop_devices_of(backing_path: &Path) -> String {
    let output = Command::new("losetup")
        .arg("--associated")
        .arg(backing_path)
        .output()
        .expect("run losetup");
    assert!(output.status.success(), "losetup --associated failed");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_loop_device_defaults_to_direct_and_works() {
    if !may_attach_loop_devices("a_loop_device_defaults_to_direct_and_works") {
        return;
    }
    let backing = TempPath::new("loop");
    let file = fs::File::create(&backing.path).expect("create backing file");
    file.set_len(DISK_SIZE_BYTES).expect("size backing file");
    drop(file);

    let device = LoopDevice::attach(&backing.path);
    let expected = {
        let mut storage = storage::open(&device.path, None, Access::ReadWrite).expect("open");
        assert_eq!(storage.io(), DiskIo::Direct, "{}", device.path.display());
        assert_eq!(storage.size_bytes(), DISK_SIZE_BYTES);
        let expected = write_and_check(storage.as_mut(), 23);
        storage.flush().expect("flush");

        // Asked explicitly, mmap works on a device (with a warning); same host, so coherent.
        let mut mapped =
            storage::open(&device.path, Some(DiskIo::Mmap), Access::ReadOnly).expect("open mmap");
        assert_eq!(mapped.io(), DiskIo::Mmap);
        assert!(
            read_blocks(mapped.as_mut(), 0, DISK_BLOCKS) == expected,
            "mmap of device"
        );

        // create() uses a device as is, and refuses one too small.
        let reused = storage::create(&device.path, BLOCK_SIZE_BYTES, None).expect("create");
        assert_eq!(reused.size_bytes(), DISK_SIZE_BYTES);
        let error = storage::create(&device.path, 2 * DISK_SIZE_BYTES, None).expect_err("small");
        assert!(matches!(error, StorageError::TooSmall { .. }), "{error}");
        expected
    };
    drop(device);

    assert_eq!(
        loop_devices_of(&backing.path),
        "",
        "loop device left attached"
    );

    // A failing test must not leave its device attached either: the guard detaches on unwind.
    let unwound = std::panic::catch_unwind(|| {
        let _device = LoopDevice::attach(&backing.path);
        panic!("deliberate failure while a loop device is attached (expected in this test)");
    });
    assert!(unwound.is_err());
    let attached = loop_devices_of(&backing.path);
    assert_eq!(attached, "", "loop device left attached after a panic");
    assert!(
        fs::read(&backing.path).expect("read backing") == expected,
        "backing file bytes"
    );
}
