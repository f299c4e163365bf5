//! A real Milvus parser judges the staged files: q2z-staged Parquet (Int64 and VarChar keys,
//! one FloatVector, `$meta`) goes through the bulk import of the embedded Milvus 2.3.5 server
//! (started by scripts/standins.sh in a loopback-only network namespace), then counts and
//! every value are compared.

mod common;

use common::*;
use std::process::Command;

fn conformance(collection: &str, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["--max-file-bytes", "40000"];
    args.extend_from_slice(extra);
    let (code, out, err) = live_export(dir.path(), &[collection], &args);
    assert_eq!(code, 0, "{out}{err}");
    let ns = standin("Q2Z_M23_NETNS");
    assert_ne!(
        ns, "none",
        "Milvus 2.3.5 is not running: scripts/standins.sh start starts it"
    );
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("standins/milvus23/conformance.py");
    let out = Command::new("ip")
        .args(["netns", "exec", &ns, &standin("Q2Z_M23_PYTHON")])
        .arg(script)
        .args([
            dir.path().to_str().unwrap(),
            collection,
            "127.0.0.1:9000",
            "minioadmin",
            "minioadmin",
            "milvus-bucket",
        ])
        .output()
        .expect("run the conformance script");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    let line = text
        .lines()
        .find(|l| l.ends_with(" passed, 0 failed"))
        .unwrap_or_else(|| panic!("{text}"));
    let passed: usize = line.split_whitespace().next().unwrap().parse().unwrap();
    assert!(passed > 100, "the script checked too little: {line}");
}

#[test]
fn int64_keys_import_into_real_milvus_2_3_5() {
    conformance("gen_ints", &[]);
}

#[test]
fn varchar_keys_import_into_real_milvus_2_3_5() {
    conformance("fx_uuid_mixed", &[]);
}
