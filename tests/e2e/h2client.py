"""A minimal HTTP/2 cleartext (h2c, prior knowledge) client, stdlib only
(also HTTP/2 over TLS, with ALPN "h2", given an `ssl.SSLContext`).

Just enough of RFC 9113 / RFC 7541 for one request per connection:
the request header block is sent as HPACK literals (no indexing, no Huffman);
the response header block is fully decoded (static + dynamic table, Huffman).
"""

from __future__ import annotations

import socket
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20

# RFC 7541 Appendix A
STATIC_TABLE = [
    (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"),
    (":path", "/index.html"), (":scheme", "http"), (":scheme", "https"), (":status", "200"),
    (":status", "204"), (":status", "206"), (":status", "304"), (":status", "400"),
    (":status", "404"), (":status", "500"), ("accept-charset", ""), ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""), ("accept-ranges", ""), ("accept", ""), ("access-control-allow-origin", ""),
    ("age", ""), ("allow", ""), ("authorization", ""), ("cache-control", ""),
    ("content-disposition", ""), ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
    ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""),
    ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""),
    ("from", ""), ("host", ""), ("if-match", ""), ("if-modified-since", ""),
    ("if-none-match", ""), ("if-range", ""), ("if-unmodified-since", ""), ("last-modified", ""),
    ("link", ""), ("location", ""), ("max-forwards", ""), ("proxy-authenticate", ""),
    ("proxy-authorization", ""), ("range", ""), ("referer", ""), ("refresh", ""),
    ("retry-after", ""), ("server", ""), ("set-cookie", ""), ("strict-transport-security", ""),
    ("transfer-encoding", ""), ("user-agent", ""), ("vary", ""), ("via", ""),
    ("www-authenticate", ""),
]

# RFC 7541 Appendix B code lengths for symbols 0..256 (256 = EOS). The code is
# canonical: codes follow from the lengths (sorted by length, then symbol).
_HUFFMAN_LENGTHS = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
    30,
]


def _build_decode_map():
    order = sorted(range(257), key=lambda s: (_HUFFMAN_LENGTHS[s], s))
    table = {}
    code, prev = 0, _HUFFMAN_LENGTHS[order[0]]
    for i, sym in enumerate(order):
        length = _HUFFMAN_LENGTHS[sym]
        if i:
            code = (code + 1) << (length - prev)
        prev = length
        table[(length, code)] = sym
    return table


_HUFFMAN_DECODE = _build_decode_map()


def huffman_decode(data: bytes) -> bytes:
    out = bytearray()
    code = length = 0
    for byte in data:
        for shift in range(7, -1, -1):
            code = (code << 1) | ((byte >> shift) & 1)
            length += 1
            sym = _HUFFMAN_DECODE.get((length, code))
            if sym is not None:
                if sym == 256:
                    raise ValueError("EOS in Huffman string")
                out.append(sym)
                code = length = 0
            elif length > 30:
                raise ValueError("bad Huffman code")
    if length > 7 or code != (1 << length) - 1:
        raise ValueError("bad Huffman padding")
    return bytes(out)


def encode_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_int(buf: bytes, pos: int, prefix_bits: int) -> tuple[int, int]:
    limit = (1 << prefix_bits) - 1
    value = buf[pos] & limit
    pos += 1
    if value < limit:
        return value, pos
    shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value += (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def encode_headers(headers) -> bytes:
    """Literal header fields without indexing, new names, no Huffman."""
    out = bytearray()
    for name, value in headers:
        n, v = name.encode("latin-1"), value.encode("latin-1")
        out.append(0x00)
        out += encode_int(len(n), 7) + n
        out += encode_int(len(v), 7) + v
    return bytes(out)


class HpackDecoder:
    def __init__(self, max_size: int = 4096):
        self.dynamic: list[tuple[str, str]] = []
        self.max_size = max_size

    def _size(self):
        return sum(len(n) + len(v) + 32 for n, v in self.dynamic)

    def _evict(self):
        while self.dynamic and self._size() > self.max_size:
            self.dynamic.pop()

    def _lookup(self, index: int) -> tuple[str, str]:
        if index <= 0:
            raise ValueError("HPACK index 0")
        if index <= len(STATIC_TABLE):
            return STATIC_TABLE[index - 1]
        return self.dynamic[index - len(STATIC_TABLE) - 1]

    def _string(self, buf, pos):
        huff = buf[pos] & 0x80
        length, pos = decode_int(buf, pos, 7)
        raw = bytes(buf[pos : pos + length])
        pos += length
        if huff:
            raw = huffman_decode(raw)
        return raw.decode("latin-1"), pos

    def decode(self, buf: bytes) -> list[tuple[str, str]]:
        out = []
        pos = 0
        while pos < len(buf):
            b = buf[pos]
            if b & 0x80:  # indexed
                idx, pos = decode_int(buf, pos, 7)
                out.append(self._lookup(idx))
            elif b & 0x40:  # literal with incremental indexing
                idx, pos = decode_int(buf, pos, 6)
                name = self._lookup(idx)[0] if idx else None
                if name is None:
                    name, pos = self._string(buf, pos)
                value, pos = self._string(buf, pos)
                out.append((name, value))
                self.dynamic.insert(0, (name, value))
                self._evict()
            elif b & 0x20:  # dynamic table size update
                self.max_size, pos = decode_int(buf, pos, 5)
                self._evict()
            else:  # literal without indexing / never indexed
                idx, pos = decode_int(buf, pos, 4)
                name = self._lookup(idx)[0] if idx else None
                if name is None:
                    name, pos = self._string(buf, pos)
                value, pos = self._string(buf, pos)
                out.append((name, value))
        return out


def _frame(ftype: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


class H2Error(RuntimeError):
    pass


def _recv_exact(sock, n, deadline):
    buf = bytearray()
    while len(buf) < n:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("h2c: timed out")
        sock.settimeout(remaining)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise H2Error("h2c: connection closed")
        buf += chunk
    return bytes(buf)


def h2c_request(host, port, method, path, headers=(), body=None, authority="gateway.test", timeout=10.0,
                ssl_context=None, server_hostname=None):
    """One request on a fresh h2c connection. Returns (status, headers, body);
    response headers exclude pseudo-headers. `headers` names are sent as given
    (HTTP/2 requires lower case; callers pass lower case).

    With `ssl_context` (an `ssl.SSLContext`, e.g. with a client certificate
    loaded) the connection is HTTP/2 over TLS instead: ALPN offers only "h2"
    and `:scheme` is "https"; `server_hostname` is the name the server's
    certificate is checked against (default: `host`)."""
    deadline = time.monotonic() + timeout
    sock = socket.create_connection((host, port), timeout=timeout)
    scheme = "http"
    if ssl_context is not None:
        ssl_context.set_alpn_protocols(["h2"])
        try:
            sock = ssl_context.wrap_socket(sock, server_hostname=server_hostname or host)
        except BaseException:
            sock.close()
            raise
        if sock.selected_alpn_protocol() != "h2":
            sock.close()
            raise H2Error(f"TLS: the server did not select h2 (ALPN {sock.selected_alpn_protocol()!r})")
        scheme = "https"
    try:
        max_frame = 16384
        sock.sendall(PREFACE + _frame(SETTINGS, 0, 0, struct.pack(">HI", 2, 0)))  # ENABLE_PUSH=0
        block = encode_headers(
            [(":method", method), (":scheme", scheme), (":authority", authority), (":path", path)] + list(headers)
        )
        chunks = [block[i : i + max_frame] for i in range(0, len(block), max_frame)] or [b""]
        first_flags = (END_STREAM if not body else 0) | (END_HEADERS if len(chunks) == 1 else 0)
        out = [_frame(HEADERS, first_flags, 1, chunks[0])]
        for i, c in enumerate(chunks[1:], start=1):
            out.append(_frame(CONTINUATION, END_HEADERS if i == len(chunks) - 1 else 0, 1, c))
        if body:
            out.append(_frame(DATA, END_STREAM, 1, body))
        sock.sendall(b"".join(out))

        decoder = HpackDecoder()
        resp_headers: list[tuple[str, str]] = []
        pending = bytearray()
        data = bytearray()
        status = None
        headers_end_stream = False
        while True:
            head = _recv_exact(sock, 9, deadline)
            length = int.from_bytes(head[:3], "big")
            ftype, flags = head[3], head[4]
            stream = struct.unpack(">I", head[5:9])[0] & 0x7FFFFFFF
            payload = _recv_exact(sock, length, deadline) if length else b""
            if ftype == SETTINGS:
                if not flags & ACK:
                    sock.sendall(_frame(SETTINGS, ACK, 0))
                continue
            if ftype == PING:
                if not flags & ACK:
                    sock.sendall(_frame(PING, ACK, 0, payload))
                continue
            if ftype == GOAWAY:
                last = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
                code = struct.unpack(">I", payload[4:8])[0]
                if last < 1 or code != 0:
                    raise H2Error(f"h2c: GOAWAY last_stream={last} error={code} {payload[8:]!r}")
                continue
            if stream != 1:
                continue
            if ftype == RST_STREAM:
                raise H2Error(f"h2c: RST_STREAM error={struct.unpack('>I', payload)[0]}")
            if ftype in (HEADERS, CONTINUATION):
                if ftype == HEADERS:
                    pad = 0
                    if flags & PADDED:
                        pad = payload[0]
                        payload = payload[1:]
                    if flags & PRIORITY_FLAG:
                        payload = payload[5:]
                    if pad:
                        payload = payload[:-pad]
                    headers_end_stream = bool(flags & END_STREAM)
                pending += payload
                if flags & END_HEADERS:
                    for name, value in decoder.decode(bytes(pending)):
                        if name == ":status":
                            status = status or int(value)
                        elif not name.startswith(":"):
                            resp_headers.append((name, value))
                    pending.clear()
                    if headers_end_stream:
                        break
                continue
            if ftype == DATA:
                if flags & PADDED:
                    pad = payload[0]
                    payload = payload[1 : len(payload) - pad]
                data += payload
                if length and not flags & END_STREAM:
                    # keep both windows open (bodies here are small anyway)
                    inc = struct.pack(">I", length)
                    sock.sendall(_frame(WINDOW_UPDATE, 0, 0, inc) + _frame(WINDOW_UPDATE, 0, 1, inc))
                if flags & END_STREAM:
                    break
        if status is None:
            raise H2Error("h2c: no :status")
        return status, resp_headers, bytes(data)
    finally:
        try:
            sock.sendall(_frame(GOAWAY, 0, 0, struct.pack(">II", 1, 0)))
        except OSError:
            pass
        sock.close()
