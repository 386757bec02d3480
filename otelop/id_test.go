package otelop

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestNewIDIsUUIDv7(t *testing.T) {
	before := time.Now().Add(-time.Millisecond)
	seen := map[string]bool{}
	for range 1000 {
		s := newID()
		u, err := uuid.Parse(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if u.Version() != 7 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("%s: version %d variant %v", s, u.Version(), u.Variant())
		}
		sec, nsec := u.Time().UnixTime()
		if ts := time.Unix(sec, nsec); ts.Before(before.Truncate(time.Millisecond)) || ts.After(time.Now().Add(time.Millisecond)) {
			t.Fatalf("%s: time %v not now", s, ts)
		}
		if seen[s] {
			t.Fatalf("duplicate id %s", s)
		}
		seen[s] = true
	}
}
