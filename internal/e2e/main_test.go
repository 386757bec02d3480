package e2e_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that the exporters, the stand-in Tempo and the child
// processes leave no goroutine behind once the tests have shut them down.
func TestMain(m *testing.M) {
	code := m.Run()
	httpClient.CloseIdleConnections() // the tests' keep-alive connections to Jaeger and the collector
	if code == 0 {
		// The OTLP/HTTP exporter sends through a package-level transport
		// whose idle keep-alive connections outlive its Shutdown (they
		// close after 90s idle): their read and write loops are not leaks
		// of ours.
		if err := goleak.Find(
			goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
