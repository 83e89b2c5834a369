#!/usr/bin/env python3
"""The driver of bench/run.sh (issue 12), in two phases against a running server.

capture: for each scenario, send a few requests one at a time, cut the PostgreSQL
    statement log at every request boundary, and turn the statements of one request
    (with their bound parameters) into a pgbench script: values that follow the
    request's random inputs become pgbench variables, ids returned by an earlier
    INSERT … RETURNING are taken with \\gset, everything else stays as captured.
    Writes <work>/<scenario>.pgbench, .lua (the wrk script) and .json (the rest).
measure: run wrk and pgbench per scenario at the same concurrency, sample the
    server's memory from /proc meanwhile, and print the table.

Standard library only. run.sh starts and stops the server and PostgreSQL.
"""
import argparse
import csv
import decimal
import io
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import random
from collections import Counter
from datetime import date, timedelta

SHOPPER_PASSWORD = "demo-shopper-password"
ADMIN = ("bench-admin@example.com", "bench-admin-password-91")
CAPTURED_REQUESTS = 8  # per scenario: enough to tell what varies from what does not


def scenarios(products):
    """Scenario name -> request. Variables: {name: (low, high)} random integers, or
    "unique" (registrations). `pgbench: False` for those bound by password hashing,
    where a PostgreSQL ceiling means nothing (they are there for memory)."""
    year_ago = (date.today() - timedelta(days=364)).isoformat()
    today = date.today().isoformat()
    report_conns = int(os.environ.get("BENCH_REPORT_CONNECTIONS", "1"))
    json_post = {"method": "POST", "json": True}
    return {
        "search": {"path": "/products?search=backpack&min_price=20&max_price=200"},
        "list": {"path": "/products?limit=20"},
        "list_deep": {"path": "/products?limit=20&after={cursor}", "needs": "cursor"},
        "product": {"path": "/products/{pid}", "vars": {"pid": (1, products)}},
        # Before `order`, which adds orders today, read live by every report.
        # The report targets are latencies of one report (≤ 200 ms): at 64 connections on two
        # cores every report would wait for 63 others, so they run at 1 unless told otherwise.
        "report_30": {"path": "/admin/reports/sales", "auth": "admin", "connections": report_conns},
        "report_365": {"path": f"/admin/reports/sales?from={year_ago}&to={today}&top=5", "auth": "admin",
                       "connections": report_conns},
        "order": {**json_post, "path": "/orders", "auth": "shopper", "vars": {"pid": (1, products)},
                  "body": '{"items":[{"product_id":{pid},"quantity":1}]}'},
        "login": {**json_post, "path": "/auth/login", "pgbench": False, "vars": {"n": (1, 200)},
                  "body": '{"email":"shopper{n}@demo.example","password":"' + SHOPPER_PASSWORD + '"}'},
        "register": {**json_post, "path": "/auth/register", "pgbench": False, "vars": {"u": "unique"},
                     "body": '{"email":"bench-{u}@example.com","password":"bench-register-password-7"}'},
    }


# ---------------------------------------------------------------- HTTP

def http(base, method, path, body=None, token=None, timeout=120):
    req = urllib.request.Request(base + path, method=method, data=body.encode() if body else None)
    if body:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def login(base, email, password):
    status, body = http(base, "POST", "/auth/login", json.dumps({"email": email, "password": password}))
    if status != 200:
        sys.exit(f"bench: login of {email} failed: {status} {body[:200]!r}")
    return json.loads(body)["access_token"]


def fill(template, values):
    """`{name}` placeholders -> values (JSON braces are left alone)."""
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template)


def draw(spec):
    values = {}
    for name, kind in spec.get("vars", {}).items():
        values[name] = f"c{time.time_ns()}" if kind == "unique" else random.randint(*kind)
    return values


def page_shape(body):
    """What a page of products carries beyond its depth: its variants, in number."""
    return sum(len(item.get("variants", [])) for item in json.loads(body)["items"])


def deep_cursor(base):
    """The `after` cursor of a page ~500 deep (20 a page), walked through `next_after`;
    None (with the reason) when listings have no keyset paging yet.

    Of pages 500 to 600, the first that carries as many variants as page 1 is taken: pages
    differ in content (a page with three 8-variant products is a quarter larger), and the
    comparison is about what depth costs, not what a page holds."""
    path, page, cursor, first_shape, fallback = "/products?limit=20", 1, None, None, None
    while page <= 600:
        status, body = http(base, "GET", path)
        if status != 200:
            return None, f"GET {path} gave {status}"
        if page == 1:
            first_shape = page_shape(body)
        elif page >= 500:
            fallback = fallback or cursor
            if page_shape(body) == first_shape:
                return cursor, None
        nxt = json.loads(body).get("next_after")
        if nxt is None:
            if page == 1:
                return None, "the first page has no `next_after` (a catalog of one page?)"
            return fallback or cursor, None
        cursor, path, page = nxt, f"/products?limit=20&after={urllib.request.quote(str(nxt))}", page + 1
    return fallback, None


# ---------------------------------------------------------------- the statement log

ENTRY = re.compile(r"^(?:.*?\[\d+\] <([^>]*)> )?(?:.*?)\b(LOG|DETAIL|ERROR|STATEMENT|WARNING|HINT|CONTEXT|NOTICE|FATAL):  (.*)$")
DURATION = re.compile(r"^duration: [\d.]+ ms  (statement|parse|bind|execute) ?([^:]*?): (.*)$", re.S)
PARAM = re.compile(r"\$(\d+) = (NULL|'(?:[^']|'')*')")


def log_entries(text):
    """(severity, message, application name) per log entry; continuation lines of a message
    start with a tab. The name comes from log_line_prefix's `<%a>` (bench/lib.sh)."""
    entries = []
    for line in text.split("\n"):
        if line.startswith("\t") and entries:
            entries[-1][1] += "\n" + line[1:]
            continue
        m = ENTRY.match(line)
        if m:
            entries.append([m.group(2), m.group(3), m.group(1)])
    return entries


def statements(text):
    """The statements executed in a slice of the log, in order:
    {sql, params: {n: value or None}, name, protocol}; plus the errors. The server's
    background work (event consumers woken by a request's commit, workers, clean-ups) runs on
    its own pool, named `<project>-background`: its statements are not the request's."""
    out, errors = [], []
    entries = [e for e in log_entries(text) if not (e[2] or "").endswith("-background")]
    for sev, msg, _app in entries:
        if sev == "ERROR":
            errors.append(msg)
            continue
        if sev == "DETAIL" and msg.startswith(("parameters: ", "Parameters: ")) and out and out[-1]["awaits_params"]:
            out[-1]["params"] = {int(n): (None if v == "NULL" else v[1:-1].replace("''", "'"))
                                 for n, v in PARAM.findall(msg)}
            out[-1]["awaits_params"] = False
            continue
        m = DURATION.match(msg) if sev == "LOG" else None
        if not m:
            continue
        kind, name, sql = m.groups()
        name = name.split("/")[0]  # "execute stmt/portal"
        if kind == "statement":
            out.append({"sql": sql, "params": {}, "name": None, "protocol": "simple", "awaits_params": False})
        elif kind == "execute":
            out.append({"sql": sql, "params": {}, "name": name, "protocol": "extended", "awaits_params": True})
        if out and kind != "execute":
            out[-1]["awaits_params"] = False
    return out, errors


class Log:
    def __init__(self, path):
        self.path = path

    def offset(self):
        return os.path.getsize(self.path)

    def read(self, start, end):
        with open(self.path, "rb") as f:
            f.seek(start)
            return f.read(end - start).decode("utf-8", "replace")


# ---------------------------------------------------------------- capture -> pgbench

SQL_PARAM = re.compile(r"'(?:[^']|'')*'|\$(\d+)")


def build_script(name, spec, windows, results=None):
    """pgbench script, -D constants, mode and notes from the captured requests of one
    scenario: windows = [(inputs, statements)] all of the same shape. `results(window, k)`
    gives statement k's result row as {column: (text, type)} (or None) for values that the
    server read from an earlier statement (a variant's id, its price)."""
    notes = []
    n_stmts = len(windows[0][1])
    constants = {}  # value -> variable name, shared by every statement
    lines, sets = [], []
    gsets = {}  # statement index -> prefix of its \gset

    def const(value):
        if value not in constants:
            constants[value] = f"v{len(constants) + 1}"
        return ":" + constants[value]

    def as_array(values, var):
        return all(v == "{%s}" % i[var] for v, (i, _) in zip(values, windows))

    bodies = []
    for k in range(n_stmts):
        first = windows[0][1][k]
        replacement = {}
        for p, value in first["params"].items():
            values = [w[1][k]["params"].get(p) for w in windows]
            if value is None and all(v is None for v in values):
                replacement[p] = "NULL"
                continue
            if len(set(values)) == 1:
                replacement[p] = const(value)
                continue
            # Varies per request: one of the request's random inputs, as is or as a one-element array?
            source = None
            for var in spec.get("vars", {}):
                if all(v == str(i[var]) for v, (i, _) in zip(values, windows)):
                    source = ":" + var
                elif as_array(values, var) and all(re.fullmatch(r"\{\d+\}", v or "") for v in values):
                    # pgbench cannot build '{42}' from an integer; ARRAY[...] is the same value.
                    source = f"ARRAY[:{var}::bigint]"
                    notes.append(f"statement {k + 1} ${p}: one-element array of :{var} written as ARRAY[:{var}::bigint]")
                if source:
                    break
            # ... or the id an earlier INSERT … RETURNING gave (an order id for its lines)?
            if source is None and all(v and v.isdigit() for v in values):
                producer = returning_id(windows[0][1], k, first["sql"], p)
                if producer is not None:
                    gsets[producer] = f"s{producer + 1}_"
                    source = f":s{producer + 1}_id"
            # ... or a column of the one row an earlier SELECT gave (as is or as a one-element array)?
            if source is None and results:
                source = result_source(windows, k, p, values, results, gsets)
            if source is None:
                source = const(value)
                notes.append(f"statement {k + 1} ${p} varies ({', '.join(map(repr, values[:3]))}, …) "
                             "but follows no input: held at its first value")
            replacement[p] = source
        sql = SQL_PARAM.sub(lambda m: replacement.get(int(m.group(1)), m.group(0)) if m.group(1) else m.group(0),
                            first["sql"].rstrip().rstrip(";"))
        bodies.append(sql)

    for var, kind in spec.get("vars", {}).items():
        if kind != "unique":
            sets.append(f"\\set {var} random({kind[0]}, {kind[1]})")
    for k, sql in enumerate(bodies):
        # pgbench ends a SQL command at a semicolon; a simple-protocol batch becomes one command each.
        lines.append(sql + (f"\n\\gset {gsets[k]}" if k in gsets else ";"))

    # The server's statements are prepared when most are executed by name: a named
    # statement is in the connection's statement cache, even when this window caught its
    # first use on a fresh pool connection (then it was parsed here once, not per request).
    # Unnamed and simple-protocol statements are parsed for every request.
    reparsed = sum(1 for s in windows[-1][1] if s["protocol"] == "simple" or s["name"] == "<unnamed>")
    mode = "prepared" if reparsed * 2 <= n_stmts else "extended"
    notes.insert(0, f"{n_stmts} statements per request, {reparsed} parsed anew on each "
                    f"({', '.join(str(k + 1) for k, s in enumerate(windows[-1][1]) if s['protocol'] == 'simple' or s['name'] == '<unnamed>') or 'none'})")
    head = [f"-- {name}: the SQL of one request, captured from {len(windows)} requests (bench/bench.py).",
            f"-- pgbench -M {mode}; constants come with -D (see {name}.json)."]
    return "\n".join(head + sets + lines) + "\n", {v: k for k, v in constants.items()}, mode, notes


def one_element(literal):
    """The element of a one-element PostgreSQL array literal ('{7}', '{"a b"}'), else None."""
    m = re.fullmatch(r'\{(?:"((?:[^"\\]|\\.)*)"|([^",{}]*))\}', literal or "")
    if not m:
        return None
    if m.group(1) is not None:
        return re.sub(r"\\(.)", r"\1", m.group(1))
    return m.group(2) if m.group(2) not in ("", "NULL") else None


def same_value(sent, read):
    """A parameter the server sent equals a value PostgreSQL printed: as text, or as the same
    number (the server writes 26.8 for a price PostgreSQL prints as 26.80)."""
    if sent is None or read is None:
        return False
    if sent == read:
        return True
    try:
        return decimal.Decimal(sent) == decimal.Decimal(read)
    except decimal.InvalidOperation:
        return False


def result_source(windows, k, p, values, results, gsets):
    """`:sJ_column` (or `ARRAY[:sJ_column::type]`) when parameter $p of statement k equals,
    in every captured request, a column of the single row an earlier SELECT returned."""
    for j in range(k - 1, -1, -1):
        if not re.match(r"\s*(SELECT|WITH)\b", windows[0][1][j]["sql"], re.I):
            continue
        rows = [results(w, j) for w in windows]
        if any(r is None for r in rows):
            continue
        for column, (_, typ) in rows[0].items():
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", column):
                continue
            if all(same_value(v, r[column][0]) for v, r in zip(values, rows)):
                gsets[j] = f"s{j + 1}_"
                return f":s{j + 1}_{column}"
            if all(same_value(one_element(v), r[column][0]) for v, r in zip(values, rows)):
                gsets[j] = f"s{j + 1}_"
                return f"ARRAY[:s{j + 1}_{column}::{typ}]"
    return None


def select_results(database_url):
    """`results` for build_script: runs a captured SELECT with its captured parameters (as
    literals) in a transaction that is rolled back; its single row, or None."""
    cache = {}

    def literal(v):
        return "NULL" if v is None else "'" + v.replace("'", "''") + "'"

    def run(window, k):
        stmt = window[1][k]
        sql = SQL_PARAM.sub(lambda m: literal(stmt["params"].get(int(m.group(1)))) if m.group(1) else m.group(0),
                            stmt["sql"].rstrip().rstrip(";"))
        if sql in cache:
            return cache[sql]
        psql = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", database_url]
        desc = subprocess.run(psql + ["-At", "-F", "\t"], input=sql + " \\gdesc\n",
                              capture_output=True, text=True)
        rows = subprocess.run(psql + ["--csv"], input=f"BEGIN;\n{sql};\nROLLBACK;\n",
                              capture_output=True, text=True)
        result = None
        if desc.returncode == 0 and rows.returncode == 0:
            types = [line.split("\t", 1) for line in desc.stdout.splitlines() if "\t" in line]
            table = list(csv.reader(io.StringIO(rows.stdout)))
            if len(table) == 2 and len(types) == len(table[0]):
                result = {name: (value, typ) for (name, typ), value in zip(types, table[1])}
        cache[sql] = result
        return result
    return run


def returning_id(stmts, k, sql, p):
    """Index of the INSERT … RETURNING before statement k whose id parameter $p takes: the
    one on the table named by $p's column (`order_id` -> "orders"), else the nearest."""
    column = None
    m = re.match(r'\s*INSERT INTO \S+ \(([^)]*)\)', sql)
    if m:
        cols = [c.strip().strip('"') for c in m.group(1).split(",")]
        vals = re.search(r"VALUES \(([^)]*)\)", sql)
        if vals:
            pos = [v.strip() for v in vals.group(1).split(",")]
            if f"${p}" in pos and pos.index(f"${p}") < len(cols):
                column = cols[pos.index(f"${p}")]
    candidates = []
    for j in range(k - 1, -1, -1):
        r = re.match(r'\s*INSERT INTO "?(\w+)"?.*\bRETURNING\b(.*)$', stmts[j]["sql"], re.S | re.I)
        if r and re.search(r'(^|[\s,."])id("|\s|,|$)', r.group(2)):
            candidates.append((j, r.group(1)))
    for j, table in candidates:
        if column and column == table.rstrip("s") + "_id":
            return j
    return candidates[0][0] if candidates else None


def restock(database_url):
    """Orders must not run out of stock halfway (409s would not be checkouts, and a captured
    refusal would not be a checkout's SQL). Stock is the variants' where they exist (the
    trigger mirrors it onto the products), else the products' (a binary from before)."""
    subprocess.run(["psql", database_url, "-qc", """DO $$ BEGIN
        IF to_regclass('product_variants') IS NOT NULL THEN
            UPDATE product_variants SET stock = 1000000 WHERE stock < 100000;
        ELSE
            UPDATE products SET stock = 1000000 WHERE stock < 100000;
        END IF; END $$"""], check=True)


def capture(args, specs, tokens, log):
    os.makedirs(args.work_dir, exist_ok=True)
    if "order" in specs:
        restock(args.database_url)
    cursor, why = deep_cursor(args.base) if "list_deep" in specs else (None, None)
    for name, spec in specs.items():
        meta = {"name": name, "spec": spec, "skip": None}
        if spec.get("needs") == "cursor":
            if cursor is None:
                meta["skip"] = why
                print(f"capture {name}: skipped: {why}")
                save(args.work_dir, meta)
                continue
            spec["path"] = fill(spec["path"], {"cursor": urllib.request.quote(str(cursor))})
        token = tokens.get(spec.get("auth"))
        write_lua(args.work_dir, name, spec, token)
        if not spec.get("pgbench", True):
            save(args.work_dir, meta)
            print(f"capture {name}: wrk only (bound by password hashing)")
            continue
        if not log:
            meta["skip_pgbench"] = "no statement log (BENCH_PG_LOG)"
            save(args.work_dir, meta)
            continue
        send = lambda v: http(args.base, spec.get("method", "GET"), fill(spec["path"], v),
                              fill(spec["body"], v) if "body" in spec else None, token)
        for _ in range(3):  # warm-up: caches, rollups, pool connections
            send(draw(spec))
        windows, statuses, errors = [], Counter(), []
        for _ in range(CAPTURED_REQUESTS):
            inputs = draw(spec)
            start = log.offset()
            status, _ = send(inputs)
            time.sleep(0.2)  # statements logged after the response (e.g. a pool recycle)
            stmts, errs = statements(log.read(start, log.offset()))
            statuses[status] += 1
            errors += errs
            if 200 <= status < 300:
                windows.append((inputs, stmts))
        shapes = Counter(tuple(s["sql"] for s in w[1]) for w in windows)
        if not shapes:
            meta["skip_pgbench"] = f"no successful request to capture (statuses {dict(statuses)})"
            print(f"capture {name}: {meta['skip_pgbench']}")
            save(args.work_dir, meta)
            continue
        # Background work of the server may fall into a window: keep the usual shape.
        shape, count = shapes.most_common(1)[0]
        same = [w for w in windows if tuple(s["sql"] for s in w[1]) == shape]
        script, constants, mode, notes = build_script(name, spec, same, select_results(args.database_url))
        if count < len(windows):
            notes.append(f"{len(windows) - count} of {len(windows)} requests issued other statements; left out")
        if errors:
            notes.append(f"PostgreSQL errors while capturing: {errors[:2]}")
        path = os.path.join(args.work_dir, name + ".pgbench")
        with open(path, "w") as f:
            f.write(script)
        meta.update(mode=mode, constants=constants, notes=notes, statements=len(shape))
        check = run_pgbench(args.database_url, path, mode, constants, clients=1, transactions=3)
        if check["error"]:
            meta["skip_pgbench"] = "captured script fails: " + check["error"]
        save(args.work_dir, meta)
        print(f"capture {name}: {len(shape)} statements, pgbench -M {mode}"
              + (f"; SCRIPT FAILS: {check['error']}" if check["error"] else ""))
        for note in notes:
            print(f"    {note}")


def save(work, meta):
    with open(os.path.join(work, meta["name"] + ".json"), "w") as f:
        json.dump(meta, f, indent=1)


def lua_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def lua_template(template):
    """`/products/{pid}` -> `"/products/" .. pid` (a Lua expression)."""
    parts = re.split(r"\{(\w+)\}", template)
    return " .. ".join(lua_string(x) if i % 2 == 0 else x for i, x in enumerate(parts) if i % 2 or x) or '""'


def write_lua(work, name, spec, token):
    """The wrk script: same request, same random inputs as the captured ones."""
    lines = ['local counter = 0', 'threads = 0',
             '-- each thread gets its own id and random seed (wrk would give all the same)',
             'function setup(thread) threads = threads + 1; thread:set("tid", threads) end',
             'function init(args) math.randomseed(os.time() * 1000 + (tid or 0)) end',
             f'wrk.method = "{spec.get("method", "GET")}"']
    if spec.get("json"):
        lines.append('wrk.headers["Content-Type"] = "application/json"')
    if token:
        lines.append(f'wrk.headers["Authorization"] = {lua_string("Bearer " + token)}')
    lines.append("request = function()")
    for var, kind in spec.get("vars", {}).items():
        if kind == "unique":
            lines.append(f'  counter = counter + 1\n  local {var} = os.time() .. "-" .. (tid or 0) .. "-" .. counter')
        else:
            lines.append(f"  local {var} = math.random({kind[0]}, {kind[1]})")
    body = lua_template(spec["body"]) if "body" in spec else "nil"
    lines.append(f"  return wrk.format(nil, {lua_template(spec['path'])}, nil, {body})\nend")
    if os.environ.get("BENCH_STATUSES"):
        # Which statuses the non-2xx were. Off by default: a response() hook makes wrk
        # parse every response, which takes CPU from the server on a small machine.
        lines.append("""statuses = {}
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
local all = {}
local setup_counting = setup
function setup(thread) setup_counting(thread); table.insert(all, thread) end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(all) do for k, v in pairs(t:get("statuses")) do total[k] = (total[k] or 0) + v end end
  local out = {}
  for k, v in pairs(total) do table.insert(out, k .. "=" .. v) end
  io.write("statuses: " .. table.concat(out, " ") .. "\\n")
end""")
    with open(os.path.join(work, name + ".lua"), "w") as f:
        f.write("\n".join(lines) + "\n")


# ---------------------------------------------------------------- measure

def seconds(duration):
    m = re.fullmatch(r"(\d+)([smh]?)", duration)
    if not m:
        sys.exit(f"bench: BENCH_DURATION {duration!r}: use e.g. 10s, 1m")
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def run_pgbench(url, script, mode, constants, clients, transactions=None, duration=None):
    cmd = ["pgbench", "-n", "-M", mode, "-c", str(clients), "-j", str(min(2, clients)), "-f", script]
    cmd += ["-t", str(transactions)] if transactions else ["-T", str(duration)]
    for var, value in constants.items():
        cmd += ["-D", f"{var}={value}"]
    cmd.append(url)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=(duration or 10) + 60)
    except subprocess.TimeoutExpired:
        return {"error": "pgbench timed out", "tps": None}
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", p.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", p.stdout)
    if p.returncode == 0 and not tps and "actually processed: 0/" in p.stdout:
        return {"error": f"no transaction completed in {duration}s", "tps": 0.0, "failed": 0}
    if p.returncode != 0 or not tps:
        err = (p.stderr.strip().splitlines() or ["exit %d" % p.returncode])
        return {"error": next((l for l in err if "ERROR" in l or "error" in l), err[-1])[:300], "tps": None}
    return {"error": None, "tps": float(tps.group(1)), "failed": int(failed.group(1)) if failed else 0}


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


WARM_UP_SECONDS = 2


def run_wrk(base, lua, connections, duration):
    # A response slower than --timeout counts as a socket error (shown in the table).
    cmd = ["wrk", "--latency", "--timeout", "10s", "-t", str(min(2, connections)), "-c", str(connections),
           "-d", f"{duration}s", "-s", lua, base]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    out = p.stdout

    def latency(pct):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        return float(m.group(1)) * UNITS[m.group(2)] if m else None

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: (.*)", out)
    total = re.search(r"(\d+) requests in", out)
    return {"rps": float(rps.group(1)) if rps else None, "p50": latency(50), "p99": latency(99),
            "requests": int(total.group(1)) if total else 0,
            "errors": int(non2xx.group(1)) if non2xx else 0, "socket": socket.group(1) if socket else None,
            "statuses": re.search(r"^statuses: (.*)$", out, re.M).group(1) if "statuses: " in out else None}


class Memory(threading.Thread):
    """Samples the server's VmRSS (and reads VmHWM) from /proc every 100 ms."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.current, self.hwm = pid, {}, None, 0
        self.stopped = threading.Event()

    def sample(self):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            return None
        kib = lambda k: int(fields[k].split()[0]) if k in fields else 0
        self.hwm = max(self.hwm, kib("VmHWM"))
        return kib("VmRSS")

    def run(self):
        while not self.stopped.wait(0.1):
            rss = self.sample()
            if rss and self.current:
                self.peak[self.current] = max(self.peak.get(self.current, 0), rss)


def measure(args, specs):
    duration = seconds(os.environ.get("BENCH_DURATION", "10s"))
    connections = int(os.environ.get("BENCH_CONNECTIONS", "64"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "1"))
    memory = Memory(args.server_pid)
    idle = memory.sample()
    memory.start()
    rows = []
    for name in specs:
        meta_path = os.path.join(args.work_dir, name + ".json")
        if not os.path.exists(meta_path):
            print(f"{name}: not captured; run the capture phase first", file=sys.stderr)
            continue
        with open(meta_path) as f:
            meta = json.load(f)
        if meta.get("skip"):
            rows.append({"name": name, "skip": meta["skip"]})
            continue
        if name == "order":
            restock(args.database_url)
        conns = meta["spec"].get("connections", connections)
        with_pg = meta["spec"].get("pgbench", True) and not meta.get("skip_pgbench")
        print(f"measure {name}: {rounds} × ({duration}s wrk{f' + {duration}s pgbench' if with_pg else ''}) "
              f"at {conns} connections", file=sys.stderr)
        results = []
        # A warm-up run, not measured: every pooled connection prepares its statements and
        # a search reads its matches once, as on a server that has been up for a while.
        memory.current = name
        run_wrk(args.base, os.path.join(args.work_dir, name + ".lua"), conns, WARM_UP_SECONDS)
        for _ in range(rounds):
            memory.current = name
            w = run_wrk(args.base, os.path.join(args.work_dir, name + ".lua"), conns, duration)
            memory.current = None
            pg = {"tps": None, "error": meta.get("skip_pgbench")}
            if with_pg:
                pg = run_pgbench(args.database_url, os.path.join(args.work_dir, name + ".pgbench"),
                                 meta["mode"], meta["constants"], conns, duration=duration)
            results.append((w, pg))
        med = lambda vals: statistics.median(vals) if vals and None not in vals else None
        row = {"name": name, "conns": conns, "rps": med([w["rps"] for w, _ in results]) if any(w["requests"] for w, _ in results) else None,
               "p50": med([w["p50"] for w, _ in results]), "p99": med([w["p99"] for w, _ in results]),
               "errors": sum(w["errors"] for w, _ in results), "requests": sum(w["requests"] for w, _ in results),
               "socket": next((w["socket"] for w, _ in results if w["socket"]), None),
               "statuses": [w["statuses"] for w, _ in results if w["statuses"]],
               "tps": med([p["tps"] for _, p in results]), "mode": meta.get("mode"),
               "pg_error": next((p["error"] for _, p in results if p.get("error")), None),
               "rss": memory.peak.get(name)}
        rows.append(row)
    memory.stopped.set()
    memory.sample()
    print_table(rows, specs, idle, memory.hwm, duration, connections, rounds)


def print_table(rows, specs, idle, hwm, duration, connections, rounds):
    ms = lambda v: "—" if v is None else (f"{v:.1f}ms" if v < 100 else f"{v:.0f}ms")
    num = lambda v: "—" if v is None else f"{v:,.0f}"
    print(f"\n{connections} connections, {duration}s per run, "
          f"{'median of %d rounds' % rounds if rounds > 1 else '1 round'}, {os.environ.get('BENCH_PRODUCTS', '?')} products\n")
    head = (f"{'scenario':<11} {'conns':>5} {'req/s':>8} {'p50':>8} {'p99':>8} {'non-2xx':>8} "
            f"{'pgbench tps':>12} {'-M':>9} {'ratio':>6} {'peak RSS':>9}")
    print(head)
    print("-" * len(head))
    notes = []
    for r in rows:
        if r.get("skip"):
            print(f"{r['name']:<11} skipped: {r['skip']}")
            continue
        ratio = f"{100 * r['rps'] / r['tps']:.0f}%" if r["rps"] and r["tps"] else "—"
        rss = f"{r['rss'] / 1024:.0f} MiB" if r["rss"] else "—"
        err = f"{r['errors']}" + ("!" if r["errors"] else "")
        if r["rps"] is None:
            r["p50"] = r["p99"] = None
        print(f"{r['name']:<11} {r['conns']:>5} {num(r['rps']):>8} {ms(r['p50']):>8} {ms(r['p99']):>8} {err:>8} "
              f"{num(r['tps']):>12} {r['mode'] or '—':>9} {ratio:>6} {rss:>9}")
        if r["pg_error"] and specs.get(r["name"], {}).get("pgbench", True):
            notes.append(f"{r['name']}: pgbench: {r['pg_error']}")
        if r["socket"]:
            notes.append(f"{r['name']}: wrk socket errors (timeouts are responses over 10 s): {r['socket']}")
        for st in r["statuses"]:
            notes.append(f"{r['name']}: statuses {st}")
    print()
    for name, spec in specs.items():
        print(f"  {name:<11} {spec.get('method', 'GET')} {spec['path']}" + (f"  {spec['body']}" if "body" in spec else ""))
    by = {r["name"]: r for r in rows if not r.get("skip")}
    if by.get("list_deep", {}).get("rps") and by.get("list", {}).get("rps"):
        print(f"\npage ~500 by cursor (as many variants as page 1 where one of pages 500-600 has): {100 * by['list_deep']['rps'] / by['list']['rps']:.0f}% of page 1's req/s")
    if by.get("list", {}).get("rps") and by.get("product", {}).get("rps"):
        print(f"listing: {100 * by['list']['rps'] / by['product']['rps']:.0f}% of product-by-id req/s")
    print(f"server memory: idle {(idle or 0) / 1024:.0f} MiB, peak RSS {max([r.get('rss') or 0 for r in rows] + [0]) / 1024:.0f} MiB"
          f" (sampled every 100 ms), VmHWM {hwm / 1024:.0f} MiB")
    print("ratio = req/s ÷ pgbench tps of the captured statements of one request (scripts in target/bench-run/)")
    for note in notes:
        print("  " + note)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("phase", choices=["capture", "measure"])
    ap.add_argument("scenario", nargs="*")
    ap.add_argument("--base", required=True)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--pg-log", default="")
    ap.add_argument("--server-pid", type=int, required=True)
    ap.add_argument("--work-dir", required=True)
    args = ap.parse_intermixed_args()

    products = int(os.environ.get("BENCH_PRODUCTS", "10000"))
    specs = scenarios(products)
    unknown = [s for s in args.scenario if s not in specs]
    if unknown:
        sys.exit(f"bench: unknown scenario {', '.join(unknown)}; known: {' '.join(specs)}")
    if args.scenario:
        specs = {k: v for k, v in specs.items() if k in args.scenario}
    if args.phase == "capture":
        # The wrk scripts carry these tokens into the measure phase (same SECRET_KEY).
        tokens = {"shopper": login(args.base, "shopper1@demo.example", SHOPPER_PASSWORD),
                  "admin": login(args.base, *ADMIN)}
        capture(args, specs, tokens, Log(args.pg_log) if args.pg_log else None)
    else:
        measure(args, specs)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # run.sh's trap stops the server and PostgreSQL
        sys.exit(130)
