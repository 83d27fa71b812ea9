// The reference for bench/badger.py: plain Go on Badger's own API, the version lakeFS pins.
//
//	badger-ref read DIR         iterate every key with Badger's iterator, values read
//	badger-ref write DIR FILE   write FILE's entries (uint32 LE length + Badger key, uint32 LE
//	                            length + value, repeated) with Badger's WriteBatch
//
// Each prints one JSON line: entries, bytes and seconds (open and close included).
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func report(n, size int64, began time.Time) {
	out, _ := json.Marshal(map[string]any{
		"entries": n, "bytes": size, "seconds": time.Since(began).Seconds(),
	})
	fmt.Println(string(out))
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: badger-ref read DIR | write DIR FILE")
		os.Exit(2)
	}
	began := time.Now()
	db, err := badger.Open(badger.DefaultOptions(os.Args[2]).WithLogger(nil))
	must(err)
	var n, size int64
	switch os.Args[1] {
	case "read":
		must(db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.DefaultIteratorOptions)
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				item := it.Item()
				err := item.Value(func(v []byte) error {
					size += int64(len(item.Key()) + len(v))
					return nil
				})
				if err != nil {
					return err
				}
				n++
			}
			return nil
		}))
	case "write":
		f, err := os.Open(os.Args[3])
		must(err)
		r := bufio.NewReaderSize(f, 1<<20)
		wb := db.NewWriteBatch()
		var head [4]byte
		for {
			if _, err := io.ReadFull(r, head[:]); err == io.EOF {
				break
			} else {
				must(err)
			}
			k := make([]byte, binary.LittleEndian.Uint32(head[:]))
			_, err = io.ReadFull(r, k)
			must(err)
			_, err = io.ReadFull(r, head[:])
			must(err)
			v := make([]byte, binary.LittleEndian.Uint32(head[:]))
			_, err = io.ReadFull(r, v)
			must(err)
			must(wb.Set(k, v))
			n++
			size += int64(len(k) + len(v))
		}
		must(wb.Flush())
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
	must(db.Close())
	report(n, size, began)
}
