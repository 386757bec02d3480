#!/usr/bin/env bash
# The benchmark suite: what observing an operation costs, each figure set
# beside its baseline from the same run (these machines are shared and
# noisy, so only same-run ratios mean anything), compared with benchstat.
#
#   ./scripts/bench.sh             # -count 6, results in test-output/bench/
#   BENCH_COUNT=10 ./scripts/bench.sh
#   SOAK=5m ./scripts/bench.sh     # also the memory soak: 10,000 calls/s for 5 minutes
set -euo pipefail
cd "$(dirname "$0")/.."

count=${BENCH_COUNT:-6}
out=${BENCH_OUT:-test-output/bench}
mkdir -p "$out"
benchstat() { go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da "$@"; }

{
	echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(go version)"
	echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) CPUs"
} >"$out/machine.txt"
cat "$out/machine.txt"

echo "== unobserved Call vs direct call; observed Call vs bare span (-count $count)"
go test -run '^$' -bench '^Benchmark(Unobserved|Overhead|LiveHeap|Parallel)$' -count "$count" ./otelop | tee "$out/overhead.txt"

echo "== sustained throughput through the Processor (-count 3)"
go test -run '^$' -bench '^BenchmarkSustained$' -benchtime 200000x -count 3 ./otelop | tee "$out/sustained.txt"

echo "== store writes and the Processor's decoding of a span (-count 3)"
{
	go test -run '^$' -bench '^BenchmarkWrite(Small)?$' -count 3 ./taskrun/sqlitestore
	go test -run '^$' -bench '^BenchmarkWrite$' -count 3 ./taskrun/memstore
	go test -run '^$' -bench '^Benchmark(FromSpan|DecodeReused)$' -count 3 ./taskrun
} | tee "$out/stores.txt"

# Columns are the impl= variants; benchstat prints each against the first
# column of its row: direct for Unobserved, bare_span_processor for
# Overhead, LiveHeap and Parallel.
{
	echo "## Unobserved (vs direct)"
	benchstat -filter '.name:Unobserved' -col /impl "$out/overhead.txt"
	echo
	echo "## Overhead (vs bare_span_processor)"
	benchstat -filter '.name:Overhead' -col /impl "$out/overhead.txt"
	echo
	echo "## LiveHeap: 64 MiB held live, as in a service (vs bare_span_processor)"
	benchstat -filter '.name:LiveHeap' -col /impl "$out/overhead.txt"
	echo
	echo "## Parallel (vs bare_span_processor)"
	benchstat -filter '.name:Parallel' -col /impl "$out/overhead.txt"
	echo
	echo "## Sustained"
	benchstat "$out/sustained.txt"
	echo
	echo "## Stores"
	benchstat "$out/stores.txt"
} | tee "$out/benchstat.txt"

if [ -n "${SOAK:-}" ]; then
	echo "== memory soak: 10,000 calls/s for $SOAK"
	go run ./internal/soak -duration "$SOAK" -rate 10000 | tee "$out/soak.txt"
fi
echo "results in $out/"
