"""End-to-end harness for Scopegate in Kong's Proxy-Wasm host: nginx +
ngx_wasm_module + Wasmtime, built by `scripts/kong-host`.

Keys, token minting, the filter configuration and the denial assertions come
from the Envoy suite (`tests/e2e/harness.py`, imported as `e2e`); this module
adds what differs here:

* `RawEcho`: an upstream that records every header *line* it received, in
  order and with duplicates (ngx_wasm_module "removes" a request header by
  flagging it, so what nginx actually sends is what must be checked);
* `Nginx`: one nginx master with 2 workers per filter configuration, the
  filter loaded as Kong loads it (`wasm { module ... }` + `proxy_wasm` in the
  location), HTTP/1.1 and h2c (prior knowledge) on the same port, and a
  second server block without the filter on another port; with `tls=` (an
  `e2e.TlsListener`) the filtered server block also listens with TLS on
  `tls_port`, requesting client certificates (`ssl_verify_client
  optional`) so that `$ssl_client_raw_cert` (the filter's
  `ngx.ssl_client_raw_cert`) holds the one presented.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
E2E_DIR = os.path.join(REPO_ROOT, "tests", "e2e")
if E2E_DIR not in sys.path:
    sys.path.insert(0, E2E_DIR)

import harness as e2e  # noqa: E402  (tests/e2e/harness.py)

MARKER_HEADER = e2e.MARKER_HEADER
# nginx refuses a configuration token (a quoted string included) of 4096 bytes or more
NGINX_MAX_TOKEN = 4095


def find_nginx() -> str:
    return os.environ.get("KONG_NGINX_BIN", "")


def find_wasm() -> str:
    return e2e.find_wasm()


free_port = e2e.free_port


def statuses(n, t: str, count: int = 12) -> list[int]:
    """`count` requests, a new connection each (they land on both workers)."""
    return [n.get("/payments/1", token=t, marker=False).status for _ in range(count)]


# --------------------------------------------------------------------------
# Upstream that reports every header line
# --------------------------------------------------------------------------


class RawEcho:
    """HTTP/1.x server on 127.0.0.1 that parses requests itself, so nothing is
    merged: `raw_headers` is the list of (name, value) lines in the order
    received; `headers` maps lowercase names to all their values (the shape
    the e2e helpers expect). Answers 200 with a JSON echo (header `x-echo: 1`),
    or a fixed document from `documents` (path -> (status, bytes, headers))."""

    def __init__(self, port: int = 0):
        self.requests: list[dict] = []
        self.documents: dict[str, tuple[int, bytes, dict]] = {}
        self.lock = threading.Lock()
        self._sock = None
        self.port = port
        self.start()

    # -- lifecycle -------------------------------------------------------

    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(128)
        self.port = s.getsockname()[1]
        self._sock = s
        self._thread = threading.Thread(target=self._serve, args=(s,), name=f"echo-{self.port}", daemon=True)
        self._thread.start()

    def stop(self):
        """Close the listening socket: new connections are refused."""
        s, self._sock = self._sock, None
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _serve(self, s):
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    # -- one connection, one request ------------------------------------

    def _handle(self, conn: socket.socket):
        try:
            conn.settimeout(10)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            method, target = parts[0], parts[1] if len(parts) > 1 else ""
            raw_headers = []
            for line in lines[1:]:
                name, _, value = line.partition(":")
                raw_headers.append((name, value.strip(" \t")))
            hdrs: dict[str, list[str]] = {}
            for name, value in raw_headers:
                hdrs.setdefault(name.lower(), []).append(value)
            body = rest
            te = ",".join(hdrs.get("transfer-encoding", [])).lower()
            if "chunked" in te:
                body = self._read_chunked(conn, rest)
            else:
                n = int((hdrs.get("content-length") or ["0"])[0] or 0)
                while len(body) < n:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    body += chunk
            record = {
                "method": method,
                "path": target,
                "version": parts[2] if len(parts) > 2 else "",
                "raw_headers": raw_headers,
                "headers": hdrs,
                "body": body.decode("latin-1"),
            }
            with self.lock:
                self.requests.append(record)
                doc = self.documents.get(target)
            if doc is not None:
                status, payload, extra = doc
                self._respond(conn, status, payload, {"content-type": "application/json", **extra})
            else:
                payload = json.dumps(record).encode()
                self._respond(conn, 200, payload, {"content-type": "application/json", "x-echo": "1"})
        except (OSError, ValueError):
            pass
        finally:
            conn.close()

    @staticmethod
    def _read_chunked(conn, buf: bytes) -> bytes:
        out = b""
        while True:
            while b"\r\n" not in buf:
                buf += conn.recv(65536)
            line, _, buf = buf.partition(b"\r\n")
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return out
            while len(buf) < size + 2:
                buf += conn.recv(65536)
            out += buf[:size]
            buf = buf[size + 2 :]

    @staticmethod
    def _respond(conn, status: int, payload: bytes, headers: dict):
        head = f"HTTP/1.1 {status} X\r\n"
        for k, v in headers.items():
            head += f"{k}: {v}\r\n"
        head += f"content-length: {len(payload)}\r\nconnection: close\r\n\r\n"
        conn.sendall(head.encode("latin-1") + payload)

    # -- lookups ---------------------------------------------------------

    def find(self, marker: str) -> dict | None:
        with self.lock:
            for r in self.requests:
                if marker in r["headers"].get(MARKER_HEADER, []):
                    return r
        return None

    def count(self, path: str) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r["path"] == path)


# --------------------------------------------------------------------------
# nginx + ngx_wasm_module
# --------------------------------------------------------------------------


def nginx_quote(text: str) -> str:
    """A single-quoted nginx configuration string that reads back as `text`
    (nginx unescapes \\\\ and \\' inside quotes)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def filter_config_text(filter_config) -> str:
    """The document Kong would push: the filter config as compact JSON."""
    if isinstance(filter_config, str):
        return filter_config
    return json.dumps(filter_config, separators=(",", ":"))


class NginxStartError(RuntimeError):
    def __init__(self, message, log_text=""):
        super().__init__(message + "\n--- nginx error log tail ---\n" + tail(log_text, 60))
        self.log_text = log_text


def tail(text: str, n: int = 60) -> str:
    return "\n".join(text.splitlines()[-n:])


_RUNNING: list["Nginx"] = []


class Nginx:
    """One nginx master (daemon off) with `workers` workers:

    * `port`: the filter (`proxy_wasm scopegate '<config>'`) in front of the
      upstream, HTTP/1.1 and h2c on the same listener;
    * `plain_port`: a second server block without the filter, same upstream.
    """

    def __init__(
        self,
        name: str,
        filter_config,
        echo: RawEcho,
        wasm: str | None = None,
        nginx_bin: str | None = None,
        workers: int = 2,
        access_phase: bool = True,
        tls: "e2e.TlsListener | None" = None,
    ):
        self.name = name
        self.echo = echo
        self.filter_config = filter_config
        self.wasm = wasm or find_wasm()
        self.nginx_bin = nginx_bin or find_nginx()
        self.workers = workers
        self.access_phase = access_phase
        self.tls = tls
        self.dir = tempfile.mkdtemp(prefix=f"scopegate-kong-{name}-")
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        self.conf_path = os.path.join(self.dir, "nginx.conf")
        self.log_path = os.path.join(self.dir, "logs", "error.log")
        self.access_log_path = os.path.join(self.dir, "logs", "access.log")
        self.proc: subprocess.Popen | None = None
        self.port = None
        self.plain_port = None
        self.tls_port = None

    def _tls_directives(self) -> str:
        """A TLS listener on `tls_port` in the filtered server block: the
        server certificate of `tls`, client certificates requested and, when
        one is presented, verified against `tls.ca_cert` (`optional`: a client
        may present none, and the filter decides)."""
        if self.tls is None:
            return ""
        t = self.tls
        lines = [
            f"listen 127.0.0.1:{self.tls_port} ssl;",
            f"ssl_certificate {e2e._as_file(t.server_cert, '.crt')};",
            f"ssl_certificate_key {e2e._as_file(t.server_key, '.key')};",
        ]
        if t.ca_cert is not None:
            mode = "on" if t.require_client_cert else "optional"
            lines += [
                f"ssl_client_certificate {e2e._as_file(t.ca_cert, '.crt')};",
                f"ssl_verify_client {mode};",
            ]
        return "\n        ".join(lines)

    def render(self) -> str:
        cfg_text = filter_config_text(self.filter_config)
        quoted = nginx_quote(cfg_text)
        if len(quoted) > NGINX_MAX_TOKEN:
            raise ValueError(
                f"filter config is {len(quoted)} bytes quoted: nginx's limit for one configuration token "
                f"is {NGINX_MAX_TOKEN} (use fewer or smaller keys in the test config)"
            )
        phase = "proxy_wasm_request_headers_in_access on;" if self.access_phase else ""
        tls = self._tls_directives()
        d = self.dir
        return f"""
daemon off;
master_process on;
worker_processes {self.workers};
error_log {self.log_path} info;
pid {d}/nginx.pid;

events {{
    worker_connections 1024;
}}

wasm {{
    module scopegate {self.wasm};
}}

http {{
    log_format scopegate '$server_protocol $request_method $http_x_e2e_id $status';
    access_log {self.access_log_path} scopegate;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    merge_slashes off;

    server {{
        listen 127.0.0.1:{self.port};
        {tls}
        http2 on;
        server_name scopegate.kong.test;

        location / {{
            {phase}
            proxy_wasm scopegate {quoted};
            proxy_pass http://127.0.0.1:{self.echo.port};
        }}
    }}

    server {{
        listen 127.0.0.1:{self.plain_port};
        http2 on;

        location / {{
            proxy_pass http://127.0.0.1:{self.echo.port};
        }}
    }}
}}
"""

    # -- process -----------------------------------------------------------

    def spawn(self):
        if not self.nginx_bin or not os.path.exists(self.nginx_bin):
            raise NginxStartError(f"nginx binary not found (KONG_NGINX_BIN={os.environ.get('KONG_NGINX_BIN')!r})")
        self.port = free_port()
        self.plain_port = free_port()
        self.tls_port = free_port() if self.tls is not None else None
        with open(self.conf_path, "w") as f:
            f.write(self.render())
        self.stderr = open(os.path.join(self.dir, "logs", "stderr.log"), "wb")
        self.proc = subprocess.Popen(
            [self.nginx_bin, "-p", self.dir, "-c", self.conf_path, "-e", self.log_path],
            stdout=self.stderr,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        _RUNNING.append(self)

    def _answers(self, port: int) -> bool:
        try:
            r = e2e.http1_request(port, "GET", "/__kong_ready", marker=False, timeout=2)
            return r.status > 0
        except OSError:
            return False

    def start(self, timeout: float = 30.0) -> "Nginx":
        for attempt in range(3):  # a free port can be taken between probe and bind
            self.spawn()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if len(self.worker_pids()) >= self.workers and self._answers(self.plain_port) and self._answers(self.port):
                    return self
                time.sleep(0.1)
            log = self.log_text()
            self.stop()
            if "Address already in use" in log and attempt < 2:
                continue
            raise NginxStartError(f"nginx {self.name} did not come up (exit code {self.proc.returncode})", log)
        raise AssertionError("unreachable")

    def worker_pids(self) -> list[int]:
        if self.proc is None or self.proc.poll() is not None:
            return []
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                return [int(p) for p in f.read().split()]
        except OSError:
            return []

    def dead_worker_lines(self) -> list[str]:
        return [
            l for l in self.log_text().splitlines()
            if re.search(r"worker process \d+ exited|cannot be respawned|exited on signal", l)
        ]

    def stop(self):
        p = self.proc
        if p is not None and p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
        if self in _RUNNING:
            _RUNNING.remove(self)
        try:
            self.stderr.close()
        except Exception:
            pass

    def cleanup(self):
        self.stop()
        if os.environ.get("SCOPEGATE_E2E_KEEP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- logs ----------------------------------------------------------------

    def log_text(self) -> str:
        parts = []
        for p in (self.log_path, os.path.join(self.dir, "logs", "stderr.log")):
            try:
                with open(p, "r", errors="replace") as f:
                    parts.append(f.read())
            except FileNotFoundError:
                pass
        return "\n".join(parts)

    def access_log(self) -> str:
        try:
            with open(self.access_log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # -- requests ------------------------------------------------------------

    def request(self, method, target, headers=None, body=None, token=None, marker=True, timeout=10.0, port=None):
        hdrs = e2e._header_list(headers)
        if token is not None:
            hdrs.append(("Authorization", f"Bearer {token}"))
        return e2e.http1_request(port or self.port, method, target, hdrs, body, echo=self.echo, marker=marker, timeout=timeout)

    def get(self, target, token=None, headers=None, **kw):
        return self.request("GET", target, headers=headers, token=token, **kw)

    # -- the TLS listener (tls=) -----------------------------------------------

    @property
    def tls_authority(self) -> str:
        """The Host of requests to the TLS listener."""
        return f"127.0.0.1:{self.tls_port}"

    def tls_url(self, target: str) -> str:
        """The URL a request to the TLS listener is made to."""
        return f"https://{self.tls_authority}{target}"

    def tls_request(self, method, target, headers=None, body=None, token=None, marker=True, timeout=10.0,
                    client_cert=None, host: str | None = None):
        """HTTP/1.1 over TLS to `tls_port`, presenting `client_cert` (an
        object with `cert_path`/`key_path`, or a (cert, key) pair) if given."""
        if self.tls is None:
            raise ValueError(f"nginx {self.name}: no TLS listener (tls=)")
        hdrs = e2e._header_list(headers)
        if token is not None:
            hdrs.append(("Authorization", f"Bearer {token}"))
        return e2e.http1_request(self.tls_port, method, target, hdrs, body, echo=self.echo, marker=marker,
                                 timeout=timeout, ssl_context=self.tls.client_context(client_cert),
                                 host=host or self.tls_authority)

    def raw_request(self, method, target, headers=None, body=None, token=None, marker=True, timeout=10.0):
        hdrs = e2e._header_list(headers)
        if token is not None:
            hdrs.append(("Authorization", b"Bearer " + e2e._as_bytes(token)))
        return e2e.http1_raw_request(self.port, method, target, hdrs, body, echo=self.echo, marker=marker, timeout=timeout)

    def h2_request(self, method, target, headers=None, body=None, token=None, timeout=10.0, port=None):
        from h2client import h2c_request  # tests/e2e/h2client.py

        hdrs = e2e._header_list(headers)
        if token is not None:
            hdrs.append(("authorization", f"Bearer {token}"))
        mark = uuid.uuid4().hex
        hdrs.append((MARKER_HEADER, mark))
        status, rh, data = h2c_request("127.0.0.1", port or self.port, method, target, hdrs, body, timeout=timeout)
        return e2e.Response(status, e2e.Headers(rh), data, mark, self.echo, protocol="HTTP/2")

    def wait_log(self, pattern: str, timeout: float = 5.0) -> re.Match | None:
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.log_text())
            if m or time.monotonic() > deadline:
                return m
            time.sleep(0.1)


def stop_all():
    for n in list(_RUNNING):
        n.stop()


atexit.register(stop_all)


# --------------------------------------------------------------------------
# Configuration and assertions for this host
# --------------------------------------------------------------------------


def kong_filter_config(keys: e2e.KeySet, **over) -> dict:
    """The Envoy suite's base configuration, made small enough for one nginx
    configuration token: the corp provider keeps its RSA and P-256 keys, the
    partner provider its P-256 key."""
    cfg = e2e.base_filter_config(keys)
    corp, partner = cfg["providers"]
    corp["jwks"] = {"inline": {"keys": [keys.rsa.jwk(), keys.ec256.jwk()]}}
    corp["algorithms"] = ["RS256", "PS256", "ES256"]
    partner["jwks"] = {"inline": {"keys": [keys.partner_ec.jwk()]}}
    cfg.update(over)
    return cfg


def identity_lines(up: dict, names=e2e.IDENTITY_HEADERS) -> list[tuple[str, str]]:
    """The identity header lines the upstream received, in order."""
    wanted = {n.lower() for n in names}
    return [(k, v) for k, v in up["raw_headers"] if k.lower() in wanted]


_PID = re.compile(r"\[\w+\] (\d+)#")


def audit_lines(n) -> list[dict]:
    """Audit lines, each with `_pid`: the nginx worker that decided."""
    out = []
    for line, doc in e2e.audit_records(n.log_text()):
        m = _PID.search(line)
        doc["_pid"] = m.group(1) if m else None
        out.append(doc)
    return out
