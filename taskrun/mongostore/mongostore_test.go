package mongostore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.uber.org/goleak"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/mongostore"
	"github.com/otelop/otelop/taskrun/taskruntest"
)

// The tests run against the MongoDB (or MongoDB wire-protocol server) named
// by OTELOP_TEST_MONGODB_URI; scripts/test.sh starts one. Each test uses
// its own database and drops it when it ends.
const (
	uriEnv     = "OTELOP_TEST_MONGODB_URI"
	requireEnv = "OTELOP_REQUIRE_SERVICES"
)

// maxWrites keeps commands small enough for FerretDB (see the package doc).
const maxWrites = 50

var shared struct {
	once   sync.Once
	client *mongo.Client
	err    error
}

// testURI returns the server's URI, skipping t when there is none (and
// failing it when the services are required).
func testURI(t testing.TB) string {
	t.Helper()
	uri := strings.TrimSpace(os.Getenv(uriEnv))
	if uri == "" {
		if os.Getenv(requireEnv) == "1" {
			t.Fatalf("%s is not set but %s=1: start a MongoDB wire-protocol server (scripts/test.sh does)", uriEnv, requireEnv)
		}
		t.Skipf("%s is not set: no MongoDB server to test against (scripts/test.sh starts one)", uriEnv)
	}
	return uri
}

func sharedClient(t testing.TB) *mongo.Client {
	t.Helper()
	uri := testURI(t)
	shared.once.Do(func() {
		shared.client, shared.err = mongo.Connect(options.Client().ApplyURI(uri))
		if shared.err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := shared.client.Ping(ctx, nil); err != nil {
				shared.err = fmt.Errorf("ping %s: %w", uri, err)
			}
		}
	})
	if shared.err != nil {
		t.Fatalf("connecting to the test server: %v", shared.err)
	}
	return shared.client
}

// isFerretDB reports whether the test server is FerretDB, which lacks a
// few MongoDB features (see the package doc).
func isFerretDB(t testing.TB) bool {
	t.Helper()
	var info bson.M
	if err := sharedClient(t).Database("admin").RunCommand(t.Context(), bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		t.Fatalf("buildInfo: %v", err)
	}
	_, ok := info["ferretdbVersion"]
	return ok
}

var dbSeq atomic.Int64

// dbName returns a database name unique to this test process and call,
// made from t's name.
func dbName(t testing.TB) string {
	var b strings.Builder
	for _, r := range strings.ToLower(t.Name()) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	name := b.String()
	suffix := fmt.Sprintf("_%d_%d", os.Getpid()%100000, dbSeq.Add(1))
	const maxLen = 60 // FerretDB and MongoDB take up to 63 bytes
	if len(name) > maxLen-len(suffix)-2 {
		name = name[:maxLen-len(suffix)-2]
	}
	return "t_" + name + suffix
}

// testDB returns a fresh database on the shared client, dropped when t ends.
func testDB(t testing.TB, client *mongo.Client) *mongo.Database {
	t.Helper()
	if client == nil {
		client = sharedClient(t)
	}
	db := client.Database(dbName(t))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := db.Drop(ctx); err != nil {
			t.Errorf("dropping database %s: %v", db.Name(), err)
		}
	})
	return db
}

func newStore(t testing.TB, db *mongo.Database, opts ...mongostore.Option) *mongostore.Store {
	t.Helper()
	if db == nil {
		db = testDB(t, nil)
	}
	opts = append([]mongostore.Option{mongostore.WithMaxWritesPerCommand(maxWrites)}, opts...)
	s, err := mongostore.New(t.Context(), db, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// TestMain disconnects the shared client, then checks that no goroutine of
// the driver outlives the tests: every client a test or a Store made was
// disconnected.
func TestMain(m *testing.M) {
	code := m.Run()
	if shared.client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = shared.client.Disconnect(ctx)
		cancel()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func TestStoreSuite(t *testing.T) {
	sharedClient(t)
	taskruntest.RunStoreSuite(t, func(t *testing.T) taskrun.Store {
		return newStore(t, nil)
	})
}

var base = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func sampleRun(id string, status taskrun.Status, start time.Time) taskrun.TaskRun {
	r := taskrun.TaskRun{
		ID: id, OperationName: "bulk_delete_jobs", Category: "jobs", Status: status,
		Tags:      []string{"jobs", "bulk"},
		Actor:     taskrun.Actor{UserID: "alice", Channel: "api"},
		StartedAt: start, CreatedAt: start, UpdatedAt: start,
		InputDump: json.RawMessage(`{"job_ids":["j1","j2"],"dry_run":false}`),
		Metadata:  map[string]any{"dry_run": false},
		TraceID:   "trace-" + id, SpanID: "span-" + id,
	}
	if status.Final() {
		f := start.Add(1500 * time.Millisecond)
		r.FinishedAt, r.UpdatedAt, r.DurationMS = &f, f, 1500
		r.ResultRefs = []otelop.Ref{{Collection: "jobs", DocumentID: "j1"}}
	}
	if status == taskrun.StatusFailed {
		r.ErrorMessage, r.ErrorType = "job locked", "conflict"
	}
	return r
}

// keyString renders an index key document as "a:1,b:-1".
func keyString(t *testing.T, keys bson.Raw) string {
	t.Helper()
	elems, err := keys.Elements()
	if err != nil {
		t.Fatal(err)
	}
	parts := make([]string, len(elems))
	for i, e := range elems {
		parts[i] = fmt.Sprintf("%s:%d", e.Key(), e.Value().AsInt64())
	}
	return strings.Join(parts, ",")
}

func indexes(t *testing.T, coll *mongo.Collection) map[string]mongo.IndexSpecification {
	t.Helper()
	specs, err := coll.Indexes().ListSpecifications(t.Context())
	if err != nil {
		t.Fatalf("listing indexes: %v", err)
	}
	out := make(map[string]mongo.IndexSpecification, len(specs))
	for _, s := range specs {
		out[keyString(t, s.KeysDocument)] = s
	}
	return out
}

var wantIndexes = []string{
	"_id:1",
	"started_at:-1,_id:-1",
	"operation_name:1,started_at:-1,_id:-1",
	"status:1,started_at:-1,_id:-1",
	"actor.user_id:1,started_at:-1,_id:-1",
	"tags:1,started_at:-1,_id:-1",
	"idempotency_key:1",
	"trace_id:1",
	"result_refs.document_id:1",
	"orchestrator_flow_run_id:1",
}

// createIndexesSent returns the index specifications of the createIndexes
// commands counted by c, by key string.
func createIndexesSent(t *testing.T, c *commandCounter) map[string]bson.Raw {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]bson.Raw{}
	for _, cmd := range c.commands["createIndexes"] {
		vals, err := cmd.Lookup("indexes").Array().Values()
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			doc := v.Document()
			out[keyString(t, doc.Lookup("key").Document())] = doc
		}
	}
	return out
}

func TestIndexes(t *testing.T) {
	client, counter := countingClient(t)
	db := testDB(t, client)
	s := newStore(t, db)
	got := indexes(t, s.Collection())
	for _, k := range wantIndexes {
		if _, ok := got[k]; !ok {
			t.Errorf("index {%s} missing; have %v", k, mapKeys(got))
		}
	}
	if len(got) != len(wantIndexes) {
		t.Errorf("got %d indexes %v, want %d", len(got), mapKeys(got), len(wantIndexes))
	}
	// The sparse option is sent; FerretDB accepts it without keeping it.
	sent := createIndexesSent(t, counter)
	if len(sent) != len(wantIndexes)-1 {
		t.Errorf("createIndexes sent %d indexes, want %d (every one but _id)", len(sent), len(wantIndexes)-1)
	}
	if sp, ok := sent["idempotency_key:1"].Lookup("sparse").BooleanOK(); !ok || !sp {
		t.Errorf("index {idempotency_key: 1} was not created sparse: %v", sent["idempotency_key:1"])
	}
	if sp := got["idempotency_key:1"].Sparse; (sp == nil || !*sp) && !isFerretDB(t) {
		t.Errorf("index {idempotency_key: 1} is not sparse")
	}
	if ttl := got["finished_at:1"]; ttl.Name != "" {
		t.Errorf("TTL index %q present without WithRetention", ttl.Name)
	}
	if s.Collection().Name() != "taskruns" {
		t.Errorf("collection = %q, want taskruns", s.Collection().Name())
	}

	// New again (on a database with data) changes nothing and sends no
	// createIndexes.
	if err := s.Write(t.Context(), []taskrun.TaskRun{sampleRun("a", taskrun.StatusSuccess, base)}); err != nil {
		t.Fatal(err)
	}
	counter.reset()
	s2 := newStore(t, db)
	if n := counter.reset()["createIndexes"]; n != 0 {
		t.Errorf("a second New sent %d createIndexes commands, want 0", n)
	}
	if again := indexes(t, s2.Collection()); !reflect.DeepEqual(mapKeys(again), mapKeys(got)) {
		t.Errorf("indexes after a second New = %v, want %v", mapKeys(again), mapKeys(got))
	}
	if _, err := s2.Get(t.Context(), "a"); err != nil {
		t.Errorf("Get through the second store: %v", err)
	}

	// A missing index is created again, the others are left alone.
	if err := s.Collection().Indexes().DropOne(t.Context(), "trace_id_1"); err != nil {
		t.Fatal(err)
	}
	counter.reset()
	newStore(t, db)
	if sent := createIndexesSent(t, counter); len(sent) != 1 || sent["trace_id:1"] == nil {
		t.Errorf("New after dropping trace_id_1 created %v, want only {trace_id: 1}", mapKeys(sent))
	}
	if again := indexes(t, s2.Collection()); !reflect.DeepEqual(mapKeys(again), mapKeys(got)) {
		t.Errorf("indexes after re-creating one = %v, want %v", mapKeys(again), mapKeys(got))
	}
}

func mapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	return keys
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestCollectionOption(t *testing.T) {
	db := testDB(t, nil)
	s := newStore(t, db, mongostore.WithCollection("audit"))
	if err := s.Write(t.Context(), []taskrun.TaskRun{sampleRun("a", taskrun.StatusSuccess, base)}); err != nil {
		t.Fatal(err)
	}
	n, err := db.Collection("audit").CountDocuments(t.Context(), bson.D{})
	if err != nil || n != 1 {
		t.Errorf("documents in audit = %d, %v; want 1", n, err)
	}
	if s.Database().Name() != db.Name() {
		t.Errorf("Database() = %q, want %q", s.Database().Name(), db.Name())
	}
}

const ninetyDays = 90 * 24 * 3600

func TestRetention(t *testing.T) {
	client, counter := countingClient(t)
	db := testDB(t, client)
	s, err := mongostore.New(t.Context(), db, mongostore.WithMaxWritesPerCommand(maxWrites), mongostore.WithRetention(90*24*time.Hour))

	// The TTL index is asked for in any case.
	ttlSpec := createIndexesSent(t, counter)["finished_at:1"]
	if ttlSpec == nil {
		t.Fatal("New with WithRetention sent no index on finished_at")
	}
	if secs, ok := ttlSpec.Lookup("expireAfterSeconds").AsInt64OK(); !ok || secs != ninetyDays {
		t.Errorf("expireAfterSeconds sent = %v, want %d", ttlSpec.Lookup("expireAfterSeconds"), ninetyDays)
	}
	if err != nil {
		if isFerretDB(t) && strings.Contains(err.Error(), "expireAfterSeconds") {
			// The server has no TTL indexes (FerretDB 1.x): asked for the
			// right index above, New must fail and say why, which it did.
			t.Logf("FerretDB refuses TTL indexes, and New says so: %v", err)
			return
		}
		t.Fatalf("New with WithRetention: %v", err)
	}

	ttl, ok := indexes(t, s.Collection())["finished_at:1"]
	if !ok {
		t.Fatal("no index on finished_at with WithRetention")
	}
	if ttl.ExpireAfterSeconds == nil || *ttl.ExpireAfterSeconds != ninetyDays {
		t.Errorf("expireAfterSeconds = %v, want %d", ttl.ExpireAfterSeconds, ninetyDays)
	}
	// The same retention again is a no-op (rounded up to whole seconds).
	counter.reset()
	newStore(t, db, mongostore.WithRetention(90*24*time.Hour-time.Millisecond))
	if n := counter.reset(); n["createIndexes"]+n["collMod"] != 0 {
		t.Errorf("New with the same retention sent %v", n)
	}
	// A store without the option leaves the index alone.
	newStore(t, db)
	if _, ok := indexes(t, s.Collection())["finished_at:1"]; !ok {
		t.Error("New without WithRetention dropped the TTL index")
	}
	// Another retention changes the TTL.
	newStore(t, db, mongostore.WithRetention(2*time.Hour))
	ttl = indexes(t, s.Collection())["finished_at:1"]
	if ttl.ExpireAfterSeconds == nil || *ttl.ExpireAfterSeconds != 7200 {
		t.Errorf("expireAfterSeconds after the change = %v, want 7200", ttl.ExpireAfterSeconds)
	}
}

func TestOptionErrors(t *testing.T) {
	// No server needed: the options are checked before anything is sent.
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1/"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	db := client.Database("x")
	for _, o := range []mongostore.Option{
		mongostore.WithMaxWritesPerCommand(0),
		mongostore.WithMaxWritesPerCommand(100_001),
		mongostore.WithRetention(-time.Second),
		mongostore.WithCollection(""),
	} {
		if _, err := mongostore.New(t.Context(), db, o); err == nil {
			t.Errorf("New with a bad option: err = nil")
		}
	}
	if _, err := mongostore.New(t.Context(), nil); err == nil {
		t.Error("New(nil database): err = nil")
	}
	// Read-only touches nothing either.
	s, err := mongostore.New(t.Context(), db, mongostore.WithReadOnly())
	if err != nil {
		t.Fatalf("New read-only: %v", err)
	}
	if err := s.Write(t.Context(), []taskrun.TaskRun{{ID: "a"}}); !errors.Is(err, mongostore.ErrReadOnly) {
		t.Errorf("Write on a read-only store: %v, want ErrReadOnly", err)
	}
}

func TestReadOnly(t *testing.T) {
	db := testDB(t, nil)
	rw := newStore(t, db)
	if err := rw.Write(t.Context(), []taskrun.TaskRun{sampleRun("a", taskrun.StatusSuccess, base)}); err != nil {
		t.Fatal(err)
	}
	ro, err := mongostore.New(t.Context(), db, mongostore.WithReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	if runs, err := ro.Find(t.Context(), taskrun.Query{}); err != nil || len(runs) != 1 {
		t.Errorf("Find on the read-only store = %d runs, %v", len(runs), err)
	}

	fresh := testDB(t, nil)
	if _, err := mongostore.New(t.Context(), fresh, mongostore.WithReadOnly()); err != nil {
		t.Fatal(err)
	}
	names, err := fresh.ListCollectionNames(t.Context(), bson.D{})
	if err != nil || len(names) != 0 {
		t.Errorf("collections after a read-only New = %q, %v; want none", names, err)
	}
}

// TestDocumentShape reads a stored document raw: snake_case names, dates,
// input_dump and metadata as embedded documents, so mongosh queries work.
func TestDocumentShape(t *testing.T) {
	s := newStore(t, nil)
	r := sampleRun("shape-1", taskrun.StatusFailed, base.Add(1234*time.Millisecond))
	r.IdempotencyKey = "idem-1"
	r.InputDump = json.RawMessage(`{"job_ids":["j1","j2"],"options":{"force":true,"limit":10,"ratio":0.5}}`)
	r.LogEntries = []taskrun.LogEntry{{Time: base, Level: "INFO", Message: "deleting", Attributes: map[string]any{"count": int64(2)}}}
	r.Metadata = map[string]any{"dry_run": false, "execution_time": 1.5}
	noKey := sampleRun("shape-2", taskrun.StatusSuccess, base)
	if err := s.Write(t.Context(), []taskrun.TaskRun{r, noKey}); err != nil {
		t.Fatal(err)
	}
	raw, err := s.Collection().FindOne(t.Context(), bson.D{{Key: "_id", Value: "shape-1"}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	wantTypes := map[string]bson.Type{
		"_id": bson.TypeString, "operation_name": bson.TypeString, "category": bson.TypeString,
		"stage": bson.TypeString, "tags": bson.TypeArray, "idempotency_key": bson.TypeString,
		"actor": bson.TypeEmbeddedDocument, "status": bson.TypeString,
		"created_at": bson.TypeDateTime, "updated_at": bson.TypeDateTime, "started_at": bson.TypeDateTime,
		"finished_at": bson.TypeDateTime, "duration_ms": bson.TypeDouble, "orchestrated": bson.TypeBoolean,
		"orchestrator": bson.TypeString, "orchestrator_flow_run_id": bson.TypeString,
		"orchestrator_task_run_id": bson.TypeString, "input_dump": bson.TypeEmbeddedDocument,
		"result_refs": bson.TypeArray, "error_list": bson.TypeNull, "error_message": bson.TypeString,
		"error_type": bson.TypeString, "error_traceback": bson.TypeString, "logs_ref": bson.TypeString,
		"log_entries": bson.TypeArray, "metadata": bson.TypeEmbeddedDocument, "trace_id": bson.TypeString,
		"span_id": bson.TypeString, "parent_span_id": bson.TypeString, "service_name": bson.TypeString,
	}
	elems, err := raw.Elements()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range elems {
		seen[e.Key()] = true
		want, ok := wantTypes[e.Key()]
		if !ok {
			t.Errorf("unexpected field %q in the stored document", e.Key())
			continue
		}
		if got := e.Value().Type; got != want {
			t.Errorf("field %q has BSON type %s, want %s", e.Key(), got, want)
		}
	}
	for k := range wantTypes {
		if !seen[k] {
			t.Errorf("field %q missing from the stored document", k)
		}
	}
	for path, want := range map[string]any{
		"actor.user_id":                  "alice",
		"input_dump.options.force":       true,
		"input_dump.options.limit":       int32(10),
		"input_dump.options.ratio":       0.5,
		"metadata.execution_time":        1.5,
		"result_refs.0.document_id":      "j1",
		"log_entries.0.attributes.count": int64(2),
	} {
		v, err := raw.LookupErr(strings.Split(path, ".")...)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		var got any
		switch want.(type) {
		case string:
			got = v.StringValue()
		case bool:
			got = v.Boolean()
		case int32:
			got = v.Int32()
		case int64:
			got = v.Int64()
		case float64:
			got = v.Double()
		}
		if got != want {
			t.Errorf("%s = %v (%s), want %v", path, got, v.Type, want)
		}
	}
	if got := raw.Lookup("started_at").Time().UTC(); !got.Equal(r.StartedAt) {
		t.Errorf("started_at = %v, want %v", got, r.StartedAt)
	}

	// The idempotency key is left out when empty, for the sparse index.
	raw2, err := s.Collection().FindOne(t.Context(), bson.D{{Key: "_id", Value: "shape-2"}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw2.LookupErr("idempotency_key"); err == nil {
		t.Error("an empty idempotency_key is stored")
	}

	// The queries of the package doc work on the stored documents.
	for _, f := range []bson.D{
		{{Key: "status", Value: "FAILED"}, {Key: "operation_name", Value: "bulk_delete_jobs"}},
		{{Key: "input_dump.options.force", Value: true}},
		{{Key: "actor.user_id", Value: "alice"}, {Key: "started_at", Value: bson.D{{Key: "$gt", Value: base}}}},
		{{Key: "metadata.execution_time", Value: bson.D{{Key: "$gte", Value: 1}}}},
	} {
		n, err := s.Collection().CountDocuments(t.Context(), f)
		if err != nil || n != 1 {
			t.Errorf("count(%v) = %d, %v; want 1", f, n, err)
		}
	}
}

// TestPlainValues checks that metadata and log attributes read back as the
// plain Go values JSON decoding gives, nested ones included, and that
// input_dump keeps its key order.
func TestPlainValues(t *testing.T) {
	s := newStore(t, nil)
	r := sampleRun("plain-1", taskrun.StatusSuccess, base)
	r.InputDump = json.RawMessage(`{"z":1,"a":{"date":"2025-06-01","y":[1,2.5,"x",null,true,{"k":"v"}]},"big":9007199254740993,"neg":-3,"e":1e3}`)
	r.Metadata = map[string]any{
		"dry_run": true,
		"count":   3,
		"int64":   int64(1) << 40,
		"ratio":   0.25,
		"name":    "acme",
		"tags":    []string{"a", "b"},
		"ints":    []int64{1, 2},
		"nested":  map[string]any{"list": []any{"x", 1.5, map[string]any{"deep": false}}, "empty": map[string]any{}},
		"raw":     json.RawMessage(`{"from":"json","n":[1,2]}`),
		"nothing": nil,
	}
	r.LogEntries = []taskrun.LogEntry{
		{Time: base, Level: "INFO", Message: "with attributes", Attributes: map[string]any{
			"job": "j-1", "n": int64(3), "ok": true, "group": map[string]any{"a": 1.0}, "list": []string{"x"},
		}},
		{Time: base, Level: "DEBUG", Message: "no attributes"},
		{Time: base, Level: "DEBUG", Message: "empty attributes", Attributes: map[string]any{}},
	}
	if err := s.Write(t.Context(), []taskrun.TaskRun{r}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantMeta := map[string]any{
		"dry_run": true,
		"count":   int64(3),
		"int64":   int64(1) << 40,
		"ratio":   0.25,
		"name":    "acme",
		"tags":    []any{"a", "b"},
		"ints":    []any{int64(1), int64(2)},
		"nested":  map[string]any{"list": []any{"x", 1.5, map[string]any{"deep": false}}, "empty": map[string]any{}},
		"raw":     map[string]any{"from": "json", "n": []any{int64(1), int64(2)}},
		"nothing": nil,
	}
	if !reflect.DeepEqual(got.Metadata, wantMeta) {
		t.Errorf("Metadata =\n%#v\nwant\n%#v", got.Metadata, wantMeta)
	}
	wantAttrs := []map[string]any{
		{"job": "j-1", "n": int64(3), "ok": true, "group": map[string]any{"a": 1.0}, "list": []any{"x"}},
		nil,
		{},
	}
	for i, want := range wantAttrs {
		if g := got.LogEntries[i].Attributes; !reflect.DeepEqual(g, want) || (g == nil) != (want == nil) {
			t.Errorf("LogEntries[%d].Attributes = %#v, want %#v", i, g, want)
		}
	}
	// Key order, integers beyond 2^53 and the like survive as they were.
	if want := `{"z":1,"a":{"date":"2025-06-01","y":[1,2.5,"x",null,true,{"k":"v"}]},"big":9007199254740993,"neg":-3,"e":1000}`; string(got.InputDump) != want {
		t.Errorf("InputDump = %s, want %s", got.InputDump, want)
	}
	// The JSON of the run read back is the JSON of the run written.
	wj, _ := json.Marshal(r.Metadata)
	gj, _ := json.Marshal(got.Metadata)
	var wv, gv any
	_ = json.Unmarshal(wj, &wv)
	_ = json.Unmarshal(gj, &gv)
	if !reflect.DeepEqual(wv, gv) {
		t.Errorf("JSON of Metadata = %s, want %s", gj, wj)
	}
	// Nil and empty collections keep their difference.
	r2 := taskrun.TaskRun{ID: "plain-2", Status: taskrun.StatusRunning, StartedAt: base, Tags: []string{}, Metadata: map[string]any{}}
	if err := s.Write(t.Context(), []taskrun.TaskRun{r2}); err != nil {
		t.Fatal(err)
	}
	got2, err := s.Get(t.Context(), r2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got2.Tags == nil || got2.Metadata == nil || got2.ResultRefs != nil || got2.LogEntries != nil || got2.InputDump != nil || got2.FinishedAt != nil {
		t.Errorf("nil/empty not kept: tags %#v, metadata %#v, refs %#v, logs %#v, input %q, finished %v",
			got2.Tags, got2.Metadata, got2.ResultRefs, got2.LogEntries, got2.InputDump, got2.FinishedAt)
	}
}

// TestSpecialKeys writes user keys with dots, a leading $ and a percent
// sign. The store escapes them (FerretDB refuses such field names, MongoDB
// makes them awkward to query) and gives them back as written.
func TestSpecialKeys(t *testing.T) {
	s := newStore(t, nil)
	odd := sampleRun("odd", taskrun.StatusSuccess, base)
	odd.InputDump = json.RawMessage(`{"when":{"$date":"not a date"},"a.b":1,"100%":true}`)
	odd.Metadata = map[string]any{"http.method": "GET", "$set": "x"}
	odd.LogEntries = []taskrun.LogEntry{{Time: base, Level: "INFO", Message: "m", Attributes: map[string]any{"user.id": "u1", "a%2Eb": "literal"}}}
	batch := []taskrun.TaskRun{
		sampleRun("before", taskrun.StatusSuccess, base),
		odd,
		sampleRun("after", taskrun.StatusSuccess, base),
	}
	if err := s.Write(t.Context(), batch); err != nil {
		t.Fatalf("Write: %v", err)
	}
	for _, id := range []string{"before", "after"} {
		if _, err := s.Get(t.Context(), id); err != nil {
			t.Errorf("run %q of the batch: %v", id, err)
		}
	}
	got, err := s.Get(t.Context(), "odd")
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"when":{"$date":"not a date"},"a.b":1,"100%":true}`; string(got.InputDump) != want {
		t.Errorf("InputDump = %s, want %s", got.InputDump, want)
	}
	if got.Metadata["http.method"] != "GET" || got.Metadata["$set"] != "x" ||
		got.LogEntries[0].Attributes["user.id"] != "u1" || got.LogEntries[0].Attributes["a%2Eb"] != "literal" {
		t.Errorf("special keys: metadata %v, attributes %v", got.Metadata, got.LogEntries[0].Attributes)
	}
	raw, err := s.Collection().FindOne(t.Context(), bson.D{{Key: "_id", Value: "odd"}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if v, err := raw.LookupErr("metadata", "http%2Emethod"); err != nil || v.StringValue() != "GET" {
		t.Errorf("stored metadata key not escaped: %v", raw.Lookup("metadata"))
	}
}

func TestWriteRejects(t *testing.T) {
	s := newStore(t, nil)
	good := sampleRun("good", taskrun.StatusSuccess, base)
	for name, runs := range map[string][]taskrun.TaskRun{
		"empty id": {good, {OperationName: "noop"}},
		"bad input": {good, func() taskrun.TaskRun {
			r := sampleRun("bad", taskrun.StatusRunning, base)
			r.InputDump = json.RawMessage(`{"a":`)
			return r
		}()},
		"input tail": {good, func() taskrun.TaskRun {
			r := sampleRun("bad", taskrun.StatusRunning, base)
			r.InputDump = json.RawMessage(`{} {}`)
			return r
		}()},
	} {
		err := s.Write(t.Context(), runs)
		if err == nil || !strings.Contains(err.Error(), "run 1 of 2") {
			t.Errorf("%s: Write = %v, want an error naming run 1 of 2", name, err)
		}
	}
	if runs, err := s.Find(t.Context(), taskrun.Query{}); err != nil || len(runs) != 0 {
		t.Errorf("after rejected batches, Find = %d runs, %v; want none written", len(runs), err)
	}
}

// commandCounter counts and keeps the commands a client sends.
type commandCounter struct {
	mu       sync.Mutex
	counts   map[string]int
	commands map[string][]bson.Raw
}

func (c *commandCounter) started(_ context.Context, e *event.CommandStartedEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[e.CommandName]++
	c.commands[e.CommandName] = append(c.commands[e.CommandName], slices.Clone(e.Command))
}

// reset returns the counts since the last reset and forgets the commands.
func (c *commandCounter) reset() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.counts
	c.counts = map[string]int{}
	c.commands = map[string][]bson.Raw{}
	return old
}

// countingClient returns a client of its own whose commands c counts.
func countingClient(t *testing.T) (*mongo.Client, *commandCounter) {
	t.Helper()
	c := &commandCounter{}
	c.reset()
	sharedClient(t) // skips or fails without a server
	client, err := mongo.Connect(options.Client().ApplyURI(testURI(t)).SetMonitor(&event.CommandMonitor{Started: c.started}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Disconnect(ctx)
	})
	if err := client.Ping(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	return client, c
}

// TestOneRoundTripPerBatch counts the commands a Write sends.
func TestOneRoundTripPerBatch(t *testing.T) {
	client, counter := countingClient(t)
	runs := func(prefix string, n int, status taskrun.Status) []taskrun.TaskRun {
		out := make([]taskrun.TaskRun, n)
		for i := range out {
			out[i] = sampleRun(fmt.Sprintf("%s-%02d", prefix, i), status, base.Add(time.Duration(i)*time.Second))
		}
		return out
	}
	tests := []struct {
		name      string
		maxWrites int
		batches   [][]taskrun.TaskRun
		want      int // update commands of the last batch
	}{
		{"40 runs", 50, [][]taskrun.TaskRun{runs("a", 40, taskrun.StatusRunning)}, 1},
		{"40 runs, 10 per command", 10, [][]taskrun.TaskRun{runs("a", 40, taskrun.StatusRunning)}, 4},
		{"40 runs, 10 per command, 41st", 10, [][]taskrun.TaskRun{runs("a", 41, taskrun.StatusRunning)}, 5},
		{"40 final runs over 40 running ones", 50, [][]taskrun.TaskRun{runs("a", 40, taskrun.StatusRunning), runs("a", 40, taskrun.StatusSuccess)}, 1},
		{"40 runs written again", 50, [][]taskrun.TaskRun{runs("a", 40, taskrun.StatusSuccess), runs("a", 40, taskrun.StatusSuccess)}, 1},
		{"RUNNING and SUCCESS of 20 runs in one batch", 50, [][]taskrun.TaskRun{append(runs("a", 20, taskrun.StatusRunning), runs("a", 20, taskrun.StatusSuccess)...)}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := mongostore.New(t.Context(), testDB(t, client), mongostore.WithMaxWritesPerCommand(tt.maxWrites))
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range tt.batches {
				counter.reset()
				if err := s.Write(t.Context(), b); err != nil {
					t.Fatal(err)
				}
			}
			counts := counter.reset()
			if counts["update"] != tt.want || len(counts) != 1 {
				t.Errorf("commands of the last Write = %v, want exactly %d update commands", counts, tt.want)
			}
			last := tt.batches[len(tt.batches)-1]
			got, err := s.Find(t.Context(), taskrun.Query{Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			distinct := map[string]bool{}
			for _, r := range last {
				distinct[r.ID] = true
			}
			if want := len(distinct); len(got) != want {
				t.Errorf("Find after the writes: %d runs, want %d", len(got), want)
			}
			if st := last[len(last)-1].Status; got[0].Status != st {
				t.Errorf("status of the newest run = %s, want %s", got[0].Status, st)
			}
		})
	}
}

// TestRunningAfterFinal writes RUNNING after SUCCESS in a later batch: the
// final state stays, and the rejected upsert is not an error.
func TestRunningAfterFinal(t *testing.T) {
	s := newStore(t, nil)
	ctx := t.Context()
	final := sampleRun("r", taskrun.StatusSuccess, base)
	if err := s.Write(ctx, []taskrun.TaskRun{final}); err != nil {
		t.Fatal(err)
	}
	other := sampleRun("other", taskrun.StatusRunning, base)
	if err := s.Write(ctx, []taskrun.TaskRun{sampleRun("r", taskrun.StatusRunning, base), other}); err != nil {
		t.Fatalf("Write RUNNING after SUCCESS: %v", err)
	}
	got, err := s.Get(ctx, "r")
	if err != nil || got.Status != taskrun.StatusSuccess {
		t.Errorf("Get = %s, %v; want SUCCESS", got.Status, err)
	}
	if _, err := s.Get(ctx, "other"); err != nil {
		t.Errorf("the other run of the batch: %v", err)
	}
}

func TestOpen(t *testing.T) {
	uri := testURI(t)
	name := dbName(t)
	// Put the database in the URI's path, keeping its options.
	head, query, _ := strings.Cut(uri, "?")
	scheme, rest, _ := strings.Cut(head, "://")
	hosts, _, _ := strings.Cut(rest, "/")
	u := scheme + "://" + hosts + "/" + name
	if query != "" {
		u += "?" + query
	}
	s, err := mongostore.Open(t.Context(), u, mongostore.WithMaxWritesPerCommand(maxWrites))
	if err != nil {
		t.Fatalf("Open(%q): %v", u, err)
	}
	db := s.Database()
	t.Cleanup(func() {
		c := sharedClient(t)
		if err := c.Database(name).Drop(context.Background()); err != nil {
			t.Errorf("drop: %v", err)
		}
	})
	if db.Name() != name {
		t.Errorf("Database().Name() = %q, want %q", db.Name(), name)
	}
	if err := s.Write(t.Context(), []taskrun.TaskRun{sampleRun("a", taskrun.StatusSuccess, base)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// Close disconnected the client Open made.
	if err := db.Client().Ping(t.Context(), nil); err == nil {
		t.Error("the client of an Open store still pings after Close")
	}
	// The data is there for the next Open.
	n, err := sharedClient(t).Database(name).Collection("taskruns").CountDocuments(t.Context(), bson.D{})
	if err != nil || n != 1 {
		t.Errorf("runs after Close = %d, %v; want 1", n, err)
	}
}

func TestCloseKeepsCallersClient(t *testing.T) {
	client, _ := countingClient(t)
	s, err := mongostore.New(t.Context(), testDB(t, client))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := client.Ping(t.Context(), nil); err != nil {
		t.Errorf("the caller's client after Close of a New store: %v", err)
	}
	if _, err := s.Get(t.Context(), "a"); !errors.Is(err, mongostore.ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	start := time.Now()
	s, err := mongostore.Open(t.Context(), "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500")
	if err == nil {
		s.Close(context.Background())
		t.Fatal("Open of an address without a server: err = nil")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Open took %s to fail, want about the 500ms server selection timeout", d)
	}
	if msg := err.Error(); !strings.Contains(msg, "127.0.0.1:1") || !strings.Contains(msg, "unreachable") {
		t.Errorf("error %q does not say which server is unreachable", msg)
	}
	t.Logf("Open error: %v", err)
}

func TestOpenBadURI(t *testing.T) {
	for _, uri := range []string{"", "postgres://x/db", "mongodb://", "mongodb://host/a.b", "mongodb://host/a%2Fb"} {
		if s, err := mongostore.Open(t.Context(), uri); err == nil {
			s.Close(context.Background())
			t.Errorf("Open(%q): err = nil", uri)
		}
	}
}
