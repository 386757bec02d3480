package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// TokensEnv names the environment variable that holds the path of the token
// file read by [WithTokensFromEnv] and `otelop serve`.
const TokensEnv = "OTELOP_API_TOKENS"

// Identity is who a bearer token belongs to and what it may do.
type Identity struct {
	UserID string `json:"user_id"`
	// Permissions granted to the token. "*" grants every permission.
	Permissions []string `json:"permissions"`
}

// Missing returns the permissions of required that id lacks, nil when it
// has them all.
func (id Identity) Missing(required []string) []string {
	if slices.Contains(id.Permissions, "*") {
		return nil
	}
	var missing []string
	for _, p := range required {
		if !slices.Contains(id.Permissions, p) {
			missing = append(missing, p)
		}
	}
	return missing
}

// Tokens maps bearer tokens to identities. Tokens are kept as SHA-256
// hashes, so a token file may hold either the token itself or
// "sha256:<hex of its hash>". The zero value holds no token.
type Tokens struct {
	byHash map[[sha256.Size]byte]Identity
}

// NewTokens builds Tokens from a map of token (or "sha256:<hex>") to
// identity. Every identity needs a user id.
func NewTokens(m map[string]Identity) (*Tokens, error) {
	t := &Tokens{byHash: make(map[[sha256.Size]byte]Identity, len(m))}
	var errs []error
	for tok, id := range m {
		label := tokenLabel(tok)
		if id.UserID == "" {
			errs = append(errs, fmt.Errorf("token %s has no user_id", label))
			continue
		}
		var h [sha256.Size]byte
		if hx, ok := strings.CutPrefix(tok, "sha256:"); ok {
			b, err := hex.DecodeString(hx)
			if err != nil || len(b) != sha256.Size {
				errs = append(errs, fmt.Errorf("token %s: sha256: needs 64 hex digits", label))
				continue
			}
			copy(h[:], b)
		} else {
			if len(tok) < 16 {
				errs = append(errs, fmt.Errorf("token %s of user %q is shorter than 16 characters", label, id.UserID))
				continue
			}
			h = sha256.Sum256([]byte(tok))
		}
		id.Permissions = slices.Clone(id.Permissions)
		t.byHash[h] = id
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("httpapi: tokens: %w", errors.Join(errs...))
	}
	return t, nil
}

// tokenLabel names a token in an error without revealing it.
func tokenLabel(tok string) string {
	if strings.HasPrefix(tok, "sha256:") {
		return fmt.Sprintf("%.15s...", tok)
	}
	return fmt.Sprintf("#%x", sha256.Sum256([]byte(tok)))[:9]
}

// ParseTokens reads a token file's content: a JSON object mapping each
// token to its identity,
//
//	{
//	  "3f9c0d...long random token": {"user_id": "alice", "permissions": ["jobs:write"]},
//	  "sha256:9b71d224bd62f378...": {"user_id": "ci-bot", "permissions": ["*"]}
//	}
func ParseTokens(data []byte) (*Tokens, error) {
	var m map[string]Identity
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("httpapi: tokens: want a JSON object of token -> {\"user_id\", \"permissions\"}: %w", err)
	}
	return NewTokens(m)
}

// LoadTokens reads a token file; see [ParseTokens] for its format.
func LoadTokens(path string) (*Tokens, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("httpapi: tokens: %w", err)
	}
	t, err := ParseTokens(data)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return t, nil
}

// Len returns the number of tokens.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.byHash)
}

// Lookup returns the identity of token.
func (t *Tokens) Lookup(token string) (Identity, bool) {
	if t == nil || token == "" {
		return Identity{}, false
	}
	id, ok := t.byHash[sha256.Sum256([]byte(token))]
	return id, ok
}

type identityKey struct{}

// IdentityFrom returns the identity the request's bearer token belongs to,
// within a request served by the Handler.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}
