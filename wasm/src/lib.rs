//! keyshift-wasm: the browser guide's window onto keyshift-core.
//!
//! What it is for: exporting core's functions to JavaScript with wasm-bindgen, taking
//! and returning plain JS values, so the guide judges input exactly as `keyshift check`
//! does.
//!
//! What it is not: a place for logic. Every decision lives in keyshift-core; a function
//! here only converts arguments and results.

use wasm_bindgen::prelude::wasm_bindgen;

/// The guide's footer line: product and version, from core.
#[wasm_bindgen]
pub fn version() -> String {
    keyshift_core::version::banner(None)
}
