// Package mongofake is a MongoDB server for tests: it speaks enough of the
// wire protocol for the Go driver to connect to it, and keeps its
// collections in memory. It implements the commands and query semantics
// the session store sends (find, getMore, insert, update, delete,
// findAndModify, count, aggregate for CountDocuments, index commands) and
// answers every other command with CommandNotFound, so a test fails
// loudly rather than passing against semantics the fake does not have.
//
// The server is a standalone: no replica set, no transactions, no
// authentication, no compression. The only unique index is the one on
// _id.
package mongofake

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Wire protocol opcodes.
const (
	opReply = 1
	opQuery = 2004
	opMsg   = 2013
)

// OP_MSG flag bits.
const (
	flagChecksumPresent = 1 << 0
	flagMoreToCome      = 1 << 1
)

const (
	maxBSONSize    = 16 * 1024 * 1024
	maxMessageSize = 48_000_000
	maxWriteBatch  = 100_000
)

// Server is a fake MongoDB server listening on a loopback port. Its
// methods are safe for concurrent use.
type Server struct {
	ln        net.Listener
	done      chan struct{} // closed by Close
	closeOnce sync.Once
	wg        sync.WaitGroup // the accept loop and one per connection
	requestID atomic.Int32

	mu         sync.Mutex // protects the fields below
	conns      map[net.Conn]struct{}
	commands   []string
	delay      time.Duration
	fails      map[string]int32
	colls      map[string]*collection // by namespace "db.coll"
	cursors    map[int64]*cursor
	nextCursor int64
	nextConn   int32
}

// Start starts a server on 127.0.0.1 with an ephemeral port and closes it
// when the test ends (t.Cleanup). After Close returns, none of the
// server's goroutines is left.
func Start(t testing.TB) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mongofake: listen: %v", err)
	}
	s := &Server{
		ln:      ln,
		done:    make(chan struct{}),
		conns:   make(map[net.Conn]struct{}),
		fails:   make(map[string]int32),
		colls:   make(map[string]*collection),
		cursors: make(map[int64]*cursor),
	}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.Close)
	return s
}

// URI returns a connection string for the server, with directConnection
// set so that the driver talks to it as a standalone.
func (s *Server) URI() string {
	return "mongodb://" + s.ln.Addr().String() + "/?directConnection=true"
}

// Commands returns the names of the commands received so far, in order,
// handshakes and heartbeats (hello, isMaster) included.
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

// SetDelay makes the server wait d before it runs each command other than
// the handshake and heartbeats, as a slow server would. A command with
// maxTimeMS below d fails with MaxTimeMSExpired after maxTimeMS. Zero
// turns the delay off.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Fail makes every later cmd (a command name such as "find") fail with
// the server error code, without running it. Code 0 stops the failures.
// Avoid codes the driver retries or treats as a state change (such as
// NotWritablePrimary) unless that is what the test is about.
func (s *Server) Fail(cmd string, code int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == 0 {
		delete(s.fails, cmd)
		return
	}
	s.fails[cmd] = code
}

// Close stops the server, closes every connection and waits for the
// server's goroutines to end. It may be called more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		_ = s.ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
	})
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed
		}
		s.mu.Lock()
		select {
		case <-s.done:
			s.mu.Unlock()
			_ = c.Close()
			return
		default:
		}
		s.conns[c] = struct{}{}
		s.nextConn++
		id := s.nextConn
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c, id)
	}
}

// serve answers the messages of one connection until it closes or a
// message cannot be read.
func (s *Server) serve(c net.Conn, connID int32) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.Close()
	}()
	r := bufio.NewReader(c)
	for {
		msg, err := readMessage(r)
		if err != nil {
			return
		}
		reply, err := s.handle(msg, connID)
		if err != nil {
			return
		}
		if reply == nil {
			continue
		}
		if _, err := c.Write(reply); err != nil {
			return
		}
	}
}

// message is one wire protocol message, header parsed.
type message struct {
	requestID int32
	opCode    int32
	body      []byte // after the header
}

func readMessage(r io.Reader) (message, error) {
	var hdr [16]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return message{}, err
	}
	size := int32(binary.LittleEndian.Uint32(hdr[0:]))
	if size < 16 || size > maxMessageSize {
		return message{}, fmt.Errorf("mongofake: message length %d", size)
	}
	m := message{
		requestID: int32(binary.LittleEndian.Uint32(hdr[4:])),
		opCode:    int32(binary.LittleEndian.Uint32(hdr[12:])),
		body:      make([]byte, size-16),
	}
	if _, err := io.ReadFull(r, m.body); err != nil {
		return message{}, err
	}
	return m, nil
}

// command is a parsed command: its body and the document sequences of
// an OP_MSG.
type command struct {
	name string
	db   string
	body bson.Raw
	seqs map[string][]bson.Raw
}

// handle runs the command in msg and returns the wire message to send
// back, nil for none. An error means the connection must be closed.
func (s *Server) handle(msg message, connID int32) ([]byte, error) {
	switch msg.opCode {
	case opMsg:
		cmd, flags, err := parseMsg(msg.body)
		if err != nil {
			return nil, err
		}
		reply := s.run(cmd, connID)
		if flags&flagMoreToCome != 0 {
			return nil, nil // unacknowledged write: no reply
		}
		return s.msgReply(msg.requestID, reply)
	case opQuery:
		cmd, err := parseQuery(msg.body)
		if err != nil {
			return nil, err
		}
		return s.queryReply(msg.requestID, s.run(cmd, connID))
	default:
		return nil, fmt.Errorf("mongofake: unsupported opcode %d", msg.opCode)
	}
}

func parseMsg(b []byte) (command, uint32, error) {
	var cmd command
	if len(b) < 4 {
		return cmd, 0, errors.New("mongofake: short OP_MSG")
	}
	flags := binary.LittleEndian.Uint32(b)
	b = b[4:]
	if flags&flagChecksumPresent != 0 {
		if len(b) < 4 {
			return cmd, 0, errors.New("mongofake: short OP_MSG checksum")
		}
		b = b[:len(b)-4]
	}
	for len(b) > 0 {
		kind := b[0]
		b = b[1:]
		switch kind {
		case 0:
			doc, rest, err := readDoc(b)
			if err != nil {
				return cmd, 0, err
			}
			cmd.body, b = doc, rest
		case 1:
			if len(b) < 4 {
				return cmd, 0, errors.New("mongofake: short document sequence")
			}
			size := int(binary.LittleEndian.Uint32(b))
			if size < 4 || size > len(b) {
				return cmd, 0, errors.New("mongofake: bad document sequence size")
			}
			seq := b[4:size]
			b = b[size:]
			name, seq, err := readCString(seq)
			if err != nil {
				return cmd, 0, err
			}
			var docs []bson.Raw
			for len(seq) > 0 {
				var doc bson.Raw
				doc, seq, err = readDoc(seq)
				if err != nil {
					return cmd, 0, err
				}
				docs = append(docs, doc)
			}
			if cmd.seqs == nil {
				cmd.seqs = make(map[string][]bson.Raw)
			}
			cmd.seqs[name] = docs
		default:
			return cmd, 0, fmt.Errorf("mongofake: OP_MSG section kind %d", kind)
		}
	}
	if cmd.body == nil {
		return cmd, 0, errors.New("mongofake: OP_MSG without a body section")
	}
	cmd.db, _ = cmd.body.Lookup("$db").StringValueOK()
	return cmd, flags, cmd.setName()
}

func parseQuery(b []byte) (command, error) {
	var cmd command
	if len(b) < 4 {
		return cmd, errors.New("mongofake: short OP_QUERY")
	}
	ns, rest, err := readCString(b[4:])
	if err != nil {
		return cmd, err
	}
	if len(rest) < 8 {
		return cmd, errors.New("mongofake: short OP_QUERY")
	}
	doc, _, err := readDoc(rest[8:]) // after numberToSkip, numberToReturn
	if err != nil {
		return cmd, err
	}
	if q, ok := doc.Lookup("$query").DocumentOK(); ok {
		doc = q
	}
	cmd.body = doc
	db, coll, _ := cut(ns, '.')
	if coll != "$cmd" {
		return cmd, fmt.Errorf("mongofake: OP_QUERY on %q, only commands are supported", ns)
	}
	cmd.db = db
	return cmd, cmd.setName()
}

func (c *command) setName() error {
	elems, err := c.body.Elements()
	if err != nil {
		return err
	}
	if len(elems) == 0 {
		return errors.New("mongofake: empty command")
	}
	c.name = elems[0].Key()
	return nil
}

func cut(s string, sep byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func readCString(b []byte) (string, []byte, error) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), b[i+1:], nil
		}
	}
	return "", nil, errors.New("mongofake: unterminated cstring")
}

func readDoc(b []byte) (bson.Raw, []byte, error) {
	if len(b) < 5 {
		return nil, nil, errors.New("mongofake: short document")
	}
	size := int(binary.LittleEndian.Uint32(b))
	if size < 5 || size > len(b) {
		return nil, nil, errors.New("mongofake: bad document size")
	}
	doc := bson.Raw(b[:size])
	if err := doc.Validate(); err != nil {
		return nil, nil, err
	}
	return doc, b[size:], nil
}

func (s *Server) header(dst []byte, responseTo int32, opCode int32) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, 0) // length, set by finish
	dst = binary.LittleEndian.AppendUint32(dst, uint32(s.requestID.Add(1)))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(responseTo))
	return binary.LittleEndian.AppendUint32(dst, uint32(opCode))
}

func finish(dst []byte) []byte {
	binary.LittleEndian.PutUint32(dst, uint32(len(dst)))
	return dst
}

func (s *Server) msgReply(responseTo int32, reply bson.D) ([]byte, error) {
	doc, err := bson.Marshal(reply)
	if err != nil {
		return nil, err
	}
	dst := s.header(make([]byte, 0, 21+len(doc)), responseTo, opMsg)
	dst = binary.LittleEndian.AppendUint32(dst, 0) // flags
	dst = append(dst, 0)                           // section kind 0
	dst = append(dst, doc...)
	return finish(dst), nil
}

func (s *Server) queryReply(responseTo int32, reply bson.D) ([]byte, error) {
	doc, err := bson.Marshal(reply)
	if err != nil {
		return nil, err
	}
	dst := s.header(make([]byte, 0, 36+len(doc)), responseTo, opReply)
	dst = binary.LittleEndian.AppendUint32(dst, 0) // responseFlags
	dst = binary.LittleEndian.AppendUint64(dst, 0) // cursorID
	dst = binary.LittleEndian.AppendUint32(dst, 0) // startingFrom
	dst = binary.LittleEndian.AppendUint32(dst, 1) // numberReturned
	dst = append(dst, doc...)
	return finish(dst), nil
}

// handshake reports whether name is a command the driver sends to open
// and monitor connections; SetDelay leaves those alone.
func handshake(name string) bool {
	switch name {
	case "hello", "isMaster", "ismaster":
		return true
	}
	return false
}

// run records cmd, applies the injected delay and failure, and runs it.
func (s *Server) run(cmd command, connID int32) bson.D {
	s.mu.Lock()
	s.commands = append(s.commands, cmd.name)
	delay := s.delay
	code := s.fails[cmd.name]
	s.mu.Unlock()

	if delay > 0 && !handshake(cmd.name) {
		var limit time.Duration
		if ms, ok := cmd.body.Lookup("maxTimeMS").AsInt64OK(); ok && ms > 0 {
			limit = time.Duration(ms) * time.Millisecond
		}
		wait := delay
		if limit > 0 && limit < delay {
			wait = limit
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.done:
			t.Stop()
			return errorReply(&cmdError{code: codeShutdownInProgress, msg: "mongofake: the server is closing"})
		}
		if wait < delay {
			return errorReply(&cmdError{code: codeMaxTimeMSExpired, msg: "operation exceeded time limit"})
		}
	}
	if code != 0 {
		return errorReply(&cmdError{code: code, msg: "mongofake: injected failure of " + cmd.name})
	}
	reply, err := s.dispatch(cmd, connID)
	if err != nil {
		var ce *cmdError
		if !errors.As(err, &ce) {
			ce = &cmdError{code: codeBadValue, msg: err.Error()}
		}
		return errorReply(ce)
	}
	return append(reply, bson.E{Key: "ok", Value: 1.0})
}
