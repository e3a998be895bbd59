//! The gateway side: `adapter` reads a request through a narrow `Host`
//! trait, asks the core, and applies the verdict (tested natively); `wire`
//! decodes the proxy-wasm header-map format; `record` encodes the decision
//! record for the access log; `glue` and `hostcall` implement
//! the proxy-wasm entry points and host calls and exist only in the Wasm build.

pub mod adapter;
pub mod record;
pub mod wire;

#[cfg(target_arch = "wasm32")]
mod glue;
#[cfg(target_arch = "wasm32")]
mod hostcall;
