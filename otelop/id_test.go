package otelop

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestNewIDIsUUIDv7(t *testing.T) {
	before := time.Now().Add(-time.Millisecond)
	seen := map[string]bool{}
	prev := ""
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
		if s <= prev {
			t.Fatalf("id %s does not sort after %s", s, prev)
		}
		prev = s
		seen[s] = true
	}
}

func TestNewIDAtCarriesTheMillisecond(t *testing.T) {
	time.Sleep(2 * time.Millisecond) // past any tick handed out so far
	at := time.Now()
	u := uuid.MustParse(newIDAt(at))
	sec, nsec := u.Time().UnixTime()
	if got := time.Unix(sec, nsec).UTC(); !got.Equal(at.Truncate(time.Millisecond)) {
		t.Errorf("id time %v, want %v", got, at.Truncate(time.Millisecond))
	}
}
