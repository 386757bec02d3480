package mongostore

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/taskrun"
)

// These tests need no server.

func TestJSONRoundTrip(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{}`, `{}`},
		{`{"b":1,"a":2}`, `{"b":1,"a":2}`},
		{` {"a" : [1, 2.5, "x", null, true, false, {"k": []}] } `, `{"a":[1,2.5,"x",null,true,false,{"k":[]}]}`},
		{`{"int32":2147483647,"int64":2147483648,"neg":-9223372036854775808,"float":1e3,"small":1.5e-7}`,
			`{"int32":2147483647,"int64":2147483648,"neg":-9223372036854775808,"float":1000,"small":1.5e-7}`},
		{`{"beyond int64":9223372036854775808}`, `{"beyond int64":9223372036854776000}`},
		{`{"$date":"x","$oid":"y","$numberLong":"1"}`, `{"$date":"x","$oid":"y","$numberLong":"1"}`},
		{`{"a":1,"a":2,"b":3}`, `{"a":2,"b":3}`},
		{`{"s":"<tag> & \"quoted\" \u00e9 \n"}`, `{"s":"\u003ctag\u003e \u0026 \"quoted\" é \n"}`},
		{`[1,"two"]`, `[1,"two"]`},
		{`"text"`, `"text"`},
		{`42`, `42`},
	}
	for _, tt := range tests {
		v, err := jsonValue([]byte(tt.in))
		if err != nil {
			t.Errorf("jsonValue(%s): %v", tt.in, err)
			continue
		}
		got, err := appendJSON(nil, v)
		if err != nil {
			t.Errorf("appendJSON(jsonValue(%s)): %v", tt.in, err)
			continue
		}
		if string(got) != tt.want {
			t.Errorf("round trip of %s = %s, want %s", tt.in, got, tt.want)
		}
	}

	for _, in := range []string{``, `  `, `null`} {
		v, err := jsonValue([]byte(in))
		if err != nil || v.Type != bson.TypeNull {
			t.Errorf("jsonValue(%q) = %v, %v; want BSON null", in, v, err)
		}
	}
	for _, in := range []string{`{`, `{"a":}`, `{} {}`, `{"a":1}x`, `nul`, strings.Repeat("[", 100) + strings.Repeat("]", 100)} {
		if _, err := jsonValue([]byte(in)); err == nil {
			t.Errorf("jsonValue(%.20q): err = nil", in)
		}
	}
}

func TestInputDumpIsADocument(t *testing.T) {
	v, err := jsonValue([]byte(`{"job":{"id":"j1","n":2}}`))
	if err != nil {
		t.Fatal(err)
	}
	if v.Type != bson.TypeEmbeddedDocument {
		t.Fatalf("type = %s, want an embedded document", v.Type)
	}
	if got := v.Document().Lookup("job", "n"); got.Type != bson.TypeInt32 || got.Int32() != 2 {
		t.Errorf("job.n = %v", got)
	}
}

func TestPlainValue(t *testing.T) {
	when := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	oid := bson.NewObjectIDFromTimestamp(when)
	in := bson.D{
		{Key: "s", Value: "x"},
		{Key: "f", Value: 1.5},
		{Key: "i32", Value: int32(3)},
		{Key: "i64", Value: int64(1) << 40},
		{Key: "b", Value: true},
		{Key: "null", Value: nil},
		{Key: "doc", Value: bson.D{{Key: "a", Value: bson.A{"x", int32(1), bson.D{{Key: "deep", Value: false}}}}}},
		{Key: "date", Value: bson.NewDateTimeFromTime(when)},
		{Key: "oid", Value: oid},
		{Key: "bin", Value: bson.Binary{Data: []byte{1, 2}}},
	}
	raw, err := bson.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	got := plainMap(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: raw})
	want := map[string]any{
		"s": "x", "f": 1.5, "i32": int64(3), "i64": int64(1) << 40, "b": true, "null": nil,
		"doc":  map[string]any{"a": []any{"x", int64(1), map[string]any{"deep": false}}},
		"date": when, "oid": oid.Hex(), "bin": []byte{1, 2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("plainMap =\n%#v\nwant\n%#v", got, want)
	}
	if m := plainMap(bsonNull); m != nil {
		t.Errorf("plainMap(null) = %#v, want nil", m)
	}
}

func TestToBSON(t *testing.T) {
	in := map[string]any{
		"nan":   math.NaN(),
		"inf":   []float64{1, math.Inf(1)},
		"raw":   json.RawMessage(`{"b":1,"a":[true]}`),
		"uint":  uint64(math.MaxUint64),
		"small": uint32(7),
		"list":  []any{map[string]any{"z": 1, "a": 2}},
		"nil":   nil,
	}
	v, err := mapValue(in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := appendJSON(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	// Keys sorted; NaN and Inf as text, as the processor stores them.
	want := `{"inf":[1,"+Inf"],"list":[{"a":2,"z":1}],"nan":"NaN","nil":null,"raw":{"b":1,"a":[true]},"small":7,"uint":"18446744073709551615"}`
	if string(b) != want {
		t.Errorf("mapValue = %s, want %s", b, want)
	}
	if _, err := mapValue(map[string]any{"ch": make(chan int)}); err == nil {
		t.Error("mapValue of a channel: err = nil")
	}
}

func TestEncodeDecodeRun(t *testing.T) {
	start := time.Date(2025, 6, 1, 12, 0, 0, 123_456_789, time.FixedZone("UTC+2", 7200))
	fin := start.Add(time.Second)
	r := taskrun.TaskRun{
		ID: "r1", OperationName: "op", Status: taskrun.StatusSuccess, Tags: []string{},
		StartedAt: start, CreatedAt: start, UpdatedAt: fin, FinishedAt: &fin, DurationMS: 1000.5,
		InputDump:  json.RawMessage(`{"b":1,"a":2}`),
		ResultRefs: []otelop.Ref{{Collection: "jobs", DocumentID: "j1"}},
		LogEntries: []taskrun.LogEntry{{Time: start, Level: "INFO", Message: "m"}},
		Metadata:   map[string]any{"k": []string{"v"}},
	}
	raw, err := encodeRun(&r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRun(raw)
	if err != nil {
		t.Fatal(err)
	}
	ms := start.UTC().Truncate(time.Millisecond)
	if !got.StartedAt.Equal(ms) || got.StartedAt.Location() != time.UTC {
		t.Errorf("StartedAt = %v, want %v in UTC", got.StartedAt, ms)
	}
	if string(got.InputDump) != `{"b":1,"a":2}` {
		t.Errorf("InputDump = %s", got.InputDump)
	}
	if got.Tags == nil || len(got.Tags) != 0 || got.ErrorList != nil {
		t.Errorf("Tags = %#v, ErrorList = %#v: want empty and nil kept apart", got.Tags, got.ErrorList)
	}
	if got.LogEntries[0].Attributes != nil {
		t.Errorf("Attributes = %#v, want nil", got.LogEntries[0].Attributes)
	}
	if !reflect.DeepEqual(got.Metadata, map[string]any{"k": []any{"v"}}) {
		t.Errorf("Metadata = %#v", got.Metadata)
	}
	if _, err := raw.LookupErr("idempotency_key"); err == nil {
		t.Error("empty idempotency_key stored")
	}
}

func TestParseURI(t *testing.T) {
	tests := []struct{ uri, db, hosts string }{
		{"mongodb://localhost:27017", "otelop", "localhost:27017"},
		{"mongodb://localhost:27017/", "otelop", "localhost:27017"},
		{"mongodb://localhost/audit", "audit", "localhost"},
		{"mongodb://user:p%40ss@h1:1,h2:2/audit?replicaSet=rs0&authSource=admin", "audit", "h1:1,h2:2"},
		{"mongodb://h/?serverSelectionTimeoutMS=500", "otelop", "h"},
		{"mongodb+srv://u:p@cluster0.example.net/prod?retryWrites=true", "prod", "cluster0.example.net"},
		{"mongodb://h/my%2Ddb", "my-db", "h"},
	}
	for _, tt := range tests {
		db, hosts, err := parseURI(tt.uri)
		if err != nil || db != tt.db || hosts != tt.hosts {
			t.Errorf("parseURI(%q) = %q, %q, %v; want %q, %q", tt.uri, db, hosts, err, tt.db, tt.hosts)
		}
	}
	for _, uri := range []string{"", "localhost:27017", "postgres://h/db", "mongodb://", "mongodb:///db", "mongodb://h/a.b", "mongodb://h/a%2Fb", "mongodb://h/a%zz"} {
		if db, _, err := parseURI(uri); err == nil {
			t.Errorf("parseURI(%q) = %q, nil; want an error", uri, db)
		}
	}
}

func TestCeilMS(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[time.Time]time.Time{
		t0:                             t0,
		t0.Add(time.Millisecond):       t0.Add(time.Millisecond),
		t0.Add(1):                      t0.Add(time.Millisecond),
		t0.Add(999 * time.Microsecond): t0.Add(time.Millisecond),
	} {
		if got := ceilMS(in); !got.Equal(want) {
			t.Errorf("ceilMS(%v) = %v, want %v", in, got, want)
		}
	}
}
