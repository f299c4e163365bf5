//! Malformed snapshot files: each gives its clear error and writes nothing outside the work
//! directory.

mod common;

use common::*;
use std::io::Write;
use std::path::Path;

fn export_file(file: &Path, work: &Path) -> (i32, String) {
    let stage = work.join("stage");
    let out = std::process::Command::new(q2z_bin())
        .args([
            "export",
            "--snapshot",
            file.to_str().unwrap(),
            "--as",
            "x",
            "--stage",
            stage.to_str().unwrap(),
        ])
        .current_dir(work)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn raw_tar(entries: &[(&str, &[u8], tar::EntryType)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data, kind) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        // Write the name bytes directly so that `..` and absolute paths survive.
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn malformed_snapshots_are_refused_clearly() {
    let root = tempfile::tempdir().unwrap();
    let work = root.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = root.path().join(name);
        std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
        p
    };
    let cases: Vec<(std::path::PathBuf, &str)> = vec![
        (
            write(
                "escape.snapshot",
                &raw_tar(&[
                    ("config.json", b"{}", tar::EntryType::Regular),
                    ("../evil.txt", b"x", tar::EntryType::Regular),
                ]),
            ),
            "unsafe tar entry",
        ),
        (
            write(
                "abs.snapshot",
                &raw_tar(&[("/tmp/q2z-evil.txt", b"x", tar::EntryType::Regular)]),
            ),
            "unsafe tar entry",
        ),
        (
            write(
                "link.snapshot",
                &raw_tar(&[
                    ("config.json", b"{}", tar::EntryType::Regular),
                    ("0/segments/a", b"", tar::EntryType::Symlink),
                ]),
            ),
            "link entry",
        ),
        (
            write(
                "random.snapshot",
                &(0..4096)
                    .map(|i| (i * 7919 % 251) as u8)
                    .collect::<Vec<_>>(),
            ),
            "snapshot",
        ),
        (
            write(
                "rocks.snapshot",
                &raw_tar(&[
                    ("config.json", b"{}", tar::EntryType::Regular),
                    (
                        "0/segments/s/snapshot/db_backup/CURRENT",
                        b"x",
                        tar::EntryType::Regular,
                    ),
                ]),
            ),
            "RocksDB",
        ),
        (
            write(
                "notsnap.snapshot",
                &raw_tar(&[("hello.txt", b"hi", tar::EntryType::Regular)]),
            ),
            "not a Qdrant snapshot",
        ),
    ];
    for (file, want) in cases {
        let (code, err) = export_file(&file, &work);
        assert_ne!(code, 0, "{}: {err}", file.display());
        assert!(
            err.contains(want),
            "{}: expected '{want}' in: {err}",
            file.display()
        );
    }
    // Truncated copy of a real snapshot.
    let real = std::fs::read(fixtures().join("fx_named.collection.snapshot")).unwrap();
    let file = write("trunc.snapshot", &real[..real.len() / 3]);
    let (code, err) = export_file(&file, &work);
    assert_ne!(code, 0);
    assert!(err.contains("truncated or corrupt"), "{err}");
    assert!(
        !root.path().join("evil.txt").exists() && !Path::new("/tmp/q2z-evil.txt").exists(),
        "nothing written outside"
    );
    let mut left: Vec<String> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert!(
        left.iter().all(|n| n == "work" || n.ends_with(".snapshot")),
        "{left:?}"
    );
}
