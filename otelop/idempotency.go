package otelop

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// IdempotencyLookup finds the recorded result of an earlier call that
// carried the same idempotency key. Every taskrun store implements it
// (taskrun.IdempotencyLookup adapts any taskrun.Reader).
type IdempotencyLookup interface {
	// LookupIdempotent returns the newest successful run of operation with
	// key that started at or after since, and its recorded output; ok is
	// false when there is none. An error means the answer is unknown.
	LookupIdempotent(ctx context.Context, operation, key string, since time.Time) (prior PriorRun, ok bool, err error)
}

// PriorRun is the recorded result of an earlier call.
type PriorRun struct {
	// TaskRunID is the run that really ran: the original, also when the
	// newest matching run was itself deduplicated.
	TaskRunID string
	// Output is the recorded output (TaskRun.output_dump), redacted and
	// limited like the input.
	Output json.RawMessage
	// StartedAt is when that run started; the window counts from it.
	StartedAt time.Time
}

// WithIdempotency makes calls that carry an IdempotencyKey (in their
// [Request]) run at most once per (operation, key) within window: a repeat
// does not call the function and returns the first successful call's
// recorded output, decoded into Out, with its own TaskRun (SUCCESS,
// metadata.deduplicated_from naming the run that ran). Such calls record
// their output on the span and in TaskRun.output_dump.
//
// In one process, concurrent calls with the same key wait for the first,
// and a repeat within window is answered from memory. Across processes, a
// repeat that starts after the first run's TaskRun is written is answered
// by lookup (normally a taskrun store). When lookup fails the call fails
// (error_type "idempotency_unavailable") rather than risk running twice. A
// failed call is not remembered: the next call with its key runs. Because
// the output is recorded redacted, a repeat of an operation whose output
// holds secrets gets "[REDACTED]" in their place.
func WithIdempotency(lookup IdempotencyLookup, window time.Duration) Option {
	return optionFunc(func(c *config) { c.idemLookup, c.idemWindow = lookup, window })
}

// maxRemembered bounds the successful keys one operation keeps in memory.
const maxRemembered = 10000

// idempotency is an operation's in-process deduplication state.
type idempotency struct {
	lookup IdempotencyLookup
	window time.Duration

	mu      sync.Mutex
	flights map[string]*flight
	recent  map[string]recorded
}

type recorded struct {
	taskRunID string
	output    json.RawMessage
	at        time.Time
}

// flight is a call in progress for a key; done closes when it ends, ok
// telling whether it succeeded with result.
type flight struct {
	done   chan struct{}
	ok     bool
	result recorded
}

func newIdempotency(lookup IdempotencyLookup, window time.Duration) *idempotency {
	if lookup == nil || window <= 0 {
		return nil
	}
	return &idempotency{lookup: lookup, window: window, flights: map[string]*flight{}, recent: map[string]recorded{}}
}

type idempotencyError struct {
	op  string
	err error
}

func (e *idempotencyError) Error() string {
	return fmt.Sprintf("otelop: %s: idempotency lookup failed, the call did not run: %v", e.op, e.err)
}
func (e *idempotencyError) Unwrap() error     { return e.err }
func (e *idempotencyError) ErrorType() string { return "idempotency_unavailable" }

// prior returns the recorded result for key, waiting for a call in progress
// with that key, or, when there is none, makes this call the one in
// progress: then found is false and finish must be called with the
// outcome.
func (s *idempotency) prior(ctx context.Context, op, key string) (rec recorded, found bool, finish func(ok bool, rec recorded), err error) {
	for {
		s.mu.Lock()
		if r, ok := s.recent[key]; ok && time.Since(r.at) < s.window {
			s.mu.Unlock()
			return r, true, nil, nil
		}
		if f, ok := s.flights[key]; ok {
			s.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return recorded{}, false, nil, ctx.Err()
			}
			if f.ok {
				return f.result, true, nil, nil
			}
			continue // the first call failed: this one may run
		}
		f := &flight{done: make(chan struct{})}
		s.flights[key] = f
		s.mu.Unlock()
		finish = func(ok bool, rec recorded) {
			s.mu.Lock()
			delete(s.flights, key)
			if ok {
				s.remember(key, rec)
			}
			s.mu.Unlock()
			f.ok, f.result = ok, rec
			close(f.done)
		}
		p, ok, err := s.lookup.LookupIdempotent(ctx, op, key, time.Now().Add(-s.window))
		if err != nil {
			finish(false, recorded{})
			return recorded{}, false, nil, &idempotencyError{op: op, err: err}
		}
		if ok {
			at := p.StartedAt
			if at.IsZero() {
				at = time.Now()
			}
			rec := recorded{taskRunID: p.TaskRunID, output: p.Output, at: at}
			finish(true, rec)
			return rec, true, nil, nil
		}
		return recorded{}, false, finish, nil
	}
}

// remember keeps a success for window; s.mu is held.
func (s *idempotency) remember(key string, rec recorded) {
	if len(s.recent) >= maxRemembered {
		for k, r := range s.recent {
			if time.Since(r.at) >= s.window {
				delete(s.recent, k)
			}
		}
		for k := range s.recent {
			if len(s.recent) < maxRemembered {
				break
			}
			delete(s.recent, k)
		}
	}
	s.recent[key] = rec
}

// callIdempotent runs fn for a call with an idempotency key, unless an
// earlier call with the key answers it. It returns the output, its
// recorded JSON, and the id of the run that really ran when that was not
// this call.
func (o *Op[In, Out]) callIdempotent(ctx context.Context, in In, key, id string, start time.Time) (out Out, output, from string, err error) {
	rec, found, finish, err := o.idem.prior(ctx, o.spec.Name, key)
	if err != nil {
		return out, "", "", err
	}
	if found {
		if len(rec.output) == 0 {
			return out, "", "", fmt.Errorf("otelop: %s: run %s with idempotency key %q succeeded but has no recorded output to return", o.spec.Name, rec.taskRunID, key)
		}
		if err := json.Unmarshal(rec.output, &out); err != nil {
			return out, "", "", fmt.Errorf("otelop: %s: the recorded output of run %s (idempotency key %q) does not decode: %w", o.spec.Name, rec.taskRunID, key, err)
		}
		return out, string(rec.output), rec.taskRunID, nil
	}
	done := false
	defer func() {
		if !done { // an error or a panic: the next call with the key runs
			finish(false, recorded{})
		}
	}()
	out, err = o.fn(ctx, in)
	if err != nil {
		return out, "", "", err
	}
	output = o.recordedOutput(&out)
	done = true
	finish(true, recorded{taskRunID: id, output: json.RawMessage(output), at: start})
	return out, output, "", nil
}

// recordedOutput is the output as recorded on the span: JSON, redacted and
// limited like the input.
func (o *Op[In, Out]) recordedOutput(out *Out) string {
	s := marshalInput(out)
	if keys := redactConf.Load(); o.outRedact.scan(keys) {
		s, _ = redactJSON(s, o.outRedact, keys)
	}
	if len(s) > o.maxInput {
		s = truncateJSON(s, o.maxInput)
	}
	return s
}
