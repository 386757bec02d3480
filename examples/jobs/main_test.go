package main

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otelop/otelop/exporters"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/mongostore"
)

// storeURIs are the stores the example runs on in tests: memory, an SQLite
// file, and MongoDB when OTELOP_TEST_MONGODB_URI names a server.
func storeURIs(t *testing.T) map[string]string {
	uris := map[string]string{
		"memory": "memory:",
		"sqlite": "sqlite:" + filepath.Join(t.TempDir(), "jobs.db"),
	}
	base := os.Getenv("OTELOP_TEST_MONGODB_URI")
	switch {
	case base != "":
		u, err := url.Parse(base)
		if err != nil {
			t.Fatalf("OTELOP_TEST_MONGODB_URI: %v", err)
		}
		u.Path = fmt.Sprintf("/otelop_example_%d", time.Now().UnixNano())
		uris["mongodb"] = u.String()
		t.Cleanup(func() {
			st, err := mongostore.Open(context.Background(), u.String())
			if err != nil {
				t.Errorf("dropping the test database: %v", err)
				return
			}
			_ = st.Database().Drop(context.Background())
			_ = st.Close(context.Background())
		})
	case os.Getenv("OTELOP_REQUIRE_SERVICES") == "1":
		t.Fatal("OTELOP_REQUIRE_SERVICES=1 but OTELOP_TEST_MONGODB_URI is unset")
	default:
		t.Log("OTELOP_TEST_MONGODB_URI unset: the example is not run on MongoDB")
	}
	return uris
}

func TestScenario(t *testing.T) {
	for name, uri := range storeURIs(t) {
		t.Run(name, func(t *testing.T) { testScenario(t, uri) })
	}
}

func testScenario(t *testing.T, uri string) {
	var out bytes.Buffer
	runs, err := run(context.Background(), uri, "", &out)
	if err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"error: otelop: invalid input for create_jobs_batch: jobs[0].title is required",
		`update_job job-9999 -> error: job "job-9999" not found`,
		"OPERATION          STATUS   ACTOR",
		"processor: 16 states enqueued, 16 written, 0 dropped",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if len(runs) != 8 {
		t.Fatalf("%d runs, want 8", len(runs))
	}
	// Oldest first, as the scenario ran them.
	type row struct {
		op, status, user, channel, errType string
		refs, itemErrors                   int
		dryRun, orchestrated               bool
	}
	want := []row{
		{"create_jobs_batch", "SUCCESS", "alice", "web", "", 4, 0, false, false},
		{"update_job", "SUCCESS", "bob", "api", "", 1, 0, false, false},
		{"update_job", "FAILED", "bob", "api", "not_found", 0, 0, false, false},
		{"create_jobs_batch", "FAILED", "alice", "web", "invalid_input", 0, 0, false, false},
		{"bulk_delete_jobs", "SUCCESS", "carol", "cli", "", 2, 0, true, false},
		{"bulk_delete_jobs", "SUCCESS", "carol", "cli", "", 1, 1, false, false},
		{"create_jobs_batch", "SUCCESS", "scheduler", "cron", "", 1, 0, false, true},
		{"process_jobs", "SUCCESS", "scheduler", "cron", "", 4, 0, false, true},
	}
	for i, w := range want {
		r := runs[len(runs)-1-i]
		dry, _ := r.Metadata["dry_run"].(bool)
		got := row{r.OperationName, string(r.Status), r.Actor.UserID, r.Actor.Channel, r.ErrorType, len(r.ResultRefs), len(r.ErrorList), dry, r.Orchestrated}
		if got != w {
			t.Errorf("run %d = %+v, want %+v", i, got, w)
		}
	}
	flow := runs[0].OrchestratorFlowRunID
	if flow == "" || runs[1].OrchestratorFlowRunID != flow || runs[0].OrchestratorTaskRunID == runs[1].OrchestratorTaskRunID {
		t.Errorf("flow runs: %q %q / tasks %q %q", flow, runs[1].OrchestratorFlowRunID, runs[0].OrchestratorTaskRunID, runs[1].OrchestratorTaskRunID)
	}
	// The verbose dry run logged each would-be deletion.
	dry := runs[3]
	var msgs []string
	for _, e := range dry.LogEntries {
		msgs = append(msgs, e.Message)
	}
	wantMsgs := []string{"Starting operation: bulk_delete_jobs", "would delete " + dry.ResultRefs[0].DocumentID, "would delete " + dry.ResultRefs[1].DocumentID, "Operation completed: bulk_delete_jobs"}
	if got := strings.Join(msgs, "|"); len(dry.ResultRefs) != 2 || got != strings.Join(wantMsgs, "|") {
		t.Errorf("dry-run log entries: %s", got)
	}
	if dry.Status != taskrun.StatusSuccess {
		t.Errorf("dry run status %s", dry.Status)
	}
}

// TestRefsResolve checks that every result reference of the example's
// TaskRuns names a job stored beside them, on a store that persists.
func TestRefsResolve(t *testing.T) {
	ctx := context.Background()
	uri := "sqlite:" + filepath.Join(t.TempDir(), "refs.db")
	runs, err := run(ctx, uri, "", &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := exporters.OpenStore(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(ctx)
	jobs, err := jobsFor(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range runs {
		for _, ref := range r.ResultRefs {
			n++
			if ref.Collection != "jobs" {
				t.Errorf("run %s: ref %s is not a job", r.ID, ref)
				continue
			}
			if _, err := jobs.Get(ctx, ref.DocumentID); err != nil {
				t.Errorf("run %s (%s): ref %s does not resolve: %v", r.ID, r.OperationName, ref, err)
			}
		}
	}
	if n < 10 {
		t.Errorf("only %d refs checked", n)
	}
	// A second run on the same file adds its own runs and jobs.
	again, err := run(ctx, uri, "", &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 8 {
		t.Errorf("second run printed %d runs, want its own 8", len(again))
	}
}
