package registry

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/invopop/jsonschema"
)

// Schema returns the JSON Schema (draft 2020-12) of t, generated with
// github.com/invopop/jsonschema: json tags give the property names, fields
// without omitempty are required, and `jsonschema:"..."` tags add
// descriptions, enums and bounds. Unknown properties are not allowed, in line
// with Invoke, which rejects unknown fields.
func Schema(t reflect.Type) (json.RawMessage, error) {
	if t == nil {
		return nil, fmt.Errorf("registry: schema of a nil type")
	}
	r := &jsonschema.Reflector{ExpandedStruct: true}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	s := r.ReflectFromType(t)
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("registry: schema of %s: %w", t, err)
	}
	return b, nil
}
