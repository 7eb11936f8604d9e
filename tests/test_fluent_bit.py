"""docker/fluent-bit/: Fluent Bit cannot run here, so its config is checked against pang's own code.

What is checked, against ``pang.indexer`` and ``pang.shippers`` rather than against copies:

* every opensearch output names its daily index exactly as ``index_for`` does, the name falls under
  the dataset's own index template, and records reach exactly one output and one Lua filter;
* ids cannot collapse identical lines (Generate_ID on, tail's Path_Key and Offset_Key in the record,
  and the Lua filter keeps both), the tail input keeps its offsets in a DB and waits on rotation;
* retries are unlimited and the filesystem buffer is bounded;
* every field the Lua filter declares (``PANG_FIELDS`` in ecs.lua, read with a regex) exists in the
  dataset's mappings (``system.*`` metrics: among the names pang's metrics input writes);
* where a Lua interpreter is installed (LuaJIT, which Fluent Bit embeds, and/or Lua 5.4), the
  filter runs on sample records and its documents are compared with what pang's agent makes of
  the same input (``Enricher`` over ``parse_line`` / ``parse_syslog``); the differences the README
  documents are asserted as such, so the README cannot drift from the script.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import re
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from pang.indexer.naming import PREFIXES, index_for, index_for_day
from pang.indexer.templates import component_templates, index_templates
from pang.settings import load_settings
from pang.shippers.documents import Enricher
from pang.shippers.parse.syslog import parse_syslog
from pang.shippers.source.files import FileEvent, service_from_path

ROOT = Path(__file__).resolve().parents[1]
FLB = ROOT / "docker" / "fluent-bit"
CONFIG = FLB / "fluent-bit.yaml"
LUA = FLB / "ecs.lua"
COMPOSE = ROOT / "docker" / "compose.yaml"
METRICS_SOURCE = ROOT / "shippers" / "source" / "metrics.py"
MOUNT = "/fluent-bit/etc/pang"  # where compose mounts docker/fluent-bit

# Lua callback -> the dataset (pang.indexer.naming.PREFIXES key) its records are meant for
CALL_DATASET = {"pang_app": "app", "pang_syslog": "syslog", "pang_metrics": "metrics"}
HOST = "web-1"


@functools.cache
def _config() -> dict[str, Any]:
    """The parsed config (cached: read-only for the tests)."""
    return yaml.safe_load(CONFIG.read_text())


def _on(value: Any) -> bool:
    """Fluent Bit's booleans (pyyaml reads on/off/true/false as YAML 1.1 booleans already)."""
    return value is True or str(value).strip().lower() in ("on", "true", "yes", "1")


def _off(value: Any) -> bool:
    return value is False or str(value).strip().lower() in ("off", "false", "no", "0")


def _plugins(kind: str, name: str | None = None) -> list[dict[str, Any]]:
    items = _config()["pipeline"][kind]
    return [p for p in items if name is None or p["name"] == name]


def _tail() -> dict[str, Any]:
    (tail,) = _plugins("inputs", "tail")
    return tail


def _size(value: Any) -> int:
    """Fluent Bit's unit sizes: 256k, 2G, 64M, 5M ..."""
    m = re.fullmatch(r"(\d+)\s*([KMG]?)B?", str(value).strip(), re.IGNORECASE)
    assert m, f"not a Fluent Bit size: {value!r}"
    return int(m.group(1)) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[m.group(2).upper()]


def _matches(pattern: str, tag: str) -> bool:
    # Fluent Bit's Match takes '*' wildcards, like fnmatch without [] classes
    return fnmatch.fnmatchcase(tag, pattern)


def _dataset_of_output(output: dict[str, Any]) -> str:
    by_prefix = {prefix: ds for ds, prefix in PREFIXES.items()}
    prefix = output["logstash_prefix"]
    assert prefix in by_prefix, f"{output['alias']}: prefix {prefix!r} is not one of pang's index prefixes"
    return by_prefix[prefix]


def _lua_constant(name: str) -> str:
    m = re.search(rf'^{name}\s*=\s*"([^"]*)"', LUA.read_text(), re.MULTILINE)
    assert m, f"ecs.lua has no {name}"
    return m.group(1)


def _declared_fields() -> dict[str, list[str]]:
    """PANG_FIELDS from ecs.lua: `dataset = { "a.b", ... },` blocks inside `PANG_FIELDS = { ... }`."""
    text = LUA.read_text()
    block = re.search(r"^PANG_FIELDS = \{(.*?)^\}", text, re.MULTILINE | re.DOTALL)
    assert block, "ecs.lua has no PANG_FIELDS table"
    fields = {}
    for ds, body in re.findall(r"^\s*(\w+) = \{(.*?)\},\s*$", block.group(1), re.MULTILINE | re.DOTALL):
        fields[ds] = re.findall(r'"([^"]+)"', body)
    assert set(fields) == set(CALL_DATASET.values())
    return fields


# --------------------------------------------------------------------------------------------
# Index templates: which template an index falls under, and the properties it maps
# --------------------------------------------------------------------------------------------


def _template_for(index: str) -> str:
    candidates = [
        (body["priority"], name)
        for name, body in index_templates().items()
        if any(fnmatch.fnmatchcase(index, pattern) for pattern in body["index_patterns"])
    ]
    assert candidates, f"{index} falls under no pang index template"
    return max(candidates)[1]


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        if key in out and "properties" in out[key] and "properties" in value:
            out[key] = {**out[key], "properties": _merge(out[key]["properties"], value["properties"])}
        else:
            out[key] = value
    return out


def _properties(template: str) -> dict[str, Any]:
    """The index template's properties over its component templates' (what an index gets)."""
    body = index_templates()[template]
    props: dict[str, Any] = {}
    for component in body["composed_of"]:
        props = _merge(props, component_templates()[component]["template"].get("mappings", {}).get("properties", {}))
    return _merge(props, body["template"]["mappings"].get("properties", {}))


def _mapping(props: dict[str, Any], field: str) -> dict[str, Any] | None:
    """The mapping of a dotted field, or the dynamic object that takes it; None when unmapped."""
    node: dict[str, Any] = {"properties": props}
    for part in field.split("."):
        if part == "*" and node.get("dynamic") is True:
            return node
        sub = node.get("properties", {}).get(part)
        if sub is None:
            return node if node.get("dynamic") is True and node.get("type") == "object" else None
        node = sub
    return node


def _pang_metric_names() -> list[re.Pattern[str]]:
    """The system.* names pang's metrics input writes (literals and f-strings of metrics.py)."""
    source = METRICS_SOURCE.read_text()
    names = re.findall(r'f?"(system\.[a-z0-9_.{}]+)"', source)
    assert names, "no system.* names found in shippers/source/metrics.py"
    return [re.compile(re.sub(r"\\\{[a-z_]+\\\}", "[a-z0-9_]+", re.escape(n))) for n in names]


def _unmapped(dataset: str, fields: list[str]) -> list[str]:
    index = index_for(dataset, datetime(2026, 11, 24, tzinfo=UTC))
    props = _properties(_template_for(index))
    metric_names = _pang_metric_names() if dataset == "metrics" else []
    missing = []
    for field in fields:
        if field.startswith("system.") and dataset == "metrics":
            if not any(p.fullmatch(field) for p in metric_names):
                missing.append(field)
        elif _mapping(props, field) is None:
            missing.append(field)
    return missing


# --------------------------------------------------------------------------------------------
# The config against pang's naming, templates and shipping guarantees
# --------------------------------------------------------------------------------------------


def test_outputs_name_daily_indices_as_pang_does() -> None:
    outputs = _plugins("outputs", "opensearch")
    assert {_dataset_of_output(o) for o in outputs} == {"app", "syslog", "metrics"}
    days = [
        datetime(2026, 11, 24, 0, 0, 0, tzinfo=UTC),
        datetime(2026, 1, 2, 23, 59, 59, 999000, tzinfo=UTC),
        datetime(2028, 2, 29, 12, 0, tzinfo=UTC),
    ]
    for out in outputs:
        ds = _dataset_of_output(out)
        assert _on(out["logstash_format"]), out["alias"]
        separator = out.get("logstash_prefix_separator", "-")  # Fluent Bit's default is "-"
        for day in days:
            name = f"{out['logstash_prefix']}{separator}{day.strftime(out['logstash_dateformat'])}"
            assert name == index_for(ds, day), out["alias"]
            # the dataset's own template takes it (metrics-* must not fall to metrics-business-*)
            assert _template_for(name) == _template_for(index_for(ds, day))
            assert f"{PREFIXES[ds]}-*" in index_templates()[_template_for(name)]["index_patterns"]
        # @timestamp as pang writes it: strftime(Time_Key_Format) + ".mmmZ" (opensearch.c), UTC
        assert out["time_key"] == "@timestamp"
        stamp = days[1].strftime(out.get("time_key_format", "%Y-%m-%dT%H:%M:%S")) + ".999Z"
        assert stamp == "2026-01-02T23:59:59.999Z"
        assert not _on(out.get("current_time_index", "off")), "the index must follow the record's time"
        assert _on(out["suppress_type_name"]) and _off(out["replace_dots"]) and _on(out["trace_error"])
        assert "id_key" not in out  # Generate_ID, not a record field, makes the _id
        assert _off(out["buffer_size"]), "a cut _bulk response hides item errors"
        # TLS as pang's client: the certificate and the host name are checked together
        assert out["tls.verify_hostname"] == out["tls.verify"] == "${PANG_OPENSEARCH_VERIFY_CERTS}"


def test_every_record_reaches_one_filter_and_one_output_of_its_dataset() -> None:
    filters = _plugins("filters", "lua")
    outputs = _plugins("outputs", "opensearch")
    for inp in _plugins("inputs"):
        tag = inp["tag"].replace("*", "pang.logs.app.web.app.log")  # tail expands * to the path
        lua = [f for f in filters if _matches(f["match"], tag)]
        out = [o for o in outputs if _matches(o["match"], tag)]
        assert len(lua) == 1 and len(out) == 1, f"{inp['alias']} ({tag}): filters {lua}, outputs {out}"
        assert CALL_DATASET[lua[0]["call"]] == _dataset_of_output(out[0]), inp["alias"]
        assert _on(lua[0]["time_as_table"]), "the event time must come back exact"
        # the script is the one in this folder, as compose mounts it
        assert lua[0]["script"] == f"{MOUNT}/{LUA.name}"
    assert {CALL_DATASET[f["call"]] for f in filters} == {"app", "syslog", "metrics"}


def test_ids_cannot_collapse_identical_lines() -> None:
    """Generate_ID hashes the record, so the file and offset must be in it (clarifications)."""
    tail = _tail()
    (app_out,) = [o for o in _plugins("outputs", "opensearch") if _matches(o["match"], "app.x")]
    assert _on(app_out["generate_id"])
    assert tail.get("path_key") and tail.get("offset_key")
    # ... under the names the Lua filter reads (and turns into log.file.path and log.offset)
    assert tail["path_key"] == _lua_constant("TAIL_PATH_KEY")
    assert tail["offset_key"] == _lua_constant("TAIL_OFFSET_KEY")
    assert tail.get("key", "log") == _lua_constant("TAIL_TEXT_KEY") == "log"
    for out in _plugins("outputs", "opensearch"):
        assert _on(out["generate_id"]), out["alias"]


def test_tail_keeps_offsets_waits_on_rotation_and_joins_stack_traces() -> None:
    tail = _tail()
    assert tail["path"] == "/pang/logs/app/*/*.log"
    assert tail["path"].startswith(_lua_constant("APP_ROOT"))
    # the service is the folder under the fixed prefix, for pang and for the Lua filter alike
    assert service_from_path("/pang/logs/app/checkout/app.log", tail["path"]) == "checkout"
    assert str(tail["db"]).startswith("/pang/state/fluent-bit/")
    assert float(tail["rotate_wait"]) >= 5
    assert _on(tail["read_from_head"])
    parsers = {p.strip() for p in str(tail["multiline.parser"]).split(",")}
    assert {"java", "python"} <= parsers
    assert _size(tail["buffer_max_size"]) == load_settings().ship_max_line_bytes


def test_syslog_listens_like_pang_on_udp_and_tcp() -> None:
    syslog = _plugins("inputs", "syslog")
    assert sorted(s["mode"] for s in syslog) == ["tcp", "udp"]
    port = load_settings().syslog_port
    parser_names = {p["name"] for p in _config()["parsers"]}
    for s in syslog:
        assert int(s["port"]) == port
        assert s["parser"] in parser_names  # defined in this file, not the image's parsers.conf
        assert s["source_address_key"] == _lua_constant("SYSLOG_PEER_KEY")
    (parser,) = [p for p in _config()["parsers"] if p["name"] == syslog[0]["parser"]]
    # the parser must take every message (the syslog input drops what its parser does not match),
    # under the key the Lua filter reads
    regex = parser["regex"].replace("(?<", "(?P<")
    for sample in ("<34>1 2026-11-24T10:00:00Z h a - - - x", "anything", "", "a\nb"):
        m = re.fullmatch(regex, sample)
        assert m and m.group(_lua_constant("SYSLOG_TEXT_KEY")) == sample


def test_metrics_inputs_sample_at_pangs_interval() -> None:
    period_ms = int(_lua_constant_number("METRICS_PERIOD_MS"))
    metric_inputs = [i for i in _plugins("inputs") if i["tag"].startswith("metrics.")]
    assert {i["name"] for i in metric_inputs} == {"cpu", "mem", "disk", "netif"}
    for inp in metric_inputs:
        assert int(inp["interval_sec"]) * 1000 == period_ms == int(load_settings().metrics_interval * 1000)


def _lua_constant_number(name: str) -> str:
    m = re.search(rf"^{name}\s*=\s*(\d+)", LUA.read_text(), re.MULTILINE)
    assert m, f"ecs.lua has no {name}"
    return m.group(1)


def test_retries_are_unlimited_and_the_filesystem_buffer_is_bounded() -> None:
    config = _config()
    assert str(config["service"]["storage.path"]).startswith("/pang/state/fluent-bit/")
    for inp in _plugins("inputs"):
        assert inp["storage.type"] == "filesystem", inp["alias"]
    for out in _plugins("outputs"):
        limit = out["retry_limit"]
        assert limit is False or str(limit).lower() in ("no_limits", "false"), out["alias"]
        assert 0 < _size(out["storage.total_limit_size"]) <= 2**40, out["alias"]


def test_declared_fields_exist_in_pangs_mappings() -> None:
    for ds, fields in _declared_fields().items():
        assert "@timestamp" in fields
        assert not _unmapped(ds, fields), f"{ds}: fields not in pang's templates: {_unmapped(ds, fields)}"


def test_every_variable_the_config_reads_is_set_by_compose() -> None:
    def values(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [v for x in node.values() for v in values(x)]
        if isinstance(node, list):
            return [v for x in node for v in values(x)]
        return [str(node)]

    used = {var for value in values(_config()) for var in re.findall(r"\$\{([A-Za-z0-9_]+)\}", value)}
    assert used, "the config reads no environment variable"
    service = yaml.safe_load(COMPOSE.read_text())["services"]["fluent-bit"]
    assert used <= set(service["environment"]), f"compose does not set {used - set(service['environment'])}"
    # what the Lua filter reads from the environment is set there too
    lua_env = set(re.findall(r'env\("([A-Z0-9_]+)"\)', LUA.read_text())) - {"HOSTNAME", "PANG_FLB_PROC"}
    assert lua_env <= set(service["environment"])


# --------------------------------------------------------------------------------------------
# The Lua filter itself, run by LuaJIT (Fluent Bit's) and/or Lua 5.4 where installed
# --------------------------------------------------------------------------------------------

INTERPRETERS = [name for name in ("luajit", "lua5.4", "lua5.3", "lua5.1") if shutil.which(name)]

# Runs callbacks on records and prints what Fluent Bit would pack: a table whose metatable says
# {type = 1} is an array, {type = 2} a map (flb_lua.c), otherwise an array when it has 1..n keys;
# integral numbers become integers, flb_null becomes null.
HARNESS = r"""
flb_null = setmetatable({}, {__name = "flb_null"})
dofile(arg[1])
local f = assert(io.open(arg[2], "rb"))
local cases = pang_json_decode(f:read("*a"))
f:close()

local function is_array(t)
  local mt = getmetatable(t)
  if mt and mt.type == 1 then return true end
  if mt and mt.type == 2 then return false end
  local n = 0
  for k, _ in pairs(t) do
    if type(k) ~= "number" then return false end
    n = n + 1
  end
  return n > 0 and #t == n
end

local function enc(v)
  local t = type(v)
  if v == flb_null or v == nil then return "null" end
  if t == "boolean" then return tostring(v) end
  if t == "number" then
    if v == math.floor(v) and v > -2^63 and v < 2^63 then return string.format("%d", v) end
    return string.format("%.17g", v)
  end
  if t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
  end
  if t == "table" then
    local parts = {}
    if is_array(v) then
      for i = 1, #v do parts[i] = enc(v[i]) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    for k, x in pairs(v) do parts[#parts + 1] = enc(tostring(k)) .. ":" .. enc(x) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  error("cannot encode " .. t)
end

for _, c in ipairs(cases) do
  local code, ts, rec = _G[c.call](c.tag, {sec = c.sec, nsec = c.nsec}, c.record)
  io.write(enc({code = code, ts = ts, record = rec}), "\n")
end
"""


def _run_lua(interpreter: str, tmp_path: Path, cases: list[dict[str, Any]], env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    harness = tmp_path / "harness.lua"
    harness.write_text(HARNESS)
    data = tmp_path / "cases.json"
    data.write_bytes(orjson.dumps(cases))
    proc = subprocess.run(
        [interpreter, str(harness), str(LUA), str(data)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PANG_HOST_NAME": HOST, "PANG_SERVICE_ENVIRONMENT": "", "PANG_SERVICE_VERSION": "", **(env or {})},
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def _flb_timestamp(result: dict[str, Any]) -> tuple[str, int]:
    """@timestamp as the opensearch output writes it from the record time, and the time's seconds."""
    sec, nsec = int(result["ts"]["sec"]), int(result["ts"]["nsec"])
    return datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (nsec // 1_000_000), sec


def _fluent_bit_docs(results: list[dict[str, Any]], dataset: str) -> list[tuple[str, dict[str, Any]]]:
    """(index, document) pairs the opensearch output would write for the callbacks' results."""
    (out,) = [o for o in _plugins("outputs", "opensearch") if _dataset_of_output(o) == dataset]
    docs = []
    for r in results:
        assert r["code"] in (1, 2), r
        records = r["record"] if isinstance(r["record"], list) else [r["record"]]
        stamp, sec = _flb_timestamp(r)
        for rec in records:
            assert "@timestamp" not in rec, "the output adds Time_Key itself: a second one is a duplicate key"
            day = datetime.fromtimestamp(sec, UTC)
            index = f"{out['logstash_prefix']}{out.get('logstash_prefix_separator', '-')}{day.strftime(out['logstash_dateformat'])}"
            docs.append((index, {"@timestamp": stamp, **rec}))
    return docs


def _paths(doc: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in ("app", "structured_data") and path != "log.syslog.structured_data":
            out.extend(_paths(value, path + "."))
        else:
            out.append((path, value))
    return out


TYPES = {
    "keyword": (str,), "text": (str,), "date": (str,), "ip": (str,),
    "long": (int,), "double": (int, float), "flat_object": (dict,), "object": (dict,),
}


def _assert_fits(dataset: str, doc: dict[str, Any]) -> None:
    """Every field is declared in PANG_FIELDS and its value fits the template's mapping."""
    declared = _declared_fields()[dataset]
    props = _properties(_template_for(index_for(dataset, datetime(2026, 11, 24, tzinfo=UTC))))
    for path, value in _paths(doc):
        name = "app.*" if path == "app" else path
        assert name in declared, f"{dataset}: {path} is written but not in PANG_FIELDS"
        if path.startswith("system."):
            assert isinstance(value, (int, float, str)), path
            continue
        mapping = _mapping(props, "app.*" if path == "app" else path)
        assert mapping is not None, path
        kind = mapping.get("type", "object")
        values = value if isinstance(value, list) and kind != "object" else [value]
        for v in values:
            assert isinstance(v, TYPES[kind]) and not isinstance(v, bool), f"{path}: {v!r} does not fit {kind}"


# ---- app lines


def _pang_app(text: str, path: str, offset: int, received: str) -> tuple[str, dict[str, Any]]:
    """What pang's agent writes for one file event: Enricher over parse_line, by the same path."""
    enricher = Enricher(agent_id="test", host_name=HOST)
    ev = FileEvent(text=text, key="k", start=offset, path=path, service=service_from_path(path, _tail()["path"]),
                   truncated=False, invalid_utf8=False)
    action, source = enricher.file_action(ev, received).splitlines()
    doc = orjson.loads(source)
    doc.pop("agent")
    doc["event"].pop("ingested")
    doc["log"]["file"].pop("fingerprint")  # pang's stream identity (its _id's source); Fluent Bit has none
    return orjson.loads(action)["index"]["_index"], doc


# Lines both agents should read alike (text layouts, JSON, stack traces as Fluent Bit's java and
# python multiline parsers hand them over, access logs).
APP_LINES = [
    "2026-11-24 10:00:00,123 ERROR [main] com.shop.Checkout - payment declined for order 42",
    "2026-11-24T10:00:00.123+01:00 [http-nio-8080-exec-1] WARN  o.a.c.Foo - slow request",
    "2026-11-24 10:00:00,001 INFO shop.orders: order placed",
    "2026-11-24 10:00:00,002 - shop.orders - WARNING - stock low",
    "ERROR:root:cannot connect to db",
    "level=error ts=2026-11-24T10:00:00.5Z msg=\"boom\" caller=main.go:10",
    "time=\"2026-11-24T09:59:59Z\" level=Warning msg=\"disk almost full\"",
    "[2026-11-24 10:00:00] local.CRITICAL: Uncaught exception",
    "Nov 24 10:00:00 web-1 cron[123]: job started",
    "web.1 | 2026-11-24 10:00:00.123 INFO started in 2.3 s",
    "just a line without a timestamp or a level",
    "INFOX is not a level, neither is XERROR, but FATAL is",
    '127.0.0.1 - frank [24/Nov/2026:10:00:00 +0000] "GET /cart?id=7 HTTP/1.1" 500 2326 "-" "curl/8"',
    '2001:db8::1 - - [24/Nov/2026:11:00:00 +0100] "POST /pay HTTP/2" 201 -',
    '{"level":"info","msg":"order placed","order_id":42,"trace_id":"abc","ts":1795514400.25}',
    '{"@timestamp":"2026-11-24T10:00:00.123Z","log.level":"WARN","message":"retrying","service.name":"billing","event":{"action":"payment.retry"}}',
    '{"log":{"level":"error","logger":"app.db"},"message":"query failed","error":{"type":"DBError","stack_trace":"DBError: timeout\\n  at x"},"http":{"request":{"method":"GET"},"response":{"status_code":503}}}',
    '{"levelname":"ERROR","name":"shop.api","asctime":"2026-11-24 10:00:00,250","message":"failed","exc_info":"Traceback (most recent call last):\\n  File \\"a.py\\", line 1, in <module>\\nValueError: bad"}',
    '{"event":"order.placed","level":30,"time":1795514400123,"customer":{"id":"c-9","vip":true},"items":[1,2,3],"note":null}',
    '{"event":"user logged in","user_id":7,"method":"get","path":"/login","status":"200","empty":{},"list":[]}',
    '{"msg":"\\u00e9t\\u00e9 \\ud83d\\ude00 \\"quoted\\"","service":"emoji","status_code":700}',
    "{not json at all",
    '{"a":1} trailing',
    "[1,2,3]",
    "java.lang.IllegalStateException: boom\n\tat com.shop.Checkout.pay(Checkout.java:42)\n\tat com.shop.Main.main(Main.java:7)\nCaused by: java.io.IOException: disk\n\t... 2 more",
    'Exception in thread "main" java.lang.RuntimeException: fatal\n\tat Main.main(Main.java:1)',
    "Traceback (most recent call last):\n  File \"/app/x.py\", line 3, in <module>\n    main()\nKeyError: 'user'",
    "2026-11-24 10:00:00,123 ERROR [main] c.s.Job - failed: java.lang.NullPointerException: x\n\tat c.s.Job.run(Job.java:9)",
    "2026-11-24 10:00:00.123  INFO 1234 --- [           main] c.e.DemoApplication      : Started",
    '10.0.0.7 - - [24/Nov/2026:10:00:00 +0000] "GET /q?a="b" HTTP/1.1" 404 0',
    "9999-12-31T23:59:59-01:00 ERROR beyond year 9999 in UTC",
]


@pytest.fixture(params=INTERPRETERS or [None], ids=lambda i: i or "no-lua")
def lua(request: pytest.FixtureRequest) -> str:
    if request.param is None:
        pytest.skip("no Lua interpreter (apt-get install luajit or lua5.4) to run ecs.lua")
    return request.param


def test_app_documents_match_pangs(lua: str, tmp_path: Path) -> None:
    now = int(time.time())
    received = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    path = "/pang/logs/app/checkout/app.log"
    tail = _tail()
    cases = [
        {"call": "pang_app", "tag": "app.pang.logs.app.checkout.app.log", "sec": now, "nsec": 0,
         "record": {tail["key"]: text, tail["path_key"]: path, tail["offset_key"]: 1000 * i}}
        for i, text in enumerate(APP_LINES)
    ]
    results = _run_lua(lua, tmp_path, cases)
    for (index, doc), text, i in zip(_fluent_bit_docs(results, "app"), APP_LINES, range(len(APP_LINES)), strict=True):
        want_index, want = _pang_app(text, path, 1000 * i, received)
        doc.pop("agent")
        assert (index, doc) == (want_index, want), text
        _assert_fits("app", {**doc, "agent": {"name": "x", "type": "x"}})


def test_app_differences_the_readme_documents(lua: str, tmp_path: Path) -> None:
    now = int(time.time())
    received = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    path = "/pang/logs/app/api/app.log"
    tail = _tail()
    texts = [
        "1969-12-31 23:59:59,000 ERROR before the epoch",  # EventTime's seconds are unsigned 32-bit
        "2107-01-01 00:00:00,000 ERROR after 2106",
        '{"id":12345678901234567890,"ratio":1.0,"time":"2200-01-01T00:00:00Z"}',
    ]
    cases = [{"call": "pang_app", "tag": "app.x", "sec": now, "nsec": 0,
              "record": {tail["key"]: t, tail["path_key"]: path, tail["offset_key"]: 0}} for t in texts]
    (_, early), (_, late), (_, numbers) = _fluent_bit_docs(_run_lua(lua, tmp_path, cases), "app")
    # an event time Fluent Bit cannot hold: the line keeps the time it was read at
    assert _pang_app(texts[0], path, 0, received)[1]["@timestamp"] == "1969-12-31T23:59:59.000Z"
    assert early["@timestamp"] == late["@timestamp"] == received
    assert early["log"]["level"] == late["log"]["level"] == "ERROR"
    # ... and a JSON time field with such a value stays under app, where pang promotes it
    _, pang_numbers = _pang_app(texts[2], path, 0, received)
    assert pang_numbers["@timestamp"] == "2200-01-01T00:00:00.000Z" and "time" not in pang_numbers["app"]
    assert numbers["app"]["time"] == "2200-01-01T00:00:00Z"
    # numbers: Lua's are doubles (integers past 2^53 lose precision) and an integral float is packed
    # as an integer
    assert pang_numbers["app"]["id"] == 12345678901234567890 and numbers["app"]["id"] != 12345678901234567890
    assert isinstance(pang_numbers["app"]["ratio"], float) and type(numbers["app"]["ratio"]) is int


def test_json_promotion_matches_pang_on_random_objects(lua: str, tmp_path: Path) -> None:
    """Seeded random objects over pang's ECS and library spellings: the same promotion, ranks and leftovers."""
    import random

    rng = random.Random(20261124)
    keys = ["@timestamp", "timestamp", "time", "ts", "asctime", "message", "msg", "log", "event", "log.level",
            "level", "severity", "levelname", "lvl", "log.logger", "logger", "logger_name", "name", "trace.id",
            "trace_id", "traceId", "span_id", "transaction.id", "service.name", "service", "service_name",
            "service_version", "error.message", "error", "error.type", "error_type", "exc_type", "stack_trace",
            "exc_info", "stack", "exception", "method", "status", "status_code", "http.response.status_code",
            "url.path", "path", "user_id", "userId", "event.action", "action", "other", "host", "tags"]
    nested = {"log": ["level", "logger"], "trace": ["id"], "span": ["id"], "service": ["name", "version", "x"],
              "error": ["message", "type", "stack_trace"], "url": ["path"], "user": ["id"], "event": ["action", "x"]}
    values = ["info", "WARNING", "Error", " warn ", "x" * 40, "", "order.placed", "user logged in", "/login", "GET",
              "get", "200", "2026-11-24T10:00:00Z", "2026-11-24 10:00:00,123", "1795514400", 0, 30, 50, 200, 999,
              1795514400, 1795514400123, 1795514400.25, 3.5, True, None, ["a", "at x"], [1, 2], [], {}]

    def obj(depth: int = 0) -> dict[str, Any]:
        o: dict[str, Any] = {}
        for _ in range(rng.randint(0, 6)):
            if rng.random() < 0.25:
                root = rng.choice(list(nested))
                o[root] = {k: rng.choice(values) for k in rng.sample(nested[root], rng.randint(0, len(nested[root])))}
            elif depth < 1 and rng.random() < 0.1:
                o[rng.choice(keys)] = obj(depth + 1)
            else:
                o[rng.choice(keys)] = rng.choice(values)
        return o

    now = int(time.time())
    received = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    path = "/pang/logs/app/api/app.log"
    tail = _tail()
    lines = [json.dumps(obj(), ensure_ascii=rng.random() < 0.5) for _ in range(600)]
    cases = [{"call": "pang_app", "tag": "app.x", "sec": now, "nsec": 0,
              "record": {tail["key"]: t, tail["path_key"]: path, tail["offset_key"]: 0}} for t in lines]
    for (index, doc), text in zip(_fluent_bit_docs(_run_lua(lua, tmp_path, cases), "app"), lines, strict=True):
        doc.pop("agent")
        assert (index, doc) == _pang_app(text, path, 0, received), text


def test_identical_lines_stay_apart_and_a_resend_is_identical(lua: str, tmp_path: Path) -> None:
    """The _id is a hash of the document: it must differ by offset and path, and only by them."""
    tail = _tail()
    line = "2026-11-24 10:00:00 WARN retrying"
    rec = {tail["key"]: line, tail["path_key"]: "/pang/logs/app/web/a.log"}
    cases = [
        {"call": "pang_app", "tag": "app.x", "sec": 1795514400, "nsec": 5, "record": {**rec, tail["offset_key"]: 0}},
        {"call": "pang_app", "tag": "app.x", "sec": 1795514401, "nsec": 7, "record": {**rec, tail["offset_key"]: 34}},
        {"call": "pang_app", "tag": "app.x", "sec": 1795514999, "nsec": 0, "record": {**rec, tail["offset_key"]: 0}},
        {"call": "pang_app", "tag": "app.x", "sec": 1795514400, "nsec": 0,
         "record": {**rec, tail["path_key"]: "/pang/logs/app/web/b.log", tail["offset_key"]: 0}},
    ]
    docs = [orjson.dumps(d, option=orjson.OPT_SORT_KEYS) for _, d in _fluent_bit_docs(_run_lua(lua, tmp_path, cases), "app")]
    assert docs[0] != docs[1] and docs[0] != docs[3]  # same text and time, other offset or file
    assert docs[0] == docs[2]  # read again (same file, same offset): the line's own time, the same document


# ---- syslog


SYSLOG_MESSAGES = [
    b'<165>1 2026-11-24T10:00:00.123456+01:00 web-1 shop 4242 ID47 [exampleSDID@32473 iut="3" eventSource="App\\"lication" eventID="1011"][x@1 a="1" a="2"] \xef\xbb\xbfAn application event',
    b"<34>1 2026-11-24T10:00:00Z mymachine su - ID47 - 'su root' failed for lonvick on /dev/pts/8",
    b"<13>1 - - - - - -",
    b"<34>Nov 24 10:00:00 mymachine su[230]: 'su root' failed",
    b"<13>Nov  4 09:08:07.250 host.example.com CRON[9] job done\n",
    b"<86>Nov 24 2026 10:00:00 fw01 %ASA-6-302013: Built outbound TCP connection",
    b"<30>2026-11-24T10:00:00.5+02:00 db-2 postgres[77]: checkpoint complete",
    b"<14>Nov 24 10:00:00 sshd[42]: Accepted publickey",
    b"<14>python app message\x00",
    b"Nov 24 10:00:00 relay kernel: eth0 up",
    b"plain words, no syslog at all",
    b"<999>not a priority",
    b"<13>1 2026-13-45T10:00:00Z host app - - - bad date",
]


def _pang_syslog(raw: bytes, received: datetime, peer: str) -> tuple[str, dict[str, Any]]:
    enricher = Enricher(agent_id="test", host_name=HOST)
    payload = enricher.spool_record("syslog", parse_syslog(raw, received=received, peer=peer))
    _, action = enricher.spool_action("epoch", 1, payload)
    meta, source = action.splitlines()
    doc = orjson.loads(source)
    doc.pop("agent")
    return orjson.loads(meta)["index"]["_index"], doc


def test_syslog_documents_match_pangs(lua: str, tmp_path: Path) -> None:
    now = int(time.time())
    received = datetime.fromtimestamp(now, UTC)
    cases = [
        {"call": "pang_syslog", "tag": "syslog.udp", "sec": now, "nsec": 0,
         "record": {_lua_constant("SYSLOG_TEXT_KEY"): raw.decode(), _lua_constant("SYSLOG_PEER_KEY"): "udp://10.1.2.3:41000"}}
        for raw in SYSLOG_MESSAGES
    ]
    results = _run_lua(lua, tmp_path, cases)
    sequences, ephemeral = [], set()
    for (index, doc), raw in zip(_fluent_bit_docs(results, "syslog"), SYSLOG_MESSAGES, strict=True):
        want_index, want = _pang_syslog(raw, received, "10.1.2.3:41000")
        agent = doc.pop("agent")
        ephemeral.add(agent["ephemeral_id"])
        sequences.append(doc["event"].pop("sequence"))
        assert (index, doc) == (want_index, want), raw
        _assert_fits("syslog", {**doc, "agent": agent, "event": {**doc["event"], "sequence": 1}})
    # the same message twice in one second stays two documents (Generate_ID hashes the record)
    assert sequences == list(range(1, len(SYSLOG_MESSAGES) + 1)) and len(ephemeral) == 1


# ---- metrics


def test_metrics_documents_use_pangs_names(lua: str, tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "loadavg").write_text("0.50 0.40 1.00 1/234 5678\n")
    now = 1795514400
    cpu = {"cpu_p": 25.0, "user_p": 20.0, "system_p": 5.0,
           "cpu0.p_cpu": 30.0, "cpu0.p_user": 25.0, "cpu0.p_system": 5.0,
           "cpu1.p_cpu": 20.0, "cpu1.p_user": 15.0, "cpu1.p_system": 5.0}
    mem = {"Mem.total": 4000000, "Mem.used": 3000000, "Mem.free": 2500000,
           "Swap.total": 1000, "Swap.used": 250, "Swap.free": 750}
    disk = {"read_size": 4096, "write_size": 512}
    net = {f"eth0.{d}.{k}": 10 for d in ("rx", "tx") for k in ("bytes", "packets", "errors", "drop")}
    cases = [{"call": "pang_metrics", "tag": f"metrics.{n}", "sec": now, "nsec": 0, "record": r}
             for n, r in (("cpu", cpu), ("memory", mem), ("diskio", disk), ("diskio", disk), ("network", net), ("x", {"other": 1}))]
    results = _run_lua(lua, tmp_path, cases, env={"PANG_FLB_PROC": str(proc)})
    assert results[-1]["code"] == -1  # an unknown sample is dropped, not indexed half-named
    docs = _fluent_bit_docs(results[:-1], "metrics")
    by_set = {}
    for index, doc in docs:
        assert index == index_for_day("metrics", doc["@timestamp"])
        assert doc["event"] == {"dataset": "metrics", "module": "system"}
        assert doc["host"] == {"name": HOST} and doc["metricset"]["period"] == 10000
        _assert_fits("metrics", doc)
        by_set.setdefault(doc["metricset"]["name"], []).append(doc["system"])
    assert by_set["cpu"][0]["cpu"] == {"cores": 2, "total": {"pct": 0.5, "norm": {"pct": 0.25}},
                                       "user": {"pct": 0.4, "norm": {"pct": 0.2}}, "system": {"pct": 0.1, "norm": {"pct": 0.05}}}
    assert by_set["load"][0]["load"] == {"1": 0.5, "5": 0.4, "15": 1, "norm": {"1": 0.25, "5": 0.2, "15": 0.5}, "cores": 2}
    memory = by_set["memory"][0]["memory"]
    kib = 1024
    assert memory["total"] == 4000000 * kib and memory["used"]["bytes"] == 3000000 * kib
    assert memory["free"] == 1000000 * kib and memory["actual"]["free"] == 2500000 * kib
    assert memory["used"]["pct"] == 0.75 and memory["actual"]["used"]["pct"] == 0.375
    assert memory["swap"] == {"total": 1000 * kib, "free": 750 * kib, "used": {"bytes": 250 * kib, "pct": 0.25}}
    # per-interval deltas become counters again (since Fluent Bit started)
    assert [d["diskio"]["read"]["bytes"] for d in by_set["diskio"]] == [4096, 8192]
    assert by_set["network"][0]["network"]["in"] == {"bytes": 10, "packets": 10, "errors": 10, "dropped": 10}
    assert by_set["network"][0]["network"]["name"] == "eth0"
