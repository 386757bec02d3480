package otelop

import (
	"bytes"
	"encoding"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// Redacted replaces the value of every redacted field in the input and
// output recorded on spans and TaskRuns, and in log entries.
const Redacted = "[REDACTED]"

// DefaultRedactKeys are the key patterns redacted unless [SetRedactKeys]
// says otherwise.
var DefaultRedactKeys = []string{"password", "secret", "token", "api_key", "authorization"}

type redactKeys struct {
	gen      uint64
	patterns [][]byte // normalised
}

var (
	redactGen  atomic.Uint64
	redactConf atomic.Pointer[redactKeys]
)

func init() { SetRedactKeys(DefaultRedactKeys...) }

// SetRedactKeys sets the key patterns whose values are redacted wherever
// they appear in a recorded input or output (struct fields by their JSON
// name, map keys, nested at any depth) and in log entry attributes. A key
// matches when, lower-cased and with '_' and '-' removed, it contains a
// pattern so normalised: "api_key" matches "apiKey", "X-Api-Key" and
// "stripe_api_key". With no patterns only fields tagged `otelop:"redact"`
// are redacted. It applies to calls that start after it returns.
func SetRedactKeys(patterns ...string) {
	k := &redactKeys{gen: redactGen.Add(1)}
	for _, p := range patterns {
		if n := appendNormalised(nil, p); len(n) > 0 {
			k.patterns = append(k.patterns, n)
		}
	}
	redactConf.Store(k)
}

// appendNormalised appends s to dst lower-cased (ASCII) without '_' and
// '-'.
func appendNormalised(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '_' || c == '-':
		case 'A' <= c && c <= 'Z':
			dst = append(dst, c+'a'-'A')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// matches reports whether key contains a pattern once normalised. It runs
// for every key of a scanned input and every log attribute, so short keys
// are normalised on the stack.
func (k *redactKeys) matches(key string) bool {
	if len(k.patterns) == 0 {
		return false
	}
	var buf [64]byte
	n := appendNormalised(buf[:0], key)
	for _, p := range k.patterns {
		if bytes.Contains(n, p) {
			return true
		}
	}
	return false
}

// redactPlan is what redaction needs to know about a type, worked out at
// Define: the JSON names of fields tagged `otelop:"redact"`, every JSON
// name a value of the type can have, and whether it can hold keys that are
// not known in advance (maps, interfaces, raw JSON, custom marshalers).
type redactPlan struct {
	tagged  map[string]bool
	names   []string
	dynamic bool

	decision atomic.Pointer[redactDecision]
}

type redactDecision struct {
	gen  uint64
	scan bool
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
	timeType      = reflect.TypeFor[time.Time]()
)

func newRedactPlan(t reflect.Type) *redactPlan {
	p := &redactPlan{tagged: map[string]bool{}}
	if t == nil {
		p.dynamic = true
		return p
	}
	p.walk(t, map[reflect.Type]bool{})
	return p
}

func (p *redactPlan) walk(t reflect.Type, seen map[reflect.Type]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if seen[t] {
		return
	}
	seen[t] = true
	if t == timeType {
		return
	}
	if t.Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(jsonMarshaler) ||
		(t.Kind() != reflect.String && (t.Implements(textMarshaler) || reflect.PointerTo(t).Implements(textMarshaler))) {
		p.dynamic = true
		return
	}
	switch t.Kind() {
	case reflect.Map, reflect.Interface:
		p.dynamic = true
	case reflect.Slice, reflect.Array:
		p.walk(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() && !f.Anonymous {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
				p.walk(ft, seen) // promoted fields
				continue
			}
			if name == "" {
				name = f.Name
			}
			p.names = append(p.names, name)
			if ot, _ := parseOtelopTag(f.Tag.Get("otelop")); ot.redact {
				p.tagged[name] = true
			}
			p.walk(f.Type, seen)
		}
	}
}

// scan reports whether a value's JSON must be scanned for keys to redact
// under the current key patterns; cached per pattern generation.
func (p *redactPlan) scan(k *redactKeys) bool {
	if d := p.decision.Load(); d != nil && d.gen == k.gen {
		return d.scan
	}
	s := p.dynamic || len(p.tagged) > 0
	for _, n := range p.names {
		s = s || k.matches(n)
	}
	p.decision.Store(&redactDecision{gen: k.gen, scan: s})
	return s
}

var redactBufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// redactJSON returns src with the value of every object member whose name
// is tagged in p or matches k replaced by "[REDACTED]", and whether it
// replaced any. Input that is not valid JSON is returned unchanged.
func redactJSON(src string, p *redactPlan, k *redactKeys) (string, bool) {
	dec := jsontext.NewDecoder(strings.NewReader(src), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	out := redactBufPool.Get().(*bytes.Buffer)
	out.Reset()
	defer redactBufPool.Put(out)
	enc := jsontext.NewEncoder(out, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	changed := false
	for {
		kind, n := dec.StackIndex(dec.StackDepth())
		name := kind == '{' && n%2 == 0
		tok, err := dec.ReadToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return src, false
		}
		if err := enc.WriteToken(tok); err != nil {
			return src, false
		}
		if name && tok.Kind() == '"' {
			key := tok.String()
			if p.tagged[key] || k.matches(key) {
				if err := dec.SkipValue(); err != nil {
					return src, false
				}
				if err := enc.WriteToken(jsontext.String(Redacted)); err != nil {
					return src, false
				}
				changed = true
			}
		}
	}
	if !changed {
		return src, false
	}
	return strings.TrimSuffix(out.String(), "\n"), true
}

// truncateJSON replaces JSON longer than limit bytes with an object that
// keeps its size and its beginning: {"truncated": true, "size": N,
// "prefix": "..."}.
func truncateJSON(s string, limit int) string {
	keep := min(max(limit-128, 0), len(s))
	for {
		for keep > 0 && keep < len(s) && !utf8.RuneStart(s[keep]) {
			keep--
		}
		b, err := json.Marshal(struct {
			Truncated bool   `json:"truncated"`
			Size      int    `json:"size"`
			Prefix    string `json:"prefix"`
		}{true, len(s), s[:keep]})
		if err != nil {
			return `{"truncated":true}`
		}
		if len(b) <= limit || keep == 0 {
			return string(b)
		}
		keep /= 2 // escaping made the prefix longer than the limit
	}
}
