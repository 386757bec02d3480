package memstore

// NewWithHash returns a Store that hashes ids and the keyed fields of runs
// with h, so that tests can make them collide.
func NewWithHash(h func(string) uint64) *Store {
	s := New()
	s.hash = h
	return s
}

// ArenaUsage returns the bytes of the arena taken by records, and the bytes
// of those that the stored runs' records take.
func (s *Store) ArenaUsage() (used, live int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.arena.used, s.live
}
