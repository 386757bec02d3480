package memstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/taskrun"
)

// ErrClosed is returned by Write, Get and Find after Close.
var ErrClosed = errors.New("memstore: store is closed")

var _ taskrun.Store = (*Store)(nil)

// Store is an in-memory [taskrun.Store]. The zero value is not usable: call
// [New].
type Store struct {
	mu     sync.RWMutex
	closed bool
	byID   map[string]*taskrun.TaskRun
	// sorted holds the runs of byID in ascending (started_at, id) order:
	// oldest first, so that new runs append. Find walks it backwards.
	sorted []*taskrun.TaskRun
}

// New returns an empty Store.
func New() *Store {
	return &Store{byID: make(map[string]*taskrun.TaskRun)}
}

// Write upserts runs by ID, in the order given. A stored final run (SUCCESS
// or FAILED) is never replaced by a non-final one; a final run replaces
// whatever is stored; a non-final run replaces a non-final one. Write never
// blocks for long: it returns ctx.Err() when ctx is already done, an error
// naming the position of any run with an empty ID (and then writes nothing
// of the batch), and ErrClosed after Close.
func (s *Store) Write(ctx context.Context, runs []taskrun.TaskRun) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := range runs {
		if runs[i].ID == "" {
			return fmt.Errorf("memstore: %w: run %d of %d (operation %q) has an empty id; nothing of the batch was written", taskrun.ErrRejected, i, len(runs), runs[i].OperationName)
		}
	}
	batch := make([]*taskrun.TaskRun, len(runs))
	for i := range runs {
		c := clone(&runs[i])
		stripMonotonic(&c)
		batch[i] = &c
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.apply(batch)
	return nil
}

// apply stores batch; s.mu must be held for writing. The runs of batch are
// owned by the store from here on.
func (s *Store) apply(batch []*taskrun.TaskRun) {
	var (
		fresh   []*taskrun.TaskRun        // runs to add to sorted, not in it yet
		pending map[string]bool           // ids whose current run is in fresh
		stale   map[*taskrun.TaskRun]bool // runs to drop from sorted
	)
	for _, r := range batch {
		old, ok := s.byID[r.ID]
		switch {
		case ok && old.Status.Final() && !r.Status.Final():
			// A final state is never undone.
		case !ok:
			s.byID[r.ID] = r
			fresh = append(fresh, r)
			if pending == nil {
				pending = make(map[string]bool)
			}
			pending[r.ID] = true
		case pending[r.ID] || old.StartedAt.Equal(r.StartedAt):
			// Same position in sorted (or not in it yet): replace in place.
			*old = *r
		default:
			// started_at changed: the run moves.
			if stale == nil {
				stale = make(map[*taskrun.TaskRun]bool)
			}
			stale[old] = true
			s.byID[r.ID] = r
			fresh = append(fresh, r)
			if pending == nil {
				pending = make(map[string]bool)
			}
			pending[r.ID] = true
		}
	}
	if len(fresh) == 0 {
		return
	}
	slices.SortFunc(fresh, compare)
	n := len(s.sorted)
	switch {
	case len(stale) == 0 && (n == 0 || compare(fresh[0], s.sorted[n-1]) > 0):
		// All newer than anything stored: the usual case.
		s.sorted = append(s.sorted, fresh...)
	case len(stale) == 0 && len(fresh) <= 8:
		for _, r := range fresh {
			i, _ := slices.BinarySearchFunc(s.sorted, r, compare)
			s.sorted = slices.Insert(s.sorted, i, r)
		}
	default:
		merged := make([]*taskrun.TaskRun, 0, n-len(stale)+len(fresh))
		i, j := 0, 0
		for i < n || j < len(fresh) {
			if i < n && stale[s.sorted[i]] {
				i++
				continue
			}
			if j == len(fresh) || (i < n && compare(s.sorted[i], fresh[j]) < 0) {
				merged = append(merged, s.sorted[i])
				i++
			} else {
				merged = append(merged, fresh[j])
				j++
			}
		}
		s.sorted = merged
	}
}

// Get returns a copy of the run with the given id, or an error matching
// [taskrun.ErrNotFound].
func (s *Store) Get(ctx context.Context, id string) (taskrun.TaskRun, error) {
	if err := ctx.Err(); err != nil {
		return taskrun.TaskRun{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return taskrun.TaskRun{}, ErrClosed
	}
	r, ok := s.byID[id]
	if !ok {
		return taskrun.TaskRun{}, fmt.Errorf("memstore: run %q: %w", id, taskrun.ErrNotFound)
	}
	return clone(r), nil
}

// Find returns copies of the runs matching q, newest first (by started_at,
// then by id, both descending), at most q.Limit of them. An invalid query
// (see [taskrun.Query.Normalize]) and a Before cursor naming an unknown run
// are errors.
func (s *Store) Find(ctx context.Context, q taskrun.Query) ([]taskrun.TaskRun, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q, err := q.Normalize()
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}

	// The runs to look at are sorted[lo:hi], walked from hi-1 down.
	hi := len(s.sorted)
	if q.Before != "" {
		c, ok := s.byID[q.Before]
		if !ok {
			return nil, fmt.Errorf("memstore: %w: unknown cursor %q: no run has this id", taskrun.ErrInvalidQuery, q.Before)
		}
		hi, _ = slices.BinarySearchFunc(s.sorted, c, compare)
	}
	if !q.Until.IsZero() {
		hi = sort.Search(hi, func(i int) bool { return !s.sorted[i].StartedAt.Before(q.Until) })
	}
	lo := 0
	if !q.Since.IsZero() {
		lo = sort.Search(hi, func(i int) bool { return !s.sorted[i].StartedAt.Before(q.Since) })
	}

	out := make([]taskrun.TaskRun, 0, min(q.Limit, hi-lo, 64))
	for i, seen := hi-1, 0; i >= lo && len(out) < q.Limit; i, seen = i-1, seen+1 {
		if seen%4096 == 4095 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if r := s.sorted[i]; q.Match(r) {
			out = append(out, clone(r))
		}
	}
	return out, nil
}

// Close marks the store closed: later calls of Write, Get and Find return
// [ErrClosed]. Closing twice is not an error. The runs stay readable through
// All and Len, so a test can inspect them after its cleanup ran.
func (s *Store) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// All returns copies of every stored run, newest first (the order of Find).
// It works after Close too.
func (s *Store) All() []taskrun.TaskRun {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]taskrun.TaskRun, len(s.sorted))
	for i, r := range s.sorted {
		out[len(s.sorted)-1-i] = clone(r)
	}
	return out
}

// Len returns the number of stored runs. It works after Close too.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byID)
}

// compare orders runs by ascending (started_at, id): the reverse of
// [taskrun.Newer].
func compare(a, b *taskrun.TaskRun) int {
	if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// stripMonotonic drops the monotonic clock readings of r's times so that
// every comparison the store makes uses the wall clock.
func stripMonotonic(r *taskrun.TaskRun) {
	r.CreatedAt = r.CreatedAt.Round(0)
	r.UpdatedAt = r.UpdatedAt.Round(0)
	r.StartedAt = r.StartedAt.Round(0)
	if r.FinishedAt != nil {
		*r.FinishedAt = r.FinishedAt.Round(0)
	}
	for i := range r.LogEntries {
		r.LogEntries[i].Time = r.LogEntries[i].Time.Round(0)
	}
}

// clone returns a deep copy of r: nothing of it shares memory with r. Nil
// slices and maps stay nil, empty ones stay empty.
func clone(r *taskrun.TaskRun) taskrun.TaskRun {
	c := *r
	c.Tags = slices.Clone(r.Tags)
	c.ResultRefs = slices.Clone(r.ResultRefs)
	c.ErrorList = slices.Clone(r.ErrorList)
	c.InputDump = slices.Clone(r.InputDump)
	c.OutputDump = slices.Clone(r.OutputDump)
	if r.FinishedAt != nil {
		f := *r.FinishedAt
		c.FinishedAt = &f
	}
	if r.LogEntries != nil {
		c.LogEntries = make([]taskrun.LogEntry, len(r.LogEntries))
		for i, e := range r.LogEntries {
			e.Attributes = cloneMap(e.Attributes)
			c.LogEntries[i] = e
		}
	}
	c.Metadata = cloneMap(r.Metadata)
	return c
}

func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = cloneValue(v)
	}
	return c
}

// cloneValue deep-copies the values attribute and metadata maps hold in
// practice: JSON-like maps and slices and the slice types of span
// attributes. Other values are copied as they are.
func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return cloneMap(v)
	case []any:
		if v == nil {
			return v
		}
		c := make([]any, len(v))
		for i, e := range v {
			c[i] = cloneValue(e)
		}
		return c
	case []string:
		return slices.Clone(v)
	case []bool:
		return slices.Clone(v)
	case []int:
		return slices.Clone(v)
	case []int64:
		return slices.Clone(v)
	case []float64:
		return slices.Clone(v)
	case []byte:
		return slices.Clone(v)
	case json.RawMessage:
		return slices.Clone(v)
	}
	return v
}

// LookupIdempotent implements otelop.IdempotencyLookup with
// [taskrun.LookupIdempotent].
func (s *Store) LookupIdempotent(ctx context.Context, operation, key string, since time.Time) (otelop.PriorRun, bool, error) {
	return taskrun.LookupIdempotent(ctx, s, operation, key, since)
}
