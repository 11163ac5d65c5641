#!/usr/bin/env bash
# `make dist`: keyshift release tarballs for x86_64 and aarch64 Linux, glibc 2.17 and up.
#
#   dist/build.sh [--arch x86_64|aarch64]...      (default: both)
#
# Builds the committed source (HEAD, or DIST_REF), never the work tree's uncommitted
# changes: `git archive` is synced into $CARGO_TARGET_DIR/src (only changed files are
# rewritten, so cargo rebuilds only what changed). For each architecture:
#   - libmongocrypt.so from pymongocrypt's manylinux2014 wheel (the version pinned in
#     tests/services/requirements.txt), which mongocrypt-sys links and the tarball ships;
#   - `cargo zigbuild --target <arch>-unknown-linux-gnu.2.17`: zig compiles the C parts
#     (aws-lc-sys, ring, zstd) and links against glibc 2.17's symbols; KEYSHIFT_DIST=1
#     makes native/build.rs set the RUNPATH to $ORIGIN/../lib only; paths of this machine
#     are remapped out of panic locations and C __FILE__s; symbols are stripped;
#   - checks: RUNPATH, no GLIBC_ symbol newer than 2.17 (binary and library), no build
#     path in the binary, `--version` runs (aarch64 under qemu-aarch64-static);
#   - keyshift-<version>-<arch>-linux/ {bin/keyshift, lib/libmongocrypt.so.0,
#     share/man/man1/keyshift.1, share/completions, README.md, INSTALL.md, LICENSE,
#     licenses/, sbom.cdx.json} packed reproducibly as .tar.gz, its SBOM beside it.
# Last, SHA256SUMS over everything in dist/out/ that ships.
#
# Needs tests/setup.sh (wasm32 target, wasm-bindgen: the binary embeds the browser
# guide) and dist/setup.sh (zig, cargo-zigbuild, aarch64 target, qemu); `make dist`
# runs both. Output: dist/out/. Cargo's target dir: $CARGO_TARGET_DIR (default
# /work/target-dist, or ../target-dist beside the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

say() { printf '\ndist: %s\n' "$*" >&2; }
die() { printf 'dist: FAILED: %s\n' "$*" >&2; exit 1; }

arches=()
while (($#)); do
  case "$1" in
    --arch) arches+=("$2"); shift 2 ;;
    *) die "unknown argument $1 (usage: dist/build.sh [--arch x86_64|aarch64]...)" ;;
  esac
done
((${#arches[@]})) || arches=(x86_64 aarch64)

export PATH=$repo/dist/.venv/bin:$PATH
command -v cargo-zigbuild >/dev/null || die "cargo-zigbuild missing: run dist/setup.sh (make dist does)"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$(cd "$repo/.." && pwd)/target-dist}
mkdir -p "$CARGO_TARGET_DIR"
export CARGO_TARGET_DIR=$(cd "$CARGO_TARGET_DIR" && pwd)
cargo_home=${CARGO_HOME:-$HOME/.cargo}
out=$repo/dist/out
mkdir -p "$out"

# --- the source: a commit, exported ------------------------------------------------------
ref=${DIST_REF:-HEAD}
commit=$(git rev-parse --verify "$ref^{commit}")
if [[ "$ref" == HEAD && -n "$(git status --porcelain --untracked-files=no)" ]]; then
  say "note: the work tree has uncommitted changes; building the commit $commit without them"
fi
export SOURCE_DATE_EPOCH=$(git log -1 --format=%ct "$commit")
src=$CARGO_TARGET_DIR/src
export_dir=$CARGO_TARGET_DIR/src.export
rm -rf "$export_dir" && mkdir -p "$export_dir" "$src"
git archive --format=tar "$commit" | tar -x -C "$export_dir"
# Rewrite only files whose bytes changed (fresh mtime), keep the guide's build outputs.
rsync -rlc --delete --exclude=/web/dist/ --exclude=/web/pkg/ "$export_dir/" "$src/"
rm -rf "$export_dir"
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$src/Cargo.toml")
[[ -n "$version" ]] || die "cannot read the workspace version from Cargo.toml"
say "keyshift $version from commit ${commit:0:12} ($ref), source in $src"

# No path of this machine in what ships: Rust panic locations (RUSTFLAGS) and C
# __FILE__s (CFLAGS) are remapped, in the native build and in the browser guide's wasm,
# which the binary embeds byte for byte (include_bytes!).
remap_rust="--remap-path-prefix=$cargo_home/registry/src=/cargo --remap-path-prefix=$src=/keyshift --remap-path-prefix=$CARGO_TARGET_DIR=/target"
remap_c="-ffile-prefix-map=$cargo_home/registry/src=/cargo -ffile-prefix-map=$CARGO_TARGET_DIR=/target -ffile-prefix-map=$src=/keyshift"

say "browser guide (the binary embeds web/dist)"
(cd "$src" && RUSTFLAGS="$remap_rust" node web/build.mjs --locked)

# --- libmongocrypt from the manylinux2014 wheels ----------------------------------------
pmc=$(sed -n 's/^pymongocrypt==\(.*\)$/\1/p' tests/services/requirements.txt)
[[ -n "$pmc" ]] || die "no pymongocrypt==VERSION pin in tests/services/requirements.txt"
wheel_for() { ls "$out/wheels/pymongocrypt-$pmc-"*"manylinux2014_$1"*.whl 2>/dev/null | head -1; }
for arch in "${arches[@]}"; do
  if [[ -z "$(wheel_for "$arch")" ]]; then
    say "pip download pymongocrypt==$pmc (manylinux2014_$arch)"
    dist/.venv/bin/pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      --platform "manylinux2014_$arch" --python-version 3.11 "pymongocrypt==$pmc" -d "$out/wheels"
  fi
  whl=$(wheel_for "$arch")
  [[ -n "$whl" ]] || die "no manylinux2014_$arch wheel of pymongocrypt $pmc"
  lib=$out/libmongocrypt/$arch
  mkdir -p "$lib"
  python3 - "$whl" "$lib" <<'EOF'
import sys, zipfile
from pathlib import Path
whl, lib = sys.argv[1], Path(sys.argv[2])
z = zipfile.ZipFile(whl)
for name, dest in (("pymongocrypt/libmongocrypt.so", "libmongocrypt.so.0"),):
    data = z.read(name)
    if not (lib / dest).exists() or (lib / dest).read_bytes() != data:
        (lib / dest).write_bytes(data)
lic = [n for n in z.namelist() if n.endswith("/licenses/LICENSE") or n.endswith("/LICENSE")]
(lib / "LICENSE").write_bytes(z.read(lic[0]))
EOF
  ln -sf libmongocrypt.so.0 "$lib/libmongocrypt.so"
done

# --- build, check, pack ----------------------------------------------------------------
qemu_run() { # ARCH BINARY ARGS...: run a built binary natively or under qemu-user, whose
  # aarch64 libc is Debian's libc6:arm64 (multiarch, dist/setup.sh) under /.
  local arch=$1; shift
  if [[ "$arch" == aarch64 ]]; then qemu-aarch64-static -L / "$@"; else "$@"; fi
}
newest_glibc() { objdump -T "$1" | grep -o 'GLIBC_[0-9][0-9.]*' | sort -uV | tail -1; }

for arch in "${arches[@]}"; do
  triple=$arch-unknown-linux-gnu
  lib=$out/libmongocrypt/$arch
  say "cargo zigbuild --release --target $triple.2.17"
  start=$SECONDS
  (
    cd "$src"
    export KEYSHIFT_DIST=1
    export MONGOCRYPT_LIB_DIR=$lib
    export CARGO_PROFILE_RELEASE_STRIP=symbols
    export RUSTFLAGS=$remap_rust
    export "CFLAGS_${triple//-/_}=$remap_c" "CXXFLAGS_${triple//-/_}=$remap_c"
    cargo zigbuild --release --locked -p keyshift --target "$triple.2.17"
  )
  bin=$CARGO_TARGET_DIR/$triple/release/keyshift
  say "$arch built in $((SECONDS - start)) s: $(du -h "$bin" | cut -f1)"

  # Checks that fail the release.
  runpath=$(readelf -d "$bin" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p; s/.*(RPATH).*\[\(.*\)\]/\1/p')
  [[ "$runpath" == '$ORIGIN/../lib' ]] || die "$arch: RUNPATH is '$runpath', want \$ORIGIN/../lib only"
  for f in "$bin" "$lib/libmongocrypt.so.0"; do
    g=$(newest_glibc "$f")
    [[ "$(printf '%s\n' "$g" GLIBC_2.17 | sort -V | tail -1)" == GLIBC_2.17 ]] \
      || die "$arch: $(basename "$f") needs $g, newer than GLIBC_2.17"
  done
  if leaks=$(strings -n 6 "$bin" | grep -E "$repo|$CARGO_TARGET_DIR|$cargo_home|/work/|/root/|/home/" | head -5) && [[ -n "$leaks" ]]; then
    die "$arch: build paths inside the binary:"$'\n'"$leaks"
  fi
  needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
  say "$arch checks: RUNPATH $runpath; newest GLIBC symbol $(newest_glibc "$bin"); NEEDED $needed"

  name=keyshift-$version-$arch-linux
  stage=$out/stage/$name
  rm -rf "$out/stage/$name" && mkdir -p "$stage"/{bin,lib,licenses,share/man/man1,share/completions}
  install -m 0755 "$bin" "$stage/bin/keyshift"
  install -m 0644 "$lib/libmongocrypt.so.0" "$stage/lib/libmongocrypt.so.0"
  banner=$(qemu_run "$arch" "$stage/bin/keyshift" --version) || die "$arch: keyshift --version did not run"
  say "$arch: $banner"
  lmc_version=$(sed -n 's/.*(libmongocrypt \([^)]*\)).*/\1/p' <<<"$banner")
  [[ -n "$lmc_version" ]] || die "$arch: --version names no libmongocrypt version: $banner"
  qemu_run "$arch" "$stage/bin/keyshift" man >"$stage/share/man/man1/keyshift.1"
  for sh in bash zsh fish; do
    qemu_run "$arch" "$stage/bin/keyshift" completions "$sh" >"$stage/share/completions/keyshift.$sh"
  done
  cp "$src/README.md" "$stage/README.md"
  cp "$src/docs/install.md" "$stage/INSTALL.md"
  cp "$src/dist/LICENSE" "$stage/LICENSE"
  cp "$lib/LICENSE" "$stage/licenses/libmongocrypt-LICENSE"
  cat >"$stage/licenses/NOTICE" <<EOF
keyshift $version for $arch Linux (glibc 2.17 or newer)
Copyright the keyshift authors. Licensed under the Apache License 2.0 (../LICENSE).
Built from commit $commit.

lib/libmongocrypt.so.0 is libmongocrypt $lmc_version by MongoDB, Inc., licensed under the
Apache License 2.0 (libmongocrypt-LICENSE), unmodified: the file is byte for byte the
libmongocrypt.so of $(basename "$(wheel_for "$arch")")
(sha256 $(sha256sum "$lib/libmongocrypt.so.0" | cut -d' ' -f1)).
Source: https://github.com/mongodb/libmongocrypt

bin/keyshift contains the Rust crates listed in ../sbom.cdx.json (scope "required");
their licence and notice texts are in THIRD-PARTY-RUST.txt.
EOF
  (cd "$src" && python3 "$repo/dist/sbom.py" --target "$triple" --version "$version" \
    --libmongocrypt-version "$lmc_version" --libmongocrypt-so "$lib/libmongocrypt.so.0" \
    --wheel "$(wheel_for "$arch")" --binary "$stage/bin/keyshift" \
    --out "$stage/sbom.cdx.json" --notices "$stage/licenses/THIRD-PARTY-RUST.txt")
  if grep -lE "$repo|$CARGO_TARGET_DIR|$cargo_home" -r "$stage" >/dev/null; then
    die "$arch: a build path in the tarball's text files: $(grep -lE "$repo|$CARGO_TARGET_DIR|$cargo_home" -r "$stage" | head -3)"
  fi
  cp "$stage/sbom.cdx.json" "$out/$name.cdx.json"
  find "$stage" -type d -exec chmod 0755 {} + && find "$stage" -type f ! -path '*/bin/*' -exec chmod 0644 {} +
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
    --format=gnu -C "$out/stage" -cf - "$name" | gzip -9 -n >"$out/$name.tar.gz"
  say "$out/$name.tar.gz ($(du -h "$out/$name.tar.gz" | cut -f1))"
done

# --- checksums over everything that ships --------------------------------------------------
(cd "$out" && sha256sum keyshift-"$version"-*-linux.tar.gz keyshift-"$version"-*-linux.cdx.json >SHA256SUMS)
say "dist/out:"
(cd "$out" && ls -l keyshift-"$version"-* SHA256SUMS && cat SHA256SUMS) >&2
