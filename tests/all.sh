#!/usr/bin/env bash
# The whole test suite, with its set-up: every crate's tests (unit, ui
# snapshots, samples, runs, no-panic, the CLI end to end), then the language
# server driven by real clients (pytest-lsp and headless Neovim, installed
# into a virtualenv under target/ on first use), then dtc-agent end to end
# with real OpenTelemetry components (the Python SDK and rotel, from PyPI
# into another virtualenv under target/). This is the README's test command,
# and what .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace
bash lsp/tests/run-client-tests.sh
bash tests/agent/run-otel-tests.sh
