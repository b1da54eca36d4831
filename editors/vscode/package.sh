#!/usr/bin/env bash
# Builds the VS Code extension into editors/vscode/dtc-dt.vsix with the
# standard tool (@vscode/vsce), from the npm registry.
set -euo pipefail
cd "$(dirname "$0")"
npm install --no-audit --no-fund --loglevel=error
node check-grammar.js
npx --no-install vsce package --skip-license --out dtc-dt.vsix
echo "built $(pwd)/dtc-dt.vsix"
