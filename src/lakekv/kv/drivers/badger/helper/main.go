// lakekv-badger serves one Badger v4 directory (lakeFS's `local` database) to lakekv's
// badger:// driver over its standard input and output.
//
// Usage:
//
//	lakekv-badger -dir DIR [-mode rw|ro] [-create] [-tmp TMPDIR]
//
// It is built from Badger's own module at the version lakeFS pins (see go.mod), and opens the
// directory with badger.DefaultOptions, as lakeFS does. Keys on the wire are Badger keys
// (lakeFS's partition + "/" + key); the Python side composes them.
//
// Framing (all integers little-endian): a request is op (1 byte), payload length (uint32),
// payload; a response is status (1 byte), payload length (uint32), payload. Byte strings in a
// payload are a uint32 length and the bytes ("field"). The first response, sent before any
// request is read, says whether the directory could be opened (status 0, payload: "direct" or
// "copy NANOSECONDS BYTES" for a private copy) or why not (status != 0, payload: message).
//
// Read-only mode (-mode ro) never writes the directory. It takes a shared flock on it (a
// running lakeFS holds an exclusive one: status stLocked) and never lets Badger open it:
// Badger's ReadOnly option refuses a directory with memtable logs (*.mem, what lakeFS leaves
// when killed: "Log truncate required"), and even on a cleanly closed directory it opens the
// value logs for writing and deletes empty ones (value.go, valueLog.open). So the directory
// is copied into a private directory under -tmp (SST files, which Badger never changes,
// hard-linked when the file system allows; everything else copied, holes kept) and that copy
// is opened read-write, which replays the memtable logs exactly as lakeFS's next start would.
// The copy is removed on exit.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/sys/unix"
)

// Response statuses.
const (
	stOK          = 0
	stNotFound    = 1 // missing key; at open: missing directory or not a Badger directory
	stLocked      = 2 // at open: another process (a running lakeFS) holds the directory lock
	stNotBadger   = 3 // at open: the directory holds files but no Badger MANIFEST
	stError       = 4 // anything else; payload is the message
	stPredicate   = 5 // set_if: the condition did not hold
	stInvalid     = 6 // bad request or an argument Badger refuses (too large)
	stUnavailable = 7 // out of disk space and other resource trouble
)

// Requests.
const (
	opGet        = 'g'
	opSet        = 's'
	opSetIf      = 'c'
	opDelete     = 'd'
	opDeleteMany = 'D'
	opGetMany    = 'm'
	opScan       = 'r'
	opPartitions = 'p'
	opBatch      = 'b'
	opDropAll    = 'X'
	opSnapshot   = 'T' // begin a snapshot: a read transaction kept open; answers its id
	opInSnapshot = 'V' // id, then a read request (get, get many, scan, partitions) in it
	opEndSnap    = 'E' // id: discard the snapshot
	opClose      = 'q'
)

// set_if modes and batch conflict policies (the Python side's numbering).
const (
	condAbsent = 0
	condExists = 1
	condEquals = 2

	policyFail      = 0
	policySkip      = 1
	policyOverwrite = 2
)

type server struct {
	db    *badger.DB
	in    *bufio.Reader
	out   *bufio.Writer
	buf   []byte
	gen   uint64    // counts write requests: a page read ahead is valid while it is unchanged
	ahead *prefetch // the next page of the last scan, being read
	snaps map[uint32]*badger.Txn
	next  uint32
	snap  *badger.Txn // the snapshot the current request reads in, if any
}

type viewFunc func(fn func(txn *badger.Txn) error) error

// view runs fn in the current request's snapshot, or in a new read transaction.
func (s *server) view(fn func(txn *badger.Txn) error) error {
	if s.snap != nil {
		return fn(s.snap)
	}
	return s.db.View(fn)
}

type reqError struct {
	status byte
	msg    string
}

func (e *reqError) Error() string { return e.msg }

func fail(status byte, format string, args ...any) error {
	return &reqError{status, fmt.Sprintf(format, args...)}
}

// reader walks a request payload.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) u8() byte {
	if len(r.b) < 1 {
		r.bad = true
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u32() uint32 {
	if len(r.b) < 4 {
		r.bad = true
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) field() []byte {
	n := int(r.u32())
	if r.bad || len(r.b) < n {
		r.bad = true
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// fields reads a count, then that many fields (a list of keys).
func (r *reader) fields() [][]byte {
	n := int(r.u32())
	out := make([][]byte, 0, min(n, len(r.b)/4))
	for i := 0; i < n && !r.bad; i++ {
		out = append(out, r.field())
	}
	return out
}

func putU32(b []byte, v int) []byte { return binary.LittleEndian.AppendUint32(b, uint32(v)) }

func putField(b, f []byte) []byte { return append(putU32(b, len(f)), f...) }

func (s *server) respond(status byte, payload []byte) error {
	var h [5]byte
	h[0] = status
	binary.LittleEndian.PutUint32(h[1:], uint32(len(payload)))
	if _, err := s.out.Write(h[:]); err != nil {
		return err
	}
	if _, err := s.out.Write(payload); err != nil {
		return err
	}
	return s.out.Flush()
}

func classify(err error) byte {
	var re *reqError
	switch {
	case errors.As(err, &re):
		return re.status
	case errors.Is(err, badger.ErrKeyNotFound):
		return stNotFound
	case errors.Is(err, badger.ErrInvalidKey), errors.Is(err, badger.ErrEmptyKey),
		strings.Contains(err.Error(), "exceeded"):
		return stInvalid
	case errors.Is(err, unix.ENOSPC), errors.Is(err, unix.EDQUOT):
		return stUnavailable
	}
	return stError
}

func (s *server) serve() error {
	var h [5]byte
	for {
		if _, err := io.ReadFull(s.in, h[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil // the client went away: close as if asked
			}
			return err
		}
		n := int(binary.LittleEndian.Uint32(h[1:]))
		if cap(s.buf) < n {
			s.buf = make([]byte, n)
		}
		payload := s.buf[:n]
		if _, err := io.ReadFull(s.in, payload); err != nil {
			return err
		}
		if h[0] == opClose {
			return nil
		}
		out, err := s.handle(h[0], &reader{b: payload})
		if err != nil {
			if werr := s.respond(classify(err), []byte(err.Error())); werr != nil {
				return werr
			}
			continue
		}
		if err := s.respond(stOK, out); err != nil {
			return err
		}
	}
}

func (s *server) handle(op byte, r *reader) ([]byte, error) {
	switch op {
	case opSet, opSetIf, opDelete, opDeleteMany, opBatch, opDropAll:
		s.gen++
	}
	switch op {
	case opGet:
		key := r.field()
		if r.bad {
			break
		}
		var value []byte
		err := s.view(func(txn *badger.Txn) error {
			item, err := txn.Get(key)
			if err != nil {
				return err
			}
			value, err = item.ValueCopy(nil)
			return err
		})
		return value, err
	case opSet:
		key, value := r.field(), r.field()
		if r.bad {
			break
		}
		return nil, s.db.Update(func(txn *badger.Txn) error { return txn.Set(key, value) })
	case opSetIf:
		mode, key, value, pred := r.u8(), r.field(), r.field(), r.field()
		if r.bad {
			break
		}
		return nil, s.setIf(mode, key, value, pred)
	case opDelete:
		key := r.field()
		if r.bad {
			break
		}
		return nil, s.db.Update(func(txn *badger.Txn) error { return txn.Delete(key) })
	case opDeleteMany:
		keys := r.fields()
		if r.bad {
			break
		}
		return nil, s.deleteMany(keys)
	case opGetMany:
		keys := r.fields()
		if r.bad {
			break
		}
		return s.getMany(keys)
	case opScan:
		prefix, start, inclusive, limit := r.field(), r.field(), r.u8(), int(r.u32())
		if r.bad {
			break
		}
		return s.scan(prefix, start, inclusive != 0, limit)
	case opPartitions:
		return s.partitions()
	case opBatch:
		return s.batch(r)
	case opDropAll:
		s.settle()
		return nil, s.db.DropAll()
	case opSnapshot:
		s.next++
		s.snaps[s.next] = s.db.NewTransaction(false)
		return putU32(nil, int(s.next)), nil
	case opEndSnap:
		id := r.u32()
		if txn, ok := s.snaps[id]; ok && !r.bad {
			txn.Discard()
			delete(s.snaps, id)
			return nil, nil
		}
	case opInSnapshot:
		id, inner := r.u32(), r.u8()
		txn, ok := s.snaps[id]
		if r.bad || !ok {
			return nil, fail(stInvalid, "no snapshot %d", id)
		}
		switch inner {
		case opGet, opGetMany, opScan, opPartitions:
		default:
			return nil, fail(stInvalid, "request %q cannot run in a snapshot", inner)
		}
		s.snap = txn
		defer func() { s.snap = nil }()
		return s.handle(inner, r)
	default:
		return nil, fail(stInvalid, "unknown request %q", op)
	}
	return nil, fail(stInvalid, "malformed request %q", op)
}

func (s *server) setIf(mode byte, key, value, pred []byte) error {
	// As lakeFS's local store does (pkg/kv/local/store.go, SetIf): read and write in one
	// read-write transaction; a transaction conflict counts as a failed predicate.
	err := s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		missing := errors.Is(err, badger.ErrKeyNotFound)
		switch mode {
		case condAbsent:
			if !missing {
				return fail(stPredicate, "predicate failed")
			}
		case condExists, condEquals:
			if missing {
				return fail(stPredicate, "predicate failed")
			}
			if mode == condEquals {
				current, err := item.ValueCopy(nil)
				if err != nil {
					return err
				}
				if !bytes.Equal(current, pred) {
					return fail(stPredicate, "predicate failed")
				}
			}
		default:
			return fail(stInvalid, "unknown set_if mode %d", mode)
		}
		return txn.Set(key, value)
	})
	if errors.Is(err, badger.ErrConflict) {
		return fail(stPredicate, "predicate failed (transaction conflict)")
	}
	return err
}

// update runs fn over items in as many read-write transactions as Badger's size limits need:
// fn(txn, i) handles item i; a transaction too big is committed and the item retried in the
// next one.
func (s *server) update(n int, fn func(txn *badger.Txn, i int) error) error {
	i := 0
	for i < n {
		txn := s.db.NewTransaction(true)
		first := i
		for i < n {
			err := fn(txn, i)
			if errors.Is(err, badger.ErrTxnTooBig) && i > first {
				break
			}
			if err != nil {
				txn.Discard()
				return err
			}
			i++
		}
		if err := txn.Commit(); err != nil {
			return err
		}
	}
	return nil
}

func (s *server) deleteMany(keys [][]byte) error {
	return s.update(len(keys), func(txn *badger.Txn, i int) error { return txn.Delete(keys[i]) })
}

func (s *server) getMany(keys [][]byte) ([]byte, error) {
	out := make([]byte, 0, 4096)
	err := s.view(func(txn *badger.Txn) error {
		for _, key := range keys {
			item, err := txn.Get(key)
			if errors.Is(err, badger.ErrKeyNotFound) {
				out = putU32(out, 0)
				continue
			}
			if err != nil {
				return err
			}
			out = putU32(out, int(item.ValueSize())+1)
			if out, err = appendValue(out, item); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// appendValue appends item's value to out (without copying it twice).
func appendValue(out []byte, item *badger.Item) ([]byte, error) {
	err := item.Value(func(v []byte) error {
		out = append(out, v...)
		return nil
	})
	return out, err
}

// page is a run of entries of one partition, in key order (keys without the prefix).
type page struct {
	keyLens, valLens []int
	keys, values     []byte
	ended            bool // nothing follows the last entry
	err              error
}

func (p *page) n() int { return len(p.keyLens) }

// keyAt is the i-th key (without the prefix).
func (p *page) keyAt(i int) []byte {
	off := 0
	for _, l := range p.keyLens[:i] {
		off += l
	}
	return p.keys[off : off+p.keyLens[i]]
}

func (p *page) extend(q *page) {
	p.keyLens = append(p.keyLens, q.keyLens...)
	p.valLens = append(p.valLens, q.valLens...)
	p.keys = append(p.keys, q.keys...)
	p.values = append(p.values, q.values...)
	p.ended, p.err = q.ended, q.err
}

// encode the first count entries as a scan response: count, more (1 byte), key lengths,
// value lengths, keys, values.
func (p *page) encode(count int, more bool) []byte {
	kb, vb := 0, 0
	for i := 0; i < count; i++ {
		kb += p.keyLens[i]
		vb += p.valLens[i]
	}
	out := make([]byte, 0, 5+8*count+kb+vb)
	out = putU32(out, count)
	if more {
		out = append(out, 1)
	} else {
		out = append(out, 0)
	}
	for _, l := range p.keyLens[:count] {
		out = putU32(out, l)
	}
	for _, l := range p.valLens[:count] {
		out = putU32(out, l)
	}
	out = append(out, p.keys[:kb]...)
	return append(out, p.values[:vb]...)
}

// readPage reads up to limit entries under prefix from start (a key with the prefix).
func readPage(view viewFunc, prefix, start []byte, inclusive bool, limit int) *page {
	p := &page{keys: make([]byte, 0, 4096), values: make([]byte, 0, 16384)}
	p.err = view(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefix
		opts.PrefetchSize = min(limit+1, 256)
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Seek(start); it.ValidForPrefix(prefix); it.Next() {
			item := it.Item()
			k := item.Key()
			if !inclusive && bytes.Equal(k, start) {
				continue
			}
			if p.n() == limit {
				return nil
			}
			p.keyLens = append(p.keyLens, len(k)-len(prefix))
			p.keys = append(p.keys, k[len(prefix):]...)
			before := len(p.values)
			var err error
			if p.values, err = appendValue(p.values, item); err != nil {
				return err
			}
			p.valLens = append(p.valLens, len(p.values)-before)
		}
		p.ended = true
		return nil
	})
	return p
}

// settle waits for a page being read ahead (before the database is dropped or closed).
func (s *server) settle() {
	if s.ahead != nil {
		<-s.ahead.ch
		s.ahead = nil
	}
}

// prefetch is the next page of a scan, read while the client decodes the last one.
type prefetch struct {
	prefix, after []byte
	gen           uint64
	ch            chan *page
}

const prefetchMax = 20000

// scan returns up to limit entries with keys under prefix, from start. A scan going on
// (start is the last key of the page answered before, exclusive) is answered from the page
// read ahead meanwhile, if nothing was written since; then the page after it is read ahead.
func (s *server) scan(prefix, start []byte, inclusive bool, limit int) ([]byte, error) {
	var p *page
	if ahead := s.ahead; ahead != nil && s.snap == nil {
		s.ahead = nil
		if !inclusive && ahead.gen == s.gen && bytes.Equal(ahead.prefix, prefix) &&
			bytes.Equal(ahead.after, start) {
			if got := <-ahead.ch; got.err == nil {
				p = got
			}
		}
	}
	if p == nil {
		p = readPage(s.view, prefix, start, inclusive, limit)
	} else if p.n() < limit && !p.ended {
		p.extend(readPage(s.view, prefix, append(append([]byte{}, prefix...), p.keyAt(p.n()-1)...), false, limit-p.n()))
	}
	if p.err != nil {
		return nil, p.err
	}
	count := min(p.n(), limit)
	more := p.n() > limit || !p.ended
	out := p.encode(count, more)
	if more && count > 0 && s.snap == nil {
		after := append(append([]byte{}, prefix...), p.keyAt(count-1)...)
		ahead := &prefetch{prefix: append([]byte{}, prefix...), after: after, gen: s.gen, ch: make(chan *page, 1)}
		next := min(limit, prefetchMax) // the client asks for the same size again
		go func() { ahead.ch <- readPage(s.db.View, ahead.prefix, ahead.after, false, next) }()
		s.ahead = ahead
	}
	return out, nil
}

// partitions lists the distinct prefixes before the first "/" of every key, each once: after
// finding one, it seeks past all keys that start with it.
func (s *server) partitions() ([]byte, error) {
	var names [][]byte
	err := s.view(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		it := txn.NewIterator(opts)
		defer it.Close()
		it.Rewind()
		for it.Valid() {
			k := it.Item().Key()
			i := bytes.IndexByte(k, '/')
			if i <= 0 { // not an entry of lakeFS's layout: no partition
				next := append(append([]byte{}, k...), 0)
				it.Seek(next)
				continue
			}
			name := append([]byte{}, k[:i]...)
			names = append(names, name)
			it.Seek(append(append([]byte{}, name...), '/'+1))
		}
		return nil
	})
	out := putU32(nil, len(names))
	for _, n := range names {
		out = putField(out, n)
	}
	return out, err
}

// batch writes entries as set_if(absent) each; an existing key is compared: the same value
// counts as unchanged, a different one follows the policy. The request is the policy
// (1 byte), the number of runs, each run's key prefix (a field) and entry count, then the
// key lengths, the value lengths (uint32 each), the keys (without their prefix) and the
// values. The response has one byte per entry: 0 written, 1 unchanged, 2 skipped,
// 3 conflict. Existing keys are looked up in one read transaction, then the entries to write
// go through Badger's WriteBatch (as many transactions as its size limit needs): requests
// are served one at a time, so nothing changes in between.
func (s *server) batch(r *reader) ([]byte, error) {
	policy := r.u8()
	nruns := int(r.u32())
	prefixes := make([][]byte, 0, nruns)
	counts := make([]int, 0, nruns)
	n := 0
	for i := 0; i < nruns && !r.bad; i++ {
		prefixes = append(prefixes, r.field())
		c := int(r.u32())
		counts = append(counts, c)
		n += c
	}
	if r.bad || len(r.b) < 8*n {
		return nil, fail(stInvalid, "malformed batch")
	}
	lens := r.b[:8*n]
	r.b = r.b[8*n:]
	keys := make([][]byte, n)
	values := make([][]byte, n)
	koff := 0
	total := 0
	for i := 0; i < n; i++ {
		total += int(binary.LittleEndian.Uint32(lens[4*i:])) + int(binary.LittleEndian.Uint32(lens[4*(n+i):]))
	}
	if len(r.b) != total {
		return nil, fail(stInvalid, "malformed batch")
	}
	voff := 0
	for i := 0; i < n; i++ {
		voff += int(binary.LittleEndian.Uint32(lens[4*i:]))
	}
	i := 0
	for run, prefix := range prefixes {
		for j := 0; j < counts[run]; j, i = j+1, i+1 {
			kl := int(binary.LittleEndian.Uint32(lens[4*i:]))
			vl := int(binary.LittleEndian.Uint32(lens[4*(n+i):]))
			k := make([]byte, len(prefix)+kl)
			copy(k, prefix)
			copy(k[len(prefix):], r.b[koff:koff+kl])
			keys[i] = k
			values[i] = r.b[voff : voff+vl : voff+vl]
			koff += kl
			voff += vl
		}
	}
	out := make([]byte, n)
	classify := func(i int, item *badger.Item) error {
		same := false
		if int(item.ValueSize()) == len(values[i]) {
			if err := item.Value(func(v []byte) error {
				same = bytes.Equal(v, values[i])
				return nil
			}); err != nil {
				return err
			}
		}
		switch {
		case same:
			out[i] = 1
		case policy == policyOverwrite:
			out[i] = 0
		case policy == policySkip:
			out[i] = 2
		default:
			out[i] = 3
		}
		return nil
	}
	err := s.db.View(func(txn *badger.Txn) error {
		first := 0
		for run, prefix := range prefixes {
			lo, hi := first, first+counts[run]
			first = hi
			if err := s.lookUp(txn, prefix, keys[lo:hi], func(j int, item *badger.Item) error {
				return classify(lo+j, item)
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	wb := s.db.NewWriteBatch()
	for i, code := range out {
		if code == 0 {
			if err := wb.Set(keys[i], values[i]); err != nil {
				wb.Cancel()
				return nil, err
			}
		}
	}
	return out, wb.Flush()
}

// lookUp calls found(i, item) for each of keys (all under prefix) that exists. Keys in
// ascending order (a copy's batches are) are merged with one iterator, which seeks only
// past what it does not need, so a run of new keys costs one seek; others are looked up
// one by one.
func (s *server) lookUp(txn *badger.Txn, prefix []byte, keys [][]byte,
	found func(i int, item *badger.Item) error) error {
	ascending := true
	for i := 1; i < len(keys) && ascending; i++ {
		ascending = bytes.Compare(keys[i-1], keys[i]) < 0
	}
	if !ascending {
		for i, key := range keys {
			item, err := txn.Get(key)
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if err := found(i, item); err != nil {
				return err
			}
		}
		return nil
	}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	if len(keys) > 0 {
		it.Seek(keys[0])
	}
	for i, key := range keys {
		if it.Valid() && bytes.Compare(it.Item().Key(), key) < 0 {
			it.Seek(key)
		}
		if !it.ValidForPrefix(prefix) {
			return nil
		}
		if bytes.Equal(it.Item().Key(), key) {
			if err := found(i, it.Item()); err != nil {
				return err
			}
		}
	}
	return nil
}

// --- opening ---------------------------------------------------------------------------------

type quietLogger struct{}

func (quietLogger) Errorf(f string, a ...any) { fmt.Fprintf(os.Stderr, "badger: "+f, a...) }
func (quietLogger) Warningf(string, ...any)   {}
func (quietLogger) Infof(string, ...any)      {}
func (quietLogger) Debugf(string, ...any)     {}

func options(dir string) badger.Options {
	// lakeFS opens its directory with DefaultOptions (pkg/kv/local/driver.go). The block
	// cache (256 MiB by default) lives in memory only and does not change what is written;
	// lakekv reads and writes mostly in key order, where it hardly helps: a smaller one keeps
	// the helper's memory from growing with the database.
	o := badger.DefaultOptions(dir).WithLogger(quietLogger{}).WithBlockCacheSize(blockCache)
	// For tests only: LAKEKV_BADGER_TUNING=memtable=BYTES,compactors=N makes a small
	// directory with many level-0 tables, as a large one looks to compaction.
	for _, setting := range strings.Split(os.Getenv("LAKEKV_BADGER_TUNING"), ",") {
		name, value, _ := strings.Cut(setting, "=")
		n, err := strconv.ParseInt(value, 10, 64)
		switch {
		case err != nil:
		case name == "memtable": // values up to a twentieth of it stay in the tables
			o = o.WithMemTableSize(n).WithValueThreshold(min(o.ValueThreshold, n/20))
		case name == "compactors":
			o = o.WithNumCompactors(int(n))
		}
	}
	return o
}

const blockCache = 16 << 20

// inspect says what dir holds: stNotFound (missing, or empty), stNotBadger, or stOK.
func inspect(dir string) (byte, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return stNotFound, fmt.Errorf("directory %s does not exist", dir)
	}
	if err != nil {
		return stError, err
	}
	for _, e := range entries {
		if e.Name() == "MANIFEST" {
			return stOK, nil
		}
	}
	if len(entries) == 0 {
		return stNotFound, fmt.Errorf("directory %s is empty: no Badger database", dir)
	}
	return stNotBadger, fmt.Errorf("directory %s is not a Badger database (no MANIFEST file)", dir)
}

func lockErr(dir string) error {
	return fail(stLocked, "directory %s is locked by another program (a running lakeFS?)", dir)
}

// lockShared takes flock(LOCK_SH|LOCK_NB) on dir, as Badger's read-only open does; a running
// lakeFS holds LOCK_EX. The returned file holds the lock until closed.
func lockShared(dir string) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, lockErr(dir)
		}
		return nil, err
	}
	return f, nil
}

// copyPrefix names the private copies under tmp; ownerName is the file in each that its
// helper holds locked (flock LOCK_EX) while it runs. The kernel drops the lock when the
// helper dies, however it dies, so a copy whose owner file can be locked is abandoned.
const (
	copyPrefix = "lakekv-badger-"
	ownerName  = "lakekv.owner"
)

// own creates dir's owner file already locked: it is locked under a temporary name and
// renamed into place, so no sweeper can see it unlocked.
func own(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, ownerName+".*")
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, ownerName)); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// sweep removes the private copies under tmp that helpers killed outright (kill -9, power
// loss of the process tree) left behind: those whose owner file nobody holds. A copy without
// an owner file is left alone (its helper may be about to create it).
func sweep(tmp string) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, copyPrefix+"*"))
	for _, dir := range dirs {
		f, err := os.Open(filepath.Join(dir, ownerName))
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			_ = os.RemoveAll(dir)
		}
		f.Close()
	}
}

// privateCopy copies dir into a new directory under tmp, every file copied (with its holes;
// the kernel's copy_file_range, a clone where the file system can). Never a hard link: Badger
// empties a table file before removing it (ristretto's MmapFile.Delete truncates it), so a
// compaction in the copy would empty the source's table through a shared inode. It returns
// the copy, the file holding the copy's owner lock (close it after removing the copy) and
// the bytes copied.
func privateCopy(dir, tmp string) (string, *os.File, int64, error) {
	sweep(tmp)
	dst, err := os.MkdirTemp(tmp, copyPrefix)
	if err != nil {
		return "", nil, 0, err
	}
	owner, err := own(dst)
	if err != nil {
		return dst, nil, 0, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return dst, owner, 0, err
	}
	var copied int64
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || name == "LOCK" {
			continue
		}
		from, to := filepath.Join(dir, name), filepath.Join(dst, name)
		n, err := sparseCopy(from, to)
		if err != nil {
			return dst, owner, copied, fmt.Errorf("copying %s: %w", from, err)
		}
		copied += n
	}
	return dst, owner, copied, nil
}

// sparseCopy copies the data regions of from (SEEK_DATA/SEEK_HOLE) and gives to the same
// size, so a 128 MiB memtable log holding a few kilobytes costs a few kilobytes.
func sparseCopy(from, to string) (int64, error) {
	src, err := os.Open(from)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	info, err := src.Stat()
	if err != nil {
		return 0, err
	}
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	size := info.Size()
	var copied int64
	var off int64
	for off < size {
		data, err := src.Seek(off, unix.SEEK_DATA)
		if err != nil { // ENXIO: no data after off; EINVAL: no SEEK_DATA support
			if errors.Is(err, unix.ENXIO) {
				break
			}
			data = off
		}
		hole, err := src.Seek(data, unix.SEEK_HOLE)
		if err != nil {
			hole = size
		}
		if _, err := src.Seek(data, io.SeekStart); err != nil {
			dst.Close()
			return copied, err
		}
		if _, err := dst.Seek(data, io.SeekStart); err != nil {
			dst.Close()
			return copied, err
		}
		n, err := io.CopyN(dst, src, hole-data)
		copied += n
		if err != nil && !errors.Is(err, io.EOF) {
			dst.Close()
			return copied, err
		}
		off = hole
	}
	if err := dst.Truncate(size); err != nil {
		dst.Close()
		return copied, err
	}
	return copied, dst.Close()
}

type opened struct {
	db      *badger.DB
	cleanup func()
	note    string
	discard bool // a private copy: removed, never closed (closing would flush it)
}

func openDir(dir, mode string, create bool, tmp string) (*opened, error) {
	status, err := inspect(dir)
	if mode == "rw" {
		if status == stNotBadger {
			return nil, fail(status, "%v", err)
		}
		if status == stNotFound && !create {
			return nil, fail(status, "%v", err)
		}
		if status == stError {
			return nil, err
		}
		if status == stOK { // an existing database: a running lakeFS must not be overtaken
			lock, err := lockShared(dir)
			if err != nil {
				return nil, err
			}
			lock.Close()
		}
		db, err := badger.Open(options(dir))
		if err != nil {
			if strings.Contains(err.Error(), "Cannot acquire directory lock") {
				return nil, lockErr(dir)
			}
			return nil, err
		}
		return &opened{db: db, cleanup: func() {}, note: "direct"}, nil
	}
	if status != stOK {
		return nil, fail(status, "%v", err)
	}
	lock, err := lockShared(dir)
	if err != nil {
		return nil, err
	}
	began := time.Now()
	copyDir, owner, copied, err := privateCopy(dir, tmp)
	cleanup := func() {
		if copyDir != "" {
			os.RemoveAll(copyDir)
		}
		if owner != nil {
			owner.Close()
		}
		lock.Close()
	}
	if err != nil {
		cleanup()
		return nil, err
	}
	// No compaction in the copy: it is only read, then removed (compacting it cost the
	// reader CPU and, measured, 80 MB more memory on a 1M-entry directory).
	db, err := badger.Open(options(copyDir).WithNumCompactors(0))
	if err != nil {
		cleanup()
		return nil, err
	}
	note := fmt.Sprintf("copy %d %d", time.Since(began).Nanoseconds(), copied)
	return &opened{db: db, cleanup: cleanup, note: note, discard: true}, nil
}

func main() {
	dir := flag.String("dir", "", "the Badger directory")
	mode := flag.String("mode", "rw", "rw or ro")
	create := flag.Bool("create", false, "create the directory's database when missing")
	tmp := flag.String("tmp", os.TempDir(), "where a read-only open makes its private copy")
	flag.Parse()
	s := &server{
		snaps: map[uint32]*badger.Txn{},
		in:    bufio.NewReaderSize(os.Stdin, 1<<20),
		out:   bufio.NewWriterSize(os.Stdout, 1<<20),
	}
	if *dir == "" || (*mode != "rw" && *mode != "ro") {
		_ = s.respond(stInvalid, []byte("usage: lakekv-badger -dir DIR [-mode rw|ro] [-create]"))
		os.Exit(2)
	}
	if *mode == "ro" && os.Getenv("GOGC") == "" {
		// A read-only helper (a migration source) reads every block once: its garbage is
		// decompressed blocks and pages sent. Peak anonymous memory reading 100k / 1M
		// entries (bench/badger.py): GOGC=100 124 / 155 MB, 75: 109 / 128 MB, 50: 77 /
		// 100 MB, flat from 300k on in each case (what grows below is bounded buffers
		// filling up). 75 keeps the growth from 100k to 1M smallest (1.17x) at no measured
		// cost to scan speed. (A GOMEMLIMIT held it near 40 MB but made scans 3x slower.)
		debug.SetGCPercent(75)
	}
	o, err := openDir(*dir, *mode, *create, *tmp)
	if err != nil {
		_ = s.respond(classify(err), []byte(err.Error()))
		os.Exit(1)
	}
	s.db = o.db
	if err := s.respond(stOK, []byte(o.note)); err != nil {
		_ = o.db.Close()
		o.cleanup()
		os.Exit(1)
	}
	serveErr := s.serve()
	s.settle()
	for _, txn := range s.snaps {
		txn.Discard()
	}
	var closeErr error
	if !o.discard { // a private copy is not closed: with no compactor, a flush could wait forever
		closeErr = o.db.Close()
	}
	o.cleanup()
	if serveErr != nil || closeErr != nil {
		fmt.Fprintln(os.Stderr, "lakekv-badger:", errors.Join(serveErr, closeErr))
		os.Exit(1)
	}
	// The last word: the database is closed, or the private copy removed (Python waits).
	_ = s.respond(stOK, nil)
}
