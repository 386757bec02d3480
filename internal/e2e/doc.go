// Package e2e holds end-to-end tests of the trace pipeline against a real
// Jaeger v2 and of the deployment files shipped at the repository root
// (collector-config.yaml, docker-compose.yml, deploy/). It has no non-test
// code.
//
// The trace tests need the servers scripts/test.sh starts, named by:
//
//	OTELOP_TEST_JAEGER_QUERY  Jaeger's query API, e.g. http://127.0.0.1:16686
//	OTELOP_TEST_OTLP_GRPC     the same Jaeger's OTLP/gRPC receiver, host:port
//	OTELOP_TEST_OTLP_HTTP     the same Jaeger's OTLP/HTTP receiver, host:port
//	OTELOP_TEST_JAEGER_BIN    the jaeger binary, run by the tests as an
//	                          OpenTelemetry Collector over collector-config.yaml
//	                          (default: bin/jaeger at the repository root)
//
// Without them the trace tests are skipped, and they fail instead when
// OTELOP_REQUIRE_SERVICES=1. The deployment file tests always run.
package e2e
