//! Repair and import recovery against the stand-ins: repair deletes exactly the staged ids of
//! the bad chunks (rows that did not come from the stage stay), re-sends chunks whose values
//! differ, refuses while jobs run; an import-job creation whose answer is lost creates no
//! second job; a ledger entry the manifest does not know is ignored.

mod common;

use common::*;
use q2z::stage::manifest::Manifest;
use serde_json::{Value, json};

fn expected(c: &str) -> u64 {
    scroll_all(c).len() as u64
}

fn count_where(name: &str, filter: &str) -> u64 {
    let v = milvus_post(
        "entities/query",
        json!({"collectionName": name, "filter": filter, "outputFields": ["count(*)"], "consistencyLevel": "Strong"}),
    );
    let c = &v["data"][0]["count(*)"];
    c.as_u64()
        .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
        .unwrap()
}

#[test]
fn repair_resends_value_differences_and_leaves_foreign_rows_alone() {
    let dir = tempfile::tempdir().unwrap();
    stage_export(
        dir.path(),
        "rx_",
        &["gen_ints"],
        &["--max-file-bytes", "20000", "--ranges", "2"],
    );
    let m = Manifest::load(dir.path()).unwrap().unwrap();
    let target = "rx_gen_ints";
    // The target exists already and holds a row that is not from the stage: id 38 lies inside a
    // chunk's key range (the source deleted it).
    milvus_post("collections/drop", json!({"collectionName": target}));
    let created = milvus_post(
        "collections/create",
        m.collections["gen_ints"].milvus_schema.clone(),
    );
    assert_eq!(created["code"], 0, "{created}");
    let foreign =
        json!({"id": 38, "vector": [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5], "owner": "not q2z"});
    let ins = milvus_post(
        "entities/insert",
        json!({"collectionName": target, "data": [foreign]}),
    );
    assert_eq!(ins["code"], 0, "{ins}");
    let (code, out, err) = import(dir.path(), "bulk", &["--into-existing"]);
    assert_eq!(code, 0, "{out}{err}");
    let want = expected("gen_ints");
    assert_eq!(target_count(target), want + 1);
    // One staged row's vector is changed in the target, another staged row is deleted.
    let row = milvus_post(
        "entities/query",
        json!({"collectionName": target, "filter": "id == 100", "outputFields": ["*"], "limit": 1}),
    );
    let mut row = row["data"][0].clone();
    row["vector"][0] = json!(row["vector"][0].as_f64().unwrap() + 1.0);
    let up = milvus_post(
        "entities/upsert",
        json!({"collectionName": target, "data": [row]}),
    );
    assert_eq!(up["code"], 0, "{up}");
    milvus_post(
        "entities/delete",
        json!({"collectionName": target, "filter": "id in [200]"}),
    );
    let (code, out, _) = verify(dir.path(), &["--full"]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("id 100: field 'vector' differs") && out.contains("id 200: missing"),
        "{out}"
    );
    // While a job holds a chunk, repair refuses and deletes nothing.
    let ledger_path = dir.path().join("import-state.json");
    let good = std::fs::read_to_string(&ledger_path).unwrap();
    let mut busy: Value = serde_json::from_str(&good).unwrap();
    for t in busy["targets"].as_object_mut().unwrap().values_mut() {
        let chunks = t["gen_ints"]["chunks"].as_object_mut().unwrap();
        let first = chunks.values_mut().next().unwrap();
        first["state"] = json!("importing");
        first["job"] = json!("424242");
    }
    std::fs::write(&ledger_path, serde_json::to_vec(&busy).unwrap()).unwrap();
    let a = repair_args(&[]);
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    let (code, out, err) = verify(dir.path(), &refs);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("still held by import jobs"), "{err}");
    assert_eq!(
        target_count(target),
        want,
        "nothing deleted by a refused repair"
    );
    std::fs::write(&ledger_path, good).unwrap();
    // Repair: exactly the staged ids of the bad chunks are deleted and sent again.
    let a = repair_args(&["--full"]);
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    let (code, out, err) = verify(dir.path(), &refs);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        count_where(target, "id == 38"),
        1,
        "the row that is not from the stage stays"
    );
    assert_eq!(target_count(target), want + 1);
    let (code, out, _) = verify(dir.path(), &["--full"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_lost_job_creation_answer_creates_no_second_job() {
    let dir = tempfile::tempdir().unwrap();
    stage_export(
        dir.path(),
        "lost_",
        &["gen_ints"],
        &["--max-file-bytes", "20000"],
    );
    milvus_faults(json!({"lose_import_answer_for": "lost_gen_ints"}));
    let (code, out, err) = import(dir.path(), "bulk", &["--drop-existing"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("looking for the job on the server"),
        "the lost answer was noticed: {err}"
    );
    assert_eq!(
        target_count("lost_gen_ints"),
        expected("gen_ints"),
        "each row once"
    );
    // A ledger entry the manifest does not know (an edited or foreign ledger) is ignored.
    let ledger_path = dir.path().join("import-state.json");
    let mut l: Value =
        serde_json::from_str(&std::fs::read_to_string(&ledger_path).unwrap()).unwrap();
    for t in l["targets"].as_object_mut().unwrap().values_mut() {
        t["gen_ints"]["chunks"]["gen_ints/part-9999-000000.parquet"] =
            json!({"state": "submitting", "attempts": 0});
    }
    std::fs::write(&ledger_path, serde_json::to_vec(&l).unwrap()).unwrap();
    let (code, out, err) = import(dir.path(), "bulk", &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(target_count("lost_gen_ints"), expected("gen_ints"));
}

#[test]
fn a_foreign_parquet_file_is_refused_with_its_name_not_a_panic() {
    use arrow::array::{Int64Array, ListArray, StringArray};
    use arrow::datatypes::{DataType, Field, Int32Type, Schema};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    stage_export(dir.path(), "foreign_", &["gen_ints"], &["--ranges", "1"]);
    // The first chunk replaced by a file of another writer: vectors as list<int32>. The
    // manifest is made to agree with it, as a careless copy could.
    let mpath = dir.path().join("manifest.json");
    let mut m: Value = serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
    let file = m["collections"]["gen_ints"]["chunks"][0]["file"]
        .as_str()
        .unwrap()
        .to_string();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new(
            "vector",
            DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
            false,
        ),
        Field::new("$meta", DataType::Utf8, false),
    ]));
    let vectors = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(
        (0..8).map(Some).collect::<Vec<_>>(),
    )]);
    let batch = arrow::record_batch::RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![2])),
            Arc::new(vectors),
            Arc::new(StringArray::from(vec!["{}"])),
        ],
    )
    .unwrap();
    let path = dir.path().join(&file);
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None)
            .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    m["collections"]["gen_ints"]["chunks"][0]["sha256"] = json!(sha);
    m["collections"]["gen_ints"]["chunks"][0]["bytes"] = json!(bytes.len());
    std::fs::write(&mpath, serde_json::to_vec(&m).unwrap()).unwrap();
    let (code, out, err) = import(dir.path(), "upsert", &["--drop-existing", "-c", "gen_ints"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(&file) && err.contains("'vector' is not list<float32>"),
        "names the file and the column: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
