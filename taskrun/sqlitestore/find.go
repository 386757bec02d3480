package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/taskrun"
)

// Get returns the run with the given id, or an error matching
// [taskrun.ErrNotFound].
func (s *Store) Get(ctx context.Context, id string) (taskrun.TaskRun, error) {
	if err := s.usable(ctx); err != nil {
		return taskrun.TaskRun{}, err
	}
	var doc []byte
	err := s.get.QueryRowContext(ctx, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return taskrun.TaskRun{}, fmt.Errorf("sqlitestore: run %q: %w", id, taskrun.ErrNotFound)
	}
	if err != nil {
		return taskrun.TaskRun{}, s.fail(ctx, fmt.Sprintf("get run %q", id), err)
	}
	var r taskrun.TaskRun
	if err := json.Unmarshal(doc, &r); err != nil {
		return taskrun.TaskRun{}, fmt.Errorf("sqlitestore: get run %q: decoding the stored document: %w", id, err)
	}
	return r, nil
}

// Find returns the runs matching q, newest first (by started_at, then by
// id, both descending), at most q.Limit (100 when zero) of them. An invalid
// query (see [taskrun.Query.Normalize]) and a Before cursor naming an
// unknown run are errors matching [taskrun.ErrInvalidQuery].
//
// Every query walks one index newest first and stops at the limit: the
// index of result references when q.Ref is set, else the index of tags when
// q.Tag is set, else the index of taskruns that SQLite's planner finds best
// for the other fields (each ends with started_at, id). The other fields
// filter the rows of that walk.
func (s *Store) Find(ctx context.Context, q taskrun.Query) ([]taskrun.TaskRun, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	q, err := q.Normalize()
	if err != nil {
		return nil, err
	}
	query, args, err := s.findSQL(ctx, q)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.fail(ctx, "find", err)
	}
	defer rows.Close()
	var docs [][]byte
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, s.fail(ctx, "find", err)
		}
		docs = append(docs, doc)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, "find", err)
	}
	if err := rows.Close(); err != nil { // release the connection before decoding
		return nil, s.fail(ctx, "find", err)
	}
	out, err := decodeAll(docs)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: find: decoding a stored document: %w", err)
	}
	return out, nil
}

// docsPerDecoder is the least number of documents per goroutine of
// decodeAll. Decoding (json.Unmarshal, with its maps of interface values)
// is almost all of the time of a Find.
const docsPerDecoder = 8

// decodeAll decodes docs into runs, on up to GOMAXPROCS goroutines.
func decodeAll(docs [][]byte) ([]taskrun.TaskRun, error) {
	out := make([]taskrun.TaskRun, len(docs))
	workers := min(runtime.GOMAXPROCS(0), len(docs)/docsPerDecoder)
	if workers <= 1 {
		for i, d := range docs {
			if err := json.Unmarshal(d, &out[i]); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make([]error, workers)
	)
	for w := range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(docs) {
					return
				}
				if err := json.Unmarshal(docs[i], &out[i]); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// cursorPos is the sort position of the Before run.
type cursorPos struct {
	startedAt int64
	id        string
}

// buildFind translates q (normalised) into SQL with placeholders. The table
// that drives the query is taskrun_refs when q.Ref is set, taskrun_tags when
// q.Tag is set, taskruns otherwise: its (started_at, id) columns bound the
// time range and the cursor and give the order. CROSS JOIN keeps SQLite from
// reordering the join, which would make it sort.
func buildFind(q taskrun.Query, cursor *cursorPos) (string, []any) {
	var (
		b     strings.Builder
		where []string
		args  []any
	)
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	// at and id name the ordering columns of the driving table.
	at, id := "r.started_at", "r.id"
	b.WriteString("SELECT r.doc FROM ")
	switch {
	case q.Ref != nil:
		b.WriteString("taskrun_refs d CROSS JOIN taskruns r ON r.id = d.run_id")
		at, id = "d.started_at", "d.run_id"
		add("d.document_id = ?", q.Ref.DocumentID)
		add("d.collection = ?", q.Ref.Collection)
		if q.Tag != "" {
			add("EXISTS (SELECT 1 FROM taskrun_tags g WHERE g.tag = ? AND g.started_at = r.started_at AND g.run_id = r.id)", q.Tag)
		}
	case q.Tag != "":
		b.WriteString("taskrun_tags g CROSS JOIN taskruns r ON r.id = g.run_id")
		at, id = "g.started_at", "g.run_id"
		add("g.tag = ?", q.Tag)
	default:
		b.WriteString("taskruns r")
	}
	if q.Operation != "" {
		add("r.operation_name = ?", q.Operation)
	}
	if q.Status != "" {
		add("r.status = ?", q.Status)
	}
	if q.UserID != "" {
		add("r.user_id = ?", q.UserID)
	}
	if q.Channel != "" {
		add("r.channel = ?", q.Channel)
	}
	if q.FlowRunID != "" {
		// The literal term lets SQLite use the partial index.
		add("r.flow_run_id = ? AND r.flow_run_id <> ''", q.FlowRunID)
	}
	if q.TraceID != "" {
		add("r.trace_id = ?", q.TraceID)
	}
	if q.IdempotencyKey != "" {
		add("r.idempotency_key = ? AND r.idempotency_key <> ''", q.IdempotencyKey)
	}
	if q.Orchestrated != nil {
		v := 0
		if *q.Orchestrated {
			v = 1
		}
		add("r.orchestrated = ?", v)
	}
	if !q.Since.IsZero() {
		add(at+" >= ?", ceilMilli(q.Since))
	}
	if !q.Until.IsZero() {
		add(at+" < ?", ceilMilli(q.Until))
	}
	if cursor != nil {
		add("("+at+", "+id+") < (?, ?)", cursor.startedAt, cursor.id)
	}
	if len(where) > 0 {
		b.WriteString(" WHERE ")
		b.WriteString(strings.Join(where, " AND "))
	}
	fmt.Fprintf(&b, " ORDER BY %s DESC, %s DESC LIMIT ?", at, id)
	args = append(args, q.Limit)
	return b.String(), args
}

// findSQL returns the statement and arguments of a normalised query,
// looking up the position of its cursor.
func (s *Store) findSQL(ctx context.Context, q taskrun.Query) (string, []any, error) {
	var cursor *cursorPos
	if q.Before != "" {
		var at int64
		err := s.r.QueryRowContext(ctx, `SELECT started_at FROM taskruns WHERE id = ?`, q.Before).Scan(&at)
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil, fmt.Errorf("sqlitestore: %w: unknown cursor %q: no run has this id", taskrun.ErrInvalidQuery, q.Before)
		}
		if err != nil {
			return "", nil, s.fail(ctx, "find: reading the cursor", err)
		}
		cursor = &cursorPos{startedAt: at, id: q.Before}
	}
	query, args := buildFind(q, cursor)
	return query, args, nil
}

// LookupIdempotent implements otelop.IdempotencyLookup with
// [taskrun.LookupIdempotent].
func (s *Store) LookupIdempotent(ctx context.Context, operation, key string, since time.Time) (otelop.PriorRun, bool, error) {
	return taskrun.LookupIdempotent(ctx, s, operation, key, since)
}
