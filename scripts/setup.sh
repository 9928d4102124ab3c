#!/usr/bin/env bash
# Install everything sevshim needs on Debian 12 (bookworm). Idempotent: it only calls apt-get when
# a package is missing, and `go mod download` only fetches modules not yet in the cache.
set -euo pipefail

PACKAGES=(
  qemu-system-x86   # QEMU 7.2: the boot, migration and TPM tests run under -accel tcg
  qemu-utils
  ovmf              # Debian's OVMF_CODE_4M.fd / .secboot.fd: the provider BIOS in tests and demo
  libbearssl-dev    # libbearssl.a: ECDSA P-384 + SHA-384 linked into the shim firmware
  nasm              # the shim's reset vector and mode-switch code
  gcc make binutils # freestanding C build of the shim and host C tests
  clang libclang-rt-14-dev  # libFuzzer for the C parser fuzz target
  swtpm swtpm-tools # the TPM used by measured-boot tests
  libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu  # hostctl receive --libvirt
  libxml2-utils     # virt-xml-validate's xmllint (libvirt XML checked against libvirt's schema)
  git ca-certificates xxd python3 coreutils
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# the guest kernel is fetched with apt-get download at build time (scripts/guest-kernel.sh):
# apt must know the cloud kernel's meta-package
if ! apt-cache show linux-image-cloud-amd64 >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
fi

export PATH="/usr/local/go/bin:$PATH"
if ! command -v go >/dev/null; then
  echo "setup: Go toolchain not found (expected /usr/local/go/bin/go); install Go >= 1.26" >&2
  exit 1
fi
cd "$(dirname "$0")/.."
go mod download
