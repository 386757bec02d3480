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
//
// Types JSON cannot carry (channels, functions, complex numbers) get the
// empty schema, which accepts anything: encoding them fails at call time and
// the TaskRun records that the input could not be serialised.
func Schema(t reflect.Type) (_ json.RawMessage, err error) {
	if t == nil {
		return nil, fmt.Errorf("registry: schema of a nil type")
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("registry: schema of %s: %v", t, r)
		}
	}()
	r := &jsonschema.Reflector{ExpandedStruct: true, Mapper: func(t reflect.Type) *jsonschema.Schema {
		switch t.Kind() {
		case reflect.Chan, reflect.Func, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128:
			return &jsonschema.Schema{}
		}
		return nil
	}}
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
