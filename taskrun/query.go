package taskrun

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/otelop/otelop/otelop"
)

// ErrInvalidQuery is matched (errors.Is) by every error a store returns for
// a malformed Query: a bad status, limit or time range, an incomplete ref,
// or a cursor naming an unknown run.
var ErrInvalidQuery = errors.New("taskrun: invalid query")

// DefaultLimit is the number of runs Find returns when Query.Limit is zero.
const DefaultLimit = 100

// MaxLimit is the largest Query.Limit a store accepts.
const MaxLimit = 10000

// Query selects TaskRuns. Every set field must match (AND); the zero Query
// matches every run.
type Query struct {
	Operation      string // operation_name
	Status         string // status; case-insensitive
	UserID         string // actor.user_id
	Channel        string // actor.channel
	FlowRunID      string // orchestrator_flow_run_id
	TraceID        string // trace_id
	IdempotencyKey string // idempotency_key
	Tag            string // one of tags
	Orchestrated   *bool
	Ref            *otelop.Ref // one of result_refs, both fields equal
	Since, Until   time.Time   // since <= started_at < until
	Limit          int         // default 100, at most MaxLimit
	// Before is a cursor: the id of the last run of the previous page. The
	// page holds the runs that sort after it (older, or as old with a
	// smaller id). An id the store does not know is an error.
	Before string
}

// Normalize validates q and returns it with its defaults applied: Limit set,
// Status upper-cased.
func (q Query) Normalize() (Query, error) {
	var errs []error
	if q.Status != "" {
		st, err := ParseStatus(q.Status)
		if err != nil {
			errs = append(errs, fmt.Errorf("unknown status %q (want PENDING, RUNNING, SUCCESS or FAILED)", q.Status))
		}
		q.Status = string(st)
	}
	switch {
	case q.Limit < 0:
		errs = append(errs, fmt.Errorf("limit %d is negative", q.Limit))
	case q.Limit == 0:
		q.Limit = DefaultLimit
	case q.Limit > MaxLimit:
		errs = append(errs, fmt.Errorf("limit %d is above the maximum %d", q.Limit, MaxLimit))
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		errs = append(errs, fmt.Errorf("since %s is not before until %s", q.Since.Format(time.RFC3339), q.Until.Format(time.RFC3339)))
	}
	if q.Ref != nil && (q.Ref.Collection == "" || q.Ref.DocumentID == "") {
		errs = append(errs, errors.New("ref needs both a collection and a document id"))
	}
	if len(errs) > 0 {
		return q, fmt.Errorf("%w: %w", ErrInvalidQuery, errors.Join(errs...))
	}
	return q, nil
}

// Match reports whether r matches every field of q except Limit and Before.
// Stores that filter in memory use it; q must be normalised.
func (q Query) Match(r *TaskRun) bool {
	switch {
	case q.Operation != "" && r.OperationName != q.Operation,
		q.Status != "" && string(r.Status) != q.Status,
		q.UserID != "" && r.Actor.UserID != q.UserID,
		q.Channel != "" && r.Actor.Channel != q.Channel,
		q.FlowRunID != "" && r.OrchestratorFlowRunID != q.FlowRunID,
		q.TraceID != "" && r.TraceID != q.TraceID,
		q.IdempotencyKey != "" && r.IdempotencyKey != q.IdempotencyKey,
		q.Tag != "" && !slices.Contains(r.Tags, q.Tag),
		q.Orchestrated != nil && r.Orchestrated != *q.Orchestrated,
		q.Ref != nil && !slices.Contains(r.ResultRefs, *q.Ref),
		!q.Since.IsZero() && r.StartedAt.Before(q.Since),
		!q.Until.IsZero() && !r.StartedAt.Before(q.Until):
		return false
	}
	return true
}

// Newer reports whether a sorts before b in Find's order: newer started_at
// first, then larger id.
func Newer(a, b *TaskRun) bool {
	if !a.StartedAt.Equal(b.StartedAt) {
		return a.StartedAt.After(b.StartedAt)
	}
	return a.ID > b.ID
}
