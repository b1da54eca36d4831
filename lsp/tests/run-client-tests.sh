#!/usr/bin/env bash
# Real-client tests of the language server: pytest-lsp (a real LSP client,
# with the capabilities VS Code and Neovim send) drives the `dtc lsp` binary
# over stdio, then headless Neovim 0.11 opens a sample through the config in
# editors/nvim. Self-contained: makes a virtualenv under target/, installs
# the pinned clients there, builds the binary, runs both. Extra arguments go
# to pytest (e.g. `-k bad_input`).
set -euo pipefail
cd "$(dirname "$0")/../.."

target="${CARGO_TARGET_DIR:-target}"
venv="$target/lsp-client-venv"
requirements=lsp/tests/python/requirements.txt

# One run at a time sets the virtualenv up.
mkdir -p "$target"
exec 9>"$target/lsp-client-venv.lock"
flock 9
if [ ! -x "$venv/bin/pytest" ] || [ ! -x "$venv/bin/nvim" ] \
    || ! cmp -s "$requirements" "$venv/requirements.txt"; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/requirements.txt"
fi

cargo build --quiet -p dtc-cli
dtc="$(cd "$target" && pwd)/debug/dtc"
DTC_BIN="$dtc" "$venv/bin/python" -m pytest -q -p no:cacheprovider lsp/tests/python "$@"
"$venv/bin/nvim" --headless -u NONE -l editors/nvim/test/smoke.lua \
    "$dtc" "$PWD/samples/06-verify-hash/verify_hash.dt"
