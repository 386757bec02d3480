package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/registry"
	"github.com/otelop/otelop/taskrun"
)

// Error is the body of every error response.
type Error struct {
	// Code is stable: bad_request, unauthorized, forbidden, read_only,
	// not_found, not_replayable, too_large, invalid_input, operation_failed,
	// operation_panicked, store_unavailable, internal.
	Code    string `json:"code"`
	Message string `json:"message"`
	// TaskRunID names the TaskRun of a failed invoke or replay, when the
	// operation got as far as starting one.
	TaskRunID string `json:"task_run_id,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// InvokeResult is the body of a successful invoke or replay.
type InvokeResult struct {
	TaskRunID string `json:"task_run_id,omitempty"`
	ReplayOf  string `json:"replay_of,omitempty"`
	Output    any    `json:"output"`
}

// TaskRunPage is the body of GET /api/taskruns.
type TaskRunPage struct {
	TaskRuns []taskrun.TaskRun `json:"taskruns"`
	// NextBefore is the cursor of the next (older) page, passed as the
	// before parameter; empty on the last page.
	NextBefore string `json:"next_before,omitempty"`
}

// OperationList is the body of GET /api/operations.
type OperationList struct {
	Operations []Operation `json:"operations"`
}

// Operation is an operation of the catalog, without its schemas.
type Operation struct {
	registry.Spec
	DefinedAt string `json:"defined_at,omitempty"`
}

// AuthInfo is the body of GET /api/auth.
type AuthInfo struct {
	ReadOnly      bool     `json:"read_only"`
	Authenticated bool     `json:"authenticated"`
	UserID        string   `json:"user_id,omitempty"`
	Permissions   []string `json:"permissions,omitempty"`
}

func (h *Handler) routeAPI() {
	h.handle("GET", "/api/operations", h.listOperations)
	h.handle("GET", "/api/operations/{name}", h.getOperation)
	h.handle("GET", "/api/operations/{name}/stats", h.operationStats)
	h.handle("POST", "/api/operations/{name}/invoke", h.invokeOperation)
	h.handle("GET", "/api/taskruns", h.listTaskRuns)
	h.handle("GET", "/api/taskruns/{id}", h.getTaskRun)
	h.handle("POST", "/api/taskruns/{id}/replay", h.replayTaskRun)
	h.handle("GET", "/api/openapi.json", h.openAPI)
	h.handle("GET", "/api/auth", h.auth)
	// Anything else under /api/ gets a JSON 404 rather than the UI's page.
	for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		h.handle(method, "/api/", func(w http.ResponseWriter, r *http.Request) {
			writeError(w, &Error{Code: "not_found", Message: fmt.Sprintf("no API endpoint %s %s (the endpoints are listed in %s/api/openapi.json)", r.Method, r.URL.Path, h.cfg.prefix)})
		})
	}
}

var statusOf = map[string]int{
	"bad_request":        http.StatusBadRequest,
	"unauthorized":       http.StatusUnauthorized,
	"forbidden":          http.StatusForbidden,
	"read_only":          http.StatusForbidden,
	"not_found":          http.StatusNotFound,
	"not_replayable":     http.StatusConflict,
	"too_large":          http.StatusRequestEntityTooLarge,
	"invalid_input":      http.StatusUnprocessableEntity,
	"operation_failed":   http.StatusInternalServerError,
	"operation_panicked": http.StatusInternalServerError,
	"store_unavailable":  http.StatusServiceUnavailable,
	"internal":           http.StatusInternalServerError,
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(&Error{Code: "internal", Message: "the response could not be encoded as JSON: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, e *Error) {
	status, ok := statusOf[e.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="otelop"`)
	}
	writeJSON(w, status, e)
}

func badRequest(format string, args ...any) *Error {
	return &Error{Code: "bad_request", Message: fmt.Sprintf(format, args...)}
}

// storeError turns a store failure into an API error.
func (h *Handler) storeError(r *http.Request, err error) *Error {
	switch {
	case errors.Is(err, taskrun.ErrNotFound):
		return &Error{Code: "not_found", Message: err.Error()}
	case errors.Is(err, taskrun.ErrInvalidQuery):
		return &Error{Code: "bad_request", Message: err.Error()}
	}
	h.cfg.log.ErrorContext(r.Context(), "httpapi: store query failed", "path", r.URL.Path, "error", err)
	return &Error{Code: "store_unavailable", Message: "the TaskRun store did not answer: " + err.Error()}
}

func (h *Handler) storeCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), h.cfg.storeTimeout)
}

// checkParams rejects parameters outside allowed, so that a misspelt
// filter is an error rather than silently ignored.
func checkParams(r *http.Request, allowed ...string) *Error {
	for k := range r.URL.Query() {
		if !slices.Contains(allowed, k) {
			return badRequest("unknown parameter %q (known: %s)", k, strings.Join(allowed, ", "))
		}
	}
	return nil
}

func (h *Handler) listOperations(w http.ResponseWriter, r *http.Request) {
	if e := checkParams(r, "category", "tag", "stage", "q"); e != nil {
		writeError(w, e)
		return
	}
	q := r.URL.Query()
	category, tag, stage := q.Get("category"), q.Get("tag"), q.Get("stage")
	text := strings.ToLower(q.Get("q"))
	out := OperationList{Operations: []Operation{}}
	for _, m := range h.reg.List() {
		if (category != "" && m.Category != category) ||
			(tag != "" && !slices.Contains(m.Tags, tag)) ||
			(stage != "" && m.Stage != stage) ||
			(text != "" && !matchesText(m, text)) {
			continue
		}
		out.Operations = append(out.Operations, Operation{Spec: m.Spec, DefinedAt: m.DefinedAt})
	}
	writeJSON(w, http.StatusOK, out)
}

func matchesText(m registry.Metadata, text string) bool {
	if strings.Contains(strings.ToLower(m.Name), text) ||
		strings.Contains(strings.ToLower(m.Description), text) ||
		strings.Contains(strings.ToLower(m.Category), text) {
		return true
	}
	for _, t := range m.Tags {
		if strings.Contains(strings.ToLower(t), text) {
			return true
		}
	}
	return false
}

func (h *Handler) operation(w http.ResponseWriter, name string) (registry.Metadata, bool) {
	m, ok := h.reg.Get(name)
	if !ok {
		writeError(w, &Error{Code: "not_found", Message: fmt.Sprintf("no operation named %q", name)})
	}
	return m, ok
}

func (h *Handler) getOperation(w http.ResponseWriter, r *http.Request) {
	if m, ok := h.operation(w, r.PathValue("name")); ok {
		writeJSON(w, http.StatusOK, m)
	}
}

func (h *Handler) listTaskRuns(w http.ResponseWriter, r *http.Request) {
	q, err := ParseQuery(r.URL.Query())
	if err != nil {
		writeError(w, badRequest("%v", err))
		return
	}
	limit := q.Limit
	if limit < taskrun.MaxLimit {
		q.Limit = limit + 1 // one more tells whether a next page exists
	}
	ctx, cancel := h.storeCtx(r)
	defer cancel()
	runs, err := h.store.Find(ctx, q)
	if err != nil {
		writeError(w, h.storeError(r, err))
		return
	}
	page := TaskRunPage{TaskRuns: runs}
	if len(runs) > limit {
		page.TaskRuns = runs[:limit]
		page.NextBefore = runs[limit-1].ID
	}
	if page.TaskRuns == nil {
		page.TaskRuns = []taskrun.TaskRun{}
	}
	writeJSON(w, http.StatusOK, page)
}

func (h *Handler) getTaskRun(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.storeCtx(r)
	defer cancel()
	run, err := h.store.Get(ctx, r.PathValue("id"))
	if err != nil {
		writeError(w, h.storeError(r, err))
		return
	}
	writeJSON(w, http.StatusOK, run)
}

func (h *Handler) auth(w http.ResponseWriter, r *http.Request) {
	info := AuthInfo{ReadOnly: h.ReadOnly()}
	if id, ok := h.cfg.tokens.Lookup(bearer(r)); ok {
		info.Authenticated, info.UserID, info.Permissions = true, id.UserID, id.Permissions
	}
	writeJSON(w, http.StatusOK, info)
}

func bearer(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// authorize checks that the request may run m: the handler has tokens, the
// bearer token is known and holds every permission of the spec.
func (h *Handler) authorize(r *http.Request, m registry.Metadata) (Identity, *Error) {
	if h.ReadOnly() {
		return Identity{}, &Error{Code: "read_only", Message: "this server is read-only: no API tokens are configured (set " + TokensEnv + " to a token file)"}
	}
	tok := bearer(r)
	if tok == "" {
		return Identity{}, &Error{Code: "unauthorized", Message: "a bearer token is required (Authorization: Bearer TOKEN)"}
	}
	id, ok := h.cfg.tokens.Lookup(tok)
	if !ok {
		return Identity{}, &Error{Code: "unauthorized", Message: "unknown bearer token"}
	}
	if missing := id.Missing(m.Permissions); len(missing) > 0 {
		return id, &Error{Code: "forbidden", Message: fmt.Sprintf("user %q lacks the permission(s) %s needed by operation %q", id.UserID, strings.Join(missing, ", "), m.Name)}
	}
	return id, nil
}

func (h *Handler) invokeOperation(w http.ResponseWriter, r *http.Request) {
	m, ok := h.operation(w, r.PathValue("name"))
	if !ok {
		return
	}
	id, e := h.authorize(r, m)
	if e != nil {
		writeError(w, e)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, &Error{Code: "too_large", Message: fmt.Sprintf("the request body is larger than %d bytes", tooBig.Limit)})
			return
		}
		writeError(w, badRequest("reading the request body: %v", err))
		return
	}
	h.run(w, r, m, id, body, nil)
}

func (h *Handler) replayTaskRun(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.storeCtx(r)
	run, err := h.store.Get(ctx, r.PathValue("id"))
	cancel()
	if err != nil {
		writeError(w, h.storeError(r, err))
		return
	}
	m, ok := h.reg.Get(run.OperationName)
	if !ok {
		writeError(w, &Error{Code: "not_found", Message: fmt.Sprintf("TaskRun %s is of operation %q, which this server does not register", run.ID, run.OperationName)})
		return
	}
	id, e := h.authorize(r, m)
	if e != nil {
		writeError(w, e)
		return
	}
	for _, cut := range []string{"input_redacted", "input_truncated"} {
		if run.Metadata[cut] == true {
			writeError(w, &Error{Code: "not_replayable", Message: fmt.Sprintf("TaskRun %s cannot be replayed: its input was recorded %s (metadata.%s), so the original input is not stored", run.ID, strings.TrimPrefix(cut, "input_"), cut)})
			return
		}
	}
	h.run(w, r, m, id, run.InputDump, map[string]string{"replay_of": run.ID})
}

// run invokes m with input on behalf of id and writes the result.
func (h *Handler) run(w http.ResponseWriter, r *http.Request, m registry.Metadata, id Identity, input json.RawMessage, meta map[string]string) {
	inv := &otelop.Invocation{UserID: id.UserID, Channel: otelop.DefaultChannel, Metadata: meta}
	ctx := context.WithValue(context.WithoutCancel(r.Context()), identityKey{}, id)
	if h.cfg.invokeTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.cfg.invokeTimeout)
		defer cancel()
	}
	ctx = otelop.ContextWithInvocation(ctx, inv)
	out, err, panicked := invoke(ctx, m, input)
	switch {
	case panicked != nil:
		h.cfg.log.ErrorContext(r.Context(), "httpapi: operation panicked", "operation", m.Name, "task_run_id", inv.TaskRunID, "panic", panicked)
		writeError(w, &Error{Code: "operation_panicked", Message: fmt.Sprintf("operation %q panicked: %v", m.Name, panicked), TaskRunID: inv.TaskRunID})
	case errors.Is(err, otelop.ErrInvalidInput):
		writeError(w, &Error{Code: "invalid_input", Message: err.Error(), TaskRunID: inv.TaskRunID})
	case err != nil:
		writeError(w, &Error{Code: "operation_failed", Message: err.Error(), TaskRunID: inv.TaskRunID})
	default:
		writeJSON(w, http.StatusOK, InvokeResult{TaskRunID: inv.TaskRunID, ReplayOf: meta["replay_of"], Output: out})
	}
}

// invoke calls m, turning a panic (already recorded in the TaskRun by the
// wrapper) into a value.
func invoke(ctx context.Context, m registry.Metadata, input json.RawMessage) (out any, err error, panicked any) {
	defer func() {
		if p := recover(); p != nil {
			panicked = p
		}
	}()
	out, err = m.Invoke(ctx, input)
	return out, err, nil
}
