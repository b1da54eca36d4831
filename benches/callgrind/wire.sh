#!/usr/bin/env bash
# The agent's wire bench under callgrind, with the system allocator
# (valgrind cannot run mimalloc): inclusive instructions per record of each
# step over 10 requests of 512 records (docs/performance.md, Agent).
#
#   benches/callgrind/wire.sh STEPS TAG     # STEPS: pass,ingress,egress,pipeline
#
# The pipeline step runs twice (no program, then the redaction sample);
# the no-program pass costs a few instructions a record, so its total over
# the 5,120 records is the figure quoted for the redaction.
set -euo pipefail
cd "$(dirname "$0")/../.."
STEPS=$1; TAG=$2
cargo bench -q -p dtc-agent-bench --bench wire --features system-alloc --no-run 2>&1 | tail -3
BIN=$(ls -t "${CARGO_TARGET_DIR:-target}"/release/deps/wire-* | grep -v '\.d$' | head -1)
OUT=${TMPDIR:-/tmp}/wire-callgrind.$TAG.out
DTC_WIRE_STEPS=$STEPS DTC_WIRE_REQUESTS=10 DTC_WIRE_RUNS=1 valgrind --tool=callgrind \
  --callgrind-out-file="$OUT" --toggle-collect='wire::step_*' "$BIN" > /dev/null 2>&1
callgrind_annotate --inclusive=yes "$OUT" > "$OUT.txt"
echo "$TAG, inclusive instructions per record over 5,120 records ($OUT.txt):"
grep -E 'wire::step_|Pipeline::process ' "$OUT.txt" | head -12 | \
  awk '{gsub(",","",$1); printf "%10.1f  %s\n", $1/5120, $(NF-1)}'
