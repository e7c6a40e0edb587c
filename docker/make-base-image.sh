#!/usr/bin/env bash
# Build a Debian base image from Debian packages, for hosts that cannot pull images from a registry.
#
#   docker/make-base-image.sh [TAG]        (default tag: adgrade-base:bookworm)
#
# mmdebstrap writes a minimal Debian bookworm root file system with Python 3.11 to a tar stream,
# and `docker import` turns it into an image. Build the grading image on it with
#   adgrade image build --base-image adgrade-base:bookworm
set -euo pipefail

tag="${1:-adgrade-base:bookworm}"
suite="${ADGRADE_BASE_SUITE:-bookworm}"
mirror="${ADGRADE_BASE_MIRROR:-http://deb.debian.org/debian}"

for tool in mmdebstrap docker; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "make-base-image: '$tool' is not installed; on Debian or Ubuntu: apt-get install mmdebstrap docker.io" >&2
        exit 2
    fi
done

mmdebstrap --variant=minbase --quiet \
    --include=python3,python3-venv,python3-pip,ca-certificates,tar,coreutils \
    --aptopt='APT::Install-Recommends "false"' \
    --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*' \
    "$suite" - "$mirror" \
    | docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "$tag"
echo "built $tag"
