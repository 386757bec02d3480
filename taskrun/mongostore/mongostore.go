package mongostore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/taskrun"
)

// DefaultDatabase is the database [Open] uses when the URI names none.
const DefaultDatabase = "otelop"

// DefaultCollection is the collection of the TaskRun documents.
const DefaultCollection = "taskruns"

// DefaultMaxWritesPerCommand is the number of writes [Store.Write] sends in
// one command unless [WithMaxWritesPerCommand] says otherwise.
const DefaultMaxWritesPerCommand = 1000

// maxWritesPerCommand is MongoDB's maxWriteBatchSize.
const maxWritesPerCommand = 100_000

// pingTimeout bounds the ping of [Open].
const pingTimeout = 10 * time.Second

// maxAttempts bounds the rounds of a Write that retry the upserts that lost
// a duplicate-key race.
const maxAttempts = 5

var (
	// ErrClosed is returned by Write, Get and Find after Close.
	ErrClosed = errors.New("mongostore: store is closed")
	// ErrReadOnly is returned by Write on a store opened [WithReadOnly].
	ErrReadOnly = errors.New("mongostore: store is read-only")
)

var _ taskrun.Store = (*Store)(nil)

// Option configures [New] and [Open].
type Option func(*config)

type config struct {
	collection string
	retention  time.Duration
	maxWrites  int
	readOnly   bool
	err        error
}

// WithCollection stores the runs in the named collection instead of
// "taskruns".
func WithCollection(name string) Option {
	return func(c *config) {
		if name == "" {
			c.err = errors.Join(c.err, errors.New("WithCollection: empty collection name"))
			return
		}
		c.collection = name
	}
}

// WithRetention keeps finished runs for d: a TTL index on finished_at lets
// MongoDB delete a run about d after it finished (its TTL monitor runs once
// a minute). Runs that never finish are kept. d is rounded up to whole
// seconds; zero (the default) keeps runs forever and leaves an existing TTL
// index alone.
func WithRetention(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.err = errors.Join(c.err, fmt.Errorf("WithRetention(%s): negative retention", d))
			return
		}
		c.retention = d
	}
}

// WithMaxWritesPerCommand sets how many runs [Store.Write] sends in one
// update command (default 1000, at most 100,000, MongoDB's limit). A batch
// above it is sent as several commands, one after the other. Servers that
// only speak the MongoDB wire protocol may need less: FerretDB 1.x stalls on
// commands of about 100 updates, so use 50 there.
func WithMaxWritesPerCommand(n int) Option {
	return func(c *config) {
		if n < 1 || n > maxWritesPerCommand {
			c.err = errors.Join(c.err, fmt.Errorf("WithMaxWritesPerCommand(%d): want 1 to %d", n, maxWritesPerCommand))
			return
		}
		c.maxWrites = n
	}
}

// WithReadOnly opens the store for queries only: New creates no index and
// Write returns [ErrReadOnly]. Use it for tools that only read, with a
// database user that may only read.
func WithReadOnly() Option {
	return func(c *config) { c.readOnly = true }
}

// Store is a [taskrun.Store] on a MongoDB collection. It is safe for
// concurrent use.
type Store struct {
	db     *mongo.Database
	coll   *mongo.Collection
	client *mongo.Client // set by Open: the client Close disconnects
	cfg    config
	closed atomic.Bool
}

// New returns a Store on the collection "taskruns" of db, creating the
// collection and its indexes when they are missing: it lists the indexes
// and creates the missing ones in one command, so calling New again costs
// one listIndexes. An index is known by its keys; one that exists under
// another name is left as it is. With [WithRetention], a TTL index with
// another expiry is changed (collMod). The caller keeps owning db's client:
// [Store.Close] does not disconnect it.
//
// Defaults: collection "taskruns", no retention, 1000 writes per command,
// read-write. The indexes serve every [taskrun.Query] field and the newest
// first order: {started_at: -1, _id: -1}, and {operation_name: 1},
// {status: 1}, {actor.user_id: 1} and {tags: 1} each followed by
// started_at and _id descending; {trace_id: 1}, {idempotency_key: 1}
// (sparse), {result_refs.document_id: 1}, {orchestrator_flow_run_id: 1},
// and with [WithRetention] a TTL index on {finished_at: 1}.
func New(ctx context.Context, db *mongo.Database, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, errors.New("mongostore: New: nil database")
	}
	cfg := config{collection: DefaultCollection, maxWrites: DefaultMaxWritesPerCommand}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.err != nil {
		return nil, fmt.Errorf("mongostore: %w", cfg.err)
	}
	s := &Store{db: db, coll: db.Collection(cfg.collection), cfg: cfg}
	if !cfg.readOnly {
		if err := s.ensureIndexes(ctx); err != nil {
			return nil, fmt.Errorf("mongostore: creating the indexes of %s.%s: %w", db.Name(), cfg.collection, err)
		}
	}
	return s, nil
}

// Open connects to the MongoDB deployment at uri (mongodb:// or
// mongodb+srv://), checks that it answers within 10 seconds (or ctx's
// deadline, if sooner), and returns a Store on the database named by the
// URI's path ("otelop" when the path is empty), as [New] does. The Store
// owns the client: [Store.Close] disconnects it.
func Open(ctx context.Context, uri string, opts ...Option) (*Store, error) {
	dbName, hosts, err := parseURI(uri)
	if err != nil {
		return nil, err
	}
	// The URI's appName, if any, wins over ours.
	client, err := mongo.Connect(options.Client().SetAppName("otelop").ApplyURI(uri))
	if err != nil {
		return nil, fmt.Errorf("mongostore: connecting to %s: %w", hosts, err)
	}
	fail := func(err error) (*Store, error) {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = client.Disconnect(dctx)
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	err = client.Ping(pctx, nil)
	cancel()
	if err != nil {
		return fail(fmt.Errorf("mongostore: MongoDB at %s is unreachable: %w", hosts, err))
	}
	s, err := New(ctx, client.Database(dbName), opts...)
	if err != nil {
		return fail(err)
	}
	s.client = client
	return s, nil
}

// parseURI returns the database named by a MongoDB URI (DefaultDatabase
// when none) and its hosts without credentials, for messages.
func parseURI(uri string) (db, hosts string, err error) {
	var rest string
	switch {
	case strings.HasPrefix(uri, "mongodb://"):
		rest = strings.TrimPrefix(uri, "mongodb://")
	case strings.HasPrefix(uri, "mongodb+srv://"):
		rest = strings.TrimPrefix(uri, "mongodb+srv://")
	default:
		return "", "", errors.New("mongostore: Open: the URI must start with mongodb:// or mongodb+srv://")
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest = rest[:i]
	}
	hosts, path, _ := strings.Cut(rest, "/")
	if i := strings.LastIndexByte(hosts, '@'); i >= 0 {
		hosts = hosts[i+1:]
	}
	if hosts == "" {
		return "", "", errors.New("mongostore: Open: the URI names no host")
	}
	if path == "" {
		return DefaultDatabase, hosts, nil
	}
	db, err = url.PathUnescape(path)
	if err != nil {
		return "", "", fmt.Errorf("mongostore: Open: database name in the URI: %w", err)
	}
	if strings.ContainsAny(db, "/\\. \"$\x00") {
		return "", "", fmt.Errorf("mongostore: Open: invalid database name %q in the URI", db)
	}
	return db, hosts, nil
}

// Database returns the database of the store, for applications that keep
// their own collections next to the runs.
func (s *Store) Database() *mongo.Database { return s.db }

// Collection returns the collection of the runs.
func (s *Store) Collection() *mongo.Collection { return s.coll }

type indexSpec struct {
	keys   bson.D
	sparse bool
}

func newestFirst(field string) bson.D {
	return bson.D{{Key: field, Value: 1}, {Key: "started_at", Value: -1}, {Key: "_id", Value: -1}}
}

var indexSpecs = []indexSpec{
	{keys: bson.D{{Key: "started_at", Value: -1}, {Key: "_id", Value: -1}}},
	{keys: newestFirst("operation_name")},
	{keys: newestFirst("status")},
	{keys: newestFirst("actor.user_id")},
	{keys: newestFirst("tags")},
	{keys: bson.D{{Key: "idempotency_key", Value: 1}}, sparse: true},
	{keys: bson.D{{Key: "trace_id", Value: 1}}},
	{keys: bson.D{{Key: "result_refs.document_id", Value: 1}}},
	{keys: bson.D{{Key: "orchestrator_flow_run_id", Value: 1}}},
}

// ttlIndexName is the name of the retention index.
const ttlIndexName = "finished_at_ttl"

// ensureIndexes creates the missing indexes (and with them the
// collection) in one createIndexes command, after listing the existing ones:
// an index is known by its keys, whatever its name. A TTL index whose
// expireAfterSeconds differs from the retention is changed with collMod.
//
// Listing first also keeps FerretDB 1.x happy: its createIndexes panics
// when every index of the command exists already.
func (s *Store) ensureIndexes(ctx context.Context) error {
	existing, err := s.listIndexes(ctx)
	if err != nil {
		return fmt.Errorf("listing indexes: %w", err)
	}
	var models []mongo.IndexModel
	for _, spec := range indexSpecs {
		if _, ok := existing[keyString(spec.keys)]; ok {
			continue
		}
		m := mongo.IndexModel{Keys: spec.keys}
		if spec.sparse {
			m.Options = options.Index().SetSparse(true)
		}
		models = append(models, m)
	}
	var ttl struct {
		secs   int32
		modify string // name of an existing TTL index to change
	}
	if s.cfg.retention > 0 {
		ttl.secs = int32(min((s.cfg.retention+time.Second-1)/time.Second, 1<<31-1))
		ttlKeys := bson.D{{Key: "finished_at", Value: 1}}
		switch old, ok := existing[keyString(ttlKeys)]; {
		case !ok:
			models = append(models, mongo.IndexModel{
				Keys:    ttlKeys,
				Options: options.Index().SetName(ttlIndexName).SetExpireAfterSeconds(ttl.secs),
			})
		case old.ExpireAfterSeconds == nil || *old.ExpireAfterSeconds != ttl.secs:
			ttl.modify = old.Name
		}
	}
	if len(models) > 0 {
		if _, err := s.coll.Indexes().CreateMany(ctx, models); err != nil {
			return err
		}
	}
	if ttl.modify != "" {
		err := s.db.RunCommand(ctx, bson.D{
			{Key: "collMod", Value: s.cfg.collection},
			{Key: "index", Value: bson.D{{Key: "name", Value: ttl.modify}, {Key: "expireAfterSeconds", Value: ttl.secs}}},
		}).Err()
		if err != nil {
			return fmt.Errorf("setting the retention of index %s to %ds: %w", ttl.modify, ttl.secs, err)
		}
	}
	return nil
}

// listIndexes returns the indexes of the collection by keyString; none when
// the collection does not exist yet.
func (s *Store) listIndexes(ctx context.Context) (map[string]mongo.IndexSpecification, error) {
	specs, err := s.coll.Indexes().ListSpecifications(ctx)
	var se mongo.ServerError
	if errors.As(err, &se) && se.HasErrorCode(26) { // NamespaceNotFound
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make(map[string]mongo.IndexSpecification, len(specs))
	for _, sp := range specs {
		var keys bson.D
		if err := bson.Unmarshal(sp.KeysDocument, &keys); err != nil {
			return nil, fmt.Errorf("index %s: %w", sp.Name, err)
		}
		out[keyString(keys)] = sp
	}
	return out, nil
}

// keyString renders index keys as "a:1,b:-1".
func keyString(keys bson.D) string {
	var b strings.Builder
	for i, e := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(e.Key)
		b.WriteByte(':')
		switch v := e.Value.(type) {
		case int32, int64, int:
			fmt.Fprint(&b, v)
		case float64:
			fmt.Fprint(&b, int64(v))
		default:
			fmt.Fprint(&b, v) // "text", "2dsphere", ...
		}
	}
	return b.String()
}

// op is the one write of a batch for one run id.
type op struct {
	id    string
	final bool
	doc   bson.Raw
}

func (o op) model() mongo.WriteModel {
	if o.final {
		// A final run replaces whatever is stored.
		return mongo.NewReplaceOneModel().
			SetFilter(bson.D{{Key: "_id", Value: o.id}}).
			SetReplacement(o.doc).
			SetUpsert(true)
	}
	// A non-final run replaces a non-final one. When a final one is stored,
	// the filter matches nothing, the upsert tries to insert a second
	// document with the same _id, and the server refuses it with a
	// duplicate-key error: the write that must not happen does not.
	return mongo.NewReplaceOneModel().
		SetFilter(bson.D{
			{Key: "_id", Value: o.id},
			{Key: "status", Value: bson.D{{Key: "$nin", Value: bson.A{taskrun.StatusSuccess, taskrun.StatusFailed}}}},
		}).
		SetReplacement(o.doc).
		SetUpsert(true)
}

// CopiesRuns returns s: Store is a [taskrun.CopyingWriter], whose Write
// keeps nothing of the runs it is given once it returns.
func (s *Store) CopiesRuns() taskrun.Writer { return s }

// Write upserts runs by ID in as few commands as it can: one unordered bulk
// write (one update command, one round trip) per [WithMaxWritesPerCommand]
// runs. A stored final run (SUCCESS or FAILED) is never replaced by a
// non-final one; a final run replaces whatever is stored; a non-final run
// replaces a non-final one. Within a batch the runs of one id collapse to
// the one that wins when applied in order.
//
// Write returns ctx.Err() when ctx is already done, [ErrClosed] after
// Close, [ErrReadOnly] on a read-only store, and, before sending anything,
// an error naming the position of a run with an empty ID or an input_dump
// that is not JSON. Upserts of the same new id that race with another
// writer and lose (a duplicate-key error) are retried. An error means some
// runs may not be stored; writing the batch again is safe.
func (s *Store) Write(ctx context.Context, runs []taskrun.TaskRun) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	if s.cfg.readOnly {
		return ErrReadOnly
	}
	if len(runs) == 0 {
		return nil
	}
	ops := make([]op, 0, len(runs))
	index := make(map[string]int, len(runs))
	for i := range runs {
		r := &runs[i]
		if r.ID == "" {
			return fmt.Errorf("mongostore: %w: run %d of %d (operation %q) has an empty id; nothing of the batch was written", taskrun.ErrRejected, i, len(runs), r.OperationName)
		}
		j, seen := index[r.ID]
		final := r.Status.Final()
		if seen && ops[j].final && !final {
			continue // a final state is never undone
		}
		doc, err := encodeRun(r)
		if err != nil {
			return fmt.Errorf("mongostore: %w: run %d of %d (id %q): %w; nothing of the batch was written", taskrun.ErrRejected, i, len(runs), r.ID, err)
		}
		o := op{id: r.ID, final: final, doc: doc}
		if seen {
			ops[j] = o
		} else {
			index[r.ID] = len(ops)
			ops = append(ops, o)
		}
	}

	for attempt := 1; len(ops) > 0; attempt++ {
		lost, err := s.bulkWrite(ctx, ops)
		if err != nil {
			return err
		}
		// A run that lost a duplicate-key race is written again. A non-final
		// one that loses again found a final run stored: it is done.
		ops = ops[:0]
		for _, o := range lost {
			if o.final || attempt == 1 {
				ops = append(ops, o)
			}
		}
		if len(ops) > 0 && attempt == maxAttempts {
			return fmt.Errorf("mongostore: %d runs (first %q) still lost duplicate-key races after %d attempts", len(ops), ops[0].id, attempt)
		}
	}
	return nil
}

var bulkOptions = options.BulkWrite().SetOrdered(false)

// errVagueReport is returned by sendChunk when the server's report of a
// bulk write does not account for every write.
var errVagueReport = errors.New("the server's report does not account for every write")

// bulkWrite sends ops in commands of at most maxWrites writes and returns
// the ops that failed with a duplicate-key error. Writes that fail for
// other reasons do not stop the others; they make the error returned.
func (s *Store) bulkWrite(ctx context.Context, ops []op) (lost []op, err error) {
	var failed []error
	for start := 0; start < len(ops); start += s.cfg.maxWrites {
		chunk := ops[start:min(start+s.cfg.maxWrites, len(ops))]
		l, f, err := s.sendChunk(ctx, chunk)
		if errors.Is(err, errVagueReport) && len(chunk) > 1 {
			// MongoDB runs every write of an unordered bulk write and
			// reports each failure with its index. FerretDB 1.x stops at the
			// first failure and reports it at index 0, with n = 0: which
			// writes ran is unknown. Every write is idempotent, so send them
			// again one by one, where the report is exact. This only happens
			// when a write failed, so it is rare.
			l, f = nil, nil
			for i := range chunk {
				l1, f1, err := s.sendChunk(ctx, chunk[i:i+1])
				if err != nil {
					return nil, err
				}
				l, f = append(l, l1...), append(f, f1...)
			}
		} else if err != nil {
			return nil, err
		}
		lost, failed = append(lost, l...), append(failed, f...)
	}
	if len(failed) > 0 {
		return nil, fmt.Errorf("mongostore: %d of %d runs were not written: %w", len(failed), len(ops), errors.Join(failed...))
	}
	return lost, nil
}

// sendChunk sends ops as one bulk write. It returns the ops that failed
// with a duplicate-key error, the errors of those that failed otherwise, and
// an error when the command failed as a whole.
func (s *Store) sendChunk(ctx context.Context, chunk []op) (lost []op, failed []error, err error) {
	models := make([]mongo.WriteModel, len(chunk))
	for i, o := range chunk {
		models[i] = o.model()
	}
	res, err := s.coll.BulkWrite(ctx, models, bulkOptions)
	if err == nil {
		return nil, nil, nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return nil, nil, fmt.Errorf("mongostore: writing %d runs: %w", len(chunk), err)
	}
	if res == nil || res.MatchedCount+res.UpsertedCount+int64(len(bwe.WriteErrors)) != int64(len(chunk)) {
		return nil, nil, fmt.Errorf("mongostore: writing %d runs: %w: %w", len(chunk), errVagueReport, err)
	}
	for _, we := range bwe.WriteErrors {
		switch {
		case we.Index < 0 || we.Index >= len(chunk):
			return nil, nil, fmt.Errorf("mongostore: writing %d runs: error for write %d: %w", len(chunk), we.Index, we)
		case isDuplicateKey(we.WriteError):
			lost = append(lost, chunk[we.Index])
		default:
			failed = append(failed, fmt.Errorf("run %q: %w", chunk[we.Index].id, we))
		}
	}
	return lost, failed, nil
}

func isDuplicateKey(we mongo.WriteError) bool {
	return we.Code == 11000 || we.Code == 11001 || we.Code == 12582
}

// Get returns the run with the given id, or an error matching
// [taskrun.ErrNotFound].
func (s *Store) Get(ctx context.Context, id string) (taskrun.TaskRun, error) {
	if err := ctx.Err(); err != nil {
		return taskrun.TaskRun{}, err
	}
	if s.closed.Load() {
		return taskrun.TaskRun{}, ErrClosed
	}
	if id == "" {
		return taskrun.TaskRun{}, fmt.Errorf("mongostore: run with an empty id: %w", taskrun.ErrNotFound)
	}
	raw, err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return taskrun.TaskRun{}, fmt.Errorf("mongostore: run %q: %w", id, taskrun.ErrNotFound)
	}
	if err != nil {
		return taskrun.TaskRun{}, fmt.Errorf("mongostore: getting run %q: %w", id, err)
	}
	r, err := decodeRun(raw)
	if err != nil {
		return taskrun.TaskRun{}, fmt.Errorf("mongostore: decoding run %q: %w", id, err)
	}
	return r, nil
}

var newestFirstSort = bson.D{{Key: "started_at", Value: -1}, {Key: "_id", Value: -1}}

// Find returns the runs matching q, newest first (by started_at, then by
// id, both descending), at most q.Limit of them. An invalid query (see
// [taskrun.Query.Normalize]) and a Before cursor naming an unknown run are
// errors matching [taskrun.ErrInvalidQuery].
func (s *Store) Find(ctx context.Context, q taskrun.Query) ([]taskrun.TaskRun, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	q, err := q.Normalize()
	if err != nil {
		return nil, err
	}
	filter, err := s.filter(ctx, q)
	if err != nil {
		return nil, err
	}
	fo := options.Find().SetSort(newestFirstSort)
	if q.Ref == nil {
		fo.SetLimit(int64(q.Limit))
	} else {
		// The filter also matches runs whose ref fields come from two
		// different refs; those are dropped below, so the limit applies
		// here. Such runs are rare: the first batch nearly always does.
		fo.SetBatchSize(int32(min(q.Limit+8, 1000)))
	}
	cur, err := s.coll.Find(ctx, filter, fo)
	if err != nil {
		return nil, fmt.Errorf("mongostore: find: %w", err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	out := make([]taskrun.TaskRun, 0, min(q.Limit, 64))
	for len(out) < q.Limit && cur.Next(ctx) {
		r, err := decodeRun(cur.Current)
		if err != nil {
			return nil, fmt.Errorf("mongostore: decoding run %v: %w", cur.Current.Lookup("_id"), err)
		}
		if q.Ref != nil && !slices.Contains(r.ResultRefs, *q.Ref) {
			continue
		}
		out = append(out, r)
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("mongostore: find: %w", err)
	}
	return out, nil
}

// filter returns the MongoDB filter of a normalised query.
func (s *Store) filter(ctx context.Context, q taskrun.Query) (bson.D, error) {
	f := bson.D{}
	eq := func(field, v string) {
		if v != "" {
			f = append(f, bson.E{Key: field, Value: v})
		}
	}
	eq("operation_name", q.Operation)
	eq("status", q.Status)
	eq("actor.user_id", q.UserID)
	eq("actor.channel", q.Channel)
	eq("orchestrator_flow_run_id", q.FlowRunID)
	eq("trace_id", q.TraceID)
	eq("idempotency_key", q.IdempotencyKey)
	eq("tags", q.Tag)
	if q.Orchestrated != nil {
		f = append(f, bson.E{Key: "orchestrated", Value: *q.Orchestrated})
	}
	if q.Ref != nil {
		// Both fields must come from the same ref, which is what $elemMatch
		// says; but FerretDB 1.x supports neither $elemMatch on fields nor
		// the equality of array elements with a document. So the filter
		// asks for both values (by the index on result_refs.document_id)
		// and Find checks that one ref has both.
		f = append(f,
			bson.E{Key: "result_refs.document_id", Value: q.Ref.DocumentID},
			bson.E{Key: "result_refs.collection", Value: q.Ref.Collection})
	}
	started := bson.D{}
	if !q.Since.IsZero() {
		started = append(started, bson.E{Key: "$gte", Value: ceilMS(q.Since)})
	}
	if !q.Until.IsZero() {
		started = append(started, bson.E{Key: "$lt", Value: ceilMS(q.Until)})
	}
	var or bson.A
	if q.Before != "" {
		var c struct {
			StartedAt time.Time `bson:"started_at"`
		}
		err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: q.Before}},
			options.FindOne().SetProjection(bson.D{{Key: "started_at", Value: 1}})).Decode(&c)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil, fmt.Errorf("mongostore: %w: unknown cursor %q: no run has this id", taskrun.ErrInvalidQuery, q.Before)
		}
		if err != nil {
			return nil, fmt.Errorf("mongostore: looking up the cursor %q: %w", q.Before, err)
		}
		// Older than the cursor, or as old with a smaller id. The $lte
		// bounds the index scan; the $or picks the runs after the cursor.
		started = append(started, bson.E{Key: "$lte", Value: c.StartedAt})
		or = bson.A{
			bson.D{{Key: "started_at", Value: bson.D{{Key: "$lt", Value: c.StartedAt}}}},
			bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: q.Before}}}},
		}
	}
	if len(started) > 0 {
		f = append(f, bson.E{Key: "started_at", Value: started})
	}
	if or != nil {
		f = append(f, bson.E{Key: "$or", Value: or})
	}
	return f, nil
}

// ceilMS rounds t up to a whole millisecond, the precision of stored times,
// so that comparisons with it give the answer they give at full precision.
func ceilMS(t time.Time) time.Time {
	if tr := t.Truncate(time.Millisecond); !tr.Equal(t) {
		return tr.Add(time.Millisecond)
	}
	return t
}

// Close marks the store closed: later calls of Write, Get and Find return
// [ErrClosed]. A Store from [Open] disconnects its client; one from [New]
// leaves the caller's client connected. Closing twice is not an error.
func (s *Store) Close(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.client != nil {
		if err := s.client.Disconnect(ctx); err != nil {
			return fmt.Errorf("mongostore: disconnecting: %w", err)
		}
	}
	return nil
}

// LookupIdempotent implements otelop.IdempotencyLookup with
// [taskrun.LookupIdempotent].
func (s *Store) LookupIdempotent(ctx context.Context, operation, key string, since time.Time) (otelop.PriorRun, bool, error) {
	return taskrun.LookupIdempotent(ctx, s, operation, key, since)
}
