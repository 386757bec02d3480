package sqlitestore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/memstore"
	"github.com/otelop/otelop/taskrun/sqlitestore"
	"github.com/otelop/otelop/taskrun/taskruntest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if large.dir != "" {
			os.RemoveAll(large.dir)
		}
		os.Exit(code)
	}))
}

// openTemp opens a store in a fresh file under t.TempDir(); the caller
// closes it.
func openTemp(t testing.TB, opts ...sqlitestore.Option) *sqlitestore.Store {
	t.Helper()
	st, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "runs.db"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// openAt opens the store at path and closes it when t ends.
func openAt(t *testing.T, path string, opts ...sqlitestore.Option) *sqlitestore.Store {
	t.Helper()
	st, err := sqlitestore.Open(t.Context(), path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st
}

func TestStoreSuite(t *testing.T) {
	taskruntest.RunStoreSuite(t, func(t *testing.T) taskrun.Store { return openTemp(t) })
}

var base = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// run returns a run started i seconds after base.
func run(id string, i int, status taskrun.Status, tags []string, refs ...string) taskrun.TaskRun {
	start := base.Add(time.Duration(i) * time.Second)
	r := taskrun.TaskRun{
		ID: id, OperationName: "update_job", Category: "jobs", Status: status, Tags: tags,
		Actor:     taskrun.Actor{UserID: "alice", Channel: "api"},
		StartedAt: start, CreatedAt: start, UpdatedAt: start,
		TraceID: "trace-" + id, SpanID: "span-" + id,
		Metadata: map[string]any{"dry_run": false},
	}
	for _, s := range refs {
		ref, err := otelop.ParseRef(s)
		if err != nil {
			panic(err)
		}
		r.ResultRefs = append(r.ResultRefs, ref)
	}
	if status.Final() {
		f := start.Add(time.Second)
		r.FinishedAt, r.UpdatedAt, r.DurationMS = &f, f, 1000
	}
	return r
}

func write(t *testing.T, st taskrun.Store, runs ...taskrun.TaskRun) {
	t.Helper()
	if err := st.Write(t.Context(), runs); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func ids(t *testing.T, st taskrun.Store, q taskrun.Query) []string {
	t.Helper()
	runs, err := st.Find(t.Context(), q)
	if err != nil {
		t.Fatalf("Find(%+v): %v", q, err)
	}
	out := make([]string, len(runs))
	for i := range runs {
		out[i] = runs[i].ID
	}
	return out
}

func expectIDs(t *testing.T, st taskrun.Store, q taskrun.Query, want ...string) {
	t.Helper()
	if got := ids(t, st, q); !slices.Equal(got, want) {
		t.Errorf("Find(%+v) = %q, want %q", q, got, want)
	}
}

func ref(s string) *otelop.Ref {
	r, err := otelop.ParseRef(s)
	if err != nil {
		panic(err)
	}
	return &r
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs.db")
	st, err := sqlitestore.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	a := run("a", 1, taskrun.StatusSuccess, []string{"jobs", "bulk"}, "jobs/j1", "jobs/j2")
	b := run("b", 2, taskrun.StatusRunning, []string{"jobs"})
	write(t, st, a, b)
	if err := st.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}

	st = openAt(t, path)
	got, err := st.Get(t.Context(), "a")
	if err != nil {
		t.Fatalf("Get after reopening: %v", err)
	}
	if got.ID != "a" || got.Status != taskrun.StatusSuccess || !slices.Equal(got.Tags, a.Tags) || len(got.ResultRefs) != 2 || !got.StartedAt.Equal(a.StartedAt) {
		t.Errorf("Get after reopening = %+v, want %+v", got, a)
	}
	expectIDs(t, st, taskrun.Query{}, "b", "a")
	expectIDs(t, st, taskrun.Query{Tag: "bulk"}, "a")
	expectIDs(t, st, taskrun.Query{Ref: ref("jobs/j2")}, "a")

	// The reopened store writes, and its final state rule still holds.
	write(t, st, run("a", 1, taskrun.StatusRunning, nil), run("b", 2, taskrun.StatusFailed, []string{"jobs"}))
	expectIDs(t, st, taskrun.Query{Status: "RUNNING"})
	expectIDs(t, st, taskrun.Query{Status: "FAILED"}, "b")
	expectIDs(t, st, taskrun.Query{Tag: "bulk"}, "a")
}

func TestEmptyIDWritesNothing(t *testing.T) {
	st := openAt(t, filepath.Join(t.TempDir(), "runs.db"))
	err := st.Write(t.Context(), []taskrun.TaskRun{
		run("a", 1, taskrun.StatusSuccess, nil),
		{OperationName: "nameless"},
		run("b", 2, taskrun.StatusSuccess, nil),
	})
	if err == nil || !strings.Contains(err.Error(), "empty id") || !strings.Contains(err.Error(), "nameless") {
		t.Errorf("Write with an empty id: err = %v, want one naming the empty id of run 1 (nameless)", err)
	}
	expectIDs(t, st, taskrun.Query{})
}

// TestSideTables checks that the tag and ref indexes follow every change of
// a run: new tags and refs, removed ones, a moved started_at, a kept final
// state, duplicates, and a delete through DB.
func TestSideTables(t *testing.T) {
	st := openAt(t, filepath.Join(t.TempDir(), "runs.db"))
	sideRows := func() (tags, refs int) {
		t.Helper()
		db := st.DB()
		if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM taskrun_tags`).Scan(&tags); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM taskrun_refs`).Scan(&refs); err != nil {
			t.Fatal(err)
		}
		return tags, refs
	}

	// Duplicates in one run are one row each.
	write(t, st, run("r1", 1, taskrun.StatusRunning, []string{"a", "b", "a"}, "jobs/j1", "jobs/j1"))
	if tags, refs := sideRows(); tags != 2 || refs != 1 {
		t.Errorf("side rows = %d tags, %d refs; want 2, 1", tags, refs)
	}
	// Final write: tag b dropped, c added, refs changed.
	write(t, st, run("r1", 1, taskrun.StatusSuccess, []string{"a", "c"}, "jobs/j2", "users/u1"))
	expectIDs(t, st, taskrun.Query{Tag: "a"}, "r1")
	expectIDs(t, st, taskrun.Query{Tag: "b"})
	expectIDs(t, st, taskrun.Query{Tag: "c"}, "r1")
	expectIDs(t, st, taskrun.Query{Ref: ref("jobs/j1")})
	expectIDs(t, st, taskrun.Query{Ref: ref("jobs/j2")}, "r1")
	expectIDs(t, st, taskrun.Query{Ref: ref("users/u1")}, "r1")
	// A later RUNNING write is ignored, side tables included.
	write(t, st, run("r1", 1, taskrun.StatusRunning, []string{"x"}, "jobs/x"))
	expectIDs(t, st, taskrun.Query{Tag: "x"})
	expectIDs(t, st, taskrun.Query{Ref: ref("jobs/x")})
	expectIDs(t, st, taskrun.Query{Tag: "c"}, "r1")
	// started_at moves: the side rows move with it, for ordering and ranges.
	write(t, st, run("r2", 5, taskrun.StatusSuccess, []string{"a"}, "jobs/j2"))
	expectIDs(t, st, taskrun.Query{Tag: "a"}, "r2", "r1")
	write(t, st, run("r1", 9, taskrun.StatusFailed, []string{"a", "c"}, "jobs/j2", "users/u1"))
	expectIDs(t, st, taskrun.Query{Tag: "a"}, "r1", "r2")
	expectIDs(t, st, taskrun.Query{Ref: ref("jobs/j2")}, "r1", "r2")
	expectIDs(t, st, taskrun.Query{Tag: "a", Until: base.Add(6 * time.Second)}, "r2")
	expectIDs(t, st, taskrun.Query{Ref: ref("jobs/j2"), Since: base.Add(6 * time.Second)}, "r1")
	if tags, refs := sideRows(); tags != 3 || refs != 3 {
		t.Errorf("side rows = %d tags, %d refs; want 3, 3", tags, refs)
	}
	// One batch holding a run twice ends with the last final state.
	write(t, st,
		run("r3", 3, taskrun.StatusRunning, []string{"p"}),
		run("r3", 3, taskrun.StatusSuccess, []string{"q"}, "jobs/q"),
		run("r3", 3, taskrun.StatusRunning, []string{"r"}, "jobs/r"))
	expectIDs(t, st, taskrun.Query{Tag: "p"})
	expectIDs(t, st, taskrun.Query{Tag: "q"}, "r3")
	expectIDs(t, st, taskrun.Query{Tag: "r"})
	expectIDs(t, st, taskrun.Query{Ref: ref("jobs/q")}, "r3")
	// An application that deletes runs (retention) leaves no side rows.
	if _, err := st.DB().ExecContext(t.Context(), `DELETE FROM taskruns`); err != nil {
		t.Fatal(err)
	}
	if tags, refs := sideRows(); tags != 0 || refs != 0 {
		t.Errorf("side rows after deleting every run = %d tags, %d refs; want 0, 0", tags, refs)
	}
}

// TestLargeBatchesMatchMemstore writes batches of every size around those
// of the bulk statements, mixing new runs, stored ones rewritten (other
// keys, tags, refs, status, started_at) and ids repeated in a batch, and
// checks that the store ends like memstore, the reference of the upsert
// rules, run by run and for every query of the indexes.
func TestLargeBatchesMatchMemstore(t *testing.T) {
	st := openAt(t, filepath.Join(t.TempDir(), "runs.db"))
	ref := memstore.New()
	rng := rand.New(rand.NewPCG(1, 2))
	statuses := []taskrun.Status{taskrun.StatusPending, taskrun.StatusRunning, taskrun.StatusSuccess, taskrun.StatusFailed}
	pick := func(prefix string, n, most int) []string {
		var out []string
		for range rng.IntN(most + 1) {
			out = append(out, fmt.Sprint(prefix, rng.IntN(n)))
		}
		return out
	}
	for _, size := range []int{300, 129, 1, 7, 8, 256, 64, 513, 2} {
		batch := make([]taskrun.TaskRun, size)
		for i := range batch {
			id := fmt.Sprint("run-", rng.IntN(600))
			r := run(id, rng.IntN(4), statuses[rng.IntN(len(statuses))], pick("t", 6, 4), pick("jobs/j", 5, 3)...)
			r.OperationName = fmt.Sprint("op_", rng.IntN(2))
			r.Actor.UserID = fmt.Sprint("user-", rng.IntN(3))
			batch[i] = r
		}
		write(t, st, batch...)
		write(t, ref, batch...)
	}

	queries := []taskrun.Query{{}, {Operation: "op_1"}, {UserID: "user-2"}, {Operation: "op_0", Status: "RUNNING"}}
	for _, status := range statuses {
		queries = append(queries, taskrun.Query{Status: string(status)})
	}
	for i := range 6 {
		queries = append(queries, taskrun.Query{Tag: fmt.Sprint("t", i)})
	}
	for i := range 5 {
		queries = append(queries, taskrun.Query{Ref: &otelop.Ref{Collection: "jobs", DocumentID: fmt.Sprint("j", i)}})
	}
	for _, q := range queries {
		q.Limit = taskrun.MaxLimit
		want := ids(t, ref, q)
		if got := ids(t, st, q); !slices.Equal(got, want) {
			t.Errorf("Find(%+v) = %d runs %q, want %d runs %q", q, len(got), got, len(want), want)
		}
	}
	all, err := ref.Find(t.Context(), taskrun.Query{Limit: taskrun.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range all {
		got, err := st.Get(t.Context(), want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
			t.Errorf("Get(%q) =\n%s\nwant\n%s", want.ID, g, w)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestOddIDs writes runs whose ids JSON cannot carry as they are (invalid
// UTF-8, a NUL byte) twice: Write must find the stored run, update it and
// keep its side rows right.
func TestOddIDs(t *testing.T) {
	st := openAt(t, filepath.Join(t.TempDir(), "runs.db"))
	odd := []string{"run-\xff", "run-\x00-nul", "run-\u2028"}
	for _, id := range odd {
		write(t, st, run(id, 1, taskrun.StatusRunning, []string{"a"}))
	}
	var final []taskrun.TaskRun
	for _, id := range odd {
		final = append(final, run(id, 1, taskrun.StatusSuccess, []string{"b"}, "jobs/j1"))
	}
	write(t, st, final...)
	for _, id := range odd {
		got, err := st.Get(t.Context(), id)
		if err != nil || got.Status != taskrun.StatusSuccess {
			t.Errorf("Get(%q) = %v, %v; want the SUCCESS run", id, got.Status, err)
		}
	}
	if n := len(ids(t, st, taskrun.Query{})); n != len(odd) {
		t.Errorf("%d runs stored, want %d", n, len(odd))
	}
	expectIDs(t, st, taskrun.Query{Tag: "a"})
	if n := len(ids(t, st, taskrun.Query{Tag: "b"})); n != len(odd) {
		t.Errorf("%d runs with tag b, want %d", n, len(odd))
	}
}

// TestMilliseconds checks that times are kept to the millisecond and that
// Since and Until between two milliseconds compare like the instants do.
func TestMilliseconds(t *testing.T) {
	st := openAt(t, filepath.Join(t.TempDir(), "runs.db"))
	r := run("r", 0, taskrun.StatusSuccess, nil)
	r.StartedAt = base.Add(time.Millisecond + 700*time.Microsecond) // stored as base+1ms
	r.LogEntries = []taskrun.LogEntry{{Time: base.Add(1500 * time.Microsecond), Level: "INFO", Message: "m"}}
	write(t, st, r)
	if r.StartedAt != base.Add(time.Millisecond+700*time.Microsecond) || r.LogEntries[0].Time != base.Add(1500*time.Microsecond) {
		t.Error("Write changed the caller's run")
	}
	got, err := st.Get(t.Context(), "r")
	if err != nil {
		t.Fatal(err)
	}
	if want := base.Add(time.Millisecond); !got.StartedAt.Equal(want) || !got.LogEntries[0].Time.Equal(want) {
		t.Errorf("started_at = %v, log time = %v; want both %v (UTC, truncated to the millisecond)", got.StartedAt, got.LogEntries[0].Time, want)
	}
	us := time.Microsecond
	for _, tt := range []struct {
		since, until time.Duration
		match        bool
	}{
		{since: 500 * us, match: true},
		{since: 1000 * us, match: true},
		{since: 1001 * us, match: false},
		{until: 1001 * us, match: true},
		{until: 1000 * us, match: false},
		{since: 999 * us, until: 1001 * us, match: true},
	} {
		q := taskrun.Query{}
		if tt.since != 0 {
			q.Since = base.Add(tt.since)
		}
		if tt.until != 0 {
			q.Until = base.Add(tt.until)
		}
		var want []string
		if tt.match {
			want = []string{"r"}
		}
		expectIDs(t, st, q, want...)
	}
}

// TestConcurrentReadersWhileWriting runs readers, an application writing
// its own table through DB, and the store's writer at once: no call may
// fail (SQLITE_BUSY included) and every page a reader sees is in order.
func TestConcurrentReadersWhileWriting(t *testing.T) {
	st := openAt(t, filepath.Join(t.TempDir(), "runs.db"), sqlitestore.WithMaxReaders(3))
	ctx := t.Context()
	if _, err := st.DB().ExecContext(ctx, `CREATE TABLE jobs (id INTEGER PRIMARY KEY, title TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	const batches, perBatch = 60, 16
	var (
		wg      sync.WaitGroup
		writing = make(chan struct{})
		errs    = make(chan error, 100)
	)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	wg.Go(func() { // the processor: RUNNING, then final
		defer close(writing)
		for b := range batches {
			running := make([]taskrun.TaskRun, perBatch)
			final := make([]taskrun.TaskRun, perBatch)
			for i := range perBatch {
				n := b*perBatch + i
				id := fmt.Sprintf("run-%05d", n)
				tags := []string{"jobs", fmt.Sprintf("batch-%d", b%4)}
				running[i] = run(id, n, taskrun.StatusRunning, tags)
				final[i] = run(id, n, taskrun.StatusSuccess, tags, fmt.Sprintf("jobs/j%d", n))
			}
			if err := st.Write(ctx, running); err != nil {
				report(fmt.Errorf("write RUNNING: %w", err))
				return
			}
			if err := st.Write(ctx, final); err != nil {
				report(fmt.Errorf("write final: %w", err))
				return
			}
		}
	})
	wg.Go(func() { // the application
		for i := 0; ; i++ {
			select {
			case <-writing:
				return
			default:
			}
			if _, err := st.DB().ExecContext(ctx, `INSERT INTO jobs (title) VALUES (?)`, fmt.Sprint("job ", i)); err != nil {
				report(fmt.Errorf("application insert: %w", err))
				return
			}
			tx, err := st.DB().BeginTx(ctx, nil)
			if err != nil {
				report(fmt.Errorf("application begin: %w", err))
				return
			}
			_, err = tx.ExecContext(ctx, `UPDATE jobs SET title = title || '!' WHERE id = (SELECT max(id) FROM jobs)`)
			if err == nil {
				err = tx.Commit()
			} else {
				_ = tx.Rollback()
			}
			if err != nil {
				report(fmt.Errorf("application transaction: %w", err))
				return
			}
		}
	})
	for r := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-writing:
					return
				default:
				}
				q := []taskrun.Query{{Limit: 20}, {Tag: "batch-1", Limit: 10}, {Status: "SUCCESS", Limit: 5}, {Ref: ref("jobs/j3")}}[r]
				runs, err := st.Find(ctx, q)
				if err != nil {
					report(fmt.Errorf("reader %d: Find: %w", r, err))
					return
				}
				for i := 1; i < len(runs); i++ {
					if !taskrun.Newer(&runs[i-1], &runs[i]) {
						report(fmt.Errorf("reader %d: %s before %s", r, runs[i-1].ID, runs[i].ID))
					}
				}
				if len(runs) > 0 {
					if _, err := st.Get(ctx, runs[0].ID); err != nil {
						report(fmt.Errorf("reader %d: Get: %w", r, err))
						return
					}
					if len(runs) == q.Limit {
						if _, err := st.Find(ctx, taskrun.Query{Before: runs[len(runs)-1].ID, Limit: 5}); err != nil {
							report(fmt.Errorf("reader %d: next page: %w", r, err))
							return
						}
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	runs, err := st.Find(ctx, taskrun.Query{Limit: taskrun.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != batches*perBatch {
		t.Errorf("%d runs stored, want %d", len(runs), batches*perBatch)
	}
	expectIDs(t, st, taskrun.Query{Status: "RUNNING"})
}

// TestQueryPlans checks that every kind of Find walks an index in order
// (no table scan, no sort), on a fresh file and after ANALYZE.
func TestQueryPlans(t *testing.T) {
	st := openAt(t, filepath.Join(t.TempDir(), "runs.db"))
	var runs []taskrun.TaskRun
	for i := range 2000 {
		status := []taskrun.Status{taskrun.StatusSuccess, taskrun.StatusSuccess, taskrun.StatusFailed, taskrun.StatusRunning}[i%4]
		r := run(fmt.Sprintf("run-%05d", i), i, status, []string{"jobs", fmt.Sprint("t", i%10)}, fmt.Sprintf("jobs/j%d", i%100))
		r.OperationName = fmt.Sprint("op_", i%8)
		r.Actor.UserID = fmt.Sprint("user-", i%50)
		r.Actor.Channel = []string{"api", "cli", "web"}[i%3]
		r.TraceID = fmt.Sprint("trace-", i/3)
		if i%5 == 0 {
			r.Orchestrated, r.OrchestratorFlowRunID = true, fmt.Sprint("flow-", i/20)
		}
		if i%7 == 0 {
			r.IdempotencyKey = fmt.Sprint("key-", i)
		}
		runs = append(runs, r)
	}
	write(t, st, runs...)

	yes := true
	since := base.Add(100 * time.Second)
	tests := []struct {
		name string
		q    taskrun.Query
		want []string // each must appear in the plan, in order
	}{
		{"newest first", taskrun.Query{}, []string{"SCAN r USING INDEX taskruns_started"}},
		{"newest first, next page", taskrun.Query{Before: "run-01000"}, []string{"USING INDEX taskruns_started ((started_at,id)<(?,?))"}},
		{"operation+status", taskrun.Query{Operation: "op_1", Status: "FAILED"}, []string{"SEARCH r USING INDEX taskruns_operation_status (operation_name=? AND status=?)"}},
		{"operation+status, page, since", taskrun.Query{Operation: "op_1", Status: "FAILED", Before: "run-01001", Since: since},
			[]string{"SEARCH r USING INDEX taskruns_operation_status (operation_name=? AND status=? AND started_at>? AND (started_at,id)<(?,?))"}},
		{"operation", taskrun.Query{Operation: "op_1"}, []string{"SEARCH r USING INDEX taskruns_operation (operation_name=?)"}},
		{"status", taskrun.Query{Status: "RUNNING"}, []string{"SEARCH r USING INDEX taskruns_status (status=?)"}},
		{"user", taskrun.Query{UserID: "user-7"}, []string{"SEARCH r USING INDEX taskruns_user (user_id=?)"}},
		{"user, since", taskrun.Query{UserID: "user-7", Since: since}, []string{"SEARCH r USING INDEX taskruns_user (user_id=? AND started_at>?)"}},
		{"channel", taskrun.Query{Channel: "web"}, []string{"USING INDEX taskruns_channel (channel=?)"}},
		{"flow run", taskrun.Query{FlowRunID: "flow-3"}, []string{"SEARCH r USING INDEX taskruns_flow_run (flow_run_id=?)"}},
		{"trace", taskrun.Query{TraceID: "trace-9"}, []string{"SEARCH r USING INDEX taskruns_trace (trace_id=?)"}},
		{"idempotency key", taskrun.Query{IdempotencyKey: "key-14"}, []string{"SEARCH r USING INDEX taskruns_idempotency_key (idempotency_key=?)"}},
		{"orchestrated", taskrun.Query{Orchestrated: &yes}, []string{"USING INDEX taskruns_orchestrated (orchestrated=?)"}},
		{"tag", taskrun.Query{Tag: "t3"}, []string{"SEARCH g USING PRIMARY KEY (tag=?)", "SEARCH r USING INDEX sqlite_autoindex_taskruns_1 (id=?)"}},
		{"tag, page", taskrun.Query{Tag: "t3", Before: "run-01003"}, []string{"SEARCH g USING PRIMARY KEY (tag=? AND (started_at,run_id)<(?,?))", "(id=?)"}},
		{"tag+user", taskrun.Query{Tag: "t3", UserID: "user-3"}, []string{"SEARCH g USING PRIMARY KEY (tag=?)", "(id=?)"}},
		{"ref", taskrun.Query{Ref: ref("jobs/j5")}, []string{"SEARCH d USING PRIMARY KEY (document_id=? AND collection=?)", "SEARCH r USING INDEX sqlite_autoindex_taskruns_1 (id=?)"}},
		{"ref+tag", taskrun.Query{Ref: ref("jobs/j5"), Tag: "t5"}, []string{"SEARCH d USING PRIMARY KEY (document_id=? AND collection=?)", "(id=?)", "SEARCH g"}},
	}
	check := func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				plan, err := sqlitestore.ExplainFind(t.Context(), st, tt.q)
				if err != nil {
					t.Fatal(err)
				}
				text := strings.Join(plan, "\n")
				rest := text
				for _, w := range tt.want {
					i := strings.Index(rest, w)
					if i < 0 {
						t.Errorf("plan lacks %q (in order):\n%s", w, text)
						break
					}
					rest = rest[i+len(w):]
				}
				for _, line := range plan {
					line = strings.TrimSpace(line)
					switch {
					case strings.Contains(line, "TEMP B-TREE"):
						t.Errorf("plan sorts: %q\n%s", line, text)
					case strings.HasPrefix(line, "SCAN") && !strings.Contains(line, "USING INDEX") && !strings.Contains(line, "USING COVERING INDEX"):
						t.Errorf("plan scans a table: %q\n%s", line, text)
					}
				}
			})
		}
	}
	t.Run("fresh", check)
	if _, err := st.DB().ExecContext(t.Context(), `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	t.Run("analyzed", check)
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notDB, bytes.Repeat([]byte("this is not an SQLite database\n"), 200), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		opts []sqlitestore.Option
		want []string // in the error
		is   error
	}{
		{"empty path", "", nil, []string{"need the path of a file"}, nil},
		{"memory", ":memory:", nil, []string{"memstore"}, nil},
		{"directory", dir, nil, []string{dir, "is a directory"}, nil},
		{"missing directory", filepath.Join(dir, "no", "such", "runs.db"), nil, []string{"does not exist"}, fs.ErrNotExist},
		{"not a database", notDB, nil, []string{notDB, "not a database"}, nil},
		{"read-only, missing", filepath.Join(dir, "missing.db"), []sqlitestore.Option{sqlitestore.WithReadOnly()}, []string{"no such file"}, fs.ErrNotExist},
		{"read-only, not a database", notDB, []sqlitestore.Option{sqlitestore.WithReadOnly()}, []string{"not a database"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := sqlitestore.Open(t.Context(), tt.path, tt.opts...)
			if err == nil {
				st.Close(context.Background())
				t.Fatalf("Open(%q) succeeded, want an error", tt.path)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Open(%q) = %v, want an error containing %q", tt.path, err, w)
				}
			}
			t.Logf("Open(%q): %v", tt.path, err)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Open(%q) = %v, want an error matching %v", tt.path, err, tt.is)
			}
		})
	}
	if b, err := os.ReadFile(notDB); err != nil || !bytes.HasPrefix(b, []byte("this is not")) {
		t.Errorf("a failed Open changed the file that is not a database: %v", err)
	}

	t.Run("newer schema", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "runs.db")
		st, err := sqlitestore.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.DB().ExecContext(t.Context(), `UPDATE taskrun_meta SET value = 99 WHERE key = 'schema_version'`); err != nil {
			t.Fatal(err)
		}
		st.Close(t.Context())
		for _, opts := range [][]sqlitestore.Option{nil, {sqlitestore.WithReadOnly()}} {
			st, err := sqlitestore.Open(t.Context(), path, opts...)
			if err == nil {
				st.Close(t.Context())
				t.Fatal("Open of a file with schema version 99 succeeded")
			}
			if !strings.Contains(err.Error(), "schema version 99") {
				t.Errorf("Open = %v, want an error naming schema version 99", err)
			}
		}
	})
	t.Run("read-only, no store in the file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "other.db")
		st, err := sqlitestore.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.DB().ExecContext(t.Context(), `DROP TABLE taskrun_meta`); err != nil {
			t.Fatal(err)
		}
		st.Close(t.Context())
		if st, err := sqlitestore.Open(t.Context(), path, sqlitestore.WithReadOnly()); err == nil {
			st.Close(t.Context())
			t.Error("read-only Open of a file without a TaskRun store succeeded")
		} else if !strings.Contains(err.Error(), "no TaskRun store") {
			t.Errorf("read-only Open = %v, want an error saying the file holds no TaskRun store", err)
		}
	})
}

// TestOddPath opens a file whose name needs escaping in a URI.
func TestOddPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir with spaces & 100% odd")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "runs?mode=ro#frag.db")
	st := openAt(t, path)
	write(t, st, run("a", 1, taskrun.StatusSuccess, nil))
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the store is not at the path given: %v", err)
	}
	if st.Path() != path {
		t.Errorf("Path() = %q, want %q", st.Path(), path)
	}
	expectIDs(t, st, taskrun.Query{}, "a")
}

func TestReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs.db")
	st, err := sqlitestore.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	write(t, st, run("a", 1, taskrun.StatusSuccess, []string{"jobs"}, "jobs/j1"), run("b", 2, taskrun.StatusFailed, nil))
	st.Close(t.Context())

	ro := openAt(t, path, sqlitestore.WithReadOnly())
	expectIDs(t, ro, taskrun.Query{}, "b", "a")
	expectIDs(t, ro, taskrun.Query{Tag: "jobs"}, "a")
	if _, err := ro.Get(t.Context(), "b"); err != nil {
		t.Errorf("Get: %v", err)
	}
	if err := ro.Write(t.Context(), []taskrun.TaskRun{run("c", 3, taskrun.StatusSuccess, nil)}); !errors.Is(err, sqlitestore.ErrReadOnly) {
		t.Errorf("Write on a read-only store = %v, want ErrReadOnly", err)
	}
	if _, err := ro.DB().ExecContext(t.Context(), `DELETE FROM taskruns`); err == nil {
		t.Error("DELETE through DB of a read-only store succeeded")
	}

	// A read-only store sees what a writer in the same file commits.
	w := openAt(t, path)
	write(t, w, run("c", 3, taskrun.StatusSuccess, nil))
	expectIDs(t, ro, taskrun.Query{}, "c", "b", "a")
	w.Close(t.Context())
	ro.Close(t.Context())

	// Queries do not change the file.
	ro2 := openAt(t, path, sqlitestore.WithReadOnly())
	expectIDs(t, ro2, taskrun.Query{}, "c", "b", "a")
	mid, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ro2.Close(t.Context())
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mid, after) {
		t.Error("a read-only store changed the database file")
	}
}

func TestClose(t *testing.T) {
	st := openTemp(t)
	write(t, st, run("a", 1, taskrun.StatusSuccess, nil))
	if err := st.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := st.Close(t.Context()); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
	if err := st.Write(t.Context(), []taskrun.TaskRun{run("b", 2, taskrun.StatusSuccess, nil)}); !errors.Is(err, sqlitestore.ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	if _, err := st.Get(t.Context(), "a"); !errors.Is(err, sqlitestore.ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}
	if _, err := st.Find(t.Context(), taskrun.Query{}); !errors.Is(err, sqlitestore.ErrClosed) {
		t.Errorf("Find after Close = %v, want ErrClosed", err)
	}
}

func TestCanceledWrite(t *testing.T) {
	st := openAt(t, filepath.Join(t.TempDir(), "runs.db"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	runs := make([]taskrun.TaskRun, 100)
	for i := range runs {
		runs[i] = run(fmt.Sprint("r", i), i, taskrun.StatusSuccess, []string{"t"})
	}
	if err := st.Write(ctx, runs); !errors.Is(err, context.Canceled) {
		t.Errorf("Write with a canceled context = %v, want context.Canceled", err)
	}
	expectIDs(t, st, taskrun.Query{})
	write(t, st, runs[:1]...)
	expectIDs(t, st, taskrun.Query{Tag: "t"}, "r0")
}

// TestIndexesFollowRewrites rewrites runs with other indexed values (the
// full upsert) and with only a new status (the narrow update): every index
// must follow, and a final run must stay in both cases.
func TestIndexesFollowRewrites(t *testing.T) {
	st := openAt(t, filepath.Join(t.TempDir(), "runs.db"))
	a := run("a", 1, taskrun.StatusRunning, []string{"x"})
	write(t, st, a)

	moved := a
	moved.OperationName, moved.Actor = "create_job", taskrun.Actor{UserID: "bob", Channel: "cli"}
	moved.TraceID, moved.IdempotencyKey = "trace-2", "key-2"
	moved.Orchestrated, moved.OrchestratorFlowRunID = true, "flow-2"
	write(t, st, moved)
	for _, q := range []taskrun.Query{
		{Operation: "update_job"}, {UserID: "alice"}, {Channel: "api"}, {TraceID: "trace-a"},
		{Orchestrated: new(false)},
	} {
		expectIDs(t, st, q)
	}
	for _, q := range []taskrun.Query{
		{Operation: "create_job", Status: "RUNNING"}, {UserID: "bob"}, {Channel: "cli"}, {TraceID: "trace-2"},
		{IdempotencyKey: "key-2"}, {FlowRunID: "flow-2"}, {Orchestrated: new(true)}, {Tag: "x"},
	} {
		expectIDs(t, st, q, "a")
	}

	done := moved
	done.Status = taskrun.StatusSuccess
	write(t, st, done) // only the status changes
	expectIDs(t, st, taskrun.Query{Status: "RUNNING"})
	expectIDs(t, st, taskrun.Query{Operation: "create_job", Status: "SUCCESS"}, "a")
	write(t, st, moved) // RUNNING again, same keys: kept SUCCESS
	expectIDs(t, st, taskrun.Query{Operation: "create_job", Status: "SUCCESS"}, "a")
	back := a // RUNNING again, other keys: kept SUCCESS too
	write(t, st, back)
	expectIDs(t, st, taskrun.Query{Operation: "create_job", Status: "SUCCESS"}, "a")
	expectIDs(t, st, taskrun.Query{UserID: "alice"})
	if got, err := st.Get(t.Context(), "a"); err != nil || got.Status != taskrun.StatusSuccess || got.Actor.UserID != "bob" {
		t.Errorf("Get = %+v, %v; want the SUCCESS run of bob", got, err)
	}
}

// TestBackgroundCheckpoint checks that committed writes reach the database
// file without a checkpoint by the writer (which only runs at 20,000 WAL
// pages) and without closing the store.
func TestBackgroundCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs.db")
	st := openAt(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	empty := fi.Size()
	for b := range 10 {
		runs := make([]taskrun.TaskRun, 50)
		for i := range runs {
			n := b*50 + i
			runs[i] = run(fmt.Sprint("run-", n), n, taskrun.StatusSuccess, []string{"jobs"}, fmt.Sprintf("jobs/j%d", n))
		}
		write(t, st, runs...)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > empty+100<<10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file is %d bytes 5s after the writes (%d when empty): the WAL was not checkpointed", fi.Size(), empty)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
