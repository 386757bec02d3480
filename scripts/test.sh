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
(cd contrib/temporal && go vet ./...)

# Test servers. Each one registers its stop function in cleanups; they run
# in reverse order when the script exits, however it exits.
cleanups=()
cleanup() {
	local i
	for ((i = ${#cleanups[@]} - 1; i >= 0; i--)); do
		"${cleanups[i]}" || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop_process PID: SIGTERM, up to 10s to exit, then SIGKILL.
stop_process() {
	local pid=$1
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
}

# accepts HOST:PORT: whether something accepts TCP connections there.
accepts() {
	(exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null
}

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
	stop_process "$mongo_pid"
	rm -rf "$mongo_dir"
}
cleanups+=(stop_mongo)
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
# The store outage test (taskrun) starts, kills and restarts its own server.
export OTELOP_TEST_MONGOWIRE_BIN=$PWD/bin/mongowire
echo "mongowire ready at $OTELOP_TEST_MONGODB_URI (pid $mongo_pid)"

# Jaeger v2 for the trace end-to-end tests (internal/e2e): the jaeger
# binary, a tool of tools/go.mod (`go install` of it fails on a replace
# directive), running tools/jaeger/jaeger-test.yaml: OTLP in, spans in
# memory, the query API, everything on 127.0.0.1. The tests also run it as an
# OpenTelemetry Collector over collector-config.yaml. The first build
# downloads about 1.7 GB of modules and takes about 6 minutes on 2 CPUs;
# later builds come from the build cache in seconds.
echo "== Jaeger v2 test server (tools/jaeger/jaeger-test.yaml)"
jaeger_build_start=$SECONDS
(cd tools && go build -o ../bin/jaeger github.com/jaegertracing/jaeger/cmd/jaeger)
echo "jaeger built in $((SECONDS - jaeger_build_start))s"
jaeger_dir=$(mktemp -d "${TMPDIR:-/tmp}/otelop-jaeger.XXXXXX")
jaeger_pid=""
stop_jaeger() {
	stop_process "$jaeger_pid"
	rm -rf "$jaeger_dir"
}
cleanups+=(stop_jaeger)

# Ports below the kernel's ephemeral range (32768 and up by default), free
# when picked; a start that loses a race for one is retried with new ports.
picked_ports=" "
free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((10000 + RANDOM % 22000))
		case "$picked_ports" in *" $p "*) continue ;; esac
		if ! accepts "127.0.0.1:$p"; then
			picked_ports+="$p "
			echo "$p"
			return 0
		fi
	done
	echo "no free port found" >&2
	return 1
}
jaeger_wait=60 # seconds
jaeger_ready=""
for attempt in 1 2 3; do
	jaeger_query_http=127.0.0.1:$(free_port)
	jaeger_query_grpc=127.0.0.1:$(free_port)
	jaeger_otlp_grpc=127.0.0.1:$(free_port)
	jaeger_otlp_http=127.0.0.1:$(free_port)
	OTELOP_JAEGER_QUERY_HTTP=$jaeger_query_http OTELOP_JAEGER_QUERY_GRPC=$jaeger_query_grpc \
		OTELOP_JAEGER_OTLP_GRPC=$jaeger_otlp_grpc OTELOP_JAEGER_OTLP_HTTP=$jaeger_otlp_http \
		./bin/jaeger --config tools/jaeger/jaeger-test.yaml >"$jaeger_dir/log" 2>&1 &
	jaeger_pid=$!
	for _ in $(seq 1 $((jaeger_wait * 10))); do
		if ! kill -0 "$jaeger_pid" 2>/dev/null; then
			break
		fi
		if accepts "$jaeger_query_http" && accepts "$jaeger_otlp_grpc" && accepts "$jaeger_otlp_http"; then
			jaeger_ready=1
			break
		fi
		sleep 0.1
	done
	[ -n "$jaeger_ready" ] && break
	if ! kill -0 "$jaeger_pid" 2>/dev/null && grep -q "address already in use" "$jaeger_dir/log"; then
		echo "jaeger lost a port to another process (attempt $attempt); retrying with new ports" >&2
		wait "$jaeger_pid" 2>/dev/null || true
		continue
	fi
	if kill -0 "$jaeger_pid" 2>/dev/null; then
		echo "jaeger did not accept connections on $jaeger_query_http, $jaeger_otlp_grpc and $jaeger_otlp_http within ${jaeger_wait}s; its log:" >&2
	else
		echo "jaeger exited before accepting connections; its log:" >&2
	fi
	tail -n 50 "$jaeger_dir/log" >&2
	exit 1
done
if [ -z "$jaeger_ready" ]; then
	echo "jaeger could not get free ports in 3 attempts; its last log:" >&2
	tail -n 50 "$jaeger_dir/log" >&2
	exit 1
fi
export OTELOP_TEST_JAEGER_QUERY=http://$jaeger_query_http
export OTELOP_TEST_OTLP_GRPC=$jaeger_otlp_grpc
export OTELOP_TEST_OTLP_HTTP=$jaeger_otlp_http
export OTELOP_TEST_JAEGER_BIN=$PWD/bin/jaeger
echo "jaeger ready: query $OTELOP_TEST_JAEGER_QUERY, OTLP gRPC $OTELOP_TEST_OTLP_GRPC, OTLP HTTP $OTELOP_TEST_OTLP_HTTP (pid $jaeger_pid)"

# Headless Chromium for the web UI's browser test (httpapi), from Debian's
# packages: chromedp drives it. Screenshots land in test-output/browser.
echo "== chromium (web UI browser test)"
chromium_bin=${OTELOP_TEST_CHROMIUM:-$(command -v chromium || true)}
if [ -z "$chromium_bin" ]; then
	sudo=""
	[ "$(id -u)" = 0 ] || sudo="sudo"
	install_chromium() { DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null; }
	install_chromium || { $sudo apt-get update -qq && install_chromium; }
	chromium_bin=$(command -v chromium)
fi
export OTELOP_TEST_CHROMIUM=$chromium_bin
export OTELOP_TEST_OUTPUT=$PWD/test-output
mkdir -p "$OTELOP_TEST_OUTPUT"
echo "chromium: $("$OTELOP_TEST_CHROMIUM" --version 2>/dev/null || echo "$OTELOP_TEST_CHROMIUM")"

echo "== go test -race"
go test -race -count=1 -timeout 15m ./... "$@"

echo "== go test -race (contrib/temporal, its own module)"
(cd contrib/temporal && go test -race -count=1 -timeout 5m ./...)

echo "== example app"
go run ./examples/jobs >/dev/null
