package otelop

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// lastTick is the last (unix_ms<<12 | sub-millisecond counter) handed out,
// so that the ids of one process strictly increase.
var lastTick atomic.Uint64

// newID returns a UUIDv7 (RFC 9562) for a run starting now.
func newID() string { return newIDAt(time.Now()) }

// newIDAt returns a UUIDv7 (RFC 9562) string whose 48-bit timestamp is t's
// Unix millisecond, so that a TaskRun's id and its started_at agree. The 12
// bits after the version hold the sub-millisecond fraction of t, raised when
// needed so that ids from one process strictly increase (RFC 9562, method
// 3); the last 62 bits are random, from math/rand/v2's ChaCha8-based global
// source seeded by the runtime: unpredictable and far cheaper than a
// crypto/rand read per call.
func newIDAt(t time.Time) string {
	ms := uint64(t.UnixMilli())
	frac := uint64(t.Nanosecond()%1e6) * 4096 / 1e6
	tick := ms<<12 | frac
	for {
		last := lastTick.Load()
		next := tick
		if next <= last {
			next = last + 1
		}
		if lastTick.CompareAndSwap(last, next) {
			tick = next
			break
		}
	}
	var u [16]byte
	binary.BigEndian.PutUint64(u[0:8], (tick>>12)<<16|0x7000|tick&0x0fff)
	binary.BigEndian.PutUint64(u[8:16], rand.Uint64())
	u[8] = 0x80 | u[8]&0x3f // variant 10
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], u[10:16])
	return string(s[:])
}
