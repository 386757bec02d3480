package taskruntest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/taskruntest"
)

type RenameInput struct {
	otelop.Request
	JobID string `json:"job_id"`
	Title string `json:"title"`
}

type RenameOutput struct {
	otelop.Receipt
	JobID string `json:"job_id" otelop:"ref=jobs"`
}

func rename(_ context.Context, in RenameInput) (RenameOutput, error) {
	return RenameOutput{JobID: in.JobID}, nil
}

// checkRename is what a test of yours looks like: t is the test's
// *testing.T.
func checkRename(t testing.TB) {
	h := taskruntest.New(t)
	op := otelop.Define(otelop.Spec{Name: "rename_job", Description: "Rename a job", Category: "jobs", Observed: true},
		rename, h.Options()...)

	out, err := op.Call(context.Background(), RenameInput{Request: otelop.Request{UserID: "alice"}, JobID: "job-1", Title: "new"})
	if err != nil {
		t.Fatal(err)
	}

	run := h.Run(out.TaskRunID)
	if run.Status != taskrun.StatusSuccess || run.Actor.UserID != "alice" {
		t.Errorf("run = %s by %s", run.Status, run.Actor.UserID)
	}
	span := h.Spans()[0]
	fmt.Println(span.Name, run.Status, run.Actor.UserID, run.ResultRefs, run.TraceID == span.SpanContext.TraceID().String())
}

// A test asserts an operation's span and its TaskRun in a few lines.
func ExampleNew() {
	t := &exampleT{}
	defer t.finish()
	checkRename(t) // in a real test: checkRename's body, with the test's t
	// Output:
	// rename_job SUCCESS alice [jobs/job-1] true
}

// exampleT stands in for the *testing.T that a real test receives.
type exampleT struct {
	testing.TB
	cleanups []func()
}

func (e *exampleT) Helper()                        {}
func (e *exampleT) Cleanup(f func())               { e.cleanups = append(e.cleanups, f) }
func (e *exampleT) Errorf(format string, a ...any) { fmt.Printf("error: "+format+"\n", a...) }
func (e *exampleT) Fatal(a ...any)                 { panic(fmt.Sprint(a...)) }
func (e *exampleT) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
func (e *exampleT) finish() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
}
