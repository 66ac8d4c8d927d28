#!/usr/bin/env bash
# Installs the two C libraries the frame exporter is built on (libpng, libgd) when they are missing,
# and with --with-browser also Chromium, which the classroom page's browser test drives headless.
# Debian/Ubuntu only; elsewhere install libpng and gd (and Chromium) with your package manager.
set -euo pipefail

missing=()
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
if command -v pkg-config >/dev/null 2>&1; then
    pkg-config --exists libpng || missing+=(libpng-dev)
    pkg-config --exists gdlib || missing+=(libgd-dev)
else
    missing+=(libpng-dev libgd-dev)
fi
if [ "${1:-}" = "--with-browser" ] && ! command -v chromium >/dev/null 2>&1; then
    missing+=(chromium)
fi

if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing ${missing[*]} ..."
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
