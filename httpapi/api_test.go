package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/otelop/otelop/httpapi"
	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/memstore"
	"github.com/otelop/otelop/taskrun/taskruntest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	aliceToken = "alice-token-0123456789"
	bobToken   = "bob-token-0123456789ab"
)

type createIn struct {
	otelop.Request
	Titles []string `json:"titles" validate:"required,min=1,dive,required"`
}

type createOut struct {
	otelop.Receipt
	JobIDs []string `json:"job_ids" otelop:"ref=jobs"`
	Owner  string   `json:"owner"`
}

type failIn struct {
	otelop.Request
	Mode string `json:"mode"`
}

type fixture struct {
	h   *taskruntest.Harness
	srv *httptest.Server
	api *httpapi.Handler
}

// newFixture defines four operations on a taskruntest harness and serves
// them with tokens for alice (every permission) and bob (none).
func newFixture(t *testing.T, opts ...httpapi.Option) *fixture {
	t.Helper()
	h := taskruntest.New(t)
	otelop.Define(otelop.Spec{Name: "create_jobs", Description: "Create jobs from titles", Category: "jobs",
		Stage: "ingest", Tags: []string{"batch"}, Permissions: []string{"jobs:write"}, Observed: true},
		func(_ context.Context, in createIn) (createOut, error) {
			out := createOut{Owner: in.UserID}
			for i := range in.Titles {
				out.JobIDs = append(out.JobIDs, fmt.Sprintf("job-%d", i+1))
			}
			return out, nil
		}, h.Options()...)
	otelop.Define(otelop.Spec{Name: "flaky_op", Description: "Fails or panics on request", Category: "ops", Observed: true},
		func(_ context.Context, in failIn) (struct{}, error) {
			switch in.Mode {
			case "fail":
				return struct{}{}, errors.New("the printer is on fire")
			case "panic":
				panic("kaboom")
			}
			return struct{}{}, nil
		}, h.Options()...)
	otelop.Define(otelop.Spec{Name: "report_jobs", Description: "Summarise jobs", Category: "jobs", Tags: []string{"report"}, Stage: "report"},
		func(_ context.Context, _ struct{}) (string, error) { return "ok", nil }, h.Options()...)
	tokens, err := httpapi.NewTokens(map[string]httpapi.Identity{
		aliceToken: {UserID: "alice", Permissions: []string{"*"}},
		bobToken:   {UserID: "bob"},
	})
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.New(h.Registry, h.Store, append([]httpapi.Option{httpapi.WithTokens(tokens)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &fixture{h: h, srv: srv, api: api}
}

// do sends a request and decodes the JSON answer into a map.
func (f *fixture) do(t *testing.T, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: Content-Type %q, body %s", method, path, ct, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: %v in %s", method, path, err, b)
	}
	return resp.StatusCode, m
}

func (f *fixture) invoke(t *testing.T, op, token, body string) (int, map[string]any) {
	t.Helper()
	return f.do(t, "POST", "/api/operations/"+op+"/invoke", token, body)
}

func names(m map[string]any, list string) []string {
	var out []string
	items, _ := m[list].([]any)
	for _, it := range items {
		o, _ := it.(map[string]any)
		s, _ := o["name"].(string)
		if s == "" {
			s, _ = o["id"].(string)
		}
		out = append(out, s)
	}
	return out
}

func TestListOperations(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		query string
		want  string
	}{
		{"", "create_jobs,flaky_op,report_jobs"},
		{"?category=jobs", "create_jobs,report_jobs"},
		{"?tag=report", "report_jobs"},
		{"?stage=ingest", "create_jobs"},
		{"?q=PRINTER", ""},
		{"?q=summar", "report_jobs"},
		{"?category=jobs&tag=batch", "create_jobs"},
		{"?category=none", ""},
	} {
		code, m := f.do(t, "GET", "/api/operations"+tc.query, "", "")
		if got := strings.Join(names(m, "operations"), ","); code != 200 || got != tc.want {
			t.Errorf("%s: %d %q, want %q", tc.query, code, got, tc.want)
		}
	}
	code, m := f.do(t, "GET", "/api/operations?catgory=jobs", "", "")
	if code != 400 || m["code"] != "bad_request" || !strings.Contains(m["message"].(string), `"catgory"`) {
		t.Errorf("misspelt parameter: %d %v", code, m)
	}
}

func TestGetOperation(t *testing.T) {
	f := newFixture(t)
	code, m := f.do(t, "GET", "/api/operations/create_jobs", "", "")
	if code != 200 || m["name"] != "create_jobs" || m["category"] != "jobs" {
		t.Fatalf("%d %v", code, m)
	}
	in, _ := m["input_schema"].(map[string]any)
	props, _ := in["properties"].(map[string]any)
	if props["titles"] == nil || m["output_schema"] == nil || !strings.HasSuffix(m["defined_at"].(string), ".go:"+strings.Split(m["defined_at"].(string), ".go:")[1]) {
		t.Errorf("schemas/defined_at missing: %v", m)
	}
	code, m = f.do(t, "GET", "/api/operations/nope", "", "")
	if code != 404 || m["code"] != "not_found" {
		t.Errorf("unknown operation: %d %v", code, m)
	}
}

func TestInvoke(t *testing.T) {
	f := newFixture(t)
	code, m := f.invoke(t, "create_jobs", aliceToken, `{"titles":["a","b"],"user_id":"mallory","channel":"cli"}`)
	if code != 200 {
		t.Fatalf("invoke: %d %v", code, m)
	}
	id, _ := m["task_run_id"].(string)
	out, _ := m["output"].(map[string]any)
	if id == "" || out["task_run_id"] != id || out["owner"] != "alice" || len(out["job_ids"].([]any)) != 2 {
		t.Fatalf("invoke result %v", m)
	}
	f.h.Flush()
	run := f.h.Run(id)
	if run.Status != taskrun.StatusSuccess || run.Actor != (taskrun.Actor{UserID: "alice", Channel: "api"}) || len(run.ResultRefs) != 2 {
		t.Errorf("run %+v", run)
	}
}

func TestInvokeErrors(t *testing.T) {
	f := newFixture(t)
	big := `{"titles":["` + strings.Repeat("x", 2<<20) + `"]}`
	for _, tc := range []struct {
		name, op, token, body string
		status                int
		code                  string
		runType               string // error_type of the TaskRun, "" when none is expected
	}{
		{"no token", "create_jobs", "", `{"titles":["a"]}`, 401, "unauthorized", ""},
		{"unknown token", "create_jobs", "not-a-token-at-all", `{"titles":["a"]}`, 401, "unauthorized", ""},
		{"missing permission", "create_jobs", bobToken, `{"titles":["a"]}`, 403, "forbidden", ""},
		{"unknown operation", "delete_everything", aliceToken, `{}`, 404, "not_found", ""},
		{"unknown field", "create_jobs", aliceToken, `{"titles":["a"],"colour":"red"}`, 422, "invalid_input", ""},
		{"not JSON", "create_jobs", aliceToken, `titles=a`, 422, "invalid_input", ""},
		{"wrong type", "create_jobs", aliceToken, `{"titles":"a"}`, 422, "invalid_input", ""},
		{"fails validation", "create_jobs", aliceToken, `{"titles":[]}`, 422, "invalid_input", "invalid_input"},
		{"operation error", "flaky_op", aliceToken, `{"mode":"fail"}`, 500, "operation_failed", "*errors.errorString"},
		{"panic", "flaky_op", aliceToken, `{"mode":"panic"}`, 500, "operation_panicked", "panic"},
		{"too large", "create_jobs", aliceToken, big, 413, "too_large", ""},
		{"bob may run an operation without permissions", "flaky_op", bobToken, `{}`, 200, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, m := f.invoke(t, tc.op, tc.token, tc.body)
			if code != tc.status || (tc.code != "" && m["code"] != tc.code) {
				t.Fatalf("%d %v, want %d %s", code, m, tc.status, tc.code)
			}
			if tc.code != "" && m["message"] == "" {
				t.Errorf("no message: %v", m)
			}
			id, _ := m["task_run_id"].(string)
			if tc.runType == "" {
				if id != "" && tc.status != 200 {
					t.Errorf("task_run_id %s for a call that should not have started", id)
				}
				return
			}
			f.h.Flush()
			run := f.h.Run(id)
			if run.Status != taskrun.StatusFailed || run.ErrorType != tc.runType || run.Actor.UserID != "alice" {
				t.Errorf("run %s: status %s error_type %q actor %+v", id, run.Status, run.ErrorType, run.Actor)
			}
		})
	}
}

func TestReadOnlyWithoutTokens(t *testing.T) {
	h := taskruntest.New(t)
	otelop.Define(otelop.Spec{Name: "noop", Description: "d", Category: "c", Observed: true},
		func(context.Context, struct{}) (struct{}, error) { return struct{}{}, nil }, h.Options()...)
	api, err := httpapi.New(h.Registry, h.Store)
	if err != nil {
		t.Fatal(err)
	}
	if !api.ReadOnly() {
		t.Error("ReadOnly() = false without tokens")
	}
	f := &fixture{h: h, srv: httptest.NewServer(api), api: api}
	defer f.srv.Close()
	code, m := f.invoke(t, "noop", aliceToken, `{}`)
	if code != 403 || m["code"] != "read_only" || !strings.Contains(m["message"].(string), httpapi.TokensEnv) {
		t.Errorf("invoke on a read-only server: %d %v", code, m)
	}
	if code, m := f.do(t, "GET", "/api/auth", "", ""); code != 200 || m["read_only"] != true {
		t.Errorf("auth: %d %v", code, m)
	}
	h.Flush()
	if runs := h.Runs(); len(runs) != 0 {
		t.Errorf("%d runs written by a read-only server", len(runs))
	}
}

func TestAuthInfo(t *testing.T) {
	f := newFixture(t)
	code, m := f.do(t, "GET", "/api/auth", aliceToken, "")
	if code != 200 || m["read_only"] != false || m["authenticated"] != true || m["user_id"] != "alice" {
		t.Errorf("%d %v", code, m)
	}
	if _, m := f.do(t, "GET", "/api/auth", "wrong-token-0123456789", ""); m["authenticated"] != false {
		t.Errorf("unknown token authenticated: %v", m)
	}
}

// seed invokes create_jobs as alice n times and flaky_op (failing) once.
func (f *fixture) seed(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		if code, m := f.invoke(t, "create_jobs", aliceToken, fmt.Sprintf(`{"titles":["t%d"]}`, i)); code != 200 {
			t.Fatalf("seed: %d %v", code, m)
		}
	}
	if code, _ := f.invoke(t, "flaky_op", bobToken, `{"mode":"fail"}`); code != 500 {
		t.Fatalf("seed failure: %d", code)
	}
	f.h.Flush()
}

func TestListTaskRuns(t *testing.T) {
	f := newFixture(t)
	f.seed(t, 5)
	code, m := f.do(t, "GET", "/api/taskruns?status=failed", "", "")
	runs, _ := m["taskruns"].([]any)
	if code != 200 || len(runs) != 1 || runs[0].(map[string]any)["error_message"] != "the printer is on fire" {
		t.Fatalf("failed runs: %d %v", code, m)
	}
	if _, m := f.do(t, "GET", "/api/taskruns?user_id=alice&operation=create_jobs&channel=api", "", ""); len(m["taskruns"].([]any)) != 5 {
		t.Errorf("alice's runs: %v", len(m["taskruns"].([]any)))
	}
	// Page through everything two at a time: newest first, no run twice.
	var seen []string
	before := ""
	for page := 0; ; page++ {
		_, m := f.do(t, "GET", "/api/taskruns?limit=2"+before, "", "")
		seen = append(seen, names(m, "taskruns")...)
		next, _ := m["next_before"].(string)
		if next == "" {
			break
		}
		if page > 5 {
			t.Fatal("paging does not end")
		}
		before = "&before=" + next
	}
	var want []string
	for _, r := range f.h.Runs() {
		want = append(want, r.ID)
	}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Errorf("paged ids %v, want %v", seen, want)
	}
	if _, m := f.do(t, "GET", "/api/taskruns?limit=6", "", ""); m["next_before"] != nil {
		t.Errorf("a page holding the last run has a next cursor: %v", m["next_before"])
	}
}

func TestListTaskRunsBadParameters(t *testing.T) {
	f := newFixture(t)
	f.seed(t, 1)
	for _, q := range []string{
		"status=bogus", "limit=abc", "limit=0", "limit=-1", "limit=10001", "since=yesterday",
		"until=2026-13-01T00:00:00Z", "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
		"orchestrated=maybe", "ref=nocollection", "stauts=FAILED", "status=FAILED&status=SUCCESS",
		"before=01990000-0000-7000-8000-000000000000",
	} {
		code, m := f.do(t, "GET", "/api/taskruns?"+q, "", "")
		if code != 400 || m["code"] != "bad_request" || m["message"] == "" {
			t.Errorf("%s: %d %v, want 400 bad_request", q, code, m)
		}
	}
}

func TestGetTaskRun(t *testing.T) {
	f := newFixture(t)
	f.seed(t, 1)
	run := f.h.Runs()[0]
	code, m := f.do(t, "GET", "/api/taskruns/"+run.ID, "", "")
	if code != 200 || m["id"] != run.ID || m["trace_id"] != run.TraceID {
		t.Errorf("%d %v", code, m)
	}
	if code, m := f.do(t, "GET", "/api/taskruns/no-such-run", "", ""); code != 404 || m["code"] != "not_found" {
		t.Errorf("unknown run: %d %v", code, m)
	}
	if code, m := f.do(t, "DELETE", "/api/taskruns/"+run.ID, "", ""); code != 404 || m["code"] != "not_found" {
		t.Errorf("unknown endpoint: %d %v", code, m)
	}
}

func TestReplay(t *testing.T) {
	f := newFixture(t)
	code, m := f.invoke(t, "create_jobs", aliceToken, `{"titles":["a","b","c"],"dry_run":true}`)
	if code != 200 {
		t.Fatal(code, m)
	}
	orig := m["task_run_id"].(string)
	f.h.Flush()
	if code, m := f.do(t, "POST", "/api/taskruns/"+orig+"/replay", "", ""); code != 401 {
		t.Errorf("replay without a token: %d %v", code, m)
	}
	code, m = f.do(t, "POST", "/api/taskruns/"+orig+"/replay", aliceToken, "")
	if code != 200 || m["replay_of"] != orig || m["task_run_id"] == orig {
		t.Fatalf("replay: %d %v", code, m)
	}
	f.h.Flush()
	first, again := f.h.Run(orig), f.h.Run(m["task_run_id"].(string))
	if again.Metadata["replay_of"] != orig || again.Metadata["dry_run"] != true || string(again.InputDump) != string(first.InputDump) {
		t.Errorf("replayed run metadata %v input %s, first input %s", again.Metadata, again.InputDump, first.InputDump)
	}
	if code, m := f.do(t, "POST", "/api/taskruns/nope/replay", aliceToken, ""); code != 404 {
		t.Errorf("replay of an unknown run: %d %v", code, m)
	}
}

func TestStats(t *testing.T) {
	f := newFixture(t)
	f.seed(t, 4)
	for range 2 {
		f.invoke(t, "flaky_op", aliceToken, `{"mode":"fail"}`)
	}
	f.invoke(t, "flaky_op", aliceToken, `{}`)
	f.h.Flush()
	code, m := f.do(t, "GET", "/api/operations/flaky_op/stats?buckets=6", "", "")
	if code != 200 || m["runs"] != 4.0 || m["failed"] != 3.0 || m["failure_rate"] != 0.75 {
		t.Fatalf("stats: %d %v", code, m)
	}
	buckets, _ := m["buckets"].([]any)
	total := 0.0
	for _, b := range buckets {
		total += b.(map[string]any)["count"].(float64)
	}
	if len(buckets) != 6 || total != 4 || m["p95_ms"].(float64) < m["p50_ms"].(float64) {
		t.Errorf("buckets %v", m)
	}
	for _, q := range []string{"buckets=0", "buckets=x", "since=soon", "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "bucket=3"} {
		if code, m := f.do(t, "GET", "/api/operations/flaky_op/stats?"+q, "", ""); code != 400 {
			t.Errorf("%s: %d %v", q, code, m)
		}
	}
}

func TestStoreUnavailable(t *testing.T) {
	st := memstore.New()
	st.Close(context.Background())
	api, err := httpapi.New(nil, st, httpapi.WithLogger(discardLogger()))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	f := &fixture{srv: srv, api: api}
	for _, p := range []string{"/api/taskruns", "/api/taskruns/x", "/api/operations/x/stats"} {
		if code, m := f.do(t, "GET", p, "", ""); code != 503 || m["code"] != "store_unavailable" {
			t.Errorf("%s: %d %v", p, code, m)
		}
	}
}

func TestPrefix(t *testing.T) {
	f := newFixture(t, httpapi.WithPrefix("/otelop/"))
	if code, m := f.do(t, "GET", "/otelop/api/operations", "", ""); code != 200 || len(names(m, "operations")) != 3 {
		t.Errorf("prefixed: %d %v", code, m)
	}
	resp, err := f.srv.Client().Get(f.srv.URL + "/api/operations")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("unprefixed path served: %d", resp.StatusCode)
	}
	if _, err := httpapi.New(nil, memstore.New(), httpapi.WithPrefix("otelop")); err == nil {
		t.Error("a prefix without a leading slash was accepted")
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := httpapi.New(nil, nil); err == nil {
		t.Error("New without a store succeeded")
	}
	t.Setenv(httpapi.TokensEnv, "/nonexistent/tokens.json")
	if _, err := httpapi.New(nil, memstore.New(), httpapi.WithTokensFromEnv()); err == nil || !strings.Contains(err.Error(), "/nonexistent/tokens.json") {
		t.Errorf("unreadable token file: %v", err)
	}
}

func TestReplayOfRedactedInputIsRefused(t *testing.T) {
	f := newFixture(t)
	type loginIn struct {
		otelop.Request
		Password string `json:"password"`
	}
	otelop.Define(otelop.Spec{Name: "login", Description: "d", Category: "auth", Observed: true},
		func(context.Context, loginIn) (bool, error) { return true, nil }, f.h.Options()...)
	code, m := f.invoke(t, "login", aliceToken, `{"password":"hunter2-hunter2"}`)
	if code != 200 {
		t.Fatal(code, m)
	}
	f.h.Flush()
	id := m["task_run_id"].(string)
	code, m = f.do(t, "POST", "/api/taskruns/"+id+"/replay", aliceToken, "")
	if code != 409 || m["code"] != "not_replayable" || !strings.Contains(m["message"].(string), "redacted") {
		t.Errorf("replay of a redacted input: %d %v", code, m)
	}
	if _, m := f.do(t, "GET", "/api/taskruns/"+id, "", ""); strings.Contains(fmt.Sprint(m), "hunter2") {
		t.Errorf("the password is served: %v", m)
	}
}
