// Command jobs is the otelop example application: four job operations
// (create_jobs_batch, update_job, bulk_delete_jobs, process_jobs) run by
// a few users and by a nightly flow, after which it prints the TaskRuns the
// calls produced.
//
//	go run ./examples/jobs                                   # SQLite file otelop.db
//	OTELOP_STORE=mongodb://localhost:27017/otelop go run ./examples/jobs
//	go run ./examples/jobs --store memory:
//	go run ./examples/jobs --serve 127.0.0.1:8080            # then keep serving the web UI
//
// The jobs live beside the TaskRuns, in the same store (a jobs table or
// collection), so every result reference resolves to a real record.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/otelop/otelop/exporters"
	"github.com/otelop/otelop/httpapi"
	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/registry"
	"github.com/otelop/otelop/taskrun"
)

func main() {
	store := flag.String("store", "", "TaskRun store URI (default $"+exporters.StoreEnv+" or "+exporters.DefaultStoreURI+")")
	serve := flag.String("serve", "", "after the scenario, serve the web UI and HTTP API for the operations at this address (host:port) until interrupted")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: jobs [--store URI] [--serve ADDR]\n\nRuns the example job operations and prints the TaskRuns they produced.\nWith --serve it then serves the web UI and the HTTP API for them; invoke\nand replay need a token file named by $"+httpapi.TokensEnv+".\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	uri := *store
	if uri == "" {
		uri = exporters.StoreURIFromEnv()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := run(ctx, uri, *serve, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "jobs:", err)
		os.Exit(1)
	}
}

// run executes the scenario and prints, then returns, the TaskRuns. With a
// serve address it then serves the web UI and HTTP API for the operations
// until ctx ends.
func run(ctx context.Context, storeURI, serveAddr string, w io.Writer) ([]taskrun.TaskRun, error) {
	began := time.Now().Add(-time.Millisecond)
	store, err := exporters.OpenStore(ctx, storeURI)
	if err != nil {
		return nil, err
	}
	defer store.Close(context.Background())
	jobs, err := jobsFor(ctx, store)
	if err != nil {
		return nil, err
	}
	if os.Getenv("OTEL_TRACES_EXPORTER") == "" && os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		// No trace backend configured: keep the TaskRuns, skip the export
		// (and its connection errors) rather than send to localhost:4317.
		os.Setenv("OTEL_TRACES_EXPORTER", "none")
	}
	proc := taskrun.NewProcessor(store)
	_, shutdown, err := exporters.Setup(ctx,
		exporters.WithTaskRunProcessor(proc),
		exporters.WithServiceName("otelop-jobs-example"))
	if err != nil {
		return nil, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			fmt.Fprintln(os.Stderr, "jobs: shutdown:", err)
		}
	}()

	reg := registry.New()
	ops, err := DefineOperations(jobs, otelop.WithRegistry(reg))
	if err != nil {
		return nil, err
	}
	if err := scenario(ctx, ops, w); err != nil {
		return nil, err
	}
	if err := proc.ForceFlush(ctx); err != nil {
		return nil, fmt.Errorf("flushing TaskRuns: %w", err)
	}
	runs, err := store.Find(ctx, taskrun.Query{Since: began})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "\nTaskRuns of this run in %s (%d, newest first):\n\n", storeURI, len(runs))
	printRuns(w, runs)
	st := proc.Stats()
	fmt.Fprintf(w, "\nprocessor: %d states enqueued, %d written, %d dropped\n", st.Enqueued, st.Written, st.Dropped)
	if !strings.HasPrefix(storeURI, "memory") {
		fmt.Fprintf(w, "query them: go run ./cmd/otelop runs list --store %s\n", storeURI)
	}
	if serveAddr != "" {
		return runs, serve(ctx, serveAddr, reg, store, w)
	}
	return runs, nil
}

// serve serves the web UI and the HTTP API for the operations in reg until
// ctx ends; requests are traced by otelhttp, so an invoked operation's span
// is a child of its HTTP request's.
func serve(ctx context.Context, addr string, reg *registry.Registry, store taskrun.Reader, w io.Writer) error {
	h, err := httpapi.New(reg, store, httpapi.WithTokensFromEnv(),
		httpapi.WithLogger(slog.New(slog.NewTextHandler(w, nil))))
	if err != nil {
		return err
	}
	return httpapi.ListenAndServe(ctx, addr, h, otelhttp.NewHandler(h, "otelop-api"))
}

// scenario calls the operations as a few users and a nightly flow would,
// printing one line per call.
func scenario(ctx context.Context, ops *Operations, w io.Writer) error {
	say := func(who string, err error, format string, args ...any) {
		if err != nil {
			fmt.Fprintf(w, "%-8s %s -> error: %v\n", who, fmt.Sprintf(format, args...), err)
			return
		}
		fmt.Fprintf(w, "%-8s %s\n", who, fmt.Sprintf(format, args...))
	}

	alice := otelop.Request{UserID: "alice", Channel: "web"}
	created, err := ops.CreateJobsBatch.Call(ctx, CreateJobsBatchInput{Request: alice, Jobs: []NewJobSpec{
		{Title: "resize images", Priority: 3},
		{Title: "send invoices", Priority: 7},
		{Title: "rebuild search index", Priority: 10},
		{Title: "archive logs"},
	}})
	say("alice", err, "create_jobs_batch: created %v", created.JobIDs)
	if err != nil {
		return err
	}

	bob := otelop.Request{UserID: "bob"}
	title := "send overdue invoices"
	upd, err := ops.UpdateJob.Call(ctx, UpdateJobInput{Request: bob, JobID: created.JobIDs[1], Title: &title})
	say("bob", err, "update_job %s: changed %v", upd.JobID, upd.Changed)

	_, err = ops.UpdateJob.Call(ctx, UpdateJobInput{Request: bob, JobID: "job-9999", Status: "done"})
	say("bob", err, "update_job job-9999")

	_, err = ops.CreateJobsBatch.Call(ctx, CreateJobsBatchInput{Request: alice, Jobs: []NewJobSpec{{Title: ""}, {Title: "ok", Priority: 42}}})
	if err != nil && !errors.Is(err, otelop.ErrInvalidInput) {
		return err
	}
	say("alice", err, "create_jobs_batch with a blank title")

	carol := otelop.Request{UserID: "carol", Channel: "cli", DryRun: true, Verbose: true}
	dry, err := ops.BulkDeleteJobs.Call(ctx, BulkDeleteJobsInput{Request: carol, JobIDs: []string{created.JobIDs[0], created.JobIDs[3]}})
	say("carol", err, "bulk_delete_jobs (dry run): would delete %v", dry.Deleted)

	carol.DryRun = false
	del, err := ops.BulkDeleteJobs.Call(ctx, BulkDeleteJobsInput{Request: carol, JobIDs: []string{created.JobIDs[3], "job-0404"}})
	say("carol", err, "bulk_delete_jobs: deleted %v, %d item errors", del.Deleted, len(del.Errors))

	scheduler := otelop.Request{UserID: "scheduler", Channel: "cron"}
	err = otelop.Flow(ctx, "nightly_processing", func(ctx context.Context) error {
		if err := otelop.Task(ctx, "ingest", func(ctx context.Context) error {
			_, err := ops.CreateJobsBatch.Call(ctx, CreateJobsBatchInput{Request: scheduler, Jobs: []NewJobSpec{{Title: "nightly report", Priority: 5}}})
			return err
		}); err != nil {
			return err
		}
		return otelop.Task(ctx, "process", func(ctx context.Context) error {
			out, err := ops.ProcessJobs.Call(ctx, ProcessJobsInput{Request: scheduler, Limit: 10})
			say("flow", err, "process_jobs: processed %v, failed %v", out.Processed, out.Failed)
			return err
		})
	})
	if err != nil {
		return err
	}
	return nil
}

// printRuns writes an aligned table of runs.
func printRuns(w io.Writer, runs []taskrun.TaskRun) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OPERATION\tSTATUS\tACTOR\tFLAGS\tDURATION\tFLOW\tREFS\tERROR")
	for _, r := range runs {
		var flags []string
		for _, f := range []string{"dry_run", "test_mode", "verbose"} {
			if v, _ := r.Metadata[f].(bool); v {
				flags = append(flags, f)
			}
		}
		refs := make([]string, len(r.ResultRefs))
		for i, ref := range r.ResultRefs {
			refs[i] = ref.String()
		}
		flow := "-"
		if r.Orchestrated {
			flow = r.Orchestrator
		}
		errText := r.ErrorMessage
		if r.ErrorType != "" {
			errText = r.ErrorType + ": " + errText
		}
		if len(r.ErrorList) > 0 {
			errText = strings.TrimSpace(fmt.Sprintf("%s %d item error(s)", errText, len(r.ErrorList)))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%s\t%s\t%s\t%s\t%s\n",
			r.OperationName, r.Status, orDash(r.Actor.UserID), r.Actor.Channel, orDash(strings.Join(flags, ",")),
			time.Duration(r.DurationMS*float64(time.Millisecond)).Round(time.Microsecond),
			flow, orDash(truncate(strings.Join(refs, " "), 60)), orDash(truncate(errText, 70)))
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
