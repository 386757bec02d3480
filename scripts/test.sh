#!/usr/bin/env bash
# The project's test command: formatting, vet, and every test under the
# race detector. Services the tests need are started here.
set -euo pipefail
cd "$(dirname "$0")/.."

export OTELOP_REQUIRE_SERVICES=1

echo "== gofmt"
# Tracked and new (not ignored) files of both modules, tools/ included.
unformatted=$(gofmt -l $(git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt needed on:"
	echo "$unformatted"
	exit 1
fi

echo "== go vet"
go vet ./...
(cd tools && go vet ./...)

# A MongoDB wire-protocol server for the mongostore tests: FerretDB embedded
# by tools/cmd/mongowire (its own module, so users of otelop never download
# it), SQLite files in a temporary directory, a free port on 127.0.0.1. The
# first build downloads FerretDB's modules and takes a minute or two.
echo "== mongo-wire test server (tools/cmd/mongowire)"
mkdir -p bin
(cd tools && go build -o ../bin/mongowire ./cmd/mongowire)
mongo_dir=$(mktemp -d "${TMPDIR:-/tmp}/otelop-mongowire.XXXXXX")
mongo_pid=""
stop_mongo() {
	if [ -n "$mongo_pid" ] && kill -0 "$mongo_pid" 2>/dev/null; then
		kill -TERM "$mongo_pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$mongo_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$mongo_pid" 2>/dev/null || true
		wait "$mongo_pid" 2>/dev/null || true
	fi
	rm -rf "$mongo_dir"
}
trap stop_mongo EXIT
trap 'exit 130' INT TERM
./bin/mongowire -listen 127.0.0.1:0 -data "$mongo_dir/data" -uri-file "$mongo_dir/uri" >"$mongo_dir/log" 2>&1 &
mongo_pid=$!
mongo_wait=60 # seconds
for _ in $(seq 1 $((mongo_wait * 10))); do
	[ -s "$mongo_dir/uri" ] && break
	if ! kill -0 "$mongo_pid" 2>/dev/null; then
		echo "mongowire exited before accepting connections; its log:" >&2
		cat "$mongo_dir/log" >&2
		exit 1
	fi
	sleep 0.1
done
if [ ! -s "$mongo_dir/uri" ]; then
	echo "mongowire did not accept connections within ${mongo_wait}s; its log:" >&2
	tail -n 50 "$mongo_dir/log" >&2
	exit 1
fi
OTELOP_TEST_MONGODB_URI=$(head -n 1 "$mongo_dir/uri")
export OTELOP_TEST_MONGODB_URI
echo "mongowire ready at $OTELOP_TEST_MONGODB_URI (pid $mongo_pid)"

echo "== go test -race"
go test -race -count=1 -timeout 15m ./... "$@"

echo "== example app"
go run ./examples/jobs >/dev/null
