package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/otelop/otelop/taskrun"
)

func TestScenario(t *testing.T) {
	var out bytes.Buffer
	runs, err := run(context.Background(), &out)
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
	if got := strings.Join(msgs, "|"); got != "Starting operation: bulk_delete_jobs|would delete job-0001|would delete job-0004|Operation completed: bulk_delete_jobs" {
		t.Errorf("dry-run log entries: %s", got)
	}
	if dry.Status != taskrun.StatusSuccess {
		t.Errorf("dry run status %s", dry.Status)
	}
}
