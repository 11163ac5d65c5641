//! Checks the browser guide is built (the binary embeds it), and finds the libmongocrypt that tests/setup.sh took from the pymongocrypt wheel and
//! records its directory as the binary's rpath, so `keyshift` runs without
//! LD_LIBRARY_PATH. mongocrypt-sys links against MONGOCRYPT_LIB_DIR (.cargo/config.toml).
//! Release builds (KEYSHIFT_DIST=1, set by dist/build.sh) keep only `$ORIGIN/../lib`.

use std::path::Path;

fn main() {
    // `keyshift guide` embeds the built browser guide (native/src/guide.rs).
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/dist/index.html");
    println!("cargo:rerun-if-changed={}", dist.display());
    if !dist.exists() {
        panic!(
            "the browser guide is not built ({} is missing): run `bash tests/setup.sh` \
             (or `npm run build`), which builds it from web/src and the wasm crate",
            dist.display()
        );
    }
    println!("cargo:rerun-if-env-changed=MONGOCRYPT_LIB_DIR");
    let Ok(dir) = std::env::var("MONGOCRYPT_LIB_DIR") else {
        // No workspace config (e.g. a packaged build): the system linker path decides.
        return;
    };
    let lib = Path::new(&dir).join("libmongocrypt.so");
    if !lib.exists() {
        panic!(
            "libmongocrypt not found at {}: run `bash tests/setup.sh` (or `make setup`) first; \
             it copies the library from the pymongocrypt wheel",
            lib.display()
        );
    }
    println!("cargo:rerun-if-changed={}", lib.display());
    // $ORIGIN/../lib first, for a relocated install (the release tarball's lib/).
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/../lib");
    // Then the build's own copy, for development and tests, unless this is a release
    // build (dist/build.sh sets KEYSHIFT_DIST=1): no path of the build machine ships.
    println!("cargo:rerun-if-env-changed=KEYSHIFT_DIST");
    if std::env::var_os("KEYSHIFT_DIST").is_none_or(|v| v.is_empty() || v == "0") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
