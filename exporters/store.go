package exporters

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/memstore"
	"github.com/otelop/otelop/taskrun/mongostore"
	"github.com/otelop/otelop/taskrun/sqlitestore"
)

// DefaultStoreURI is the store used when neither an option nor OTELOP_STORE
// names one: an SQLite file in the working directory.
const DefaultStoreURI = "sqlite:otelop.db"

// StoreEnv is the environment variable that names the TaskRun store.
const StoreEnv = "OTELOP_STORE"

// StoreURIFromEnv returns OTELOP_STORE, or DefaultStoreURI when it is unset
// or empty.
func StoreURIFromEnv() string {
	if u := strings.TrimSpace(os.Getenv(StoreEnv)); u != "" {
		return u
	}
	return DefaultStoreURI
}

// ErrUnsupportedStore is matched by the error OpenStore returns for a URI it
// does not understand.
var ErrUnsupportedStore = errors.New("unsupported store URI")

// StoreOption configures OpenStore.
type StoreOption func(*storeConfig)

type storeConfig struct{ readOnly bool }

// ReadOnly opens the store for queries only: an SQLite file is opened
// read-only (and must exist), and no MongoDB index is created.
func ReadOnly() StoreOption { return func(c *storeConfig) { c.readOnly = true } }

// OpenStore opens the TaskRun store named by uri:
//
//	mongodb://host:27017/dbname   MongoDB (database from the path, default "otelop")
//	mongodb+srv://cluster/dbname  MongoDB Atlas and other SRV deployments
//	sqlite:PATH                   an SQLite file (created when missing)
//	PATH                          the same, for a plain file path
//	memory:                       an in-memory store, gone with the process
//
// The caller closes the store.
func OpenStore(ctx context.Context, uri string, opts ...StoreOption) (taskrun.Store, error) {
	var cfg storeConfig
	for _, o := range opts {
		o(&cfg)
	}
	uri = strings.TrimSpace(uri)
	switch {
	case uri == "":
		return nil, fmt.Errorf("exporters: %w: empty (want mongodb://..., sqlite:PATH or memory:)", ErrUnsupportedStore)
	case strings.HasPrefix(uri, "mongodb://"), strings.HasPrefix(uri, "mongodb+srv://"):
		var mo []mongostore.Option
		if cfg.readOnly {
			mo = append(mo, mongostore.WithReadOnly())
		}
		return mongostore.Open(ctx, uri, mo...)
	case uri == "memory:" || uri == "memory":
		return memstore.New(), nil
	case strings.HasPrefix(uri, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(uri, "sqlite:"), "//")
		if path == "" {
			return nil, fmt.Errorf("exporters: %w: %q names no file (want sqlite:PATH)", ErrUnsupportedStore, uri)
		}
		return openSQLite(ctx, path, cfg)
	case hasScheme(uri):
		return nil, fmt.Errorf("exporters: %w: %q (want mongodb://..., mongodb+srv://..., sqlite:PATH or memory:)", ErrUnsupportedStore, redact(uri))
	default:
		return openSQLite(ctx, uri, cfg)
	}
}

func openSQLite(ctx context.Context, path string, cfg storeConfig) (taskrun.Store, error) {
	var so []sqlitestore.Option
	if cfg.readOnly {
		so = append(so, sqlitestore.WithReadOnly())
	}
	return sqlitestore.Open(ctx, path, so...)
}

// hasScheme reports whether s starts with "scheme:" where the scheme is at
// least two letters (so that C:\path stays a path).
func hasScheme(s string) bool {
	i := strings.Index(s, ":")
	if i < 2 {
		return false
	}
	for _, c := range s[:i] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// redact hides a password in a URI for error messages.
func redact(uri string) string {
	at := strings.Index(uri, "@")
	sep := strings.Index(uri, "://")
	if at < 0 || sep < 0 || at < sep {
		return uri
	}
	creds := uri[sep+3 : at]
	if user, _, ok := strings.Cut(creds, ":"); ok {
		return uri[:sep+3] + user + ":xxxxx" + uri[at:]
	}
	return uri
}
