//! An optimized segment's id mappings moved out of RAM (issue 26: flat memory on Qdrant 1.19's
//! own snapshots).
//!
//! Qdrant 1.19 writes an optimized (non-appendable) segment's external ↔ internal id mappings as
//! one sequential file, `id_tracker.mappings`, which qdrant-edge's `ImmutableIdTracker::open`
//! decodes whole into RAM at load: ~38 bytes a point, for every segment of every open shard. The
//! same crate also reads a disk-resident form (`DiskIdTracker`: `id_tracker.i2e`,
//! `id_tracker.e2i`, `id_tracker.is_uuid`, read lazily through the page cache), chosen by
//! `IdTrackerFormat::detect_local` whenever `id_tracker.i2e` is present in a non-appendable
//! segment — but it offers no public way to convert. [`move_to_disk`] writes that form on q2z's
//! scratch copy, one segment at a time, before the shard is loaded; the segment's
//! `id_tracker.versions` and `id_tracker.deleted` are read by both trackers as they are.
//! (`Q2Z_ID_MAPPINGS_IN_RAM=1` skips it: benchmarks compare the two, docs/benchmarks.md.)
//!
//! Formats reproduced (qdrant-edge 0.9.0, `src/segment/id_tracker/`):
//! - read: `immutable_id_tracker/mappings_storage.rs` `load_mapping` / `read_entry`;
//! - written: `disk_id_tracker/on_disk_format.rs` `store_i2e`, `store_e2i`, `store_is_uuid`, and
//!   `common/stored_bitmask/write.rs` `dense_file_bytes` (the dense encoding, which
//!   `StoredBitmask::read` accepts whatever its size).

use super::snap_err;
use crate::error::{Error, Result};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

const MAPPINGS: &str = "id_tracker.mappings";
const DELETED: &str = "id_tracker.deleted";
const I2E: &str = "id_tracker.i2e";
const E2I: &str = "id_tracker.e2i";
const IS_UUID: &str = "id_tracker.is_uuid";

/// `on_disk_format.rs`: `ON_DISK_FORMAT_VERSION`, `I2E_MAGIC`, `E2I_MAGIC`, the layout.
const FORMAT_VERSION: u32 = 2;
const I2E_MAGIC: u64 = 0x5144_5F49_3245_0001;
const E2I_MAGIC: u64 = 0x5144_5F45_3249_0001;
const E2I_HEADER_SIZE: u64 = 48;
const SECTION_ALIGN: u64 = 16;
/// Entries per e2i block. The header carries the block sizes and the reader follows them
/// (`E2iHeader::parse`); every lookup by id decodes one whole block into a vector, so q2z's
/// scroll — which looks each point up by id in every segment — pays per point for a block's
/// size. Qdrant's writer picks ~16 KiB blocks (1,365 numeric entries) for ranged reads from
/// object storage; on a local scratch copy 64 entries (768 bytes) cost a sparse index of
/// 0.125 bytes a point in RAM.
const NUM_BLOCK_ENTRIES: usize = 64;
const UUID_BLOCK_ENTRIES: usize = 64;
const NUM_ENTRY_SIZE: u64 = 12;
/// `stored_bitmask/format.rs`: `MAGIC`, `VERSION`, `Encoding::Dense`.
const BITMASK_MAGIC: &[u8; 4] = b"QBMK";
const BITMASK_VERSION: u32 = 1;
const BITMASK_DENSE: u32 = 0;

/// Rewrites the id mappings of the optimized segment in `segment` into the disk-resident form;
/// false (nothing written) when the segment has no `id_tracker.mappings`, is converted already,
/// or holds mappings out of internal-id order (then qdrant-edge reads it as before).
pub fn move_to_disk(segment: &Path) -> Result<bool> {
    let mappings = segment.join(MAPPINGS);
    if !mappings.is_file() || segment.join(I2E).exists() {
        return Ok(false);
    }
    let Some(read) = read_mappings(&mappings, &deleted_bits(segment)?)? else {
        tracing::debug!(segment = %segment.display(), "id mappings out of order: left in RAM");
        return Ok(false);
    };
    write_file(&segment.join(IS_UUID), |w| write_is_uuid(w, &read))?;
    write_file(&segment.join(E2I), |w| write_e2i(w, read.num, read.uuid))?;
    // Last: its presence is what makes qdrant-edge read the disk form.
    let i2e = segment.join(I2E);
    std::fs::rename(&read.i2e, &i2e).map_err(|e| Error::io(&i2e, e))?;
    Ok(true)
}

/// Converts every optimized segment of an unpacked shard; how many were converted.
pub fn move_shard_to_disk(shard_dir: &Path) -> Result<usize> {
    let Ok(entries) = std::fs::read_dir(shard_dir.join("segments")) else {
        return Ok(0);
    };
    let mut n = 0;
    for e in entries.flatten() {
        n += usize::from(move_to_disk(&e.path())?);
    }
    Ok(n)
}

/// What the mappings file holds, sorted for `e2i`; `i2e` already written under a temporary name.
struct Mappings {
    total: u64,
    /// One bit per internal id, set for a UUID (the `is_uuid` file's dense payload).
    uuid_bits: Vec<u8>,
    num: Vec<(u64, u32)>,
    uuid: Vec<(u128, u32)>,
    i2e: std::path::PathBuf,
}

/// The `id_tracker.deleted` bits (`StoredBitSlice`: `u64` words, least significant bit first);
/// empty when the file is missing.
fn deleted_bits(segment: &Path) -> Result<Vec<u8>> {
    let p = segment.join(DELETED);
    match std::fs::read(&p) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(&p, e)),
    }
}

fn is_set(bits: &[u8], i: usize) -> bool {
    bits.get(i / 8).is_some_and(|b| (b >> (i % 8)) & 1 == 1)
}

/// Reads `id_tracker.mappings` (`load_mapping`: a `u64` count, then per point a type byte, a
/// `u64` number or a `u128` UUID, both little-endian, and the `u32` internal id), writing `i2e`
/// (`store_i2e`: a 32-byte header, then one `u128` per internal id) as it goes; `None` if
/// internal ids are not `0, 1, 2, …`.
fn read_mappings(path: &Path, deleted: &[u8]) -> Result<Option<Mappings>> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    // `at`: the mapping being read (1-based), 0 for the count before them.
    let mut take = |buf: &mut [u8], at: u64| {
        r.read_exact(buf).map_err(|e| {
            snap_err(
                path,
                format!("mapping {at}: {e}; the snapshot may be damaged"),
            )
        })
    };
    let mut u64b = [0u8; 8];
    take(&mut u64b, 0)?;
    let len = u64::from_le_bytes(u64b);
    let aside = path.with_file_name(format!("{I2E}.part"));
    let mut values = BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(&aside).map_err(|e| Error::io(&aside, e))?,
    );
    let mut h = Vec::with_capacity(32);
    h.extend_from_slice(&I2E_MAGIC.to_le_bytes());
    h.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&len.to_le_bytes());
    h.extend_from_slice(&0u64.to_le_bytes());
    values.write_all(&h).map_err(|e| Error::io(&aside, e))?;
    let (mut num, mut uuid) = (Vec::new(), Vec::new());
    let mut uuid_bits = vec![0u8; (len.div_ceil(64) * 8) as usize];
    for i in 0..len {
        let mut kind = [0u8; 1];
        take(&mut kind, i + 1)?;
        let (value, is_uuid) = match kind[0] {
            0 => {
                take(&mut u64b, i + 1)?;
                (u128::from(u64::from_le_bytes(u64b)), false)
            }
            1 => {
                // Stored as `Uuid::to_u128_le`: the UUID's 16 bytes in order; the disk form
                // keeps `Uuid::as_u128`, their big-endian reading.
                let mut b = [0u8; 16];
                take(&mut b, i + 1)?;
                (u128::from_be_bytes(b), true)
            }
            k => {
                return Err(snap_err(
                    path,
                    format!(
                        "mapping {} of {len} has id type {k}; the snapshot may be damaged",
                        i + 1
                    ),
                ));
            }
        };
        let mut u32b = [0u8; 4];
        take(&mut u32b, i + 1)?;
        let internal = u32::from_le_bytes(u32b);
        if u64::from(internal) != i {
            drop(values);
            let _ = std::fs::remove_file(&aside);
            return Ok(None);
        }
        values
            .write_all(&value.to_le_bytes())
            .map_err(|e| Error::io(&aside, e))?;
        if is_uuid {
            uuid_bits[i as usize / 8] |= 1 << (i % 8);
        }
        if !is_set(deleted, i as usize) {
            if is_uuid {
                uuid.push((value, internal));
            } else {
                num.push((value as u64, internal));
            }
        }
    }
    values.flush().map_err(|e| Error::io(&aside, e))?;
    num.sort_unstable();
    uuid.sort_unstable();
    Ok(Some(Mappings {
        total: len,
        uuid_bits,
        num,
        uuid,
        i2e: aside,
    }))
}

/// `store_is_uuid` through `dense_file_bytes`: a 32-byte header, then one bit per internal id.
fn write_is_uuid(w: &mut dyn Write, read: &Mappings) -> std::io::Result<()> {
    w.write_all(BITMASK_MAGIC)?;
    w.write_all(&BITMASK_VERSION.to_le_bytes())?;
    w.write_all(&read.total.to_le_bytes())?;
    w.write_all(&BITMASK_DENSE.to_le_bytes())?;
    w.write_all(&0u32.to_le_bytes())?;
    w.write_all(&(read.uuid_bits.len() as u64).to_le_bytes())?;
    w.write_all(&read.uuid_bits)
}

/// `store_e2i`: header, the sparse index (first key of every block) of the numeric and of the
/// UUID run, then both runs, each section starting on a 16-byte boundary.
fn write_e2i(
    w: &mut dyn Write,
    num: Vec<(u64, u32)>,
    uuid: Vec<(u128, u32)>,
) -> std::io::Result<()> {
    let pad = |w: &mut dyn Write, end: u64| {
        w.write_all(&vec![
            0u8;
            (end.next_multiple_of(SECTION_ALIGN) - end) as usize
        ])
    };
    w.write_all(&E2I_MAGIC.to_le_bytes())?;
    w.write_all(&FORMAT_VERSION.to_le_bytes())?;
    w.write_all(&0u32.to_le_bytes())?;
    w.write_all(&(num.len() as u64).to_le_bytes())?;
    w.write_all(&(uuid.len() as u64).to_le_bytes())?;
    w.write_all(&(NUM_BLOCK_ENTRIES as u32).to_le_bytes())?;
    w.write_all(&(UUID_BLOCK_ENTRIES as u32).to_le_bytes())?;
    w.write_all(&0u64.to_le_bytes())?;
    for c in num.chunks(NUM_BLOCK_ENTRIES) {
        w.write_all(&c[0].0.to_le_bytes())?;
    }
    let num_sparse_end = E2I_HEADER_SIZE + num.len().div_ceil(NUM_BLOCK_ENTRIES) as u64 * 8;
    pad(w, num_sparse_end)?;
    for c in uuid.chunks(UUID_BLOCK_ENTRIES) {
        w.write_all(&c[0].0.to_le_bytes())?;
    }
    for (k, o) in &num {
        w.write_all(&k.to_le_bytes())?;
        w.write_all(&o.to_le_bytes())?;
    }
    let num_run_end = num_sparse_end.next_multiple_of(SECTION_ALIGN)
        + uuid.len().div_ceil(UUID_BLOCK_ENTRIES) as u64 * 16
        + num.len() as u64 * NUM_ENTRY_SIZE;
    pad(w, num_run_end)?;
    for (k, o) in &uuid {
        w.write_all(&k.to_le_bytes())?;
        w.write_all(&o.to_le_bytes())?;
    }
    Ok(())
}

fn write_file(path: &Path, fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    fill(&mut w).map_err(|e| Error::io(path, e))?;
    w.flush().map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use qdrant_edge::{
        EdgeConfigBuilder, EdgeOptimizersConfig, EdgeShard, EdgeVectorParams,
        PointInsertOperations, PointOperations, PointStructPersisted, RetrieveRequestBuilder,
        ScrollRequestBuilder, UpdateOperation, WithPayloadInterface, WithVector,
    };
    use serde_json::{Value, json};

    fn id(i: u64) -> Value {
        if i.is_multiple_of(3) {
            json!(format!(
                "{:08x}-0000-4000-8000-{:012x}",
                i * 2_654_435_761 % 0xffff_ffff,
                i
            ))
        } else {
            json!(i * 1_000_003)
        }
    }

    fn upsert(s: &EdgeShard, ids: impl Iterator<Item = u64>, v: u64) {
        let pts: Vec<PointStructPersisted> = ids
            .map(|i| {
                serde_json::from_value(json!({"id": id(i), "vector": vec![i as f32; 16],
                    "payload": {"i": i, "v": v}}))
                .unwrap()
            })
            .collect();
        s.update(UpdateOperation::PointOperation(
            PointOperations::UpsertPoints(PointInsertOperations::PointsList(pts)),
        ))
        .unwrap();
    }

    /// Every point as qdrant-edge scrolls it: (id, payload), in scroll order.
    fn scroll_all(s: &EdgeShard) -> Vec<(String, Value)> {
        let (records, _) = s
            .scroll(
                ScrollRequestBuilder::new()
                    .limit(10_000)
                    .with_payload(WithPayloadInterface::Bool(true))
                    .with_vector(WithVector::Bool(false))
                    .build(),
            )
            .unwrap();
        records
            .into_iter()
            .map(|r| (format!("{:?}", r.id), json!(r.payload)))
            .collect()
    }

    /// A shard of optimized segments (numeric and UUID ids, then updates and deletes on top),
    /// loaded by qdrant-edge from its in-RAM mappings and from the converted files, answers
    /// scrolls and lookups by id alike.
    #[test]
    fn converted_segments_read_as_the_originals() {
        let dir = tempfile::tempdir().unwrap();
        let (orig, conv) = (dir.path().join("orig"), dir.path().join("conv"));
        let params: EdgeVectorParams =
            serde_json::from_value(json!({"size": 16, "distance": "Dot"})).unwrap();
        {
            let s =
                EdgeShard::new(&orig, EdgeConfigBuilder::new().vector("", params).build()).unwrap();
            s.set_optimizers_config(EdgeOptimizersConfig {
                indexing_threshold: Some(10),
                max_segment_size: Some(30),
                default_segment_number: Some(2),
                ..Default::default()
            })
            .unwrap();
            for start in (1..=3000u64).step_by(1000) {
                upsert(&s, start..start + 1000, 1);
                s.optimize().unwrap();
                s.flush().unwrap();
            }
            upsert(&s, (1..=3000).filter(|i| i % 7 == 0), 2);
            let gone = (1..=3000u64)
                .filter(|i| i % 11 == 0)
                .map(|i| serde_json::from_value(id(i)).unwrap())
                .collect();
            s.update(UpdateOperation::PointOperation(
                PointOperations::DeletePoints { ids: gone },
            ))
            .unwrap();
            s.flush().unwrap();
        }
        let copy = std::process::Command::new("cp")
            .args(["-a", orig.to_str().unwrap(), conv.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(copy.success());
        let converted = move_shard_to_disk(&conv).unwrap();
        assert!(converted >= 2, "{converted} segments converted");
        // Converted once: a second pass leaves them.
        assert_eq!(move_shard_to_disk(&conv).unwrap(), 0);
        let segs = std::fs::read_dir(conv.join("segments")).unwrap();
        let with_disk = segs
            .flatten()
            .filter(|e| e.path().join(I2E).is_file() && e.path().join(E2I).is_file())
            .count();
        assert_eq!(with_disk, converted);
        // What qdrant-edge reads is the disk form: the in-RAM form's file is not needed.
        for e in std::fs::read_dir(conv.join("segments")).unwrap().flatten() {
            let _ = std::fs::remove_file(e.path().join(MAPPINGS));
        }

        let (a, b) = (
            EdgeShard::load(&orig, None).unwrap(),
            EdgeShard::load(&conv, None).unwrap(),
        );
        let (ra, rb) = (scroll_all(&a), scroll_all(&b));
        let live = (1..=3000u64).filter(|i| i % 11 != 0).count();
        assert_eq!(ra.len(), live);
        assert_eq!(ra, rb);
        for (_, p) in &rb {
            let i = p["i"].as_u64().unwrap();
            assert_eq!(p["v"], json!(if i % 7 == 0 { 2 } else { 1 }), "{p}");
        }
        // Lookups by id go through e2i: numeric and UUID, live, updated and deleted.
        for i in [1u64, 2, 3, 21, 22, 33, 77, 999, 2999, 3000] {
            let got = b
                .retrieve(
                    RetrieveRequestBuilder::new(vec![serde_json::from_value(id(i)).unwrap()])
                        .with_payload(WithPayloadInterface::Bool(true))
                        .build(),
                )
                .unwrap();
            if i % 11 == 0 {
                assert!(got.is_empty(), "deleted point {i}: {got:?}");
            } else {
                assert_eq!(got.len(), 1, "point {i}");
                assert_eq!(json!(got[0].payload)["i"], json!(i));
            }
        }
    }

    /// Mappings out of internal-id order are left for qdrant-edge's own reader.
    #[test]
    fn mappings_out_of_order_are_left_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = 2u64.to_le_bytes().to_vec();
        for (ext, internal) in [(10u64, 1u32), (11, 0)] {
            f.push(0);
            f.extend_from_slice(&ext.to_le_bytes());
            f.extend_from_slice(&internal.to_le_bytes());
        }
        std::fs::write(dir.path().join(MAPPINGS), f).unwrap();
        assert!(!move_to_disk(dir.path()).unwrap());
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }

    /// A damaged mappings file is an error naming the file.
    #[test]
    fn an_unknown_id_type_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = 1u64.to_le_bytes().to_vec();
        f.push(7);
        f.extend_from_slice(&[0; 12]);
        std::fs::write(dir.path().join(MAPPINGS), f).unwrap();
        let e = move_to_disk(dir.path()).unwrap_err().to_string();
        assert!(e.contains("id type 7") && e.contains(MAPPINGS), "{e}");
    }
}
