#!/usr/bin/env bash
# The project's test command: formatting, vet, and every test under the
# race detector. Services the tests need are started here.
set -euo pipefail
cd "$(dirname "$0")/.."

export OTELOP_REQUIRE_SERVICES=1

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt needed on:"
	echo "$unformatted"
	exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test -race"
go test -race -count=1 -timeout 15m ./... "$@"

echo "== example app"
go run ./examples/jobs >/dev/null
