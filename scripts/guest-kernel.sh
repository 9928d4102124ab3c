#!/usr/bin/env bash
# Fetch Debian's cloud kernel for the guest into OUT (default build/guest) without installing
# it: resolve the current version through the meta-package linux-image-cloud-amd64 (old
# security-update versions leave the archive, so none is pinned), apt-get download it, dpkg -x
# it into OUT/kernel, and copy its vmlinuz to OUT/vmlinuz. OUT/kernel.version names it.
set -euo pipefail
OUT=${1:-build/guest}
META=linux-image-cloud-amd64
pkg=$(apt-cache depends "$META" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$pkg" ]; then
  echo "guest-kernel: apt knows no $META (run scripts/setup.sh, which runs apt-get update)" >&2
  exit 1
fi
ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
if [ -f "$OUT/kernel.version" ] && [ "$(cat "$OUT/kernel.version")" = "$pkg $ver" ] && [ -f "$OUT/vmlinuz" ]; then
  exit 0
fi
rm -rf "$OUT/deb" "$OUT/kernel"
mkdir -p "$OUT/deb"
# apt drops to user _apt for downloads; a build folder it cannot write is fine (it warns)
(cd "$OUT/deb" && apt-get download -q "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
deb=$(ls "$OUT"/deb/"$pkg"_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { echo "guest-kernel: apt-get download $pkg failed" >&2; exit 1; }
dpkg -x "$deb" "$OUT/kernel"
cp "$OUT"/kernel/boot/vmlinuz-* "$OUT/vmlinuz.tmp" && mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
echo "$pkg $ver" > "$OUT/kernel.version"
echo "guest-kernel: $pkg $ver -> $OUT/vmlinuz"
