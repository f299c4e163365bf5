//! Faults in the Qdrant stand-in (5xx bursts, 429 with Retry-After, resets mid-body, slow
//! pages) must not lose or double a point. Its own test binary: faults are server-wide.

mod common;

use common::*;
use serde_json::json;

#[test]
fn faults_do_not_lose_or_double_points() {
    let dir = tempfile::tempdir().unwrap();
    qdrant_faults(
        json!({"error_status": 503, "error_count": 3, "rate_limit_count": 2, "retry_after": 1, "reset_count": 2, "slow_ms": 20}),
    );
    let (code, out, err) = live_export(
        dir.path(),
        &["gen_ints"],
        &["--page-size", "50", "--ranges", "2"],
    );
    qdrant_faults(json!({}));
    assert_eq!(code, 0, "{out}{err}");
    let (rows, mapping, _) = staged_rows(dir.path(), "gen_ints");
    assert_rows_match(&scroll_all("gen_ints"), &rows, &mapping);
}
