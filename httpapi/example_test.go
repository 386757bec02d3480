package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/otelop/otelop/httpapi"
	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/registry"
	"github.com/otelop/otelop/taskrun/memstore"
)

type greetIn struct {
	otelop.Request
	Name string `json:"name" validate:"required"`
}

type greetOut struct {
	Greeting string `json:"greeting"`
}

// A handler over a registry and a store, with one token; an invoke
// request runs the operation as the token's user.
func Example() {
	reg := registry.New()
	otelop.Define(otelop.Spec{Name: "greet", Description: "Greet someone", Category: "demo", Permissions: []string{"demo:run"}},
		func(_ context.Context, in greetIn) (greetOut, error) {
			return greetOut{Greeting: "hello " + in.Name + " from " + in.UserID}, nil
		}, otelop.WithRegistry(reg))

	tokens, _ := httpapi.NewTokens(map[string]httpapi.Identity{
		"a-long-random-token-0001": {UserID: "alice", Permissions: []string{"demo:run"}},
	})
	h, err := httpapi.New(reg, memstore.New(), httpapi.WithTokens(tokens))
	if err != nil {
		panic(err)
	}

	req := httptest.NewRequest("POST", "/api/operations/greet/invoke", strings.NewReader(`{"name":"Bob"}`))
	req.Header.Set("Authorization", "Bearer a-long-random-token-0001")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Code, strings.TrimSpace(rec.Body.String()))

	req = httptest.NewRequest("POST", "/api/operations/greet/invoke", strings.NewReader(`{"name":""}`))
	req.Header.Set("Authorization", "Bearer a-long-random-token-0001")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var e httpapi.Error
	_ = json.Unmarshal(rec.Body.Bytes(), &e)
	fmt.Println(rec.Code, e.Code)
	// Output:
	// 200 {"output":{"greeting":"hello Bob from alice"}}
	// 422 invalid_input
}
