package memstore

// arena holds the records of a store in large byte slices, chunks, which the
// garbage collector marks in one step each without scanning them. A record
// is appended once and never changes; the record a write replaces stays in
// its chunk as garbage until compact.
type arena struct {
	chunks [][]byte
	cur    int // index of the chunk records are appended to; -1 for none
	used   int // bytes of the chunks taken by records, live or not
}

const (
	minChunk = 4 << 10
	maxChunk = 1 << 20
)

// ref locates a record in an arena.
type ref struct {
	chunk, off, len uint32
}

func newArena() arena { return arena{cur: -1} }

// add appends rec and returns where it is.
func (a *arena) add(rec []byte) ref {
	a.used += len(rec)
	if a.cur >= 0 {
		if c := a.chunks[a.cur]; cap(c)-len(c) >= len(rec) {
			a.chunks[a.cur] = append(c, rec...)
			return ref{uint32(a.cur), uint32(len(c)), uint32(len(rec))}
		}
	}
	size := minChunk
	if a.cur >= 0 {
		size = min(2*cap(a.chunks[a.cur]), maxChunk)
	}
	if len(rec) > size/4 {
		// A big record gets a chunk of its own; the current chunk stays.
		a.chunks = append(a.chunks, append([]byte(nil), rec...))
		return ref{uint32(len(a.chunks) - 1), 0, uint32(len(rec))}
	}
	c := make([]byte, 0, size)
	a.chunks = append(a.chunks, append(c, rec...))
	a.cur = len(a.chunks) - 1
	return ref{uint32(a.cur), 0, uint32(len(rec))}
}

// get returns the record at r. It must not be changed.
func (a *arena) get(r ref) []byte {
	return a.chunks[r.chunk][r.off : r.off+r.len : r.off+r.len]
}
