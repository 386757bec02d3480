package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/otelop/otelop/httpapi"
	"github.com/otelop/otelop/internal/testutil"
	"github.com/otelop/otelop/taskrun/memstore"
)

func TestListenAndServeRefusesReadOnlyOffLoopback(t *testing.T) {
	api, err := httpapi.New(nil, memstore.New(), httpapi.WithLogger(discardLogger()))
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{":0", "0.0.0.0:0", "[::]:0", "192.0.2.1:8080", "nonsense"} {
		err := httpapi.ListenAndServe(context.Background(), addr, api, nil)
		if err == nil || !strings.Contains(err.Error(), httpapi.TokensEnv) {
			t.Errorf("%s: err = %v, want a refusal naming %s", addr, err, httpapi.TokensEnv)
		}
	}
}

func TestListenAndServe(t *testing.T) {
	api, err := httpapi.New(nil, memstore.New(), httpapi.WithLogger(discardLogger()))
	if err != nil {
		t.Fatal(err)
	}
	// Serve on a free loopback port until the context ends.
	addr := testutil.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- httpapi.ListenAndServe(ctx, addr, api, nil) }()
	resp := testutil.WaitGet(t, nil, "http://"+addr+"/api/auth", 10*time.Second, nil)
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if resp.StatusCode != 200 {
		t.Errorf("GET /api/auth: %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ListenAndServe after cancel: %v", err)
	}
}
