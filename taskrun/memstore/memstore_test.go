package memstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/memstore"
	"github.com/otelop/otelop/taskrun/taskruntest"
)

func TestStoreSuite(t *testing.T) {
	taskruntest.RunStoreSuite(t, func(t *testing.T) taskrun.Store { return memstore.New() })
}

var base = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func sample(id string, status taskrun.Status, start time.Time) taskrun.TaskRun {
	fin := start.Add(time.Second)
	return taskrun.TaskRun{
		ID: id, OperationName: "update_job", Status: status,
		StartedAt: start, CreatedAt: start, UpdatedAt: fin, FinishedAt: &fin,
		Tags:       []string{"jobs", "admin"},
		InputDump:  json.RawMessage(`{"job_id":"j1"}`),
		ResultRefs: []otelop.Ref{{Collection: "jobs", DocumentID: "j1"}},
		ErrorList:  []otelop.ItemError{{Item: "j2", Error: "locked"}},
		LogEntries: []taskrun.LogEntry{{Time: start, Level: "INFO", Message: "hi", Attributes: map[string]any{"k": "v", "list": []string{"a"}}}},
		Metadata:   map[string]any{"dry_run": false, "nested": map[string]any{"a": []any{"x"}}},
	}
}

func TestClose(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	if err := s.Write(ctx, []taskrun.TaskRun{sample("a", taskrun.StatusSuccess, base)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
	if err := s.Write(ctx, []taskrun.TaskRun{sample("b", taskrun.StatusSuccess, base)}); !errors.Is(err, memstore.ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, memstore.ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Find(ctx, taskrun.Query{}); !errors.Is(err, memstore.ErrClosed) {
		t.Errorf("Find after Close: %v, want ErrClosed", err)
	}
	// All and Len still work, for harnesses that read after cleanup.
	if n := s.Len(); n != 1 {
		t.Errorf("Len after Close = %d, want 1", n)
	}
	if all := s.All(); len(all) != 1 || all[0].ID != "a" {
		t.Errorf("All after Close = %v, want run a", all)
	}
}

func TestEmptyIDRejectsBatch(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	runs := []taskrun.TaskRun{sample("a", taskrun.StatusSuccess, base), {OperationName: "nameless"}, sample("b", taskrun.StatusSuccess, base)}
	err := s.Write(ctx, runs)
	if err == nil || !strings.Contains(err.Error(), "empty id") || !strings.Contains(err.Error(), "nameless") {
		t.Errorf("Write with an empty id: err = %v, want one about the empty id of run 1 (nameless)", err)
	}
	if n := s.Len(); n != 0 {
		t.Errorf("Len = %d after a rejected batch, want 0", n)
	}
}

func TestCanceledContext(t *testing.T) {
	s := memstore.New()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Write(ctx, []taskrun.TaskRun{sample("a", taskrun.StatusSuccess, base)}); !errors.Is(err, context.Canceled) {
		t.Errorf("Write: %v, want context.Canceled", err)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get: %v, want context.Canceled", err)
	}
	if _, err := s.Find(ctx, taskrun.Query{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Find: %v, want context.Canceled", err)
	}
	if s.Len() != 0 {
		t.Errorf("Len = %d, want 0", s.Len())
	}
}

func TestUnknownCursorNamesID(t *testing.T) {
	s := memstore.New()
	_, err := s.Find(context.Background(), taskrun.Query{Before: "0199-missing"})
	if err == nil || !strings.Contains(err.Error(), "0199-missing") {
		t.Errorf("Find with an unknown cursor: err = %v, want one naming the id", err)
	}
}

func TestGetNotFoundNamesID(t *testing.T) {
	_, err := memstore.New().Get(context.Background(), "0199-missing")
	if !errors.Is(err, taskrun.ErrNotFound) || !strings.Contains(err.Error(), "0199-missing") {
		t.Errorf("Get: err = %v, want ErrNotFound naming the id", err)
	}
}

// mutate changes every reference-typed part of r in place.
func mutate(r *taskrun.TaskRun) {
	r.Tags[0] = "MUTATED"
	r.InputDump[2] = 'X'
	r.ResultRefs[0].DocumentID = "MUTATED"
	r.ErrorList[0].Error = "MUTATED"
	*r.FinishedAt = time.Time{}
	r.LogEntries[0].Message = "MUTATED"
	r.LogEntries[0].Attributes["k"] = "MUTATED"
	r.LogEntries[0].Attributes["list"].([]string)[0] = "MUTATED"
	r.Metadata["dry_run"] = true
	r.Metadata["nested"].(map[string]any)["a"].([]any)[0] = "MUTATED"
	r.Metadata["added"] = 1
}

func TestNoAliasing(t *testing.T) {
	ctx := context.Background()
	want := sample("a", taskrun.StatusSuccess, base)
	check := func(t *testing.T, s *memstore.Store, after string) {
		t.Helper()
		got, err := s.Get(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("after %s the stored run changed:\n got %+v\nwant %+v", after, got, want)
		}
	}
	write := func(t *testing.T) *memstore.Store {
		s := memstore.New()
		if err := s.Write(ctx, []taskrun.TaskRun{sample("a", taskrun.StatusSuccess, base)}); err != nil {
			t.Fatal(err)
		}
		return s
	}

	t.Run("input", func(t *testing.T) {
		s := memstore.New()
		in := []taskrun.TaskRun{sample("a", taskrun.StatusSuccess, base)}
		if err := s.Write(ctx, in); err != nil {
			t.Fatal(err)
		}
		mutate(&in[0])
		in[0].ID = "other"
		check(t, s, "mutating the written run")
	})
	t.Run("Get", func(t *testing.T) {
		s := write(t)
		r, _ := s.Get(ctx, "a")
		mutate(&r)
		check(t, s, "mutating the result of Get")
	})
	t.Run("Find", func(t *testing.T) {
		s := write(t)
		runs, _ := s.Find(ctx, taskrun.Query{})
		mutate(&runs[0])
		check(t, s, "mutating the result of Find")
	})
	t.Run("All", func(t *testing.T) {
		s := write(t)
		runs := s.All()
		mutate(&runs[0])
		check(t, s, "mutating the result of All")
	})
}

func TestNilStaysNil(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	runs := []taskrun.TaskRun{
		{ID: "nil", Status: taskrun.StatusRunning, StartedAt: base},
		{ID: "empty", Status: taskrun.StatusRunning, StartedAt: base, Tags: []string{}, Metadata: map[string]any{}, InputDump: json.RawMessage{}},
	}
	if err := s.Write(ctx, runs); err != nil {
		t.Fatal(err)
	}
	for _, want := range runs {
		got, err := s.Get(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Get(%q) = %#v, want %#v", want.ID, got, want)
		}
	}
}

func TestStartedAtChangeMovesRun(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	write := func(runs ...taskrun.TaskRun) {
		t.Helper()
		if err := s.Write(ctx, runs); err != nil {
			t.Fatal(err)
		}
	}
	at := func(id string, sec int) taskrun.TaskRun {
		return taskrun.TaskRun{ID: id, Status: taskrun.StatusRunning, StartedAt: base.Add(time.Duration(sec) * time.Second)}
	}
	write(at("a", 1), at("b", 2), at("c", 3))
	write(at("a", 4))                         // moves to the front
	write(at("c", 0), at("c", 5), at("d", 2)) // moves twice in one batch; d ties with b
	want := []string{"c", "a", "d", "b"}
	runs, err := s.Find(ctx, taskrun.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(runs); !slices.Equal(got, want) {
		t.Errorf("Find = %q, want %q", got, want)
	}
	if s.Len() != 4 {
		t.Errorf("Len = %d, want 4", s.Len())
	}
}

func ids(runs []taskrun.TaskRun) []string {
	out := make([]string, len(runs))
	for i := range runs {
		out[i] = runs[i].ID
	}
	return out
}

// TestIndexMatchesReference writes runs in random order, in batches of
// random size (exercising the append, insert and merge paths), with
// repeated ids and final/non-final states, and compares every Find with a
// reference: a plain sort with taskrun.Newer and a filter with Query.Match.
func TestIndexMatchesReference(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	s := memstore.New()
	ref := map[string]taskrun.TaskRun{}
	statuses := []taskrun.Status{taskrun.StatusPending, taskrun.StatusRunning, taskrun.StatusSuccess, taskrun.StatusFailed}
	for range 300 {
		batch := make([]taskrun.TaskRun, 1+rng.IntN(40))
		for i := range batch {
			id := fmt.Sprintf("id-%04d", rng.IntN(3000))
			r := taskrun.TaskRun{
				ID:            id,
				OperationName: fmt.Sprint("op-", rng.IntN(4)),
				Status:        statuses[rng.IntN(4)],
				StartedAt:     base.Add(time.Duration(rng.IntN(500)) * time.Second),
				Tags:          []string{fmt.Sprint("t", rng.IntN(3))},
			}
			if rng.IntN(10) > 0 {
				// Usually the started_at of an id stays put.
				if old, ok := ref[id]; ok {
					r.StartedAt = old.StartedAt
				}
			}
			batch[i] = r
			if old, ok := ref[id]; !ok || !old.Status.Final() || r.Status.Final() {
				ref[id] = r
			}
		}
		if err := s.Write(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	all := make([]taskrun.TaskRun, 0, len(ref))
	for _, r := range ref {
		all = append(all, r)
	}
	slices.SortFunc(all, func(a, b taskrun.TaskRun) int {
		switch {
		case taskrun.Newer(&a, &b):
			return -1
		case taskrun.Newer(&b, &a):
			return 1
		}
		return 0
	})
	if got := ids(s.All()); !slices.Equal(got, ids(all)) {
		t.Fatalf("All differs from the reference order (%d vs %d runs)", len(got), len(all))
	}
	if s.Len() != len(all) {
		t.Fatalf("Len = %d, want %d", s.Len(), len(all))
	}

	for i := range 200 {
		q := taskrun.Query{Limit: 1 + rng.IntN(60)}
		if rng.IntN(2) == 0 {
			q.Operation = fmt.Sprint("op-", rng.IntN(4))
		}
		if rng.IntN(2) == 0 {
			q.Status = string(statuses[rng.IntN(4)])
		}
		if rng.IntN(3) == 0 {
			q.Tag = fmt.Sprint("t", rng.IntN(3))
		}
		if rng.IntN(2) == 0 {
			q.Since = base.Add(time.Duration(rng.IntN(250)) * time.Second)
		}
		if rng.IntN(2) == 0 {
			q.Until = base.Add(time.Duration(250+rng.IntN(250)) * time.Second)
		}
		if rng.IntN(2) == 0 {
			q.Before = all[rng.IntN(len(all))].ID
		}
		nq, err := q.Normalize()
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		past := q.Before == ""
		for j := range all {
			if !past {
				past = all[j].ID == q.Before
				continue
			}
			if nq.Match(&all[j]) && len(want) < nq.Limit {
				want = append(want, all[j].ID)
			}
		}
		got, err := s.Find(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), want) {
			t.Fatalf("query %d %+v:\n got %q\nwant %q", i, q, ids(got), want)
		}
	}
}

func TestConcurrentReadersAndWriters(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				r := taskrun.TaskRun{ID: fmt.Sprintf("w%d-%03d", w, i), Status: taskrun.StatusRunning, StartedAt: base.Add(time.Duration(i) * time.Millisecond)}
				if err := s.Write(ctx, []taskrun.TaskRun{r}); err != nil {
					t.Error(err)
					return
				}
				r.Status = taskrun.StatusSuccess
				if err := s.Write(ctx, []taskrun.TaskRun{r}); err != nil {
					t.Error(err)
					return
				}
			}
		})
		wg.Go(func() {
			for range 200 {
				if _, err := s.Find(ctx, taskrun.Query{Status: "success", Limit: 10}); err != nil {
					t.Error(err)
					return
				}
				_ = s.All()
			}
		})
	}
	wg.Wait()
	runs, err := s.Find(ctx, taskrun.Query{Status: "SUCCESS", Limit: taskrun.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 800 || s.Len() != 800 {
		t.Errorf("Find SUCCESS = %d runs, Len = %d; want 800 and 800", len(runs), s.Len())
	}
}

func BenchmarkFind100k(b *testing.B) {
	ctx := context.Background()
	s := memstore.New()
	const n = 100_000
	batch := make([]taskrun.TaskRun, 0, 500)
	for i := range n {
		batch = append(batch, taskrun.TaskRun{
			ID: fmt.Sprintf("run-%06d", i), OperationName: fmt.Sprint("op-", i%50),
			Status: taskrun.StatusSuccess, StartedAt: base.Add(time.Duration(i) * time.Millisecond),
			Actor: taskrun.Actor{UserID: fmt.Sprint("user-", i%1000)},
		})
		if len(batch) == cap(batch) {
			if err := s.Write(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	queries := map[string]taskrun.Query{
		"newest":    {},
		"selective": {UserID: "user-7"},
		"window":    {Since: base.Add(40 * time.Second), Until: base.Add(41 * time.Second), Limit: 1000},
		"cursor":    {Before: "run-050000", Operation: "op-3"},
		"no match":  {UserID: "nobody"},
	}
	for name, q := range queries {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Find(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkWriteRandomOrder(b *testing.B) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	for b.Loop() {
		s := memstore.New()
		for i := range 200 {
			batch := make([]taskrun.TaskRun, 100)
			for j := range batch {
				batch[j] = taskrun.TaskRun{
					ID:     fmt.Sprintf("run-%03d-%03d", i, j),
					Status: taskrun.StatusSuccess, StartedAt: base.Add(time.Duration(rng.IntN(1e9)) * time.Microsecond),
				}
			}
			if err := s.Write(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func Example() {
	ctx := context.Background()
	store := memstore.New()
	defer store.Close(ctx)

	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	running := taskrun.TaskRun{
		ID: "0197-a", OperationName: "update_job", Status: taskrun.StatusRunning,
		Actor: taskrun.Actor{UserID: "alice", Channel: "api"}, StartedAt: start,
	}
	failed := taskrun.TaskRun{
		ID: "0197-b", OperationName: "delete_job", Status: taskrun.StatusFailed,
		Actor: taskrun.Actor{UserID: "bob", Channel: "cli"}, StartedAt: start.Add(time.Second),
		ErrorMessage: "job is locked",
	}
	if err := store.Write(ctx, []taskrun.TaskRun{running, failed}); err != nil {
		fmt.Println(err)
		return
	}

	// The run ends; a late RUNNING write of it does not undo that.
	done := running
	done.Status = taskrun.StatusSuccess
	_ = store.Write(ctx, []taskrun.TaskRun{done})
	_ = store.Write(ctx, []taskrun.TaskRun{running})

	runs, _ := store.Find(ctx, taskrun.Query{})
	for _, r := range runs {
		fmt.Println(r.ID, r.OperationName, r.Actor.UserID, r.Status)
	}
	failures, _ := store.Find(ctx, taskrun.Query{Status: "failed"})
	fmt.Println("failures:", len(failures))

	_, err := store.Get(ctx, "0197-z")
	fmt.Println(errors.Is(err, taskrun.ErrNotFound))
	// Output:
	// 0197-b delete_job bob FAILED
	// 0197-a update_job alice SUCCESS
	// failures: 1
	// true
}
