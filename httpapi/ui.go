package httpapi

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/otelop/otelop/registry"
	"github.com/otelop/otelop/taskrun"
)

// The web UI: server-rendered pages (html/template) that work without
// JavaScript, enhanced by one embedded script that shows times in the
// viewer's time zone, keeps RUNNING runs up to date, draws the operation
// charts from the stats endpoint, and invokes and replays through the JSON
// API.
//
//	GET /                   the TaskRun list (filters, cursor paging)
//	GET /runs               redirects to the list, keeping its filters
//	GET /runs/{id}          one TaskRun
//	GET /operations         the operation catalog
//	GET /operations/{name}  one operation: schemas, activity chart, invoke form
//	GET /static/{file}      embedded assets

//go:embed web/templates/*.html web/static/*
var webFS embed.FS

const (
	// uiPageSize is the number of runs on one page of the TaskRun list.
	uiPageSize = 50
	// uiRecentRuns is the number of runs on an operation's page.
	uiRecentRuns = 10
	// uiLongInput is the number of lines above which an input is shown
	// collapsed.
	uiLongInput = 30
)

// contentSecurityPolicy allows the page's own script, stylesheet and API
// and nothing else; data is put in the page with textContent only.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'self'"

var (
	uiTemplates = parseUITemplates()
	uiAssets    = loadUIAssets()
)

var uiFuncs = template.FuncMap{
	"iso":         func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
	"utc":         func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"deref":       derefTime,
	"ms":          formatMS,
	"short":       shortID,
	"pathEscape":  url.PathEscape,
	"statusClass": statusClass,
	"flag":        runFlag,
	"jsonc":       compactJSON,
	"row":         runRow,
	"statuses": func() []taskrun.Status {
		return []taskrun.Status{taskrun.StatusRunning, taskrun.StatusSuccess, taskrun.StatusFailed, taskrun.StatusPending}
	},
}

func parseUITemplates() map[string]*template.Template {
	base := template.Must(template.New("layout").Funcs(uiFuncs).ParseFS(webFS,
		"web/templates/layout.html", "web/templates/partials.html"))
	pages := make(map[string]*template.Template)
	for _, p := range []string{"runs", "run", "operations", "operation", "error"} {
		pages[p] = template.Must(template.Must(base.Clone()).ParseFS(webFS, "web/templates/"+p+".html"))
	}
	return pages
}

// uiAsset is an embedded static file, served with an ETag of its content
// hash; pages link it with ?v=<hash>, a URL that is cached for good.
type uiAsset struct {
	body        []byte
	contentType string
	version     string
}

func loadUIAssets() map[string]uiAsset {
	assets := make(map[string]uiAsset)
	entries, err := fs.ReadDir(webFS, "web/static")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		b, err := fs.ReadFile(webFS, "web/static/"+e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(e.Name()))
		switch path.Ext(e.Name()) {
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		assets[e.Name()] = uiAsset{body: b, contentType: ct, version: hex.EncodeToString(sum[:6])}
	}
	return assets
}

func (h *Handler) routeUI() {
	h.handle("GET", "/{$}", h.uiRuns)
	h.handle("GET", "/runs", func(w http.ResponseWriter, r *http.Request) {
		target := h.cfg.prefix + "/"
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusFound)
	})
	h.handle("GET", "/runs/{id}", h.uiRun)
	h.handle("GET", "/operations", h.uiOperations)
	h.handle("GET", "/operations/{name}", h.uiOperation)
	h.handle("GET", "/static/{file}", h.uiStatic)
	h.handle("GET", "/", func(w http.ResponseWriter, r *http.Request) {
		h.uiError(w, r, http.StatusNotFound, "Page not found", fmt.Sprintf("There is no page at %s.", r.URL.Path))
	})
}

// uiLayout is what every page's layout needs.
type uiLayout struct {
	Prefix   string
	Title    string
	Page     string // the page's name, data-page on <body>
	Section  string // the highlighted navigation entry: runs or operations
	ReadOnly bool
	CSS, JS  string
}

func (h *Handler) layout(page, section, title string) uiLayout {
	return uiLayout{
		Prefix:   h.cfg.prefix,
		Title:    title,
		Page:     page,
		Section:  section,
		ReadOnly: h.ReadOnly(),
		CSS:      h.assetURL("app.css"),
		JS:       h.assetURL("app.js"),
	}
}

func (h *Handler) assetURL(name string) string {
	return h.cfg.prefix + "/static/" + name + "?v=" + uiAssets[name].version
}

// render executes the page template name and writes it with status.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := uiTemplates[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		h.cfg.log.ErrorContext(r.Context(), "httpapi: rendering a page", "page", name, "path", r.URL.Path, "error", err)
		http.Error(w, "internal error: the page could not be rendered", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("Referrer-Policy", "same-origin")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

type uiErrorPage struct {
	uiLayout
	Status  int
	Heading string
	Message string
}

func (h *Handler) uiError(w http.ResponseWriter, r *http.Request, status int, heading, msg string) {
	h.render(w, r, status, "error", uiErrorPage{
		uiLayout: h.layout("error", "", heading),
		Status:   status, Heading: heading, Message: msg,
	})
}

// uiStoreError shows a store failure: an unknown run is 404, a malformed
// query 400, anything else 503.
func (h *Handler) uiStoreError(w http.ResponseWriter, r *http.Request, err error) {
	e := h.storeError(r, err)
	switch e.Code {
	case "not_found":
		h.uiError(w, r, http.StatusNotFound, "Not found", e.Message)
	case "bad_request":
		h.uiError(w, r, http.StatusBadRequest, "Bad request", e.Message)
	default:
		h.uiError(w, r, http.StatusServiceUnavailable, "Store unavailable", e.Message)
	}
}

func (h *Handler) uiStatic(w http.ResponseWriter, r *http.Request) {
	a, ok := uiAssets[r.PathValue("file")]
	if !ok {
		h.uiError(w, r, http.StatusNotFound, "Not found", fmt.Sprintf("There is no asset %s.", r.PathValue("file")))
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("ETag", `"`+a.version+`"`)
	if r.URL.Query().Get("v") == a.version {
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hd.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// uiRunRow is one row of a runs table; Run is nil for the empty row the
// script clones for runs that appear while the page is open.
type uiRunRow struct {
	Prefix string
	Run    *taskrun.TaskRun
}

// uiParam is a filter of the list that the form has no field for, kept as
// a hidden input.
type uiParam struct{ Name, Value string }

type uiRunsPage struct {
	uiLayout
	Operation, Status, UserID, Channel, Since, Until string
	// Extra holds the other filters (trace_id, flow_run_id, ...).
	Extra      []uiParam
	Filtered   bool
	Runs       []taskrun.TaskRun
	Operations []string
	// OlderURL links the next page, NewestURL the first page when this is
	// not it.
	OlderURL, NewestURL string
	// LiveQuery is the API query the script polls for new runs, empty
	// when this page is not the newest.
	LiveQuery string
	Error     string
}

// uiFilterParams are the list filters the form shows as fields.
var uiFilterParams = []string{"operation", "status", "user_id", "channel", "since", "until"}

func (h *Handler) uiRuns(w http.ResponseWriter, r *http.Request) {
	// The form submits empty fields; an empty filter is no filter, and a
	// parameter the API does not know is not a filter of the list.
	v := url.Values{}
	for k, vals := range r.URL.Query() {
		if slices.Contains(queryParams, k) && len(vals) > 0 && vals[0] != "" {
			v.Set(k, vals[0])
		}
	}
	p := uiRunsPage{
		uiLayout:  h.layout("runs", "runs", "Runs"),
		Operation: v.Get("operation"), Status: strings.ToUpper(v.Get("status")),
		UserID: v.Get("user_id"), Channel: v.Get("channel"),
		Since: v.Get("since"), Until: v.Get("until"),
	}
	for _, k := range slices.Sorted(maps.Keys(v)) {
		if k != "before" && k != "limit" {
			p.Filtered = true
			if !slices.Contains(uiFilterParams, k) {
				p.Extra = append(p.Extra, uiParam{k, v.Get(k)})
			}
		}
	}
	for _, m := range h.reg.List() {
		p.Operations = append(p.Operations, m.Name)
	}
	defaultLimit := v.Get("limit") == ""
	if defaultLimit {
		v.Set("limit", strconv.Itoa(uiPageSize))
	}
	q, err := ParseQuery(v)
	if err != nil {
		p.Error = strings.TrimPrefix(err.Error(), taskrun.ErrInvalidQuery.Error()+": ")
		h.render(w, r, http.StatusBadRequest, "runs", p)
		return
	}
	limit := q.Limit
	q.Limit = min(limit+1, taskrun.MaxLimit)
	ctx, cancel := h.storeCtx(r)
	defer cancel()
	runs, err := h.store.Find(ctx, q)
	if err != nil {
		e := h.storeError(r, err)
		p.Error = e.Message
		status := http.StatusServiceUnavailable
		if e.Code == "bad_request" {
			status = http.StatusBadRequest
		}
		h.render(w, r, status, "runs", p)
		return
	}
	if len(runs) > limit {
		runs = runs[:limit]
		older := cloneValues(v)
		older.Set("before", runs[limit-1].ID)
		if defaultLimit {
			older.Del("limit")
		}
		p.OlderURL = h.cfg.prefix + "/?" + older.Encode()
	}
	p.Runs = runs
	live := cloneValues(v)
	if v.Get("before") != "" {
		live.Del("before")
		newest := cloneValues(live)
		if defaultLimit {
			newest.Del("limit")
		}
		p.NewestURL = h.cfg.prefix + "/?" + newest.Encode()
	} else {
		p.LiveQuery = live.Encode()
	}
	h.render(w, r, http.StatusOK, "runs", p)
}

func cloneValues(v url.Values) url.Values {
	c := make(url.Values, len(v))
	for k, vals := range v {
		c[k] = slices.Clone(vals)
	}
	return c
}

// uiKV is one metadata entry of a run.
type uiKV struct{ Key, Value string }

type uiRunPage struct {
	uiLayout
	Run taskrun.TaskRun
	// TraceURL is the configured trace link template with the run's trace
	// id, empty when the run has none.
	TraceURL string
	Input    string
	// InputLines counts the lines of the pretty input; long inputs start
	// collapsed.
	InputLines int
	InputLong  bool
	// QueueMS is the time from creation to start.
	QueueMS    float64
	Metadata   []uiKV
	ReplayOf   string
	Registered bool
}

func (h *Handler) uiRun(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.storeCtx(r)
	defer cancel()
	run, err := h.store.Get(ctx, r.PathValue("id"))
	if err != nil {
		h.uiStoreError(w, r, err)
		return
	}
	p := uiRunPage{
		uiLayout: h.layout("run", "runs", run.OperationName+" · "+shortID(run.ID)),
		Run:      run,
		Input:    prettyJSON(run.InputDump),
	}
	if run.TraceID != "" {
		p.TraceURL = strings.ReplaceAll(h.cfg.traceURL, "{trace_id}", url.PathEscape(run.TraceID))
	}
	p.InputLines = strings.Count(p.Input, "\n") + 1
	p.InputLong = p.InputLines > uiLongInput
	if !run.StartedAt.IsZero() && !run.CreatedAt.IsZero() && run.StartedAt.After(run.CreatedAt) {
		p.QueueMS = float64(run.StartedAt.Sub(run.CreatedAt)) / float64(time.Millisecond)
	}
	for _, k := range slices.Sorted(maps.Keys(run.Metadata)) {
		val := run.Metadata[k]
		if s, ok := val.(string); ok {
			if k == "replay_of" {
				p.ReplayOf = s
			}
			p.Metadata = append(p.Metadata, uiKV{k, s})
			continue
		}
		p.Metadata = append(p.Metadata, uiKV{k, compactJSON(val)})
	}
	_, p.Registered = h.reg.Get(run.OperationName)
	h.render(w, r, http.StatusOK, "run", p)
}

// uiOp is an operation of the catalog with its search text.
type uiOp struct {
	registry.Metadata
	// Search is what the search box matches: name, description, category
	// and tags, lower-cased.
	Search string
	Hidden bool
}

type uiOperationsPage struct {
	uiLayout
	Ops                         []uiOp
	Shown                       int
	Q, Category, Tag, Stage     string
	Categories, AllTags, Stages []string
}

func (h *Handler) uiOperations(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	p := uiOperationsPage{
		uiLayout: h.layout("operations", "operations", "Operations"),
		Q:        v.Get("q"), Category: v.Get("category"), Tag: v.Get("tag"), Stage: v.Get("stage"),
	}
	text := strings.ToLower(p.Q)
	cats, tags, stages := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, m := range h.reg.List() {
		cats[m.Category] = true
		for _, t := range m.Tags {
			tags[t] = true
		}
		if m.Stage != "" {
			stages[m.Stage] = true
		}
		hide := (p.Category != "" && m.Category != p.Category) ||
			(p.Tag != "" && !slices.Contains(m.Tags, p.Tag)) ||
			(p.Stage != "" && m.Stage != p.Stage) ||
			(text != "" && !matchesText(m, text))
		search := strings.ToLower(strings.Join(append([]string{m.Name, m.Description, m.Category}, m.Tags...), "\n"))
		p.Ops = append(p.Ops, uiOp{Metadata: m, Search: search, Hidden: hide})
		if !hide {
			p.Shown++
		}
	}
	p.Categories = slices.Sorted(maps.Keys(cats))
	p.AllTags = slices.Sorted(maps.Keys(tags))
	p.Stages = slices.Sorted(maps.Keys(stages))
	h.render(w, r, http.StatusOK, "operations", p)
}

type uiOperationPage struct {
	uiLayout
	Op registry.Metadata
	// Registered is false for an operation known only from its runs.
	Registered                bool
	InputSchema, OutputSchema string
	// Skeleton prefills the invoke form: the required input properties.
	Skeleton  string
	Recent    []taskrun.TaskRun
	RunsURL   string
	LiveQuery string
}

func (h *Handler) uiOperation(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	m, registered := h.reg.Get(name)
	ctx, cancel := h.storeCtx(r)
	defer cancel()
	recent, err := h.store.Find(ctx, taskrun.Query{Operation: name, Limit: uiRecentRuns})
	if err != nil && registered {
		h.cfg.log.WarnContext(r.Context(), "httpapi: recent runs of an operation", "operation", name, "error", err)
		recent = nil
	} else if err != nil {
		h.uiStoreError(w, r, err)
		return
	}
	if !registered {
		if len(recent) == 0 {
			h.uiError(w, r, http.StatusNotFound, "Operation not found",
				fmt.Sprintf("No operation named %q is registered here, and the store holds no run of it.", name))
			return
		}
		m = registry.Metadata{Spec: registry.Spec{Name: name, Category: recent[0].Category, Stage: recent[0].Stage, Tags: recent[0].Tags}}
	}
	live := url.Values{"operation": {name}, "limit": {strconv.Itoa(uiRecentRuns)}}
	p := uiOperationPage{
		uiLayout:     h.layout("operation", "operations", name),
		Op:           m,
		Registered:   registered,
		InputSchema:  prettyJSON(m.InputSchema),
		OutputSchema: prettyJSON(m.OutputSchema),
		Skeleton:     inputSkeleton(m.InputSchema),
		Recent:       recent,
		RunsURL:      h.cfg.prefix + "/?" + url.Values{"operation": {name}}.Encode(),
		LiveQuery:    live.Encode(),
	}
	h.render(w, r, http.StatusOK, "operation", p)
}

// inputSkeleton returns an input with the schema's required properties set
// to empty values of their types, "{}" when it has none.
func inputSkeleton(schema json.RawMessage) string {
	var s struct {
		Properties map[string]struct {
			Type    any   `json:"type"`
			Enum    []any `json:"enum"`
			Default any   `json:"default"`
		} `json:"properties"`
		Required []string `json:"required"`
	}
	if len(schema) == 0 || json.Unmarshal(schema, &s) != nil || len(s.Required) == 0 {
		return "{}"
	}
	var b strings.Builder
	b.WriteString("{\n")
	for i, k := range s.Required {
		prop := s.Properties[k]
		var val any = map[string]any{}
		switch {
		case prop.Default != nil:
			val = prop.Default
		case len(prop.Enum) > 0:
			val = prop.Enum[0]
		default:
			typ, _ := prop.Type.(string)
			if types, ok := prop.Type.([]any); ok && len(types) > 0 {
				typ, _ = types[0].(string)
			}
			switch typ {
			case "string":
				val = ""
			case "integer", "number":
				val = 0
			case "boolean":
				val = false
			case "array":
				val = []any{}
			case "null":
				val = nil
			}
		}
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(val)
		fmt.Fprintf(&b, "  %s: %s", kb, vb)
		if i < len(s.Required)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("}")
	return b.String()
}

// prettyJSON indents a JSON document, returning it unchanged when it is not
// valid JSON and "" when it is empty.
func prettyJSON(raw json.RawMessage) string {
	if len(bytes.TrimSpace(raw)) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return unescapeHTMLChars(buf.String())
}

// unescapeHTMLChars turns the \u003c, \u003e and \u0026 escapes that
// encoding/json writes for <, > and & back into the characters, so that
// JSON shown on a page reads as it was sent (the page escapes it for HTML).
func unescapeHTMLChars(s string) string {
	if !strings.Contains(s, `\u00`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		if s[i+1] == 'u' && i+6 <= len(s) {
			switch s[i+2 : i+6] {
			case "003c":
				b.WriteByte('<')
				i += 5
				continue
			case "003e":
				b.WriteByte('>')
				i += 5
				continue
			case "0026":
				b.WriteByte('&')
				i += 5
				continue
			}
		}
		b.WriteString(s[i : i+2]) // an escape pair, such as \\ or \"
		i++
	}
	return b.String()
}

// compactJSON renders v as one-line JSON.
func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return unescapeHTMLChars(string(b))
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// formatMS renders a duration in milliseconds the way the script does.
func formatMS(ms float64) string {
	switch {
	case ms < 0:
		return "—"
	case ms < 0.01:
		return "<0.01 ms"
	case ms < 1:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f ms", ms)
	case ms < 1000:
		return fmt.Sprintf("%.0f ms", ms)
	case ms < 60_000:
		return fmt.Sprintf("%.2f s", ms/1000)
	case ms < 3_600_000:
		s := int64(ms / 1000)
		return fmt.Sprintf("%dm %02ds", s/60, s%60)
	default:
		m := int64(ms / 60_000)
		return fmt.Sprintf("%dh %02dm", m/60, m%60)
	}
}

// shortID abbreviates a run id to its last eight characters, the random
// part of a UUIDv7 (its first characters are the time, shared by runs of
// the same minute).
func shortID(id string) string {
	if len(id) <= 12 {
		return id
	}
	return "…" + id[len(id)-8:]
}

func statusClass(s taskrun.Status) string {
	if s.Valid() {
		return "status-" + strings.ToLower(string(s))
	}
	return "status-unknown"
}

// runFlag reports whether the metadata of run (a taskrun.TaskRun or a
// pointer to one) has key set: true for booleans, non-empty for strings.
func runFlag(run any, key string) bool {
	var md map[string]any
	switch r := run.(type) {
	case taskrun.TaskRun:
		md = r.Metadata
	case *taskrun.TaskRun:
		if r != nil {
			md = r.Metadata
		}
	}
	switch v := md[key].(type) {
	case bool:
		return v
	case string:
		return v != ""
	}
	return false
}

// runRow pairs a run (a taskrun.TaskRun, or nil for the empty row) with
// the prefix for the runs-table partial.
func runRow(prefix string, run any) uiRunRow {
	row := uiRunRow{Prefix: prefix}
	if r, ok := run.(taskrun.TaskRun); ok {
		row.Run = &r
	}
	return row
}
