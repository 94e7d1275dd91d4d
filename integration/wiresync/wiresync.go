// Package wiresync puts a proxy in front of a MongoDB wire-protocol
// server that runs write commands one at a time.
//
// MongoDB applies every single-document write atomically: an update whose
// filter names a version matches only while that version is stored. The
// SQLite backend of FerretDB v1 does not: it runs an update as a query
// followed by a write by _id, so concurrent conditional updates of one
// version can all succeed (measured on v1.24.2: up to 7 of 8). Serial
// writes give back MongoDB's guarantee, so that the test server and the
// demo check the store's versioned writes as MongoDB would run them.
package wiresync

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// Wire protocol op codes and flags this proxy reads.
const (
	opMsg        = 2013
	opCompressed = 2012
	moreToCome   = 1 << 1
	headerLen    = 16
	maxMessage   = 48_000_000 + headerLen
)

// writes are the commands run one at a time.
var writes = map[string]bool{
	"insert": true, "update": true, "delete": true, "findAndModify": true,
}

// Proxy forwards connections to a backend server, one backend connection
// per client connection, and runs write commands one at a time across
// all of them.
type Proxy struct {
	ln      net.Listener
	backend string
	write   sync.Mutex // held while a write command runs

	mu     sync.Mutex // protects conns and closed
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Start listens on addr and forwards to backend.
func Start(addr, backend string) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("wiresync: %w", err)
	}
	p := &Proxy{ln: ln, backend: backend, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops the proxy, closes every connection and waits for its
// goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(client) {
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.untrack(client)
			server, err := net.Dial("tcp", p.backend)
			if err != nil {
				return
			}
			if !p.track(server) {
				return
			}
			defer p.untrack(server)
			_ = p.relay(client, server)
		}()
	}
}

// relay forwards requests from client and the replies to each, in the
// lock step a driver keeps on one connection.
func (p *Proxy) relay(client, server net.Conn) error {
	for {
		req, err := readMessage(client)
		if err != nil {
			return err
		}
		serial := isWrite(req)
		if serial {
			p.write.Lock()
		}
		err = p.exchange(req, client, server)
		if serial {
			p.write.Unlock()
		}
		if err != nil {
			return err
		}
	}
}

// exchange sends req and relays the replies it gets: none for a request
// that says more is to come, else until a reply that does not.
func (p *Proxy) exchange(req []byte, client, server net.Conn) error {
	if _, err := server.Write(req); err != nil {
		return err
	}
	if flags(req)&moreToCome != 0 {
		return nil
	}
	for {
		reply, err := readMessage(server)
		if err != nil {
			return err
		}
		if _, err := client.Write(reply); err != nil {
			return err
		}
		if flags(reply)&moreToCome == 0 {
			return nil
		}
	}
}

func readMessage(r io.Reader) ([]byte, error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := int(binary.LittleEndian.Uint32(h[:4]))
	if n < headerLen || n > maxMessage {
		return nil, errors.New("wiresync: bad message length")
	}
	msg := make([]byte, n)
	copy(msg, h[:])
	_, err := io.ReadFull(r, msg[headerLen:])
	return msg, err
}

func opCode(msg []byte) int32 { return int32(binary.LittleEndian.Uint32(msg[12:16])) }

// flags returns an OP_MSG's flag bits, or 0 for another op code.
func flags(msg []byte) uint32 {
	if opCode(msg) != opMsg || len(msg) < headerLen+4 {
		return 0
	}
	return binary.LittleEndian.Uint32(msg[headerLen : headerLen+4])
}

// isWrite reports whether msg runs a write command. A compressed message
// cannot be read, so it counts as one.
func isWrite(msg []byte) bool {
	switch opCode(msg) {
	case opCompressed:
		return true
	case opMsg:
	default:
		return false
	}
	// The body section (kind 0) holds the command document, whose first
	// element names the command. Sections of kind 1 come after it or
	// before it; skip them.
	b := msg[headerLen+4:]
	for len(b) > 5 {
		kind := b[0]
		size := int(binary.LittleEndian.Uint32(b[1:5]))
		if size < 5 || size+1 > len(b) {
			return true
		}
		if kind == 0 {
			doc := b[1 : 1+size]
			// doc: int32 length, then elements: type byte, cstring name.
			if len(doc) < 6 {
				return true
			}
			name := doc[5:]
			for i, c := range name {
				if c == 0 {
					return writes[string(name[:i])]
				}
			}
			return true
		}
		b = b[1+size:]
	}
	return true
}
