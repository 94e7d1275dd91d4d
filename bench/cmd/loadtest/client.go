package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// rawClient sends requests over keep-alive HTTP/1.1 connections of its
// own, one request at a time on each, with the request bytes formatted in
// advance: it does as little work per request as wrk, so that the
// process's cores go to the server under test. A rawClient is used by
// one goroutine.
type rawClient struct {
	conns   map[string]*rawConn // by address
	timeout time.Duration       // bounds each request
}

type rawConn struct {
	c net.Conn
	r *bufio.Reader
}

func newRawClient(timeout time.Duration) *rawClient {
	return &rawClient{conns: map[string]*rawConn{}, timeout: timeout}
}

// request returns the bytes of GET / to host, with the Cookie header
// cookie ("name=value") if it is not empty.
func request(host, cookie string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET / HTTP/1.1\r\nHost: %s\r\n", host)
	if cookie != "" {
		fmt.Fprintf(&b, "Cookie: %s\r\n", cookie)
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// do sends req to addr, reads the response, and fails unless it is
// 200 OK. A broken connection is dialled again once.
func (rc *rawClient) do(ctx context.Context, addr string, req []byte) error {
	for attempt := 0; ; attempt++ {
		conn, err := rc.conn(ctx, addr)
		if err != nil {
			return err
		}
		err = conn.roundTrip(req, rc.timeout)
		if err == nil {
			return nil
		}
		conn.c.Close()
		delete(rc.conns, addr)
		var status errStatus
		if errors.As(err, &status) || attempt > 0 || ctx.Err() != nil {
			return err
		}
	}
}

func (rc *rawClient) conn(ctx context.Context, addr string) (*rawConn, error) {
	if c := rc.conns[addr]; c != nil {
		return c, nil
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	conn := &rawConn{c: c, r: bufio.NewReaderSize(c, 4096)}
	rc.conns[addr] = conn
	return conn, nil
}

// close closes every connection.
func (rc *rawClient) close() {
	for addr, c := range rc.conns {
		c.c.Close()
		delete(rc.conns, addr)
	}
}

// errStatus is a response other than 200 OK.
type errStatus string

func (e errStatus) Error() string { return "status " + string(e) }

var (
	crlf          = []byte("\r\n")
	contentLength = []byte("content-length:")
)

// roundTrip writes req and reads one response, which must be 200 OK with
// a Content-Length.
func (c *rawConn) roundTrip(req []byte, timeout time.Duration) error {
	if err := c.c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := c.c.Write(req); err != nil {
		return err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return err
	}
	var status errStatus
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		status = errStatus(bytes.TrimSpace(line))
	}
	length := -1
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if bytes.Equal(line, crlf) {
			break
		}
		if len(line) > len(contentLength) && bytes.EqualFold(line[:len(contentLength)], contentLength) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(line[len(contentLength):]))); err != nil {
				return fmt.Errorf("bad Content-Length: %q", line)
			}
		}
	}
	if length < 0 {
		return errors.New("a response without Content-Length")
	}
	if _, err := c.r.Discard(length); err != nil {
		return err
	}
	if status != "" {
		return status
	}
	return nil
}
