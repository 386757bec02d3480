package memstore

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sort"
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
//
// A Store holds each run encoded in a byte slice without pointers, with
// pointer-free index data beside it, rather than as a taskrun.TaskRun: see
// the package documentation for why.
type Store struct {
	mu     sync.RWMutex
	closed bool
	// ids maps the hash of a run id to the index in runs of the run, or
	// of another run with the same hash, whereupon collided has the id.
	ids      map[uint64]int32
	collided map[string]int32
	hash     func(string) uint64 // hashes ids, and the keyed fields of runs for their fingerprints
	runs     []run
	// sorted holds the indexes of runs in ascending (started_at, id)
	// order: oldest first, so that new runs append. Find walks it
	// backwards.
	sorted []int32
	arena  arena           // the records of runs, and the ones writes replaced
	live   int             // bytes of the arena taken by the records of runs
	extra  map[int32][]any // the values the record of runs[i] keeps as they are, for the runs that have any
}

// run is a stored run.
type run struct {
	at ref // the record
	// started_at in Unix seconds and nanoseconds, for sorting without
	// decoding
	sec  int64
	nsec int32
	// fingerprints of the fields of keyed, for filter
	keys         [7]uint16
	orchestrated bool
	final        bool
	extra        bool // the record refers to values in Store.extra
}

// New returns an empty Store.
func New() *Store {
	seed := maphash.MakeSeed()
	return &Store{
		ids:   make(map[uint64]int32),
		hash:  func(id string) uint64 { return maphash.String(seed, id) },
		arena: newArena(),
	}
}

// CopiesRuns returns s: Store is a [taskrun.CopyingWriter], whose Write
// keeps nothing of the runs it is given once it returns.
func (s *Store) CopiesRuns() taskrun.Writer { return s }

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
	// Encode outside the lock: it is most of the work of a write. The
	// records go one after the other in e.buf; batch[i].at locates the
	// record of runs[i] there until apply copies it to the arena.
	e := encoders.Get().(*encoder)
	defer e.release()
	batch := make([]run, len(runs))
	var extras [][]any
	for i := range runs {
		r := &runs[i]
		start := len(e.buf)
		var extra []any
		e.buf, extra = e.encode(e.buf, r)
		batch[i] = run{
			at:  ref{off: uint32(start), len: uint32(len(e.buf) - start)},
			sec: r.StartedAt.Unix(), nsec: int32(r.StartedAt.Nanosecond()),
			orchestrated: r.Orchestrated, final: r.Status.Final(), extra: extra != nil,
		}
		for j, v := range keyed(r) {
			batch[i].keys[j] = s.fingerprint(v)
		}
		if extra != nil {
			if extras == nil {
				extras = make([][]any, len(runs))
			}
			extras[i] = extra
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.apply(runs, e.buf, batch, extras)
	return nil
}

// apply stores batch, the runs encoded in buf with their extras (nil when
// none of them has any); s.mu must be held for writing.
func (s *Store) apply(runs []taskrun.TaskRun, buf []byte, batch []run, extras [][]any) {
	var (
		first = int32(len(s.runs)) // runs from here on are new, not in sorted yet
		fresh []int32              // runs to add to sorted
		moved map[int32]run        // new states of stored runs whose started_at changed
	)
	for i := range batch {
		r := batch[i]
		id := runs[i].ID
		h := s.hash(id)
		k, ok, taken := s.lookup(id, h)
		var old run
		pending := false
		if ok {
			if old, pending = moved[k]; !pending {
				old = s.runs[k]
			}
			if old.final && !r.final {
				continue // a final state is never undone
			}
			s.live -= int(old.at.len)
		}
		r.at = s.arena.add(buf[r.at.off : r.at.off+r.at.len])
		s.live += int(r.at.len)
		if !ok {
			k = int32(len(s.runs))
			if taken {
				if s.collided == nil {
					s.collided = make(map[string]int32)
				}
				s.collided[id] = k
			} else {
				s.ids[h] = k
			}
			s.runs = append(s.runs, r)
			fresh = append(fresh, k)
		} else {
			switch {
			case pending:
				moved[k] = r
			case k >= first || (old.sec == r.sec && old.nsec == r.nsec):
				// Same position in sorted (or not in it yet): replace in place.
				s.runs[k] = r
			default:
				// started_at changed: the run moves.
				if moved == nil {
					moved = make(map[int32]run)
				}
				moved[k] = r
				fresh = append(fresh, k)
			}
		}
		switch {
		case r.extra:
			if s.extra == nil {
				s.extra = make(map[int32][]any)
			}
			s.extra[k] = extras[i]
		case old.extra:
			delete(s.extra, k)
		}
	}
	if len(fresh) > 0 {
		s.insert(fresh, moved)
	}
	if waste := s.arena.used - s.live; waste > max(s.live, maxChunk) {
		s.compact()
	}
}

// insert puts the runs of fresh into sorted: new runs, and the runs of moved,
// whose new states it stores.
func (s *Store) insert(fresh []int32, moved map[int32]run) {
	// lo is the first position of sorted that changes.
	lo := len(s.sorted)
	if len(moved) > 0 {
		// Take the runs that move out of sorted, where the stored
		// started_at still places them, and only then give them the new.
		for k := range moved {
			lo = min(lo, s.search(s.sorted, k))
		}
		kept := s.sorted[:lo]
		for _, k := range s.sorted[lo:] {
			if _, ok := moved[k]; !ok {
				kept = append(kept, k)
			}
		}
		s.sorted = kept
		for k, r := range moved {
			s.runs[k] = r
		}
		lo = min(lo, len(s.sorted))
	}
	slices.SortFunc(fresh, s.compare)
	if n := len(s.sorted); n > 0 && s.compare(fresh[0], s.sorted[n-1]) < 0 {
		// Some runs are older than the newest stored: merge them into
		// the tail they fall in, usually short.
		lo = min(lo, s.search(s.sorted[:lo], fresh[0]))
	} else {
		lo = min(lo, n)
	}
	tail := slices.Clone(s.sorted[lo:])
	s.sorted = s.sorted[:lo]
	i, j := 0, 0
	for i < len(tail) || j < len(fresh) {
		if j == len(fresh) || (i < len(tail) && s.compare(tail[i], fresh[j]) < 0) {
			s.sorted = append(s.sorted, tail[i])
			i++
		} else {
			s.sorted = append(s.sorted, fresh[j])
			j++
		}
	}
}

// compact copies the records of runs to a new arena, leaving behind the ones
// writes replaced.
func (s *Store) compact() {
	a := newArena()
	for i := range s.runs {
		r := &s.runs[i]
		r.at = a.add(s.arena.get(r.at))
	}
	s.arena = a
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
	k, ok, _ := s.lookup(id, s.hash(id))
	if !ok {
		return taskrun.TaskRun{}, fmt.Errorf("memstore: run %q: %w", id, taskrun.ErrNotFound)
	}
	return s.decode(k), nil
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
		c, ok, _ := s.lookup(q.Before, s.hash(q.Before))
		if !ok {
			return nil, fmt.Errorf("memstore: %w: unknown cursor %q: no run has this id", taskrun.ErrInvalidQuery, q.Before)
		}
		hi = s.search(s.sorted, c)
	}
	if !q.Until.IsZero() {
		hi = s.searchTime(hi, q.Until)
	}
	lo := 0
	if !q.Since.IsZero() {
		lo = s.searchTime(hi, q.Since)
	}

	f := s.newFilter(q)
	out := make([]taskrun.TaskRun, 0, min(q.Limit, hi-lo, 64))
	for i, seen := hi-1, 0; i >= lo && len(out) < q.Limit; i, seen = i-1, seen+1 {
		if seen%4096 == 4095 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		k := s.sorted[i]
		r := &s.runs[k]
		if !f.match(r, &s.arena) {
			continue
		}
		if d := s.decode(k); q.Match(&d) {
			out = append(out, d)
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
	for i, k := range s.sorted {
		out[len(s.sorted)-1-i] = s.decode(k)
	}
	return out
}

// Len returns the number of stored runs. It works after Close too.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.runs)
}

// fingerprint returns a hash of v, for filter.
func (s *Store) fingerprint(v string) uint16 { return uint16(s.hash(v)) }

// lookup returns the index in runs of the run with the given id and hash h,
// and whether another id has the hash.
func (s *Store) lookup(id string, h uint64) (k int32, found, taken bool) {
	k, found = s.ids[h]
	if !found {
		return 0, false, false
	}
	if string(recordID(s.arena.get(s.runs[k].at))) == id {
		return k, true, false
	}
	k, found = s.collided[id]
	return k, found, true
}

func (s *Store) decode(k int32) taskrun.TaskRun {
	r := &s.runs[k]
	var extra []any
	if r.extra {
		extra = s.extra[k]
	}
	return decode(s.arena.get(r.at), extra)
}

// compare orders the runs of indexes a and b by ascending (started_at, id):
// the reverse of [taskrun.Newer].
func (s *Store) compare(a, b int32) int {
	x, y := &s.runs[a], &s.runs[b]
	if c := cmp.Compare(x.sec, y.sec); c != 0 {
		return c
	}
	if c := cmp.Compare(x.nsec, y.nsec); c != 0 {
		return c
	}
	return bytes.Compare(recordID(s.arena.get(x.at)), recordID(s.arena.get(y.at)))
}

// search returns the position in sorted (ascending, as s.sorted) of the
// first run that does not sort before run k.
func (s *Store) search(sorted []int32, k int32) int {
	i, _ := slices.BinarySearchFunc(sorted, k, s.compare)
	return i
}

// searchTime returns the position in s.sorted[:hi] of the first run that
// did not start before t.
func (s *Store) searchTime(hi int, t time.Time) int {
	sec, nsec := t.Unix(), int32(t.Nanosecond())
	return sort.Search(hi, func(i int) bool {
		r := &s.runs[s.sorted[i]]
		return r.sec > sec || (r.sec == sec && r.nsec >= nsec)
	})
}

// LookupIdempotent implements otelop.IdempotencyLookup with
// [taskrun.LookupIdempotent].
func (s *Store) LookupIdempotent(ctx context.Context, operation, key string, since time.Time) (otelop.PriorRun, bool, error) {
	return taskrun.LookupIdempotent(ctx, s, operation, key, since)
}
