package main

import (
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/otelop/otelop/httpapi"
	"github.com/otelop/otelop/registry"
)

func newServeCmd(root *rootOptions) *cobra.Command {
	var addr, tokens, prefix string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the web UI and the HTTP API over the TaskRun store",
		Long: `serve runs the web UI and the JSON API (see /api/openapi.json) over the
TaskRun store: the audit log, per-operation charts, each run with its trace
link (OTELOP_TRACE_URL).

The catalog lists the operations registered in the serving process, and
this command registers none: to browse and invoke your own operations, mount
the httpapi package's handler in your service. Without a token file
(--tokens or ` + httpapi.TokensEnv + `) the server is read-only and only listens on
a loopback address.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := root.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close(cmd.Context())
			opts := []httpapi.Option{
				httpapi.WithLogger(slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))),
				httpapi.WithStoreTimeout(root.timeout),
				httpapi.WithPrefix(prefix),
			}
			if tokens == "" {
				opts = append(opts, httpapi.WithTokensFromEnv())
			} else {
				t, err := httpapi.LoadTokens(tokens)
				if err != nil {
					return usageError{err}
				}
				opts = append(opts, httpapi.WithTokens(t))
			}
			h, err := httpapi.New(registry.Default, st, opts...)
			if err != nil {
				return usageError{err}
			}
			if err := httpapi.ListenAndServe(cmd.Context(), addr, h, nil); err != nil {
				return usageError{err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on (host:port)")
	cmd.Flags().StringVar(&tokens, "tokens", "", "API token file (default $"+httpapi.TokensEnv+")")
	cmd.Flags().StringVar(&prefix, "prefix", "", "serve under this path prefix, such as /otelop")
	return cmd
}
