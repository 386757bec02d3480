// Package registry holds the catalog of operations: their specs, their Go
// input and output types, the JSON Schemas generated from those types, where
// they were defined, and a type-erased Invoke that decodes JSON input and
// calls the operation.
//
// Operations are normally registered by [github.com/otelop/otelop.Define]
// (into [Default]) rather than by calling [Registry.Register] directly. The
// registry is what the HTTP API, the CLI and the web UI list and invoke.
//
// Registration follows net/http.ServeMux: a name is registered once; a second
// registration of the same name is an error that names both definition sites.
package registry
