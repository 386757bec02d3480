package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// ListenAndServe serves handler on addr (host:port) until ctx ends, then
// shuts the server down, giving requests in flight up to 10 seconds.
//
// h decides the access rule: a read-only Handler (no tokens) may only
// listen on a loopback address, because the audit log holds the inputs of
// every call and nothing else guards it; a Handler with tokens may listen
// anywhere. handler is what is served: h itself or h wrapped in
// middleware (otelhttp, an authenticating proxy). The address served and
// the mode are logged when listening starts.
func ListenAndServe(ctx context.Context, addr string, h *Handler, handler http.Handler) error {
	if handler == nil {
		handler = h
	}
	if h.ReadOnly() && !isLoopback(addr) {
		return fmt.Errorf("httpapi: refusing to serve %s without API tokens: listen on a loopback address such as 127.0.0.1:8080, or set %s to a token file", addr, TokensEnv)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("httpapi: %w", err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	url := "http://" + ln.Addr().String() + h.cfg.prefix + "/"
	if h.ReadOnly() {
		h.cfg.log.Info("otelop: serving read-only on loopback (no API tokens; set "+TokensEnv+" to a token file to enable invoke and replay)", "url", url)
	} else {
		h.cfg.log.Info("otelop: serving", "url", url, "tokens", h.cfg.tokens.Len())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("httpapi: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// isLoopback reports whether addr's host is a loopback address or
// "localhost". An empty host means every interface: not loopback.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
