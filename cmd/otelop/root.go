package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/otelop/otelop/exporters"
	"github.com/otelop/otelop/taskrun"
)

type rootOptions struct {
	store   string
	timeout time.Duration
}

func newRootCmd() *cobra.Command {
	opts := &rootOptions{}
	root := &cobra.Command{
		Use:   "otelop",
		Short: "Query and serve the otelop TaskRun audit log",
		Long: `otelop queries the TaskRuns that otelop operations leave behind: who ran
what, with which input, what it created, why it failed.

The store comes from --store or OTELOP_STORE (default ` + exporters.DefaultStoreURI + `):
mongodb://host/db, mongodb+srv://..., sqlite:PATH or memory:.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&opts.store, "store", "", "TaskRun store URI (default $"+exporters.StoreEnv+" or "+exporters.DefaultStoreURI+")")
	root.PersistentFlags().DurationVar(&opts.timeout, "timeout", 10*time.Second, "how long to wait for the store to answer")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newRunsCmd(opts), newServeCmd(opts))
	return root
}

// isCobraUsage recognises cobra's own argument errors (unknown command,
// wrong number of arguments), which are bad input.
func isCobraUsage(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command") || strings.Contains(msg, "arg(s)") ||
		strings.HasPrefix(msg, "unknown flag") || strings.HasPrefix(msg, "unknown shorthand flag")
}

// openStore opens the configured store for reading. A missing SQLite file
// is reported rather than created: query commands write nothing.
func (o *rootOptions) openStore(ctx context.Context) (taskrun.Store, error) {
	uri := o.store
	if uri == "" {
		uri = exporters.StoreURIFromEnv()
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	st, err := exporters.OpenStore(ctx, uri, exporters.ReadOnly())
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, badInput("no TaskRun store at %s (set --store or %s): %v", uri, exporters.StoreEnv, err)
	case err != nil:
		return nil, usageError{fmt.Errorf("opening the store: %w", err)}
	}
	return st, nil
}

// withStore opens the store, runs fn with a context bounded by --timeout,
// and closes the store.
func (o *rootOptions) withStore(ctx context.Context, fn func(context.Context, taskrun.Store) error) error {
	st, err := o.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close(context.Background())
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	return fn(ctx, st)
}
