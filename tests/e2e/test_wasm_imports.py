"""What ships: the release .wasm imports only host functions both gateways
provide. Every import is listed here with what calls it; a new one fails this
test until it has been checked against Kong's host (kong-example/README.md,
"Host compatibility") and added. The proxy-wasm SDK links some functions
Scopegate never calls (gRPC, queues, streams): Kong implements them as traps,
which is harmless as long as nothing calls them."""

from __future__ import annotations

import harness as h

CALLED = {
    ("env", "proxy_add_header_map_value"): "identity headers",
    ("env", "proxy_call_foreign_function"): "clear_route_cache after a path rewrite (Envoy only)",
    ("env", "proxy_define_metric"): "counters (Envoy only)",
    ("env", "proxy_get_buffer_bytes"): "plugin/VM configuration, JWKS response body",
    ("env", "proxy_get_current_time_nanoseconds"): "the clock",
    ("env", "proxy_get_header_map_pairs"): "request headers, JWKS response headers",
    ("env", "proxy_get_property"): "plugin_vm_id, source address, mTLS peer (Envoy only)",
    ("env", "proxy_get_shared_data"): "shared key sets (Envoy only)",
    ("env", "proxy_http_call"): "JWKS fetch",
    ("env", "proxy_increment_metric"): "counters (Envoy only)",
    ("env", "proxy_log"): "log and audit lines",
    ("env", "proxy_remove_header_map_value"): "spoofed identity and method-override headers, the token",
    ("env", "proxy_replace_header_map_value"): ":path after normalization",
    ("env", "proxy_send_local_response"): "denials",
    ("env", "proxy_set_effective_context"): "resuming a held request",
    ("env", "proxy_set_property"): "request properties (Envoy only)",
    ("env", "proxy_set_shared_data"): "shared key sets (Envoy only)",
    ("env", "proxy_set_tick_period_milliseconds"): "key refresh timer",
    ("env", "proxy_continue_stream"): "resuming a held request (SDK resume_http_request)",
    ("wasi_snapshot_preview1", "environ_get"): "SCOPEGATE_HOST",
    ("wasi_snapshot_preview1", "environ_sizes_get"): "SCOPEGATE_HOST",
    ("wasi_snapshot_preview1", "fd_write"): "Rust's standard library (stderr); not called",
    ("wasi_snapshot_preview1", "proc_exit"): "Rust's standard library; not called",
    ("wasi_snapshot_preview1", "random_get"): "worker id, cache seed",
}
# Linked by the proxy-wasm SDK, never called by Scopegate.
LINKED_ONLY = {
    ("env", n)
    for n in [
        "proxy_close_stream", "proxy_done", "proxy_dequeue_shared_queue", "proxy_enqueue_shared_queue",
        "proxy_get_header_map_value", "proxy_get_status", "proxy_grpc_call", "proxy_grpc_cancel",
        "proxy_grpc_close", "proxy_grpc_send", "proxy_grpc_stream", "proxy_register_shared_queue",
        "proxy_resolve_shared_queue", "proxy_set_buffer_bytes", "proxy_set_header_map_pairs",
    ]
}


def _leb128(b: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = b[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def wasm_imports(path: str) -> list[tuple[str, str, int]]:
    """(module, name, kind) of every import of a Wasm binary."""
    b = open(path, "rb").read()
    assert b[:8] == b"\0asm\x01\0\0\0", "not a Wasm 1.0 binary"
    i, out = 8, []
    while i < len(b):
        section, i = b[i], i + 1
        size, i = _leb128(b, i)
        end = i + size
        if section == 2:
            count, i = _leb128(b, i)
            for _ in range(count):
                n, i = _leb128(b, i)
                module, i = b[i:i + n].decode(), i + n
                n, i = _leb128(b, i)
                name, i = b[i:i + n].decode(), i + n
                kind, i = b[i], i + 1
                assert kind == 0, f"{module}.{name}: only function imports are expected"
                _, i = _leb128(b, i)
                out.append((module, name, kind))
        i = end
    return out


def test_every_import_is_one_both_gateways_provide():
    got = {(m, n) for m, n, _ in wasm_imports(h.find_wasm())}
    unknown = sorted(got - set(CALLED) - LINKED_ONLY)
    assert not unknown, (
        f"new imports {unknown}: check them against Kong's host (kong-example/README.md) and list them here"
    )
    assert ("env", "proxy_get_header_map_pairs") in got and ("env", "proxy_send_local_response") in got
