"""Real Milvus import conformance: pushes q2z-staged Parquet files through the bulk import of
the embedded Milvus 2.3.5 server (its own Parquet parser) and checks counts and values.

Run inside the network namespace where milvus-server and its S3 (s3-standin) listen:
  python conformance.py STAGE_DIR COLLECTION S3_ENDPOINT_HOSTPORT ACCESS_KEY SECRET_KEY BUCKET
Prints 'N passed, M failed' and exits non-zero on any failure.
"""
import json
import sys
import time

import pyarrow.parquet as pq
from pyarrow import fs as pafs
from pymilvus import BulkInsertState, Collection, CollectionSchema, DataType, FieldSchema, connections, utility

stage, coll, s3, ak, sk, bucket = sys.argv[1:7]
manifest = json.load(open(f"{stage}/manifest.json"))
entry = manifest["collections"][coll]
m = entry["mapping"]
vecs = [v for v in m["vectors"]]
assert len(vecs) == 1 and vecs[0]["kind"] == "FloatVector", "Milvus 2.3.5 takes one FloatVector field"
vf = vecs[0]["field"]
name = "conf_" + m["target"]
passed, failed = 0, 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, flush=True)


connections.connect(host="127.0.0.1", port="19530")
if utility.has_collection(name):
    utility.drop_collection(name)
pk = (FieldSchema(m["id_field"], DataType.INT64, is_primary=True) if m["id_kind"] == "Int64"
      else FieldSchema(m["id_field"], DataType.VARCHAR, is_primary=True, max_length=m.get("id_max_length", 64)))
col = Collection(name, CollectionSchema([pk, FieldSchema(vf, DataType.FLOAT_VECTOR, dim=vecs[0]["dim"])], enable_dynamic_field=True))
col.create_index(vf, {"index_type": "FLAT", "metric_type": vecs[0]["metric"], "params": {}})
col.load()

s3fs = pafs.S3FileSystem(access_key=ak, secret_key=sk, endpoint_override=s3, scheme="http", region="us-east-1")
staged = 0
rows = {}
for c in entry["chunks"]:
    key = f"conformance/{name}/{c['file'].split('/')[-1]}"
    with open(f"{stage}/{c['file']}", "rb") as f, s3fs.open_output_stream(f"{bucket}/{key}") as out:
        out.write(f.read())
    tid = utility.do_bulk_insert(collection_name=name, files=[key])
    while True:
        st = utility.get_bulk_insert_state(task_id=tid)
        if st.state in (BulkInsertState.ImportCompleted, BulkInsertState.ImportFailed, BulkInsertState.ImportFailedAndCleaned):
            break
        time.sleep(0.3)
    check(st.state == BulkInsertState.ImportCompleted, f"import of {c['file']}: {st.state_name} {st.failed_reason}")
    staged += c["rows"]
    t = pq.read_table(f"{stage}/{c['file']}").to_pydict()
    for i in range(len(t[m["id_field"]])):
        rows[t[m["id_field"]][i]] = (t[vf][i], json.loads(t["$meta"][i]))

col.release()
col.load()
deadline = time.time() + 90
while True:
    cnt = col.query(expr="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
    if cnt >= staged or time.time() > deadline:
        break
    time.sleep(0.5)
check(cnt == staged, f"count(*) {cnt} == staged {staged}")

ids = list(rows)
for i in range(0, len(ids), 100):
    batch = ids[i:i + 100]
    expr = f"{m['id_field']} in {json.dumps(batch)}"
    got = col.query(expr=expr, output_fields=["*"], consistency_level="Strong")
    byid = {g[m["id_field"]]: g for g in got}
    for k in batch:
        g = byid.get(k)
        if g is None:
            check(False, f"id {k} missing")
            continue
        vec, meta = rows[k]
        check([float(x) for x in g[vf]] == [float(x) for x in vec], f"id {k}: vector")
        dyn = {kk: vv for kk, vv in g.items() if kk not in (m["id_field"], vf)}
        # Milvus 2.3.5 gRPC returns null-valued dynamic keys as None: compare JSON-equal.
        check(dyn == meta, f"id {k}: $meta {json.dumps(dyn)[:200]} != {json.dumps(meta)[:200]}")

utility.drop_collection(name)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
