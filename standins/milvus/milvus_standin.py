"""Milvus REST v2 (and Zilliz control-plane import) stand-in over a real Milvus engine.

The engine is Milvus Lite 2.5.1 (Milvus 2.5's C++ core) through pymilvus. This server speaks the
documented REST v2 JSON (HTTP 200 with a non-zero `code` on errors, Bearer auth), and runs
import jobs that read Parquet files from the S3 stand-in with pyarrow, enforcing the column
rules Milvus 2.5's import parser applies, then insert the rows into the engine.

Run: python milvus_standin.py --port 0 --data DIR --token root:Milvus --s3-endpoint URL \
        --s3-access-key AK --s3-secret-key SK --bucket milvus-bucket --addr-file FILE \
        [--milvus-version 2.4.9|2.5.16|2.6.24|3.0.2]

`--milvus-version` picks the REST behaviour of that release where the lines differ; each
difference names the milvus-io/milvus change (PR) and the Go function it is in (see `at_least`).
"""

import argparse
import base64
import json
import urllib.request
import math
import os
import re
import struct
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs
from pymilvus import DataType, MilvusClient
from pymilvus.exceptions import MilvusException

import struct_arrays as sa

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TYPES = {
    "Bool": DataType.BOOL, "Int8": DataType.INT8, "Int16": DataType.INT16, "Int32": DataType.INT32,
    "Int64": DataType.INT64, "Float": DataType.FLOAT, "Double": DataType.DOUBLE,
    "VarChar": DataType.VARCHAR, "JSON": DataType.JSON, "Array": DataType.ARRAY,
    "FloatVector": DataType.FLOAT_VECTOR, "Float16Vector": DataType.FLOAT16_VECTOR,
    "BFloat16Vector": DataType.BFLOAT16_VECTOR, "BinaryVector": DataType.BINARY_VECTOR,
    "SparseFloatVector": DataType.SPARSE_FLOAT_VECTOR,
}
VECTOR_TYPES = {"FloatVector", "Float16Vector", "BFloat16Vector", "BinaryVector", "SparseFloatVector"}
MAX_VECTOR_FIELDS = 4          # Milvus 2.5 (proxy.maxVectorFieldNum)
MAX_VARCHAR = 65535
JSON_MAX = 65536               # common.JSONMaxLength, insert path


# GEOMETRY (2.6.4+, docs geometry-field.md): rows carry WKT; the proxy turns it into WKB with
# go-geom v1.6.1 (pkg/common/common.go ConvertWKTToWKB: wkt.Unmarshal, wkb.Marshal) and back
# into WKT for query and search output (ConvertWKBToWKT: wkt.Marshal, no options). The engine
# here (Milvus Lite 2.5.1) has no such type: the value is kept as the WKT go-geom would write.
WKT_DEPTH = {"POINT": 1, "LINESTRING": 1, "POLYGON": 2, "MULTIPOINT": 1, "MULTILINESTRING": 2, "MULTIPOLYGON": 3}


def _wkt_nest(tokens, i):
    """One parenthesised list from tokens[i] == '(': coordinates (tuples) and sub-lists."""
    items = []
    i += 1
    while True:
        if tokens[i] == "(":
            sub, i = _wkt_nest(tokens, i)
            items.append(sub)
        else:
            coord = []
            while tokens[i] not in ("(", ")", ","):
                coord.append(float(tokens[i]))
                i += 1
            if not coord:
                raise ValueError(f"unexpected '{tokens[i]}'")
            items.append(tuple(coord))
        if tokens[i] == ",":
            i += 1
        elif tokens[i] == ")":
            return items, i + 1
        else:
            raise ValueError(f"unexpected '{tokens[i]}'")


def go_wkt(text):
    """WKT as Milvus answers it after storing it: go-geom's parser (keywords in any case, any
    spacing, both MULTIPOINT forms; a linestring needs 2 points, a polygon ring 4 and closed),
    then its encoder (encoding/wkt encode.go: `KIND (`…`)`, coordinates as
    strconv.FormatFloat(x, 'f', -1, 64), members joined by ", ", MULTIPOINT without inner
    parentheses). ValueError: the text go-geom refuses."""
    m = re.match(r"\s*([A-Za-z]+)\s*(ZM|Z|M)?\s*(.*?)\s*$", str(text), re.S | re.I)
    kind = m and m.group(1).upper()
    if kind not in WKT_DEPTH:
        raise ValueError("syntax error: invalid keyword at line 1, pos 0")
    layout, body = (m.group(2) or "").upper(), m.group(3)
    head = kind + " " + (layout + " " if layout else "")
    if body.upper() == "EMPTY":
        return head + "EMPTY"
    tokens = re.findall(r"[()]|,|[^\s(),]+", body)
    if not tokens or tokens[0] != "(":
        raise ValueError("syntax error: unexpected token at line 1, pos 0")
    try:
        tree, end = _wkt_nest(tokens, 0)
    except IndexError:
        raise ValueError("syntax error: unexpected end of input")
    if end < len(tokens):
        raise ValueError("syntax error: unexpected token after the geometry")
    num = lambda x: np.format_float_positional(x, unique=True, trim="-")
    coord = lambda c: " ".join(num(x) for x in c)
    def line(pts, least, closed=False):
        if any(not isinstance(p, tuple) for p in pts) or len(pts) < least or (closed and pts[0] != pts[-1]):
            raise ValueError("syntax error: " + ("polygon ring not closed" if closed else "too few points"))
        return "(" + ", ".join(coord(p) for p in pts) + ")"
    poly = lambda rings: "(" + ", ".join(line(r, 4, True) for r in rings) + ")"
    if kind == "POINT":
        return head + line(tree, 1) if len(tree) == 1 else head + line([], 1)
    if kind == "MULTIPOINT":
        pts = [p[0] if isinstance(p, list) and len(p) == 1 else p for p in tree]
        return head + line(pts, 1)
    if kind == "LINESTRING":
        return head + line(tree, 2)
    if kind == "MULTILINESTRING":
        return head + "(" + ", ".join(line(l, 2) for l in tree) + ")"
    if kind == "POLYGON":
        return head + poly(tree)
    return head + "(" + ", ".join(poly(p) for p in tree) + ")"


# TIMESTAMPTZ (2.6.6+): rows carry ISO-8601 text; the proxy parses it (validate_util.go
# checkTimestamptzFieldData → pkg/util/timestamptz ParseTimeTz) into int64 microseconds in UTC
# (UnixMicro: cut toward the earlier instant) and answers RFC 3339 in the collection's timezone
# (internal/proxy/util.go timestamptzUTC2IsoStr, FormatTimeMicroWithoutTrailingZeros). The
# stand-in keeps the text Milvus would answer with UTC, the default `timezone` property.
TSTZ_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})([T ])(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}(?::\d{2})?)?$")


def go_timestamptz(text):
    """ParseTimeTz's layouts, in its order: RFC3339Nano (`T`, then `Z` or ±HH:MM); a space
    instead of `T` with ±HH:MM, ±HH or `Z`; no offset (the collection's timezone: UTC). An
    offset outside -12..+14 h is refused. ValueError: text it refuses."""
    import datetime as dt
    m = TSTZ_RE.match(str(text))
    if not m:
        raise ValueError(text)
    y, mo, d, sep, h, mi, sec, frac, zone = m.groups()
    if sep == "T" and zone and zone != "Z" and ":" not in zone:
        raise ValueError(text)
    micros = int((frac or ".0")[1:7].ljust(6, "0"))
    t = dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec), micros)
    offset = dt.timedelta(0)
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        hh, mm = int(zone[1:3]), int(zone[4:6] or 0) if ":" in zone else 0
        if not -12 <= sign * hh <= 14:
            raise ValueError(text)
        offset = sign * dt.timedelta(hours=hh, minutes=mm)
    u = t - offset
    out = u.strftime("%Y-%m-%dT%H:%M:%S")
    if u.microsecond:
        out += ("." + f"{u.microsecond:06d}").rstrip("0")
    return out + "Z"


class RawInt(int):
    """A JSON integer with its text: Milvus parses REST rows with gjson, which keeps it."""
    raw = ""


class RawFloat(float):
    """A JSON number with a fraction or exponent, with its text (see RawInt)."""
    raw = ""


def raw_int(text):
    v = RawInt(text)
    v.raw = text
    return v


def raw_float(text):
    v = RawFloat(text)
    v.raw = text
    return v


def go_float(f):
    """A float64 as Go's encoding/json writes it and a JSON reader reads it back: an integral
    value below 1e21 prints without fraction or exponent (strconv 'f' format), so it comes back
    as an integer."""
    if math.isfinite(f) and f.is_integer() and abs(f) < 1e21:
        return int(f)
    return f


def through_float64(v):
    """A JSON value after Go decoded it into interface{} (every number a float64) and encoded it
    again: integers beyond 2^53 rounded, integral floats as integers."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return go_float(float(v))
    if isinstance(v, list):
        return [through_float64(x) for x in v]
    if isinstance(v, dict):
        return {k: through_float64(x) for k, x in v.items()}
    return v


INT64_RE = re.compile(r"^[+-]?[0-9]+$")


def cast_to_int64(text):
    """spf13/cast ToInt64 of a string (caste.go ToInt64E: strconv.ParseInt(s, 0, 0)), its error
    discarded as checkAndSetData discards it: anything ParseInt refuses (an exponent, a value
    outside Int64) is 0."""
    if not INT64_RE.match(text):
        return 0
    n = int(text)
    return n if -2**63 <= n < 2**63 else 0


def rest_dynamic_value(v):
    """A dynamic-field value of a REST insert/upsert row as Milvus stores it:
    internal/distributed/proxy/httpserver/utils.go, checkAndSetData, the `isDynamic` branch over
    gjson.Result: a number whose raw text holds a '.' goes through cast.ToFloat64, any other
    number through cast.ToInt64(mapValue.String()) (errors discarded); an object or array through
    gjson's Value() (every number a float64); the map is then json.Marshal-ed into $meta.
    (`null` values are skipped by the caller.)"""
    if isinstance(v, bool) or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        raw = getattr(v, "raw", "") or repr(v)
        if "." in raw:
            return go_float(float(raw))
        return cast_to_int64(raw)
    return through_float64(v)


def plain(v):
    """A value with RawInt/RawFloat turned back into int/float (what pymilvus is handed)."""
    if isinstance(v, bool):
        return v
    if isinstance(v, RawInt):
        return int(v)
    if isinstance(v, RawFloat):
        return float(v)
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v


class ApiError(Exception):
    def __init__(self, code, message, http=200):
        super().__init__(message)
        self.code, self.message, self.http = code, message, http


def parse_version(text):
    parts = [int(x) for x in text.lstrip("vV").split(".")]
    return tuple((parts + [0, 0, 0])[:3])


class State:
    def __init__(self, args):
        self.args = args
        self.version = parse_version(args.milvus_version)
        self.idempotency = {}  # (collection, Idempotency-Key) -> jobId (2.6.24+, 3.0.2+)
        # Milvus Lite keeps its mmap directory at $HOME/.cache/milvus (milvus-lite
        # src/segcore_wrapper.h, `data_path`) and Milvus's MmapChunkManager constructor
        # (internal/core/src/storage/MmapChunkManager.cpp) removes and recreates that directory
        # on the first collection of a process: stand-ins started side by side under one HOME
        # remove each other's, and the loser's MmapManager is never initialised ("Mmap manager
        # has not been init" on every create after). Each stand-in gets a HOME of its own.
        home = os.path.join(os.path.abspath(args.data), "home")
        os.makedirs(home, exist_ok=True)
        os.environ["HOME"] = home
        self.client = MilvusClient(f"{args.data}/milvus_lite.db")
        self.lock = threading.RLock()
        self.schemas = {}      # name -> create request (as given), for describe and import checks
        self.structs = {}      # name -> {struct field: {sub-field: schema}} (3.0 line, see struct_arrays)
        self.aliases = {}      # alias -> collection (Milvus Lite has no aliases; kept here)
        self.jobs = {}         # jobId -> job dict
        self.faults = {}
        self.next_job = int(time.time() * 1000) % 10**12
        self.databases = {"default"}  # each a namespace of collections (see in_database)
        self.collection_ids = {}  # name -> collectionID (see create_collection)
        self.next_collection_id = (int(time.time() * 1000) << 18)

    def s3(self, ak=None, sk=None):
        a = self.args
        host = a.s3_endpoint.split("://", 1)[-1]
        scheme = a.s3_endpoint.split("://", 1)[0] if "://" in a.s3_endpoint else "http"
        return pafs.S3FileSystem(access_key=ak or a.s3_access_key, secret_key=sk or a.s3_secret_key,
                                 endpoint_override=host, scheme=scheme, region="us-east-1")

    def at_least(self, *v):
        return self.version >= v

    def fault(self, name):
        with self.lock:
            n = self.faults.get(name, 0)
            if n > 0:
                self.faults[name] = n - 1
                return True
        return False


def ok(data=None):
    return {"code": 0, "data": {} if data is None else data}


def need(body, *keys):
    missing = [k for k in keys if k not in body or body[k] in (None, "")]
    if missing:
        raise ApiError(1802, "missing required parameters, required parameters: [%s]" % ", ".join(missing))


# ---------------------------------------------------------------- collections

def field_rows(req):
    return req["schema"]["fields"]


def create_collection(st, body):
    need(body, "collectionName")
    name = body["collectionName"]
    if not NAME_RE.match(name) or len(name) > 255:
        raise ApiError(1100, f"Invalid collection name: {name}. the first character of a collection name must be an underscore or letter: invalid parameter")
    schema = body.get("schema") or {}
    fields = schema.get("fields") or []
    if not fields:
        raise ApiError(1100, "quick create is not supported by this stand-in: send schema.fields")
    with st.lock:
        if st.client.has_collection(name):
            raise ApiError(65535, f"collection already exists[collection={name}]")
    if not st.at_least(2, 5, 0):
        # 2.4 (handler_v2.go createCollection, before PR 35825): the field schema has no
        # `nullable`; the key is dropped silently and the field is required.
        fields = [{k: v for k, v in f.items() if k not in ("nullable", "defaultValue")} for f in fields]
        body = dict(body, schema=dict(schema, fields=fields))
    # Nullable and GEOMETRY fields live in the engine's dynamic field (see below).
    nullable = any(f.get("nullable") or f.get("dataType") in ("Geometry", "Timestamptz") for f in fields)
    nullable = nullable or bool(sa.struct_fields(st, schema))
    s = MilvusClient.create_schema(auto_id=bool(schema.get("autoID", False)),
                                   enable_dynamic_field=bool(schema.get("enableDynamicField", False)) or nullable,
                                   description=body.get("description", ""))
    nvec = 0
    names = set()
    for f in fields:
        fname, dt = f.get("fieldName"), f.get("dataType")
        if not fname or not dt:
            raise ApiError(1802, "missing required parameters, required parameters: [fieldName, dataType]")
        if not NAME_RE.match(fname):
            raise ApiError(1100, f"Invalid field name: {fname}: invalid parameter")
        if fname in names:
            raise ApiError(1100, f"duplicated field name: {fname}: invalid parameter")
        names.add(fname)
        if dt == "Geometry" and not st.at_least(2, 6, 4):
            # handler_v2.go createCollection looks the name up in schemapb.DataType_value: a
            # 2.4 server's proto has no Geometry. (2.5's proto has the name since go-api 2.5.0,
            # and the type was backported late in the 2.5 line; what an earlier 2.5 answers
            # after the lookup is not confirmed: the stand-in answers as 2.4 does.)
            raise ApiError(1100, f"data type {dt} is invalid(case sensitive): invalid parameter")
        if dt == "Timestamptz" and not st.at_least(2, 6, 6):
            # As Geometry before 2.6.4 (docs: Timestamptz from 2.6.6; what 2.6.4/2.6.5 answer
            # is not confirmed).
            raise ApiError(1100, f"data type {dt} is invalid(case sensitive): invalid parameter")
        if dt not in TYPES and dt not in ("Geometry", "Timestamptz"):
            raise ApiError(1100, f"data type {dt} is invalid(case sensitive): invalid parameter")
        p = {str(k): v for k, v in (f.get("elementTypeParams") or {}).items()}
        kw = {}
        if dt in VECTOR_TYPES:
            nvec += 1
            if dt != "SparseFloatVector":
                dim = int(p.get("dim", 0))
                if not 2 <= dim <= 32768:
                    raise ApiError(1100, f"invalid dimension: {dim}. should be in range 2 ~ 32768: invalid parameter")
                kw["dim"] = dim
            elif "dim" in p:
                raise ApiError(1100, "dim should not be specified for sparse vector field: invalid parameter")
        if dt == "VarChar":
            ml = int(p.get("max_length", 0))
            if not 0 < ml <= MAX_VARCHAR:
                raise ApiError(1100, f"the maximum length specified for the field({fname}) should be in (0, 65535], but got {ml} instead: invalid parameter")
            kw["max_length"] = ml
        if dt == "Array":
            et = f.get("elementDataType")
            if et not in ("Bool", "Int8", "Int16", "Int32", "Int64", "Float", "Double", "VarChar"):
                raise ApiError(1100, f"element data type {et} is not valid for array field {fname}: invalid parameter")
            cap = int(p.get("max_capacity", 0))
            if not 0 < cap <= 4096:
                raise ApiError(1100, f"the maximum capacity specified for a Array should be in (0, 4096], got {cap}: invalid parameter")
            kw["element_type"], kw["max_capacity"] = TYPES[et], cap
            if et == "VarChar":
                ml = int(p.get("max_length", 0))
                if not 0 < ml <= MAX_VARCHAR:
                    raise ApiError(1100, f"type param(max_length) should be specified for the field({fname}) of collection: invalid parameter")
                kw["max_length"] = ml
        if f.get("isPartitionKey"):
            if dt not in ("Int64", "VarChar"):
                raise ApiError(1100, f"the data type of partition key should be Int64 or VarChar: invalid parameter")
            if f.get("nullable"):
                raise ApiError(1100, f"partition key field not support nullable: invalid parameter")
            if any(x.get("isPartitionKey") for x in fields if x is not f):
                raise ApiError(1100, "there are more than one partition key: invalid parameter")
            # Milvus Lite 2.5.1 cannot filter a partition-key collection ("primary_key_offset ==
            # -1"): the rules are enforced here and the engine gets a plain field.
        if dt in ("Geometry", "Timestamptz"):
            # Milvus Lite 2.5.1 has neither type: the text lives under the field's name in the
            # engine's dynamic field, as a nullable field's value does.
            continue
        if f.get("nullable"):
            if f.get("isPrimary") or dt in VECTOR_TYPES:
                raise ApiError(1100, "primary field not support null: invalid parameter" if f.get("isPrimary") else f"vector type not support null, fieldName: {fname}: invalid parameter")
            # Milvus Lite rejects nullable fields; the value (or null) lives under the field's
            # name in the engine's dynamic field, which reads back the same way in queries.
            continue
        s.add_field(fname, TYPES[dt], is_primary=bool(f.get("isPrimary")), **kw)
    structs, nsub = sa.check_create(ApiError, sa.struct_fields(st, schema), names)
    # Struct sub-vectors count toward proxy.maxVectorFieldNum.
    nvec += nsub
    if nsub and nvec == nsub:
        # Milvus 3.0.2 takes a collection whose only vectors are in a struct (PRs 51889/51890);
        # Milvus Lite 2.5.1 needs a vector field of its own.
        raise ApiError(1100, "stand-in limitation: a collection whose only vectors are struct sub-fields is not reproduced (Milvus Lite needs a plain vector field): invalid parameter")
    if nvec > MAX_VECTOR_FIELDS:
        raise ApiError(1100, f"maximum vector field's number should be limited to {MAX_VECTOR_FIELDS}: invalid parameter")
    if nvec == 0:
        raise ApiError(1100, "schema does not contain vector field: invalid parameter")
    index_params = body.get("indexParams") or []
    for ip in index_params:
        on_struct = sa.index_target(structs, ip.get("fieldName"))
        if ip.get("fieldName") not in names and not on_struct:
            # handler_v2.go createCollection, before anything is created (3.0 registers
            # `struct[sub]` names too; earlier lines never read structFields).
            raise ApiError(1802, f"missing required parameters, error: `{ip.get('fieldName')}` hasn't defined in schema")
        idx = ip.get("indexType") or "AUTOINDEX"
        prm = ip.get("params") or {}
        if on_struct:
            # An embedding-list index: MAX_SIM_* (or a plain metric, element-level) by HNSW.
            if idx not in ("HNSW", "AUTOINDEX"):
                raise ApiError(1100, f"index type {idx} is not supported on {ip.get('fieldName')} (HNSW): invalid parameter")
            if ip.get("metricType") not in sa.MAXSIM + ("L2", "IP", "COSINE"):
                raise ApiError(1100, f"metric type {ip.get('metricType')} not found or not supported: invalid parameter")
            continue
        if idx == "HNSW":
            m, efc = int(prm.get("M", 30)), int(prm.get("efConstruction", 360))
            if not 2 <= m <= 2048 or efc < 1:
                raise ApiError(1100, f"invalid index params: M={m} efConstruction={efc}: invalid parameter")
        ftype = next((f.get("dataType") for f in fields if f.get("fieldName") == ip.get("fieldName")), None)
        if ftype not in VECTOR_TYPES:
            # indexparamcheck: rtree_checker.go (RTREE on geometry only), the others by type.
            ok_types = {"INVERTED": None, "AUTOINDEX": None, "STL_SORT": ("Int64", "Double", "Int32", "Float", "Timestamptz"),
                        "TRIE": ("VarChar",), "BITMAP": ("Int64", "VarChar", "Bool", "Array", "Int32"),
                        "RTREE": ("Geometry",)}
            if ftype == "Geometry" and idx not in ("RTREE", "AUTOINDEX"):
                raise ApiError(1100, f"invalid index type {idx} for {ftype} field {ip.get('fieldName')}: invalid parameter")
            if ftype == "Timestamptz" and idx not in ("STL_SORT", "AUTOINDEX"):
                raise ApiError(1100, f"{idx} are not supported on Timestamptz field: invalid parameter")
            if idx not in ok_types or (ok_types[idx] and ftype not in ok_types[idx]) or (ftype == "JSON" and not prm.get("json_path")):
                raise ApiError(1100, f"invalid index type {idx} for {ftype} field {ip.get('fieldName')}: invalid parameter")
            if ip.get("metricType"):
                raise ApiError(1100, f"metric type is not supported on scalar field {ip.get('fieldName')}: invalid parameter")
        if ip.get("metricType") not in ("L2", "IP", "COSINE", None):
            raise ApiError(1100, f"metric type {ip.get('metricType')} not found or not supported: invalid parameter")
    with st.lock:
        kw = {}
        if any(f.get("isPartitionKey") for f in fields):
            kw["num_partitions"] = int((body.get("params") or {}).get("partitionsNum", 16))
        st.client.create_collection(name, schema=s, **kw)
        st.schemas[name] = body
        st.structs[name] = structs
        # rootcoord's createCollectionTask (internal/rootcoord/create_collection_task.go)
        # allocates the collection id from the global id allocator: unique, increasing, never
        # reused for a collection created again under the same name. Milvus Lite reports 0.
        st.next_collection_id += 1
        st.collection_ids[name] = st.next_collection_id
    if index_params:
        build_indexes(st, name, index_params)
        with st.lock:
            st.client.load_collection(name)
    return ok()


JSON_CAST_TYPES = {"BOOL", "DOUBLE", "VARCHAR", "ARRAY_BOOL", "ARRAY_DOUBLE", "ARRAY_VARCHAR"}


def check_json_path_index(st, name, p, ftype):
    """A JSON-path index (Milvus >= 2.5.11): on a JSON field, or on a key of the dynamic field
    named by fieldName; INVERTED or AUTOINDEX, with json_path (starting with the field or key)
    and json_cast_type. Milvus Lite builds none: the request is checked and listed."""
    field = p["fieldName"]
    dynamic = bool(schema_of(st, name)["schema"].get("enableDynamicField"))
    if st.fault("old_milvus") or (ftype is None and not dynamic):
        raise ApiError(1100, f"cannot create index on non-exist field: {field}: invalid parameter")
    params = p.get("params") or {}
    path, cast = params.get("json_path"), str(params.get("json_cast_type", "")).upper()
    if p.get("indexType", "AUTOINDEX") not in ("INVERTED", "AUTOINDEX"):
        raise ApiError(1100, f"index type {p.get('indexType')} is not supported on JSON paths, use INVERTED or AUTOINDEX: invalid parameter")
    if not path or not str(path).startswith(field):
        raise ApiError(1100, f"json_path {path!r} must start with the field name {field}: invalid parameter")
    if cast not in JSON_CAST_TYPES:
        raise ApiError(1100, f"json_cast_type {params.get('json_cast_type')!r} is not supported, must be one of {sorted(JSON_CAST_TYPES)}: invalid parameter")


def build_indexes(st, name, index_params):
    """Milvus Lite builds FLAT (dense) and SPARSE_INVERTED_INDEX only; the requested HNSW params
    were validated and are reported by describe."""
    ip = st.client.prepare_index_params()
    built = 0
    for p in index_params:
        ftype = field_type(st, name, p["fieldName"])
        if sa.index_target(st.structs.get(name, {}), p["fieldName"]):
            continue  # an embedding-list index: checked at create, listed by describe
        if ftype in (None, "JSON"):
            check_json_path_index(st, name, p, ftype)
            continue
        if ftype not in VECTOR_TYPES:
            continue  # scalar indexes (RTREE included): checked at create, listed by describe
        built += 1
        if ftype == "SparseFloatVector":
            ip.add_index(p["fieldName"], index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        elif ftype in VECTOR_TYPES:
            ip.add_index(p["fieldName"], index_type="FLAT", metric_type=p.get("metricType") or "COSINE")
    with st.lock:
        if built:
            st.client.create_index(name, ip)
        st.schemas[name].setdefault("indexParams", [])
        have = {x["fieldName"] for x in st.schemas[name]["indexParams"]}
        st.schemas[name]["indexParams"] += [x for x in index_params if x["fieldName"] not in have]


def schema_of(st, name):
    with st.lock:
        if name not in st.schemas or not st.client.has_collection(name):
            raise ApiError(100, f"collection not found[collection={name}]")
        return st.schemas[name]


def field_type(st, name, field):
    for f in field_rows(schema_of(st, name)):
        if f["fieldName"] == field:
            return f["dataType"]
    return None


def describe(st, body):
    need(body, "collectionName")
    req = schema_of(st, body["collectionName"])
    fields = []
    for i, f in enumerate(field_rows(req)):
        params = [{"key": k, "value": str(v)} for k, v in (f.get("elementTypeParams") or {}).items()]
        extra = {"elementType": f["elementDataType"]} if f.get("elementDataType") else {}
        fields.append({**extra, "name": f["fieldName"], "id": 100 + i, "type": f["dataType"], "primaryKey": bool(f.get("isPrimary")),
                       "partitionKey": bool(f.get("isPartitionKey")), "clusteringKey": False, "autoId": bool(f.get("isPrimary")) and bool(req["schema"].get("autoID")),
                       "description": "", "nullable": bool(f.get("nullable")), "params": params})
    idx = [{"indexName": p.get("indexName", p["fieldName"]), "fieldName": p["fieldName"], "metricType": p.get("metricType", "")}
           for p in req.get("indexParams", [])][:1]
    load = st.client.get_load_state(body["collectionName"])["state"]
    # handler_v2.go describeCollection: "collectionID" is the id the root coordinator allocated
    # at creation (a collection dropped and created again under the same name gets another).
    cid = st.collection_ids.get(body["collectionName"], 0)
    return ok({"collectionName": body["collectionName"], "collectionID": cid, "description": req.get("description", ""),
               "autoId": bool(req["schema"].get("autoID")), "fields": fields, "functions": [], "aliases": [], "indexes": idx,
               "load": "LoadStateLoaded" if "Loaded" in str(load) else "LoadStateNotLoad", "shardsNum": 1, "partitionsNum": 1,
               # handler_v2.go describeCollection: the level set at create (params.consistencyLevel), else Bounded.
               "structFields": sa.describe(st.structs.get(body["collectionName"], {}), 100 + len(fields)),
               "consistencyLevel": (req.get("params") or {}).get("consistencyLevel", "Bounded"), "enableDynamicField": bool(req["schema"].get("enableDynamicField")), "properties": []})


# ---------------------------------------------------------------- rows

def check_row_dynamic(st, name, row, static):
    req = schema_of(st, name)
    dyn = {k: v for k, v in row.items() if k not in static}
    if dyn and not req["schema"].get("enableDynamicField"):
        raise ApiError(1804, "has pass more field without dynamic schema, please check it")
    if "$meta" in row:
        raise ApiError(1804, "the field $meta is reserved for dynamic fields; it cannot be passed")
    return dyn


def engine_row(st, name, row, from_rest):
    """Converts a REST/import row into what pymilvus inserts."""
    out = {}
    static = {f["fieldName"]: f for f in field_rows(schema_of(st, name))}
    for fname, f in static.items():
        dt = f["dataType"]
        if fname not in row:
            if f.get("nullable"):
                out[fname] = None
                continue
            if dt == "VarChar" and from_rest:
                out[fname] = ""
                continue
            raise ApiError(1804, f"field {fname} is missing in the row")
        v = row[fname]
        if v is None:
            if f.get("nullable"):
                out[fname] = None
                continue
            raise ApiError(1804, f"field {fname} is not nullable, but the row has null")
        if dt == "Int64":
            try:
                v = int(v)
            except (TypeError, ValueError):
                raise ApiError(1804, f"the {fname} field value {v!r} is not an Int64")
        elif dt == "VarChar":
            v = str(v)
            ml = int(f["elementTypeParams"]["max_length"])
            if len(v.encode()) > ml:
                raise ApiError(1100, f"the length ({len(v.encode())}) of varchar field ({fname}) exceeds max length ({ml}): invalid parameter")
        elif dt == "FloatVector":
            dim = int(f["elementTypeParams"]["dim"])
            if not isinstance(v, list) or len(v) != dim:
                raise ApiError(1804, f"fail to deal with the vector field {fname}: dimension mismatch, expect {dim}")
            v = [float(x) for x in v]
        elif dt == "Float16Vector":
            dim = int(f["elementTypeParams"]["dim"])
            if isinstance(v, str):
                raw = base64.b64decode(v)
                if len(raw) != 2 * dim:
                    raise ApiError(1804, f"fail to deal with the vector field {fname}: byte size mismatch")
                v = np.frombuffer(raw, dtype="<f2")
            elif isinstance(v, (bytes, bytearray)):
                v = np.frombuffer(bytes(v), dtype="<f2")
            elif from_rest and not st.at_least(2, 5, 0):
                # 2.4 utils.go checkAndSetData: a Float16Vector is []byte (json.Unmarshal: a
                # base64 string, or an array of 0..255 integers); float arrays came with PR
                # 37556 (2.5.0).
                if not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 255 for x in v):
                    raise ApiError(1804, f"fail to deal with the vector field {fname}: json: cannot unmarshal number into Go value of type uint8")
                if len(v) != 2 * dim:
                    raise ApiError(1804, f"fail to deal with the vector field {fname}: byte size mismatch")
                v = np.frombuffer(bytes(v), dtype="<f2")
            else:
                if len(v) != dim:
                    raise ApiError(1804, f"fail to deal with the vector field {fname}: dimension mismatch, expect {dim}")
                v = np.array(v, dtype=np.float32).astype(np.float16)
        elif dt == "SparseFloatVector":
            if from_rest and v in ({}, "{}") and not st.at_least(2, 4, 12):
                # utils.go checkAndSetData → typeutil.CreateSparseFloatRowFromJSON: an empty
                # row was refused until PR 36061 (2.4.12).
                raise ApiError(1804, f"fail to deal with the sparse vector field {fname}: empty JSON input")
            v = sparse_dict(v, fname)
        elif dt in ("Double", "Float"):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ApiError(1804, f"the {fname} field value {v!r} is not a {dt}")
            if not math.isfinite(v):
                raise ApiError(1804, f"value '{v}' is not a number or infinity, field {fname}")
            v = float(v)
        elif dt == "Bool":
            if not isinstance(v, bool):
                raise ApiError(1804, f"the {fname} field value {v!r} is not a Bool")
        elif dt == "Timestamptz":
            text = v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
            try:
                v = go_timestamptz(text)
            except ValueError:
                why = f"got invalid timestamptz string '{text}': invalid timezone name; must be a valid IANA Time Zone ID (e.g., 'Asia/Shanghai' or 'UTC')"
                if from_rest:
                    raise ApiError(1100, why + ": invalid parameter")
                raise ApiError(2100, why + ": importing data failed")
        elif dt == "Geometry":
            # REST: utils.go checkAndSetData keeps gjson's String() of the value (any JSON
            # becomes text); validate_util.go checkGeometryFieldData converts it to WKB, a
            # failure being merr.WrapErrParameterInvalidMsg (1100). An import fails its job.
            text = v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
            try:
                v = go_wkt(text)
            except ValueError as e:
                if from_rest:
                    raise ApiError(1100, f"invalid Geometry data, transform to wkb failed: {e}: invalid parameter")
                raise ApiError(2100, f"invalid Geometry data, transform to wkb failed: {e}: importing data failed")
        elif dt == "JSON":
            if isinstance(v, str) and not from_rest:
                v = json.loads(v)
            if len(json.dumps(v, separators=(",", ":")).encode()) > JSON_MAX:
                raise ApiError(1100, f"the length of JSON field {fname} exceeds max length ({JSON_MAX}): invalid parameter")
        elif dt == "Array":
            cap = int(f["elementTypeParams"]["max_capacity"])
            if not isinstance(v, list):
                raise ApiError(1804, f"the {fname} field value is not an array")
            if len(v) > cap:
                raise ApiError(1100, f"the length ({len(v)}) of array field ({fname}) exceeds max capacity ({cap}): invalid parameter")
            if any(x is None for x in v):
                raise ApiError(1804, f"array field {fname} has a null element")
        out[fname] = plain(v)
    structs = st.structs.get(name, {})
    for sname, subs in structs.items():
        if sname not in row:
            raise ApiError(1100, f"missing struct array field: {sname}: invalid parameter")
        out[sname] = sa.row_value(ApiError, sname, subs, row[sname], from_rest)
    dyn = check_row_dynamic(st, name, row, {**static, **structs})
    for k, v in dyn.items():
        if from_rest and v is None:
            continue  # Milvus's REST insert drops a null dynamic value
        out[k] = rest_dynamic_value(v) if from_rest else v
    if dyn:
        text = json.dumps({k: v for k, v in dyn.items()}, separators=(",", ":"), ensure_ascii=False)
        if len(text.encode()) > JSON_MAX and from_rest:
            raise ApiError(1100, f"the length ({len(text.encode())}) of dynamic field exceeds max length ({JSON_MAX}): invalid parameter")
    return out


def sparse_dict(v, fname):
    if isinstance(v, str):
        v = json.loads(v)
    if isinstance(v, dict) and "indices" in v and "values" in v:
        if len(v["indices"]) != len(v["values"]):
            raise ApiError(1804, f"sparse field {fname}: indices and values differ in length")
        d = {int(i): float(x) for i, x in zip(v["indices"], v["values"])}
        if len(d) != len(v["indices"]):
            raise ApiError(1804, f"sparse field {fname}: duplicate indices")
    elif isinstance(v, dict):
        d = {int(i): float(x) for i, x in v.items()}
    else:
        raise ApiError(1804, f"sparse field {fname}: not a sparse vector")
    for i, x in d.items():
        if x < 0 or i < 0 or i >= 2**32 - 1:
            raise ApiError(1804, f"sparse field {fname}: negative value or index out of range")
    return d


def write_rows(st, body, upsert):
    need(body, "collectionName", "data")
    name = body["collectionName"]
    schema_of(st, name)
    if st.fault("rate_limit"):
        raise ApiError(8, "rate limit exceeded[rate=0.1]")
    rows = body["data"] if isinstance(body["data"], list) else [body["data"]]
    conv = [engine_row(st, name, r, True) for r in rows]
    pk = primary(st, name)
    with st.lock:
        if upsert:
            res = st.client.upsert(name, conv)
            return ok({"upsertCount": res["upsert_count"], "upsertIds": [r[pk] for r in conv]})
        res = st.client.insert(name, conv)
        return ok({"insertCount": res["insert_count"], "insertIds": [r[pk] for r in conv]})


def primary(st, name):
    for f in field_rows(schema_of(st, name)):
        if f.get("isPrimary"):
            return f["fieldName"]
    return "id"


def out_row(st, name, r, allow_int64, exact=False):
    static = {f["fieldName"]: f for f in field_rows(schema_of(st, name))}
    structs = st.structs.get(name, {})
    o = {}
    for k, v in r.items():
        dt = static.get(k, {}).get("dataType")
        if k in structs:
            o[k] = v  # struct_array_v2.go extractStructArrayRow: the list of objects, float32s
        elif dt == "Float16Vector":
            raw = v[0] if isinstance(v, list) and v and isinstance(v[0], (bytes, bytearray)) else bytes(v)
            o[k] = base64.b64encode(raw).decode()     # Go marshals []byte as base64
        elif dt == "SparseFloatVector":
            o[k] = {str(i): float(x) for i, x in v.items()}
        elif dt == "FloatVector":
            o[k] = [float(str(np.float32(x))) for x in v]  # Go prints float32 in its shortest form
        elif dt == "Int64" and not allow_int64:
            o[k] = str(v)
        elif k not in static and not exact:
            # A dynamic key: buildQueryResp (httpserver/utils.go) json.Unmarshal-s $meta into
            # map[string]interface{}, so its numbers reach the answer through float64.
            o[k] = through_float64(v)
        else:
            o[k] = v
    return o


def query(st, body, allow_int64, exact=False):
    need(body, "collectionName")
    name = body["collectionName"]
    schema_of(st, name)
    out = body.get("outputFields") or ["*"]
    flt = body.get("filter", "")
    if not str(st.client.get_load_state(name)["state"]).endswith("Loaded"):
        raise ApiError(101, f"collection not loaded[collection={name}]")
    cl = body.get("consistencyLevel", "Bounded")
    if cl not in ("Strong", "Session", "Bounded", "Eventually", "Customized"):
        raise ApiError(1100, f"consistencyLevel can only be [Strong, Session, Bounded, Eventually, Customized], default: Bounded: invalid parameter")
    try:
        with st.lock:
            if any(o.lower() == "count(*)" for o in out):
                r = st.client.query(name, filter=flt, output_fields=["count(*)"], consistency_level="Strong")
                n = r[0]["count(*)"]
                return ok([{"count(*)": n if allow_int64 else str(n)}])
            limit = int(body.get("limit", 100))
            offset = int(body.get("offset", 0))
            if limit + offset > 16384:
                raise ApiError(1100, "invalid max query result window, (offset+limit) should be in range [1, 16384]: invalid parameter")
            r = st.client.query(name, filter=flt, output_fields=out, limit=limit, offset=offset, consistency_level="Strong")
    except MilvusException as e:
        raise ApiError(1100, f"{e.message}: invalid parameter")
    return ok([out_row(st, name, dict(x), allow_int64, exact) for x in r])


def search(st, body, allow_int64):
    """entities/search as Milvus 2.5 answers one query vector: a flat list of hits, each with
    the primary key, "distance" (COSINE/IP: similarity; L2: squared distance) and the output
    fields."""
    need(body, "collectionName", "data")
    name = body["collectionName"]
    schema_of(st, name)
    if not str(st.client.get_load_state(name)["state"]).endswith("Loaded"):
        raise ApiError(101, f"collection not loaded[collection={name}]")
    limit = int(body.get("limit", 100))
    if not 1 <= limit <= 16384:
        raise ApiError(1100, "topk should be in range [1, 16384]: invalid parameter")
    params = dict(body.get("searchParams") or {})
    pk = primary(st, name)
    out = [o for o in (body.get("outputFields") or []) if o != pk]
    # As Milvus's REST layer (convertQueries2Placeholder): float16 queries come as float arrays
    # (or base64 bytes), sparse ones as {"indices", "values"} or {"index": value}.
    data = body["data"]
    anns = body.get("annsField")
    on_struct = sa.index_target(st.structs.get(name, {}), anns)
    if on_struct:
        return maxsim_search(st, name, body, on_struct, limit, out, pk, allow_int64)
    ftype = field_type(st, name, anns)
    if ftype == "Float16Vector":
        data = [np.frombuffer(base64.b64decode(q), dtype="<f2") if isinstance(q, str)
                else np.array(q, dtype=np.float32).astype(np.float16) for q in data]
    elif ftype == "SparseFloatVector":
        data = [sparse_dict(q, anns) for q in data]
    try:
        with st.lock:
            r = st.client.search(name, data=data, limit=limit, anns_field=anns,
                                 filter=body.get("filter", ""), output_fields=out,
                                 search_params=params, consistency_level="Strong")
    except MilvusException as e:
        raise ApiError(1100, f"{e.message}: invalid parameter")
    hits = []
    for per_query in r:
        for h in per_query:
            row = dict(h.get("entity") or {})
            row[pk] = h["id"]
            row = out_row(st, name, row, allow_int64)
            row["distance"] = h["distance"]
            hits.append(row)
    return ok(hits)


def maxsim_search(st, name, body, on_struct, limit, out, pk, allow_int64):
    """A search on a struct's sub-vector `F[v]` (handler_v2.go search, `annsField` the
    concatenated name; `data` one embedding list per query), scored by brute force over the rows
    the filter keeps (see struct_arrays.search)."""
    sname, sub = on_struct
    metric = (body.get("searchParams") or {}).get("metricType") or "MAX_SIM_COSINE"
    with st.lock:
        rows = st.client.query(name, filter=body.get("filter", ""), output_fields=[pk, sname] + out,
                               limit=16384, consistency_level="Strong")
    hits = []
    for per_query in sa.search(ApiError, [dict(r) for r in rows], sname, sub, metric, body["data"], limit, pk):
        for r, score in per_query:
            row = out_row(st, name, {k: v for k, v in r.items() if k == pk or k in out}, allow_int64)
            row["distance"] = score
            hits.append(row)
    return ok(hits)


def get(st, body, allow_int64):
    need(body, "collectionName", "id")
    name = body["collectionName"]
    ids = body["id"] if isinstance(body["id"], list) else [body["id"]]
    pk = primary(st, name)
    flt = f"{pk} in {json.dumps(ids)}"
    return query(st, {"collectionName": name, "filter": flt, "outputFields": body.get("outputFields") or ["*"], "limit": max(len(ids), 1)}, allow_int64)


def delete(st, body):
    need(body, "collectionName")
    name = body["collectionName"]
    schema_of(st, name)
    flt = body.get("filter")
    if not flt:
        raise ApiError(1802, "missing required parameters, required parameters: [filter]")
    with st.lock:
        st.client.delete(name, filter=flt)
    return ok({})


# ---------------------------------------------------------------- import

def check_parquet(st, name, table):
    """Column rules of Milvus 2.5's Parquet import (reference §3)."""
    static = {f["fieldName"]: f for f in field_rows(schema_of(st, name))}
    dynamic = bool(schema_of(st, name)["schema"].get("enableDynamicField"))
    cols = {f.name: f.type for f in table.schema}
    structs = st.structs.get(name, {})
    for sname, subs in structs.items():
        if sname not in cols:
            raise ApiError(2100, f"no parquet field for milvus field '{sname}': importing data failed")
        sa.check_parquet(ApiError, sname, subs, cols[sname], pa)
    for c in cols:
        if c not in static and c not in structs and not (c == "$meta" and dynamic):
            raise ApiError(2100, f"the field: {c} is not in schema, if it's a dynamic field, please reformat data by bulk_writer: importing data failed")
    for fname, f in static.items():
        if fname not in cols:
            if f.get("nullable"):
                continue
            raise ApiError(2100, f"no parquet field for milvus field '{fname}': importing data failed")
        t, dt = cols[fname], f["dataType"]
        def mismatch(name_t):
            return ApiError(2100, f"field schema is not match, collection field dataType: {dt}, file field dataType:{name_t}: importing data failed")
        if pa.types.is_large_string(t):
            raise mismatch("large_utf8")
        if pa.types.is_fixed_size_list(t):
            raise mismatch("fixed_size_list")
        if pa.types.is_large_list(t):
            raise mismatch("large_list")
        # importutilv2/parquet field_reader.go ReadGeometryData: utf8 WKT only (ReadStringData
        # wants *array.String; binary WKB is refused).
        if dt in ("VarChar", "JSON", "SparseFloatVector", "Geometry", "Timestamptz") and not pa.types.is_string(t):
            raise mismatch(str(t))
        if dt == "Int64" and not pa.types.is_integer(t):
            raise mismatch(str(t))
        if dt in ("Double", "Float") and not (pa.types.is_integer(t) or pa.types.is_floating(t)):
            raise mismatch(str(t))
        if dt == "Bool" and not pa.types.is_boolean(t):
            raise mismatch(str(t))
        if dt == "Array":
            et = f["elementDataType"]
            ok_elem = pa.types.is_list(t) and (
                (et == "VarChar" and pa.types.is_string(t.value_type))
                or (et == "Bool" and pa.types.is_boolean(t.value_type))
                or (et in ("Int8", "Int16", "Int32", "Int64") and pa.types.is_integer(t.value_type))
                or (et in ("Float", "Double") and (pa.types.is_floating(t.value_type) or pa.types.is_integer(t.value_type))))
            if not ok_elem:
                raise mismatch(str(t))
        if dt == "FloatVector" and not (pa.types.is_list(t) and (pa.types.is_floating(t.value_type) or pa.types.is_integer(t.value_type))):
            raise mismatch(str(t))
        if dt == "Float16Vector" and not ((pa.types.is_list(t) and t.value_type == pa.uint8()) or pa.types.is_binary(t)):
            raise mismatch(str(t))
    if "$meta" in cols and not pa.types.is_string(cols["$meta"]):
        raise ApiError(2100, f"field schema is not match, collection field dataType: JSON, file field dataType:{'large_utf8' if pa.types.is_large_string(cols['$meta']) else cols['$meta']}: importing data failed")


def import_rows(st, name, table):
    static = {f["fieldName"]: f for f in field_rows(schema_of(st, name))}
    d = table.to_pydict()
    n = table.num_rows
    rows = []
    for i in range(n):
        row = {}
        for fname, f in static.items():
            if fname not in d:
                if f.get("nullable"):
                    row[fname] = None
                continue
            v = d[fname][i]
            dt = f["dataType"]
            if v is None:
                if f.get("nullable"):
                    row[fname] = None
                    continue
                raise ApiError(2100, f"the field '{fname}' has null value at row {i}: importing data failed")
            if dt == "JSON":
                try:
                    v = json.loads(v)
                except ValueError as e:
                    raise ApiError(2100, f"failed to parse value '{v}' for JSON field '{fname}', error: {e}: importing data failed")
            if dt == "Array":
                cap = int(f["elementTypeParams"]["max_capacity"])
                if len(v) > cap:
                    raise ApiError(2100, f"array capacity {len(v)} exceeds max_capacity {cap} of field '{fname}': importing data failed")
                if any(x is None for x in v):
                    raise ApiError(2100, f"array field '{fname}' has a null element at row {i}: importing data failed")
            if dt == "FloatVector":
                dim = int(f["elementTypeParams"]["dim"])
                if len(v) != dim:
                    raise ApiError(2100, f"vector dimension mismatch: the number of elements in list is not aligned with dim, expect {dim}, actual {len(v)}: importing data failed")
            if dt == "Float16Vector":
                dim = int(f["elementTypeParams"]["dim"])
                raw = bytes(v)
                if len(raw) != 2 * dim:
                    raise ApiError(2100, f"vector dimension mismatch: the number of bytes is not aligned with dim, expect {2 * dim}, actual {len(raw)}: importing data failed")
                v = np.frombuffer(raw, dtype="<f2")
            if dt == "SparseFloatVector":
                if v.strip() == "{}" and not st.at_least(2, 5, 7):
                    # importutilv2/parquet field_reader.go ReadSparseFloatVectorData: an empty
                    # row indexed the row at -1 (a panic, the job fails) until PR 40586 (2.5.7).
                    raise ApiError(2100, f"runtime error: index out of range [-1] (field {fname}, an empty sparse row): importing data failed")
                v = sparse_dict(v, fname)
            if dt == "VarChar":
                ml = int(f["elementTypeParams"]["max_length"])
                if len(v.encode()) > ml:
                    raise ApiError(2100, f"value length {len(v.encode())} exceeds max_length {ml} for field '{fname}': importing data failed")
            row[fname] = v
        for sname, subs in st.structs.get(name, {}).items():
            row[sname] = sa.row_value(ApiError, sname, subs, d[sname][i], False)
        if "$meta" in d:
            m = d["$meta"][i]
            if m is None:
                raise ApiError(2100, "unexpected end of JSON input: importing data failed")
            try:
                obj = json.loads(m)
            except ValueError as e:
                raise ApiError(2100, f"invalid JSON in $meta: {e}: importing data failed")
            if not isinstance(obj, dict):
                raise ApiError(2100, "the $meta value is not a JSON object: importing data failed")
            for k, v in obj.items():
                if k in static or k in st.structs.get(name, {}) or k == "$meta":
                    raise ApiError(2100, f"dynamic field name cannot include the static field name: {k}: importing data failed")
                row[k] = v
        rows.append(row)
    return rows


def run_job(st, job):
    try:
        if st.fault("stuck_import"):
            job["state"], job["progress"] = "Importing", 42
            return  # never finishes
        time.sleep(0.2)
        job["state"], job["progress"] = "Importing", 10
        if st.fault("fail_import"):
            raise ApiError(2100, "injected failure: importing data failed")
        tables = []
        for fs_, path, label in job["_files"]:
            try:
                with fs_.open_input_file(path) as f:
                    table = pq.read_table(f)
            except (OSError, pa.ArrowInvalid) as e:
                raise ApiError(2100, f"failed to get file size of '{label}', error:{e}: importing data failed")
            check_parquet(st, job["collectionName"], table)
            tables.append((label, table))
        drop_for = st.faults.get("drop_rows_for")
        if drop_for and drop_for == job["collectionName"] and tables and tables[0][1].num_rows:
            # Test fault (no Milvus behaviour): the server reads one row fewer than the file
            # holds, as a server-side loss would look to the client.
            with st.lock:
                st.faults.pop("drop_rows_for", None)
            tables[0] = (tables[0][0], tables[0][1].slice(0, tables[0][1].num_rows - 1))
        total = sum(t.num_rows for _, t in tables)
        job["totalRows"] = total
        done = 0
        staged = []
        for label, t in tables:
            staged.append((label, import_rows(st, job["collectionName"], t)))
        if job.get("_auto_commit") is False:
            # 3.0 (PR 48524, datacoord import checker): imported segments wait, invisible,
            # in state Uncommitted until `jobs/import/commit` (or `abort`). import_util.go
            # GetJobProgress reports progress 99 and importedRows = totalRows (the rows read).
            job["_staged"] = staged
            job["state"], job["progress"], job["importedRows"] = "Uncommitted", 99, total
            return
        insert_staged(st, job, staged, total)
    except ApiError as e:
        job["state"], job["reason"], job["importedRows"] = "Failed", e.message, 0
    except Exception as e:  # engine errors become the job's reason
        traceback.print_exc()
        job["state"], job["reason"], job["importedRows"] = "Failed", f"{e}: importing data failed", 0
    finally:
        job["finishedAt"] = time.time()


def insert_staged(st, job, staged, total):
    done = 0
    # all files parsed: insert (a failed job imports nothing)
    for label, rows in staged:
        for i in range(0, len(rows), 1000):
            with st.lock:
                st.client.insert(job["collectionName"], rows[i:i + 1000])
            done += len(rows[i:i + 1000])
            job["importedRows"] = done
            job["progress"] = 10 + int(80 * done / max(total, 1))
    job["state"], job["progress"], job["completeTime"] = "Completed", 100, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def commit_import(st, body):
    """3.0 handler_v2.go commitImportJob / datacoord CommitImport: only from Uncommitted (a
    no-op once Committing or Completed); an auto-commit job is refused (2100)."""
    job = find_job(st, body)
    if job.get("_auto_commit") is not False:
        raise ApiError(2100, f"import job {job['jobId']} is auto-commit, nothing to commit: importing data failed")
    if job["state"] in ("Committing", "Completed"):
        return ok()
    if job["state"] != "Uncommitted":
        raise ApiError(2100, f"import job {job['jobId']} is {job['state']}, not Uncommitted: importing data failed")
    if st.faults.get("hang_commit_for") == job["collectionName"]:
        # Test fault (no Milvus behaviour): the commit request hangs before it is acted on, so
        # a test can kill the client between Uncommitted and commit. Released, it answers an
        # error and commits nothing (its client is gone).
        st.faults["commit_hung"] = job["jobId"]
        while st.faults.get("hang_commit_for") == job["collectionName"]:
            time.sleep(0.1)
        raise ApiError(65535, "request cancelled")
    job["state"] = "Committing"
    staged = job.pop("_staged", [])
    insert_staged(st, job, staged, job.get("totalRows", 0))
    return ok()


def abort_import(st, body):
    """3.0 abortImportJob: refused once Committing or Completed (PR 51083:
    "job %d is in terminal/committed state %s, abort not allowed", ErrImportFailed); a Failed
    job may be aborted again; otherwise the job fails with "aborted by user"."""
    job = find_job(st, body)
    if job.get("_auto_commit") is not False:
        raise ApiError(2100, f"import job {job['jobId']} is auto-commit, it cannot be aborted: importing data failed")
    if job["state"] in ("Committing", "Completed"):
        raise ApiError(2100, f"job {job['jobId']} is in terminal/committed state {job['state']}, abort not allowed: importing data failed")
    job.pop("_staged", None)
    job["state"], job["reason"], job["importedRows"] = "Failed", "aborted by the user", 0
    return ok()


def check_job_limit(st, name):
    """datacoord import_util.go ValidateMaxImportJobExceed (PR 36891, 2.4 backport 36892): a
    new job is refused while `dataCoord.import.maxImportJobNum` (1024) jobs, cluster-wide, are
    neither Completed nor Failed. It runs in validateImportRequest, before the broadcaster looks
    at the Idempotency-Key: a refused creation records no key, and a resend of an accepted
    one is refused too while the limit holds. Test fault `job_limit_for` {collection, seconds}:
    the same refusal for one collection for a while (filling the real limit would stall every
    other test)."""
    with st.lock:
        executing = sum(1 for j in st.jobs.values() if j["state"] not in ("Completed", "Failed"))
        limit = int(st.faults.get("max_import_jobs", 1024))
        scoped = st.faults.get("job_limit_for") or {}
        until = scoped.get("_until")
        if scoped.get("collection") == name and until is None:
            until = scoped["_until"] = time.time() + float(scoped.get("seconds", 0))
    if executing >= limit or (scoped.get("collection") == name and time.time() < until):
        why = ("The number of jobs has reached the limit, please try again later. If your request is set to "
               "only import a single file, please consider importing multiple files in one request for better efficiency.")
        if st.at_least(2, 6, 0):
            why = "failed to validate import request: " + why
        # The newest code wraps it as ErrImportSysFailed (2101); earlier ErrImportFailed (2100).
        if st.at_least(3, 0, 0):
            raise ApiError(2101, why + ": importing data failed on server side")
        raise ApiError(2100, why + ": importing data failed")


def honours_idempotency(st):
    """Idempotency-Key on jobs/import/create: 2.6.24 on the 2.6 line, 3.0.2 on the 3.0 line."""
    return st.at_least(3, 0, 2) or (st.version[:2] == (2, 6) and st.at_least(2, 6, 24))


def create_import(st, body, idem_key=None):
    need(body, "collectionName")
    name = body["collectionName"]
    schema_of(st, name)
    opts = body.get("options") or {}
    for k, v in opts.items():
        if not isinstance(v, str):
            # request_v2.go ImportReq.Options is map[string]string: any other JSON type fails
            # the bind.
            raise ApiError(1801, f"can only accept json format request, error: json: cannot unmarshal {type(v).__name__} into Go struct field ImportReq.options of type string")
    auto_commit = True
    if "auto_commit" in opts and st.at_least(3, 0, 0) and "clusterId" not in body:
        # importutilv2/option.go IsAutoCommit: only "false" (any case) stops at Uncommitted.
        auto_commit = opts["auto_commit"].lower() != "false"
    check_job_limit(st, name)
    if idem_key is not None and honours_idempotency(st):
        # Idempotent import (milvus-docs idempotent-import.md; 2.6.24, 3.0.2): a printable
        # ASCII key of at most 256 bytes, per collection; the same key answers the original
        # job (failed or not), whatever the body says. Older servers ignore the header.
        if not idem_key or len(idem_key) > 256 or not all(32 <= ord(c) < 127 for c in idem_key):
            raise ApiError(1100, "invalid Idempotency-Key: printable ASCII of at most 256 bytes: invalid parameter")
        with st.lock:
            known = st.idempotency.get((name, idem_key))
        if known is not None and known in st.jobs:
            return ok({"jobId": known})
    files = []
    if "clusterId" in body or "volumeName" in body:   # Zilliz control plane
        if body.get("volumeName"):
            prefix = f"volumes/{body['volumeName']}/"
            for group in body.get("dataPaths") or []:
                for p in group:
                    files.append((st.s3(), f"{st.args.bucket}/{prefix}{p}", p))
        else:
            for group in body.get("objectUrls") or ([[body["objectUrl"]]] if body.get("objectUrl") else []):
                for url in group:
                    m = re.match(r"^s3://([^/]+)/(.+)$", url)
                    if not m:
                        raise ApiError(1100, f"invalid object url {url}")
                    files.append((st.s3(body.get("accessKey"), body.get("secretKey")), f"{m.group(1)}/{m.group(2)}", url))
    else:
        need(body, "files")
        # internal/proxy/task_import.go importTask.PreExecute: empty groups filtered out; none
        # left is merr.WrapErrParameterInvalidMsg (1100); too many files, and the file-type
        # checks of importutilv2.GetFileType, are merr.WrapErrImportFailed (2100, "<why>:
        # importing data failed").
        groups = [g for g in body["files"] if g]
        if not groups:
            raise ApiError(1100, "import request is empty: invalid parameter")
        if len(groups) > 1024:
            raise ApiError(2100, f"The max number of import files should not exceed 1024, but got {len(groups)}: importing data failed")
        for g in groups:
            if len(g) != 1:
                raise ApiError(2100, f"for Parquet import, accepts only one file, but got {len(g)}: importing data failed")
            if not g[0].endswith(".parquet") and not g[0].endswith(".json"):
                raise ApiError(2100, f"unexpected file type, files={g}: importing data failed")
            files.append((st.s3(), f"{st.args.bucket}/{g[0]}", g[0]))
    if not files:
        raise ApiError(1802, "missing required parameters, required parameters: [files]")
    with st.lock:
        st.next_job += 1
        job_id = ("job-" + uuid.uuid4().hex[:20]) if "clusterId" in body else str(st.next_job)
    job = {"jobId": job_id, "collectionName": name, "state": "Pending", "progress": 0, "importedRows": 0, "totalRows": 0,
           "fileSize": 0, "createTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "completeTime": "",
           "_files": files, "fileNames": [f[2] for f in files], "_auto_commit": auto_commit}
    st.jobs[job_id] = job
    if idem_key and honours_idempotency(st):
        with st.lock:
            st.idempotency[(name, idem_key)] = job_id
    threading.Thread(target=run_job, args=(st, job), daemon=True).start()
    return ok({"jobId": job_id})


def job_view(job):
    v = {k: x for k, x in job.items() if not k.startswith("_") and k not in ("finishedAt", "fileNames")}
    if job.get("_auto_commit") is not False and v["state"] in ("Uncommitted", "Committing"):
        v["state"], v["progress"] = "Importing", 99
    # As Milvus's datacoord reports them: one entry per file group, named with Go's %v of the
    # group's paths ("[a.parquet]"), and none before the pre-import has made the import tasks.
    v["details"] = [] if job["state"] == "Pending" else [
        {"fileName": "[" + n + "]", "fileSize": 0, "progress": job["progress"], "state": job["state"],
         "importedRows": job["importedRows"], "totalRows": job["totalRows"], "completeTime": job["completeTime"]}
        for n in job["fileNames"]]
    if not v.get("reason"):
        v.pop("reason", None)
    return v


def find_job(st, body):
    need(body, "jobId")
    job = st.jobs.get(body["jobId"])
    retention = st.faults.get("retention_s")
    if job and retention is not None and job.get("finishedAt") and time.time() - job["finishedAt"] > retention:
        st.jobs.pop(body["jobId"], None)
        job = None
    if job is None:
        raise ApiError(2100, f"import job does not exist[jobID={body['jobId']}]")
    return job


def list_jobs(st, body):
    recs = [{"jobId": j["jobId"], "collectionName": j["collectionName"], "state": j["state"], "progress": j["progress"],
             **({"reason": j["reason"]} if j.get("reason") else {})}
            for j in st.jobs.values() if not body.get("collectionName") or j["collectionName"] == body["collectionName"]]
    return ok({"records": recs})


def volume_apply(st, body):
    """Zilliz Cloud `POST /v2/volumes/apply` as pymilvus volume_file_manager.py reads it:
    temporary STS keys (`tmpAK`, `tmpSK`, `sessionToken`) valid until `expireTime` (ISO-8601),
    and the upload `condition` (`maxContentLength` bytes and `maxFileNumber` files per
    upload). The keys are minted by the S3 stand-in and expire there. Test settings (faults),
    per volume name: `volume_credential_ttl` {volume: seconds} (3600), `volume_condition`
    {volume: condition}, `volume_cloud` {volume: "gcp"}; applies are counted per volume in
    `volume_applies`."""
    need(body, "volumeName")
    a = st.args
    vol = body["volumeName"]
    ttl = int((st.faults.get("volume_credential_ttl") or {}).get(vol, 3600))
    with urllib.request.urlopen(urllib.request.Request(
            f"{a.s3_endpoint}/__standin/sts?seconds={ttl}", data=b"", method="POST"), timeout=10) as r:
        creds = json.loads(r.read())
    with st.lock:
        counts = st.faults.setdefault("volume_applies", {})
        counts[vol] = counts.get(vol, 0) + 1
    condition = (st.faults.get("volume_condition") or {}).get(vol) or {"maxContentLength": 10 * 2**30}
    # A volume on GCP (test setting `volume_cloud` {volume: "gcp"}): pymilvus uploads with the
    # session token as an OAuth bearer (OAuthMinio) and reads no tmpAK/tmpSK.
    cloud = (st.faults.get("volume_cloud") or {}).get(vol, "aws")
    if cloud == "gcp":
        creds["accessKeyId"] = creds["secretAccessKey"] = ""
    return ok({"volumeName": body["volumeName"], "volumePrefix": f"volumes/{body['volumeName']}/", "bucketName": a.bucket,
               "endpoint": a.s3_endpoint, "cloud": cloud, "region": "us-east-1",
               "credentials": {"tmpAK": creds["accessKeyId"], "tmpSK": creds["secretAccessKey"],
                               "sessionToken": creds["sessionToken"],
                               "expireTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + ttl))},
               "condition": condition})


# ---------------------------------------------------------------- aliases

def alias_create(st, body):
    need(body, "aliasName", "collectionName")
    a, coll = body["aliasName"], body["collectionName"]
    if coll not in st.schemas:
        raise ApiError(100, f"collection not found[collection={coll}]")
    if a in st.schemas:
        raise ApiError(1601, f"alias and collection name conflict[alias={a}]")
    if st.aliases.get(a, coll) != coll:
        raise ApiError(1601, f"alias exists and already aliased to another collection, alias: {a}, collection: {st.aliases[a]}, other collection: {coll}")
    st.aliases[a] = coll
    return ok()


def alias_alter(st, body):
    need(body, "aliasName", "collectionName")
    a, coll = body["aliasName"], body["collectionName"]
    if coll not in st.schemas:
        raise ApiError(100, f"collection not found[collection={coll}]")
    if a not in st.aliases:
        raise ApiError(1600, f"alias not found[database=default][alias={a}]")
    st.aliases[a] = coll
    return ok()


def alias_describe(st, body):
    need(body, "aliasName")
    a = body["aliasName"]
    if a not in st.aliases:
        raise ApiError(1600, f"alias not found[database=default][alias={a}]")
    return ok({"aliasName": a, "collectionName": st.aliases[a], "dbName": "default"})


def drop_collection(st, body):
    need(body, "collectionName")
    name = body["collectionName"]
    held = sorted(a for a, col in st.aliases.items() if col == name)
    if held:
        raise ApiError(65535, f"unable to drop the collection [{name}] because it has associated aliases {held}, please remove all aliases before dropping the collection")
    if name in st.schemas:
        st.client.drop_collection(name)
    st.schemas.pop(name, None)
    return ok()


def alias_drop(st, body):
    need(body, "aliasName")
    st.aliases.pop(body["aliasName"], None)
    return ok()


# ---------------------------------------------------------------- HTTP

def check_database(st, path, body, header_db):
    """handler_v2.go: the request's dbName (body `dbName`, else the `DB-Name` header, else
    "default"), checked by `checkDatabase` against ListDatabases before the handler runs:
    code merr.ErrDatabaseNotFound (800), "database not found, database: <name>"."""
    if path.startswith("/v2/vectordb/databases/"):
        return
    db = body.get("dbName") or header_db or "default"
    if db not in st.databases:
        raise ApiError(800, f"database not found, database: {db}")


def create_database(st, body):
    need(body, "dbName")
    db = body["dbName"]
    with st.lock:
        if db in st.databases:
            raise ApiError(65535, f"database already exist: {db}")
        st.databases.add(db)
    return ok()


def route(st, path, body, allow_int64, headers=None):
    p = path.split("?", 1)[0]
    c = st.client
    # A request naming an alias acts on its collection, as Milvus resolves names.
    if not p.startswith("/v2/vectordb/aliases/") and body.get("collectionName") in st.aliases \
            and body.get("collectionName") not in st.schemas:
        body = dict(body, collectionName=st.aliases[body["collectionName"]])
    name = body.get("collectionName")
    table = {
        "/v2/vectordb/databases/create": lambda: create_database(st, body),
        "/v2/vectordb/databases/list": lambda: ok(sorted(st.databases)),
        "/v2/vectordb/collections/create": lambda: create_collection(st, body),
        "/v2/vectordb/collections/has": lambda: (need(body, "collectionName"), ok({"has": name in st.schemas and c.has_collection(name)}))[1],
        "/v2/vectordb/collections/list": lambda: ok(sorted(st.schemas)),
        "/v2/vectordb/collections/describe": lambda: describe(st, body),
        "/v2/vectordb/collections/drop": lambda: drop_collection(st, body),
        "/v2/vectordb/collections/load": lambda: (schema_of(st, name), c.load_collection(name), ok())[2],
        "/v2/vectordb/collections/release": lambda: (schema_of(st, name), c.release_collection(name), ok())[2],
        "/v2/vectordb/collections/flush": lambda: (schema_of(st, name), ok())[1],
        "/v2/vectordb/collections/get_load_state": lambda: (schema_of(st, name), ok({"loadState": "LoadStateLoaded", "loadProgress": 100}
                                                            if str(c.get_load_state(name)["state"]).endswith("Loaded") else {"loadState": "LoadStateNotLoad"}))[1],
        "/v2/vectordb/collections/get_stats": lambda: (schema_of(st, name), ok({"rowCount": c.get_collection_stats(name).get("row_count", 0)}))[1],
        "/v2/vectordb/indexes/list": lambda: ok([p.get("indexName", p["fieldName"]) for p in schema_of(st, name).get("indexParams", [])]),
        "/v2/vectordb/indexes/create": lambda: (schema_of(st, name), build_indexes(st, name, body.get("indexParams") or []), ok())[2],
        "/v2/vectordb/entities/insert": lambda: write_rows(st, body, False),
        "/v2/vectordb/entities/upsert": lambda: write_rows(st, body, True),
        "/v2/vectordb/entities/query": lambda: query(st, body, allow_int64),
        "/v2/vectordb/entities/get": lambda: get(st, body, allow_int64),
        "/v2/vectordb/entities/search": lambda: search(st, body, allow_int64),
        "/v2/vectordb/entities/delete": lambda: delete(st, body),
        "/v2/vectordb/jobs/import/create": lambda: create_import(st, body, (headers or {}).get("Idempotency-Key")),
        "/v2/vectordb/jobs/import/commit": lambda: commit_import(st, body),
        "/v2/vectordb/jobs/import/abort": lambda: abort_import(st, body),
        "/v2/vectordb/jobs/import/get_progress": lambda: ok(job_view(find_job(st, body))),
        "/v2/vectordb/jobs/import/describe": lambda: ok(job_view(find_job(st, body))),
        "/v2/vectordb/jobs/import/getProgress": lambda: ok(job_view(find_job(st, body))),
        "/v2/vectordb/jobs/import/list": lambda: list_jobs(st, body),
        "/v2/volumes/apply": lambda: volume_apply(st, body),
        "/v2/vectordb/aliases/create": lambda: alias_create(st, body),
        "/v2/vectordb/aliases/alter": lambda: alias_alter(st, body),
        "/v2/vectordb/aliases/describe": lambda: alias_describe(st, body),
        "/v2/vectordb/aliases/drop": lambda: alias_drop(st, body),
        "/v2/vectordb/aliases/list": lambda: ok(sorted(a for a, col in st.aliases.items()
                                                       if body.get("collectionName") in (None, "", col))),
    }
    # Routes by release (handler_v2.go RegisterRoutesToV2): collections/flush from PR 39425
    # (2.5.4), jobs/import/describe from PR 36754 (2.4.13), commit/abort from PR 48524 (3.0.0).
    absent = set()
    if not st.at_least(2, 5, 4):
        absent.add("/v2/vectordb/collections/flush")
    if not st.at_least(2, 4, 13):
        absent.add("/v2/vectordb/jobs/import/describe")
    if not st.at_least(3, 0, 0):
        absent |= {"/v2/vectordb/jobs/import/commit", "/v2/vectordb/jobs/import/abort"}
    # The Zilliz Cloud control plane (bodies with a clusterId) is not a Milvus release: its
    # job routes are there whatever the cluster runs.
    if p not in table or (p in absent and "clusterId" not in body):
        return None
    return table[p]()


def in_database(st, path, body, allow_int64, headers):
    """handler_v2.go: a call acts in the request's database (body `dbName`, else the `DB-Name`
    header, else "default"), and Milvus keeps collections and aliases per database: the same
    name in two databases is two collections. Milvus Lite has one namespace, so a collection
    (or alias) NAME of a database D other than "default" is kept as "D__NAME" and answered
    under its own name; lists show a database's own names only."""
    db = body.get("dbName") or (headers.get("DB-Name") if headers else None) or "default"
    p = path.split("?", 1)[0]
    listing = p.endswith("/collections/list") or p.endswith("/aliases/list")
    if db == "default" or p.startswith("/v2/vectordb/databases/"):
        r = route(st, path, body, allow_int64, headers)
        if listing and r is not None:
            others = tuple(f"{d}__" for d in st.databases if d != "default")
            r["data"] = [n for n in r["data"] if not others or not n.startswith(others)]
        return r
    prefix = f"{db}__"
    inner = dict(body)
    for k in ("collectionName", "aliasName"):
        if isinstance(inner.get(k), str) and inner[k]:
            inner[k] = prefix + inner[k]
    r = route(st, path, inner, allow_int64, headers)
    if r is None:
        return None
    if listing:
        r["data"] = [n for n in r["data"] if n.startswith(prefix)]

    def own(v):
        if isinstance(v, str) and v.startswith(prefix):
            return v[len(prefix):]
        if isinstance(v, list):
            return [own(x) for x in v]
        if isinstance(v, dict):
            return {k: own(x) for k, x in v.items()}
        return v
    return own(r)


def make_handler(st):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def send(self, status, obj):
            data = json.dumps(obj, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/healthz":
                return self.send(200, {"status": "ok"})
            self.send(404, {"message": "404 page not found"})

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            if self.path == "/__standin/rows":
                # Not a Milvus API: the rows as the engine stores them (dynamic values not
                # through the REST output's float64), for tests that check what the target
                # holds rather than what its REST layer answers.
                body = json.loads(raw)
                if body.get("collectionName") in st.aliases and body.get("collectionName") not in st.schemas:
                    body["collectionName"] = st.aliases[body["collectionName"]]
                try:
                    return self.send(200, query(st, body, True, exact=True))
                except ApiError as e:
                    return self.send(200, {"code": e.code, "message": e.message})
            if self.path == "/__standin/faults":
                with st.lock:
                    st.faults.update(json.loads(raw or b"{}"))
                return self.send(200, {"code": 0, "data": st.faults})
            auth = self.headers.get("Authorization", "")
            if st.args.token and auth != f"Bearer {st.args.token}":
                return self.send(401, {"code": 1800, "message": "user hasn't authenticated"})
            if st.fault("timeout"):
                return self.send(408, {"code": 10001, "message": "request timeout"})
            try:
                # Numbers keep their text (gjson does; checkAndSetData reads it).
                body = json.loads(raw or b"{}", parse_int=raw_int, parse_float=raw_float)
            except ValueError as e:
                return self.send(200, {"code": 1801, "message": f"can only accept json format request, error: {e}"})
            allow = self.headers.get("Accept-Type-Allow-Int64", "true").lower() != "false"
            try:
                check_database(st, self.path, body, self.headers.get("DB-Name"))
                r = in_database(st, self.path, body, allow, self.headers)
                if r is None:
                    return self.send(404, {"message": "404 page not found"})
                lose_for = st.faults.get("lose_import_answer_for")
                if self.path.endswith("/jobs/import/create") and lose_for and lose_for == body.get("collectionName"):
                    with st.lock:
                        st.faults.pop("lose_import_answer_for", None)
                    # The job exists, but its answer is lost on the way (a proxy timing out).
                    return self.send(503, {"message": "upstream request timeout"})
                if self.path.endswith("/jobs/import/create") and st.fault("lose_import_answer"):
                    # The job exists, but its answer is lost on the way (a proxy timing out).
                    return self.send(503, {"message": "upstream request timeout"})
                self.send(200, r)
            except ApiError as e:
                self.send(e.http, {"code": e.code, "message": e.message})
            except MilvusException as e:
                self.send(200, {"code": e.code if e.code else 65535, "message": e.message})
            except Exception as e:
                traceback.print_exc()
                self.send(200, {"code": 65535, "message": str(e)})
    return H


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--data", required=True)
    ap.add_argument("--token", default="")
    ap.add_argument("--s3-endpoint", required=True)
    ap.add_argument("--s3-access-key", required=True)
    ap.add_argument("--s3-secret-key", required=True)
    ap.add_argument("--bucket", default="milvus-bucket")
    ap.add_argument("--addr-file")
    ap.add_argument("--milvus-version", default="2.5.16",
                    help="the release whose REST behaviour to follow where lines differ")
    args = ap.parse_args()
    st = State(args)
    srv = ThreadingHTTPServer((args.host, args.port), make_handler(st))
    addr = f"{args.host}:{srv.server_address[1]}"
    if args.addr_file:
        with open(args.addr_file, "w") as f:
            f.write(addr)
    print(f"milvus-standin listening on http://{addr}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
