package exporters_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otelop/otelop/exporters"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/memstore"
	"github.com/otelop/otelop/taskrun/mongostore"
	"github.com/otelop/otelop/taskrun/sqlitestore"
)

func TestOpenStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tests := []struct {
		uri  string
		want any
	}{
		{"memory:", &memstore.Store{}},
		{"sqlite:" + filepath.Join(dir, "a.db"), &sqlitestore.Store{}},
		{"sqlite://" + filepath.Join(dir, "b.db"), &sqlitestore.Store{}},
		{filepath.Join(dir, "c.db"), &sqlitestore.Store{}},
		{"  memory:  ", &memstore.Store{}},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			st, err := exporters.OpenStore(ctx, tt.uri)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close(ctx)
			if got, want := typeName(st), typeName(tt.want); got != want {
				t.Errorf("store %s, want %s", got, want)
			}
			if err := st.Write(ctx, []taskrun.TaskRun{{ID: "r1", OperationName: "op", Status: taskrun.StatusSuccess, StartedAt: time.Now()}}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Get(ctx, "r1"); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, p := range []string{"a.db", "b.db", "c.db"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *memstore.Store:
		return "memstore"
	case *sqlitestore.Store:
		return "sqlitestore"
	case *mongostore.Store:
		return "mongostore"
	}
	return "other"
}

func TestOpenStoreErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		uri     string
		want    string
		unsuppd bool
	}{
		{"", "empty", true},
		{"sqlite:", "names no file", true},
		{"postgres://user:hunter2@db/otelop", "postgres://user:xxxxx@db/otelop", true},
		{"redis://cache", "unsupported store URI", true},
		{"mongodb://127.0.0.1:1/otelop?serverSelectionTimeoutMS=300&connectTimeoutMS=300", "127.0.0.1:1", false},
		{"sqlite:" + filepath.Join(t.TempDir(), "no", "such", "dir", "x.db"), "x.db", false},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			start := time.Now()
			st, err := exporters.OpenStore(ctx, tt.uri)
			if err == nil {
				st.Close(ctx)
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q, want it to contain %q and no password", err, tt.want)
			}
			if errors.Is(err, exporters.ErrUnsupportedStore) != tt.unsuppd {
				t.Errorf("errors.Is(ErrUnsupportedStore) = %v", !tt.unsuppd)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestStoreURIFromEnv(t *testing.T) {
	t.Setenv(exporters.StoreEnv, "")
	if got := exporters.StoreURIFromEnv(); got != exporters.DefaultStoreURI {
		t.Errorf("unset: %q", got)
	}
	t.Setenv(exporters.StoreEnv, "memory:")
	if got := exporters.StoreURIFromEnv(); got != "memory:" {
		t.Errorf("set: %q", got)
	}
}
