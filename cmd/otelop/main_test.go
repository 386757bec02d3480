package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/otelop/otelop/internal/testutil"
	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/registry"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/sqlitestore"
)

type jobIn struct {
	otelop.Request
	Title string `json:"title" validate:"required"`
}

type jobOut struct {
	otelop.Receipt
	JobID string `json:"job_id" otelop:"ref=jobs"`
}

// fixture writes TaskRuns through the real pipeline into an SQLite file and
// returns its path and the produced runs' ids by title.
type fixture struct {
	path  string
	ids   map[string]string
	tp    *sdktrace.TracerProvider
	op    *otelop.Op[jobIn, jobOut]
	close func()
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "runs.db")
	st, err := sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	p := taskrun.NewProcessor(st, taskrun.WithBatchInterval(time.Millisecond),
		taskrun.WithErrorHandler(func(err error) { t.Logf("processor: %v", err) }))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	var once sync.Once
	closeAll := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := tp.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
			if err := st.Close(ctx); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
	t.Cleanup(closeAll)
	op := otelop.Define(otelop.Spec{Name: "create_job", Description: "d", Category: "jobs", Tags: []string{"write"}, Observed: true},
		func(ctx context.Context, in jobIn) (jobOut, error) {
			if in.Title == "explode" {
				return jobOut{}, errors.New("disk on fire")
			}
			otelop.Log(ctx, 0, "created", "title", in.Title)
			return jobOut{JobID: "job-" + in.Title}, nil
		}, otelop.WithRegistry(registry.New()), otelop.WithTracerProvider(tp))
	f := &fixture{path: path, ids: map[string]string{}, tp: tp, op: op, close: closeAll}
	for _, c := range []struct{ user, title string }{{"alice", "a"}, {"bob", "b"}, {"alice", "explode"}, {"carol", ""}} {
		f.call(t, c.user, c.title)
	}
	return f
}

func (f *fixture) call(t *testing.T, user, title string) string {
	t.Helper()
	out, _ := f.op.Call(context.Background(), jobIn{Request: otelop.Request{UserID: user, Channel: "cli"}, Title: title})
	if err := f.tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.ids[title] = out.TaskRunID
	time.Sleep(2 * time.Millisecond) // distinct started_at
	return out.TaskRunID
}

func cli(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return o.String(), e.String(), code
}

func TestListAndShow(t *testing.T) {
	f := newFixture(t)
	f.close() // the writer is gone: the file can only change through the CLI
	store := "--store=sqlite:" + f.path
	before, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}

	out, _, code := cli(t, "runs", "list", store)
	if code != 0 || strings.Count(out, "\n") != 5 || !strings.HasPrefix(out, "STARTED") {
		t.Fatalf("list (%d):\n%s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.Contains(lines[1], f.ids[""]) || !strings.Contains(lines[4], f.ids["a"]) {
		t.Errorf("not newest first:\n%s", out)
	}

	tests := []struct {
		name string
		args []string
		want []string // titles, newest first
	}{
		{"status", []string{"--status", "failed"}, []string{"", "explode"}},
		{"user", []string{"--user", "alice"}, []string{"explode", "a"}},
		{"ref", []string{"--ref", "jobs/job-b"}, []string{"b"}},
		{"op and tag", []string{"--op", "create_job", "--tag", "write", "--limit", "2"}, []string{"", "explode"}},
		{"channel and since", []string{"--channel", "cli", "--since", "1h"}, []string{"", "explode", "b", "a"}},
		{"until in the past", []string{"--until", "2000-01-01"}, nil},
		{"not orchestrated", []string{"--orchestrated", "false", "--status", "success"}, []string{"b", "a"}},
		{"cursor", []string{"--limit", "2", "--before", "ID:explode"}, []string{"b", "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"runs", "list", store, "--json"}
			for _, a := range tt.args {
				if id, ok := strings.CutPrefix(a, "ID:"); ok {
					a = f.ids[id]
				}
				args = append(args, a)
			}
			out, errOut, code := cli(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var got []string
			for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
				if line == "" {
					continue
				}
				var r taskrun.TaskRun
				if err := json.Unmarshal([]byte(line), &r); err != nil {
					t.Fatalf("line %q: %v", line, err)
				}
				got = append(got, r.ID)
			}
			var want []string
			for _, title := range tt.want {
				want = append(want, f.ids[title])
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("got %v, want %v (titles %q)", got, want, tt.want)
			}
		})
	}

	out, _, code = cli(t, "runs", "show", store, f.ids["explode"])
	for _, want := range []string{"status:        FAILED", "actor:         alice/cli", "disk on fire", "traceback:", "trace link:    http://localhost:16686/trace/", `"title": "explode"`} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("show lacks %q (exit %d):\n%s", want, code, out)
		}
	}
	t.Setenv("OTELOP_TRACE_URL", "https://tempo.example/trace/{trace_id}?x=1")
	out, _, _ = cli(t, "runs", "show", store, f.ids["a"])
	for _, want := range []string{"result refs:\n  jobs/job-a", "log entries:", "created title=a", "https://tempo.example/trace/"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	out, _, code = cli(t, "runs", "show", store, "--json", f.ids["b"])
	var r taskrun.TaskRun
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || r.ID != f.ids["b"] {
		t.Errorf("show --json: %v %v", code, err)
	}
	if _, errOut, code := cli(t, "runs", "show", store, "nope"); code != 1 || !strings.Contains(errOut, `no TaskRun with id "nope"`) {
		t.Errorf("show unknown: exit %d, %q", code, errOut)
	}

	after, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("a query command changed the store file")
	}
}

func TestBadInputExitsTwo(t *testing.T) {
	f := newFixture(t)
	store := "--store=sqlite:" + f.path
	missing := filepath.Join(t.TempDir(), "missing.db")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown status", []string{"runs", "list", store, "--status", "done"}, `--status: unknown status "done"`},
		{"bad since", []string{"runs", "list", store, "--since", "yesterday"}, `--since: cannot read "yesterday" as a time`},
		{"bad ref", []string{"runs", "list", store, "--ref", "nojobs"}, `--ref: "nojobs" is not COLLECTION/ID`},
		{"bad limit", []string{"runs", "list", store, "--limit", "0"}, "--limit: 0 is not between 1"},
		{"since after until", []string{"runs", "list", store, "--since", "2026-01-02", "--until", "2026-01-01"}, "is not before until"},
		{"unknown cursor", []string{"runs", "list", store, "--before", "nope"}, "unknown cursor"},
		{"bad orchestrated", []string{"runs", "list", store, "--orchestrated", "maybe"}, "--orchestrated"},
		{"unknown flag", []string{"runs", "list", store, "--colour"}, "unknown flag"},
		{"extra argument", []string{"runs", "list", store, "x"}, "unknown command"},
		{"show without id", []string{"runs", "show", store}, "arg(s)"},
		{"missing sqlite file", []string{"runs", "list", "--store", "sqlite:" + missing}, "no TaskRun store at"},
		{"unsupported store", []string{"runs", "list", "--store", "postgres://u:secret@h/db"}, "unsupported store URI"},
		{"unreachable mongo", []string{"runs", "list", "--timeout", "3s", "--store", "mongodb://127.0.0.1:1/otelop?serverSelectionTimeoutMS=300&connectTimeoutMS=300"}, "opening the store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			out, errOut, code := cli(t, tt.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2 (stdout %q, stderr %q)", code, out, errOut)
			}
			if strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr %q, want one line containing %q", errOut, tt.want)
			}
			if strings.Contains(errOut, "secret") {
				t.Errorf("stderr leaks a password: %q", errOut)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a query created %s", missing)
	}
}

func TestTail(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out testutil.SyncBuffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"runs", "tail", "--store=sqlite:" + f.path, "--interval", "20ms", "--limit", "2"}, &out, &out)
	}()
	waitFor := func(what string, cond func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond(out.String()) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s:\n%s", what, out.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// The last two runs first, oldest first.
	waitFor("the initial runs", func(s string) bool { return strings.Contains(s, f.ids[""]) })
	if s := out.String(); strings.Contains(s, f.ids["a"]) || strings.Index(s, f.ids["explode"]) > strings.Index(s, f.ids[""]) {
		t.Errorf("initial lines:\n%s", s)
	}
	// A new run shows up.
	id := f.call(t, "dave", "d")
	waitFor("the new run", func(s string) bool { return strings.Contains(s, id) && strings.Contains(s, "by dave/cli") })
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("tail exit %d:\n%s", code, out.String())
	}
}

func TestServe(t *testing.T) {
	f := newFixture(t)
	addr := testutil.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out testutil.SyncBuffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"serve", "--store=sqlite:" + f.path, "--addr", addr}, &out, &out)
	}()
	resp := testutil.WaitGet(t, nil, "http://"+addr+"/api/taskruns?status=FAILED", 10*time.Second, &out)
	var page struct {
		TaskRuns []taskrun.TaskRun `json:"taskruns"`
	}
	err := json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if err != nil || len(page.TaskRuns) != 2 || page.TaskRuns[0].ID != f.ids[""] || page.TaskRuns[1].ID != f.ids["explode"] {
		t.Errorf("failed runs over HTTP: %v %+v", err, page.TaskRuns)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("serve exit %d:\n%s", code, out.String())
	}
	if s := out.String(); !strings.Contains(s, "read-only") || !strings.Contains(s, addr) {
		t.Errorf("start message does not say read-only at %s:\n%s", addr, s)
	}

	// Without tokens, only loopback; a bad token file is bad input.
	_, stderr, code := cli(t, "serve", "--store=sqlite:"+f.path, "--addr", "0.0.0.0:0")
	if code != exitBadInput || !strings.Contains(stderr, "refusing") {
		t.Errorf("non-loopback without tokens: exit %d, %s", code, stderr)
	}
	_, stderr, code = cli(t, "serve", "--store=sqlite:"+f.path, "--tokens", filepath.Join(t.TempDir(), "none.json"))
	if code != exitBadInput || !strings.Contains(stderr, "tokens") {
		t.Errorf("missing token file: exit %d, %s", code, stderr)
	}
}
