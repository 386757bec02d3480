package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/otelop/otelop/registry"
	"github.com/otelop/otelop/taskrun"
)

// DefaultTraceURL is the trace link template used when neither
// [WithTraceURL] nor OTELOP_TRACE_URL gives one: a local Jaeger.
const DefaultTraceURL = "http://localhost:16686/trace/{trace_id}"

// TraceURLEnv names the environment variable holding the trace link
// template, in which {trace_id} is replaced.
const TraceURLEnv = "OTELOP_TRACE_URL"

// Handler serves the JSON API and the web UI. Build it with [New]; it is
// safe for concurrent use.
type Handler struct {
	reg   *registry.Registry
	store taskrun.Reader
	cfg   config
	mux   *http.ServeMux
}

type config struct {
	tokens        *Tokens
	tokensErr     error
	prefix        string
	traceURL      string
	maxBody       int64
	storeTimeout  time.Duration
	invokeTimeout time.Duration
	log           *slog.Logger
}

// Option configures a Handler.
type Option func(*config)

// WithTokens enables invoke and replay for the holders of t's tokens.
// Without tokens the handler is read-only.
func WithTokens(t *Tokens) Option {
	return func(c *config) { c.tokens = t }
}

// WithTokensFromEnv loads the token file named by OTELOP_API_TOKENS when it
// is set; [New] fails when the file cannot be read or parsed.
func WithTokensFromEnv() Option {
	return func(c *config) {
		if path := os.Getenv(TokensEnv); path != "" {
			c.tokens, c.tokensErr = LoadTokens(path)
		}
	}
}

// WithPrefix serves everything under prefix (such as "/otelop") instead of
// at the root, for mounting beside other handlers without StripPrefix.
func WithPrefix(prefix string) Option {
	return func(c *config) { c.prefix = strings.TrimSuffix(prefix, "/") }
}

// WithTraceURL sets the template of the UI's trace links; {trace_id} is
// replaced. Default: OTELOP_TRACE_URL, else [DefaultTraceURL].
func WithTraceURL(template string) Option {
	return func(c *config) { c.traceURL = template }
}

// WithMaxBodyBytes limits request bodies (default 1 MiB); larger ones get
// 413 too_large.
func WithMaxBodyBytes(n int64) Option {
	return func(c *config) { c.maxBody = n }
}

// WithStoreTimeout bounds each store query (default 10 s).
func WithStoreTimeout(d time.Duration) Option {
	return func(c *config) { c.storeTimeout = d }
}

// WithInvokeTimeout bounds each invoked operation. By default an invoked
// operation runs to completion even when the client goes away: an
// operation that changes records should not be cut off by a closed
// browser tab.
func WithInvokeTimeout(d time.Duration) Option {
	return func(c *config) { c.invokeTimeout = d }
}

// WithLogger sets the logger for server-side failures (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.log = l }
}

// New returns a handler serving reg's operations and the TaskRuns in store.
// reg may be empty (the audit log alone); store is required.
func New(reg *registry.Registry, store taskrun.Reader, opts ...Option) (*Handler, error) {
	if store == nil {
		return nil, errors.New("httpapi: a TaskRun store is required")
	}
	if reg == nil {
		reg = registry.New()
	}
	cfg := config{
		traceURL:     os.Getenv(TraceURLEnv),
		maxBody:      1 << 20,
		storeTimeout: 10 * time.Second,
		log:          slog.Default(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.tokensErr != nil {
		return nil, cfg.tokensErr
	}
	if cfg.traceURL == "" {
		cfg.traceURL = DefaultTraceURL
	}
	if cfg.prefix != "" && !strings.HasPrefix(cfg.prefix, "/") {
		return nil, fmt.Errorf("httpapi: prefix %q must start with /", cfg.prefix)
	}
	h := &Handler{reg: reg, store: store, cfg: cfg, mux: http.NewServeMux()}
	h.routeAPI()
	h.routeUI()
	return h, nil
}

// ReadOnly reports whether the handler refuses invoke and replay because it
// has no tokens.
func (h *Handler) ReadOnly() bool { return h.cfg.tokens.Len() == 0 }

// ServeHTTP serves the API and the UI.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	h.mux.ServeHTTP(w, r)
}

// handle registers fn for method and path under the prefix.
func (h *Handler) handle(method, path string, fn http.HandlerFunc) {
	h.mux.HandleFunc(method+" "+h.cfg.prefix+path, fn)
}
