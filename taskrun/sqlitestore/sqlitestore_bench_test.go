package sqlitestore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/memstore"
	"github.com/otelop/otelop/taskrun/sqlitestore"
)

var benchBase = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

var benchOps = []string{"update_job", "create_jobs_batch", "bulk_delete_jobs", "create_job", "archive_job", "assign_job", "close_job", "reopen_job"}

// benchRun returns a run like an operation produces: 10 tags, 10 result
// refs, 10 metadata keys, 10 log entries, an input of a dozen fields, about
// 3.5 KB of JSON. Its id and started_at grow with i, as UUIDv7 ids do.
func benchRun(i int) taskrun.TaskRun {
	start := benchBase.Add(time.Duration(i) * time.Millisecond)
	fin := start.Add(42 * time.Millisecond)
	op := benchOps[i%len(benchOps)]
	status := taskrun.StatusSuccess
	switch i % 20 {
	case 3, 7, 11:
		status = taskrun.StatusFailed
	case 5:
		status = taskrun.StatusRunning
	}
	r := taskrun.TaskRun{
		ID:             fmt.Sprintf("0197a3c4-%04x-7%03x-8000-%012x", i>>28&0xffff, i>>16&0xfff, i),
		OperationName:  op,
		Category:       "jobs",
		Stage:          "production",
		Tags:           []string{"jobs", "write", "api", "batch", "team-" + fmt.Sprint(i%7), "tenant-acme", "v2", "audited", "billing", "eu-west-1"},
		IdempotencyKey: "",
		Actor:          taskrun.Actor{UserID: fmt.Sprintf("user-%d", i%97), Channel: []string{"api", "cli", "web"}[i%3]},
		Status:         status,
		CreatedAt:      start, UpdatedAt: fin, StartedAt: start,
		TraceID:     fmt.Sprintf("%032x", i*7919),
		SpanID:      fmt.Sprintf("%016x", i*31),
		ServiceName: "jobs-api",
		InputDump: json.RawMessage(fmt.Sprintf(`{"user_id":"user-%d","channel":"api","dry_run":false,"job_ids":["j-%d","j-%d","j-%d"],`+
			`"title":"Night shift %d","priority":3,"labels":["urgent","ops"],"notes":"rotate the on-call rota before the weekend",`+
			`"deadline":"2025-06-02T00:00:00Z","site":"berlin","budget":1250.5}`, i%97, i, i+1, i+2, i)),
		Metadata: map[string]any{
			"dry_run": false, "test_mode": false, "verbose": true, "execution_time": 0.042,
			"tenant": "acme", "region": "eu-west-1", "attempt": float64(1), "queue": "default",
			"host": "api-7f9c", "release": "2025.06.1",
		},
	}
	if i%4 == 0 {
		r.Orchestrated, r.Orchestrator = true, "otelop"
		r.OrchestratorFlowRunID = fmt.Sprintf("flow-%d", i/16)
		r.OrchestratorTaskRunID = fmt.Sprintf("task-%d", i)
	}
	if i%10 == 0 {
		r.IdempotencyKey = fmt.Sprintf("idem-%d", i)
	}
	for k := range 10 {
		r.ResultRefs = append(r.ResultRefs, otelop.Ref{Collection: "jobs", DocumentID: fmt.Sprintf("j-%d", i*10+k)})
		r.LogEntries = append(r.LogEntries, taskrun.LogEntry{
			Time: start.Add(time.Duration(k) * time.Millisecond), Level: "INFO",
			Message:    fmt.Sprintf("processed job j-%d", i*10+k),
			Attributes: map[string]any{"job_id": fmt.Sprintf("j-%d", i*10+k), "step": float64(k)},
		})
	}
	if status.Final() {
		r.FinishedAt, r.DurationMS = &fin, 42.125
	} else {
		r.UpdatedAt, r.ResultRefs = start, nil
	}
	if status == taskrun.StatusFailed {
		r.ErrorMessage, r.ErrorType = "job j-3 is locked", "conflict"
		r.ErrorList = []otelop.ItemError{{Item: "j-3", Error: "locked by bob"}}
	}
	return r
}

// benchRuns returns n runs numbered from first: the template's slices are
// shared, only id, times and started_at differ, so building a batch costs
// little next to writing it.
func benchRuns(tmpl []taskrun.TaskRun, first, n int) []taskrun.TaskRun {
	out := make([]taskrun.TaskRun, n)
	for k := range n {
		i := first + k
		r := tmpl[i%len(tmpl)]
		start := benchBase.Add(time.Duration(i) * time.Millisecond)
		r.ID = fmt.Sprintf("0197a3c4-%04x-7%03x-8000-%012x", i>>28&0xffff, i>>16&0xfff, i)
		r.StartedAt, r.CreatedAt = start, start
		out[k] = r
	}
	return out
}

func benchTemplate() []taskrun.TaskRun {
	tmpl := make([]taskrun.TaskRun, 1000)
	for i := range tmpl {
		tmpl[i] = benchRun(i)
	}
	return tmpl
}

// BenchmarkWrite writes batches of new runs; memstore is the baseline.
func BenchmarkWrite(b *testing.B) {
	tmpl := benchTemplate()
	stores := []struct {
		name string
		open func(b *testing.B) taskrun.Store
	}{
		{"sqlite", func(b *testing.B) taskrun.Store { return openTemp(b) }},
		{"memstore", func(b *testing.B) taskrun.Store { return memstore.New() }},
	}
	for _, s := range stores {
		for _, batch := range []int{1, 64, 256, 1024} {
			b.Run(fmt.Sprintf("store=%s/batch=%d", s.name, batch), func(b *testing.B) {
				st := s.open(b)
				defer st.Close(context.Background())
				measureWrites(b, st, tmpl, batch)
			})
		}
	}
}

// BenchmarkWriteSmall writes batches of 256 runs with few side rows (2 tags,
// 1 ref, 2 log entries), for comparison with the realistic runs of
// BenchmarkWrite: the side tables take a good part of the write time.
func BenchmarkWriteSmall(b *testing.B) {
	tmpl := benchTemplate()
	for i := range tmpl {
		r := &tmpl[i]
		r.Tags = r.Tags[:2:2]
		if len(r.ResultRefs) > 0 {
			r.ResultRefs = r.ResultRefs[:1:1]
		}
		r.LogEntries = r.LogEntries[:2:2]
	}
	for _, name := range []string{"sqlite", "memstore"} {
		b.Run("store="+name, func(b *testing.B) {
			var st taskrun.Store = memstore.New()
			if name == "sqlite" {
				st = openTemp(b)
			}
			defer st.Close(context.Background())
			measureWrites(b, st, tmpl, 256)
		})
	}
}

// BenchmarkWriteLifecycle writes each run twice, as the processor does:
// RUNNING when it starts, then SUCCESS or FAILED (an update that changes
// status, refs and the document), in batches of 256.
func BenchmarkWriteLifecycle(b *testing.B) {
	tmpl := benchTemplate()
	for _, name := range []string{"sqlite", "memstore"} {
		b.Run("store="+name, func(b *testing.B) {
			var st taskrun.Store = memstore.New()
			if name == "sqlite" {
				st = openTemp(b)
			}
			defer st.Close(context.Background())
			ctx := context.Background()
			const batch = 256
			next := 0
			var elapsed time.Duration
			for b.Loop() {
				final := benchRuns(tmpl, next, batch)
				running := make([]taskrun.TaskRun, batch)
				for k, r := range final {
					r.Status, r.FinishedAt, r.ResultRefs, r.DurationMS = taskrun.StatusRunning, nil, nil, 0
					running[k] = r
				}
				next += batch
				start := time.Now()
				if err := st.Write(ctx, running); err != nil {
					b.Fatal(err)
				}
				if err := st.Write(ctx, final); err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(start)
			}
			b.ReportMetric(float64(next)/elapsed.Seconds(), "runs/s")
		})
	}
}

// largeRuns is the number of runs in the file of BenchmarkFind and
// BenchmarkWriteLarge.
const largeRuns = 100_000

var large struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// largeFile returns the path of a file holding largeRuns runs, written once
// per process in batches of 2000, and closed (PRAGMA optimize ran).
func largeFile(b *testing.B) string {
	large.once.Do(func() {
		ctx := context.Background()
		large.dir, large.err = os.MkdirTemp("", "sqlitestore-bench")
		if large.err != nil {
			return
		}
		large.path = filepath.Join(large.dir, "large.db")
		st, err := sqlitestore.Open(ctx, large.path)
		if err != nil {
			large.err = err
			return
		}
		tmpl := benchTemplate()
		start := time.Now()
		for first := 0; first < largeRuns; first += 2000 {
			if err := st.Write(ctx, benchRuns(tmpl, first, 2000)); err != nil {
				large.err = err
				st.Close(ctx)
				return
			}
		}
		large.err = st.Close(ctx)
		fmt.Fprintf(os.Stderr, "largeFile: %d runs written in batches of 2000 in %s\n", largeRuns, time.Since(start).Round(time.Millisecond))
	})
	if large.err != nil {
		b.Fatal(large.err)
	}
	return large.path
}

// BenchmarkFind queries 100,000 stored runs, limit 50: the target is under
// 5ms for operation+status.
func BenchmarkFind(b *testing.B) {
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, largeFile(b))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close(ctx)
	tmpl := benchTemplate()
	const total = largeRuns
	mid := benchRuns(tmpl, total/2, 1)[0]
	queries := []struct {
		name string
		q    taskrun.Query
	}{
		{"operation+status", taskrun.Query{Operation: "update_job", Status: "SUCCESS", Limit: 50}},
		{"operation+status_rare", taskrun.Query{Operation: "create_jobs_batch", Status: "RUNNING", Limit: 50}},
		{"newest", taskrun.Query{Limit: 50}},
		{"user", taskrun.Query{UserID: "user-42", Limit: 50}},
		{"tag", taskrun.Query{Tag: "team-3", Limit: 50}},
		{"ref", taskrun.Query{Ref: &otelop.Ref{Collection: "jobs", DocumentID: "j-5005"}, Limit: 50}},
		{"trace", taskrun.Query{TraceID: mid.TraceID, Limit: 50}},
		{"page_in_the_middle", taskrun.Query{Operation: "update_job", Status: "SUCCESS", Before: mid.ID, Limit: 50}},
	}
	for _, tt := range queries {
		b.Run(tt.name, func(b *testing.B) {
			for range 3 { // warm the page caches of the reader connections
				if _, err := st.Find(ctx, tt.q); err != nil {
					b.Fatal(err)
				}
			}
			runtime.GC()
			n := 0
			for b.Loop() {
				runs, err := st.Find(ctx, tt.q)
				if err != nil {
					b.Fatal(err)
				}
				n = len(runs)
			}
			b.ReportMetric(float64(n), "runs/op")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
		})
	}
}

// BenchmarkWriteLarge writes batches of 256 new runs into the file of
// BenchmarkFind (100,000 runs and more): random keys (trace ids, refs,
// users) then touch pages that no longer fit in the cache.
func BenchmarkWriteLarge(b *testing.B) {
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, largeFile(b))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close(ctx)
	tmpl := benchTemplate()
	next := 10 * largeRuns // ids and times after those of the file
	first := next
	var elapsed time.Duration
	for b.Loop() {
		runs := benchRuns(tmpl, next, 256)
		next += 256
		start := time.Now()
		if err := st.Write(ctx, runs); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(next-first)/elapsed.Seconds(), "runs/s")
}

// measureWrites writes batches of batch runs made from tmpl until the
// benchmark ends, timing only the writes, and reports runs/s.
func measureWrites(b *testing.B, st taskrun.Store, tmpl []taskrun.TaskRun, batch int) {
	ctx := context.Background()
	next := 0
	var elapsed time.Duration
	for b.Loop() {
		runs := benchRuns(tmpl, next, batch)
		next += batch
		start := time.Now()
		if err := st.Write(ctx, runs); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(next)/elapsed.Seconds(), "runs/s")
}
