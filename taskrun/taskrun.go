package taskrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/otelop/otelop/otelop"
)

// Status is the state of a TaskRun.
type Status string

// The states of a TaskRun. PENDING is reserved for runs recorded before they
// start; the processor writes RUNNING, then SUCCESS or FAILED.
const (
	StatusPending Status = "PENDING"
	StatusRunning Status = "RUNNING"
	StatusSuccess Status = "SUCCESS"
	StatusFailed  Status = "FAILED"
)

// Final reports whether s is SUCCESS or FAILED: a state that a later
// RUNNING or PENDING write must never replace.
func (s Status) Final() bool { return s == StatusSuccess || s == StatusFailed }

// Valid reports whether s is one of the four states.
func (s Status) Valid() bool {
	switch s {
	case StatusPending, StatusRunning, StatusSuccess, StatusFailed:
		return true
	}
	return false
}

// ParseStatus accepts a status in any letter case.
func ParseStatus(s string) (Status, error) {
	st := Status(upper(s))
	if !st.Valid() {
		return "", fmt.Errorf("taskrun: unknown status %q (want PENDING, RUNNING, SUCCESS or FAILED)", s)
	}
	return st, nil
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// Actor is who ran an operation and through which channel.
type Actor struct {
	UserID  string `json:"user_id" bson:"user_id"`
	Channel string `json:"channel" bson:"channel"`
}

// LogEntry is one log record of an operation call.
type LogEntry struct {
	Time       time.Time      `json:"time" bson:"time"`
	Level      string         `json:"level" bson:"level"`
	Message    string         `json:"message" bson:"message"`
	Attributes map[string]any `json:"attributes,omitempty" bson:"attributes,omitempty"`
}

// TaskRun is the audit record of one operation call. Its JSON form (and the
// BSON form in MongoDB) uses the snake_case names below, with id stored as
// _id (and idempotency_key left out of BSON when empty, for the sparse
// index). Times are UTC with millisecond precision, the precision MongoDB
// keeps; duration_ms keeps microseconds.
type TaskRun struct {
	ID             string    `json:"id" bson:"_id"`
	OperationName  string    `json:"operation_name" bson:"operation_name"`
	Category       string    `json:"category" bson:"category"`
	Stage          string    `json:"stage" bson:"stage"`
	Tags           []string  `json:"tags" bson:"tags"`
	IdempotencyKey string    `json:"idempotency_key" bson:"idempotency_key,omitempty"`
	Actor          Actor     `json:"actor" bson:"actor"`
	Status         Status    `json:"status" bson:"status"`
	CreatedAt      time.Time `json:"created_at" bson:"created_at"`
	UpdatedAt      time.Time `json:"updated_at" bson:"updated_at"`
	StartedAt      time.Time `json:"started_at" bson:"started_at"`
	// FinishedAt is nil while the run is not final.
	FinishedAt *time.Time `json:"finished_at" bson:"finished_at"`
	// DurationMS is the run's wall time in milliseconds, 0 while running.
	DurationMS float64 `json:"duration_ms" bson:"duration_ms"`

	Orchestrated          bool   `json:"orchestrated" bson:"orchestrated"`
	Orchestrator          string `json:"orchestrator" bson:"orchestrator"`
	OrchestratorFlowRunID string `json:"orchestrator_flow_run_id" bson:"orchestrator_flow_run_id"`
	OrchestratorTaskRunID string `json:"orchestrator_task_run_id" bson:"orchestrator_task_run_id"`

	// InputDump is the operation's input as a JSON object. Input that is not
	// a JSON object is stored as {"value": input}; input that could not be
	// serialised as {"error": "Failed to serialize input"}.
	InputDump json.RawMessage `json:"input_dump" bson:"input_dump"`
	// OutputDump is the output as JSON (redacted like the input), recorded
	// for calls with an idempotency key under otelop.WithIdempotency; absent
	// otherwise.
	OutputDump     json.RawMessage    `json:"output_dump,omitempty" bson:"output_dump,omitempty"`
	ResultRefs     []otelop.Ref       `json:"result_refs" bson:"result_refs"`
	ErrorList      []otelop.ItemError `json:"error_list" bson:"error_list"`
	ErrorMessage   string             `json:"error_message" bson:"error_message"`
	ErrorType      string             `json:"error_type" bson:"error_type"`
	ErrorTraceback string             `json:"error_traceback" bson:"error_traceback"`
	LogsRef        string             `json:"logs_ref" bson:"logs_ref"`
	LogEntries     []LogEntry         `json:"log_entries" bson:"log_entries"`
	// Metadata holds dry_run, test_mode, verbose, execution_time (seconds,
	// once final) and any otelop.metadata.* span attributes.
	Metadata map[string]any `json:"metadata" bson:"metadata"`

	TraceID      string `json:"trace_id" bson:"trace_id"`
	SpanID       string `json:"span_id" bson:"span_id"`
	ParentSpanID string `json:"parent_span_id" bson:"parent_span_id"`
	ServiceName  string `json:"service_name" bson:"service_name"`
}

// ErrNotFound is returned by [Reader.Get] for an unknown id.
var ErrNotFound = errors.New("taskrun: not found")

// ErrRejected is matched by a Write error when a run of the batch can never
// be stored as it is (an empty id, input that does not encode, a document
// the store refuses), as opposed to a store that is unavailable for now.
// The Processor then isolates the rejected runs, counts them as failed and
// writes the rest, instead of retrying the batch forever.
var ErrRejected = errors.New("taskrun: run rejected by the store")

// Writer persists TaskRuns.
//
// Write upserts every run by ID and is idempotent: writing the same run
// twice leaves one document. A run whose stored status is final (SUCCESS or
// FAILED) is never replaced by a non-final one; a final run replaces
// whatever is stored. Write may be called concurrently; it honours ctx and
// returns an error when any run was not stored, in which case the caller
// writes the whole batch again. An error for a run that can never be stored
// matches [ErrRejected].
type Writer interface {
	Write(ctx context.Context, runs []TaskRun) error
}

// A CopyingWriter is a Writer that keeps nothing it is given: once Write
// returns, it holds no reference to the runs, nor to the maps, slices,
// strings and pointers inside them. The Processor reuses that memory for
// its next batches, which spares the collector most of the allocations of
// a run. memstore, sqlitestore and mongostore are CopyingWriters.
type CopyingWriter interface {
	Writer
	// CopiesRuns returns the Writer whose Write copies: the receiver
	// itself. The Processor reuses memory only when it gets back the
	// Writer it was given, so that a type embedding a CopyingWriter with
	// a Write of its own (which may keep runs) is not taken for one.
	CopiesRuns() Writer
}

// copies reports whether w is a CopyingWriter.
func copies(w Writer) (ok bool) {
	cw, ok := w.(CopyingWriter)
	if !ok {
		return false
	}
	defer func() {
		if recover() != nil {
			ok = false // a Writer whose type cannot be compared
		}
	}()
	return cw.CopiesRuns() == w
}

// Reader queries TaskRuns.
type Reader interface {
	// Get returns the run with the given id, or an error matching ErrNotFound.
	Get(ctx context.Context, id string) (TaskRun, error)
	// Find returns the runs matching q, newest first (by started_at, then by
	// id, both descending), at most q.Limit (100 when zero) of them.
	Find(ctx context.Context, q Query) ([]TaskRun, error)
}

// Store is a Writer and a Reader that owns a connection or file.
type Store interface {
	Writer
	Reader
	// Close releases the store. Calls after Close fail.
	Close(ctx context.Context) error
}
