package otelop

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/go-playground/validator/v10"
)

var validate = sync.OnceValue(func() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			return f.Name
		case "":
			return f.Name
		}
		return name
	})
	return v
})

// validateInput runs the input's Validate method and its validate tags.
func validateInput[In any](op string, ti *typeInfo, in *In) error {
	if ti.validateMethod {
		var err error
		switch v := any(in).(type) {
		case interface{ Validate() error }:
			err = v.Validate()
		default:
			if vv, ok := any(*in).(interface{ Validate() error }); ok {
				err = vv.Validate()
			}
		}
		if err != nil {
			return &InputError{Operation: op, Err: err}
		}
	}
	if ti.validateTags {
		if ti.ptr && reflect.ValueOf(*in).IsNil() {
			return &InputError{Operation: op, Err: errors.New("input is nil")}
		}
		if err := validate().Struct(*in); err != nil {
			return &InputError{Operation: op, Err: err, msg: describeValidation(err)}
		}
	}
	return nil
}

// describeValidation turns validator errors into "field: reason" phrases
// using JSON field names; it never includes the offending values.
func describeValidation(err error) string {
	var ves validator.ValidationErrors
	if !errors.As(err, &ves) {
		return err.Error()
	}
	parts := make([]string, 0, len(ves))
	for _, fe := range ves {
		field := fe.Namespace()
		if _, rest, ok := strings.Cut(field, "."); ok {
			field = rest
		}
		rule := fe.Tag()
		if fe.Param() != "" {
			rule += "=" + fe.Param()
		}
		switch fe.Tag() {
		case "required":
			parts = append(parts, field+" is required")
		default:
			parts = append(parts, fmt.Sprintf("%s must satisfy %s", field, rule))
		}
	}
	return strings.Join(parts, "; ")
}
