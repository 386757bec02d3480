package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/otelop/otelop/httpapi"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/memstore"
)

// FuzzParseQuery feeds arbitrary query strings to ParseQuery and to GET
// /api/taskruns: a query is either refused with a bad_request naming the
// problem, or normalised (a second Normalize changes nothing) and answered.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"", "status=failed", "status=bogus", "limit=2&before=r2", "limit=0", "limit=-5", "limit=99999999999999999999",
		"since=2026-01-02T15:04:05Z&until=2026-01-01T00:00:00Z", "since=2026-01-02T15:04:05.123456789%2B02:00",
		"orchestrated=TRUE", "orchestrated=maybe", "ref=jobs/j-1/x", "ref=/x", "tag=a&tag=b", "user_id=%ff",
		"operation=create_jobs&channel=api&flow_run_id=f&trace_id=t&idempotency_key=k", "%zz", "a=1;b=2", "before=",
	} {
		f.Add(s)
	}
	st := memstore.New()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var runs []taskrun.TaskRun
	for i, s := range []taskrun.Status{taskrun.StatusSuccess, taskrun.StatusFailed, taskrun.StatusRunning} {
		runs = append(runs, taskrun.TaskRun{ID: "r" + string(rune('1'+i)), OperationName: "create_jobs", Status: s, StartedAt: base.Add(time.Duration(i) * time.Hour)})
	}
	if err := st.Write(context.Background(), runs); err != nil {
		f.Fatal(err)
	}
	h, err := httpapi.New(nil, st, httpapi.WithLogger(discardLogger()))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/api/taskruns", nil)
		req.URL.RawQuery = raw
		h.ServeHTTP(rec, req)
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%q: status %d, body not JSON: %s", raw, rec.Code, rec.Body)
		}
		switch rec.Code {
		case 200:
			if _, ok := body["taskruns"].([]any); !ok {
				t.Fatalf("%q: 200 without taskruns: %v", raw, body)
			}
		case 400:
			if body["code"] != "bad_request" || body["message"] == "" {
				t.Fatalf("%q: 400 body %v", raw, body)
			}
		default:
			t.Fatalf("%q: status %d %v", raw, rec.Code, body)
		}

		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := httpapi.ParseQuery(v)
		if err != nil {
			if !errors.Is(err, taskrun.ErrInvalidQuery) {
				t.Fatalf("%q: error %v does not match ErrInvalidQuery", raw, err)
			}
			return
		}
		if q.Limit < 1 || q.Limit > taskrun.MaxLimit {
			t.Fatalf("%q: limit %d", raw, q.Limit)
		}
		again, err := q.Normalize()
		if err != nil || !reflect.DeepEqual(again, q) {
			t.Fatalf("%q: Normalize of a parsed query: %+v, %v", raw, again, err)
		}
		if _, err := st.Find(context.Background(), q); err != nil && !errors.Is(err, taskrun.ErrInvalidQuery) {
			t.Fatalf("%q: Find: %v", raw, err)
		}
	})
}
