package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/otelop/otelop/httpapi"
	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/taskruntest"
)

// The browser test drives the Chromium named by OTELOP_TEST_CHROMIUM
// (scripts/test.sh installs Debian's chromium) and saves a screenshot of
// each step in $OTELOP_TEST_OUTPUT/browser.
const (
	chromiumEnv = "OTELOP_TEST_CHROMIUM"
	outputEnv   = "OTELOP_TEST_OUTPUT"
	servicesEnv = "OTELOP_REQUIRE_SERVICES"
)

// browserZone is the time zone of the browser: the pages must show times
// in it. It has no daylight saving time, so the test can compute them.
const browserZone = "Asia/Tokyo"

var browserLoc = time.FixedZone("JST", 9*3600)

// browserTimeout bounds the whole browser session: when it passes, the
// browser is killed and the step that waited fails.
const browserTimeout = 90 * time.Second

func needChromium(t *testing.T) string {
	t.Helper()
	path := os.Getenv(chromiumEnv)
	if path == "" {
		if os.Getenv(servicesEnv) == "1" {
			t.Fatalf("%s=1 but %s is unset: it must name a Chromium binary (scripts/test.sh installs one)", servicesEnv, chromiumEnv)
		}
		t.Skipf("%s is unset: no Chromium to drive (scripts/test.sh installs one)", chromiumEnv)
	}
	return path
}

func screenshotDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv(outputEnv)
	if base == "" {
		return t.TempDir()
	}
	dir := filepath.Join(base, "browser")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browserPage is one tab of a headless Chromium that records the page's
// uncaught exceptions and console errors.
type browserPage struct {
	t   *testing.T
	ctx context.Context
	dir string

	seq      int
	mu       sync.Mutex
	problems []string
}

func newBrowserPage(t *testing.T, chromium string) (*browserPage, func()) {
	t.Helper()
	ctx, cancelTimeout := context.WithTimeout(context.Background(), browserTimeout)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	p := &browserPage{t: t, ctx: tabCtx, dir: screenshotDir(t)}
	// The cancel funcs close the tab, then wait for the browser to exit.
	cleanup := func() { cancelTab(); cancelAlloc(); cancelTimeout() }
	if err := chromedp.Do(tabCtx); err != nil {
		cleanup()
		t.Fatalf("starting %s: %v", chromium, err)
	}
	if _, err := chromedp.Call(tabCtx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: browserZone}); err != nil {
		cleanup()
		t.Fatalf("setting the time zone: %v", err)
	}
	err := chromedp.Listen(tabCtx, func(ev any) {
		var problem string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			problem = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				problem += " " + ev.ExceptionDetails.Exception.Description
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				problem = "console.error: " + strings.Join(args, " ")
			}
		}
		if problem != "" {
			p.mu.Lock()
			p.problems = append(p.problems, problem)
			p.mu.Unlock()
		}
	})
	if err != nil {
		cleanup()
		t.Fatal(err)
	}
	return p, cleanup
}

// do runs steps, failing the test with what the step was for.
func (p *browserPage) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

// navigate runs steps that load a page (a click on a link, a form
// submission) and waits until the new page has loaded and run its script,
// failing unless the server answered 200.
func (p *browserPage) navigate(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	p.navigateStatus(what, http.StatusOK, steps...)
}

// navigateStatus is navigate for a page that answers with status want.
func (p *browserPage) navigateStatus(what string, want int, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	p.seq++
	mark := fmt.Sprintf("page-%d", p.seq)
	p.do(what, chromedp.Evaluate[chromedp.Void](`window.otelopTestMark = "`+mark+`"`))
	p.do(what, steps...)
	// The mark disappears with the old page; the evaluation fails while
	// the new one is being loaded.
	loaded := `window.otelopTestMark !== "` + mark + `" && document.readyState === "complete"`
	for {
		ok, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](loaded))
		if err == nil && ok {
			break
		}
		if p.ctx.Err() != nil {
			p.t.Fatalf("%s: the page did not load: %v", what, p.ctx.Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
	status := browserRun(p, what, chromedp.Evaluate[int](`performance.getEntriesByType("navigation")[0].responseStatus`))
	if status != want {
		loc, _ := chromedp.Run(p.ctx, chromedp.Location())
		p.t.Fatalf("%s: %s answered %d", what, loc, status)
	}
}

func browserRun[T any](p *browserPage, what string, a chromedp.Action[T]) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, a)
	if err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// waitReload waits until the page has reloaded itself and expr holds in
// the new page.
func (p *browserPage) waitReload(what, expr string) {
	p.t.Helper()
	p.seq++
	mark := fmt.Sprintf("page-%d", p.seq)
	p.do(what, chromedp.Evaluate[chromedp.Void](`window.otelopTestMark = "`+mark+`"`))
	cond := `window.otelopTestMark !== "` + mark + `" && document.readyState === "complete" && (` + expr + `)`
	for {
		ok, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](cond))
		if err == nil && ok {
			return
		}
		if p.ctx.Err() != nil {
			p.t.Fatalf("%s: %v", what, p.ctx.Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor polls a JavaScript predicate until it is true.
func (p *browserPage) waitFor(what, expr string) {
	p.t.Helper()
	browserRun(p, what, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
}

func (p *browserPage) screenshot(name string) {
	p.t.Helper()
	png := browserRun(p, "screenshot "+name, chromedp.FullScreenshot(100))
	path := filepath.Join(p.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot %s", path)
}

func (p *browserPage) checkProblems() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.problems {
		p.t.Errorf("page script: %s", pr)
	}
}

// TestBrowser drives the UI in Chromium the way a person would: the run
// list updating live, a running run's page turning final, the FAILED
// filter, a failed run's error and trace link, the catalog search, an
// operation's page, an invoke with a token and a replay of the new run.
func TestBrowser(t *testing.T) {
	chromium := needChromium(t)

	h := taskruntest.New(t)
	rename, del, wait, release := defineUIOps(t, h)
	slowGate := make(chan struct{})
	releaseSlow := sync.OnceFunc(func() { close(slowGate) })
	slow := otelop.Define(otelop.Spec{Name: "slow_job", Description: "Waits for the test too", Category: "ops", Observed: true},
		func(ctx context.Context, _ uiWaitIn) (struct{}, error) {
			<-slowGate
			return struct{}{}, nil
		}, h.Options()...)
	ctx := context.Background()
	for i, user := range []string{"carol", "dave", "erin", "frank"} {
		in := uiJobIn{Request: otelop.Request{UserID: user, Channel: "cli", TestMode: i == 2}, JobID: fmt.Sprintf("job-%d", i+1), Title: "Title " + user}
		if _, err := rename.Call(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := del.Call(ctx, uiJobIn{Request: otelop.Request{UserID: "dave"}, JobID: "job-7"}); err == nil {
		t.Fatal("delete_job did not fail")
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer releaseSlow()
	defer release()
	wg.Go(func() { _, _ = wait.Call(ctx, uiWaitIn{Request: otelop.Request{UserID: "erin"}}) })
	wg.Go(func() { _, _ = slow.Call(ctx, uiWaitIn{Request: otelop.Request{UserID: "gina"}}) })
	var failed, waiting, slowRun taskrun.TaskRun
	for deadline := time.Now().Add(10 * time.Second); waiting.ID == "" || slowRun.ID == ""; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the runs of wait_job and slow_job did not show up")
		}
		for _, r := range h.Runs() {
			switch {
			case r.OperationName == "delete_job":
				failed = r
			case r.OperationName == "wait_job" && r.Status == taskrun.StatusRunning:
				waiting = r
			case r.OperationName == "slow_job" && r.Status == taskrun.StatusRunning:
				slowRun = r
			}
		}
	}

	tokens, err := httpapi.NewTokens(map[string]httpapi.Identity{uiToken: {UserID: "alice", Permissions: []string{"*"}}})
	if err != nil {
		t.Fatal(err)
	}
	const traceTemplate = "http://jaeger.test/trace/{trace_id}"
	// Mounted under a prefix, as in a service that serves other things too:
	// the pages' links and the script's API calls must carry it.
	api, err := httpapi.New(h.Registry, h.Store, httpapi.WithTokens(tokens), httpapi.WithTraceURL(traceTemplate), httpapi.WithPrefix("/otelop"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/otelop/", api)
	srv := httptest.NewServer(mux) // on 127.0.0.1
	defer srv.Close()
	base := srv.URL + "/otelop"

	p, closeBrowser := newBrowserPage(t, chromium)
	defer closeBrowser()
	defer p.checkProblems()

	// 1. The run list: times in the viewer's zone, a RUNNING run that
	// finishes while it is shown.
	p.navigate("open the run list", chromedp.Navigate(base+"/"))
	p.waitFor("times in the viewer's zone", `document.querySelector('#tz-note').textContent.includes('(`+browserZone+`)')`)
	shown := browserRun(p, "the failed run's start", chromedp.Text(chromedp.CSS(`tr[data-run-id="`+failed.ID+`"] .c-started time`)))
	if want := failed.StartedAt.In(browserLoc).Format("2006-01-02 15:04:05"); shown != want {
		t.Errorf("start time shown as %q, want %q (%s)", shown, want, browserZone)
	}
	if n := browserRun(p, "count rows", chromedp.Evaluate[int](`document.querySelectorAll('#runs-table tr.run-row').length`)); n != 7 {
		t.Errorf("the list shows %d runs, want 7", n)
	}
	row := func(id string) string { return fmt.Sprintf(`document.querySelector('tr[data-run-id="%s"]')`, id) }
	for _, id := range []string{waiting.ID, slowRun.ID} {
		if st := browserRun(p, "running row", chromedp.Evaluate[string](row(id)+`.dataset.status`)); st != "RUNNING" {
			t.Errorf("the row of run %s says %s, want RUNNING", id, st)
		}
	}
	p.screenshot("01-runs")
	release()
	p.waitFor("the running row turns SUCCESS without a reload",
		row(waiting.ID)+`.dataset.status === 'SUCCESS' && `+row(waiting.ID)+`.querySelector('.status').textContent === 'SUCCESS'`)
	p.screenshot("02-runs-live")

	// 2. A running run's page follows the run until it is final.
	p.navigate("open the slow run", chromedp.Click(chromedp.CSS(`tr[data-run-id="`+slowRun.ID+`"] a.run-link`)))
	p.waitFor("the elapsed time ticks", `/running|for /.test(document.querySelector('#run-elapsed').textContent)`)
	p.screenshot("03-run-running")
	releaseSlow()
	p.waitReload("the page shows the finished run", `document.querySelector('#run-status').dataset.status === 'SUCCESS' && !!document.querySelector('#run-duration')`)

	// 3. Filter FAILED with the status control.
	p.navigate("back to the list", chromedp.Click(chromedp.ID("nav-runs")))
	p.do("choose FAILED", chromedp.SetValue(chromedp.ID("filter-status"), "FAILED"))
	p.navigate("apply the filter", chromedp.Click(chromedp.ID("filter-apply")))
	if loc := browserRun(p, "location", chromedp.Location()); loc != base+"/?status=FAILED" {
		t.Errorf("filtered URL %s, want %s/?status=FAILED", loc, base)
	}
	statuses := browserRun(p, "statuses", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#runs-table tr.run-row')).map(r => r.dataset.status)`))
	if len(statuses) != 1 || statuses[0] != "FAILED" {
		t.Errorf("filtered list shows %v, want one FAILED run", statuses)
	}
	p.screenshot("04-runs-failed")

	// 4. The failed run: its error and its trace link.
	p.navigate("open the failed run", chromedp.Click(chromedp.CSS(`tr[data-status="FAILED"] a.run-link`)))
	p.do("error visible", chromedp.WaitVisible(chromedp.ID("error-message")))
	if msg := browserRun(p, "error message", chromedp.Text(chromedp.ID("error-message"))); msg != failMessage {
		t.Errorf("error message %q, want %q", msg, failMessage)
	}
	runID := browserRun(p, "run id", chromedp.Text(chromedp.ID("run-id")))
	stored, err := h.Store.Get(ctx, runID)
	if err != nil || runID != failed.ID {
		t.Fatalf("the page shows run %s (store: %v), want %s", runID, err, failed.ID)
	}
	href := browserRun(p, "trace link", chromedp.Evaluate[string](`document.querySelector('#trace-link').getAttribute('href')`))
	if want := strings.ReplaceAll(traceTemplate, "{trace_id}", stored.TraceID); stored.TraceID == "" || href != want {
		t.Errorf("trace link %q, want %q", href, want)
	}
	p.screenshot("05-run-failed")

	// 5. The catalog, searched.
	p.navigate("open the catalog", chromedp.Click(chromedp.ID("nav-operations")))
	p.do("search", chromedp.SendKeys(chromedp.ID("op-search"), "renam"))
	p.waitFor("the search filters the catalog",
		`Array.from(document.querySelectorAll('tr.op-row')).filter(r => !r.hidden).map(r => r.dataset.name).join() === 'rename_job'`)
	p.screenshot("06-operations")

	// 6. The operation's page, with its activity.
	p.navigate("open rename_job", chromedp.Click(chromedp.CSS(`tr.op-row[data-name="rename_job"] a.op-link`)))
	p.waitFor("the stats load", `document.querySelector('#op-stats').dataset.loaded === '24h'`)
	if calls := browserRun(p, "calls", chromedp.Text(chromedp.ID("stat-runs"))); calls != "4" {
		t.Errorf("rename_job shows %s calls, want 4", calls)
	}
	if bars := browserRun(p, "bars", chromedp.Evaluate[int](`document.querySelectorAll('#chart-calls .bar-ok').length`)); bars < 1 {
		t.Error("the calls chart has no bar")
	}
	p.screenshot("07-operation")

	// 7. Invoke it with a token.
	p.do("fill the invoke form",
		chromedp.SetValue(chromedp.ID("invoke-input"), `{"job_id": "job-42", "title": "From the browser"}`),
		chromedp.SendKeys(chromedp.ID("token-input"), uiToken),
	)
	p.waitFor("the token is recognised", `document.querySelector('#token-status').textContent.includes('alice')`)
	p.do("invoke", chromedp.Click(chromedp.ID("invoke-button")))
	p.waitFor("the result", `document.querySelector('#invoke-result').dataset.state !== undefined`)
	if state := browserRun(p, "result state", chromedp.Evaluate[string](`document.querySelector('#invoke-result').dataset.state`)); state != "ok" {
		t.Fatalf("invoke result %q: %s", state, browserRun(p, "result", chromedp.Text(chromedp.ID("invoke-result"))))
	}
	newID := browserRun(p, "new run id", chromedp.Evaluate[string](`document.querySelector('#invoke-run-link').dataset.runId`))
	p.waitFor("the new run appears in the recent runs", fmt.Sprintf(`!!document.querySelector('#runs-table tr[data-run-id="%s"]')`, newID))
	p.screenshot("08-invoked")
	h.Flush()
	invoked, err := h.Store.Get(ctx, newID)
	if err != nil {
		t.Fatalf("the invoked run %s: %v", newID, err)
	}
	if invoked.Actor != (taskrun.Actor{UserID: "alice", Channel: "api"}) || invoked.Status != taskrun.StatusSuccess ||
		invoked.OperationName != "rename_job" || !strings.Contains(string(invoked.InputDump), "job-42") {
		t.Errorf("invoked run: %s by %+v, status %s, input %s", invoked.OperationName, invoked.Actor, invoked.Status, invoked.InputDump)
	}

	// 8. Open the new run and replay it; the token is still in the tab.
	p.navigate("open the new run", chromedp.Click(chromedp.ID("invoke-run-link")))
	if tok := browserRun(p, "token field", chromedp.Value(chromedp.ID("token-input"))); tok != uiToken {
		t.Errorf("the token field holds %q, want the token of the session", tok)
	}
	p.do("replay", chromedp.Click(chromedp.ID("replay-button")))
	p.waitFor("the replay result", `document.querySelector('#replay-result').dataset.state === 'ok'`)
	replayID := browserRun(p, "replay run id", chromedp.Evaluate[string](`document.querySelector('#replay-run-link').dataset.runId`))
	p.screenshot("09-replayed")
	h.Flush()
	replayed, err := h.Store.Get(ctx, replayID)
	if err != nil {
		t.Fatalf("the replayed run %s: %v", replayID, err)
	}
	if replayed.Metadata["replay_of"] != newID || replayed.Actor.UserID != "alice" {
		t.Errorf("replayed run: metadata %v, actor %+v", replayed.Metadata, replayed.Actor)
	}
	p.navigate("open the replay", chromedp.Click(chromedp.ID("replay-run-link")))
	if of := browserRun(p, "replay of", chromedp.Text(chromedp.ID("replay-of"))); of != newID {
		t.Errorf("the replay links %q, want %s", of, newID)
	}
	p.screenshot("10-replay-run")

	// 9. A page that does not exist.
	p.navigateStatus("open a missing page", http.StatusNotFound, chromedp.Navigate(base+"/no/such/page"))
	p.do("404 page", chromedp.WaitVisible(chromedp.ID("error-page")))
	p.screenshot("11-not-found")
}
