package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/taskrun"
)

// upsertSQL writes one run. A stored final run (SUCCESS or FAILED) is never
// replaced by a non-final one: the DO UPDATE does not happen then, no row
// changes, and Write leaves the side tables of the run alone.
const upsertSQL = `INSERT INTO taskruns (
	id, operation_name, status, user_id, channel, flow_run_id, trace_id,
	idempotency_key, orchestrated, started_at, tags, refs, doc
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
	operation_name  = excluded.operation_name,
	status          = excluded.status,
	user_id         = excluded.user_id,
	channel         = excluded.channel,
	flow_run_id     = excluded.flow_run_id,
	trace_id        = excluded.trace_id,
	idempotency_key = excluded.idempotency_key,
	orchestrated    = excluded.orchestrated,
	started_at      = excluded.started_at,
	tags            = excluded.tags,
	refs            = excluded.refs,
	doc             = excluded.doc
WHERE NOT (taskruns.status IN ('SUCCESS', 'FAILED') AND excluded.status NOT IN ('SUCCESS', 'FAILED'))`

// updateSQL writes a run over a stored one whose indexed columns other
// than status are the same: the usual second write of a run, from RUNNING to
// SUCCESS or FAILED. It leaves the indexes that do not hold status alone,
// where the upsert's DO UPDATE rewrites all of them. The same rule keeps a
// stored final run.
const updateSQL = `UPDATE taskruns SET status = ?1, tags = ?2, refs = ?3, doc = ?4
WHERE id = ?5 AND NOT (status IN ('SUCCESS', 'FAILED') AND ?1 NOT IN ('SUCCESS', 'FAILED'))`

// storedSQL reads what Write needs to know of the stored runs of a batch,
// whose ids ?1 holds as a JSON array.
const storedSQL = `SELECT id, operation_name, user_id, channel, flow_run_id, trace_id,
	idempotency_key, orchestrated, started_at, tags, refs
FROM taskruns WHERE id IN (SELECT value FROM json_each(?1))`

// row is a run encoded for upsertSQL and updateSQL, with the rows it needs
// in the side tables.
type row struct {
	id, status              string
	keys                    keys
	sides                   sides
	tagsJSON, refsJSON, doc string
}

func (r *row) upsertArgs() []any {
	k := &r.keys
	return []any{r.id, k.op, r.status, k.user, k.channel, k.flow, k.trace, k.idem, k.orchestrated, r.sides.startedAt, r.tagsJSON, r.refsJSON, r.doc}
}

func (r *row) updateArgs() []any {
	return []any{r.status, r.tagsJSON, r.refsJSON, r.doc, r.id}
}

// keys are the indexed columns of a run other than status and started_at.
type keys struct {
	op, user, channel, flow, trace, idem string
	orchestrated                         int64
}

// sides is what the side tables hold of one run: its distinct tags and refs,
// at its started_at.
type sides struct {
	startedAt int64
	tags      []string
	refs      []otelop.Ref
}

// stored is what Write knows of a stored run.
type stored struct {
	keys  keys
	sides sides
}

// Write upserts runs by ID in one transaction: all of them are stored, or
// none. A stored final run (SUCCESS or FAILED) is never replaced by a
// non-final one; a final run replaces whatever is stored; a non-final run
// replaces a non-final one. Runs are written in order, so a batch that
// holds an id twice ends as if its runs had been written one by one. Times
// are stored in UTC, truncated to the millisecond.
//
// Write returns ctx.Err() when ctx is done before it starts, an error
// naming the position of any run with an empty ID (and then writes nothing
// of the batch), [ErrReadOnly] on a read-only store and [ErrClosed] after
// Close. Concurrent calls queue for the one writer connection; a call
// waiting there gives up when ctx is done.
func (s *Store) Write(ctx context.Context, runs []taskrun.TaskRun) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	if s.readOnly {
		return ErrReadOnly
	}
	for i := range runs {
		if runs[i].ID == "" {
			return fmt.Errorf("sqlitestore: %w: run %d of %d (operation %q) has an empty id; nothing of the batch was written", taskrun.ErrRejected, i, len(runs), runs[i].OperationName)
		}
	}
	if len(runs) == 0 {
		return nil
	}
	// Runs are encoded (mostly json.Marshal) on another goroutine while
	// this one writes them: encoding takes about a quarter of the time of
	// writing a run, so it is hidden on a machine with a second core.
	enc := startEncoder(runs)
	defer enc.stop()

	tx, err := s.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE
	if err != nil {
		return s.fail(ctx, "write", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op

	// The runs of the batch stored before it, read under the write lock:
	// the writes below see the same rows.
	before, err := s.storedRuns(ctx, tx, runs)
	if err != nil {
		return s.fail(ctx, "write: reading the stored runs", err)
	}
	after := make(map[string]*stored, len(runs))
	var written []string // ids whose run was written, in first-write order
	var upsert, update *sql.Stmt
	for i := range runs {
		r, err := enc.row(i)
		if err != nil {
			return fmt.Errorf("sqlitestore: %w: run %d of %d (id %q): %w; nothing of the batch was written", taskrun.ErrRejected, i, len(runs), runs[i].ID, err)
		}
		cur := after[r.id]
		if cur == nil {
			cur = before[r.id]
		}
		var res sql.Result
		if cur != nil && cur.keys == r.keys && cur.sides.startedAt == r.sides.startedAt {
			if update == nil {
				update = tx.StmtContext(ctx, s.update)
			}
			res, err = update.ExecContext(ctx, r.updateArgs()...)
		} else {
			if upsert == nil {
				upsert = tx.StmtContext(ctx, s.upsert)
			}
			res, err = upsert.ExecContext(ctx, r.upsertArgs()...)
		}
		if err != nil {
			return s.fail(ctx, fmt.Sprintf("write run %q", r.id), err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return s.fail(ctx, fmt.Sprintf("write run %q", r.id), err)
		} else if n == 0 {
			continue // a final run is stored: kept
		}
		if after[r.id] == nil {
			written = append(written, r.id)
		}
		after[r.id] = &stored{keys: r.keys, sides: r.sides}
	}
	if err := s.syncSides(ctx, tx, written, before, after); err != nil {
		return s.fail(ctx, "write: side tables", err)
	}
	if err := tx.Commit(); err != nil {
		return s.fail(ctx, "write: commit", err)
	}
	s.ckpt.kick()
	return nil
}

// storedRuns returns what is stored of the runs of the batch.
func (s *Store) storedRuns(ctx context.Context, tx *sql.Tx, runs []taskrun.TaskRun) (map[string]*stored, error) {
	ids := make([]string, len(runs))
	for i := range runs {
		ids[i] = runs[i].ID
	}
	rows, err := tx.StmtContext(ctx, s.stored).QueryContext(ctx, encodeTags(ids))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]*stored)
	for rows.Next() {
		var (
			id         string
			st         stored
			k          = &st.keys
			tags, refs []byte
		)
		if err := rows.Scan(&id, &k.op, &k.user, &k.channel, &k.flow, &k.trace, &k.idem, &k.orchestrated, &st.sides.startedAt, &tags, &refs); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(tags, &st.sides.tags); err != nil {
			return nil, fmt.Errorf("run %q: tags column: %w", id, err)
		}
		var pairs [][2]string
		if err := json.Unmarshal(refs, &pairs); err != nil {
			return nil, fmt.Errorf("run %q: refs column: %w", id, err)
		}
		for _, p := range pairs {
			st.sides.refs = append(st.sides.refs, otelop.Ref{Collection: p[0], DocumentID: p[1]})
		}
		out[id] = &st
	}
	return out, rows.Err()
}

// syncSides brings the side tables from before to after for the written
// runs: it deletes the rows a run no longer has and inserts the new ones, in
// bulk.
func (s *Store) syncSides(ctx context.Context, tx *sql.Tx, written []string, before, after map[string]*stored) error {
	var tagIns, refIns, tagDel, refDel []any
	for _, id := range written {
		var b *sides
		if st := before[id]; st != nil {
			b = &st.sides
		} else {
			b = &sides{}
		}
		a := &after[id].sides
		moved := b.startedAt != a.startedAt
		for _, t := range minus(b.tags, a.tags, moved) {
			tagDel = append(tagDel, t, b.startedAt, id)
		}
		for _, t := range minus(a.tags, b.tags, moved) {
			tagIns = append(tagIns, t, a.startedAt, id)
		}
		for _, r := range minus(b.refs, a.refs, moved) {
			refDel = append(refDel, r.DocumentID, r.Collection, b.startedAt, id)
		}
		for _, r := range minus(a.refs, b.refs, moved) {
			refIns = append(refIns, r.DocumentID, r.Collection, a.startedAt, id)
		}
	}
	for _, d := range []struct {
		stmt *sql.Stmt
		args []any
		n    int
	}{{s.delTag, tagDel, 3}, {s.delRef, refDel, 4}} {
		if len(d.args) == 0 {
			continue
		}
		st := tx.StmtContext(ctx, d.stmt)
		for i := 0; i < len(d.args); i += d.n {
			if _, err := st.ExecContext(ctx, d.args[i:i+d.n]...); err != nil {
				return err
			}
		}
	}
	if err := s.bulkInsert(ctx, tx, tagTable, tagIns); err != nil {
		return err
	}
	return s.bulkInsert(ctx, tx, refTable, refIns)
}

// sideTable describes the bulk insert into a side table.
type sideTable struct {
	insert string // INSERT ... VALUES without the tuples
	tuple  string // one tuple of placeholders
	cols   int
}

var (
	tagTable = &sideTable{`INSERT OR IGNORE INTO taskrun_tags (tag, started_at, run_id) VALUES `, `(?, ?, ?)`, 3}
	refTable = &sideTable{`INSERT OR IGNORE INTO taskrun_refs (document_id, collection, started_at, run_id) VALUES `, `(?, ?, ?, ?)`, 4}
)

// bulkSizes are the numbers of rows of the prepared bulk inserts: a
// largest one, and halves down to 1 for the remainder.
var bulkSizes = []int{128, 64, 32, 16, 8, 4, 2, 1}

// bulkInsert inserts the rows whose columns args holds, in statements of
// the bulkSizes, largest first.
func (s *Store) bulkInsert(ctx context.Context, tx *sql.Tx, t *sideTable, args []any) error {
	for _, n := range bulkSizes {
		if len(args) < n*t.cols {
			continue
		}
		st := tx.StmtContext(ctx, s.bulk[bulkKey{t, n}])
		for len(args) >= n*t.cols {
			if _, err := st.ExecContext(ctx, args[:n*t.cols]...); err != nil {
				return err
			}
			args = args[n*t.cols:]
		}
	}
	return nil
}

type bulkKey struct {
	t *sideTable
	n int
}

// prepareBulk prepares the bulk inserts of every size into both side
// tables on the writer.
func (s *Store) prepareBulk(ctx context.Context) error {
	s.bulk = make(map[bulkKey]*sql.Stmt)
	for _, t := range []*sideTable{tagTable, refTable} {
		for _, n := range bulkSizes {
			st, err := s.w.PrepareContext(ctx, t.insert+t.tuple+strings.Repeat(", "+t.tuple, n-1))
			if err != nil {
				return fmt.Errorf("preparing the bulk insert of %d rows: %w", n, err)
			}
			s.bulk[bulkKey{t, n}] = st
		}
	}
	return nil
}

// encoder encodes the runs of a batch in order, on its own goroutine when
// the batch is large enough to gain from it.
type encoder struct {
	runs  []taskrun.TaskRun
	rows  []row
	errs  []error
	ready chan int // receives i once rows[i] and errs[i] are set
	quit  chan struct{}
	done  sync.WaitGroup
}

// encodeAsync is the smallest batch encoded on another goroutine.
const encodeAsync = 8

func startEncoder(runs []taskrun.TaskRun) *encoder {
	e := &encoder{runs: runs, rows: make([]row, len(runs)), errs: make([]error, len(runs))}
	if len(runs) < encodeAsync {
		for i := range runs {
			e.errs[i] = encode(&e.rows[i], &runs[i])
		}
		return e
	}
	e.ready = make(chan int, len(runs))
	e.quit = make(chan struct{})
	e.done.Go(func() {
		for i := range runs {
			select {
			case <-e.quit:
				return
			default:
			}
			e.errs[i] = encode(&e.rows[i], &runs[i])
			e.ready <- i
		}
	})
	return e
}

// row returns the encoded run i; rows must be asked for in order.
func (e *encoder) row(i int) (*row, error) {
	if e.ready != nil {
		<-e.ready
	}
	return &e.rows[i], e.errs[i]
}

// stop ends the encoding goroutine and waits for it.
func (e *encoder) stop() {
	if e.quit != nil {
		close(e.quit)
		e.done.Wait()
	}
}

// fail wraps err of the operation op; after Close it matches ErrClosed, and
// when ctx ended it matches ctx.Err().
func (s *Store) fail(ctx context.Context, op string, err error) error {
	switch {
	case s.closed.Load():
		return fmt.Errorf("sqlitestore: %s: %w (%v)", op, ErrClosed, err)
	case ctx.Err() != nil && !errors.Is(err, ctx.Err()):
		return fmt.Errorf("sqlitestore: %s: %w (%v)", op, ctx.Err(), err)
	}
	return fmt.Errorf("sqlitestore: %s: %w", op, err)
}

// encode fills w from r, with r's times in UTC and truncated to the
// millisecond. r is not modified.
func encode(w *row, r *taskrun.TaskRun) error {
	c := *r
	c.CreatedAt, c.UpdatedAt, c.StartedAt = norm(c.CreatedAt), norm(c.UpdatedAt), norm(c.StartedAt)
	if c.FinishedAt != nil {
		f := norm(*c.FinishedAt)
		c.FinishedAt = &f
	}
	for i := range c.LogEntries {
		if t := c.LogEntries[i].Time; t != norm(t) {
			entries := make([]taskrun.LogEntry, len(c.LogEntries))
			copy(entries, c.LogEntries)
			for j := range entries {
				entries[j].Time = norm(entries[j].Time)
			}
			c.LogEntries = entries
			break
		}
	}
	doc, err := gojson.Marshal(&c)
	if err != nil {
		return fmt.Errorf("encoding the run as JSON: %w", err)
	}
	*w = row{
		id: c.ID, status: string(c.Status),
		keys: keys{
			op: c.OperationName, user: c.Actor.UserID, channel: c.Actor.Channel,
			flow: c.OrchestratorFlowRunID, trace: c.TraceID, idem: c.IdempotencyKey,
		},
		sides: sides{startedAt: unixMilli(c.StartedAt), tags: distinct(c.Tags), refs: distinct(c.ResultRefs)},
		doc:   string(doc),
	}
	w.tagsJSON, w.refsJSON = encodeTags(w.sides.tags), encodeRefs(w.sides.refs)
	if c.Orchestrated {
		w.keys.orchestrated = 1
	}
	return nil
}

// smallSet is the size up to which the set operations below compare
// element by element rather than build a map.
const smallSet = 16

// distinct returns the distinct elements of s in their first order; s
// itself when they are all distinct.
func distinct[T comparable](s []T) []T {
	if len(s) <= smallSet {
		for i := 1; i < len(s); i++ {
			if slices.Contains(s[:i], s[i]) {
				out := slices.Clone(s[:i])
				for _, v := range s[i+1:] {
					if !slices.Contains(out, v) {
						out = append(out, v)
					}
				}
				return out
			}
		}
		return s
	}
	seen := make(map[T]struct{}, len(s))
	out := s[:0:0]
	for _, v := range s {
		if _, ok := seen[v]; !ok {
			seen[v] = struct{}{}
			out = append(out, v)
		}
	}
	if len(out) == len(s) {
		return s
	}
	return out
}

// minus returns the elements of a that are not in b; all of a when all is
// set.
func minus[T comparable](a, b []T, all bool) []T {
	if all || len(b) == 0 {
		return a
	}
	var out []T
	if len(b) <= smallSet {
		for _, v := range a {
			if !slices.Contains(b, v) {
				out = append(out, v)
			}
		}
		return out
	}
	in := make(map[T]struct{}, len(b))
	for _, v := range b {
		in[v] = struct{}{}
	}
	for _, v := range a {
		if _, ok := in[v]; !ok {
			out = append(out, v)
		}
	}
	return out
}

// norm returns t in UTC, truncated to the millisecond, without a monotonic
// clock reading.
func norm(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// unixMilli is t.UnixMilli rounded down, without overflow for any year.
func unixMilli(t time.Time) int64 {
	return t.Unix()*1000 + int64(t.Nanosecond()/int(time.Millisecond))
}

// ceilMilli returns the smallest Unix millisecond m with m >= t: a run
// started at m (whole milliseconds) is at or after t exactly when m >=
// ceilMilli(t), and before t exactly when m < ceilMilli(t).
func ceilMilli(t time.Time) int64 {
	m := unixMilli(t)
	if t.Nanosecond()%int(time.Millisecond) != 0 {
		m++
	}
	return m
}

// encodeTags returns tags as a compact JSON array ("[]" when empty).
func encodeTags(tags []string) string {
	if len(tags) == 0 {
		return "[]"
	}
	b := make([]byte, 0, 2+len(tags)*16)
	b = append(b, '[')
	for i, t := range tags {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, t)
	}
	return string(append(b, ']'))
}

// encodeRefs returns refs as a compact JSON array of [collection,
// document_id] pairs ("[]" when empty).
func encodeRefs(refs []otelop.Ref) string {
	if len(refs) == 0 {
		return "[]"
	}
	b := make([]byte, 0, 2+len(refs)*32)
	b = append(b, '[')
	for i, r := range refs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = appendString(b, r.Collection)
		b = append(b, ',')
		b = appendString(b, r.DocumentID)
		b = append(b, ']')
	}
	return string(append(b, ']'))
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
