package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"

	"github.com/otelop/otelop/registry"
	"github.com/otelop/otelop/taskrun"
)

// OpenAPI returns the OpenAPI 3.1 document of the API for the operations
// registered now: one invoke path per operation, with the operation's input
// and output JSON Schemas, plus the catalog and audit-log endpoints.
func (h *Handler) OpenAPI() ([]byte, error) {
	d := &openAPIDoc{schemas: map[string]any{}}
	for name, t := range map[string]reflect.Type{
		"Error":         reflect.TypeFor[Error](),
		"TaskRun":       reflect.TypeFor[taskrun.TaskRun](),
		"TaskRunPage":   reflect.TypeFor[TaskRunPage](),
		"OperationList": reflect.TypeFor[OperationList](),
		"Stats":         reflect.TypeFor[Stats](),
		"AuthInfo":      reflect.TypeFor[AuthInfo](),
	} {
		s, err := registry.Schema(t)
		if err != nil {
			return nil, err
		}
		if err := d.addSchema(name, s); err != nil {
			return nil, err
		}
	}
	// input_dump is a raw JSON object, not the bytes of a json.RawMessage.
	if tr, ok := d.schemas["TaskRun"].(map[string]any); ok {
		if props, ok := tr["properties"].(map[string]any); ok {
			props["input_dump"] = map[string]any{"type": "object", "description": "the operation's input"}
		}
	}
	if err := d.addSchema("Operation", json.RawMessage(operationSchema)); err != nil {
		return nil, err
	}
	if err := d.addSchema("OperationDetail", json.RawMessage(operationDetailSchema)); err != nil {
		return nil, err
	}

	p := h.cfg.prefix
	paths := map[string]any{
		p + "/api/operations": map[string]any{"get": map[string]any{
			"operationId": "listOperations", "summary": "List the registered operations", "tags": []string{"catalog"},
			"parameters": params("query", "category", "tag", "stage", "q"),
			"responses":  responses("OperationList"),
		}},
		p + "/api/operations/{name}": map[string]any{"get": map[string]any{
			"operationId": "getOperation", "summary": "An operation with its input and output JSON Schemas", "tags": []string{"catalog"},
			"parameters": params("path", "name"),
			"responses":  responses("OperationDetail"),
		}},
		p + "/api/operations/{name}/stats": map[string]any{"get": map[string]any{
			"operationId": "operationStats", "summary": "Call counts, p50/p95 duration and failure rate over time", "tags": []string{"catalog"},
			"parameters": append(params("path", "name"), params("query", "since", "until", "buckets")...),
			"responses":  responses("Stats"),
		}},
		p + "/api/taskruns": map[string]any{"get": map[string]any{
			"operationId": "listTaskRuns", "summary": "TaskRuns matching every given filter, newest first", "tags": []string{"audit"},
			"parameters": params("query", queryParams...),
			"responses":  responses("TaskRunPage"),
		}},
		p + "/api/taskruns/{id}": map[string]any{"get": map[string]any{
			"operationId": "getTaskRun", "summary": "One TaskRun", "tags": []string{"audit"},
			"parameters": params("path", "id"),
			"responses":  responses("TaskRun"),
		}},
		p + "/api/taskruns/{id}/replay": map[string]any{"post": map[string]any{
			"operationId": "replayTaskRun", "summary": "Run the TaskRun's operation again with its stored input; the new TaskRun has metadata.replay_of", "tags": []string{"audit"},
			"parameters": params("path", "id"),
			"security":   []any{map[string]any{"bearer": []string{}}},
			"responses":  invokeResponses(map[string]any{"type": "object", "properties": map[string]any{"task_run_id": map[string]any{"type": "string"}, "replay_of": map[string]any{"type": "string"}, "output": map[string]any{}}}),
		}},
		p + "/api/auth": map[string]any{"get": map[string]any{
			"operationId": "auth", "summary": "Whether the server is read-only and whom the bearer token belongs to", "tags": []string{"auth"},
			"responses": responses("AuthInfo"),
		}},
	}
	for _, m := range h.reg.List() {
		in, out := m.Name+".input", m.Name+".output"
		if err := d.addSchema(in, m.InputSchema); err != nil {
			return nil, err
		}
		if err := d.addSchema(out, m.OutputSchema); err != nil {
			return nil, err
		}
		op := map[string]any{
			"operationId": "invoke_" + m.Name,
			"summary":     m.Description,
			"tags":        []string{m.Category},
			"security":    []any{map[string]any{"bearer": []string{}}},
			"requestBody": map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": ref(in)},
			}},
			"responses": invokeResponses(map[string]any{"type": "object", "properties": map[string]any{
				"task_run_id": map[string]any{"type": "string"}, "output": ref(out),
			}}),
		}
		if len(m.Permissions) > 0 {
			op["description"] = "Needs the permissions: " + strings.Join(m.Permissions, ", ") + "."
			op["x-permissions"] = m.Permissions
		}
		if m.Stage != "" {
			op["x-stage"] = m.Stage
		}
		paths[p+"/api/operations/"+m.Name+"/invoke"] = map[string]any{"post": op}
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "otelop",
			"version":     "1",
			"description": "The operation catalog and the TaskRun audit log. Errors are {code, message}.",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas": d.schemas,
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer", "description": "a token from the file named by " + TokensEnv},
			},
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}

func (h *Handler) openAPI(w http.ResponseWriter, r *http.Request) {
	b, err := h.OpenAPI()
	if err != nil {
		writeError(w, &Error{Code: "internal", Message: "building the OpenAPI document: " + err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Write(b)
}

const operationSchema = `{"type":"object","properties":{
 "name":{"type":"string"},"description":{"type":"string"},"category":{"type":"string"},
 "tags":{"type":"array","items":{"type":"string"}},"permissions":{"type":"array","items":{"type":"string"}},
 "models_in":{"type":"array","items":{"type":"string"}},"models_out":{"type":"array","items":{"type":"string"}},
 "stage":{"type":"string"},"observed":{"type":"boolean"},"no_task_run":{"type":"boolean"},"defined_at":{"type":"string"}},
 "required":["name","description","category","observed"]}`

const operationDetailSchema = `{"allOf":[{"$ref":"#/components/schemas/Operation"},{"type":"object","properties":{
 "input_schema":{"type":"object"},"output_schema":{"type":"object"}}}]}`

// openAPIDoc collects component schemas, hoisting each JSON Schema's $defs
// into components so that every $ref resolves from the document's root.
type openAPIDoc struct {
	schemas map[string]any
}

func (d *openAPIDoc) addSchema(name string, raw json.RawMessage) error {
	if len(raw) == 0 {
		raw = json.RawMessage(`{}`)
	}
	var s map[string]any
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("httpapi: schema %s: %w", name, err)
	}
	delete(s, "$schema")
	delete(s, "$id")
	defs, _ := s["$defs"].(map[string]any)
	delete(s, "$defs")
	rename := func(def string) string { return name + "." + def }
	for def, v := range defs {
		d.schemas[rename(def)] = rewriteRefs(v, rename)
	}
	d.schemas[name] = rewriteRefs(s, rename)
	return nil
}

// rewriteRefs points local "#/$defs/X" references at the hoisted copies.
func rewriteRefs(v any, rename func(string) string) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok && k == "$ref" {
				if def, ok := strings.CutPrefix(s, "#/$defs/"); ok {
					v[k] = "#/components/schemas/" + rename(def)
				}
				continue
			}
			v[k] = rewriteRefs(e, rename)
		}
	case []any:
		for i, e := range v {
			v[i] = rewriteRefs(e, rename)
		}
	}
	return v
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

func params(in string, names ...string) []any {
	out := make([]any, 0, len(names))
	for _, n := range names {
		out = append(out, map[string]any{"name": n, "in": in, "required": in == "path", "schema": map[string]any{"type": "string"}})
	}
	return out
}

func errorResponse(desc string) map[string]any {
	return map[string]any{"description": desc, "content": map[string]any{"application/json": map[string]any{"schema": ref("Error")}}}
}

func responses(okSchema string) map[string]any {
	return map[string]any{
		"200": map[string]any{"description": "OK", "content": map[string]any{"application/json": map[string]any{"schema": ref(okSchema)}}},
		"400": errorResponse("bad_request: a malformed parameter"),
		"404": errorResponse("not_found"),
		"503": errorResponse("store_unavailable"),
	}
}

func invokeResponses(ok map[string]any) map[string]any {
	return map[string]any{
		"200": map[string]any{"description": "the operation's output and its TaskRun id", "content": map[string]any{"application/json": map[string]any{"schema": ok}}},
		"401": errorResponse("unauthorized: no or unknown bearer token"),
		"403": errorResponse("forbidden (missing permission) or read_only (no tokens configured)"),
		"404": errorResponse("not_found"),
		"409": errorResponse("not_replayable: the stored input was redacted or truncated"),
		"413": errorResponse("too_large"),
		"422": errorResponse("invalid_input"),
		"500": errorResponse("operation_failed or operation_panicked"),
	}
}
