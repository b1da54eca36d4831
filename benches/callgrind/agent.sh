#!/usr/bin/env bash
# The real dtc-agent's instructions per record, all its threads (receive,
# parse, pipeline, export, tokio), under callgrind: the end-to-end bench
# (benches/agent-load/benches/throughput.rs) with the agent run inside
# valgrind, at two stream sizes, so that what does not grow with the
# records (start-up, the program's compilation, idle, shut-down) cancels:
#
#   per record = (total at N2 - total at N1) / (N2 - N1)
#
# Deterministic, unlike the bench's CPU time per record on a shared
# machine (docs/performance.md, Agent). Kernel time (TCP) is not counted.
#
#   benches/callgrind/agent.sh [FILTER]    # default: "banners 8192"
#
# FILTER picks the runs as DTC_AGENT_BENCH_ONLY does ("scenario stream
# batch_size"); N1, N2 (default 10240, 30720) the stream sizes.
set -euo pipefail
cd "$(dirname "$0")/../.."
FILTER=${1:-banners 8192}
N1=${N1:-10240}; N2=${N2:-30720}
T=${CARGO_TARGET_DIR:-$PWD/target}
cargo build -q --release -p dtc-agent -p dtc-cli
BENCH=$(cargo bench -q -p dtc-agent-bench --bench throughput --no-run --message-format=json 2>/dev/null |
  python3 -c 'import sys,json
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["name"]=="throughput":
        print(m["executable"])' | tail -1)
work=$(mktemp -d)
mkdir -p "$work/bin"
ln -s "$T/release/dtc" "$work/bin/dtc"
cat > "$work/bin/dtc-agent" <<EOF
#!/bin/sh
exec valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file="\$DTC_CG_OUT/agent.%p.out" "$T/release/dtc-agent" "\$@"
EOF
chmod +x "$work/bin/dtc-agent"
declare -A at
for n in "$N1" "$N2"; do
  out="$work/out-$n"
  mkdir -p "$out"
  echo "running ${n} records a run under callgrind ($FILTER)..." >&2
  DTC_CG_OUT="$out" DTC_AGENT_BENCH_BIN_DIR="$work/bin" DTC_AGENT_BENCH_RECORDS=$n \
    DTC_AGENT_BENCH_ROUNDS=1 DTC_AGENT_BENCH_POLL_MS=200 DTC_AGENT_BENCH_ONLY="$FILTER" \
    "$BENCH" > "$out/bench.txt" 2> "$out/bench.err" || { cat "$out/bench.err" >&2; exit 1; }
  # One agent per run, in the bench's order (its stderr names them).
  i=0
  for f in $(ls -tr "$out"/agent.*.out); do
    at[$n,$i]=$(awk '/^summary:|^totals:/ {print $2; exit}' "$f")
    i=$((i + 1))
  done
done
echo "dtc-agent under callgrind, instructions per record (all threads, user space; ($N2 - $N1) records):"
i=0
grep '^round 0:' "$work/out-$N1/bench.err" | sed 's/^round 0: //; s/: [0-9].*//' | while read -r name; do
  a=${at[$N1,$i]}; b=${at[$N2,$i]}
  python3 -c "print(f'{($b - $a) / ($N2 - $N1):10.1f}  $name')"
  i=$((i + 1))
done
echo "(callgrind outputs and the bench's logs: $work)"
