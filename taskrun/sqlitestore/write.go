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
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ` + docParam + `)
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

// docParam is the parameter of a document in upsertSQL and insertSQL
// (updateSQL casts ?4 the same way): Write binds the bytes of the JSON as a
// blob, which spares a copy into a string, and the cast stores them as
// text, byte for byte.
const docParam = `CAST(? AS TEXT)`

// updateSQL writes a run over a stored one whose indexed columns other
// than status are the same: the usual second write of a run, from RUNNING to
// SUCCESS or FAILED. It leaves the indexes that do not hold status alone,
// where the upsert's DO UPDATE rewrites all of them. The same rule keeps a
// stored final run.
const updateSQL = `UPDATE taskruns SET status = ?1, tags = ?2, refs = ?3, doc = CAST(?4 AS TEXT)
WHERE id = ?5 AND NOT (status IN ('SUCCESS', 'FAILED') AND ?1 NOT IN ('SUCCESS', 'FAILED'))`

// storedSQL reads what Write needs to know of the stored runs of a batch,
// whose ids are bound one per parameter (so that any id, whatever its bytes,
// is looked up exactly): the statement for n ids is storedSQL.statement(n).
var storedSQL = &bulkSQL{
	head: `SELECT id, operation_name, user_id, channel, flow_run_id, trace_id,
	idempotency_key, orchestrated, started_at, tags, refs
FROM taskruns WHERE id IN (`,
	tuple: `?`,
	tail:  `)`,
	cols:  1,
}

// insertSQL writes runs that are not stored, many to a statement, with the
// arguments of upsertSQL. OR FAIL: a failing row (Write gives it only runs
// that are not stored, so none fails) ends the statement without undoing
// its earlier rows, which spares SQLite a statement journal; Write then
// rolls the whole transaction back.
var insertSQL = &bulkSQL{
	head: `INSERT OR FAIL INTO taskruns (
	id, operation_name, status, user_id, channel, flow_run_id, trace_id,
	idempotency_key, orchestrated, started_at, tags, refs, doc
) VALUES `,
	tuple: `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ` + docParam + `)`,
	cols:  13,
}

// row is a run encoded for insertSQL, upsertSQL and updateSQL, with the
// rows it needs in the side tables.
type row struct {
	id, status string
	stored
	tagsJSON, refsJSON string
	doc                []byte // bound as a blob, stored as TEXT: see docParam
}

// appendArgs appends the arguments of upsertSQL, which are those of one run
// of insertSQL too.
func (r *row) appendArgs(args []any) []any {
	k := &r.keys
	return append(args, r.id, k.op, r.status, k.user, k.channel, k.flow, k.trace, k.idem, k.orchestrated, r.sides.startedAt, r.tagsJSON, r.refsJSON, r.doc)
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

// CopiesRuns returns s: Store is a [taskrun.CopyingWriter], whose Write
// keeps nothing of the runs it is given once it returns.
func (s *Store) CopiesRuns() taskrun.Writer { return s }

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
	// this one writes them: encoding takes a fraction of the time of
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
	// A run whose id is neither stored nor met earlier in the batch is new:
	// insertSQL writes it, with the other new runs encoded by then, in
	// statements of many rows (a statement per run costs about as much as
	// the B-tree inserts of the run). The others, updates of a stored run
	// or of one met earlier, are written one by one after them, in batch
	// order: only the order of the writes of the same id matters.
	after := make(map[string]*stored, len(runs))
	var (
		written []string // ids whose run was written, in first-write order
		later   []*row
	)
	ins := s.newBulk(tx, insertSQL)
	for i := 0; i < len(runs); {
		n := enc.wait(i)
		for ; i < n; i++ {
			r, err := enc.row(i)
			if err != nil {
				return fmt.Errorf("sqlitestore: %w: run %d of %d (id %q): %w; nothing of the batch was written", taskrun.ErrRejected, i, len(runs), runs[i].ID, err)
			}
			if before[r.id] != nil || after[r.id] != nil {
				later = append(later, r)
				continue
			}
			if err := ins.add(ctx, r); err != nil {
				return s.fail(ctx, "write: inserting runs", err)
			}
			written = append(written, r.id)
			after[r.id] = &r.stored
		}
		// Insert the new runs encoded so far rather than wait for the
		// encoder: it is well ahead after the first rows.
		if err := ins.flush(ctx); err != nil {
			return s.fail(ctx, "write: inserting runs", err)
		}
	}
	var upsert, update *sql.Stmt
	for _, r := range later {
		cur := after[r.id]
		if cur == nil {
			cur = before[r.id]
		}
		var res sql.Result
		if cur.keys == r.keys && cur.sides.startedAt == r.sides.startedAt {
			if update == nil {
				update = tx.StmtContext(ctx, s.update)
			}
			res, err = update.ExecContext(ctx, r.updateArgs()...)
		} else {
			if upsert == nil {
				upsert = tx.StmtContext(ctx, s.upsert)
			}
			res, err = upsert.ExecContext(ctx, r.appendArgs(make([]any, 0, insertSQL.cols))...)
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
		after[r.id] = &r.stored
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
	out := make(map[string]*stored)
	for len(runs) > 0 {
		n := bulkSize(len(runs))
		args := make([]any, n)
		for i := range args {
			args[i] = runs[i].ID
		}
		runs = runs[n:]
		rows, err := tx.StmtContext(ctx, s.bulk[bulkKey{storedSQL, n}]).QueryContext(ctx, args...)
		if err != nil {
			return nil, err
		}
		if err := scanStored(rows, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// scanStored adds the runs of rows (of storedSQL) to out and closes rows.
func scanStored(rows *sql.Rows, out map[string]*stored) error {
	defer rows.Close()
	for rows.Next() {
		var (
			id         string
			st         stored
			k          = &st.keys
			tags, refs []byte
		)
		if err := rows.Scan(&id, &k.op, &k.user, &k.channel, &k.flow, &k.trace, &k.idem, &k.orchestrated, &st.sides.startedAt, &tags, &refs); err != nil {
			return err
		}
		if err := json.Unmarshal(tags, &st.sides.tags); err != nil {
			return fmt.Errorf("run %q: tags column: %w", id, err)
		}
		var pairs [][2]string
		if err := json.Unmarshal(refs, &pairs); err != nil {
			return fmt.Errorf("run %q: refs column: %w", id, err)
		}
		for _, p := range pairs {
			st.sides.refs = append(st.sides.refs, otelop.Ref{Collection: p[0], DocumentID: p[1]})
		}
		out[id] = &st
	}
	return rows.Err()
}

// syncSides brings the side tables from before to after for the written
// runs: it deletes the rows a run no longer has and inserts the new ones, in
// bulk.
func (s *Store) syncSides(ctx context.Context, tx *sql.Tx, written []string, before, after map[string]*stored) error {
	var (
		tagIns, tagDel []tagRow
		refIns, refDel []refRow
	)
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
			tagDel = append(tagDel, tagRow{t, b.startedAt, id})
		}
		for _, t := range minus(a.tags, b.tags, moved) {
			tagIns = append(tagIns, tagRow{t, a.startedAt, id})
		}
		for _, r := range minus(b.refs, a.refs, moved) {
			refDel = append(refDel, refRow{r, b.startedAt, id})
		}
		for _, r := range minus(a.refs, b.refs, moved) {
			refIns = append(refIns, refRow{r, a.startedAt, id})
		}
	}
	if len(tagDel) > 0 {
		st := tx.StmtContext(ctx, s.delTag)
		for _, t := range tagDel {
			if _, err := st.ExecContext(ctx, t.tag, t.startedAt, t.runID); err != nil {
				return err
			}
		}
	}
	if len(refDel) > 0 {
		st := tx.StmtContext(ctx, s.delRef)
		for _, r := range refDel {
			if _, err := st.ExecContext(ctx, r.ref.DocumentID, r.ref.Collection, r.startedAt, r.runID); err != nil {
				return err
			}
		}
	}
	ins := s.newBulk(tx, tagSQL)
	for i := range tagIns {
		if err := ins.add(ctx, &tagIns[i]); err != nil {
			return err
		}
	}
	if err := ins.flush(ctx); err != nil {
		return err
	}
	ins = s.newBulk(tx, refSQL)
	for i := range refIns {
		if err := ins.add(ctx, &refIns[i]); err != nil {
			return err
		}
	}
	return ins.flush(ctx)
}

// tagRow is a row of taskrun_tags.
type tagRow struct {
	tag       string
	startedAt int64
	runID     string
}

func (t *tagRow) appendArgs(args []any) []any { return append(args, t.tag, t.startedAt, t.runID) }

// refRow is a row of taskrun_refs.
type refRow struct {
	ref       otelop.Ref
	startedAt int64
	runID     string
}

func (r *refRow) appendArgs(args []any) []any {
	return append(args, r.ref.DocumentID, r.ref.Collection, r.startedAt, r.runID)
}

// tagSQL and refSQL insert rows into the side tables, many to a statement.
var (
	tagSQL = &bulkSQL{head: `INSERT OR IGNORE INTO taskrun_tags (tag, started_at, run_id) VALUES `, tuple: `(?, ?, ?)`, cols: 3}
	refSQL = &bulkSQL{head: `INSERT OR IGNORE INTO taskrun_refs (document_id, collection, started_at, run_id) VALUES `, tuple: `(?, ?, ?, ?)`, cols: 4}
)

// bulkSQL is a statement over n tuples of parameters (rows of a multi-row
// INSERT, or ids of an IN list): head, then n tuples separated by commas,
// then tail. The statements of the bulkSizes are prepared on the writer.
type bulkSQL struct {
	head, tuple, tail string
	cols              int // parameters per tuple
}

// statement returns the statement over n tuples.
func (b *bulkSQL) statement(n int) string {
	return b.head + b.tuple + strings.Repeat(", "+b.tuple, n-1) + b.tail
}

// bulkSizes are the numbers of tuples of the prepared bulk statements: a
// largest one, and halves down to 1 for the remainder.
var bulkSizes = []int{128, 64, 32, 16, 8, 4, 2, 1}

// bulkSize returns the largest of the bulkSizes up to n (n > 0).
func bulkSize(n int) int {
	for _, size := range bulkSizes {
		if size <= n {
			return size
		}
	}
	return 1
}

type bulkKey struct {
	b *bulkSQL
	n int
}

// prepareBulk prepares the bulk statements of every size on the writer.
func (s *Store) prepareBulk(ctx context.Context) error {
	s.bulk = make(map[bulkKey]*sql.Stmt)
	for _, b := range []*bulkSQL{storedSQL, insertSQL, tagSQL, refSQL} {
		for _, n := range bulkSizes {
			st, err := s.w.PrepareContext(ctx, b.statement(n))
			if err != nil {
				return fmt.Errorf("preparing %s (%d tuples): %w", firstLine(b.head), n, err)
			}
			s.bulk[bulkKey{b, n}] = st
		}
	}
	return nil
}

// bulk executes an INSERT of a bulkSQL in a transaction over the tuples
// added to it: a statement of the largest size whenever there are enough of
// them, and the rest on flush.
type bulk struct {
	s    *Store
	tx   *sql.Tx
	b    *bulkSQL
	args []any
	n    int // tuples in args
}

func (s *Store) newBulk(tx *sql.Tx, b *bulkSQL) *bulk {
	return &bulk{s: s, tx: tx, b: b}
}

// tuple is a tuple of parameters of a bulk statement.
type tuple interface {
	appendArgs(args []any) []any
}

// add adds t.
func (b *bulk) add(ctx context.Context, t tuple) error {
	if b.args == nil {
		b.args = make([]any, 0, bulkSizes[0]*b.b.cols)
	}
	b.args = t.appendArgs(b.args)
	b.n++
	if b.n < bulkSizes[0] {
		return nil
	}
	return b.flush(ctx)
}

// flush executes the tuples added since the last execution, in statements
// of decreasing sizes.
func (b *bulk) flush(ctx context.Context) error {
	args := b.args
	for b.n > 0 {
		n := bulkSize(b.n)
		if _, err := b.tx.StmtContext(ctx, b.s.bulk[bulkKey{b.b, n}]).ExecContext(ctx, args[:n*b.b.cols]...); err != nil {
			return err
		}
		args = args[n*b.b.cols:]
		b.n -= n
	}
	b.args = b.args[:0]
	return nil
}

// encoder encodes the runs of a batch in order, on its own goroutine when
// the batch is large enough to gain from it.
type encoder struct {
	runs  []taskrun.TaskRun
	rows  []row
	errs  []error
	docs  *docBuffer
	ready chan int // receives i once rows[i] and errs[i] are set
	quit  chan struct{}
	done  sync.WaitGroup
}

// encodeAsync is the smallest batch encoded on another goroutine.
const encodeAsync = 8

func startEncoder(runs []taskrun.TaskRun) *encoder {
	e := &encoder{runs: runs, rows: make([]row, len(runs)), errs: make([]error, len(runs)), docs: getDocBuffer()}
	je := gojson.NewEncoder(e.docs)
	if len(runs) < encodeAsync {
		for i := range runs {
			e.errs[i] = encode(&e.rows[i], &runs[i], je, e.docs)
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
			e.errs[i] = encode(&e.rows[i], &runs[i], je, e.docs)
			e.ready <- i
		}
	})
	return e
}

// wait waits until run i is encoded and returns n > i such that runs i to
// n-1 are encoded; the next call is wait(n), while n is less than the
// number of runs.
func (e *encoder) wait(i int) int {
	if e.ready == nil {
		return len(e.rows)
	}
	<-e.ready
	n := i + 1
	for n < len(e.rows) {
		select {
		case <-e.ready:
			n++
		default:
			return n
		}
	}
	return n
}

// row returns the encoded run i, which wait has reported.
func (e *encoder) row(i int) (*row, error) {
	return &e.rows[i], e.errs[i]
}

// stop ends the encoding goroutine and waits for it. The rows must not be
// used afterwards: their documents are in a buffer that later batches
// reuse.
func (e *encoder) stop() {
	if e.quit != nil {
		close(e.quit)
		e.done.Wait()
	}
	putDocBuffer(e.docs)
	e.rows, e.docs = nil, nil
}

// docBuffer holds the JSON documents of a batch one after the other: one
// buffer rather than an allocation per document, reused by later batches
// (the documents are copied when they are bound to a statement).
type docBuffer struct{ b []byte }

func (d *docBuffer) Write(p []byte) (int, error) {
	d.b = append(d.b, p...)
	return len(p), nil
}

var docBuffers sync.Pool

// maxDocBuffer is the largest capacity of a docBuffer kept for reuse.
const maxDocBuffer = 4 << 20

func getDocBuffer() *docBuffer {
	if d, ok := docBuffers.Get().(*docBuffer); ok {
		return d
	}
	return new(docBuffer)
}

func putDocBuffer(d *docBuffer) {
	if cap(d.b) <= maxDocBuffer {
		d.b = d.b[:0]
		docBuffers.Put(d)
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
// millisecond, encoding the document with je, which writes to docs. r is
// not modified.
func encode(w *row, r *taskrun.TaskRun, je *gojson.Encoder, docs *docBuffer) error {
	c := r
	if !normalized(r) {
		n := *r
		n.CreatedAt, n.UpdatedAt, n.StartedAt = norm(n.CreatedAt), norm(n.UpdatedAt), norm(n.StartedAt)
		if n.FinishedAt != nil {
			f := norm(*n.FinishedAt)
			n.FinishedAt = &f
		}
		if slices.ContainsFunc(n.LogEntries, func(e taskrun.LogEntry) bool { return e.Time != norm(e.Time) }) {
			n.LogEntries = slices.Clone(n.LogEntries)
			for j := range n.LogEntries {
				n.LogEntries[j].Time = norm(n.LogEntries[j].Time)
			}
		}
		c = &n
	}
	// The Encoder writes what Marshal returns, and a newline.
	start := len(docs.b)
	if err := je.Encode(c); err != nil {
		return fmt.Errorf("encoding the run as JSON: %w", err)
	}
	doc := docs.b[start : len(docs.b)-1 : len(docs.b)-1]
	*w = row{
		id: c.ID, status: string(c.Status),
		stored: stored{
			keys: keys{
				op: c.OperationName, user: c.Actor.UserID, channel: c.Actor.Channel,
				flow: c.OrchestratorFlowRunID, trace: c.TraceID, idem: c.IdempotencyKey,
			},
			sides: sides{startedAt: unixMilli(c.StartedAt), tags: distinct(c.Tags), refs: distinct(c.ResultRefs)},
		},
		doc: doc,
	}
	w.tagsJSON, w.refsJSON = encodeTags(w.sides.tags), encodeRefs(w.sides.refs)
	if c.Orchestrated {
		w.keys.orchestrated = 1
	}
	return nil
}

// normalized reports whether the times of r are in UTC and whole
// milliseconds, without a monotonic clock reading, as the Processor makes
// them: then encode does not copy r.
func normalized(r *taskrun.TaskRun) bool {
	if r.CreatedAt != norm(r.CreatedAt) || r.UpdatedAt != norm(r.UpdatedAt) || r.StartedAt != norm(r.StartedAt) ||
		r.FinishedAt != nil && *r.FinishedAt != norm(*r.FinishedAt) {
		return false
	}
	for i := range r.LogEntries {
		if t := r.LogEntries[i].Time; t != norm(t) {
			return false
		}
	}
	return true
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
