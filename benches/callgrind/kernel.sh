#!/usr/bin/env bash
# Instructions per event of one workload of the engine's throughput bench,
# under callgrind: the JIT kernel (push_batch over decoded batches), or the
# end to end over JSON lines with a third argument. Deterministic, unlike
# wall clock on a shared machine (docs/performance.md, JIT).
#
#   cargo bench -p dtc-engine --bench throughput --no-run
#   benches/callgrind/kernel.sh W "$(ls -t target/release/deps/throughput-* | grep -v '\.d$' | head -1)" [e2e]
#
# W: 0 where + count, 1 summarize, 2 machine, 3 redaction. N (default
# 20000) events a round. Prints the whole timed function per event (drains
# and drops included) and, for the kernel, Engine::push_batch inclusive
# per event (the figure docs/performance.md quotes).
set -euo pipefail
W=$1; BIN=$2; E2E=${3:-}
N=${N:-20000}
out=$(mktemp -d)
if [ -n "$E2E" ]; then export DTC_BENCH_E2E=1; fn='throughput::end_to_end*'; else fn='throughput::kernel*'; fi
DTC_BENCH_EVENTS=$N DTC_BENCH_PROFILE=$W valgrind --tool=callgrind --callgrind-out-file="$out/cg.out" \
  --toggle-collect="$fn" "$BIN" > "$out/stdout" 2> "$out/stderr"
cat "$out/stdout"
rounds=$(grep -o '([0-9]* rounds' "$out/stdout" | tr -dc 0-9)
events=$((rounds * N))
total=$(grep '^summary:\|^totals:' "$out/cg.out" | head -1 | awk '{print $2}')
echo "W$W ${E2E:+end to end }$fn: $(python3 -c "print(f'{$total/$events:.1f}')") instructions an event ($rounds rounds of $N)"
if [ -z "$E2E" ]; then
  batch=$(callgrind_annotate --inclusive=yes "$out/cg.out" | grep 'Engine::push_batch' | head -1 | awk '{gsub(",","",$1); print $1}')
  [ -n "$batch" ] && echo "W$W Engine::push_batch inclusive: $(python3 -c "print(f'{$batch/$events:.1f}')") instructions an event"
fi
echo "callgrind output: $out/cg.out"
