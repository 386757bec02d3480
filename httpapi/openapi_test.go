package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
)

// TestOpenAPI checks the generated document with libopenapi's validator,
// then validates real requests and responses of the API against it.
func TestOpenAPI(t *testing.T) {
	f := newFixture(t)
	f.seed(t, 2)
	b, err := f.api.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	paths, _ := doc["paths"].(map[string]any)
	for _, op := range []string{"create_jobs", "flaky_op", "report_jobs"} {
		if paths["/api/operations/"+op+"/invoke"] == nil {
			t.Errorf("no invoke path for %s", op)
		}
	}
	// Every $ref resolves inside the document.
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := v["$ref"].(string); ok {
				name, ok := strings.CutPrefix(r, "#/components/schemas/")
				if !ok || schemas[name] == nil {
					t.Errorf("unresolved $ref %q", r)
				}
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(doc)

	d, err := libopenapi.NewDocument(b)
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(d)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("document: %v", e)
		}
	}
	run := f.h.Runs()[0]
	for _, tc := range []struct{ method, path, token, body string }{
		{"GET", "/api/operations?category=jobs", "", ""},
		{"GET", "/api/operations/create_jobs", "", ""},
		{"GET", "/api/operations/create_jobs/stats?buckets=4", "", ""},
		{"GET", "/api/taskruns?limit=2", "", ""},
		{"GET", "/api/taskruns?status=bogus", "", ""},
		{"GET", "/api/taskruns/" + run.ID, "", ""},
		{"GET", "/api/taskruns/nope", "", ""},
		{"GET", "/api/auth", aliceToken, ""},
		{"POST", "/api/operations/create_jobs/invoke", aliceToken, `{"titles":["x"]}`},
		{"POST", "/api/operations/create_jobs/invoke", aliceToken, `{"titles":[]}`},
		{"POST", "/api/operations/create_jobs/invoke", "", `{"titles":["x"]}`},
		{"POST", "/api/operations/flaky_op/invoke", aliceToken, `{"mode":"fail"}`},
		{"POST", "/api/operations/report_jobs/invoke", aliceToken, `{}`},
		{"POST", "/api/taskruns/" + run.ID + "/replay", aliceToken, ""},
	} {
		newReq := func() *http.Request {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			return req
		}
		rec := httptest.NewRecorder()
		f.api.ServeHTTP(rec, newReq())
		resp := rec.Result()
		req := newReq()
		check := v.ValidateHttpRequestResponse
		if tc.token == "" && tc.method == "POST" {
			check = v.ValidateHttpResponse // the request itself lacks the required token
		}
		if ok, verrs := check(req, resp); !ok {
			for _, e := range verrs {
				t.Errorf("%s %s -> %d: %v (%s)", tc.method, tc.path, resp.StatusCode, e.Message, e.Reason)
				for _, se := range e.SchemaValidationErrors {
					t.Logf("  %s: %s", se.KeywordLocation, se.Reason)
				}
			}
		}
	}
}
