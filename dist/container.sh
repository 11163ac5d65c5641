#!/usr/bin/env bash
# `make container`: the image dist/Containerfile defines, built on this machine, which
# reaches no image registry, and checked.
#
#   dist/container.sh [--base-only]   (make container builds the tarballs first;
#                                      --base-only: step 1 alone, no tarball needed)
#
# 1. The base: a Debian root filesystem made from packages, not pulled from a registry:
#    debootstrap --variant=minbase (+ ca-certificates) from the Debian mirror apt uses
#    here, brought up to date with bookworm-security and bookworm-updates, docs and apt
#    lists removed; kept as dist/out/container/base-bookworm-ARCH.tar (reused; delete
#    it to refresh).
# 2. With podman (vfs storage, chroot isolation, so no overlayfs, user namespaces or
#    systemd are needed): import the base as localhost/keyshift-base:bookworm, build
#    localhost/keyshift:VERSION from dist/Containerfile on it, save it as
#    dist/out/container/keyshift-VERSION-ARCH.oci.tar, then run `keyshift --version`
#    and `keyshift check` (dist/example/keyshift.toml) in it with `podman run`.
#    If podman run cannot start a container here, the built image's own root filesystem
#    (podman export) is checked with chroot instead, as below.
# 3. Without a working `podman build`: the same root filesystem assembled by hand, step
#    for step what the Containerfile does (the tarball unpacked into /opt, the links, the
#    keyshift user 10001), in dist/out/container/rootfs-ARCH/.
# KEYSHIFT_NO_PODMAN=1 takes path 3 even where podman works (to test it).
# The chroot check runs keyshift as uid 10001 (chroot --userspec) with the image's
# environment, /proc and /dev mounted in a private mount namespace. The script says
# which path it took. ARCH is x86_64 (this machine's).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
t0=$SECONDS

say() { printf '\ncontainer: %s\n' "$*" >&2; }
die() { printf '\ncontainer: FAILED: %s\n' "$*" >&2; exit 1; }
ok() { printf 'container: ok: %s\n' "$*" >&2; }

base_only=
case "${1:-}" in
  --base-only) base_only=1 ;;
  "") ;;
  *) die "unknown argument $1 (usage: dist/container.sh [--base-only])" ;;
esac
[[ $(id -u) == 0 ]] || die "needs root (debootstrap, chroot, podman with vfs storage)"
arch=x86_64 debarch=amd64
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
tarball=dist/out/keyshift-$version-$arch-linux.tar.gz
[[ -n $base_only || -f "$tarball" ]] || die "no $tarball: run make dist first (make container does)"
for t in debootstrap podman; do command -v $t >/dev/null || die "$t missing: run dist/setup.sh"; done
work=$repo/dist/out/container
mkdir -p "$work"
image=localhost/keyshift:$version
base_image=localhost/keyshift-base:bookworm
# vfs storage: no overlayfs needed. runc, not Debian's default crun, which refuses a
# hybrid cgroup layout (v1 controllers plus a v2 hierarchy holding one, as on this
# build machine). Containers get this shell's own open-file limit and a modest process
# limit: podman's defaults (nofile 1048576) are above them, and raising a limit needs
# CAP_SYS_RESOURCE, which a root in a sandboxed VM or CI runner may not have.
podman=(podman --storage-driver vfs)
command -v runc >/dev/null && podman+=(--runtime runc)
limits=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)

# The mirror apt already uses (deb822 or one-line sources), else Debian's own.
mirror=$(sed -n 's|^URIs: *\(https\?://[^ ]*/debian\)/\?$|\1|p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
[[ -n "$mirror" ]] || mirror=$(sed -n 's|^deb \(https\?://[^ ]*/debian\)/\? .*|\1|p' /etc/apt/sources.list 2>/dev/null | head -1)
[[ -n "$mirror" ]] || mirror=http://deb.debian.org/debian
security=${mirror%/debian}/debian-security

# in_root ROOT CMD...: CMD chrooted into ROOT with /proc, /dev and (for apt) the host's
# resolv.conf, in a private mount namespace so nothing stays mounted if this dies.
in_root() {
  local root=$1; shift
  unshare --mount --propagation private -- bash -c '
    set -e; root=$1; shift
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    if [ -f /etc/resolv.conf ] && [ -f "$root/etc/resolv.conf" ]; then
      mount --bind /etc/resolv.conf "$root/etc/resolv.conf"
    fi
    exec chroot "$root" "$@"' _ "$root" "$@"
}

# --- 1. the base root filesystem -------------------------------------------------------------
base_tar=$work/base-bookworm-$arch.tar
if [[ ! -s "$base_tar" ]]; then
  say "base: debootstrap --variant=minbase bookworm ($debarch) from $mirror"
  root=$work/base-rootfs
  rm -rf "$root"
  debootstrap --variant=minbase --arch="$debarch" --include=ca-certificates bookworm "$root" "$mirror" >&2 \
    || die "debootstrap failed (see $root/debootstrap/debootstrap.log)"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  rm -f "$root/etc/apt/sources.list"
  say "base: security and point-release updates"
  in_root "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c 'apt-get update -qq && apt-get -y -qq upgrade >/dev/null && apt-get clean' >&2 \
    || die "apt-get upgrade in the base failed"
  # What a container never uses: docs, man pages, locales, apt's lists and caches, logs.
  rm -rf "$root"/usr/share/{doc,man,info,locale,lintian,linda}/* "$root"/var/lib/apt/lists/* \
    "$root"/var/cache/apt/*.bin "$root"/var/cache/debconf/*-old "$root"/var/log/* "$root"/debootstrap
  : >"$root/etc/resolv.conf"
  tar --numeric-owner --xattrs -C "$root" -cf "$base_tar.tmp" .
  mv "$base_tar.tmp" "$base_tar"
  rm -rf "$root"
fi
say "base: $base_tar ($(du -h "$base_tar" | cut -f1) uncompressed)"
[[ -z $base_only ]] || exit 0

# A build context with only what the Containerfile reads.
ctx=$work/context
rm -rf "$ctx" && mkdir -p "$ctx/dist/out"
cp dist/Containerfile "$ctx/dist/Containerfile"
ln "$tarball" "$ctx/$tarball" 2>/dev/null || cp "$tarball" "$ctx/$tarball"

# The check: `keyshift --version` and `keyshift check` on dist/example/keyshift.toml, as
# uid 10001 with the image's environment, in ROOT (a root filesystem) via chroot.
example_env=(MONGODB_URI=mongodb://127.0.0.1:27017/ "LOCAL_MASTER_KEY=$(head -c 96 /dev/urandom | base64 -w0)"
  AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY)
check_rootfs() {
  local root=$1
  [[ "$(stat -c %u "$root/work")" == 10001 ]] || die "/work in the image is not owned by 10001"
  grep -q '^keyshift:x:10001:10001:' "$root/etc/passwd" || die "no keyshift user 10001 in the image"
  mkdir -p "$root/config" && cp dist/example/keyshift.toml "$root/config/keyshift.toml"
  local envs=(PATH=/opt/keyshift/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/work)
  local who
  who=$(in_root "$root" /usr/sbin/chroot --userspec=10001:10001 / /usr/bin/env -i "${envs[@]}" id -u) \
    || die "chroot --userspec=10001:10001 failed"
  [[ "$who" == 10001 ]] || die "ran as uid $who, not 10001"
  banner=$(in_root "$root" /usr/sbin/chroot --userspec=10001:10001 / /usr/bin/env -i "${envs[@]}" \
    sh -c 'cd /work && keyshift --version') || die "keyshift --version failed in the root filesystem"
  [[ "$banner" == *"$version"* ]] || die "--version says '$banner'"
  ok "chroot as uid 10001: $banner"
  in_root "$root" /usr/sbin/chroot --userspec=10001:10001 / /usr/bin/env -i "${envs[@]}" "${example_env[@]}" \
    sh -c 'cd /work && keyshift check -c /config/keyshift.toml' >&2 || die "keyshift check failed in the root filesystem"
  ok "chroot as uid 10001: keyshift check -c /config/keyshift.toml"
  rm -rf "$root/config"
}

# --- 2. podman --------------------------------------------------------------------------------
built=
if [[ -n "${KEYSHIFT_NO_PODMAN:-}" ]]; then
  say "KEYSHIFT_NO_PODMAN is set: not using podman"
elif "${podman[@]}" info >/dev/null 2>"$work/podman-info.err"; then
  say "podman: import the base as $base_image (vfs storage)"
  if "${podman[@]}" import --change 'CMD ["/bin/bash"]' "$base_tar" "$base_image" >&2 2>"$work/podman.err"; then
    say "podman: build $image from dist/Containerfile (isolation chroot)"
    if "${podman[@]}" build --isolation chroot --network host --pull=never "${limits[@]}" -f dist/Containerfile \
      --build-arg "BASE=$base_image" --build-arg "VERSION=$version" --build-arg "ARCH=$arch" \
      -t "$image" "$ctx" >&2 2>>"$work/podman.err"; then
      built=podman
      "${podman[@]}" images "$image" >&2
      rm -f "$work/keyshift-$version-$arch.oci.tar"
      "${podman[@]}" save --format oci-archive -o "$work/keyshift-$version-$arch.oci.tar" "$image"
      ok "image $image, saved as dist/out/container/keyshift-$version-$arch.oci.tar ($(du -h "$work/keyshift-$version-$arch.oci.tar" | cut -f1))"
      user=$("${podman[@]}" image inspect --format '{{.Config.User}} {{.Config.Entrypoint}}' "$image")
      ok "image config: user/entrypoint $user"
    else
      say "podman build failed: $(tail -3 "$work/podman.err")"
    fi
  else
    say "podman import failed: $(tail -3 "$work/podman.err")"
  fi
else
  say "podman cannot run here: $(tail -3 "$work/podman-info.err")"
fi

if [[ $built == podman ]]; then
  say "podman run: keyshift --version and check in the image"
  mkdir -p "$work/config" && cp dist/example/keyshift.toml "$work/config/keyshift.toml"
  envflags=(); for e in "${example_env[@]}"; do envflags+=(-e "$e"); done
  if "${podman[@]}" run --rm --network none "${limits[@]}" "$image" --version >"$work/run.out" 2>"$work/run.err"; then
    ok "podman run $image --version: $(cat "$work/run.out")"
    "${podman[@]}" run --rm --network none "${limits[@]}" -v "$work/config:/config:ro" "${envflags[@]}" "$image" \
      check -c /config/keyshift.toml >&2 || die "keyshift check failed in the container"
    who=$("${podman[@]}" run --rm --network none "${limits[@]}" --entrypoint /usr/bin/id "$image" -u)
    [[ "$who" == 10001 ]] || die "the container runs as uid $who, not 10001"
    ok "podman run: keyshift check as uid $who"
    ran=podman
  else
    say "podman run cannot start a container here: $(tail -2 "$work/run.err")"
    say "checking the built image's root filesystem (podman export) with chroot instead"
    root=$work/image-rootfs
    rm -rf "$root" && mkdir -p "$root"
    cid=$("${podman[@]}" create "$image")
    "${podman[@]}" export "$cid" | tar -x -C "$root" --numeric-owner
    "${podman[@]}" rm "$cid" >/dev/null
    check_rootfs "$root"
    rm -rf "$root"
    ran=chroot-of-image
  fi
  rm -rf "$work/config"
else
  # --- 3. by hand: what the Containerfile does -------------------------------------------------
  say "assembling the image's root filesystem without podman: dist/out/container/rootfs-$arch"
  root=$work/rootfs-$arch
  rm -rf "$root" && mkdir -p "$root"
  tar -x -C "$root" --numeric-owner -f "$base_tar"
  tar -x -C "$root/opt" -zf "$tarball"                              # ADD ... /opt/
  in_root "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin sh -euc "
    ln -s keyshift-$version-$arch-linux /opt/keyshift
    ln -s /opt/keyshift/bin/keyshift /usr/local/bin/keyshift
    groupadd --gid 10001 keyshift
    useradd --uid 10001 --gid 10001 --no-create-home --home-dir /work --shell /usr/sbin/nologin keyshift
    mkdir -p /work; chown 10001:10001 /work" || die "the Containerfile's RUN step failed in chroot"
  built=rootfs ran=chroot
  check_rootfs "$root"
  say "root filesystem: $root ($(du -sh "$root" | cut -f1))"
fi

say "done in $((SECONDS - t0)) s: built with ${built}, checked with ${ran}"
