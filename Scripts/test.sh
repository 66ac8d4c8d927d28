#!/usr/bin/env bash
# Quick start, command 2: set up, build in release mode, run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/setup.sh
swift build -c release --build-tests
swift test -c release --skip-build
