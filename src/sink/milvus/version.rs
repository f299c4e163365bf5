//! Which server the target is — a Milvus release or Zilliz Cloud — and what its REST layer
//! supports, so q2z applies each line's limits instead of learning them from a failed write.
//! Given with `--milvus-version` (best: the exact release), or told from the server: Zilliz
//! Cloud by its endpoint's host, and Milvus's REST v2 reports no version, so a self-hosted
//! server is probed (`collections/flush` answers 404 before 2.5) and taken at the oldest
//! release of the line that answer allows. The table is in README.md ("conformance"); the
//! releases below are those of the commits in milvus-io/milvus that brought each behaviour.

use std::fmt;

/// A Milvus release, `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Release(pub u16, pub u16, pub u16);

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// The server behind `--milvus-url`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// Self-hosted Milvus of this release.
    Milvus(Release),
    /// Zilliz Cloud (managed Milvus; its REST layer follows the newest Milvus line).
    Zilliz,
}

/// How the release was learned: said in `q2z doctor` and in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// `--milvus-version`.
    Given,
    /// From the endpoint's host name.
    Host,
    /// From the server's answers: the oldest release of the line they allow.
    Probed,
}

/// The target server and what its REST layer supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub kind: ServerKind,
    pub known: Known,
}

impl ServerKind {
    /// Parses `--milvus-version`: `2.4`, `2.4.12`, `v2.6.24`, `3.0`, or `zilliz`.
    pub fn parse(s: &str) -> Option<ServerKind> {
        let t = s.trim().trim_start_matches(['v', 'V']);
        if t.eq_ignore_ascii_case("zilliz") {
            return Some(ServerKind::Zilliz);
        }
        let mut parts = t.split('.').map(|p| p.parse::<u16>().ok());
        let major = parts.next()??;
        let minor = parts.next()??;
        let patch = match parts.next() {
            None => 0,
            Some(p) => p?,
        };
        if parts.next().is_some() || major < 2 || (major == 2 && minor < 4) {
            return None;
        }
        Some(ServerKind::Milvus(Release(major, minor, patch)))
    }

    /// The release whose REST rules apply (Zilliz Cloud: the newest line's).
    fn release(self) -> Release {
        match self {
            ServerKind::Milvus(r) => r,
            ServerKind::Zilliz => Release(2, 6, 24),
        }
    }

    fn at_least(self, r: Release) -> bool {
        self.release() >= r
    }

    /// `collections/flush` exists (handler_v2.go, milvus PR 39425: 2.5.4; a 404 before).
    pub fn has_flush(self) -> bool {
        self.at_least(Release(2, 5, 4))
    }

    /// Fields may be `nullable` (PR 35825: 2.5.0; 2.4's `createCollection` drops the key and
    /// makes the field required).
    pub fn has_nullable(self) -> bool {
        self.at_least(Release(2, 5, 0))
    }

    /// A row may hold an empty sparse vector (`{}`) over REST (utils.go `checkAndSetData`,
    /// PR 36061: 2.4.12).
    pub fn takes_empty_sparse(self) -> bool {
        self.at_least(Release(2, 4, 12))
    }

    /// A Parquet import takes an empty sparse row (`"{}"`; importutilv2 parquet reader, PR
    /// 40586: 2.5.7; every 2.4 release fails the job).
    pub fn imports_empty_sparse(self) -> bool {
        self.at_least(Release(2, 5, 7))
    }

    /// GEOMETRY fields (WKT rows, a utf8 Parquet column) with RTREE indexes (2.6.4).
    pub fn has_geometry(self) -> bool {
        self.at_least(Release(2, 6, 4))
    }

    /// TIMESTAMPTZ fields (ISO-8601 rows, a utf8 Parquet column; STL_SORT): 2.6.6.
    pub fn has_timestamptz(self) -> bool {
        self.at_least(Release(2, 6, 6))
    }

    /// Array of Structs fields with MAX_SIM indexes over REST (`schema.structFields`, rows of
    /// `[{sub: ..}]`, `annsField "F[v]"`: httpserver PR 49165, the 3.0 line; the 2.6 line has
    /// them in the SDKs only, and its REST layer drops `structFields` unread).
    pub fn has_struct_array(self) -> bool {
        self.at_least(Release(3, 0, 0))
    }

    /// The release a field `dataType` of the 2.6 / 3.0 lines needs, where this server lacks it.
    pub fn lacks_type(self, data_type: &str) -> Option<&'static str> {
        match data_type {
            "ArrayOfStruct" if !self.has_struct_array() => Some("3.0.0"),
            "Geometry" if !self.has_geometry() => Some("2.6.4"),
            "Timestamptz" if !self.has_timestamptz() => Some("2.6.6"),
            _ => None,
        }
    }

    /// Indexes on JSON paths of the dynamic field (`json_path`, `json_cast_type`; 2.5.11).
    pub fn has_json_path_index(self) -> bool {
        self.at_least(Release(2, 5, 11))
    }

    /// `entities/query` honours the request's `consistencyLevel` (PR 41830, the 2.5 pick of
    /// 41825: 2.5.12, and 2.6.0); before, the collection's level applies.
    pub fn query_takes_consistency(self) -> bool {
        self.at_least(Release(2, 5, 12))
    }

    /// `jobs/import/create` honours an `Idempotency-Key` header (2.6.24 and 3.0.2; milvus-docs
    /// idempotent-import.md): the same key, per collection, answers the original job for ~24 h.
    pub fn import_idempotency(self) -> bool {
        let r = self.release();
        r >= Release(3, 0, 2) || (r.0 == 2 && r >= Release(2, 6, 24))
    }

    /// Import jobs may wait for a commit (`options.auto_commit` "false", state Uncommitted,
    /// `jobs/import/commit` / `abort`; PR 48524: 3.0.0).
    pub fn two_phase_import(self) -> bool {
        self.at_least(Release(3, 0, 0)) && self != ServerKind::Zilliz
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self.known {
            Known::Given => "as given by --milvus-version",
            Known::Host => "from the endpoint's host",
            Known::Probed => {
                "probed: REST reports no version, so the oldest release of the line its answers allow; give --milvus-version for the exact one"
            }
        };
        match self.kind {
            ServerKind::Milvus(r) => write!(f, "Milvus {r} ({how})"),
            ServerKind::Zilliz => write!(f, "Zilliz Cloud ({how})"),
        }
    }
}

impl Target {
    /// What the server supports, one line each (`q2z doctor`).
    pub fn capabilities(&self) -> Vec<(&'static str, bool)> {
        let k = self.kind;
        vec![
            (
                "collections/flush (else nothing to flush: rows are sealed by the server)",
                k.has_flush(),
            ),
            ("nullable fields (promoted payload keys)", k.has_nullable()),
            ("empty sparse vectors in REST rows", k.takes_empty_sparse()),
            (
                "empty sparse vectors in Parquet imports",
                k.imports_empty_sparse(),
            ),
            (
                "queries honour consistencyLevel (else counts are read until stable)",
                k.query_takes_consistency(),
            ),
            ("JSON-path indexes on $meta keys", k.has_json_path_index()),
            ("GEOMETRY fields with RTREE (geo points)", k.has_geometry()),
            (
                "TIMESTAMPTZ fields (datetimes as instants)",
                k.has_timestamptz(),
            ),
            (
                "Array of Structs with MAX_SIM (multivectors kept whole)",
                k.has_struct_array(),
            ),
            ("Idempotency-Key on import jobs", k.import_idempotency()),
            (
                "two-phase import (auto_commit=false, commit/abort)",
                k.two_phase_import(),
            ),
        ]
    }
}

/// Whether an endpoint URL is a Zilliz Cloud cluster's.
pub fn is_zilliz_host(url: &str) -> bool {
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split(['/', ':'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    [
        "zillizcloud.com",
        "zilliz.com",
        "zilliz.com.cn",
        "zillizcloud.cn",
    ]
    .iter()
    .any(|d| host == *d || host.ends_with(&format!(".{d}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order_their_capabilities() {
        let v = |s| ServerKind::parse(s).unwrap();
        assert_eq!(v("2.4"), ServerKind::Milvus(Release(2, 4, 0)));
        assert_eq!(v("v2.6.24"), ServerKind::Milvus(Release(2, 6, 24)));
        assert_eq!(v("Zilliz"), ServerKind::Zilliz);
        for bad in ["2.3.9", "1.0", "2", "2.x", "2.4.1.1", ""] {
            assert_eq!(ServerKind::parse(bad), None, "{bad}");
        }
        assert!(!v("2.5.3").has_flush() && v("2.5.4").has_flush());
        assert!(!v("2.4.11").has_nullable() && v("2.5.0").has_nullable());
        assert!(!v("2.5.6").imports_empty_sparse() && v("2.5.7").imports_empty_sparse());
        assert!(!v("2.4.11").takes_empty_sparse() && v("2.4.12").takes_empty_sparse());
        assert!(!v("2.5.11").query_takes_consistency() && v("2.5.12").query_takes_consistency());
        assert!(!v("2.6.23").import_idempotency() && v("2.6.24").import_idempotency());
        assert!(!v("3.0.1").import_idempotency() && v("3.0.2").import_idempotency());
        assert!(v("3.0").two_phase_import() && !v("2.6.30").two_phase_import());
        assert!(v("zilliz").has_nullable() && !v("zilliz").two_phase_import());
    }

    #[test]
    fn zilliz_endpoints_are_told_by_their_host() {
        assert!(is_zilliz_host(
            "https://in01-abc.aws-us-west-2.vectordb.zillizcloud.com:19530"
        ));
        assert!(is_zilliz_host(
            "https://in01-x.api.gcp-us-west1.zillizcloud.com"
        ));
        assert!(!is_zilliz_host("http://localhost:19530"));
        assert!(!is_zilliz_host("http://notzillizcloud.com.evil:1"));
    }
}
