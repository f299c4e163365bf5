//! A collection whose shards are spread over several snapshot files — the collection snapshots
//! of a cluster's nodes (each holds only the shards, and replicas, its node has) and shard
//! snapshots. Decides, before anything is unpacked, which file each shard is read from:
//! every shard exactly once (the first file given that holds it; its replicas in later files
//! are not read), the files' configs must agree, and a shard no file holds is an error that
//! names the peers holding it (or, with `allow_missing`, a note).

use crate::error::{Error, Result};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What kind of snapshot a tar holds.
#[derive(Debug, PartialEq)]
pub(crate) enum Layout {
    /// `config.json` plus one directory per shard.
    Collection {
        /// The collection's `config.json`.
        config: Value,
        /// Every shard directory, with or without data on the node that took the snapshot.
        shards: BTreeMap<u32, ShardDir>,
    },
    /// `segments/...` at the top.
    Shard,
}

/// A shard directory of a collection snapshot.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ShardDir {
    /// Segments of this shard are in the file (the node held a replica).
    pub has_data: bool,
    /// `replica_state.json`'s `is_local`, when present.
    pub is_local: Option<bool>,
    /// Peers that hold the shard, per `replica_state.json`.
    pub peers: Vec<u64>,
    /// Its shard key (custom sharding), per `shard_key_mapping.json`.
    pub shard_key: Option<Value>,
}

impl ShardDir {
    /// Whether the file holds this shard's points.
    pub fn local(&self) -> bool {
        self.is_local.unwrap_or(true) && self.has_data
    }
}

/// How shards are chosen across files.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShardOptions {
    /// Export the shards that are there when some are in no file (the manifest says which).
    pub allow_missing: bool,
    /// Read each shard from the first file given that holds it, without loading its replicas
    /// to compare their point counts (faster; by default every replica is counted and the one
    /// with the most points is read).
    pub first_replica: bool,
    /// `--part I/N`: when the collection has at least N shards, only every N-th shard (in shard
    /// id order) from the I-th is read, and only those are unpacked.
    pub part: Option<crate::stage::manifest::Part>,
}

/// One file as inspected: its path, the shard id a shard snapshot carries, its layout.
pub(crate) struct Inspected<'a> {
    pub path: &'a Path,
    pub shard: Option<u32>,
    pub layout: &'a Layout,
}

/// Which file (index) each shard is read from, and what was decided.
#[derive(Debug, PartialEq)]
pub(crate) struct ShardPlan {
    pub chosen: BTreeMap<u32, usize>,
    /// Every file holding each shard, the chosen one first.
    pub replicas: BTreeMap<u32, Vec<usize>>,
    pub notes: Vec<String>,
}

fn err(name: &str, message: String) -> Error {
    Error::Mapping {
        collection: name.to_string(),
        message,
    }
}

/// The collection config's parameters that must agree across files.
fn params(config: &Value) -> Value {
    let mut p = config.get("params").cloned().unwrap_or(Value::Null);
    // Replication settings differ by design between what nodes report; shards are what count.
    if let Some(o) = p.as_object_mut() {
        o.remove("replication_factor");
        o.remove("write_consistency_factor");
    }
    p
}

/// What the files say about the collection's shards.
struct Survey {
    /// The first collection config seen, and the file it came from.
    config: Option<(usize, Value)>,
    /// Shard id → files holding its points, in the order given.
    holders: BTreeMap<u32, Vec<usize>>,
    /// Shard id → peers holding it (from `replica_state.json`).
    peers: BTreeMap<u32, BTreeSet<u64>>,
}

/// Reads the files' layouts: which hold which shards; configs must agree.
fn survey(name: &str, files: &[Inspected]) -> Result<Survey> {
    let show = |i: usize| files[i].path.display().to_string();
    let mut sv = Survey {
        config: None,
        holders: BTreeMap::new(),
        peers: BTreeMap::new(),
    };
    for (i, f) in files.iter().enumerate() {
        match f.layout {
            Layout::Collection { config: c, shards } => {
                match &sv.config {
                    Some((j, first)) if params(first) != params(c) => {
                        return Err(err(
                            name,
                            format!(
                                "the snapshot files {} and {} hold different collection settings (config.json \"params\" differ): they are not snapshots of one collection. Give them separately, with --as to name them apart",
                                show(*j),
                                show(i)
                            ),
                        ));
                    }
                    Some(_) => {}
                    None => sv.config = Some((i, c.clone())),
                }
                for (id, dir) in shards {
                    sv.peers
                        .entry(*id)
                        .or_default()
                        .extend(dir.peers.iter().copied());
                    if dir.local() {
                        sv.holders.entry(*id).or_default().push(i);
                    }
                }
            }
            Layout::Shard => {
                let id = match (f.shard, files.len()) {
                    (Some(id), _) => id,
                    (None, 1) => 0,
                    (None, _) => {
                        return Err(err(
                            name,
                            format!(
                                "{} is a shard snapshot whose shard id its name does not say (Qdrant names them <collection>-shard-<id>-<date>.snapshot); rename it so, or give it alone",
                                show(i)
                            ),
                        ));
                    }
                };
                sv.holders.entry(id).or_default().push(i);
            }
        }
    }
    Ok(sv)
}

impl Survey {
    /// The shards the collection has: `0..shard_number` for auto sharding; for custom sharding
    /// (shard keys) or shard snapshots alone, the shards the files name.
    fn expected(&self) -> BTreeSet<u32> {
        match &self.config {
            Some((_, c))
                if c.pointer("/params/sharding_method").and_then(Value::as_str)
                    != Some("custom") =>
            {
                let n = c
                    .pointer("/params/shard_number")
                    .and_then(Value::as_u64)
                    .unwrap_or(1);
                (0..n as u32).collect()
            }
            _ => self
                .peers
                .keys()
                .chain(self.holders.keys())
                .copied()
                .collect(),
        }
    }

    /// `shard N (held by peer …)` for each missing shard.
    fn describe_missing(&self, missing: &[u32]) -> String {
        missing
            .iter()
            .map(|id| {
                let p: Vec<String> = self
                    .peers
                    .get(id)
                    .into_iter()
                    .flatten()
                    .map(|p| p.to_string())
                    .collect();
                if p.is_empty() {
                    format!("shard {id}")
                } else {
                    format!("shard {id} (held by peer {})", p.join(", "))
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl ShardPlan {
    /// Keeps only the shards of `part` when there are at least as many shards as parts;
    /// returns (kept shard ids, every shard id), or `None` when the shards are too few to split.
    pub fn keep_part(
        &mut self,
        part: crate::stage::manifest::Part,
    ) -> Option<(Vec<u32>, Vec<u32>)> {
        let all: Vec<u32> = self.chosen.keys().copied().collect();
        if all.len() < part.of {
            return None;
        }
        let mine: Vec<u32> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| part.owns(*i))
            .map(|(_, id)| *id)
            .collect();
        self.chosen.retain(|id, _| mine.contains(id));
        self.replicas.retain(|id, _| mine.contains(id));
        Some((mine, all))
    }
}

/// Plans the shards of collection `name` over `files` (in the order the user gave them).
pub(crate) fn plan_shards(
    name: &str,
    files: &[Inspected],
    opts: ShardOptions,
) -> Result<ShardPlan> {
    let show = |i: usize| files[i].path.display().to_string();
    let sv = survey(name, files)?;
    let mut chosen = BTreeMap::new();
    let mut notes = Vec::new();
    for (id, h) in &sv.holders {
        chosen.insert(*id, h[0]);
        if h.len() > 1 && opts.first_replica {
            let others: Vec<String> = h[1..].iter().map(|i| show(*i)).collect();
            notes.push(format!(
                "shard {id}: read from {}; its replica in {} is not read (--replicas first: the first file given that holds a shard is read; give another order to read another replica)",
                show(h[0]),
                others.join(", ")
            ));
        }
    }
    let expected = sv.expected();
    let missing: Vec<u32> = expected
        .iter()
        .filter(|id| !chosen.contains_key(id))
        .copied()
        .collect();
    if !missing.is_empty() {
        let what = format!(
            "{} of {} shards are in none of the files given: {}",
            missing.len(),
            expected.len(),
            sv.describe_missing(&missing)
        );
        if !opts.allow_missing {
            return Err(err(
                name,
                format!(
                    "{what}. Add the snapshots of the nodes that hold them (Qdrant names a node's snapshot <collection>-<peer id>-<date>.snapshot), or pass --allow-missing-shards to export the rest"
                ),
            ));
        }
        notes.push(format!(
            "{what}; exported without them (--allow-missing-shards)"
        ));
    }
    if chosen.is_empty() {
        return Err(err(
            name,
            "none of the files given holds any point data of this collection".into(),
        ));
    }
    Ok(ShardPlan {
        chosen,
        replicas: sv.holders,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(shards: &[(u32, bool)], n: u64) -> Layout {
        Layout::Collection {
            config: json!({"params": {"shard_number": n, "replication_factor": 2}}),
            shards: shards
                .iter()
                .map(|(id, local)| {
                    (
                        *id,
                        ShardDir {
                            has_data: *local,
                            is_local: Some(*local),
                            peers: vec![111, 222],
                            shard_key: None,
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn every_shard_once_from_the_first_file_that_holds_it() {
        let a = node(&[(0, true), (1, true), (2, false), (3, false)], 4);
        let b = node(&[(0, false), (1, true), (2, true), (3, true)], 4);
        let (pa, pb) = (Path::new("a.snapshot"), Path::new("b.snapshot"));
        let files = [
            Inspected {
                path: pa,
                shard: None,
                layout: &a,
            },
            Inspected {
                path: pb,
                shard: None,
                layout: &b,
            },
        ];
        let first = ShardOptions {
            first_replica: true,
            ..Default::default()
        };
        let p = plan_shards("c", &files, first).unwrap();
        assert_eq!(p.chosen, BTreeMap::from([(0, 0), (1, 0), (2, 1), (3, 1)]));
        assert_eq!(p.replicas[&1], [0, 1]);
        assert_eq!(p.notes.len(), 1);
        assert!(
            p.notes[0].starts_with("shard 1: read from a.snapshot"),
            "{:?}",
            p.notes
        );
        // The other order reads the other replica.
        let files = [
            Inspected {
                path: pb,
                shard: None,
                layout: &b,
            },
            Inspected {
                path: pa,
                shard: None,
                layout: &a,
            },
        ];
        let p = plan_shards("c", &files, ShardOptions::default()).unwrap();
        assert_eq!(p.chosen[&1], 0);
    }

    #[test]
    fn a_missing_shard_names_its_peers_unless_allowed() {
        let a = node(&[(0, true), (1, false)], 2);
        let files = [Inspected {
            path: Path::new("a.snapshot"),
            shard: None,
            layout: &a,
        }];
        let e = plan_shards("c", &files, ShardOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("1 of 2 shards")
                && e.contains("shard 1 (held by peer 111, 222)")
                && e.contains("--allow-missing-shards"),
            "{e}"
        );
        let p = plan_shards(
            "c",
            &files,
            ShardOptions {
                allow_missing: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(p.chosen.len(), 1);
        assert!(p.notes[0].contains("exported without them"));
    }

    #[test]
    fn files_of_different_collections_are_refused() {
        let a = node(&[(0, true)], 1);
        let mut b = node(&[(0, true)], 1);
        if let Layout::Collection { config, .. } = &mut b {
            config["params"]["vectors"] = json!({"size": 4});
        }
        let files = [
            Inspected {
                path: Path::new("a.snapshot"),
                shard: None,
                layout: &a,
            },
            Inspected {
                path: Path::new("b.snapshot"),
                shard: None,
                layout: &b,
            },
        ];
        let e = plan_shards("c", &files, ShardOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("different collection settings"), "{e}");
    }

    #[test]
    fn shard_snapshots_need_their_id_when_several_are_given() {
        let s = Layout::Shard;
        let files = [
            Inspected {
                path: Path::new("c-shard-0-2026-01-01-00-00-00.snapshot"),
                shard: Some(0),
                layout: &s,
            },
            Inspected {
                path: Path::new("c-shard-1-2026-01-01-00-00-00.snapshot"),
                shard: Some(1),
                layout: &s,
            },
        ];
        let p = plan_shards("c", &files, ShardOptions::default()).unwrap();
        assert_eq!(p.chosen, BTreeMap::from([(0, 0), (1, 1)]));
        let files = [
            Inspected {
                path: Path::new("x.snapshot"),
                shard: None,
                layout: &s,
            },
            Inspected {
                path: Path::new("y.snapshot"),
                shard: None,
                layout: &s,
            },
        ];
        assert!(plan_shards("c", &files, ShardOptions::default()).is_err());
    }
}
