#!/usr/bin/env python3
"""A CycloneDX 1.5 SBOM for one keyshift release tarball, and its third-party notices.

    sbom.py --target TRIPLE --version V --libmongocrypt-version LV \
            --libmongocrypt-so PATH --wheel PATH --binary PATH \
            --out SBOM.json --notices THIRD-PARTY.txt

Components come from cargo itself, resolved for the release target exactly as the build
resolves them (`cargo tree -p keyshift --target TRIPLE`, so features and platform
dependencies are those of the shipped binary): every crate linked into the binary has
scope "required"; crates used only while building (build scripts, proc-macros) have scope
"excluded". Licences, checksums (Cargo.lock's SHA-256 of the .crate) and repositories come
from `cargo metadata`. libmongocrypt, which the tarball ships as lib/libmongocrypt.so.0,
is a component of its own with its version, the SHA-256 of the shipped file and the
wheel it was taken from.

The notices file gathers, for every crate linked into the binary, the licence and notice
files its published source carries (identical texts printed once), which the MIT, BSD and
Apache licences ask a binary distribution to pass on.

No path of the build machine is written: path dependencies (the workspace's own crates)
are named, not located. The timestamp is SOURCE_DATE_EPOCH (the commit's time, set by
dist/build.sh), so the same commit gives the same SBOM.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

CARGO = os.environ.get("CARGO", "cargo")
LICENSE_PREFIXES = ("license", "licence", "copying", "notice", "unlicense", "copyright", "authors")


def cargo_tree(target: str, edges: str) -> set[tuple[str, str]]:
    out = subprocess.run(
        [CARGO, "tree", "--locked", "-p", "keyshift", "--target", target, "-e", edges,
         "--prefix", "none", "-f", "{p}"],
        check=True, capture_output=True, text=True,
    ).stdout
    found = set()
    for line in out.splitlines():
        parts = line.replace(" (*)", "").split()
        if len(parts) >= 2 and parts[1].startswith("v"):
            found.add((parts[0], parts[1][1:]))
    return found


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def license_entry(expr: str | None) -> list[dict]:
    if not expr:
        return []
    # Cargo's old "A/B" form means "A OR B".
    return [{"expression": expr.replace("/", " OR ")}]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--libmongocrypt-version", required=True)
    ap.add_argument("--libmongocrypt-so", required=True, type=Path)
    ap.add_argument("--wheel", required=True, type=Path)
    ap.add_argument("--binary", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--notices", required=True, type=Path)
    a = ap.parse_args()

    meta = json.loads(subprocess.run(
        [CARGO, "metadata", "--format-version", "1", "--locked", "--filter-platform", a.target],
        check=True, capture_output=True, text=True,
    ).stdout)
    by_nv = {(p["name"], p["version"]): p for p in meta["packages"]}
    lock_sums = {}
    lock = (Path(meta["workspace_root"]) / "Cargo.lock").read_text()
    for block in lock.split("[[package]]"):
        fields = dict(
            (k.strip(), v.strip().strip('"'))
            for k, v in (line.split("=", 1) for line in block.splitlines() if "=" in line)
        )
        if "checksum" in fields:
            lock_sums[(fields["name"], fields["version"])] = fields["checksum"]

    runtime = cargo_tree(a.target, "normal,no-proc-macro")
    everything = cargo_tree(a.target, "normal,build")
    runtime.discard(("keyshift", a.version))
    everything.discard(("keyshift", a.version))

    components = []
    for name, version in sorted(everything):
        p = by_nv.get((name, version))
        if p is None:
            sys.exit(f"sbom: {name} {version} from cargo tree is not in cargo metadata")
        registry = p["source"] is not None and "crates.io-index" in p["source"]
        c = {
            "type": "library",
            "bom-ref": f"pkg:cargo/{name}@{version}",
            "name": name,
            "version": version,
            "scope": "required" if (name, version) in runtime else "excluded",
        }
        if p.get("description"):
            c["description"] = " ".join(p["description"].split())
        c["licenses"] = license_entry(p.get("license"))
        if not c["licenses"]:
            del c["licenses"]
        if registry:
            c["purl"] = f"pkg:cargo/{name}@{version}"
            if (name, version) in lock_sums:
                c["hashes"] = [{"alg": "SHA-256", "content": lock_sums[(name, version)]}]
        else:
            c["properties"] = [{"name": "keyshift:source", "value": "this repository (workspace member)"}]
        refs = []
        if p.get("repository"):
            refs.append({"type": "vcs", "url": p["repository"]})
        if p.get("homepage"):
            refs.append({"type": "website", "url": p["homepage"]})
        if refs:
            c["externalReferences"] = refs
        components.append(c)

    lmc_ref = f"pkg:github/mongodb/libmongocrypt@{a.libmongocrypt_version}"
    components.append({
        "type": "library",
        "bom-ref": lmc_ref,
        "supplier": {"name": "MongoDB, Inc."},
        "name": "libmongocrypt",
        "version": a.libmongocrypt_version,
        "scope": "required",
        "description": "MongoDB client-side field level encryption library, shipped as "
                       "lib/libmongocrypt.so.0 (byte for byte the one in the pymongocrypt wheel)",
        "licenses": [{"license": {"id": "Apache-2.0"}}],
        "purl": lmc_ref,
        "hashes": [{"alg": "SHA-256", "content": sha256(a.libmongocrypt_so)}],
        "externalReferences": [{"type": "vcs", "url": "https://github.com/mongodb/libmongocrypt"}],
        "properties": [
            {"name": "keyshift:file", "value": "lib/libmongocrypt.so.0"},
            {"name": "keyshift:taken-from", "value": a.wheel.name},
            {"name": "keyshift:taken-from-sha256", "value": sha256(a.wheel)},
        ],
    })

    arch = a.target.split("-")[0]
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    stamp = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    keyshift_ref = f"pkg:generic/keyshift@{a.version}?arch={arch}"
    dependencies = [{"ref": keyshift_ref, "dependsOn": sorted(
        [c["bom-ref"] for c in components if c["scope"] == "required"])}]
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "timestamp": stamp,
            "tools": {"components": [{"type": "application", "name": "keyshift dist/sbom.py"}]},
            "component": {
                "type": "application",
                "bom-ref": keyshift_ref,
                "name": "keyshift",
                "version": a.version,
                "description": "move MongoDB CSFLE/QE key vaults to a KMS without decrypting a document",
                "licenses": [{"license": {"id": "Apache-2.0"}}],
                "hashes": [{"alg": "SHA-256", "content": sha256(a.binary)}],
                "properties": [
                    {"name": "keyshift:target", "value": a.target},
                    {"name": "keyshift:file", "value": "bin/keyshift"},
                    {"name": "keyshift:libmongocrypt-version", "value": a.libmongocrypt_version},
                ],
            },
        },
        "components": components,
        "dependencies": dependencies,
    }
    text = json.dumps(bom, indent=2, sort_keys=False) + "\n"
    bom["serialNumber"] = "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, hashlib.sha256(text.encode()).hexdigest()))
    bom = {"bomFormat": bom.pop("bomFormat"), "specVersion": bom.pop("specVersion"),
           "serialNumber": bom.pop("serialNumber"), **bom}
    a.out.write_text(json.dumps(bom, indent=2) + "\n")

    # Third-party notices: each linked crate's licence files, identical texts once.
    texts: dict[str, list[str]] = {}
    order: list[str] = []
    no_files = []
    for name, version in sorted(runtime):
        p = by_nv[(name, version)]
        if p["source"] is None:
            continue  # this repository's own crates: keyshift's LICENSE
        crate_dir = Path(p["manifest_path"]).parent
        files = sorted(f for f in crate_dir.iterdir()
                       if f.is_file() and f.name.lower().startswith(LICENSE_PREFIXES))
        if not files:
            no_files.append(f"{name} {version}: {p.get('license') or 'see its crate'}")
            continue
        for f in files:
            body = f.read_text(errors="replace").strip() + "\n"
            if body not in texts:
                texts[body] = []
                order.append(body)
            texts[body].append(f"{name} {version} ({f.name}, {p.get('license')})")
    with open(a.notices, "w") as out:
        out.write(
            f"Third-party software in keyshift {a.version} for {a.target}\n\n"
            "bin/keyshift links the Rust crates below (from crates.io); each text that follows is\n"
            "a licence or notice file published with the crates named above it. lib/libmongocrypt.so.0\n"
            "is libmongocrypt (Apache-2.0), see licenses/libmongocrypt-LICENSE. The full list with\n"
            "versions and checksums is sbom.cdx.json (CycloneDX).\n\n"
        )
        for body in order:
            out.write("=" * 78 + "\n")
            out.write("".join(f"  {who}\n" for who in texts[body]))
            out.write("-" * 78 + "\n")
            out.write(body + "\n")
        if no_files:
            out.write("=" * 78 + "\n")
            out.write("Crates whose published source carries no licence file (their licence as declared):\n")
            out.write("".join(f"  {line}\n" for line in no_files))
    required = sum(1 for c in components if c["scope"] == "required")
    print(f"sbom: {a.out.name}: {required} linked components ({len(runtime)} crates and libmongocrypt "
          f"{a.libmongocrypt_version}), {len(components) - required} build-only", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
