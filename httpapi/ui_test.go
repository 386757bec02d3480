package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otelop/otelop/httpapi"
	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/registry"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/taskruntest"
)

const uiToken = "ui-test-token-0123456789"

type uiJobIn struct {
	otelop.Request
	JobID string `json:"job_id" validate:"required"`
	Title string `json:"title"`
}

type uiJobOut struct {
	otelop.Receipt
	JobID string `json:"job_id" otelop:"ref=jobs"`
}

type uiWaitIn struct {
	otelop.Request
}

// uiFixture holds real TaskRuns of three operations: rename_job (SUCCESS,
// with a log entry and a result ref), delete_job (FAILED) and wait_job
// (RUNNING until the test ends).
type uiFixture struct {
	h       *taskruntest.Harness
	ok      taskrun.TaskRun
	failed  taskrun.TaskRun
	running taskrun.TaskRun
}

// failMessage is delete_job's error: markup in it must reach the page
// escaped.
const failMessage = `job <b>job-7</b> is locked & cannot be deleted`

func defineUIOps(t testing.TB, h *taskruntest.Harness) (rename *otelop.Op[uiJobIn, uiJobOut], del *otelop.Op[uiJobIn, uiJobOut], wait *otelop.Op[uiWaitIn, struct{}], release func()) {
	t.Helper()
	rename = otelop.Define(otelop.Spec{Name: "rename_job", Description: "Rename a job", Category: "jobs",
		Tags: []string{"jobs", "write"}, Permissions: []string{"jobs:write"}, Stage: "edit", Observed: true},
		func(ctx context.Context, in uiJobIn) (uiJobOut, error) {
			otelop.Log(ctx, slog.LevelInfo, "renaming", "title", in.Title)
			return uiJobOut{JobID: in.JobID}, nil
		}, h.Options()...)
	del = otelop.Define(otelop.Spec{Name: "delete_job", Description: "Delete a job", Category: "jobs", Tags: []string{"jobs"}, Observed: true},
		func(context.Context, uiJobIn) (uiJobOut, error) {
			return uiJobOut{}, errors.New(failMessage)
		}, h.Options()...)
	gate := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	wait = otelop.Define(otelop.Spec{Name: "wait_job", Description: "Waits for the test", Category: "ops", Observed: true},
		func(ctx context.Context, _ uiWaitIn) (struct{}, error) {
			<-gate
			return struct{}{}, nil
		}, h.Options()...)
	return rename, del, wait, release
}

func newUIFixture(t *testing.T) *uiFixture {
	t.Helper()
	h := taskruntest.New(t)
	rename, del, wait, release := defineUIOps(t, h)
	ctx := context.Background()
	out, err := rename.Call(ctx, uiJobIn{Request: otelop.Request{UserID: "carol", Channel: "cli", DryRun: true},
		JobID: "job-1", Title: `<script>alert("x")</script>`})
	if err != nil {
		t.Fatal(err)
	}
	f := &uiFixture{h: h, ok: h.Run(out.TaskRunID)}
	if _, err := del.Call(ctx, uiJobIn{Request: otelop.Request{UserID: "dave"}, JobID: "job-7"}); err == nil {
		t.Fatal("delete_job did not fail")
	}
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = wait.Call(ctx, uiWaitIn{Request: otelop.Request{UserID: "erin"}}) })
	t.Cleanup(func() { release(); wg.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for f.failed.ID == "" || f.running.ID == "" {
		if time.Now().After(deadline) {
			t.Fatal("the runs of delete_job and wait_job did not show up")
		}
		for _, r := range h.Runs() {
			switch r.OperationName {
			case "delete_job":
				f.failed = r
			case "wait_job":
				f.running = r
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return f
}

// handler serves the fixture's runs with a token for alice.
func (f *uiFixture) handler(t *testing.T, opts ...httpapi.Option) *httpapi.Handler {
	t.Helper()
	tokens, err := httpapi.NewTokens(map[string]httpapi.Identity{uiToken: {UserID: "alice", Permissions: []string{"*"}}})
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]httpapi.Option{httpapi.WithTokens(tokens), httpapi.WithTraceURL("http://jaeger.test/trace/{trace_id}")}, opts...)
	api, err := httpapi.New(f.h.Registry, f.h.Store, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return api
}

type uiResponse struct {
	code   int
	header http.Header
	body   string
}

func get(t *testing.T, h http.Handler, path string, header ...string) uiResponse {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return uiResponse{code: rec.Code, header: rec.Header(), body: string(b)}
}

func TestUIPages(t *testing.T) {
	f := newUIFixture(t)
	api := f.handler(t)
	for _, tc := range []struct {
		path    string
		code    int
		want    []string
		notWant []string
	}{
		{"/", 200, []string{`id="runs-table"`, `data-live-query="limit=50"`, f.ok.ID, f.failed.ID, f.running.ID,
			`data-status="RUNNING"`, `class="status status-failed"`, "job &lt;b&gt;job-7&lt;/b&gt; is locked",
			`href="/runs/` + f.ok.ID + `"`, `<option value="FAILED">FAILED</option>`, `id="nav-runs" href="/" aria-current="page"`,
			`<time datetime="`, `class="flag flag-dry-run"`}, nil},
		{"/?status=FAILED", 200, []string{f.failed.ID, `<option value="FAILED" selected>`, `id="filter-reset"`},
			[]string{f.ok.ID, f.running.ID}},
		{"/?status=failed&user_id=dave&unknown=1", 200, []string{f.failed.ID}, []string{f.ok.ID}},
		{"/?operation=rename_job&status=", 200, []string{f.ok.ID, `value="rename_job"`}, []string{f.failed.ID}},
		{"/?trace_id=" + f.ok.TraceID, 200, []string{f.ok.ID, "Also filtered by", `name="trace_id" value="` + f.ok.TraceID + `"`},
			[]string{f.failed.ID}},
		{"/?status=FAILED&user_id=nobody", 200, []string{"No runs match these filters."}, nil},
		{"/?since=yesterday", 400, []string{`id="runs-error"`, "since &#34;yesterday&#34; is not an RFC 3339 time"}, []string{`id="runs-table"`}},
		{"/?status=BOGUS", 400, []string{`id="runs-error"`, "unknown status"}, nil},
		{"/?before=no-such-run", 400, []string{`id="runs-error"`}, nil},
		{"/runs", 302, nil, nil},
		{"/runs/" + f.failed.ID, 200, []string{`id="error-message"`, "job &lt;b&gt;job-7&lt;/b&gt; is locked &amp; cannot be deleted",
			`id="trace-link"`, `data-status="FAILED"`, `id="run-timeline"`, "Finished", f.failed.TraceID, `id="replay-form"`,
			"<dd id=\"actor-user\">dave</dd>"}, []string{"<b>job-7</b>"}},
		{"/runs/" + f.ok.ID, 200, []string{`id="input-json"`, "&lt;script&gt;alert(\\&#34;x\\&#34;)&lt;/script&gt;",
			`id="run-refs"`, "job-1", "renaming", `<span class="bool" data-on="true">dry_run</span>`, `<dd id="actor-channel">cli</dd>`},
			[]string{`id="run-error"`, "<script>alert"}},
		{"/runs/" + f.running.ID, 200, []string{`data-status="RUNNING"`, `id="run-elapsed"`, "Running…"}, []string{`id="run-duration"`}},
		{"/runs/no-such-run", 404, []string{`id="error-page"`, "Not found"}, nil},
		{"/operations", 200, []string{`id="ops-table"`, "rename_job", "delete_job", "wait_job", "Rename a job",
			`data-search="rename_job`, `<option value="jobs">jobs</option>`, "3 of 3 operations"}, nil},
		{"/operations?q=RENAME", 200, []string{"1 of 3 operations", `data-name="delete_job"`}, nil},
		{"/operations?tag=write&category=jobs", 200, []string{"1 of 3 operations", `<option value="write" selected>`}, nil},
		{"/operations/rename_job", 200, []string{`id="op-stats" data-operation="rename_job"`, `id="chart-calls"`, `id="chart-duration"`,
			`id="invoke-form"`, `id="token-input"`, `id="invoke-button"`, `id="input-schema"`, `id="output-schema"`,
			"&#34;job_id&#34;: &#34;&#34;", "jobs:write", `data-live-query="limit=10&amp;operation=rename_job"`, f.ok.ID},
			[]string{`id="readonly-notice"`, f.failed.ID, `id="unregistered-notice"`}},
		{"/operations/delete_job", 200, []string{`class="chip tag" href="/operations?tag=jobs"`, f.failed.ID}, nil},
		{"/operations/no_such_op", 404, []string{`id="error-page"`, "Operation not found"}, nil},
		{"/nowhere", 404, []string{`id="error-page"`, "There is no page at /nowhere."}, nil},
		{"/runs/a/b", 404, []string{`id="error-page"`}, nil},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := get(t, api, tc.path)
			if r.code != tc.code {
				t.Fatalf("status %d, want %d; body:\n%.2000s", r.code, tc.code, r.body)
			}
			if tc.code == 302 {
				return
			}
			if ct := r.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
				t.Errorf("Content-Security-Policy %q", csp)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.body, w) {
					t.Errorf("missing %q", w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(r.body, w) {
					t.Errorf("unexpected %q", w)
				}
			}
			if t.Failed() {
				t.Logf("body:\n%s", r.body)
			}
		})
	}
}

func TestUIRedirectKeepsFilters(t *testing.T) {
	f := newUIFixture(t)
	r := get(t, f.handler(t), "/runs?status=FAILED")
	if r.code != http.StatusFound || r.header.Get("Location") != "/?status=FAILED" {
		t.Errorf("%d Location %q", r.code, r.header.Get("Location"))
	}
}

var hrefOf = regexp.MustCompile(`id="trace-link"[^>]*href="([^"]*)"`)

func TestUITraceLink(t *testing.T) {
	f := newUIFixture(t)
	for _, tmpl := range []string{
		"http://jaeger.test/trace/{trace_id}",
		"https://grafana.example/explore?left={\"queries\":[{\"query\":\"{trace_id}\"}]}&orgId=1",
		"/jaeger/trace/{trace_id}?uiEmbed=v0",
	} {
		r := get(t, f.handler(t, httpapi.WithTraceURL(tmpl)), "/runs/"+f.failed.ID)
		m := hrefOf.FindStringSubmatch(r.body)
		if m == nil {
			t.Fatalf("%s: no trace link in\n%s", tmpl, r.body)
		}
		got := html.UnescapeString(m[1])
		want := strings.ReplaceAll(tmpl, "{trace_id}", f.failed.TraceID)
		if tmpl == "http://jaeger.test/trace/{trace_id}" && got != want {
			t.Errorf("href %q, want %q", got, want)
		}
		if !strings.Contains(got, f.failed.TraceID) || strings.Contains(got, "{trace_id}") {
			t.Errorf("%s: href %q does not carry trace id %s", tmpl, got, f.failed.TraceID)
		}
	}
	// The environment gives the template when no option does.
	t.Setenv(httpapi.TraceURLEnv, "http://tempo.test/t/{trace_id}")
	api, err := httpapi.New(f.h.Registry, f.h.Store)
	if err != nil {
		t.Fatal(err)
	}
	m := hrefOf.FindStringSubmatch(get(t, api, "/runs/"+f.ok.ID).body)
	if m == nil || m[1] != "http://tempo.test/t/"+f.ok.TraceID {
		t.Errorf("trace link from %s: %v", httpapi.TraceURLEnv, m)
	}
}

var assetURL = regexp.MustCompile(`(?:href|src)="(/[^"]*/static/app\.(?:css|js)\?v=[0-9a-f]+)"|(?:href|src)="(/static/app\.(?:css|js)\?v=[0-9a-f]+)"`)

func TestUIStatic(t *testing.T) {
	f := newUIFixture(t)
	api := f.handler(t)
	page := get(t, api, "/operations").body
	var urls []string
	for _, m := range assetURL.FindAllStringSubmatch(page, -1) {
		urls = append(urls, m[1]+m[2])
	}
	if len(urls) != 2 {
		t.Fatalf("asset links %v in\n%s", urls, page)
	}
	for _, u := range urls {
		r := get(t, api, u)
		wantCT := "text/css; charset=utf-8"
		if strings.Contains(u, ".js") {
			wantCT = "text/javascript; charset=utf-8"
		}
		if r.code != 200 || r.header.Get("Content-Type") != wantCT || len(r.body) < 1000 {
			t.Errorf("%s: %d %q, %d bytes", u, r.code, r.header.Get("Content-Type"), len(r.body))
		}
		if cc := r.header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("%s: Cache-Control %q", u, cc)
		}
		etag := r.header.Get("ETag")
		if etag == "" {
			t.Fatalf("%s: no ETag", u)
		}
		// Without the version the asset is revalidated, and unchanged
		// content is not sent again.
		bare, _, _ := strings.Cut(u, "?")
		r = get(t, api, bare)
		if r.code != 200 || r.header.Get("Cache-Control") != "no-cache" {
			t.Errorf("%s: %d Cache-Control %q", bare, r.code, r.header.Get("Cache-Control"))
		}
		if r = get(t, api, bare, "If-None-Match", etag); r.code != http.StatusNotModified {
			t.Errorf("%s with If-None-Match: %d", bare, r.code)
		}
	}
	if r := get(t, api, "/static/nope.js"); r.code != 404 || !strings.Contains(r.body, `id="error-page"`) {
		t.Errorf("unknown asset: %d", r.code)
	}
	if !strings.Contains(get(t, api, "/static/app.js").body, "textContent") {
		t.Error("app.js is not the embedded script")
	}
}

func TestUIPrefix(t *testing.T) {
	f := newUIFixture(t)
	api := f.handler(t, httpapi.WithPrefix("/otelop/"))
	mux := http.NewServeMux()
	mux.Handle("/otelop/", api)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "the host app") })

	r := get(t, mux, "/otelop/")
	for _, w := range []string{`data-prefix="/otelop"`, `href="/otelop/runs/` + f.ok.ID + `"`, `href="/otelop/operations"`,
		`action="/otelop/"`, `/otelop/static/app.css?v=`, `/otelop/static/app.js?v=`} {
		if !strings.Contains(r.body, w) {
			t.Errorf("/otelop/: missing %q", w)
		}
	}
	if r.code != 200 {
		t.Errorf("/otelop/: %d", r.code)
	}
	if r := get(t, mux, "/otelop"); r.code/100 != 3 || r.header.Get("Location") != "/otelop/" {
		t.Errorf("/otelop: %d %q", r.code, r.header.Get("Location"))
	}
	for path, want := range map[string]string{
		"/otelop/runs/" + f.failed.ID:         `href="/otelop/operations/delete_job"`,
		"/otelop/operations":                  `href="/otelop/operations/rename_job"`,
		"/otelop/operations/rename_job":       `id="op-runs-link" href="/otelop/?operation=rename_job"`,
		"/otelop/?status=FAILED&limit=1":      `id="filter-reset" class="button" href="/otelop/"`,
		"/otelop/static/app.css":              "--accent",
		"/otelop/runs?status=RUNNING&limit=2": "",
	} {
		r := get(t, mux, path)
		if r.code != 200 && !(r.code == 302 && r.header.Get("Location") == "/otelop/?status=RUNNING&limit=2") {
			t.Errorf("%s: %d", path, r.code)
		}
		if !strings.Contains(r.body, want) {
			t.Errorf("%s: missing %q", path, want)
		}
	}
	if r := get(t, mux, "/otelop/nope"); r.code != 404 || !strings.Contains(r.body, `href="/otelop/operations"`) {
		t.Errorf("/otelop/nope: %d", r.code)
	}
	if r := get(t, mux, "/operations"); r.body != "the host app" {
		t.Errorf("/operations outside the prefix reached the UI: %d", r.code)
	}
}

func TestUIPaging(t *testing.T) {
	h := taskruntest.New(t)
	rename, _, _, release := defineUIOps(t, h)
	release()
	var ids []string
	for i := range 5 {
		out, err := rename.Call(context.Background(), uiJobIn{JobID: fmt.Sprintf("job-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, out.TaskRunID)
		time.Sleep(2 * time.Millisecond)
	}
	h.Flush()
	api, err := httpapi.New(h.Registry, h.Store)
	if err != nil {
		t.Fatal(err)
	}
	older := regexp.MustCompile(`id="page-older"[^>]*href="([^"]*)"`)
	runID := regexp.MustCompile(`<tr class="run-row" data-testid="run-row" data-run-id="([^"]+)"`)
	var seen []string
	path := "/?operation=rename_job&limit=2"
	for page := 0; path != ""; page++ {
		if page > 3 {
			t.Fatal("paging does not end")
		}
		r := get(t, api, path)
		if r.code != 200 {
			t.Fatalf("%s: %d", path, r.code)
		}
		for _, m := range runID.FindAllStringSubmatch(r.body, -1) {
			seen = append(seen, m[1])
		}
		if page > 0 && (!strings.Contains(r.body, `id="page-newest"`) || strings.Contains(r.body, "data-live-query")) {
			t.Errorf("page %d: want a link to the newest page and no live updates", page)
		}
		path = ""
		if m := older.FindStringSubmatch(r.body); m != nil {
			path = html.UnescapeString(m[1])
			if !strings.Contains(path, "operation=rename_job") || !strings.Contains(path, "limit=2") {
				t.Errorf("older link %q drops the filters", path)
			}
		}
	}
	want := []string{ids[4], ids[3], ids[2], ids[1], ids[0]}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Errorf("pages show %v, want newest first %v", seen, want)
	}
}

func TestUIReadOnly(t *testing.T) {
	f := newUIFixture(t)
	api, err := httpapi.New(f.h.Registry, f.h.Store)
	if err != nil {
		t.Fatal(err)
	}
	r := get(t, api, "/operations/rename_job")
	for _, w := range []string{`id="readonly-notice"`, `id="readonly-badge"`, `data-testid="invoke-button" disabled`} {
		if !strings.Contains(r.body, w) {
			t.Errorf("operation page: missing %q", w)
		}
	}
	if strings.Contains(r.body, `id="token-input"`) {
		t.Error("operation page asks for a token on a read-only server")
	}
	r = get(t, api, "/runs/"+f.ok.ID)
	if !strings.Contains(r.body, `id="readonly-notice"`) || strings.Contains(r.body, `id="replay-button"`) {
		t.Error("run page offers replay on a read-only server")
	}
	if strings.Contains(get(t, f.handler(t), "/").body, "readonly-badge") {
		t.Error("a server with tokens says it is read-only")
	}
}

// An operation that this service does not register still has a page when
// the store holds its runs, without the invoke form.
func TestUIUnregisteredOperation(t *testing.T) {
	f := newUIFixture(t)
	api, err := httpapi.New(registry.New(), f.h.Store)
	if err != nil {
		t.Fatal(err)
	}
	r := get(t, api, "/operations/delete_job")
	if r.code != 200 || !strings.Contains(r.body, `id="unregistered-notice"`) || strings.Contains(r.body, `id="invoke-form"`) ||
		!strings.Contains(r.body, f.failed.ID) || !strings.Contains(r.body, `id="op-stats"`) {
		t.Errorf("%d\n%s", r.code, r.body)
	}
	if r := get(t, api, "/runs/"+f.failed.ID); strings.Contains(r.body, `id="replay"`) {
		t.Error("run page offers replay of an unregistered operation")
	}
	if r := get(t, api, "/operations"); !strings.Contains(r.body, "No operations are registered.") {
		t.Error("empty catalog")
	}
}

// failingStore fails every query, as an unreachable database does.
type failingStore struct{}

func (failingStore) Get(context.Context, string) (taskrun.TaskRun, error) {
	return taskrun.TaskRun{}, errors.New("connection refused")
}

func (failingStore) Find(context.Context, taskrun.Query) ([]taskrun.TaskRun, error) {
	return nil, errors.New("connection refused")
}

func TestUIStoreUnavailable(t *testing.T) {
	api, err := httpapi.New(nil, failingStore{}, httpapi.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/runs/x"} {
		r := get(t, api, path)
		if r.code != http.StatusServiceUnavailable || !strings.Contains(r.body, "connection refused") {
			t.Errorf("%s: %d\n%s", path, r.code, r.body)
		}
	}
}
