package otelop

import (
	"fmt"
	"reflect"
	"strings"
	"unsafe"
)

// typeInfo is what the wrapper needs to know about an input or output type,
// worked out once at Define so that a call does no reflection.
type typeInfo struct {
	ptr bool // the type is a pointer to the struct described below

	requestOff int // offset of an embedded Request, or -1
	receiptOff int // offset of an embedded Receipt, or -1
	refs       []refField

	validateTags   bool // some field carries a `validate` tag
	validateMethod bool // the type or its pointer has Validate() error
	resultRefs     bool // the type has ResultRefs() []Ref
	itemErrors     bool // the type has ItemErrors() []ItemError
}

type refField struct {
	prefix string // "collection/"
	off    uintptr
	slice  bool // []string rather than string
	name   string
}

var (
	requestType    = reflect.TypeFor[Request]()
	receiptType    = reflect.TypeFor[Receipt]()
	stringType     = reflect.TypeFor[string]()
	stringsType    = reflect.TypeFor[[]string]()
	validatorIface = reflect.TypeFor[interface{ Validate() error }]()
	refsIface      = reflect.TypeFor[interface{ ResultRefs() []Ref }]()
	itemErrsIface  = reflect.TypeFor[interface{ ItemErrors() []ItemError }]()
)

func inspect(t reflect.Type) (*typeInfo, error) {
	ti := &typeInfo{requestOff: -1, receiptOff: -1}
	if t == nil { // an interface type parameter
		return ti, nil
	}
	ti.validateMethod = t.Implements(validatorIface) || (t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(validatorIface))
	ti.resultRefs = t.Implements(refsIface)
	ti.itemErrors = t.Implements(itemErrsIface)
	ti.validateTags = hasValidateTags(t, map[reflect.Type]bool{})

	st := t
	if st.Kind() == reflect.Pointer {
		ti.ptr = true
		st = st.Elem()
	}
	if st.Kind() != reflect.Struct {
		return ti, nil
	}
	for _, f := range reflect.VisibleFields(st) {
		off, direct := fieldOffset(st, f.Index)
		if f.Anonymous && f.Type == requestType && direct && ti.requestOff < 0 {
			ti.requestOff = int(off)
		}
		if f.Anonymous && f.Type == receiptType && direct && ti.receiptOff < 0 {
			ti.receiptOff = int(off)
		}
		tag, ok := f.Tag.Lookup("otelop")
		if !ok {
			continue
		}
		ot, err := parseOtelopTag(tag)
		if err != nil {
			return nil, fmt.Errorf("field %s.%s: %w", st.Name(), f.Name, err)
		}
		coll := ot.ref
		if coll == "" {
			continue
		}
		if !direct {
			return nil, fmt.Errorf("field %s.%s: a ref field must not be reached through an embedded pointer", st.Name(), f.Name)
		}
		switch f.Type {
		case stringType:
			ti.refs = append(ti.refs, refField{prefix: coll + "/", off: off, name: f.Name})
		case stringsType:
			ti.refs = append(ti.refs, refField{prefix: coll + "/", off: off, slice: true, name: f.Name})
		default:
			return nil, fmt.Errorf("field %s.%s: otelop ref fields must be string or []string, not %s", st.Name(), f.Name, f.Type)
		}
	}
	return ti, nil
}

// otelopTag is a parsed `otelop:"..."` struct tag: comma-separated keys,
// ref=<collection> for a result reference and redact for a secret field.
type otelopTag struct {
	ref    string
	redact bool
}

// parseOtelopTag reads every key of tag; a malformed ref is an error, and
// the other keys are still read.
func parseOtelopTag(tag string) (t otelopTag, err error) {
	for part := range strings.SplitSeq(tag, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "ref":
			if v == "" || strings.Contains(v, "/") {
				err = fmt.Errorf("otelop tag %q: ref needs a collection name without a slash (ref=jobs)", tag)
				continue
			}
			t.ref = v
		case "redact":
			t.redact = true
		}
	}
	return t, err
}

// fieldOffset sums the offsets along index; direct is false when the path
// goes through an embedded pointer.
func fieldOffset(t reflect.Type, index []int) (off uintptr, direct bool) {
	for i, x := range index {
		f := t.Field(x)
		off += f.Offset
		t = f.Type
		if i < len(index)-1 && t.Kind() == reflect.Pointer {
			return 0, false
		}
	}
	return off, true
}

func hasValidateTags(t reflect.Type, seen map[reflect.Type]bool) bool {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] {
		return false
	}
	seen[t] = true
	for i := range t.NumField() {
		f := t.Field(i)
		if _, ok := f.Tag.Lookup("validate"); ok {
			return true
		}
		if hasValidateTags(f.Type, seen) {
			return true
		}
	}
	return false
}

// base returns the address of the struct that v (of the type ti describes)
// holds: v itself, or what it points to; nil for a nil pointer.
func (ti *typeInfo) base(v unsafe.Pointer) unsafe.Pointer {
	if ti.ptr {
		return *(*unsafe.Pointer)(v)
	}
	return v
}

func (ti *typeInfo) request(v unsafe.Pointer) *Request {
	if ti.requestOff < 0 {
		return nil
	}
	b := ti.base(v)
	if b == nil {
		return nil
	}
	return (*Request)(unsafe.Add(b, ti.requestOff))
}

func (ti *typeInfo) receipt(v unsafe.Pointer) *Receipt {
	if ti.receiptOff < 0 {
		return nil
	}
	b := ti.base(v)
	if b == nil {
		return nil
	}
	return (*Receipt)(unsafe.Add(b, ti.receiptOff))
}

// appendRefs appends the references held in tagged fields of v, as
// "collection/document_id".
func (ti *typeInfo) appendRefs(dst []string, v unsafe.Pointer) []string {
	if len(ti.refs) == 0 {
		return dst
	}
	b := ti.base(v)
	if b == nil {
		return dst
	}
	for _, f := range ti.refs {
		p := unsafe.Add(b, f.off)
		if f.slice {
			for _, id := range *(*[]string)(p) {
				if id != "" {
					dst = append(dst, f.prefix+id)
				}
			}
		} else if id := *(*string)(p); id != "" {
			dst = append(dst, f.prefix+id)
		}
	}
	return dst
}
