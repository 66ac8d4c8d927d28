#!/usr/bin/env bash
# Quick start, command 1: set up, build in release mode, and run every lesson unattended on the
# built-in pictures (no download). Pictures and animations land in output/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/setup.sh
swift build -c release
bin="$(swift build -c release --show-bin-path)"

for lesson in forward-noising; do
    echo
    echo "▶ $lesson"
    "$bin/$lesson" --no-pause
done

echo
echo "Files written:"
find output -type f | sort | sed 's/^/  /'
