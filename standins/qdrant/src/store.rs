//! Collections held by the stand-in: real Qdrant shards (qdrant-edge) loaded from snapshot files
//! or created over the API, plus helpers to pack them back into snapshot tars.

use q2z::source::snapshot::{SnapshotCollection, edge_config_to_qdrant, open_snapshot};
use qdrant_edge::{EdgeConfig, EdgeShard, EdgeSparseVectorParams, EdgeVectorParams};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One served collection.
pub struct Served {
    pub coll: SnapshotCollection,
    /// The snapshot file it was loaded from (served again as its collection snapshot).
    pub origin: Option<PathBuf>,
}

/// Loads a snapshot file as a served collection.
pub fn load_file(file: &Path, scratch: &Path) -> Result<(String, Served), String> {
    let coll = open_snapshot(file, None, scratch).map_err(|e| e.to_string())?;
    Ok((
        coll.name.clone(),
        Served {
            coll,
            origin: Some(file.to_path_buf()),
        },
    ))
}

/// Builds an `EdgeConfig` from a Qdrant `PUT /collections/{name}` body.
pub fn edge_config_from_create(body: &Value) -> Result<EdgeConfig, String> {
    let mut cfg = EdgeConfig::default();
    let vec_params = |v: &Value| -> Result<EdgeVectorParams, String> {
        let mut p: EdgeVectorParams = serde_json::from_value(json!({
            "size": v.get("size").cloned().unwrap_or(Value::Null),
            "distance": v.get("distance").cloned().unwrap_or(Value::Null),
        }))
        .map_err(|e| format!("bad vector params: {e}"))?;
        if let Some(dt) = v.get("datatype") {
            p.datatype =
                Some(serde_json::from_value(dt.clone()).map_err(|e| format!("bad datatype: {e}"))?);
        }
        if let Some(mv) = v.get("multivector_config") {
            p.multivector_config = Some(
                serde_json::from_value(mv.clone())
                    .map_err(|e| format!("bad multivector_config: {e}"))?,
            );
        }
        Ok(p)
    };
    match body.get("vectors") {
        Some(v) if v.get("size").is_some() => {
            cfg.vectors.insert(String::new(), vec_params(v)?);
        }
        Some(Value::Object(m)) => {
            for (k, v) in m {
                cfg.vectors.insert(k.clone(), vec_params(v)?);
            }
        }
        _ => {}
    }
    if let Some(Value::Object(m)) = body.get("sparse_vectors") {
        for (k, v) in m {
            let mut p = EdgeSparseVectorParams::default();
            if let Some(md) = v.get("modifier") {
                p.modifier = Some(
                    serde_json::from_value(md.clone()).map_err(|e| format!("bad modifier: {e}"))?,
                );
            }
            cfg.sparse_vectors.insert(k.clone(), p);
        }
    }
    if let Some(h) = body.get("hnsw_config") {
        let mut base = serde_json::to_value(cfg.hnsw_config()).unwrap_or(json!({}));
        if let (Some(b), Some(o)) = (base.as_object_mut(), h.as_object()) {
            for (k, v) in o {
                b.insert(k.clone(), v.clone());
            }
        }
        cfg.hnsw_config = serde_json::from_value(base).ok();
    }
    Ok(cfg)
}

/// Creates an empty collection in `dir`.
pub fn create(name: &str, body: &Value, dir: &Path) -> Result<Served, String> {
    let cfg = edge_config_from_create(body)?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let work = tempfile::Builder::new()
        .prefix("coll-")
        .tempdir_in(dir)
        .map_err(|e| e.to_string())?;
    let shard =
        EdgeShard::new(&work.path().join("shard-0"), cfg.clone()).map_err(|e| e.to_string())?;
    let mut config_json = edge_config_to_qdrant(&cfg);
    if let Some(vs) = config_json.pointer_mut("/params/vectors") {
        // Keep the shape the user sent (unnamed vs named) as Qdrant does.
        if body.get("vectors").is_some_and(|v| v.get("size").is_some()) && vs.get("size").is_none()
        {
            *vs = vs.get("").cloned().unwrap_or(Value::Null);
        }
    }
    let coll = SnapshotCollection::from_shards(name, config_json, vec![shard], work)
        .map_err(|e| e.to_string())?;
    Ok(Served { coll, origin: None })
}

/// Appends a directory tree into a tar under `prefix`.
fn append_dir<W: std::io::Write>(
    b: &mut tar::Builder<W>,
    dir: &Path,
    prefix: &Path,
) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let p = e.path();
        let name = prefix.join(e.file_name());
        if e.file_type()?.is_dir() {
            append_dir(b, &p, &name)?;
        } else if e.file_type()?.is_file() {
            append_file_sparse(b, &p, &name)?;
        }
    }
    Ok(())
}

/// Appends a file; a large file that is mostly trailing zeros (Qdrant's preallocated mmap
/// chunks) becomes a GNU sparse entry, as in the snapshots Qdrant writes.
fn append_file_sparse<W: std::io::Write>(
    b: &mut tar::Builder<W>,
    path: &Path,
    name: &Path,
) -> std::io::Result<()> {
    let data = std::fs::read(path)?;
    let len = data.len() as u64;
    let end = data
        .iter()
        .rposition(|x| *x != 0)
        .map(|i| ((i as u64 + 1).div_ceil(512)) * 512)
        .unwrap_or(0)
        .min(len);
    if len < (1 << 20) || end > len / 2 {
        let mut h = tar::Header::new_gnu();
        h.set_size(len);
        h.set_mode(0o644);
        return b.append_data(&mut h, name, &data[..]);
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_mode(0o644);
    h.set_size(end);
    let g = h.as_gnu_mut().expect("gnu header");
    g.set_real_size(len);
    if end > 0 {
        g.sparse[0].set_offset(0);
        g.sparse[0].set_length(end);
        g.sparse[1].set_offset(len);
        g.sparse[1].set_length(0);
    } else {
        g.sparse[0].set_offset(len);
        g.sparse[0].set_length(0);
    }
    b.append_data(&mut h, name, &data[..end as usize])
}

/// Writes a shard snapshot tar (segments as directories, like Qdrant's streamed shard snapshot).
pub fn write_shard_snapshot(shard: &EdgeShard, out: &Path) -> std::io::Result<()> {
    shard
        .flush()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let f = std::fs::File::create(out)?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(f));
    for sub in ["segments", "wal"] {
        let d = shard.path().join(sub);
        if d.is_dir() {
            append_dir(&mut b, &d, Path::new(sub))?;
        }
    }
    b.into_inner()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()
}

/// Writes a collection snapshot tar: `config.json`, `version.info`, one directory per shard.
pub fn write_collection_snapshot(s: &Served, out: &Path) -> std::io::Result<()> {
    if let Some(origin) = &s.origin {
        std::fs::copy(origin, out)?;
        return Ok(());
    }
    let f = std::fs::File::create(out)?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(f));
    let mut cfg = s.coll.config_json.clone();
    cfg["uuid"] = Value::Null;
    let text = serde_json::to_vec(&cfg)?;
    let mut h = tar::Header::new_gnu();
    h.set_size(text.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "config.json", &text[..])?;
    // Custom sharding: `shard_key_mapping.json` as Qdrant ≥ 1.13 writes it.
    if s.coll.shard_keys.iter().any(Option::is_some) {
        let pairs: Vec<Value> = s
            .coll
            .shard_keys
            .iter()
            .enumerate()
            .filter_map(|(i, k)| {
                k.as_ref()
                    .map(|k| serde_json::json!({"key": k, "shard_ids": [i]}))
            })
            .collect();
        let text = serde_json::to_vec(&pairs)?;
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "shard_key_mapping.json", &text[..])?;
    }
    for (i, shard) in s.coll.shards.iter().enumerate() {
        append_segments(&mut b, i, shard)?;
    }
    finish(b)
}

/// Appends shard `i`'s segments as `<i>/segments/...` (flushed first).
fn append_segments<W: std::io::Write>(
    b: &mut tar::Builder<W>,
    i: usize,
    shard: &EdgeShard,
) -> std::io::Result<()> {
    shard
        .flush()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let d = shard.path().join("segments");
    append_dir(b, &d, &Path::new(&i.to_string()).join("segments"))
}

/// Finishes a snapshot tar and syncs it to disk.
fn finish(b: tar::Builder<std::io::BufWriter<std::fs::File>>) -> std::io::Result<()> {
    b.into_inner()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()
}

/// Writes the collection snapshot of one node of a cluster, as Qdrant does: every shard
/// directory with `replica_state.json` and `shard_config.json`, segments only for the shards
/// this node holds. `holders[i]` are the peers holding shard `i`.
pub fn write_node_snapshot(
    coll: &SnapshotCollection,
    peer: u64,
    holders: &[Vec<u64>],
    out: &Path,
) -> std::io::Result<()> {
    let f = std::fs::File::create(out)?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(f));
    let append = |b: &mut tar::Builder<_>, name: &str, bytes: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, bytes)
    };
    let mut cfg = coll.config_json.clone();
    cfg["uuid"] = Value::Null;
    append(&mut b, "config.json", &serde_json::to_vec(&cfg)?)?;
    for (i, shard) in coll.shards.iter().enumerate() {
        let local = holders[i].contains(&peer);
        let peers: serde_json::Map<String, Value> = holders[i]
            .iter()
            .map(|p| (p.to_string(), Value::from("Active")))
            .collect();
        let state = serde_json::json!({"is_local": local, "this_peer_id": peer, "peers": peers});
        append(
            &mut b,
            &format!("{i}/replica_state.json"),
            &serde_json::to_vec(&state)?,
        )?;
        append(
            &mut b,
            &format!("{i}/shard_config.json"),
            br#"{"type":"ReplicaSet"}"#,
        )?;
        if local {
            append_segments(&mut b, i, shard)?;
        }
    }
    finish(b)
}

/// All served collections by name.
pub type Collections = HashMap<String, Served>;
