#!/bin/sh
# Installs the stackdrill release binary for this machine (Linux x86_64 or aarch64) into $PREFIX/bin
# (default ~/.local), its man pages into $PREFIX/share/man/man1, after checking the archive's sha256 against
# the release's SHA256SUMS. Usage: sh install.sh [VERSION] (default: the latest release).
# STACKDRILL_DOWNLOAD_BASE replaces the GitHub release URL (a mirror). Verify provenance too with: gh attestation verify stackdrill-<target>.tar.gz --repo acme/stackdrill
set -eu
repo=${STACKDRILL_REPO:-acme/stackdrill}
version=${1:-latest}
prefix=${PREFIX:-$HOME/.local}
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) target=x86_64-unknown-linux-gnu ;;
  Linux-aarch64 | Linux-arm64) target=aarch64-unknown-linux-gnu ;;
  *) echo "error: no stackdrill release for $(uname -s) $(uname -m); build from source (cargo install --locked --git https://github.com/$repo)" >&2; exit 1 ;;
esac
if [ -n "${STACKDRILL_DOWNLOAD_BASE:-}" ]; then
  base=$STACKDRILL_DOWNLOAD_BASE # a mirror (or scripts/release-check's local server)
elif [ "$version" = latest ]; then
  base="https://github.com/$repo/releases/latest/download"
else
  base="https://github.com/$repo/releases/download/v${version#v}"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
archive="stackdrill-$target.tar.gz"
curl -fsSL -o "$tmp/$archive" "$base/$archive"
curl -fsSL -o "$tmp/SHA256SUMS" "$base/SHA256SUMS"
(cd "$tmp" && grep " $archive\$" SHA256SUMS | sha256sum -c -) || { echo "error: $archive does not match SHA256SUMS" >&2; exit 1; }
tar -C "$tmp" -xzf "$tmp/$archive"
mkdir -p "$prefix/bin" "$prefix/share/man/man1"
install -m 0755 "$tmp/stackdrill-$target/stackdrill" "$prefix/bin/stackdrill"
cp "$tmp/stackdrill-$target/man/"*.1 "$prefix/share/man/man1/"
echo "installed $("$prefix/bin/stackdrill" --version) into $prefix/bin"
