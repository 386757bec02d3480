package taskrun

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzValidJSON holds validJSON to encoding/json's answer, so that a run the
// decoder accepts always marshals.
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, `[1,2]`, "\"\xff\"", `{"a":"\u00zz"}`, `1e5`, `-0.5E+3`, `01`, "\"\x01\"",
		`{"a":tru}`, ` null `, `[`, `{"a" 1}`, `"\/"`, `{"a":1,}`, `[1 2]`, `"\ud800"`, ``, ` `, `1.`, `-`, `{"a":{"b":[{}]}}`,
	} {
		f.Add(s)
	}
	for _, n := range []int{maxNesting, maxNesting + 1} {
		f.Add(strings.Repeat("[", n) + strings.Repeat("]", n))
		f.Add(strings.Repeat(`{"a\\\"[":`, n) + "1" + strings.Repeat("}", n))
		f.Add(`["` + strings.Repeat(`\\`, n) + `"` + strings.Repeat(",[", n) + strings.Repeat("]", n+1))
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validJSON(s), json.Valid([]byte(s)); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", s, got, want)
		}
	})
}
