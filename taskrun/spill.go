package taskrun

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// errSpillInUse is returned by lockFile when another process holds the
// lock.
var errSpillInUse = errors.New("another process uses it (one process at a time per spill file)")

// spillFile is an open, locked spill file: TaskRun JSON documents, one per
// line, appended and fsynced.
type spillFile struct {
	path  string
	f     *os.File
	empty bool // the file holds no byte
}

// openSpillFile opens (creating it if missing) and locks the spill file at
// path, and returns the runs it holds, one per id (a final state wins over a
// non-final one, otherwise the later line). A torn last line is repaired:
// kept, with its newline, when it is a whole TaskRun, and cut off
// otherwise. Unreadable lines are reported and skipped.
func openSpillFile(path string, report func(error)) (*spillFile, []TaskRun, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, fmt.Errorf("spill file %q: %w", path, err)
	}
	f, created, err := openLocked(abs)
	if err != nil {
		return nil, nil, fmt.Errorf("spill file %s: %w", abs, err)
	}
	s := &spillFile{path: abs, f: f}
	if created {
		syncDir(filepath.Dir(abs))
	}
	data, err := io.ReadAll(f)
	if err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("spill file %s: reading: %w", abs, err)
	}
	runs, index := []TaskRun(nil), map[string]int{}
	keep := func(r TaskRun) {
		if j, seen := index[r.ID]; seen {
			if !runs[j].Status.Final() || r.Status.Final() {
				runs[j] = r
			}
			return
		}
		index[r.ID] = len(runs)
		runs = append(runs, r)
	}
	for off, line := 0, 1; off < len(data); line++ {
		end := bytes.IndexByte(data[off:], '\n')
		if end < 0 {
			// The last line has no newline: a crash cut the spill short.
			tail := data[off:]
			if r, err := decodeSpilled(tail); err == nil {
				keep(r)
				if _, err := f.Write([]byte("\n")); err != nil {
					_ = f.Close()
					return nil, nil, fmt.Errorf("spill file %s: ending its last line: %w", abs, err)
				}
			} else {
				report(fmt.Errorf("taskrun: spill file %s: line %d is incomplete (%d bytes, a spill cut short by a crash): %v; skipped", abs, line, len(tail), err))
				if err := f.Truncate(int64(off)); err != nil {
					_ = f.Close()
					return nil, nil, fmt.Errorf("spill file %s: cutting off its incomplete last line: %w", abs, err)
				}
				data = data[:off]
			}
			if err := f.Sync(); err != nil {
				_ = f.Close()
				return nil, nil, fmt.Errorf("spill file %s: %w", abs, err)
			}
			break
		}
		text := bytes.TrimSpace(data[off : off+end])
		off += end + 1
		if len(text) == 0 {
			continue
		}
		r, err := decodeSpilled(text)
		if err != nil {
			report(fmt.Errorf("taskrun: spill file %s: line %d: %v; skipped", abs, line, err))
			continue
		}
		keep(r)
	}
	s.empty = len(data) == 0
	return s, runs, nil
}

// decodeSpilled decodes one line of a spill file.
func decodeSpilled(line []byte) (TaskRun, error) {
	var r TaskRun
	if err := json.Unmarshal(line, &r); err != nil {
		return TaskRun{}, fmt.Errorf("not a TaskRun: %w", err)
	}
	if r.ID == "" || !r.Status.Valid() {
		return TaskRun{}, fmt.Errorf("not a TaskRun: id %q, status %q", r.ID, r.Status)
	}
	return r, nil
}

// openLocked opens path for appending, creating it if missing, and takes
// its lock. The path may be removed or replaced between the open and the
// lock (by a process that was done with it): then it opens it again, so
// that the lock held is the lock of the file at path.
func openLocked(path string) (f *os.File, created bool, err error) {
	for range 10 {
		_, statErr := os.Stat(path)
		f, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, false, err
		}
		if err := lockFile(f); err != nil {
			_ = f.Close()
			return nil, false, err
		}
		fi, err1 := f.Stat()
		pi, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(fi, pi) {
			return f, errors.Is(statErr, fs.ErrNotExist), nil
		}
		_ = f.Close()
	}
	return nil, false, errors.New("it keeps being replaced by another process")
}

// append writes runs at the end of the file, one JSON document per line,
// in one write, and fsyncs the file.
func (s *spillFile) append(runs []TaskRun) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf) // one document and a newline per Encode
	enc.SetEscapeHTML(false)
	for i := range runs {
		if err := enc.Encode(&runs[i]); err != nil {
			return fmt.Errorf("spill file %s: encoding run %s: %w", s.path, runs[i].ID, err)
		}
	}
	if _, err := s.f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("spill file %s: %w", s.path, err)
	}
	s.empty = false
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("spill file %s: %w", s.path, err)
	}
	return nil
}

// clear empties the file once every run it held is written.
func (s *spillFile) clear() error {
	if s.empty {
		return nil
	}
	if err := s.f.Truncate(0); err != nil {
		return fmt.Errorf("taskrun: emptying the spill file %s: %w", s.path, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("taskrun: emptying the spill file %s: %w", s.path, err)
	}
	s.empty = true
	return nil
}

// close removes the file when it is empty, then closes it, which releases
// the lock.
func (s *spillFile) close() error {
	var err error
	if s.empty {
		if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = fmt.Errorf("taskrun: removing the empty spill file: %w", rerr)
		} else {
			syncDir(filepath.Dir(s.path))
		}
	}
	if cerr := s.f.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("taskrun: closing the spill file %s: %w", s.path, cerr))
	}
	return err
}

// syncDir makes a file's creation or removal in dir durable, as far as the
// platform allows.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
