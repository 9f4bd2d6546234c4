#!/usr/bin/env bash
# The release recipe (docs/release.md): builds streamtool for every supported target with
# cargo-zigbuild (zig as the C compiler and linker) into dist/, one tarball per target
# (streamtool-VERSION-TARGET.tar.gz: the binary, README, licence text if any, the man pages
# of docs/man and the completions of completions/), and dist/SHA256SUMS over the tarballs.
#
#   scripts/release.sh                 # every target in TARGETS below
#   scripts/release.sh x86_64-unknown-linux-musl x86_64-unknown-freebsd   # just these
#
# Needs: rustup (the targets are added), cargo-zigbuild on PATH, and zig (on PATH, or
# PyPI's `ziglang` in the Python that cargo-zigbuild finds: `python3 -m venv /opt/zigvenv
# && /opt/zigvenv/bin/pip install ziglang==0.17.1`, then PATH=/opt/zigvenv/bin:$PATH).
# .ci/run installs the same pinned versions.
#
# macOS: zig ships no Apple SDK, and rustls-native-certs links Apple's Security and
# CoreFoundation frameworks. With SDKROOT pointing at a MacOSX SDK (on a Mac:
# SDKROOT=$(xcrun --show-sdk-path)) that SDK is used; without one the darwin targets link
# against the text stubs in .ci/macos-stubs (the frameworks' install names and the symbols
# used), as CI does, and the script says so: such a binary was built, not run on a Mac.
set -euo pipefail
cd "$(dirname "$0")/.."

export MACOSX_DEPLOYMENT_TARGET="${MACOSX_DEPLOYMENT_TARGET:-11.0}"
if [ -z "${SDKROOT:-}" ]; then
  echo "release: no SDKROOT: the macOS binaries link against .ci/macos-stubs (not run on a Mac)" >&2
  export CARGO_TARGET_X86_64_APPLE_DARWIN_RUSTFLAGS="-C link-arg=-F$PWD/.ci/macos-stubs"
  export CARGO_TARGET_AARCH64_APPLE_DARWIN_RUSTFLAGS="-C link-arg=-F$PWD/.ci/macos-stubs"
fi

TARGETS=(
  x86_64-unknown-linux-musl
  x86_64-unknown-freebsd
  x86_64-apple-darwin
  aarch64-apple-darwin
  x86_64-pc-windows-gnu
)
if [ $# -gt 0 ]; then
  TARGETS=("$@")
fi

version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
dist="dist"
mkdir -p "$dist"
command -v cargo-zigbuild >/dev/null || { echo "release: cargo-zigbuild is not on PATH (cargo install cargo-zigbuild --locked)" >&2; exit 1; }

# The generated files must match the command line being released.
STREAMTOOL_BLESS= cargo test --locked --test it generated_files_are_current -q >/dev/null \
  || { echo "release: docs/man or completions/ are stale (STREAMTOOL_BLESS=1 cargo test --locked --test it generated_files_are_current)" >&2; exit 1; }

built=()
for target in "${TARGETS[@]}"; do
  rustup target add "$target" >/dev/null
  cargo zigbuild --release --locked --target "$target"
  exe="streamtool"
  case "$target" in *windows*) exe="streamtool.exe" ;; esac
  name="streamtool-$version-$target"
  stage="$(mktemp -d)"
  mkdir -p "$stage/$name/man/man1" "$stage/$name/completions"
  cp "target/$target/release/$exe" "$stage/$name/"
  cp README.md "$stage/$name/"
  for licence in LICENSE* COPYING*; do [ -e "$licence" ] && cp "$licence" "$stage/$name/"; done
  cp docs/man/*.1 "$stage/$name/man/man1/"
  cp completions/* "$stage/$name/completions/"
  # Reproducible archives: fixed order, owner and times.
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='@0' \
    -C "$stage" -czf "$dist/$name.tar.gz" "$name"
  rm -rf "$stage"
  built+=("$name.tar.gz")
  echo "release: $dist/$name.tar.gz ($(stat -c %s "target/$target/release/$exe") bytes unpacked binary)"
done

if [ ${#built[@]} -eq 0 ]; then
  echo "release: nothing built" >&2
  exit 1
fi
(cd "$dist" && sha256sum "${built[@]}" > SHA256SUMS)
echo "release: $dist/SHA256SUMS"
cat "$dist/SHA256SUMS"
