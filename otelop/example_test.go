package otelop_test

import (
	"context"
	"errors"
	"fmt"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/registry"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/memstore"
)

type ArchiveInput struct {
	otelop.Request
	JobID string `json:"job_id" validate:"required"`
}

type ArchiveOutput struct {
	otelop.Receipt
	ArchiveID string `json:"archive_id" otelop:"ref=archives"`
}

func archiveJob(_ context.Context, in ArchiveInput) (ArchiveOutput, error) {
	return ArchiveOutput{ArchiveID: "arc-" + in.JobID}, nil
}

// Define an operation once; every call is then a span and a TaskRun.
func ExampleDefine() {
	ctx := context.Background()

	// Production code installs this once (exporters.Setup does it from the
	// OTEL_* environment); here the TaskRuns go to an in-memory store.
	store := memstore.New()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(taskrun.NewProcessor(store)))
	defer func() { _ = tp.Shutdown(ctx) }()

	archive := otelop.Define(otelop.Spec{
		Name:        "archive_job",
		Description: "Move a finished job to the archive",
		Category:    "jobs",
		Observed:    true,
	}, archiveJob, otelop.WithTracerProvider(tp), otelop.WithRegistry(registry.New()))

	out, err := archive.Call(ctx, ArchiveInput{Request: otelop.Request{UserID: "alice"}, JobID: "job-7"})
	if err != nil {
		panic(err)
	}
	_, err = archive.Call(ctx, ArchiveInput{Request: otelop.Request{UserID: "bob"}})
	fmt.Println(errors.Is(err, otelop.ErrInvalidInput), err)

	_ = tp.ForceFlush(ctx)
	run, _ := store.Get(ctx, out.TaskRunID)
	fmt.Println(run.OperationName, run.Status, run.Actor.UserID, run.Actor.Channel, run.ResultRefs)
	failed, _ := store.Find(ctx, taskrun.Query{Status: "FAILED"})
	fmt.Println(len(failed), failed[0].Actor.UserID, failed[0].ErrorType)
	// Output:
	// true otelop: invalid input for archive_job: job_id is required
	// archive_job SUCCESS alice api [archives/arc-job-7]
	// 1 bob invalid_input
}
