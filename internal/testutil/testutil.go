// Package testutil holds small helpers shared by the project's tests that
// start servers: a buffer safe for concurrent use, a free loopback address,
// and a wait for a server to answer.
package testutil

import (
	"bytes"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// SyncBuffer is a bytes.Buffer that a server's goroutines may write while
// the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FreeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// WaitGet sends GET url with client (http.DefaultClient when nil) until the
// server answers, with any status, and returns the response for the caller
// to close. It fails t after timeout, with logs (a server's output) in the
// message.
func WaitGet(t testing.TB, client *http.Client, url string, timeout time.Duration, logs *SyncBuffer) *http.Response {
	t.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			return resp
		}
		if time.Now().After(deadline) {
			out := ""
			if logs != nil {
				out = logs.String()
			}
			t.Fatalf("no answer from %s within %s: %v\n%s", url, timeout, err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
