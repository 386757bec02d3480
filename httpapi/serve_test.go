package httpapi_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/otelop/otelop/httpapi"
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
	// Find a free loopback port, then serve on it until the context ends.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- httpapi.ListenAndServe(ctx, addr, api, nil) }()
	var resp *http.Response
	for range 100 {
		if resp, err = http.Get("http://" + addr + "/api/auth"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
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
