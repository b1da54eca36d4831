#!/usr/bin/env bash
# End-to-end tests of dtc-agent with real OpenTelemetry components, on
# loopback only: the Python OpenTelemetry SDK (OTLP gRPC and HTTP exporters)
# sends logs to the real `dtc-agent` running artifacts made by the real
# `dtc compile`, and a real receiver downstream (a gRPC OTLP server built on
# opentelemetry-proto's stubs, with rotel, a Rust collector, in between in
# some cases) checks what arrived. Self-contained: makes a virtualenv under
# target/ on first use, installs the pinned packages there, builds the
# binaries, runs pytest. Extra arguments go to pytest (e.g. `-k ripcord`).
set -euo pipefail
cd "$(dirname "$0")/../.."

target="${CARGO_TARGET_DIR:-target}"
venv="$target/agent-otel-venv"
requirements=tests/agent/requirements.txt

# One run at a time sets the virtualenv up.
mkdir -p "$target"
exec 9>"$target/agent-otel-venv.lock"
flock 9
if [ ! -x "$venv/bin/pytest" ] || ! cmp -s "$requirements" "$venv/requirements.txt"; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/requirements.txt"
fi
exec 9>&-

cargo build --quiet -p dtc-cli -p dtc-agent
bin="$(cd "$target" && pwd)/debug"
rotel="$("$venv/bin/python" -c 'import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), "rotel-agent"))')"
DTC_BIN="$bin/dtc" DTC_AGENT_BIN="$bin/dtc-agent" ROTEL_BIN="$rotel" \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/agent "$@"
