#!/usr/bin/env bash
# `make test-dist`: proof that the release tarballs in dist/out (from `make dist`) run
# where users run them, with nothing of this machine's build around them.
#
#   dist/test.sh [--arch x86_64|aarch64]   (default both; make test-dist builds the
#                                           tarballs first, then runs this)
#
# x86_64: the tarball is extracted into an empty temporary directory and every keyshift
#   command runs from there with a clean environment (env -i PATH=/usr/bin:/bin, HOME an
#   empty directory) in a private mount namespace where the repository (its .venv,
#   .local, target/), $CARGO_TARGET_DIR, ~/.cargo and ~/.rustup are hidden under empty
#   read-only tmpfs mounts; the loader must find libmongocrypt.so.0 in the tarball's
#   lib/. Then a real rewrap against a test world of its own (tests/services/up with
#   KS_RUN_DIR in the temporary directory: MongoDB and AWS KMS stand-ins on 127.0.0.1):
#   seed.py puts DEKs under a local master key and encrypted documents, keyshift check,
#   rewrap --yes and verify move them to the AWS stand-in, and the oracle, PyMongo with
#   only the AWS provider, decrypts the seeded values and finds no key left under local.
# Both: no versioned GLIBC_ symbol newer than 2.17 in bin/keyshift or
#   lib/libmongocrypt.so.0, RUNPATH exactly $ORIGIN/../lib, SHA256SUMS verify.
# aarch64: `--version` and `check` on dist/example/keyshift.toml under
#   qemu-aarch64-static (its C library: Debian's libc6:arm64, dist/setup.sh).
#
# Needs tests/setup.sh (.venv: the test world and the oracle) and dist/setup.sh (qemu).
# Not part of `make test`. Exit 0 only if every check passed.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
t0=$SECONDS

say() { printf '\ntest-dist: %s\n' "$*" >&2; }
die() { printf '\ntest-dist: FAILED: %s\n' "$*" >&2; exit 1; }
ok() { printf 'test-dist: ok: %s\n' "$*" >&2; }

arches=()
while (($#)); do
  case "$1" in
    --arch) [[ "${2:-}" == x86_64 || "${2:-}" == aarch64 ]] || die "--arch x86_64 or aarch64"; arches+=("$2"); shift 2 ;;
    *) die "unknown argument $1 (usage: dist/test.sh [--arch x86_64|aarch64]...)" ;;
  esac
done
((${#arches[@]})) || arches=(x86_64 aarch64)
want() { [[ " ${arches[*]} " == *" $1 "* ]]; }

out=$repo/dist/out
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
for arch in "${arches[@]}"; do
  [[ -f "$out/keyshift-$version-$arch-linux.tar.gz" ]] \
    || die "no $out/keyshift-$version-$arch-linux.tar.gz: run make dist first (make test-dist does)"
done
! want x86_64 || [[ -x .venv/bin/python ]] || die "no .venv: run tests/setup.sh first (make test-dist does)"
! want aarch64 || command -v qemu-aarch64-static >/dev/null || die "qemu-aarch64-static missing: run dist/setup.sh"

say "SHA256SUMS"
[[ -f "$out/SHA256SUMS" ]] || die "no $out/SHA256SUMS: run make dist"
for arch in "${arches[@]}"; do
  grep -q " keyshift-$version-$arch-linux.tar.gz\$" "$out/SHA256SUMS" || die "SHA256SUMS does not list the $arch tarball"
done
(cd "$out" && sha256sum --check --strict --ignore-missing SHA256SUMS) >&2 || die "SHA256SUMS do not match dist/out"
ok "checksums"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/keyshift-test-dist.XXXXXX")
world=$tmp/world
cleanup() {
  local rc=$?
  if [[ -f "$world/pids" ]]; then KS_RUN_DIR=$world tests/services/down >/dev/null 2>&1 || true; fi
  if ((rc)) && [[ -n "${KEEP_TMP:-}" ]]; then echo "test-dist: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
mkdir -p "$tmp/home" "${arches[@]/#/$tmp/}"

# --- the sandbox the tarball runs in -----------------------------------------------------
# Directories of the build machine a stray RUNPATH, LD_LIBRARY_PATH or relative lookup
# could reach; hidden in the private mount namespace.
hide=("$repo")
for d in "${CARGO_TARGET_DIR:-$(cd "$repo/.." && pwd)/target-dist}" "${CARGO_HOME:-$HOME/.cargo}" \
  "${RUSTUP_HOME:-$HOME/.rustup}"; do
  [[ -d "$d" && " ${hide[*]} " != *" $d "* ]] && hide+=("$d")
done
if unshare --mount --propagation private true 2>/dev/null; then
  sandbox=unshare
  say "sandbox: private mount namespace hiding ${hide[*]}; env -i; HOME=$tmp/home"
else
  sandbox=env
  say "sandbox: unshare --mount is not permitted here, so the repository is NOT hidden; clean env only (env -i, HOME=$tmp/home)"
fi
# run DIR [VAR=VALUE...] -- COMMAND...: COMMAND from DIR in the sandbox, with a clean
# environment plus the VAR=VALUEs given (secrets the config references).
run() {
  local dir=$1; shift
  local vars=(PATH=/usr/bin:/bin HOME="$tmp/home" LANG=C.UTF-8)
  while [[ "$1" != -- ]]; do vars+=("$1"); shift; done
  shift
  if [[ $sandbox == unshare ]]; then
    KS_HIDE=$(IFS=:; echo "${hide[*]}") unshare --mount --propagation private -- bash -c '
      set -e; IFS=:
      for d in $KS_HIDE; do mount -t tmpfs -o ro,size=4k,mode=0555 keyshift-hidden "$d"; done
      cd "$1"; shift; exec env -i "$@"' _ "$dir" "${vars[@]}" "$@"
  else
    (cd "$dir" && exec env -i "${vars[@]}" "$@")
  fi
}

# --- both tarballs: extract, static checks ----------------------------------------------------
newest_glibc() { objdump -T "$1" | grep -o 'GLIBC_[0-9][0-9.]*' | sort -uV | tail -1; }
for arch in "${arches[@]}"; do
  say "$arch: extract keyshift-$version-$arch-linux.tar.gz into the empty $tmp/$arch"
  tar -xzf "$out/keyshift-$version-$arch-linux.tar.gz" -C "$tmp/$arch"
  top=$tmp/$arch/keyshift-$version-$arch-linux
  for f in bin/keyshift lib/libmongocrypt.so.0 LICENSE licenses/libmongocrypt-LICENSE \
    licenses/NOTICE licenses/THIRD-PARTY-RUST.txt share/man/man1/keyshift.1 \
    share/completions/keyshift.bash README.md INSTALL.md sbom.cdx.json; do
    [[ -s "$top/$f" ]] || die "$arch: the tarball has no $f"
  done
  want_machine=$([[ $arch == x86_64 ]] && echo 'X86-64' || echo 'AArch64')
  readelf -h "$top/bin/keyshift" | grep -q "Machine:.*$want_machine" || die "$arch: bin/keyshift is not $want_machine"
  readelf -h "$top/lib/libmongocrypt.so.0" | grep -q "Machine:.*$want_machine" || die "$arch: libmongocrypt is not $want_machine"
  runpath=$(readelf -d "$top/bin/keyshift" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p; s/.*(RPATH).*\[\(.*\)\]/\1/p')
  [[ "$runpath" == '$ORIGIN/../lib' ]] || die "$arch: RUNPATH is '$runpath', want \$ORIGIN/../lib only"
  for f in bin/keyshift lib/libmongocrypt.so.0; do
    versions=$(objdump -T "$top/$f" | grep -o 'GLIBC_[0-9][0-9.]*' | sort -uV | tr '\n' ' ')
    [[ -n "$versions" ]] || die "$arch: no GLIBC_ versioned symbol found in $f (objdump -T failed?)"
    g=$(newest_glibc "$top/$f")
    [[ "$(printf '%s\n' "$g" GLIBC_2.17 | sort -V | tail -1)" == GLIBC_2.17 ]] \
      || die "$arch: $f needs $g, newer than GLIBC_2.17"
    ok "$arch $f: newest GLIBC symbol version $g (all: $versions)"
  done
  ok "$arch: RUNPATH $runpath"
done

# --- x86_64: runs from the empty directory ------------------------------------------------------
if want x86_64; then
top=$tmp/x86_64/keyshift-$version-x86_64-linux
ks=$top/bin/keyshift
say "x86_64: keyshift --version in the sandbox"
banner=$(run "$tmp/x86_64" -- "$ks" --version) || die "x86_64: --version failed"
[[ "$banner" == *"$version"* ]] || die "x86_64: --version says '$banner', not $version"
ok "$banner"
if [[ $sandbox == unshare ]]; then
  [[ -z "$(run "$tmp/x86_64" -- /bin/ls -A "$repo")" ]] || die "the repository is visible in the sandbox"
  ok "in the sandbox $repo is empty"
fi
loaded=$(run "$tmp/x86_64" -- /usr/bin/ldd "$ks") || die "x86_64: ldd failed"
lmc=$(sed -n 's/^[[:space:]]*libmongocrypt\.so\.0 => \([^ ]*\) .*/\1/p' <<<"$loaded")
[[ "$(readlink -f "$lmc" 2>/dev/null)" == "$top/lib/libmongocrypt.so.0" || "$lmc" == "$top/bin/../lib/libmongocrypt.so.0" ]] \
  || die "x86_64: libmongocrypt.so.0 resolves to '$lmc', not the tarball's lib/:"$'\n'"$loaded"
ok "libmongocrypt.so.0 => $lmc"
if grep -q 'not found' <<<"$loaded"; then die "x86_64: a library is not found:"$'\n'"$loaded"; fi

say "x86_64: a test world of its own (KS_RUN_DIR=$world: MongoDB and AWS KMS stand-ins)"
export KS_RUN_DIR=$world KS_ENV_FILE=$world/env
tests/services/up --only mongodb,aws >/dev/null || die "tests/services/up failed (logs: $world/logs)"

seed=$tmp/seed
keys=${KS_TEST_DIST_KEYS:-300}
say "x86_64: seed $keys DEKs under a local master key and encrypted documents (tests/services/seed.py)"
.venv/bin/python tests/services/seed.py --out "$seed" --keys "$keys" --docs 600 --target aws --drop \
  >"$tmp/seed.out" || die "seeding failed"
secrets=()
while IFS= read -r line; do [[ "$line" == *=* ]] && secrets+=("$line"); done <"$seed/keyshift.env"

for step in "check" "rewrap --yes" "verify"; do
  say "x86_64: keyshift $step -c $seed/keyshift.toml (from the empty directory, in the sandbox)"
  # shellcheck disable=SC2086 # step holds a command and its flag
  run "$tmp/x86_64" "${secrets[@]}" -- "$ks" $step -c "$seed/keyshift.toml" >&2 \
    || die "x86_64: keyshift $step failed"
  ok "keyshift $step"
done
[[ -n "$(ls -A "$seed/keyshift-backups" 2>/dev/null)" ]] || die "x86_64: rewrap wrote no backup in $seed/keyshift-backups"

say "x86_64: the oracle, PyMongo with only the AWS provider, decrypts the seeded values"
.venv/bin/python tests/interop/demo_check.py "$seed" || die "the oracle could not decrypt the data after the rewrap"
.venv/bin/python - "$seed" "$keys" <<'EOF' || die "the key vault is not all under the AWS master key"
import json, sys
from pathlib import Path
from pymongo import MongoClient
out, keys = Path(sys.argv[1]), int(sys.argv[2])
seed = json.loads((out / "seed.json").read_text())
env = dict(l.split("=", 1) for l in (out / "keyshift.env").read_text().splitlines() if "=" in l)
db, coll = seed["keyVault"].split(".", 1)
kv = MongoClient(env["MONGODB_URI"])[db][coll]
by = {}
for k in kv.find({}, {"masterKey": 1}):
    by[k["masterKey"]["provider"]] = by.get(k["masterKey"]["provider"], 0) + 1
print(f"oracle: key vault {seed['keyVault']}: {by}", file=sys.stderr)
sys.exit(0 if by == {"aws": keys} else 1)
EOF
ok "rewrap of $keys keys by the extracted x86_64 tarball, proven by PyMongo"
KS_RUN_DIR=$world tests/services/down >/dev/null 2>&1 || true
fi

# --- aarch64 under qemu-user ----------------------------------------------------------------------
if want aarch64; then
top=$tmp/aarch64/keyshift-$version-aarch64-linux
example=(MONGODB_URI=mongodb://127.0.0.1:27017/ "LOCAL_MASTER_KEY=$(head -c 96 /dev/urandom | base64 -w0)"
  AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY)
cp dist/example/keyshift.toml "$tmp/keyshift.toml"
say "aarch64: keyshift --version under qemu-aarch64-static (in the sandbox)"
banner=$(run "$tmp/aarch64" -- /usr/bin/qemu-aarch64-static -L / "$top/bin/keyshift" --version) \
  || die "aarch64: --version failed under qemu"
[[ "$banner" == *"$version"* ]] || die "aarch64: --version says '$banner', not $version"
ok "aarch64: $banner"
say "aarch64: keyshift check -c keyshift.toml (dist/example) under qemu-aarch64-static"
run "$tmp/aarch64" "${example[@]}" -- /usr/bin/qemu-aarch64-static -L / "$top/bin/keyshift" check -c "$tmp/keyshift.toml" >&2 \
  || die "aarch64: keyshift check failed under qemu"
ok "aarch64: keyshift check"
fi

say "passed in $((SECONDS - t0)) s"
