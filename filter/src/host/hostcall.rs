//! The proxy-wasm host calls Scopegate makes on the request path, declared
//! here rather than taken from the SDK's `hostcalls`, which panics on any
//! status it does not expect — and a panic traps the VM, failing every request
//! on the worker. These wrappers turn every status into a `Result` and decode
//! host buffers with `wire`, so an odd host answer costs one request, never
//! the worker. (Calls whose results the SDK's dispatcher must see, such as
//! `dispatch_http_call`, stay with the SDK.)

use crate::host::wire;
use proxy_wasm::types::{BufferType, LogLevel, MapType, Status};
use std::ptr::{null, null_mut};

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: MapType,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> Status;
    fn proxy_replace_header_map_value(
        map_type: MapType,
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> Status;
    fn proxy_add_header_map_value(
        map_type: MapType,
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> Status;
    fn proxy_remove_header_map_value(map_type: MapType, key: *const u8, key_size: usize) -> Status;
    fn proxy_send_local_response(
        status_code: u32,
        details: *const u8,
        details_size: usize,
        body: *const u8,
        body_size: usize,
        headers: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> Status;
    fn proxy_get_property(
        path: *const u8,
        path_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> Status;
    fn proxy_set_property(
        path: *const u8,
        path_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> Status;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> Status;
    fn proxy_log(level: LogLevel, message: *const u8, message_size: usize) -> Status;
    fn proxy_get_buffer_bytes(
        buffer_type: BufferType,
        start: usize,
        max_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> Status;
    fn proxy_call_foreign_function(
        name: *const u8,
        name_size: usize,
        args: *const u8,
        args_size: usize,
        results: *mut *mut u8,
        results_size: *mut usize,
    ) -> Status;
}

fn ok(status: Status) -> Result<(), Status> {
    match status {
        Status::Ok => Ok(()),
        other => Err(other),
    }
}

/// Takes ownership of a buffer the host allocated through the SDK's
/// `proxy_on_memory_allocate` (a `Vec<u8>` of exactly `size` capacity).
///
/// # Safety
/// `data` must come from that allocator with `size` bytes, or be null.
unsafe fn take(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        None
    } else {
        // SAFETY: per the ABI, the host filled a buffer it obtained from our
        // allocator with exactly `size` bytes and handed its ownership to us.
        Some(unsafe { Vec::from_raw_parts(data, size, size) })
    }
}

/// A whole header map in one call, still encoded: `wire::HeaderMap` decodes
/// it without copying, and without panicking on a malformed buffer.
pub fn header_map(map: MapType) -> Option<wire::HeaderMap> {
    let mut data = null_mut();
    let mut size = 0;
    // SAFETY: out-pointers to locals; the buffer is taken over by `take`.
    let status = unsafe { proxy_get_header_map_pairs(map, &mut data, &mut size) };
    let bytes = unsafe { take(data, size) };
    ok(status).ok()?;
    Some(wire::HeaderMap::from_bytes(bytes.unwrap_or_default()))
}

pub fn set_header(map: MapType, name: &str, value: &str) -> Result<(), Status> {
    // SAFETY: pointers and lengths of live slices.
    ok(unsafe {
        proxy_replace_header_map_value(map, name.as_ptr(), name.len(), value.as_ptr(), value.len())
    })
}

pub fn add_header(map: MapType, name: &str, value: &str) -> Result<(), Status> {
    // SAFETY: pointers and lengths of live slices.
    ok(unsafe {
        proxy_add_header_map_value(map, name.as_ptr(), name.len(), value.as_ptr(), value.len())
    })
}

pub fn remove_header(map: MapType, name: &str) -> Result<(), Status> {
    // SAFETY: pointer and length of a live slice.
    ok(unsafe { proxy_remove_header_map_value(map, name.as_ptr(), name.len()) })
}

pub fn send_response(status: u32, headers: &[(&str, &str)], body: &[u8]) -> Result<(), Status> {
    let encoded = wire::encode_map(headers);
    // SAFETY: pointers and lengths of live buffers; -1: not a gRPC status.
    ok(unsafe {
        proxy_send_local_response(
            status,
            null(),
            0,
            body.as_ptr(),
            body.len(),
            encoded.as_ptr(),
            encoded.len(),
            -1,
        )
    })
}

/// Reads a property; path elements are joined with NUL as the ABI requires.
pub fn property(path: &[&str]) -> Option<Vec<u8>> {
    property_status(path).ok().flatten()
}

/// Like `property`, telling "no such property" (`Ok(None)`) from a host
/// that has it but cannot give it (`Err`): host detection needs both.
pub fn property_status(path: &[&str]) -> Result<Option<Vec<u8>>, Status> {
    let joined = path.join("\0");
    let mut data = null_mut();
    let mut size = 0;
    // SAFETY: pointer/length of a live string and out-pointers to locals.
    let status = unsafe { proxy_get_property(joined.as_ptr(), joined.len(), &mut data, &mut size) };
    // SAFETY: the host filled (or left null) the out-pointers above.
    let bytes = unsafe { take(data, size) };
    match status {
        Status::Ok => Ok(bytes),
        Status::NotFound => Ok(None),
        other => Err(other),
    }
}

/// Sets a one-element property (Envoy stores it as filter state `wasm.<key>`).
pub fn set_property(key: &str, value: &[u8]) -> Result<(), Status> {
    // SAFETY: pointers and lengths of live slices.
    ok(unsafe { proxy_set_property(key.as_ptr(), key.len(), value.as_ptr(), value.len()) })
}

pub fn increment_metric(id: u32, by: i64) -> Result<(), Status> {
    // SAFETY: plain values.
    ok(unsafe { proxy_increment_metric(id, by) })
}

pub fn log(level: LogLevel, message: &str) {
    // SAFETY: pointer and length of a live string. A failed log is not actionable.
    let _ = unsafe { proxy_log(level, message.as_ptr(), message.len()) };
}

pub fn buffer(kind: BufferType, start: usize, max: usize) -> Option<Vec<u8>> {
    let mut data = null_mut();
    let mut size = 0;
    // SAFETY: out-pointers to locals; the buffer is taken over by `take`.
    let status = unsafe { proxy_get_buffer_bytes(kind, start, max, &mut data, &mut size) };
    let bytes = unsafe { take(data, size) };
    ok(status).ok()?;
    bytes
}

pub fn call_foreign_function(name: &str, args: &[u8]) -> Result<Option<Vec<u8>>, Status> {
    let mut data = null_mut();
    let mut size = 0;
    // SAFETY: pointers and lengths of live slices, out-pointers to locals.
    let status = unsafe {
        proxy_call_foreign_function(
            name.as_ptr(),
            name.len(),
            args.as_ptr(),
            args.len(),
            &mut data,
            &mut size,
        )
    };
    let bytes = unsafe { take(data, size) };
    ok(status).map(|()| bytes)
}
