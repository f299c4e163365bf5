//! Opening the collections a run reads: snapshot files (offline), a live server, or a live
//! server's snapshots downloaded first (`--via-snapshot`). Scratch space is only ever used
//! through directories q2z creates inside it, and only those are removed.

use crate::error::{Error, Result};
use crate::http::retry::RetryPolicy;
use crate::source::cluster::ShardOptions;
use crate::source::rest::QdrantRest;
use crate::source::snapshot::{SnapshotInput, open_snapshot, open_snapshots, parse_file_name};
use crate::source::{LiveCollection, SharedSource};
use crate::stage::layout::is_safe_dir_name;
use crate::stage::manifest::{SnapshotFile, SourceInfo};
use crate::stage::writer::sha256_file;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where to read from.
#[derive(Debug, Clone, Default)]
pub struct SourceSpec {
    /// A live server's REST URL.
    pub qdrant_url: Option<String>,
    /// Its API key (never printed).
    pub api_key: Option<String>,
    /// Snapshot files (offline).
    pub snapshots: Vec<PathBuf>,
    /// With `qdrant_url`: snapshot each collection on the server and read the download.
    pub via_snapshot: bool,
    /// Keep the server-side snapshots afterwards.
    pub keep_snapshot: bool,
    /// Collection name for the snapshot files (all of them one collection).
    pub snapshot_name: Option<String>,
    /// Export what is there when some shards are in no file.
    pub allow_missing_shards: bool,
    /// Read each shard from the first file holding it, without comparing replicas.
    pub first_replica: bool,
    /// Collections to take (empty: all).
    pub collections: Vec<String>,
    /// `--part I/N` of an export: snapshot files are opened with only this part's shards
    /// where a collection has at least N of them.
    pub part: Option<crate::stage::manifest::Part>,
    /// Directory under which snapshots are unpacked and downloaded.
    pub scratch: PathBuf,
    /// How a live server's pages are read.
    pub transport: Transport,
    /// Its gRPC URL (default: the REST host on port 6334 when REST is on 6333).
    pub grpc_url: Option<String>,
}

/// How pages of a live server are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Transport {
    Rest,
    Grpc,
    /// Where gRPC answers, the faster of the two for each collection, measured on its first
    /// pages (see [`super::transport_choice`]); else REST.
    #[default]
    Auto,
}

/// The gRPC connection for a live export, if the transport asks for one.
fn grpc_for(
    spec: &SourceSpec,
    rest_url: &str,
) -> Result<Option<Arc<crate::source::grpc::QdrantGrpc>>> {
    use crate::source::grpc::{QdrantGrpc, default_grpc_url};
    if spec.transport == Transport::Rest {
        return Ok(None);
    }
    let Some(url) = spec.grpc_url.clone().or_else(|| default_grpc_url(rest_url)) else {
        return match spec.transport {
            Transport::Grpc => Err(Error::Other(format!(
                "--transport grpc: give Qdrant's gRPC URL with --grpc-url (it cannot be guessed from {rest_url}, which is not on port 6333)"
            ))),
            _ => Ok(None),
        };
    };
    let g = QdrantGrpc::new(&url, spec.api_key.clone())?;
    if g.answers() {
        tracing::info!(grpc = %url, "reading pages over gRPC");
        return Ok(Some(Arc::new(g)));
    }
    match spec.transport {
        Transport::Grpc => Err(Error::Other(format!(
            "--transport grpc: Qdrant's gRPC API does not answer at {url}; check --grpc-url and the port (6334 by default), or use --transport rest"
        ))),
        _ => {
            tracing::warn!(grpc = %url, "no gRPC answer: reading pages over REST (--transport rest says so without trying)");
            Ok(None)
        }
    }
}

/// Whether the gRPC endpoint serves the same collection as REST (the same exact count, asked
/// a few times while writes go on): a stale `--grpc-url` / `QDRANT_GRPC_URL` would otherwise
/// make reads, and so sync's deletes, follow another server.
fn same_collection(
    rest: &crate::source::rest::QdrantRest,
    g: &crate::source::grpc::QdrantGrpc,
    name: &str,
) -> std::result::Result<(), String> {
    let mut last = String::new();
    let same = crate::wait::until(
        std::time::Duration::from_millis(300),
        std::time::Duration::from_millis(900),
        || {
            let over_grpc = match g.count(name) {
                Ok(n) => n,
                Err(e) => {
                    last = format!("the gRPC endpoint {} cannot count collection {name} ({e})", g.url());
                    return Ok(None);
                }
            };
            let over_rest = rest.count(name)?;
            if over_grpc == over_rest {
                return Ok(Some(()));
            }
            last = format!(
                "the gRPC endpoint {} counts {over_grpc} points in collection {name}, the REST endpoint {over_rest}: they are not the same server",
                g.url()
            );
            Ok(None)
        },
    )
    .map_err(|e| e.to_string())?;
    same.ok_or(last)
}

/// The opened collections, their description for the manifest, and the scratch directory
/// (removed when dropped if q2z created it and left it empty).
pub struct OpenedSources {
    pub sources: Vec<SharedSource>,
    pub info: SourceInfo,
    _scratch: Option<Scratch>,
}

/// A scratch directory; removed on drop only if this run created it and it is empty.
struct Scratch {
    dir: PathBuf,
    created: bool,
}

impl Scratch {
    fn new(dir: &Path) -> Result<Scratch> {
        let created = !dir.exists();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        Ok(Scratch {
            dir: dir.to_path_buf(),
            created,
        })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.created {
            // `remove_dir` fails on a directory that is not empty: nothing else is touched.
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

/// Opens the collections `spec` names.
pub fn open_sources(spec: &SourceSpec) -> Result<OpenedSources> {
    if !spec.snapshots.is_empty() {
        let scratch = Scratch::new(&spec.scratch)?;
        let (sources, info) = open_snapshot_files(spec)?;
        return Ok(OpenedSources {
            sources,
            info,
            _scratch: Some(scratch),
        });
    }
    let Some(url) = &spec.qdrant_url else {
        return Err(Error::Other(
            "say where to read from: --qdrant-url URL (live server) or --snapshot FILE (offline)"
                .into(),
        ));
    };
    let client = QdrantRest::new(url, spec.api_key.clone(), RetryPolicy::default())?;
    let names = if spec.collections.is_empty() {
        client.list_collections()?
    } else {
        spec.collections.clone()
    };
    if spec.via_snapshot {
        let scratch = Scratch::new(&spec.scratch)?;
        let (sources, info) = via_snapshot(&client, &names, spec.keep_snapshot, &spec.scratch)?;
        return Ok(OpenedSources {
            sources,
            info,
            _scratch: Some(scratch),
        });
    }
    let mut grpc = grpc_for(spec, url)?;
    let mut sources: Vec<SharedSource> = Vec::new();
    for n in &names {
        if let Some(g) = &grpc
            && let Err(why) = same_collection(&client, g, n)
        {
            if spec.transport == Transport::Grpc {
                return Err(Error::Other(format!(
                    "--transport grpc: {why}. Give the --grpc-url of the server at {} (or --transport rest)",
                    client.url()
                )));
            }
            tracing::warn!(grpc = %g.url(), "{why}: reading every page over REST");
            grpc = None;
        }
    }
    for n in names {
        let config = client.collection_config(&n)?;
        use super::transport_choice::PageTransport;
        // `auto`: the faster transport for this collection, measured on its first page.
        let pages = match (&grpc, spec.transport) {
            (Some(g), Transport::Auto) => PageTransport::auto(g.clone()),
            _ => PageTransport::fixed(grpc.clone()),
        };
        sources.push(Arc::new(LiveCollection {
            client: client.clone(),
            config,
            opened_at: super::unix_now(),
            pages,
        }));
    }
    let info = SourceInfo::Rest {
        url: client.url().to_string(),
    };
    Ok(OpenedSources {
        sources,
        info,
        _scratch: None,
    })
}

/// The snapshot files grouped by collection: by `--as` (all files are one collection), else by
/// the name in Qdrant's file names (`<collection>-<peer id>-<date>.snapshot`,
/// `<collection>-shard-<id>-<date>.snapshot`), in the order given.
fn group_by_collection(spec: &SourceSpec) -> Result<Vec<(String, Vec<SnapshotInput>)>> {
    let mut groups: Vec<(String, Vec<SnapshotInput>)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for f in &spec.snapshots {
        if !f.is_file() {
            return Err(Error::Snapshot {
                path: f.clone(),
                message: "no such file; check the path given to --snapshot".into(),
            });
        }
        let canonical = std::fs::canonicalize(f).map_err(|e| Error::io(f, e))?;
        if !seen.insert(canonical) {
            return Err(Error::Snapshot {
                path: f.clone(),
                message: "given twice; give each snapshot file once".into(),
            });
        }
        let name = match &spec.snapshot_name {
            Some(n) => n.clone(),
            None => parse_file_name(f).0,
        };
        let input = SnapshotInput::new(f);
        match groups.iter_mut().find(|(n, _)| *n == name) {
            Some((_, g)) => g.push(input),
            None => groups.push((name, vec![input])),
        }
    }
    Ok(groups)
}

fn open_snapshot_files(spec: &SourceSpec) -> Result<(Vec<SharedSource>, SourceInfo)> {
    let mut sources: Vec<SharedSource> = Vec::new();
    let mut files = Vec::new();
    for (name, inputs) in group_by_collection(spec)? {
        if !spec.collections.is_empty() && !spec.collections.contains(&name) {
            continue;
        }
        // The checksums (recorded in the manifest) are read on a second core while the
        // snapshots unpack on the first.
        let (hashed, opened) = std::thread::scope(|s| {
            let h = s.spawn(|| {
                inputs
                    .iter()
                    .map(|i| sha256_file(&i.path))
                    .collect::<Result<Vec<_>>>()
            });
            let opts = ShardOptions {
                allow_missing: spec.allow_missing_shards,
                first_replica: spec.first_replica,
                part: spec.part,
            };
            let c = open_snapshots(&inputs, &name, &spec.scratch, opts);
            (h.join(), c)
        });
        let c = opened?;
        let hashes = hashed.map_err(|_| Error::Snapshot {
            path: inputs[0].path.clone(),
            message: "hashing it failed unexpectedly".into(),
        })??;
        for (input, (sha256, bytes)) in inputs.iter().zip(hashes) {
            files.push(SnapshotFile {
                file: input
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                sha256,
                bytes,
            });
        }
        for n in &c.notes {
            tracing::warn!(collection = %name, "{n}");
        }
        sources.push(Arc::new(c));
    }
    Ok((sources, SourceInfo::Snapshot { files }))
}

/// The local file name for a snapshot the server named: its name if that is a plain file
/// name, else a neutral one (a server's name never chooses where q2z writes).
fn local_snapshot_name(server_name: &str) -> String {
    if is_safe_dir_name(server_name) {
        server_name.to_string()
    } else {
        "collection.snapshot".to_string()
    }
}

/// Point-in-time export: snapshot each collection on the server, download it into a directory
/// of q2z's own under `scratch`, open it offline.
fn via_snapshot(
    client: &QdrantRest,
    names: &[String],
    keep: bool,
    scratch: &Path,
) -> Result<(Vec<SharedSource>, SourceInfo)> {
    let mut sources: Vec<SharedSource> = Vec::new();
    let mut files = Vec::new();
    for n in names {
        client.collection_config(n)?;
        if let Some(remote) = client.remote_shards(n)?
            && !remote.is_empty()
        {
            let held: Vec<String> = remote
                .iter()
                .map(|(s, p)| format!("shard {s} on peer {p}"))
                .collect();
            return Err(Error::Mapping {
                collection: n.clone(),
                message: format!(
                    "some of its shards live on other nodes ({}), and a snapshot taken through this node holds only its own. Take a collection snapshot on every node (POST /collections/{n}/snapshots on each) and give all the files to --snapshot (q2z merges them shard by shard), or export live without --via-snapshot",
                    held.join(", ")
                ),
            });
        }
        let taken_at = super::unix_now();
        let (snap, size, checksum) = client.create_snapshot(n)?;
        tracing::info!(collection = %n, snapshot = %snap.escape_debug(), size, "server snapshot created; downloading");
        let download = crate::scratch::work_dir(scratch, crate::scratch::SNAPSHOT_DOWNLOAD)?;
        let dest = download.path().join(local_snapshot_name(&snap));
        let r = client.download_snapshot(n, &snap, &dest, checksum.as_deref());
        if !keep && let Err(e) = client.delete_snapshot(n, &snap) {
            tracing::warn!(
                "could not delete the server snapshot {} of {n}: {e}",
                snap.escape_debug()
            );
        }
        r?;
        let (sha256, bytes) = sha256_file(&dest)?;
        let mut c = open_snapshot(&dest, Some(n), scratch)?;
        c.taken_at = Some(taken_at);
        drop(download);
        files.push(SnapshotFile {
            file: format!("{}#{snap}", client.url()),
            sha256,
            bytes,
        });
        sources.push(Arc::new(c));
    }
    Ok((sources, SourceInfo::Snapshot { files }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_snapshot_name_never_picks_the_path() {
        assert_eq!(
            local_snapshot_name("docs-1-2026.snapshot"),
            "docs-1-2026.snapshot"
        );
        for evil in ["/tmp/x", "../../etc/passwd", "a/b", ".hidden", ""] {
            assert_eq!(local_snapshot_name(evil), "collection.snapshot", "{evil}");
        }
    }

    #[test]
    fn scratch_removes_only_an_empty_directory_it_created() {
        let base = tempfile::tempdir().unwrap();
        let mine = base.path().join("new");
        drop(Scratch::new(&mine).unwrap());
        assert!(!mine.exists(), "created and empty: removed");
        let users = base.path().join("users");
        std::fs::create_dir(&users).unwrap();
        std::fs::write(users.join("keep.txt"), b"x").unwrap();
        drop(Scratch::new(&users).unwrap());
        assert!(
            users.join("keep.txt").exists(),
            "the user's directory and files stay"
        );
        let created_then_used = base.path().join("used");
        let s = Scratch::new(&created_then_used).unwrap();
        std::fs::write(created_then_used.join("other.txt"), b"x").unwrap();
        drop(s);
        assert!(
            created_then_used.join("other.txt").exists(),
            "never removed with content"
        );
    }
}
