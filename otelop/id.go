package otelop

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"time"
)

// newID returns a UUIDv7 (RFC 9562) string: 48 bits of Unix milliseconds,
// then 74 random bits, so ids sort by creation time. The random bits come
// from math/rand/v2's ChaCha8-based global source, seeded by the runtime
// from the operating system: unpredictable, and much cheaper than a
// crypto/rand read on every call.
func newID() string {
	var u [16]byte
	ms := uint64(time.Now().UnixMilli())
	binary.BigEndian.PutUint64(u[0:8], ms<<16)
	binary.BigEndian.PutUint64(u[8:16], rand.Uint64())
	r := rand.Uint32()
	u[6] = 0x70 | byte(r>>8)&0x0f // version 7
	u[7] = byte(r)
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
