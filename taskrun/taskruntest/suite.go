package taskruntest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/taskrun"
)

// RunStoreSuite is the conformance suite of [taskrun.Store]: every store
// (memstore, sqlitestore, mongostore, yours) must pass it.
//
// newStore must return a fresh, empty store each time it is called; the
// suite calls it once per subtest and closes the store with t.Cleanup (so
// newStore must not close it). Subtests run one after the other, never in
// parallel.
//
// The suite keeps its data small: no Write carries more than 50 runs and no
// subtest writes more than about 110 documents, so it also runs against slow
// test servers. Times are whole milliseconds, the precision a store must
// keep; attribute and metadata values are strings, float64 numbers and
// bools, which survive JSON and BSON round trips. Nil and empty slices and
// maps compare equal, JSON is compared by meaning and times with
// time.Equal, so stores may normalise those.
func RunStoreSuite(t *testing.T, newStore func(t *testing.T) taskrun.Store) {
	t.Helper()
	s := storeSuite{newStore: newStore}
	t.Run("GetUnknown", s.testGetUnknown)
	t.Run("RoundTrip", s.testRoundTrip)
	t.Run("NilAndEmpty", s.testNilAndEmpty)
	t.Run("EmptyBatch", s.testEmptyBatch)
	t.Run("RejectsEmptyID", s.testRejectsEmptyID)
	t.Run("Idempotent", s.testIdempotent)
	t.Run("FinalStateKept", s.testFinalStateKept)
	t.Run("Order", s.testOrder)
	t.Run("Query", s.testQuery)
	t.Run("Paging", s.testPaging)
	t.Run("InvalidQuery", s.testInvalidQuery)
	t.Run("DefaultLimit", s.testDefaultLimit)
	t.Run("ConcurrentWrites", s.testConcurrentWrites)
	t.Run("ConcurrentFinalRace", s.testConcurrentFinalRace)
	t.Run("CanceledContext", s.testCanceledContext)
	t.Run("Closed", s.testClosed)
	t.Run("IdempotencyLookup", s.testIdempotencyLookup)
}

type storeSuite struct {
	newStore func(t *testing.T) taskrun.Store
}

// suiteBase is the started_at of the fixtures: a whole minute, in UTC.
var suiteBase = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// open returns a fresh store that is closed when t ends.
func (s storeSuite) open(t *testing.T) taskrun.Store {
	t.Helper()
	st := s.newStore(t)
	if st == nil {
		t.Fatal("newStore returned nil")
	}
	t.Cleanup(func() {
		if err := st.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st
}

func suiteWrite(t *testing.T, st taskrun.Store, runs ...taskrun.TaskRun) {
	t.Helper()
	for len(runs) > 0 {
		n := min(len(runs), 50)
		if err := st.Write(t.Context(), runs[:n]); err != nil {
			t.Fatalf("Write of %d runs: %v", n, err)
		}
		runs = runs[n:]
	}
}

func suiteGet(t *testing.T, st taskrun.Store, id string) taskrun.TaskRun {
	t.Helper()
	r, err := st.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get(%q): %v", id, err)
	}
	return r
}

func suiteFind(t *testing.T, st taskrun.Store, q taskrun.Query) []taskrun.TaskRun {
	t.Helper()
	runs, err := st.Find(t.Context(), q)
	if err != nil {
		t.Fatalf("Find(%s): %v", suiteQuery(q), err)
	}
	return runs
}

// suiteQuery formats the set fields of q, pointers dereferenced.
func suiteQuery(q taskrun.Query) string {
	var parts []string
	add := func(name string, v any) { parts = append(parts, fmt.Sprintf("%s:%v", name, v)) }
	for _, f := range []struct{ name, v string }{
		{"Operation", q.Operation}, {"Status", q.Status}, {"UserID", q.UserID}, {"Channel", q.Channel},
		{"FlowRunID", q.FlowRunID}, {"TraceID", q.TraceID}, {"IdempotencyKey", q.IdempotencyKey},
		{"Tag", q.Tag}, {"Before", q.Before},
	} {
		if f.v != "" {
			add(f.name, fmt.Sprintf("%q", f.v))
		}
	}
	if q.Orchestrated != nil {
		add("Orchestrated", *q.Orchestrated)
	}
	if q.Ref != nil {
		add("Ref", fmt.Sprintf("%q", q.Ref.String()))
	}
	if !q.Since.IsZero() {
		add("Since", q.Since.Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		add("Until", q.Until.Format(time.RFC3339Nano))
	}
	if q.Limit != 0 {
		add("Limit", q.Limit)
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func suiteIDs(runs []taskrun.TaskRun) []string {
	ids := make([]string, len(runs))
	for i := range runs {
		ids[i] = runs[i].ID
	}
	return ids
}

// suiteExpectIDs fails t unless runs hold exactly the ids want, in order.
func suiteExpectIDs(t *testing.T, what string, runs []taskrun.TaskRun, want []string) {
	t.Helper()
	if got := suiteIDs(runs); !slices.Equal(got, want) {
		t.Errorf("%s: got ids %q, want %q", what, got, want)
	}
}

// ---------------------------------------------------------------------------
// Comparison

// suiteCanon returns r in a canonical form that stores may not change:
// times in UTC without monotonic reading, empty slices and maps nil, JSON
// re-encoded (sorted keys, numbers as float64).
func suiteCanon(r taskrun.TaskRun) taskrun.TaskRun {
	utc := func(t time.Time) time.Time { return t.UTC().Round(0) }
	r.CreatedAt, r.UpdatedAt, r.StartedAt = utc(r.CreatedAt), utc(r.UpdatedAt), utc(r.StartedAt)
	if r.FinishedAt != nil {
		f := utc(*r.FinishedAt)
		r.FinishedAt = &f
	}
	if len(r.Tags) == 0 {
		r.Tags = nil
	}
	if len(r.ResultRefs) == 0 {
		r.ResultRefs = nil
	}
	if len(r.ErrorList) == 0 {
		r.ErrorList = nil
	}
	r.InputDump = suiteCanonJSON(r.InputDump)
	r.OutputDump = suiteCanonJSON(r.OutputDump)
	if len(r.LogEntries) == 0 {
		r.LogEntries = nil
	} else {
		entries := make([]taskrun.LogEntry, len(r.LogEntries))
		for i, e := range r.LogEntries {
			e.Time = utc(e.Time)
			e.Attributes = suiteCanonMap(e.Attributes)
			entries[i] = e
		}
		r.LogEntries = entries
	}
	r.Metadata = suiteCanonMap(r.Metadata)
	return r
}

func suiteCanonJSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return raw // compared as it is, and reported if it differs
	}
	out, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return out
}

// suiteCanonMap compares maps leniently: through a JSON round trip, so that
// int64 and float64 numbers, and []string and []any, are equal.
func suiteCanonMap(m map[string]any) map[string]any {
	if len(m) == 0 {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return m
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return m
	}
	return out
}

// suiteCompare reports every field of got that differs from want, after
// suiteCanon. It walks the fields by reflection, so a field added to TaskRun
// is compared too.
func suiteCompare(t *testing.T, what string, got, want taskrun.TaskRun) {
	t.Helper()
	g, w := reflect.ValueOf(suiteCanon(got)), reflect.ValueOf(suiteCanon(want))
	typ := g.Type()
	for i := range typ.NumField() {
		gf, wf := g.Field(i).Interface(), w.Field(i).Interface()
		if !reflect.DeepEqual(gf, wf) {
			t.Errorf("%s: run %q: field %s = %s, want %s", what, want.ID, typ.Field(i).Name, suiteShow(gf), suiteShow(wf))
		}
	}
}

func suiteShow(v any) string {
	switch v := v.(type) {
	case json.RawMessage:
		return fmt.Sprintf("%s", v)
	case *time.Time:
		if v == nil {
			return "nil"
		}
		return v.Format(time.RFC3339Nano)
	case time.Time:
		return v.Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("%#v", v)
}

// ---------------------------------------------------------------------------
// Fixtures

func suiteMS(ms int) time.Duration { return time.Duration(ms) * time.Millisecond }

// suiteFullRun returns a run with every field set.
func suiteFullRun(id string) taskrun.TaskRun {
	started := suiteBase.Add(suiteMS(1234))
	finished := started.Add(suiteMS(2500))
	return taskrun.TaskRun{
		ID:             id,
		OperationName:  "update_job",
		Category:       "jobs",
		Stage:          "production",
		Tags:           []string{"jobs", "admin", "bulk"},
		IdempotencyKey: "idem-" + id,
		Actor:          taskrun.Actor{UserID: "alice", Channel: "cli"},
		Status:         taskrun.StatusFailed,
		CreatedAt:      started,
		UpdatedAt:      finished,
		StartedAt:      started,
		FinishedAt:     &finished,
		DurationMS:     2500.5,

		Orchestrated:          true,
		Orchestrator:          "prefect",
		OrchestratorFlowRunID: "flow-" + id,
		OrchestratorTaskRunID: "task-" + id,

		InputDump: json.RawMessage(`{"user_id":"alice","job_id":"j-1","dry_run":false,` +
			`"fields":{"title":"Night shift","priority":2.5,"labels":["a","b"]},"note":null}`),
		OutputDump: json.RawMessage(`{"job_id":"j-1","changed":["title"],"count":1}`),
		ResultRefs: []otelop.Ref{{Collection: "jobs", DocumentID: "j-1"}, {Collection: "users", DocumentID: "u-7"}},
		ErrorList: []otelop.ItemError{
			{Item: "j-2", Error: "not found"},
			{Item: "j-3", Error: "locked by bob"},
		},
		ErrorMessage:   "2 of 3 jobs failed",
		ErrorType:      "partial_failure",
		ErrorTraceback: "goroutine 1 [running]:\nmain.main()\n\t/app/main.go:42 +0x1d\n",
		LogsRef:        "logs/" + id,
		LogEntries: []taskrun.LogEntry{
			{
				Time:    started.Add(suiteMS(10)),
				Level:   "INFO",
				Message: "updating jobs",
				Attributes: map[string]any{
					"count": float64(3), "job": "j-1", "verbose": true, "ratio": 0.25,
				},
			},
			{
				Time:    started.Add(suiteMS(2400)),
				Level:   "ERROR",
				Message: "job locked",
				Attributes: map[string]any{
					"job": "j-3", "holder": "bob",
				},
			},
		},
		Metadata: map[string]any{
			"dry_run": false, "test_mode": true, "verbose": true,
			"execution_time": 2.5005, "tenant": "acme", "attempt": float64(2),
		},

		TraceID:      "4bf92f3577b34da6a3ce929d0e0e4736",
		SpanID:       "00f067aa0ba902b7",
		ParentSpanID: "a3ce929d0e0e4736",
		ServiceName:  "jobs-api",
	}
}

// CheckPopulated fails t if a field of run (or of a struct, the first
// element of a slice of structs, or a pointer it holds) is zero. A round-trip test calls it on the run it
// writes, so that it covers every field, including ones added to TaskRun
// later.
func CheckPopulated(t testing.TB, run taskrun.TaskRun) {
	t.Helper()
	checkPopulated(t, reflect.ValueOf(run), "TaskRun")
}

func checkPopulated(t testing.TB, v reflect.Value, path string) {
	t.Helper()
	if v.IsZero() {
		t.Errorf("%s is zero: set it in the fixture so that the round trip covers it", path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			return
		}
		for i := range v.NumField() {
			checkPopulated(t, v.Field(i), path+"."+v.Type().Field(i).Name)
		}
	case reflect.Slice:
		// The first element stands for the others, which a fixture may
		// leave partly empty on purpose (nil against empty).
		if v.Type().Elem().Kind() == reflect.Struct {
			checkPopulated(t, v.Index(0), path+"[0]")
		}
	case reflect.Pointer:
		checkPopulated(t, v.Elem(), "*"+path)
	}
}

// suiteRow describes one run of the query fixture.
type suiteRow struct {
	id      string
	minute  int // started_at = suiteBase + minute
	op      string
	status  taskrun.Status
	user    string
	channel string
	flow    string
	trace   string
	key     string
	tags    []string
	orch    bool
	refs    []string // "collection/document_id"
}

// suiteRows is the query fixture. Ids do not follow time, and four groups
// share a started_at (minutes 7, 9, 11 and 17), so a store that sorts by id
// alone, by insertion order, or breaks ties the wrong way fails.
//
// Newest first, the order is:
//
//	r11 r21 r20 r16 r06 r24 r18 r01 r14 r13 r23 r09 r08 r07 r22 r04 r03 r19 r12 r15 r02 r17 r10 r05
var suiteRows = []suiteRow{
	{"r01", 12, "create_job", "SUCCESS", "alice", "api", "", "tr-a", "", []string{"jobs"}, false, []string{"jobs/j1"}},
	{"r02", 3, "update_job", "FAILED", "bob", "cli", "", "tr-a", "", []string{"jobs", "admin"}, false, nil},
	{"r03", 7, "create_job", "RUNNING", "alice", "api", "flow-1", "tr-b", "key-1", []string{"jobs"}, true, []string{"jobs/j2"}},
	{"r04", 7, "delete_job", "SUCCESS", "carol", "web", "flow-1", "tr-b", "", []string{"admin"}, true, []string{"jobs/j1"}},
	{"r05", 0, "create_job", "FAILED", "alice", "cli", "", "tr-c", "key-2", []string{}, false, nil},
	{"r06", 15, "update_job", "SUCCESS", "bob", "api", "flow-2", "tr-c", "", []string{"jobs"}, true, []string{"jobs/j3", "users/u1"}},
	{"r07", 9, "update_job", "PENDING", "carol", "api", "", "tr-d", "", nil, false, nil},
	{"r08", 9, "create_job", "SUCCESS", "alice", "api", "flow-2", "tr-d", "key-3", []string{"jobs", "batch"}, true, []string{"jobs/j4"}},
	{"r09", 9, "create_job", "FAILED", "bob", "web", "flow-2", "tr-d", "", []string{"batch"}, true, nil},
	{"r10", 1, "delete_job", "SUCCESS", "alice", "api", "", "tr-e", "", []string{"admin"}, false, []string{"jobs/j2"}},
	{"r11", 18, "update_job", "RUNNING", "bob", "cli", "flow-3", "tr-e", "key-4", []string{"jobs"}, true, []string{"jobs/j5"}},
	{"r12", 5, "create_job", "SUCCESS", "carol", "api", "", "tr-f", "", []string{"jobs"}, false, []string{"jobs/j6"}},
	{"r13", 11, "update_job", "FAILED", "alice", "web", "flow-3", "tr-f", "", []string{"jobs", "admin"}, true, []string{"jobs/j1"}},
	{"r14", 11, "create_job", "SUCCESS", "alice", "api", "", "tr-g", "key-1", []string{"batch"}, false, nil},
	{"r15", 4, "delete_job", "FAILED", "bob", "api", "", "tr-g", "", []string{"admin"}, false, []string{"jobs/j3"}},
	{"r16", 16, "create_job", "SUCCESS", "carol", "cli", "flow-4", "tr-h", "", []string{"jobs"}, true, []string{"jobs/j7"}},
	{"r17", 2, "update_job", "SUCCESS", "alice", "api", "flow-4", "tr-h", "", []string{"jobs"}, true, []string{"users/u1"}},
	{"r18", 13, "create_job", "RUNNING", "bob", "api", "", "tr-i", "key-6", []string{"batch"}, false, []string{"jobs/j8"}},
	{"r19", 6, "delete_job", "SUCCESS", "carol", "web", "", "tr-i", "", []string{"admin"}, false, []string{"users/j1"}},
	{"r20", 17, "create_job", "FAILED", "alice", "api", "flow-5", "tr-j", "", []string{"jobs"}, true, []string{"jobs/j1"}},
	{"r21", 17, "update_job", "SUCCESS", "bob", "api", "flow-5", "tr-j", "key-7", []string{"jobs", "batch"}, true, []string{"jobs/j9"}},
	{"r22", 8, "create_job", "SUCCESS", "alice", "cli", "", "tr-k", "", []string{"jobs"}, false, []string{"users/u2"}},
	{"r23", 10, "update_job", "FAILED", "carol", "api", "", "tr-k", "", []string{}, false, nil},
	{"r24", 14, "create_job", "SUCCESS", "alice", "api", "flow-1", "tr-l", "", []string{"jobs"}, true, []string{"jobs/j10"}},
}

// suiteAllIDs is the fixture newest first.
var suiteAllIDs = []string{
	"r11", "r21", "r20", "r16", "r06", "r24", "r18", "r01", "r14", "r13", "r23", "r09",
	"r08", "r07", "r22", "r04", "r03", "r19", "r12", "r15", "r02", "r17", "r10", "r05",
}

func (row suiteRow) run() taskrun.TaskRun {
	started := suiteBase.Add(time.Duration(row.minute) * time.Minute)
	r := taskrun.TaskRun{
		ID:                    row.id,
		OperationName:         row.op,
		Category:              "jobs",
		Tags:                  row.tags,
		IdempotencyKey:        row.key,
		Actor:                 taskrun.Actor{UserID: row.user, Channel: row.channel},
		Status:                row.status,
		CreatedAt:             started,
		UpdatedAt:             started,
		StartedAt:             started,
		Orchestrated:          row.orch,
		OrchestratorFlowRunID: row.flow,
		InputDump:             json.RawMessage(`{"row":"` + row.id + `"}`),
		Metadata:              map[string]any{"dry_run": false},
		TraceID:               row.trace,
		SpanID:                "span-" + row.id,
		ServiceName:           "jobs-api",
	}
	if row.orch {
		r.Orchestrator = "prefect"
		r.OrchestratorTaskRunID = "task-" + row.id
	}
	for _, s := range row.refs {
		ref, err := otelop.ParseRef(s)
		if err != nil {
			panic(err)
		}
		r.ResultRefs = append(r.ResultRefs, ref)
	}
	if row.status.Final() {
		f := started.Add(1500 * time.Millisecond)
		r.FinishedAt, r.UpdatedAt, r.DurationMS = &f, f, 1500
		r.Metadata["execution_time"] = 1.5
		if row.status == taskrun.StatusFailed {
			r.ErrorMessage, r.ErrorType = "boom", "error"
		}
	}
	return r
}

// writeFixture writes suiteRows in an order that is neither by id nor by
// time, in two batches.
func writeFixture(t *testing.T, st taskrun.Store) map[string]taskrun.TaskRun {
	t.Helper()
	order := []int{13, 2, 20, 7, 0, 22, 9, 16, 4, 11, 18, 1, 23, 6, 15, 3, 21, 10, 8, 19, 5, 14, 17, 12}
	if len(order) != len(suiteRows) {
		panic("taskruntest: fixture order does not cover every row")
	}
	byID := make(map[string]taskrun.TaskRun, len(suiteRows))
	runs := make([]taskrun.TaskRun, 0, len(suiteRows))
	for _, i := range order {
		r := suiteRows[i].run()
		byID[r.ID] = r
		runs = append(runs, r)
	}
	suiteWrite(t, st, runs[:11]...)
	suiteWrite(t, st, runs[11:]...)
	return byID
}

func suiteBool(b bool) *bool { return &b }

// ---------------------------------------------------------------------------
// Tests

func (s storeSuite) testGetUnknown(t *testing.T) {
	st := s.open(t)
	for _, id := range []string{"no-such-run", ""} {
		_, err := st.Get(t.Context(), id)
		if !errors.Is(err, taskrun.ErrNotFound) {
			t.Errorf("Get(%q) on an empty store: err = %v, want one matching taskrun.ErrNotFound", id, err)
		}
	}
	suiteWrite(t, st, suiteRows[0].run())
	if _, err := st.Get(t.Context(), "r01-not"); !errors.Is(err, taskrun.ErrNotFound) {
		t.Errorf("Get of an unknown id next to a stored one: err = %v, want one matching taskrun.ErrNotFound", err)
	}
}

func (s storeSuite) testRoundTrip(t *testing.T) {
	st := s.open(t)
	want := suiteFullRun("full-1")
	CheckPopulated(t, want)
	other := suiteFullRun("full-2")
	other.TraceID = "other-trace"
	suiteWrite(t, st, want, other)

	suiteCompare(t, "Get", suiteGet(t, st, want.ID), want)
	suiteCompare(t, "Get", suiteGet(t, st, other.ID), other)

	// Find returns whole documents too, not a projection.
	got := suiteFind(t, st, taskrun.Query{TraceID: want.TraceID})
	suiteExpectIDs(t, "Find by trace id", got, []string{want.ID})
	if len(got) == 1 {
		suiteCompare(t, "Find", got[0], want)
	}

	// The JSON of a stored run is the JSON of the run written.
	wj, _ := json.Marshal(suiteCanon(want))
	gj, _ := json.Marshal(suiteCanon(suiteGet(t, st, want.ID)))
	var wv, gv any
	if err := json.Unmarshal(wj, &wv); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(gj, &gv); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gv, wv) {
		t.Errorf("JSON of the stored run differs:\n got %s\nwant %s", gj, wj)
	}

	// Times in another zone are the same instants.
	zoned := suiteFullRun("full-zoned")
	tz := time.FixedZone("UTC-7", -7*3600)
	zoned.StartedAt = zoned.StartedAt.In(tz)
	zoned.CreatedAt = zoned.CreatedAt.In(tz)
	suiteWrite(t, st, zoned)
	suiteCompare(t, "Get (times in UTC-7)", suiteGet(t, st, zoned.ID), zoned)
}

func (s storeSuite) testNilAndEmpty(t *testing.T) {
	st := s.open(t)
	start := suiteBase.Add(time.Hour)
	minimal := taskrun.TaskRun{ID: "minimal", OperationName: "noop", Status: taskrun.StatusRunning, StartedAt: start}
	empty := taskrun.TaskRun{
		ID: "empty", OperationName: "noop", Status: taskrun.StatusSuccess,
		StartedAt: start.Add(time.Second), CreatedAt: start, UpdatedAt: start,
		Tags: []string{}, ResultRefs: []otelop.Ref{}, ErrorList: []otelop.ItemError{},
		LogEntries: []taskrun.LogEntry{{Time: start, Level: "INFO", Message: "no attributes"}},
		Metadata:   map[string]any{}, InputDump: json.RawMessage(`{}`),
	}
	suiteWrite(t, st, minimal, empty)
	suiteCompare(t, "Get", suiteGet(t, st, minimal.ID), minimal)
	suiteCompare(t, "Get", suiteGet(t, st, empty.ID), empty)
	got := suiteFind(t, st, taskrun.Query{})
	suiteExpectIDs(t, "Find all", got, []string{"empty", "minimal"})
	if g := suiteGet(t, st, minimal.ID); g.FinishedAt != nil {
		t.Errorf("Get(minimal): FinishedAt = %v, want nil", g.FinishedAt)
	}
	// Queries on fields the runs leave empty must not fail or match.
	for _, q := range []taskrun.Query{
		{Tag: "jobs"}, {Ref: &otelop.Ref{Collection: "jobs", DocumentID: "j1"}},
		{UserID: "alice"}, {IdempotencyKey: "k"}, {Orchestrated: suiteBool(true)},
	} {
		suiteExpectIDs(t, fmt.Sprintf("Find(%s)", suiteQuery(q)), suiteFind(t, st, q), nil)
	}
	suiteExpectIDs(t, "Find(orchestrated=false)", suiteFind(t, st, taskrun.Query{Orchestrated: suiteBool(false)}), []string{"empty", "minimal"})
}

func (s storeSuite) testEmptyBatch(t *testing.T) {
	st := s.open(t)
	for _, runs := range [][]taskrun.TaskRun{nil, {}} {
		if err := st.Write(t.Context(), runs); err != nil {
			t.Errorf("Write(%#v): %v", runs, err)
		}
	}
	suiteExpectIDs(t, "Find after empty writes", suiteFind(t, st, taskrun.Query{}), nil)
}

func (s storeSuite) testIdempotent(t *testing.T) {
	tests := []struct {
		name    string
		batches [][]string // ids to write, batch by batch
		want    []string
	}{
		{"twice in two writes", [][]string{{"a"}, {"a"}}, []string{"a"}},
		{"twice in one write", [][]string{{"a", "a"}}, []string{"a"}},
		{"batch written again", [][]string{{"a", "b", "c"}, {"c", "b", "a"}, {"b"}}, []string{"c", "b", "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := s.open(t)
			runs := map[string]taskrun.TaskRun{}
			for i, id := range []string{"a", "b", "c"} {
				r := suiteFullRun(id)
				r.StartedAt = suiteBase.Add(time.Duration(i) * time.Second)
				runs[id] = r
			}
			for _, batch := range tt.batches {
				var rs []taskrun.TaskRun
				for _, id := range batch {
					rs = append(rs, runs[id])
				}
				suiteWrite(t, st, rs...)
			}
			got := suiteFind(t, st, taskrun.Query{})
			suiteExpectIDs(t, "Find all", got, tt.want)
			for _, r := range got {
				suiteCompare(t, "Find", r, runs[r.ID])
			}
		})
	}
}

func (s storeSuite) testFinalStateKept(t *testing.T) {
	start := suiteBase.Add(2 * time.Hour)
	state := func(st taskrun.Status) taskrun.TaskRun {
		r := taskrun.TaskRun{
			ID: "run-1", OperationName: "update_job", Status: st,
			Tags: []string{"jobs"}, Actor: taskrun.Actor{UserID: "alice", Channel: "api"},
			CreatedAt: start, UpdatedAt: start, StartedAt: start,
			InputDump: json.RawMessage(`{"job_id":"j1"}`),
			Metadata:  map[string]any{"dry_run": false},
			TraceID:   "trace-1", SpanID: "span-1",
		}
		if st.Final() {
			f := start.Add(3 * time.Second)
			r.FinishedAt, r.UpdatedAt, r.DurationMS = &f, f, 3000
			r.Metadata["execution_time"] = 3.0
			r.ResultRefs = []otelop.Ref{{Collection: "jobs", DocumentID: "j1"}}
		}
		if st == taskrun.StatusFailed {
			r.ErrorMessage, r.ErrorType, r.ErrorTraceback = "job locked", "conflict", "stack"
			r.ResultRefs = nil
		}
		return r
	}
	const (
		P = taskrun.StatusPending
		R = taskrun.StatusRunning
		S = taskrun.StatusSuccess
		F = taskrun.StatusFailed
	)
	tests := []struct {
		name    string
		batches [][]taskrun.Status
		want    taskrun.Status
	}{
		{"FAILED then RUNNING", [][]taskrun.Status{{F}, {R}}, F},
		{"SUCCESS then RUNNING", [][]taskrun.Status{{S}, {R}}, S},
		{"SUCCESS then PENDING", [][]taskrun.Status{{S}, {P}}, S},
		{"RUNNING then SUCCESS", [][]taskrun.Status{{R}, {S}}, S},
		{"RUNNING then FAILED", [][]taskrun.Status{{R}, {F}}, F},
		{"PENDING then RUNNING", [][]taskrun.Status{{P}, {R}}, R},
		{"SUCCESS then FAILED", [][]taskrun.Status{{S}, {F}}, F},
		{"RUNNING, SUCCESS, RUNNING", [][]taskrun.Status{{R}, {S}, {R}}, S},
		{"one batch RUNNING SUCCESS", [][]taskrun.Status{{R, S}}, S},
		{"one batch SUCCESS RUNNING", [][]taskrun.Status{{S, R}}, S},
		{"one batch FAILED RUNNING PENDING", [][]taskrun.Status{{F, R, P}}, F},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := s.open(t)
			for _, batch := range tt.batches {
				var rs []taskrun.TaskRun
				for _, status := range batch {
					rs = append(rs, state(status))
				}
				suiteWrite(t, st, rs...)
			}
			suiteCompare(t, "Get", suiteGet(t, st, "run-1"), state(tt.want))
			// Indexes follow the stored state.
			for _, status := range []taskrun.Status{P, R, S, F} {
				var want []string
				if status == tt.want {
					want = []string{"run-1"}
				}
				suiteExpectIDs(t, "Find status "+string(status), suiteFind(t, st, taskrun.Query{Status: string(status)}), want)
			}
			suiteExpectIDs(t, "Find all", suiteFind(t, st, taskrun.Query{}), []string{"run-1"})
		})
	}
}

func (s storeSuite) testOrder(t *testing.T) {
	st := s.open(t)
	at := func(id string, t time.Time) taskrun.TaskRun {
		return taskrun.TaskRun{ID: id, OperationName: "op", Status: taskrun.StatusSuccess, StartedAt: t, CreatedAt: t, UpdatedAt: t}
	}
	t0 := suiteBase.Add(3 * time.Hour)
	east, west := time.FixedZone("UTC+9", 9*3600), time.FixedZone("UTC-5", -5*3600)
	runs := []taskrun.TaskRun{
		// Milliseconds apart, ids in the opposite order: a store that
		// loses milliseconds falls back to the id and gets them reversed.
		at("ms-1", t0.Add(suiteMS(2))),
		at("ms-2", t0.Add(suiteMS(1))),
		at("ms-3", t0),
		// The same instant: id descending, compared byte-wise ("B" < "a").
		at("tie-B", t0.Add(time.Second)),
		at("tie-a", t0.Add(time.Second)),
		at("tie-c", t0.Add(time.Second)),
		at("tie-A", t0.Add(time.Second)),
		// Instants in other zones: ordered by instant, not by local clock.
		at("zone-east", t0.Add(2*time.Second).In(east)),
		at("zone-west", t0.Add(3*time.Second).In(west)),
		// Far apart.
		at("old", t0.Add(-400*24*time.Hour)),
		at("new", t0.Add(400*24*time.Hour)),
	}
	suiteWrite(t, st, runs[6:]...)
	suiteWrite(t, st, runs[:6]...)
	want := []string{"new", "zone-west", "zone-east", "tie-c", "tie-a", "tie-B", "tie-A", "ms-1", "ms-2", "ms-3", "old"}
	suiteExpectIDs(t, "Find all", suiteFind(t, st, taskrun.Query{}), want)

	// Since and Until compare instants too, whatever their zone.
	q := taskrun.Query{Since: t0.Add(suiteMS(1)).In(west), Until: t0.Add(3 * time.Second).In(east)}
	suiteExpectIDs(t, "Find since ms-2 until zone-west", suiteFind(t, st, q),
		[]string{"zone-east", "tie-c", "tie-a", "tie-B", "tie-A", "ms-1", "ms-2"})
}

func (s storeSuite) testQuery(t *testing.T) {
	st := s.open(t)
	writeFixture(t, st)
	at := func(minute int) time.Time { return suiteBase.Add(time.Duration(minute) * time.Minute) }
	ref := func(c, d string) *otelop.Ref { return &otelop.Ref{Collection: c, DocumentID: d} }

	tests := []struct {
		name string
		q    taskrun.Query
		want []string
	}{
		{"zero query", taskrun.Query{}, suiteAllIDs},

		{"Operation", taskrun.Query{Operation: "delete_job"}, []string{"r04", "r19", "r15", "r10"}},
		{"Operation update_job", taskrun.Query{Operation: "update_job"}, []string{"r11", "r21", "r06", "r13", "r23", "r07", "r02", "r17"}},
		{"Operation is not a prefix match", taskrun.Query{Operation: "create"}, nil},
		{"Operation unknown", taskrun.Query{Operation: "nope"}, nil},

		{"Status FAILED", taskrun.Query{Status: "FAILED"}, []string{"r20", "r13", "r23", "r09", "r15", "r02", "r05"}},
		{"Status failed (lower case)", taskrun.Query{Status: "failed"}, []string{"r20", "r13", "r23", "r09", "r15", "r02", "r05"}},
		{"Status Running (mixed case)", taskrun.Query{Status: "Running"}, []string{"r11", "r18", "r03"}},
		{"Status PENDING", taskrun.Query{Status: "PENDING"}, []string{"r07"}},
		{"Status SUCCESS", taskrun.Query{Status: "SUCCESS"}, []string{"r21", "r16", "r06", "r24", "r01", "r14", "r08", "r22", "r04", "r19", "r12", "r17", "r10"}},

		{"UserID", taskrun.Query{UserID: "carol"}, []string{"r16", "r23", "r07", "r04", "r19", "r12"}},
		{"Channel web", taskrun.Query{Channel: "web"}, []string{"r13", "r09", "r04", "r19"}},
		{"Channel cli", taskrun.Query{Channel: "cli"}, []string{"r11", "r16", "r22", "r02", "r05"}},
		{"FlowRunID", taskrun.Query{FlowRunID: "flow-2"}, []string{"r06", "r09", "r08"}},
		{"FlowRunID flow-1", taskrun.Query{FlowRunID: "flow-1"}, []string{"r24", "r04", "r03"}},
		{"TraceID", taskrun.Query{TraceID: "tr-d"}, []string{"r09", "r08", "r07"}},
		{"TraceID tr-a", taskrun.Query{TraceID: "tr-a"}, []string{"r01", "r02"}},
		{"IdempotencyKey", taskrun.Query{IdempotencyKey: "key-1"}, []string{"r14", "r03"}},
		{"IdempotencyKey unique", taskrun.Query{IdempotencyKey: "key-6"}, []string{"r18"}},

		{"Tag batch", taskrun.Query{Tag: "batch"}, []string{"r21", "r18", "r14", "r09", "r08"}},
		{"Tag admin", taskrun.Query{Tag: "admin"}, []string{"r13", "r04", "r19", "r15", "r02", "r10"}},
		{"Tag is an element, not a substring", taskrun.Query{Tag: "job"}, nil},

		{"Orchestrated true", taskrun.Query{Orchestrated: suiteBool(true)},
			[]string{"r11", "r21", "r20", "r16", "r06", "r24", "r13", "r09", "r08", "r04", "r03", "r17"}},
		{"Orchestrated false", taskrun.Query{Orchestrated: suiteBool(false)},
			[]string{"r18", "r01", "r14", "r23", "r07", "r22", "r19", "r12", "r15", "r02", "r10", "r05"}},

		{"Ref", taskrun.Query{Ref: ref("jobs", "j1")}, []string{"r20", "r01", "r13", "r04"}},
		{"Ref as second element", taskrun.Query{Ref: ref("users", "u1")}, []string{"r06", "r17"}},
		{"Ref fields from different elements", taskrun.Query{Ref: ref("jobs", "u1")}, nil},
		{"Ref collection must match", taskrun.Query{Ref: ref("users", "j1")}, []string{"r19"}},

		{"Since (inclusive)", taskrun.Query{Since: at(9)},
			[]string{"r11", "r21", "r20", "r16", "r06", "r24", "r18", "r01", "r14", "r13", "r23", "r09", "r08", "r07"}},
		{"Since a millisecond later", taskrun.Query{Since: at(9).Add(time.Millisecond)},
			[]string{"r11", "r21", "r20", "r16", "r06", "r24", "r18", "r01", "r14", "r13", "r23"}},
		{"Until (exclusive)", taskrun.Query{Until: at(7)}, []string{"r19", "r12", "r15", "r02", "r17", "r10", "r05"}},
		{"Until a millisecond later", taskrun.Query{Until: at(7).Add(time.Millisecond)},
			[]string{"r04", "r03", "r19", "r12", "r15", "r02", "r17", "r10", "r05"}},
		{"Since and Until", taskrun.Query{Since: at(7), Until: at(11)}, []string{"r23", "r09", "r08", "r07", "r22", "r04", "r03"}},
		{"Since after everything", taskrun.Query{Since: at(19)}, nil},

		{"Limit 5", taskrun.Query{Limit: 5}, suiteAllIDs[:5]},
		{"Limit 1", taskrun.Query{Limit: 1}, suiteAllIDs[:1]},
		{"Limit above count", taskrun.Query{Limit: 1000}, suiteAllIDs},
		{"Limit max", taskrun.Query{Limit: taskrun.MaxLimit}, suiteAllIDs},

		{"Operation+Status", taskrun.Query{Operation: "create_job", Status: "SUCCESS"},
			[]string{"r16", "r24", "r01", "r14", "r08", "r22", "r12"}},
		{"UserID+Since+Until", taskrun.Query{UserID: "alice", Since: at(5), Until: at(12)},
			[]string{"r14", "r13", "r08", "r22", "r03"}},
		{"Tag+Orchestrated+Ref", taskrun.Query{Tag: "jobs", Orchestrated: suiteBool(true), Ref: ref("jobs", "j1")},
			[]string{"r20", "r13"}},
		{"Status+Channel+Limit", taskrun.Query{Status: "failed", Channel: "api", Limit: 2}, []string{"r20", "r23"}},
		{"FlowRunID+Tag", taskrun.Query{FlowRunID: "flow-2", Tag: "jobs"}, []string{"r06", "r08"}},
		{"UserID+Orchestrated false", taskrun.Query{UserID: "bob", Orchestrated: suiteBool(false)}, []string{"r18", "r15", "r02"}},
		{"TraceID+IdempotencyKey", taskrun.Query{TraceID: "tr-g", IdempotencyKey: "key-1"}, []string{"r14"}},
		{"contradiction", taskrun.Query{UserID: "carol", Channel: "cli", Status: "FAILED"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := suiteFind(t, st, tt.q)
			suiteExpectIDs(t, fmt.Sprintf("Find(%s)", suiteQuery(tt.q)), got, tt.want)
		})
	}

	// Find returns whole runs, not a projection.
	t.Run("whole runs", func(t *testing.T) {
		want := suiteRows[5].run() // r06
		got := suiteFind(t, st, taskrun.Query{FlowRunID: "flow-2", Tag: "jobs", Limit: 1})
		suiteExpectIDs(t, "Find", got, []string{want.ID})
		if len(got) == 1 {
			suiteCompare(t, "Find", got[0], want)
		}
	})
}

// suitePages walks every page of q with the given limit and returns them.
func suitePages(t *testing.T, st taskrun.Store, q taskrun.Query, limit int) [][]string {
	t.Helper()
	q.Limit = limit
	var pages [][]string
	for range 100 {
		page := suiteFind(t, st, q)
		if len(page) > limit {
			t.Fatalf("page %d has %d runs, above the limit %d", len(pages)+1, len(page), limit)
		}
		if len(page) == 0 {
			return pages
		}
		pages = append(pages, suiteIDs(page))
		if len(page) < limit {
			return pages
		}
		q.Before = page[len(page)-1].ID
	}
	t.Fatalf("paging did not end after 100 pages: %q", pages)
	return nil
}

func (s storeSuite) testPaging(t *testing.T) {
	st := s.open(t)
	writeFixture(t, st)
	at := func(minute int) time.Time { return suiteBase.Add(time.Duration(minute) * time.Minute) }

	tests := []struct {
		name  string
		q     taskrun.Query
		limit int
		want  [][]string
	}{
		{"all, limit 3 (pages split ties)", taskrun.Query{}, 3, [][]string{
			{"r11", "r21", "r20"}, {"r16", "r06", "r24"}, {"r18", "r01", "r14"}, {"r13", "r23", "r09"},
			{"r08", "r07", "r22"}, {"r04", "r03", "r19"}, {"r12", "r15", "r02"}, {"r17", "r10", "r05"},
		}},
		{"all, limit 5", taskrun.Query{}, 5, [][]string{
			{"r11", "r21", "r20", "r16", "r06"}, {"r24", "r18", "r01", "r14", "r13"},
			{"r23", "r09", "r08", "r07", "r22"}, {"r04", "r03", "r19", "r12", "r15"}, {"r02", "r17", "r10", "r05"},
		}},
		{"orchestrated, limit 5", taskrun.Query{Orchestrated: suiteBool(true)}, 5, [][]string{
			{"r11", "r21", "r20", "r16", "r06"}, {"r24", "r13", "r09", "r08", "r04"}, {"r03", "r17"},
		}},
		{"status failed, limit 3", taskrun.Query{Status: "failed"}, 3, [][]string{
			{"r20", "r13", "r23"}, {"r09", "r15", "r02"}, {"r05"},
		}},
		{"since and until, limit 3", taskrun.Query{Since: at(7), Until: at(11)}, 3, [][]string{
			{"r23", "r09", "r08"}, {"r07", "r22", "r04"}, {"r03"},
		}},
		{"no match", taskrun.Query{UserID: "nobody"}, 3, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pages := suitePages(t, st, tt.q, tt.limit)
			if !reflect.DeepEqual(pages, tt.want) {
				t.Errorf("pages = %q, want %q", pages, tt.want)
			}
			// The pages together are the unpaged result: no gap, no duplicate.
			all := suiteIDs(suiteFind(t, st, tt.q))
			flat := slices.Concat(pages...)
			if !slices.Equal(flat, all) {
				t.Errorf("pages concatenated = %q, want the unpaged result %q", flat, all)
			}
			seen := map[string]bool{}
			for _, id := range flat {
				if seen[id] {
					t.Errorf("run %q on two pages", id)
				}
				seen[id] = true
			}
		})
	}

	cursorTests := []struct {
		name string
		q    taskrun.Query
		want []string
	}{
		{"cursor inside a tie", taskrun.Query{Before: "r09"}, []string{"r08", "r07", "r22", "r04", "r03", "r19", "r12", "r15", "r02", "r17", "r10", "r05"}},
		{"cursor that the filter does not match", taskrun.Query{Status: "FAILED", Before: "r14"}, []string{"r13", "r23", "r09", "r15", "r02", "r05"}},
		{"cursor with limit", taskrun.Query{Before: "r14", Limit: 2}, []string{"r13", "r23"}},
		{"cursor on the oldest run", taskrun.Query{Before: "r05"}, nil},
		{"cursor on the newest run", taskrun.Query{Before: "r11", Limit: 2}, []string{"r21", "r20"}},
		{"cursor with until", taskrun.Query{Before: "r24", Until: at(12)}, []string{"r14", "r13", "r23", "r09", "r08", "r07", "r22", "r04", "r03", "r19", "r12", "r15", "r02", "r17", "r10", "r05"}},
		{"cursor older than since", taskrun.Query{Before: "r10", Since: at(5)}, nil},
	}
	for _, tt := range cursorTests {
		t.Run(tt.name, func(t *testing.T) {
			suiteExpectIDs(t, fmt.Sprintf("Find(%s)", suiteQuery(tt.q)), suiteFind(t, st, tt.q), tt.want)
		})
	}

	t.Run("unknown cursor", func(t *testing.T) {
		for _, q := range []taskrun.Query{{Before: "no-such-run"}, {Before: "r1", Limit: 3}, {Status: "FAILED", Before: "R11"}} {
			runs, err := st.Find(t.Context(), q)
			if !errors.Is(err, taskrun.ErrInvalidQuery) {
				t.Errorf("Find(%s) = %q, %v; want an error matching taskrun.ErrInvalidQuery for the unknown cursor", suiteQuery(q), suiteIDs(runs), err)
			}
		}
	})
}

func (s storeSuite) testInvalidQuery(t *testing.T) {
	st := s.open(t)
	writeFixture(t, st)
	t0 := suiteBase.Add(5 * time.Minute)
	tests := []struct {
		name string
		q    taskrun.Query
	}{
		{"negative limit", taskrun.Query{Limit: -1}},
		{"limit above MaxLimit", taskrun.Query{Limit: taskrun.MaxLimit + 1}},
		{"unknown status", taskrun.Query{Status: "DONE"}},
		{"status with spaces", taskrun.Query{Status: " FAILED"}},
		{"since equals until", taskrun.Query{Since: t0, Until: t0}},
		{"since after until", taskrun.Query{Since: t0.Add(time.Minute), Until: t0}},
		{"ref without document id", taskrun.Query{Ref: &otelop.Ref{Collection: "jobs"}}},
		{"ref without collection", taskrun.Query{Ref: &otelop.Ref{DocumentID: "j1"}}},
		{"empty ref", taskrun.Query{Ref: &otelop.Ref{}}},
		{"invalid with valid fields", taskrun.Query{Operation: "create_job", Limit: -5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runs, err := st.Find(t.Context(), tt.q)
			if !errors.Is(err, taskrun.ErrInvalidQuery) {
				t.Errorf("Find(%s) = %q, %v; want an error matching taskrun.ErrInvalidQuery", suiteQuery(tt.q), suiteIDs(runs), err)
			}
		})
	}
}

func (s storeSuite) testDefaultLimit(t *testing.T) {
	st := s.open(t)
	const n = taskrun.DefaultLimit + 5
	runs := make([]taskrun.TaskRun, n)
	want := make([]string, 0, n)
	for i := range n {
		start := suiteBase.Add(time.Duration(i) * time.Second)
		runs[i] = taskrun.TaskRun{
			ID: fmt.Sprintf("bulk-%03d", i), OperationName: "bulk", Status: taskrun.StatusSuccess,
			StartedAt: start, CreatedAt: start, UpdatedAt: start,
		}
	}
	for i := n - 1; i >= 0; i-- {
		want = append(want, runs[i].ID)
	}
	suiteWrite(t, st, runs...) // in batches of 50

	suiteExpectIDs(t, "Find with Limit 0", suiteFind(t, st, taskrun.Query{}), want[:taskrun.DefaultLimit])
	suiteExpectIDs(t, "Find with Limit MaxLimit", suiteFind(t, st, taskrun.Query{Limit: taskrun.MaxLimit}), want)
	suiteExpectIDs(t, "Find with Limit 0 after a cursor", suiteFind(t, st, taskrun.Query{Before: want[2]}), want[3:3+taskrun.DefaultLimit])
	suiteExpectIDs(t, "Find with Limit 0 and a filter", suiteFind(t, st, taskrun.Query{Operation: "bulk", Since: runs[50].StartedAt}), want[:n-50])
}

func (s storeSuite) testConcurrentWrites(t *testing.T) {
	st := s.open(t)
	const writers, perWriter = 8, 5
	ctx := t.Context()
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make(chan error, writers*perWriter)
	)
	for w := range writers {
		wg.Go(func() {
			<-start
			for i := range perWriter {
				at := suiteBase.Add(time.Duration(w*perWriter+i) * time.Second)
				r := taskrun.TaskRun{
					ID: fmt.Sprintf("w%d-%d", w, i), OperationName: "concurrent", Status: taskrun.StatusRunning,
					StartedAt: at, CreatedAt: at, UpdatedAt: at, Tags: []string{fmt.Sprint("writer-", w)},
				}
				if err := st.Write(ctx, []taskrun.TaskRun{r}); err != nil {
					errs <- fmt.Errorf("writer %d, run %d: %w", w, i, err)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var want []string
	for i := writers*perWriter - 1; i >= 0; i-- {
		want = append(want, fmt.Sprintf("w%d-%d", i/perWriter, i%perWriter))
	}
	suiteExpectIDs(t, "Find all", suiteFind(t, st, taskrun.Query{}), want)
	suiteExpectIDs(t, "Find writer 3", suiteFind(t, st, taskrun.Query{Tag: "writer-3"}), want[(writers-4)*perWriter:(writers-3)*perWriter])
}

// testConcurrentFinalRace writes RUNNING and SUCCESS of the same runs from
// concurrent goroutines: whatever the interleaving, SUCCESS must win, which
// a store that reads the status and then writes without a condition fails.
func (s storeSuite) testConcurrentFinalRace(t *testing.T) {
	st := s.open(t)
	const writers, ids = 8, 5
	ctx := t.Context()
	run := func(i int, status taskrun.Status) taskrun.TaskRun {
		at := suiteBase.Add(time.Duration(i) * time.Second)
		r := taskrun.TaskRun{ID: fmt.Sprintf("race-%d", i), OperationName: "race", Status: status, StartedAt: at, CreatedAt: at, UpdatedAt: at}
		if status.Final() {
			f := at.Add(time.Second)
			r.FinishedAt, r.UpdatedAt, r.DurationMS = &f, f, 1000
		}
		return r
	}
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make(chan error, writers*ids)
	)
	for w := range writers {
		status := taskrun.StatusRunning
		if w%2 == 1 {
			status = taskrun.StatusSuccess
		}
		wg.Go(func() {
			<-start
			for k := range ids {
				i := (k + w) % ids // different goroutines start on different runs
				if err := st.Write(ctx, []taskrun.TaskRun{run(i, status)}); err != nil {
					errs <- fmt.Errorf("writer %d (%s), run %d: %w", w, status, i, err)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range ids {
		got := suiteGet(t, st, fmt.Sprintf("race-%d", i))
		suiteCompare(t, "Get after the race", got, run(i, taskrun.StatusSuccess))
	}
	suiteExpectIDs(t, "Find RUNNING", suiteFind(t, st, taskrun.Query{Status: "RUNNING"}), nil)
	suiteExpectIDs(t, "Find SUCCESS", suiteFind(t, st, taskrun.Query{Status: "SUCCESS"}), []string{"race-4", "race-3", "race-2", "race-1", "race-0"})
}

func (s storeSuite) testCanceledContext(t *testing.T) {
	st := s.open(t)
	suiteWrite(t, st, suiteRows[0].run())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := st.Write(ctx, []taskrun.TaskRun{suiteRows[1].run()}); err == nil {
		t.Error("Write with a canceled context: err = nil, want an error")
	}
	if _, err := st.Get(ctx, "r01"); err == nil {
		t.Error("Get with a canceled context: err = nil, want an error")
	}
	if _, err := st.Find(ctx, taskrun.Query{}); err == nil {
		t.Error("Find with a canceled context: err = nil, want an error")
	}
	// The store still works with a live context.
	suiteCompare(t, "Get", suiteGet(t, st, "r01"), suiteRows[0].run())
}

func (s storeSuite) testClosed(t *testing.T) {
	st := s.newStore(t)
	if st == nil {
		t.Fatal("newStore returned nil")
	}
	suiteWrite(t, st, suiteRows[0].run())
	if err := st.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := t.Context()
	if err := st.Write(ctx, []taskrun.TaskRun{suiteRows[1].run()}); err == nil {
		t.Error("Write after Close: err = nil, want an error")
	}
	if _, err := st.Get(ctx, "r01"); err == nil {
		t.Error("Get after Close: err = nil, want an error")
	} else if errors.Is(err, taskrun.ErrNotFound) {
		t.Errorf("Get after Close: err = %v matches ErrNotFound; want a closed-store error", err)
	}
	if runs, err := st.Find(ctx, taskrun.Query{}); err == nil {
		t.Errorf("Find after Close = %q, nil; want an error", suiteIDs(runs))
	}
}

// testRejectsEmptyID: a run without an id can never be stored; the error
// matches taskrun.ErrRejected, so the processor drops that run instead of
// retrying its batch forever.
func (s storeSuite) testRejectsEmptyID(t *testing.T) {
	st := s.open(t)
	start := suiteBase
	runs := []taskrun.TaskRun{{OperationName: "no_id", Status: taskrun.StatusSuccess, StartedAt: start, CreatedAt: start, UpdatedAt: start}}
	err := st.Write(t.Context(), runs)
	if !errors.Is(err, taskrun.ErrRejected) {
		t.Fatalf("Write of a run without an id = %v; want an error matching taskrun.ErrRejected", err)
	}
}

// testIdempotencyLookup checks the store's otelop.IdempotencyLookup: the
// newest SUCCESS run of the operation and key since a time, reported as the
// run that really ran.
func (s storeSuite) testIdempotencyLookup(t *testing.T) {
	st := s.open(t)
	lookup, ok := st.(otelop.IdempotencyLookup)
	if !ok {
		t.Fatalf("%T does not implement otelop.IdempotencyLookup", st)
	}
	at := func(ms int) time.Time { return suiteBase.Add(suiteMS(ms)) }
	run := func(id, op, key string, status taskrun.Status, started time.Time, output string, meta map[string]any) taskrun.TaskRun {
		r := taskrun.TaskRun{ID: id, OperationName: op, IdempotencyKey: key, Status: status,
			StartedAt: started, CreatedAt: started, UpdatedAt: started, Metadata: meta}
		if output != "" {
			r.OutputDump = json.RawMessage(output)
		}
		return r
	}
	suiteWrite(t, st,
		run("i-failed", "pay", "k1", taskrun.StatusFailed, at(1000), "", nil),
		run("i-first", "pay", "k1", taskrun.StatusSuccess, at(2000), `{"receipt":"r-1"}`, nil),
		run("i-repeat", "pay", "k1", taskrun.StatusSuccess, at(3000), `{"receipt":"r-1"}`, map[string]any{"deduplicated_from": "i-first"}),
		run("i-running", "pay", "k1", taskrun.StatusRunning, at(4000), "", nil),
		run("i-other-op", "refund", "k1", taskrun.StatusSuccess, at(5000), `{"refund":1}`, nil),
		run("i-k2", "pay", "k2", taskrun.StatusSuccess, at(1000), `"plain"`, nil),
	)
	ctx := context.Background()
	for _, c := range []struct {
		op, key   string
		since     time.Time
		wantID    string
		wantOut   string
		wantStart time.Time
	}{
		{"pay", "k1", at(0), "i-first", `{"receipt":"r-1"}`, at(3000)},
		{"pay", "k1", at(2500), "i-first", `{"receipt":"r-1"}`, at(3000)},
		{"pay", "k1", at(3500), "", "", time.Time{}},
		{"pay", "k2", at(0), "i-k2", `"plain"`, at(1000)},
		{"refund", "k1", at(0), "i-other-op", `{"refund":1}`, at(5000)},
		{"pay", "k3", at(0), "", "", time.Time{}},
	} {
		prior, found, err := lookup.LookupIdempotent(ctx, c.op, c.key, c.since)
		if err != nil {
			t.Fatalf("LookupIdempotent(%s, %s): %v", c.op, c.key, err)
		}
		if found != (c.wantID != "") || prior.TaskRunID != c.wantID ||
			string(suiteCanonJSON(prior.Output)) != string(suiteCanonJSON(json.RawMessage(c.wantOut))) ||
			!prior.StartedAt.Equal(c.wantStart) {
			t.Errorf("LookupIdempotent(%s, %s, since %v) = %+v (%s), %v; want %s %s", c.op, c.key, c.since, prior, prior.Output, found, c.wantID, c.wantOut)
		}
	}
}
