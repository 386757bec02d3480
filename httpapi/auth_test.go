package httpapi_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otelop/otelop/httpapi"
	"github.com/otelop/otelop/taskrun/memstore"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestParseTokens(t *testing.T) {
	sum := sha256.Sum256([]byte("hashed-token-0123456789"))
	good := `{"plain-token-0123456789": {"user_id": "alice", "permissions": ["jobs:write"]},
	          "sha256:` + hex.EncodeToString(sum[:]) + `": {"user_id": "ci", "permissions": ["*"]}}`
	tok, err := httpapi.ParseTokens([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Len() != 2 {
		t.Errorf("Len = %d", tok.Len())
	}
	for _, tc := range []struct {
		token, user string
		ok          bool
	}{
		{"plain-token-0123456789", "alice", true},
		{"hashed-token-0123456789", "ci", true},
		{"sha256:" + hex.EncodeToString(sum[:]), "", false}, // the hash is not a token
		{"plain-token-012345678", "", false},
		{"", "", false},
	} {
		id, ok := tok.Lookup(tc.token)
		if ok != tc.ok || id.UserID != tc.user {
			t.Errorf("Lookup(%q) = %v %v", tc.token, id, ok)
		}
	}
	if id, _ := tok.Lookup("plain-token-0123456789"); id.Missing([]string{"jobs:write", "jobs:delete"})[0] != "jobs:delete" {
		t.Errorf("Missing = %v", id.Missing([]string{"jobs:write", "jobs:delete"}))
	}
	if id, _ := tok.Lookup("hashed-token-0123456789"); id.Missing([]string{"anything"}) != nil {
		t.Error("* does not grant everything")
	}

	for _, tc := range []struct{ name, file, want string }{
		{"not JSON", `token: alice`, "JSON object"},
		{"a list", `["a"]`, "JSON object"},
		{"no user", `{"plain-token-0123456789": {"permissions": []}}`, "no user_id"},
		{"short", `{"short": {"user_id": "a"}}`, "shorter than 16"},
		{"bad hash", `{"sha256:abc": {"user_id": "a"}}`, "64 hex digits"},
		{"unknown field", `{"plain-token-0123456789": {"user": "a"}}`, "unknown field"},
	} {
		_, err := httpapi.ParseTokens([]byte(tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "plain-token") {
			t.Errorf("%s: the error reveals the token: %v", tc.name, err)
		}
	}
}

func TestLoadTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(path, []byte(`{"file-token-0123456789": {"user_id": "ops"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tok, err := httpapi.LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := tok.Lookup("file-token-0123456789"); !ok || id.UserID != "ops" {
		t.Errorf("Lookup = %v %v", id, ok)
	}
	t.Setenv(httpapi.TokensEnv, path)
	api, err := httpapi.New(nil, memstore.New(), httpapi.WithTokensFromEnv())
	if err != nil || api.ReadOnly() {
		t.Errorf("New with %s set: %v, read-only %v", httpapi.TokensEnv, err, api != nil && api.ReadOnly())
	}
}
