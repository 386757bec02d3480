package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otelop/otelop/httpapi"
	"github.com/otelop/otelop/internal/testutil"
	"github.com/otelop/otelop/taskrun"
)

// TestServe runs the example with --serve and invokes one of its operations
// over HTTP with a token from OTELOP_API_TOKENS.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.json")
	const token = "example-token-0123456789"
	if err := os.WriteFile(tokens, []byte(`{"`+token+`": {"user_id": "dana", "permissions": ["jobs:write"]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(httpapi.TokensEnv, tokens)
	addr := testutil.FreeAddr(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out testutil.SyncBuffer
	done := make(chan error, 1)
	go func() {
		_, err := run(ctx, "sqlite:"+filepath.Join(dir, "jobs.db"), addr, &out)
		done <- err
	}()
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	get := func(path string, v any) int {
		t.Helper()
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return resp.StatusCode
	}
	var ops httpapi.OperationList
	deadline := time.Now().Add(60 * time.Second)
	for get("/api/operations", &ops) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("the example never served %s:\n%s", addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(ops.Operations) != 4 {
		t.Errorf("catalog: %+v", ops.Operations)
	}

	req, _ := http.NewRequest("POST", "http://"+addr+"/api/operations/create_jobs_batch/invoke",
		strings.NewReader(`{"jobs":[{"title":"from the API","priority":2}]}`))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var res httpapi.InvokeResult
	err = json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || res.TaskRunID == "" {
		t.Fatalf("invoke: %d %v %+v", resp.StatusCode, err, res)
	}
	var run taskrun.TaskRun
	for get("/api/taskruns/"+res.TaskRunID, &run); !run.Status.Final(); get("/api/taskruns/"+res.TaskRunID, &run) {
		if time.Now().After(deadline) {
			t.Fatalf("run %s never final: %+v", res.TaskRunID, run)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if run.Status != taskrun.StatusSuccess || run.Actor != (taskrun.Actor{UserID: "dana", Channel: "api"}) || len(run.ResultRefs) != 1 {
		t.Errorf("invoked run: %+v", run)
	}
	if run.ParentSpanID == "" {
		t.Error("the operation's span has no parent: the HTTP request span is missing")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v\n%s", err, out.String())
	}
}
