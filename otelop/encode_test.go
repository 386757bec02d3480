package otelop

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

type encEmbedded struct {
	E  string `json:"e,omitempty"`
	EP *int   `json:"ep"`
}

type encRich struct {
	Request
	encEmbedded
	S       string          `json:"s"`
	SP      *string         `json:"sp,omitempty"`
	I       int64           `json:"i"`
	U       uint8           `json:"u,omitempty"`
	F       float64         `json:"f"`
	F32     float32         `json:"f32"`
	B       bool            `json:"b"`
	L       []string        `json:"l"`
	Arr     [2]int          `json:"arr"`
	M       map[string]any  `json:"m"`
	MI      map[int]string  `json:"mi,omitempty"`
	N       *encRich        `json:"n,omitempty"`
	A       any             `json:"a"`
	T       time.Time       `json:"t"`
	R       json.RawMessage `json:"r,omitempty"`
	Bytes   []byte          `json:"bytes"`
	Str     int             `json:"str,string"`
	Ignored string          `json:"-"`
	NoTag   string
	Nested  struct{ X, Y int } `json:"nested"`
	hidden  int
}

// FuzzInputEncoding decodes arbitrary JSON into a type with most kinds of
// fields and encodes it with the fast encoder and with encoding/json: when
// both succeed, their output is the same, byte for byte.
func FuzzInputEncoding(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"user_id":"u","channel":"c","dry_run":true,"idempotency_key":"k","s":"a\u2028b<>&\"\\\n\t\u0001é","i":-9007199254740993,"u":255}`,
		`{"f":1e21,"f32":1.5e-7,"l":["x",""],"arr":[1,2],"m":{"b":1,"a":[true,null,{"z":"y"}],"c":1.0e-7},"mi":{"2":"b","10":"a"}}`,
		`{"n":{"s":"inner","n":{"i":1}},"a":{"k":[1,"2",3.5]},"t":"2026-01-02T03:04:05.123456789+01:00","r":{"raw":  [1, 2]}}`,
		`{"bytes":"aGVsbG8=","str":"42","NoTag":"x","nested":{"X":1,"Y":2},"e":"emb","ep":7,"sp":"p"}`,
		`{"s":"\ud800","a":1e308,"f":-0.0,"m":{"":""}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v encRich
		if json.Unmarshal(data, &v) != nil {
			return
		}
		var fast, std bytes.Buffer
		if encodeStd(&std, &v) != nil || encodeFast(&fast, &v) != nil {
			return // marshalInput falls back to encoding/json, or records the failure
		}
		if !bytes.Equal(fast.Bytes(), std.Bytes()) {
			t.Fatalf("input %s\nfast %s\n std %s", data, fast.Bytes(), std.Bytes())
		}
	})
}
