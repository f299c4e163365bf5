//! What a collection's mapping needs from a target release, said before anything is written
//! (`q2z plan --milvus-url`): each need the release lacks, with what happens and the fix.

use super::version::{Known, Target};
use crate::transform::mapping::{CollectionMapping, MultivectorPolicy, VectorKind};
use crate::transform::scalars::ScalarKind;

/// How a row without a sparse vector (staged as an empty sparse row) may reach the target, by
/// its release: over REST from 2.4.12 (utils.go `checkAndSetData`, PR 36061), in a Parquet
/// import from 2.5.7 (importutilv2 parquet reader, PR 40586).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmptySparse {
    /// Either way (or the mapping has no sparse field).
    Anywhere,
    /// Over REST only: an import upserts the chunks holding one, a sync the ranges (even past
    /// `--bulk-over`).
    RestOnly,
    /// Neither (a release before 2.4.12, as given or told by its host): refused with the fix.
    Nowhere,
}

impl EmptySparse {
    /// The rule for mapping `m` on target `t`. A probed release is only a lower bound: REST
    /// then (right from 2.4.12, where the import is still wrong; the server says so before).
    pub fn of(t: Target, m: &CollectionMapping) -> EmptySparse {
        let sparse = m
            .vectors
            .iter()
            .any(|v| v.kind == VectorKind::SparseFloatVector);
        match (t.kind.takes_empty_sparse(), t.kind.imports_empty_sparse()) {
            _ if !sparse => EmptySparse::Anywhere,
            (_, true) => EmptySparse::Anywhere,
            (false, false) if t.known != Known::Probed => EmptySparse::Nowhere,
            _ => EmptySparse::RestOnly,
        }
    }
}

impl Target {
    /// What the collection of `m` gets of the 2.6 / 3.0 capabilities on this release, one line
    /// each (`plan --milvus-url`): typed fields of the newer types, how import jobs are made
    /// exactly-once, and what stays as before (multivectors).
    pub fn plan_gets(&self, m: &CollectionMapping) -> Vec<String> {
        let k = self.kind;
        let mut gets = Vec::new();
        for f in &m.scalars {
            let what = match f.kind {
                ScalarKind::Geometry => {
                    "GEOMETRY: Qdrant geo points as WKT, every coordinate exact"
                }
                ScalarKind::Timestamptz => "TIMESTAMPTZ: instants in UTC, to the microsecond",
                _ => continue,
            };
            if k.lacks_type(f.kind.milvus_name()).is_none() {
                let ix = f
                    .index
                    .as_deref()
                    .map(|i| format!(", {i} index"))
                    .unwrap_or_default();
                gets.push(format!("field '{}': {what}{ix}", f.field));
            }
        }
        gets.push(match (k.two_phase_import(), k.import_idempotency()) {
            (true, _) => "import jobs: created uncommitted, committed once their row count matches the stage (two-phase), with an Idempotency-Key".into(),
            (false, true) => "import jobs: an Idempotency-Key each (a lost answer cannot make a second job)".into(),
            _ => "import jobs: a lost creation answer is reconciled against the server's job list (no Idempotency-Key on this release)".into(),
        });
        for v in m.vectors.iter().filter(|v| v.is_multivector) {
            gets.push(match v.kind {
                VectorKind::EmbeddingList if k.has_struct_array() => format!(
                    "field '{}': an Array of Structs of {}-d float vectors, every vector of each Qdrant multivector '{}' kept, HNSW MAX_SIM_{} on {}[v]",
                    v.field,
                    v.dim.unwrap_or(0),
                    v.source,
                    v.metric,
                    v.field
                ),
                VectorKind::EmbeddingList => continue,
                _ => format!(
                    "vector '{}' (a multivector): {} as the mapping says{}",
                    v.source,
                    if v.multivector == MultivectorPolicy::Skip {
                        "left out"
                    } else {
                        "its first vector"
                    },
                    if k.has_struct_array() {
                        "; this release could keep it whole (--multivector struct)"
                    } else {
                        ""
                    }
                ),
            });
        }
        gets
    }

    /// One line per need of `m` that this release does not meet (empty: it meets them all).
    /// `exists`: the target already has a collection of the mapping's name.
    pub fn plan_notes(&self, m: &CollectionMapping, exists: bool) -> Vec<String> {
        let k = self.kind;
        let release = match k {
            super::version::ServerKind::Milvus(r) => format!("Milvus {r}"),
            super::version::ServerKind::Zilliz => "Zilliz Cloud".to_string(),
        };
        let mut notes = Vec::new();
        if exists {
            notes.push(format!(
                "the target already has a collection named '{}': import needs --into-existing (same schema) or --drop-existing, or another `target` in the mapping file",
                m.target
            ));
        }
        let nullable: Vec<&str> = m
            .scalars
            .iter()
            .filter(|f| f.nullable)
            .map(|f| f.field.as_str())
            .collect();
        if !nullable.is_empty() && !k.has_nullable() {
            notes.push(format!(
                "fields {} are nullable (promoted payload keys), which {release} lacks (2.5.0+): the import would be refused; leave out --promote (the keys stay in $meta) or import into Milvus ≥ 2.5 / Zilliz Cloud",
                nullable.join(", ")
            ));
        }
        let lacking: Vec<String> = m
            .scalars
            .iter()
            .filter_map(|f| {
                let t = f.kind.milvus_name();
                k.lacks_type(t)
                    .map(|since| format!("{} ({t}, {since}+)", f.field))
            })
            .collect();
        if !lacking.is_empty() {
            notes.push(format!(
                "fields {} are of types {release} lacks: the import would be refused; change their type in the mapping file (JSON for a geo point, VarChar for a datetime) or import into a newer Milvus / Zilliz Cloud",
                lacking.join(", ")
            ));
        }
        for v in m
            .vectors
            .iter()
            .filter(|v| v.kind == VectorKind::SparseFloatVector)
        {
            if !k.imports_empty_sparse() {
                notes.push(if self.known == Known::Probed {
                    format!(
                        "sparse field '{}': a point without the vector is staged as an empty sparse row, which a bulk import fails on before 2.5.7; the release is only probed ({release} or newer): give --milvus-version so that on 2.4.12–2.5.6 the chunks holding one are upserted",
                        v.field
                    )
                } else if k.takes_empty_sparse() {
                    format!(
                        "sparse field '{}': a point without the vector is staged as an empty sparse row, which {release} fails in a bulk import (2.5.7+) but takes over REST: a bulk import upserts the chunks that hold one (slower than bulk for those chunks)",
                        v.field
                    )
                } else {
                    format!(
                        "sparse field '{}': a point without the vector is staged as an empty sparse row, which {release} refuses over REST (2.4.12+) and in a bulk import (2.5.7+): the import would be refused; check that every point has it, or import into a newer release",
                        v.field
                    )
                });
            }
        }
        for v in m.vectors.iter().filter(|v| v.is_multivector) {
            if v.kind == VectorKind::EmbeddingList {
                if !k.has_struct_array() {
                    notes.push(format!(
                        "vector '{}' is staged whole as an Array of Structs (--multivector struct), which {release} lacks over REST (3.0.0+; the 2.6 line has it in the SDKs only): the import would be refused; export again with --multivector first or skip, or import into Milvus 3.0+",
                        v.source
                    ));
                }
                continue;
            }
            let how = match v.multivector {
                MultivectorPolicy::First => "its first vector only",
                MultivectorPolicy::Skip => "nothing (left out)",
                _ => "nothing until --multivector struct|first|skip is given",
            };
            notes.push(format!(
                "vector '{}' is a multivector: staged as {how}; {}",
                v.source,
                if k.has_struct_array() {
                    format!("{release} holds it whole as an Array of Structs with a MAX_SIM index: export again with --multivector struct")
                } else {
                    "Milvus 3.0+ holds it whole as an Array of Structs with a MAX_SIM index (--multivector struct)".to_string()
                }
            ));
        }
        if !m.json_indexes.is_empty() && !k.has_json_path_index() {
            notes.push(format!(
                "JSON-path indexes on $meta keys ({}) need 2.5.11+: {release} gets none (filters on those keys scan $meta); the import goes on without them",
                m.json_indexes
                    .iter()
                    .map(|i| i.key.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        notes
    }
}

#[cfg(test)]
mod tests {
    use super::EmptySparse;
    use crate::sink::milvus::version::{Known, Release, ServerKind, Target};
    use crate::transform::mapping::{CollectionMapping, IdKind, VectorKind, test_mapping};

    fn target(v: &str) -> Target {
        Target {
            kind: ServerKind::parse(v).unwrap(),
            known: Known::Given,
        }
    }

    #[test]
    fn a_release_is_told_what_it_lacks_for_the_mapping() {
        let m: CollectionMapping = toml::from_str(
            r#"
source = "c"
target = "t"
id_field = "id"
id_kind = "Int64"
[[vectors]]
source = "sp"
field = "sp"
kind = "SparseFloatVector"
metric = "IP"
index_type = "SPARSE_INVERTED_INDEX"
[[scalars]]
key = "tenant"
field = "tenant"
type = "VarChar"
max_length = 64
"#,
        )
        .unwrap();
        let old = target("2.4.9").plan_notes(&m, true);
        assert_eq!(old.len(), 3, "{old:#?}");
        assert!(old[0].contains("already has a collection named 't'"));
        assert!(old[1].contains("fields tenant are nullable"));
        assert!(old[2].contains("refuses over REST (2.4.12+) and in a bulk import"));
        let mid = target("2.5.4").plan_notes(&m, false);
        assert_eq!(mid.len(), 1, "{mid:#?}");
        assert!(mid[0].contains("a bulk import upserts the chunks that hold one"));
        assert!(target("2.6.24").plan_notes(&m, false).is_empty());
    }

    #[test]
    fn a_release_says_what_the_collection_gets_of_the_newer_types() {
        let mut m = test_mapping(crate::model::Distance::Cosine, IdKind::Int64);
        for (key, ty, ix) in [
            ("loc", "Geometry", "RTREE"),
            ("at", "Timestamptz", "STL_SORT"),
        ] {
            let (kind, _) = crate::transform::scalars::ScalarKind::parse(ty).unwrap();
            let mut f = crate::transform::scalars::ScalarField::new(key, key.into(), kind, None);
            f.index = Some(ix.into());
            m.scalars.push(f);
        }
        let gets = |v: &str| target(v).plan_gets(&m).join("\n");
        let g = gets("3.0.2");
        assert!(
            g.contains("field 'loc': GEOMETRY") && g.contains("RTREE index"),
            "{g}"
        );
        assert!(
            g.contains("field 'at': TIMESTAMPTZ") && g.contains("two-phase"),
            "{g}"
        );
        let g = gets("2.6.4");
        assert!(
            g.contains("'loc': GEOMETRY") && !g.contains("TIMESTAMPTZ"),
            "{g}"
        );
        assert!(
            g.contains("reconciled against the server's job list"),
            "{g}"
        );
        assert!(gets("2.6.24").contains("an Idempotency-Key each"));
        let notes = target("2.6.4").plan_notes(&m, false).join("\n");
        assert!(notes.contains("at (Timestamptz, 2.6.6+)"), "{notes}");
    }

    fn on(v: (u16, u16, u16), known: Known) -> Target {
        Target {
            kind: ServerKind::Milvus(Release(v.0, v.1, v.2)),
            known,
        }
    }

    #[test]
    fn rows_without_a_sparse_vector_go_where_the_release_takes_them() {
        let m = test_mapping(crate::model::Distance::Cosine, IdKind::Int64);
        let rule = |v, k| EmptySparse::of(on(v, k), &m);
        assert_eq!(rule((2, 5, 7), Known::Given), EmptySparse::Anywhere);
        assert_eq!(rule((2, 5, 6), Known::Given), EmptySparse::RestOnly);
        assert_eq!(rule((2, 4, 12), Known::Given), EmptySparse::RestOnly);
        assert_eq!(rule((2, 4, 11), Known::Given), EmptySparse::Nowhere);
        assert_eq!(
            rule((2, 4, 0), Known::Probed),
            EmptySparse::RestOnly,
            "a probe is a lower bound: no refusal on it"
        );
        let zilliz = Target {
            kind: ServerKind::Zilliz,
            known: Known::Host,
        };
        assert_eq!(EmptySparse::of(zilliz, &m), EmptySparse::Anywhere);
        let mut dense_only = m.clone();
        dense_only
            .vectors
            .retain(|v| v.kind != VectorKind::SparseFloatVector);
        assert_eq!(
            EmptySparse::of(on((2, 4, 0), Known::Given), &dense_only),
            EmptySparse::Anywhere
        );
    }
}
