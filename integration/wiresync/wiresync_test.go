package wiresync

import (
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// message returns an OP_MSG running command name.
func message(name string) []byte {
	doc := []byte{0, 0, 0, 0, 0x10}
	doc = append(doc, name...)
	doc = append(doc, 0, 1, 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(doc, uint32(len(doc)))
	msg := make([]byte, headerLen+4, headerLen+5+len(doc))
	binary.LittleEndian.PutUint32(msg[12:], opMsg)
	msg = append(msg, 0)
	msg = append(msg, doc...)
	binary.LittleEndian.PutUint32(msg, uint32(len(msg)))
	return msg
}

// slowServer answers every message after a pause and records how many
// it ran at once, per command kind.
func slowServer(t *testing.T) (addr string, most func(write bool) int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var inWrite, inRead, maxWrite, maxRead atomic.Int64
	bump := func(cur, top *atomic.Int64) {
		n := cur.Add(1)
		for m := top.Load(); n > m && !top.CompareAndSwap(m, n); m = top.Load() {
		}
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				for {
					msg, err := readMessage(c)
					if err != nil {
						return
					}
					cur, top := &inRead, &maxRead
					if isWrite(msg) {
						cur, top = &inWrite, &maxWrite
					}
					bump(cur, top)
					time.Sleep(10 * time.Millisecond)
					cur.Add(-1)
					if _, err := c.Write(msg); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), func(write bool) int64 {
		if write {
			return maxWrite.Load()
		}
		return maxRead.Load()
	}
}

func TestWritesRunOneAtATime(t *testing.T) {
	backend, most := slowServer(t)
	p, err := Start("127.0.0.1:0", backend)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var wg sync.WaitGroup
	for i := range 8 {
		name := "update"
		if i%2 == 0 {
			name = "find"
		}
		wg.Go(func() {
			c, err := net.Dial("tcp", p.Addr())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for range 3 {
				if _, err := c.Write(message(name)); err != nil {
					t.Error(err)
					return
				}
				if _, err := readMessage(c); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if w, r := most(true), most(false); w != 1 || r < 2 {
		t.Fatalf("at most %d writes and %d reads ran at once; want 1 write, reads in parallel", w, r)
	}
}

func TestIsWrite(t *testing.T) {
	for name, want := range map[string]bool{"insert": true, "update": true, "delete": true, "findAndModify": true, "find": false, "hello": false} {
		if got := isWrite(message(name)); got != want {
			t.Errorf("isWrite(%s) = %t", name, got)
		}
	}
	if !isWrite(message("update")[:headerLen+6]) {
		t.Error("a truncated message is not treated as a write")
	}
}
