"""Sandbox server core: one local HTTP server for every vendor twin.

`/<prefix>/...` goes to the vendor registered under that prefix, with the vendor's own
paths below it. In front of every vendor: a per-client token bucket (real time, like the
vendors' limits), then the fault plan, then the vendor handler. `/_sandbox/...` is the
control plane (faults, request log, health) so a separately started server can be driven.

A vendor twin is any object with `prefix`, `rate_limit` ((per_s, burst) or None),
`rate_limited_body`, `error_body(status, message)` and `handle(request) -> (status, obj,
headers)`; optional `wrong_shape_body`, `duplicate_rows(obj, rng)` and `short_page(obj)` refine
those faults.

Vendors with credentials also define `credential(request) -> str | None` (where the vendor reads
its key) and `auth_error(missing: bool) -> (status, obj)`; the core compares it with the key the
sandbox holds for that vendor. Entitlements are switchable per run (`deny` / `grant`): a denied
path answers `entitlement_error(kind, request) -> (status, obj)` in the vendor's own shape, with
kind "not_entitled" or "no_access".
"""

from __future__ import annotations

import gzip
import json
import math
import random
import re
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from .faults import FaultPlan, FaultRule
from .market import GeneratedMarket, ReplayMarket
from .registry import SANDBOX_KEYS, build_twins

JSON = "application/json"
_REASONS = {500: "Internal server error", 502: "Bad gateway", 503: "Service unavailable"}
# Served with status 200 by the "malformed" fault: what a confused proxy sends back.
MALFORMED_BODY = b"<html><body><h1>upstream error</h1></body></html>"
# Served with status 200 and an HTML content type by "html_200": a CDN's or load balancer's page.
HTML_ERROR_PAGE = (b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body>"
                   b"<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n")
TRICKLE_PIECES = 20  # a "trickle" body arrives in this many pieces spread over the rule's delay_s


@dataclass
class Request:
    method: str
    path: str  # below the vendor prefix, e.g. "/products/BTC-USD/candles"
    query: dict[str, list[str]]
    headers: dict[str, str]
    client: str
    body: bytes = b""


class TokenBuckets:
    """Token bucket per key (vendor, client ip); rate None or inf means unlimited."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[tuple, tuple[float, float]] = {}

    def allow(self, key: tuple, rate: float | None, burst: int) -> bool:
        if rate is None or not math.isfinite(rate):
            return True
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate)
            ok = tokens >= 1.0
            self._buckets[key] = (tokens - 1.0 if ok else tokens, now)
            return ok


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a hung client must not keep the process alive
    sandbox: "SandboxServer"

    def handle_error(self, request, client_address) -> None:
        # A client that gave up (its deadline during a trickle, a reset) is expected, not a traceback.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real vendors behind a client pool
    server_version = "btc-platform-sandbox/0.1"
    timeout = 60  # idle keep-alive connections are dropped after this
    disable_nagle_algorithm = True  # headers and body go out in two writes: avoid 40 ms delayed-ACK stalls

    def setup(self) -> None:
        super().setup()
        self.server.sandbox._conns.add(self.connection)

    def finish(self) -> None:
        self.server.sandbox._conns.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def _dispatch(self) -> None:
        self.server.sandbox._serve(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

    def log_message(self, format, *args) -> None:  # the request log replaces stderr noise
        pass


@dataclass
class _Reply:
    status: int | None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    trickle_s: float = 0.0  # spread the body's pieces over this many seconds
    drop_at: int | None = None  # close the connection after this many body bytes


def _corrupt_gzip(data: bytes) -> bytes:
    """`data` gzipped, with the first deflate block's header set to the reserved block type:
    a gzip stream every decoder rejects ("invalid block type"), the same bytes every time."""
    packed = gzip.compress(data, mtime=0)
    return packed[:10] + b"\xff" + packed[11:]


def _short_page(obj):
    """The page with the last half of its rows dropped: a JSON list, else the longest list of rows
    (or Alpha Vantage-style dict of dated rows) a dict holds within two levels."""
    if isinstance(obj, list):
        return obj[: len(obj) // 2]
    if not isinstance(obj, dict):
        return obj
    best: tuple[int, list] = (0, [])

    def visit(d: dict, path: list, depth: int) -> None:
        nonlocal best
        for k, v in d.items():
            rows = isinstance(v, list) or (isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()))
            if rows and len(v) > best[0]:
                best = (len(v), path + [k])
            if isinstance(v, dict) and depth < 2:
                visit(v, path + [k], depth + 1)

    visit(obj, [], 1)
    if not best[1]:
        return obj
    out = json.loads(json.dumps(obj))  # a copy: the twin may hand out shared objects
    parent = out
    for k in best[1][:-1]:
        parent = parent[k]
    rows = parent[best[1][-1]]
    keep = len(rows) // 2
    parent[best[1][-1]] = rows[:keep] if isinstance(rows, list) else dict(list(rows.items())[:keep])
    return out


def _dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class SandboxServer:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        replay: dict[str, str | Path] | None = None,
        rate_limit_per_s: float = 10.0,
        rate_limit_burst: int = 15,
        seed: int = 7,
        rate_limits: dict[str, tuple[float, int] | None] | None = None,
        keys: dict[str, str] | None = None,
    ) -> None:
        self.seed = seed
        self.market = GeneratedMarket(seed)
        self.replay = {sym: ReplayMarket(d) for sym, d in (replay or {}).items()}
        self.keys = dict(SANDBOX_KEYS if keys is None else keys)
        self.vendors: dict[str, object] = {}
        limits = {"coinbase": (rate_limit_per_s, rate_limit_burst), **(rate_limits or {})}
        for twin in build_twins(self.market, self.replay, limits):
            self.add_vendor(twin)
        self._denied: list[tuple[str, re.Pattern, str]] = []
        self._denied_lock = threading.Lock()
        self.faults = FaultPlan()
        self.request_log: list[dict] = []
        self._log_lock = threading.Lock()
        self._limiter = TokenBuckets()
        self._stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._thread: threading.Thread | None = None
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.sandbox = self
        self.host, self.port = host, self._httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"

    # -- public API -------------------------------------------------------------------------
    def add_vendor(self, vendor) -> None:
        self.vendors[vendor.prefix] = vendor

    def coinbase_url(self) -> str:
        return f"{self.url}/coinbase"

    def vendor_url(self, prefix: str) -> str:
        """The base URL to give a vendor's client: the vendor's own paths go below it."""
        return f"{self.url}/{prefix}"

    def deny(self, vendor: str, path_regex: str = ".*", kind: str = "not_entitled") -> None:
        """Answer matching requests as the vendor does when the plan lacks them (or the key lost access)."""
        if kind not in ("not_entitled", "no_access"):
            raise ValueError(f"kind must be not_entitled or no_access, not {kind!r}")
        with self._denied_lock:
            self._denied.append((vendor, re.compile(path_regex), kind))

    def grant(self, vendor: str, path_regex: str | None = None) -> None:
        """Lift denials for a vendor (all of them, or those with exactly this regex)."""
        with self._denied_lock:
            self._denied = [d for d in self._denied
                            if not (d[0] == vendor and (path_regex is None or d[1].pattern == path_regex))]

    def _denial(self, vendor: str, path: str) -> str | None:
        with self._denied_lock:
            return next((kind for v, rx, kind in self._denied if v == vendor and rx.search(path)), None)

    def start(self) -> "SandboxServer":
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
                name=f"sandbox:{self.port}",
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a "timeout" fault
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()
        for conn in list(self._conns):  # idle keep-alive connections would linger otherwise
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> "SandboxServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def set_faults(self, rules: list[FaultRule], seed: int = 0) -> None:
        """Replace the fault plan; `seed` drives the rules' `probability` draws."""
        self.faults.replace(rules, seed)

    def clear_faults(self) -> None:
        self.faults.replace([])

    def clear_request_log(self) -> None:
        with self._log_lock:
            del self.request_log[:]

    # -- request handling -------------------------------------------------------------------
    def _serve(self, h: _Handler) -> None:
        split = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        if split.path == "/_sandbox" or split.path.startswith("/_sandbox/"):
            self._write(h, self._control(h.command, split.path, body))
            return
        name = split.path.split("/")[1] if split.path.count("/") >= 1 else ""
        vendor = self.vendors.get(name)
        entry = {"t": time.monotonic(), "method": h.command, "path": split.path,
                 "query": split.query, "status": None, "vendor": name if vendor else None,
                 "fault": None}
        try:
            if vendor is None:
                reply = _Reply(404, _dumps({"message": "NotFound"}))
            else:
                reply = self._vendor_reply(h, vendor, name, split, body, entry)
            if reply.status is None:
                self._reset(h)
            else:
                self._write(h, reply)
            entry["status"] = reply.status
        finally:
            with self._log_lock:
                self.request_log.append(entry)

    def _vendor_reply(self, h, vendor, name, split, body, entry) -> _Reply:
        rate, burst = getattr(vendor, "rate_limit", None) or (None, 0)
        if not self._limiter.allow((name, h.client_address[0]), rate, burst):
            return _Reply(429, _dumps(vendor.rate_limited_body))
        rule = self.faults.pick(name, h.path)
        kind = rule.kind if rule else None
        entry["fault"] = kind
        if kind == "reset":
            return _Reply(None)
        if kind == "timeout":
            self._stopping.wait(rule.delay_s)
        if kind == "429":
            headers = {} if rule.retry_after is None else {"Retry-After": f"{rule.retry_after:g}"}
            return _Reply(429, _dumps(vendor.rate_limited_body), headers)
        if kind in ("500", "502", "503"):
            status = int(kind)
            return _Reply(status, _dumps(vendor.error_body(status, _REASONS[status])))
        if kind == "empty_500":
            return _Reply(500, b"")
        if kind == "malformed":
            return _Reply(200, MALFORMED_BODY)
        if kind == "html_200":
            return _Reply(200, HTML_ERROR_PAGE, {"Content-Type": "text/html; charset=utf-8"})
        if kind == "wrong_shape":
            return _Reply(200, _dumps(getattr(vendor, "wrong_shape_body", [[1, 2, 3]])))

        prefix_len = len(name) + 1
        query = parse_qs(split.query, keep_blank_values=True)
        req = Request(h.command, split.path[prefix_len:] or "/", query, dict(h.headers.items()),
                      h.client_address[0], body)
        if hasattr(vendor, "credential") and name in self.keys:
            given = vendor.credential(req)
            if given != self.keys[name]:
                status, obj = vendor.auth_error(missing=not given)
                return _Reply(status, _dumps(obj))
        # Denials match path and query (e.g. CryptoQuant's `window=hour`), as fault rules do.
        denied = self._denial(name, f"{req.path}?{split.query}" if split.query else req.path)
        if denied:
            # Keyless vendors (Fear & Greed, Coinbase candles) have no plans: a denial is a plain 403.
            status, obj = vendor.entitlement_error(denied, req) if hasattr(vendor, "entitlement_error") \
                else (403, vendor.error_body(403, "Forbidden"))
            return _Reply(status, _dumps(obj))
        try:
            status, obj, headers = vendor.handle(req)
        except Exception as exc:  # a twin bug must show up as a 500, not a hung client
            return _Reply(500, _dumps(vendor.error_body(500, f"sandbox error: {exc!r}")))
        if kind == "duplicate_rows" and status == 200:
            obj = self._duplicate(vendor, obj, split.query)
        if kind == "short_page" and status == 200:
            obj = getattr(vendor, "short_page", _short_page)(obj)
        data = _dumps(obj)
        headers = dict(headers)
        if kind == "truncated":
            data = data[: len(data) // 2]
        if kind == "gzip_corrupt":
            data = _corrupt_gzip(data)
            headers["Content-Encoding"] = "gzip"
        if kind == "trickle":
            return _Reply(status, data, headers, trickle_s=rule.delay_s)
        if kind == "drop_mid_body":
            return _Reply(status, data, headers, drop_at=len(data) // 2)
        return _Reply(status, data, headers)

    def _duplicate(self, vendor, obj, query: str):
        # Seeded by the query so the same faulty page is the same bytes every time.
        rng = random.Random(f"{self.seed}:{query}")
        if hasattr(vendor, "duplicate_rows"):
            return vendor.duplicate_rows(obj, rng)
        if isinstance(obj, list):
            rows = obj + obj
            rng.shuffle(rows)
            return rows
        return obj

    def _write(self, h: _Handler, reply: _Reply) -> None:
        try:
            h.send_response(reply.status)
            headers = {"Content-Type": JSON, **reply.headers}
            headers["Content-Length"] = str(len(reply.body))
            for k, v in headers.items():
                h.send_header(k, v)
            h.end_headers()
            if reply.drop_at is not None:
                h.wfile.write(reply.body[: reply.drop_at])
                h.connection.shutdown(socket.SHUT_RDWR)  # a clean close, short of the announced length
                h.close_connection = True
            elif reply.trickle_s > 0:
                body, n = reply.body, TRICKLE_PIECES
                step = max(1, -(-len(body) // n))
                for i in range(0, len(body), step):
                    if self._stopping.wait(reply.trickle_s / n):
                        h.close_connection = True
                        return
                    h.wfile.write(body[i : i + step])
            else:
                h.wfile.write(reply.body)
        except OSError:  # the client gave up (e.g. its timeout fired during a "timeout" fault)
            h.close_connection = True

    @staticmethod
    def _reset(h: _Handler) -> None:
        # Linger 0 turns close() into a TCP RST: the client sees a reset, not a clean EOF.
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.connection.close()
        h.close_connection = True

    def _control(self, method: str, path: str, body: bytes) -> _Reply:
        what = path.removeprefix("/_sandbox").strip("/")
        if what == "faults" and method == "POST":
            try:
                rules, seed = json.loads(body or b"[]"), 0
                if isinstance(rules, dict) and "rules" in rules:  # {"rules": [...], "seed": n}
                    rules, seed = rules["rules"], int(rules.get("seed", 0))
                if isinstance(rules, dict):
                    rules = [rules]
                self.set_faults([FaultRule.from_dict(r) for r in rules], seed)
            except (ValueError, TypeError) as exc:
                return _Reply(400, _dumps({"message": f"bad fault plan: {exc}"}))
            return _Reply(200, _dumps({"rules": self.faults.describe()}))
        if what == "faults" and method == "DELETE":
            self.clear_faults()
            return _Reply(200, _dumps({"rules": []}))
        if what == "faults" and method == "GET":
            return _Reply(200, _dumps({"rules": self.faults.describe()}))
        if what == "requests" and method == "GET":
            with self._log_lock:
                log = list(self.request_log)
            return _Reply(200, _dumps(log))
        if what == "requests" and method == "DELETE":
            self.clear_request_log()
            return _Reply(200, _dumps([]))
        if what == "entitlements" and method in ("POST", "DELETE"):
            try:
                spec = json.loads(body or b"{}")
                if method == "POST":
                    self.deny(spec["vendor"], spec.get("path_regex", ".*"), spec.get("kind", "not_entitled"))
                else:
                    self.grant(spec["vendor"], spec.get("path_regex"))
            except (ValueError, KeyError, TypeError) as exc:
                return _Reply(400, _dumps({"message": f"bad entitlement change: {exc!r}"}))
            with self._denied_lock:
                return _Reply(200, _dumps({"denied": [[v, rx.pattern, k] for v, rx, k in self._denied]}))
        if what == "health" and method == "GET":
            return _Reply(200, _dumps({"ok": True, "vendors": sorted(self.vendors)}))
        return _Reply(404, _dumps({"message": "NotFound"}))
