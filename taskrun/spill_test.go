package taskrun_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/registry"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/memstore"
	"github.com/otelop/otelop/taskrun/sqlitestore"
)

// helperEnv names the helper process mode when this test binary is started
// by a test (see runHelper).
const helperEnv = "OTELOP_TASKRUN_HELPER"

var errPlanned = errors.New("planned failure")

// failingOp is an observed operation whose calls with N%7 == 0 fail, so
// that runs end both SUCCESS and FAILED.
func failingOp(name string, tp *sdktrace.TracerProvider) *otelop.Op[in, out] {
	return otelop.Define(otelop.Spec{Name: name, Description: "d", Category: "test", Observed: true},
		func(_ context.Context, i in) (out, error) {
			if i.N%7 == 0 {
				return out{}, errPlanned
			}
			return out{}, nil
		},
		otelop.WithRegistry(registry.New()), otelop.WithTracerProvider(tp))
}

// errorLog collects what a processor reports to its error handler.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) handle(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

func (l *errorLog) matching(substr string) []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []error
	for _, err := range l.errs {
		if strings.Contains(err.Error(), substr) {
			out = append(out, err)
		}
	}
	return out
}

func (l *errorLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.errs)
}

// readSpill returns the runs of a spill file, one per line; every line
// must be a whole TaskRun.
func readSpill(t *testing.T, path string) []taskrun.TaskRun {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Errorf("spill file does not end with a newline")
	}
	var runs []taskrun.TaskRun
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var r taskrun.TaskRun
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("spill line %d: %v", len(runs)+1, err)
		}
		runs = append(runs, r)
	}
	return runs
}

func spillLine(t *testing.T, r taskrun.TaskRun) string {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

func finalRun(id string, st taskrun.Status) taskrun.TaskRun {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return taskrun.TaskRun{ID: id, OperationName: "op", Category: "test", Status: st, CreatedAt: now, UpdatedAt: now,
		StartedAt: now, FinishedAt: &now, InputDump: json.RawMessage(`{"n":1}`), Metadata: map[string]any{"dry_run": false}}
}

func TestSpillAtShutdownAndRecoverAtStart(t *testing.T) {
	spill := filepath.Join(t.TempDir(), "taskruns.spill")
	down := newGated(true, 1<<30) // always fails
	var log1 errorLog
	p1 := taskrun.NewProcessor(down, taskrun.WithSpillFile(spill),
		taskrun.WithRetryBackoff(time.Millisecond, 5*time.Millisecond), taskrun.WithErrorHandler(log1.handle))
	tp1 := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p1))
	op1 := failingOp("spill_op", tp1)
	const calls = 40
	want := map[string]taskrun.Status{}
	for i := range calls {
		o, err := op1.Call(context.Background(), in{N: i})
		if err != nil && !errors.Is(err, errPlanned) {
			t.Fatal(err)
		}
		want[o.TaskRunID] = map[bool]taskrun.Status{true: taskrun.StatusFailed, false: taskrun.StatusSuccess}[err != nil]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := tp1.Shutdown(ctx)
	if !errors.Is(err, taskrun.ErrSpilled) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want ErrSpilled and DeadlineExceeded", err)
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("%d TaskRuns", calls)) || !strings.Contains(msg, spill) {
		t.Errorf("Shutdown error %q does not say how many runs went where", msg)
	}
	st := p1.Stats()
	if st.Spilled != 2*calls || st.Failed != 0 || st.Written != 0 || st.Enqueued != 2*calls {
		t.Errorf("stats after the spill: %+v", st)
	}
	spilled := readSpill(t, spill)
	if len(spilled) != calls {
		t.Fatalf("%d runs in the spill file, want %d", len(spilled), calls)
	}
	for _, r := range spilled {
		if want[r.ID] != r.Status {
			t.Errorf("spilled run %s is %s, want %s", r.ID, r.Status, want[r.ID])
		}
	}

	// The next processor over the same spill file writes them.
	store := memstore.New()
	var log2 errorLog
	p2 := taskrun.NewProcessor(store, taskrun.WithSpillFile(spill), taskrun.WithErrorHandler(log2.handle))
	if st := p2.Stats(); st.Recovered != calls || st.Enqueued != calls {
		t.Errorf("stats at start: %+v", st)
	}
	if err := p2.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(spill); err != nil || fi.Size() != 0 {
		t.Errorf("spill file after its runs were written: %v, %v (want empty)", fi, err)
	}
	if err := p2.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(spill); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty spill file not removed at Shutdown: %v", err)
	}
	if st := p2.Stats(); st.Written != calls || st.Failed+st.Spilled+st.Dropped != 0 {
		t.Errorf("stats: %+v", st)
	}
	if n := log2.len(); n != 0 {
		t.Errorf("errors reported: %v", log2.errs)
	}
	got := store.All()
	if len(got) != calls {
		t.Fatalf("%d runs stored, want %d", len(got), calls)
	}
	for _, r := range got {
		if want[r.ID] != r.Status {
			t.Errorf("run %s is %s, want %s", r.ID, r.Status, want[r.ID])
		}
	}
}

func TestSpillWithoutUnwrittenRunsLeavesNoFile(t *testing.T) {
	spill := filepath.Join(t.TempDir(), "spill.jsonl")
	op, p, tp := setup(t, memstore.New(), taskrun.WithSpillFile(spill))
	if _, err := os.Stat(spill); err != nil {
		t.Errorf("spill file not created (and locked) at start: %v", err)
	}
	_, _ = op.Call(context.Background(), in{})
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(spill); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("spill file left: %v", err)
	}
	if st := p.Stats(); st.Written != 2 || st.Spilled != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestSpillTornAndBadLines(t *testing.T) {
	dir := t.TempDir()
	a, b := finalRun("run-a", taskrun.StatusSuccess), finalRun("run-b", taskrun.StatusFailed)
	c := finalRun("run-c", taskrun.StatusSuccess)
	running := a
	running.Status, running.FinishedAt = taskrun.StatusRunning, nil
	cLine := spillLine(t, c)
	tests := []struct {
		name      string
		content   string
		want      []string // ids stored
		reported  []string // substrings of reported errors
		keptAfter int      // lines left in the file after the start (before any write)
	}{
		{"torn last line", spillLine(t, a) + spillLine(t, b) + `{"id":"run-x","operation_name":"o`, []string{"run-a", "run-b"}, []string{"line 3 is incomplete"}, 2},
		{"whole last line without newline", spillLine(t, a) + strings.TrimSuffix(cLine, "\n"), []string{"run-a", "run-c"}, nil, 2},
		{"bad line in the middle", spillLine(t, a) + "not json\n" + `{"id":"","status":"SUCCESS"}` + "\n" + spillLine(t, b), []string{"run-a", "run-b"}, []string{"line 2", "line 3"}, 4},
		{"running and final of one run", spillLine(t, a) + spillLine(t, running) + spillLine(t, b), []string{"run-a", "run-b"}, nil, 3},
		{"only a torn line", `{"id":"run-x"`, nil, []string{"line 1 is incomplete"}, 0},
		{"empty file", "", nil, nil, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spill := filepath.Join(dir, strconv.Itoa(i)+".spill")
			if err := os.WriteFile(spill, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			gate := newGated(false, 0) // holds the writes until the file is checked
			var log errorLog
			p := taskrun.NewProcessor(gate, taskrun.WithSpillFile(spill), taskrun.WithErrorHandler(log.handle))
			for _, s := range tt.reported {
				if len(log.matching(s)) != 1 {
					t.Errorf("reported %v, want one error with %q", log.errs, s)
				}
			}
			if log.len() != len(tt.reported) {
				t.Errorf("reported %v", log.errs)
			}
			if data, err := os.ReadFile(spill); err != nil {
				t.Fatal(err)
			} else if n := bytes.Count(data, []byte("\n")); n != tt.keptAfter || (len(data) > 0 && data[len(data)-1] != '\n') {
				t.Errorf("file at start: %q, want %d whole lines", data, tt.keptAfter)
			}
			close(gate.gate)
			if err := p.ForceFlush(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := p.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range gate.All() {
				ids = append(ids, r.ID)
				if !r.Status.Final() {
					t.Errorf("run %s stored as %s", r.ID, r.Status)
				}
			}
			slices.Sort(ids)
			if !slices.Equal(ids, tt.want) {
				t.Errorf("stored %v, want %v", ids, tt.want)
			}
			if _, err := os.Stat(spill); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("spill file left: %v", err)
			}
		})
	}
}

// TestRecoveredRunningNeverRegressesFinal: a spill file holding a RUNNING
// state of a run the store has as final leaves the final state.
func TestRecoveredRunningNeverRegressesFinal(t *testing.T) {
	spill := filepath.Join(t.TempDir(), "spill")
	store := memstore.New()
	final := finalRun("run-1", taskrun.StatusSuccess)
	if err := store.Write(context.Background(), []taskrun.TaskRun{final}); err != nil {
		t.Fatal(err)
	}
	running := final
	running.Status, running.FinishedAt = taskrun.StatusRunning, nil
	if err := os.WriteFile(spill, []byte(spillLine(t, running)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := taskrun.NewProcessor(store, taskrun.WithSpillFile(spill))
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r, err := store.Get(context.Background(), "run-1"); err != nil || r.Status != taskrun.StatusSuccess {
		t.Errorf("run-1 = %s, %v", r.Status, err)
	}
	if st := p.Stats(); st.Recovered != 1 || st.Written != 1 {
		t.Errorf("stats %+v", st)
	}
}

// switchWriter fails while down is set.
type switchWriter struct {
	*memstore.Store
	down   atomic.Bool
	writes atomic.Int32
}

func (w *switchWriter) Write(ctx context.Context, runs []taskrun.TaskRun) error {
	w.writes.Add(1)
	if w.down.Load() {
		return errors.New("store unavailable")
	}
	return w.Store.Write(ctx, runs)
}

// TestSpillAndContinuedOperation: a processor that starts with a spill
// file while the store is down keeps taking calls, writes the recovered
// and the new runs once the store is back, empties the file while it runs,
// and spills at its Shutdown only what is unwritten then.
func TestSpillAndContinuedOperation(t *testing.T) {
	spill := filepath.Join(t.TempDir(), "spill")
	var lines strings.Builder
	for i := range 10 {
		lines.WriteString(spillLine(t, finalRun(fmt.Sprintf("old-%02d", i), taskrun.StatusSuccess)))
	}
	if err := os.WriteFile(spill, []byte(lines.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	w := &switchWriter{Store: memstore.New()}
	w.down.Store(true)
	var log errorLog
	p := taskrun.NewProcessor(w, taskrun.WithSpillFile(spill), taskrun.WithErrorHandler(log.handle),
		taskrun.WithRetryBackoff(time.Millisecond, 10*time.Millisecond), taskrun.WithBatchInterval(5*time.Millisecond))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	op := failingOp("continued", tp)
	call := func(n int) string {
		o, err := op.Call(context.Background(), in{N: n})
		if err != nil && !errors.Is(err, errPlanned) {
			t.Fatal(err)
		}
		return o.TaskRunID
	}
	var live []string
	for i := range 30 { // while the store is down
		live = append(live, call(i))
	}
	if st := p.Stats(); st.Written != 0 || st.Queued != 10+60 {
		t.Errorf("stats while down: %+v", st)
	}
	if data, _ := os.ReadFile(spill); bytes.Count(data, []byte("\n")) != 10 {
		t.Errorf("spill file changed while its runs are unwritten: %q", data)
	}
	w.down.Store(false)
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(spill); err != nil || fi.Size() != 0 {
		t.Errorf("spill file once written: %v %v", fi, err)
	}
	if n := w.Len(); n != 40 {
		t.Errorf("%d runs stored, want 40", n)
	}
	for i := range 20 { // business as usual
		live = append(live, call(100+i))
	}
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := w.Len(); n != 60 {
		t.Errorf("%d runs stored, want 60", n)
	}
	// The store goes down again; the last calls are spilled at Shutdown.
	w.down.Store(true)
	var last []string
	for i := range 5 {
		last = append(last, call(200+i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := tp.Shutdown(ctx); !errors.Is(err, taskrun.ErrSpilled) || !strings.Contains(err.Error(), "5 TaskRuns") {
		t.Errorf("Shutdown = %v", err)
	}
	var spilled []string
	for _, r := range readSpill(t, spill) {
		spilled = append(spilled, r.ID)
	}
	slices.Sort(spilled)
	slices.Sort(last)
	if !slices.Equal(spilled, last) {
		t.Errorf("spilled %v, want %v", spilled, last)
	}
	st := p.Stats()
	if st.Recovered != 10 || st.Written != 10+2*50 || st.Spilled != 2*5 || st.Failed != 0 || st.Enqueued != st.Written+st.Spilled {
		t.Errorf("stats %+v", st)
	}
}

// TestSpillShutdownBeforeRecoveredRunsAreWritten: recovered runs that are
// still unwritten at Shutdown stay in the file, once each.
func TestSpillShutdownBeforeRecoveredRunsAreWritten(t *testing.T) {
	spill := filepath.Join(t.TempDir(), "spill")
	content := spillLine(t, finalRun("old-1", taskrun.StatusSuccess)) + spillLine(t, finalRun("old-2", taskrun.StatusFailed))
	if err := os.WriteFile(spill, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	w := &switchWriter{Store: memstore.New()}
	w.down.Store(true)
	p := taskrun.NewProcessor(w, taskrun.WithSpillFile(spill), taskrun.WithErrorHandler(func(error) {}),
		taskrun.WithRetryBackoff(time.Millisecond, 5*time.Millisecond))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	op := failingOp("again", tp)
	o, _ := op.Call(context.Background(), in{N: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := tp.Shutdown(ctx); !errors.Is(err, taskrun.ErrSpilled) || !strings.Contains(err.Error(), "3 TaskRuns") {
		t.Errorf("Shutdown = %v", err)
	}
	var ids []string
	for _, r := range readSpill(t, spill) {
		ids = append(ids, r.ID)
	}
	want := []string{"old-1", "old-2", o.TaskRunID}
	if !slices.Equal(ids, want) {
		t.Errorf("spill file holds %v, want %v", ids, want)
	}
	if st := p.Stats(); st.Spilled != 2+2 || st.Enqueued != 2+2 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestSpillFileInUse(t *testing.T) {
	spill := filepath.Join(t.TempDir(), "spill")
	p1 := taskrun.NewProcessor(memstore.New(), taskrun.WithSpillFile(spill))
	defer func() { _ = p1.Shutdown(context.Background()) }()
	var log errorLog
	p2 := taskrun.NewProcessor(newGated(true, 1<<30), taskrun.WithSpillFile(spill), taskrun.WithErrorHandler(log.handle),
		taskrun.WithRetryBackoff(time.Millisecond, time.Millisecond))
	if errs := log.matching("another process uses it"); len(errs) != 1 {
		t.Errorf("reported %v", log.errs)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p2))
	_, _ = failingOp("in_use", tp).Call(context.Background(), in{N: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := tp.Shutdown(ctx)
	if errors.Is(err, taskrun.ErrSpilled) || !strings.Contains(fmt.Sprint(err), "2 TaskRun states were not written") {
		t.Errorf("Shutdown without the spill file = %v", err)
	}
	if st := p2.Stats(); st.Failed != 2 || st.Spilled != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestSpillFileInMissingDirectory(t *testing.T) {
	var log errorLog
	p := taskrun.NewProcessor(memstore.New(), taskrun.WithSpillFile(filepath.Join(t.TempDir(), "no", "such", "spill")),
		taskrun.WithErrorHandler(log.handle))
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if errs := log.matching("running without a spill file"); len(errs) != 1 {
		t.Errorf("reported %v", log.errs)
	}
}

// TestSpillAcrossProcesses runs two processes one after the other over
// one SQLite file and one spill file. The first makes its calls while the
// SQLite file is locked by another connection, so that nothing can be
// written, and shuts down with a short context: its runs go to the spill
// file. The second starts a processor over the same files, now unlocked,
// and writes them. Nothing is killed by hand: every run must be found.
func TestSpillAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	dbPath, spill := filepath.Join(dir, "taskruns.db"), filepath.Join(dir, "taskruns.spill")
	st, err := sqlitestore.Open(context.Background(), dbPath) // creates the schema
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	const calls = 200

	first := runHelperProcess(t, "spill", dbPath, spill, calls)
	if len(first.IDs) != calls || !strings.Contains(first.ShutdownError, fmt.Sprintf("%d TaskRuns not written to the store are in %s", calls, spill)) {
		t.Fatalf("first process: %d ids, shutdown error %q", len(first.IDs), first.ShutdownError)
	}
	if first.Stats.Spilled != 2*calls || first.Stats.Written != 0 || first.Stats.Retried == 0 {
		t.Errorf("first process stats: %+v", first.Stats)
	}
	spilled := readSpill(t, spill)
	if len(spilled) != calls {
		t.Fatalf("spill file holds %d runs, want %d", len(spilled), calls)
	}
	for _, r := range spilled {
		if want := first.IDs[r.ID]; r.Status != want {
			t.Errorf("spilled run %s is %s, want %s", r.ID, r.Status, want)
		}
	}

	second := runHelperProcess(t, "recover", dbPath, spill, 0)
	if second.ShutdownError != "" || second.Stats.Recovered != calls || second.Stats.Written != calls {
		t.Errorf("second process: shutdown error %q, stats %+v", second.ShutdownError, second.Stats)
	}
	if _, err := os.Stat(spill); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("spill file after the second process: %v", err)
	}

	st, err = sqlitestore.Open(context.Background(), dbPath, sqlitestore.WithReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close(context.Background()) }()
	runs, err := st.Find(context.Background(), taskrun.Query{Operation: "two_processes", Limit: taskrun.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]taskrun.Status{}
	for _, r := range runs {
		found[r.ID] = r.Status
	}
	missing := 0
	for id, want := range first.IDs {
		if found[id] != want {
			missing++
		}
	}
	if len(runs) != calls || len(found) != calls || missing != 0 {
		t.Errorf("store holds %d runs (%d ids), %d of the %d calls missing or wrong", len(runs), len(found), missing, calls)
	}
	t.Logf("two processes: %d calls in the first, %d runs spilled, %d recovered and written by the second, %d in the store, %d missing",
		calls, len(spilled), second.Stats.Recovered, len(runs), missing)
}

// helperReport is what a helper process prints on its last line.
type helperReport struct {
	IDs           map[string]taskrun.Status `json:"ids"`
	Stats         taskrun.Stats             `json:"stats"`
	ShutdownError string                    `json:"shutdown_error"`
}

func runHelperProcess(t *testing.T, mode, dbPath, spill string, calls int) helperReport {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "OTELOP_TEST_DB="+dbPath, "OTELOP_TEST_SPILL="+spill,
		"OTELOP_TEST_CALLS="+strconv.Itoa(calls))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper process %s: %v\nstdout: %s\nstderr: %s", mode, err, out, stderr.Bytes())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var rep helperReport
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("helper process %s printed %q: %v", mode, out, err)
	}
	return rep
}

// runHelper is the main function of a helper process.
func runHelper(mode string) int {
	if err := helperMain(mode); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	return 0
}

func helperMain(mode string) error {
	ctx := context.Background()
	dbPath, spill := os.Getenv("OTELOP_TEST_DB"), os.Getenv("OTELOP_TEST_SPILL")
	st, err := sqlitestore.Open(ctx, dbPath, sqlitestore.WithBusyTimeout(20*time.Millisecond))
	if err != nil {
		return err
	}
	defer func() { _ = st.Close(ctx) }()
	rep := helperReport{IDs: map[string]taskrun.Status{}}
	opts := []taskrun.ProcessorOption{taskrun.WithSpillFile(spill), taskrun.WithErrorHandler(func(error) {}),
		taskrun.WithRetryBackoff(5*time.Millisecond, 50*time.Millisecond)}
	switch mode {
	case "spill":
		// Another connection holds the write lock: the store cannot write.
		db, err := sql.Open("sqlite", dbPath)
		if err != nil {
			return err
		}
		defer db.Close()
		conn, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
			return err
		}
		defer conn.ExecContext(ctx, "ROLLBACK") //nolint:errcheck // the process ends

		p := taskrun.NewProcessor(st, opts...)
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
		op := failingOp("two_processes", tp)
		calls, _ := strconv.Atoi(os.Getenv("OTELOP_TEST_CALLS"))
		for i := range calls {
			o, err := op.Call(ctx, in{N: i})
			switch {
			case errors.Is(err, errPlanned):
				rep.IDs[o.TaskRunID] = taskrun.StatusFailed
			case err != nil:
				return err
			default:
				rep.IDs[o.TaskRunID] = taskrun.StatusSuccess
			}
		}
		time.Sleep(200 * time.Millisecond) // a few failed writes
		sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		err = tp.Shutdown(sctx)
		if !errors.Is(err, taskrun.ErrSpilled) {
			return fmt.Errorf("Shutdown = %v, want ErrSpilled", err)
		}
		rep.ShutdownError, rep.Stats = err.Error(), p.Stats()
	case "recover":
		p := taskrun.NewProcessor(st, opts...)
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := p.ForceFlush(fctx); err != nil {
			return err
		}
		if err := p.Shutdown(fctx); err != nil {
			rep.ShutdownError = err.Error()
		}
		rep.Stats = p.Stats()
	default:
		return fmt.Errorf("unknown helper mode %q", mode)
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}
