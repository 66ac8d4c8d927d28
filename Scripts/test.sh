#!/usr/bin/env bash
# Quick start, command 2: set up, build in release mode, run the whole test suite (the classroom
# page's test runs in headless Chromium, installed here when missing, and must not be skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/setup.sh --with-browser
swift build -c release --build-tests
SD_BROWSER_TEST=required swift test -c release --skip-build
