#!/usr/bin/env bash
# Real-client tests of the language server: pytest-lsp (a real LSP client,
# with the capabilities VS Code and Neovim send) drives the `dtc lsp` binary
# over stdio. Self-contained: makes a virtualenv under target/, installs the
# pinned client there, builds the binary, runs pytest. Extra arguments go to
# pytest (e.g. `-k bad_input`).
set -euo pipefail
cd "$(dirname "$0")/../.."

target="${CARGO_TARGET_DIR:-target}"
venv="$target/lsp-client-venv"
requirements=lsp/tests/python/requirements.txt

if [ ! -x "$venv/bin/pytest" ] || ! cmp -s "$requirements" "$venv/requirements.txt"; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/requirements.txt"
fi

cargo build --quiet -p dtc-cli
DTC_BIN="$(cd "$target" && pwd)/debug/dtc" \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider lsp/tests/python "$@"
