"""Array of Structs fields over REST, as the Milvus 3.0 line answers them (milvus-io/milvus PR
49165: internal/distributed/proxy/httpserver `handler_v2.go` createCollection reading
`schema.structFields`, `struct_array_v2.go` for rows and answers). Earlier lines' REST request
structs have no `structFields`: gin drops the key unread (see `struct_fields`).

Milvus Lite 2.5.1 has no such type: a struct field's rows live under its name in the engine's
dynamic field (as the stand-in's GEOMETRY values do), and a search on its sub-vector `F[v]`
with a MAX_SIM metric is answered by brute force over the collection's rows.
"""

import math

import numpy as np

MAX_CAPACITY = 4096  # typeutil: an array's max_capacity is in (0, 4096]
SUB_TYPES = ("Array", "ArrayOfVector")
MAXSIM = ("MAX_SIM", "MAX_SIM_COSINE", "MAX_SIM_IP", "MAX_SIM_L2")


def struct_fields(st, schema):
    """The `structFields` of a create request's schema the release reads (3.0.0+; before,
    handler_v2.go's request struct has no such member and the key is dropped)."""
    if not st.at_least(3, 0, 0):
        return []
    return schema.get("structFields") or []


def check_create(api_error, structs, names):
    """handler_v2.go createCollection, the struct part: a name unique among the fields, short
    sub-field names of type Array or ArrayOfVector, `max_capacity` on every sub-field, and no
    nullable / defaultValue / key flags on sub-fields (PR 49165 "Reject nullable / defaultValue
    on sub-fields"). Returns {struct name: {sub name: sub}} and the count of vector sub-fields."""
    out, nvec = {}, 0
    for s in structs:
        sname = s.get("fieldName")
        if not sname:
            raise api_error(1802, "missing required parameters, required parameters: [fieldName]")
        if sname in names:
            raise api_error(1100, f"duplicated field name: {sname}: invalid parameter")
        names.add(sname)
        subs = {}
        for sub in s.get("fields") or []:
            name, dt = sub.get("fieldName"), sub.get("dataType")
            if dt not in SUB_TYPES:
                raise api_error(1100, f"struct field {sname} sub-field {name}: data type {dt} is not supported in a struct (Array or ArrayOfVector): invalid parameter")
            for key in ("nullable", "defaultValue", "isPrimary", "isPartitionKey", "isClusteringKey"):
                if sub.get(key):
                    raise api_error(1100, f"struct field {sname} sub-field {name}: {key} is not supported on struct sub-fields: invalid parameter")
            p = {str(k): v for k, v in (sub.get("elementTypeParams") or {}).items()}
            cap = int(p.get("max_capacity", 0))
            if not 0 < cap <= MAX_CAPACITY:
                raise api_error(1100, f"type param(max_capacity) should be specified for the field({sname}[{name}]) of collection and in (0, {MAX_CAPACITY}]: invalid parameter")
            if dt == "ArrayOfVector":
                if sub.get("elementDataType") != "FloatVector":
                    raise api_error(1100, f"stand-in limitation: ArrayOfVector sub-field {name} of {sname} with elementDataType {sub.get('elementDataType')} (this stand-in keeps FloatVector ones only): invalid parameter")
                dim = int(p.get("dim", 0))
                if not 2 <= dim <= 32768:
                    raise api_error(1100, f"invalid dimension: {dim}. should be in range 2 ~ 32768: invalid parameter")
                nvec += 1
            subs[name] = sub
        if not subs:
            raise api_error(1100, f"struct field {sname} has no sub-field: invalid parameter")
        out[sname] = subs
    return out, nvec


def index_target(structs, field):
    """(struct name, sub-field) of an index / search field `F[v]`
    (typeutil.ConcatStructFieldName), or None."""
    if not field or not field.endswith("]") or "[" not in field:
        return None
    sname, sub = field[:-1].split("[", 1)
    s = structs.get(sname)
    if s is None or sub not in s:
        return None
    return sname, sub


def describe(structs, first_id):
    """httpserver printStructArrayFieldsV2: one entry per struct, type ArrayOfStruct, its
    sub-fields by short name."""
    out = []
    for i, (sname, subs) in enumerate(structs.items()):
        fields = []
        for name, sub in subs.items():
            params = [{"key": k, "value": str(v)} for k, v in (sub.get("elementTypeParams") or {}).items()]
            fields.append({"name": name, "type": sub["dataType"], "elementType": sub.get("elementDataType", ""), "params": params})
        out.append({"name": sname, "id": first_id + i, "description": "", "nullable": False,
                    "type": "ArrayOfStruct", "fields": fields})
    return out


def f32(x):
    # Stored as float32; Go prints a float32 in its shortest form.
    return float(str(np.float32(x)))


def row_value(api_error, sname, subs, v, from_rest):
    """struct_array_v2.go parseStructArrayRow + buildStructSubVectorArray (REST, code 1100) or
    the Parquet reader (import, 2100): a list of objects, every one holding every sub-field; each
    vector of the declared dim; at most max_capacity elements. Returns the stored list."""
    code, tail = (1100, "invalid parameter") if from_rest else (2100, "importing data failed")
    if v is None:
        raise api_error(1804 if from_rest else 2100, f"field {sname} is not nullable" + ("" if from_rest else f": {tail}"))
    if not isinstance(v, list):
        raise api_error(code, f"struct array field {sname} expects a JSON array of objects: {tail}")
    out = []
    for i, elem in enumerate(v):
        if not isinstance(elem, dict):
            raise api_error(code, f"struct array field {sname} element #{i} must be a JSON object: {tail}")
        kept = {}
        for name, sub in subs.items():
            if name not in elem:
                raise api_error(code, f"struct array field {sname} element #{i} missing sub-field {name}: {tail}")
            x = elem[name]
            p = sub.get("elementTypeParams") or {}
            if sub["dataType"] == "ArrayOfVector":
                dim = int(p["dim"])
                if not isinstance(x, list) or any(isinstance(y, bool) or not isinstance(y, (int, float)) for y in x):
                    raise api_error(code, f"sub-field {sname}[{name}] parse error: expect float vector array (value={x}): {tail}")
                if len(x) != dim:
                    raise api_error(code, f"sub-field {sname}[{name}] vector dim mismatch: expect {dim}, got {len(x)}: {tail}")
                kept[name] = [f32(y) for y in x]
            else:
                kept[name] = x
        out.append(kept)
    for name, sub in subs.items():
        cap = int((sub.get("elementTypeParams") or {})["max_capacity"])
        if len(out) > cap:
            raise api_error(code, f"the length ({len(out)}) of struct array field ({sname}[{name}]) exceeds max capacity ({cap}): {tail}")
    return out


def check_parquet(api_error, sname, subs, t, pa):
    """importutilv2/parquet struct_field_reader.go: a list of structs whose members are named
    by the short sub-field names, each vector a list of floats."""
    def fail(why):
        return api_error(2100, f"{why}: importing data failed")
    if not pa.types.is_list(t) or not pa.types.is_struct(t.value_type):
        raise fail(f"struct field is not a list of structs (field {sname}, file type {t})")
    members = {t.value_type.field(i).name: t.value_type.field(i).type for i in range(t.value_type.num_fields)}
    for name, sub in subs.items():
        if name not in members:
            raise fail(f"field not found in struct: {name} (field {sname})")
        mt = members[name]
        if sub["dataType"] == "ArrayOfVector" and not (pa.types.is_list(mt) and pa.types.is_floating(mt.value_type)):
            raise fail(f"vector dimension mismatch for field {sname}[{name}]: file type {mt}")


def maxsim(metric, query, doc):
    """MaxSim of one embedding list against one row's: for each query vector the best score
    among the row's vectors, summed (Milvus docs, array-of-structs "MAX_SIM"; COSINE and IP:
    larger is nearer; L2: the squared distance, smaller is nearer)."""
    d = np.asarray(doc, dtype=np.float32)
    total = 0.0
    for q in np.asarray(query, dtype=np.float32):
        if metric == "L2":
            total += float(np.min(np.sum((d - q) ** 2, axis=1)))
        elif metric == "IP":
            total += float(np.max(d @ q))
        else:
            qn = np.linalg.norm(q)
            dn = np.linalg.norm(d, axis=1)
            sims = (d @ q) / np.where(dn * qn == 0, math.inf, dn * qn)
            total += float(np.max(sims))
    return total


def search(api_error, rows, sname, sub, metric, queries, limit, pk):
    """The `limit` rows nearest to each embedding list of `queries` (one list per query) by
    MaxSim over sub-field `sub` of struct `sname`: [(row, score)] per query."""
    if metric not in MAXSIM:
        raise api_error(1100, f"stand-in limitation: {sname}[{sub}] is searched by MAX_SIM metrics only (element-level search with {metric} is not reproduced): invalid parameter")
    base = "COSINE" if metric == "MAX_SIM" else metric[len("MAX_SIM_"):]
    out = []
    for q in queries:
        if not isinstance(q, list) or not q or not all(isinstance(x, list) for x in q):
            raise api_error(1100, f"a search on {sname}[{sub}] takes one embedding list (a list of vectors) per query: invalid parameter")
        scored = []
        for r in rows:
            elems = r.get(sname) or []
            vecs = [e[sub] for e in elems if sub in e]
            if vecs:
                scored.append((r, maxsim(base, q, vecs)))
        scored.sort(key=lambda x: (x[1] if base == "L2" else -x[1], str(x[0][pk])))
        out.append(scored[:limit])
    return out
