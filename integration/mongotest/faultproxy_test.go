package mongotest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionstore/sessionstore/integration/mongotest"
)

// server is a TCP server on 127.0.0.1 for the proxy tests. Each connection
// runs handle; Close closes the listener and every connection and waits
// for the handlers.
type server struct {
	ln    net.Listener
	wg    sync.WaitGroup // counts the accept loop and handlers
	mu    sync.Mutex     // protects conns
	conns []net.Conn
}

func startServer(t *testing.T, handle func(net.Conn)) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *server) close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func echo(c net.Conn) { _, _ = io.Copy(c, c) }

// startProxy starts a proxy to s, closed when the test ends.
func startProxy(t *testing.T, s *server) *mongotest.Proxy {
	t.Helper()
	p, err := mongotest.StartProxy(s.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, p *mongotest.Proxy) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg to c and reads it back within timeout.
func roundTrip(c net.Conn, msg string, timeout time.Duration) error {
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if string(got) != msg {
		return errors.New("echoed " + string(got) + ", want " + msg)
	}
	return nil
}

// proxyGoroutines returns the stacks of goroutines running the proxy's
// code.
func proxyGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "mongotest.(*Proxy)") {
			found = append(found, g)
		}
	}
	return found
}

func TestProxyForwards(t *testing.T) {
	p := startProxy(t, startServer(t, echo))
	c := dial(t, p)
	for _, msg := range []string{"hello", strings.Repeat("x", 200<<10)} {
		if err := roundTrip(c, msg, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

func TestProxyLatency(t *testing.T) {
	p := startProxy(t, startServer(t, echo))
	c := dial(t, p)
	if err := roundTrip(c, "warm", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	const d = 50 * time.Millisecond
	p.SetLatency(d)
	start := time.Now()
	if err := roundTrip(c, "slow", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// Once on the way in, once on the way back.
	if rtt := time.Since(start); rtt < 2*d {
		t.Errorf("round trip took %v with latency %v, want at least %v", rtt, d, 2*d)
	}
	p.SetLatency(0)
	if err := roundTrip(c, "fast", 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestProxyBlackhole(t *testing.T) {
	p := startProxy(t, startServer(t, echo))
	old := dial(t, p)
	if err := roundTrip(old, "before", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Blackhole(true)
	// A new connection is accepted, but neither it nor the open one gets
	// an answer.
	fresh := dial(t, p)
	for _, c := range []net.Conn{old, fresh} {
		err := roundTrip(c, "lost", 200*time.Millisecond)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("round trip while blackholed: %v, want a timeout", err)
		}
	}
	p.Blackhole(false)
	// What was held arrives, and traffic flows again.
	for _, c := range []net.Conn{old, fresh} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got := make([]byte, len("lost"))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "lost" {
			t.Fatalf("after the blackhole read %q, %v, want the held bytes", got, err)
		}
		if err := roundTrip(c, "after", 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

func TestProxyResetAll(t *testing.T) {
	p := startProxy(t, startServer(t, echo))
	c := dial(t, p)
	if err := roundTrip(c, "ping", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.ResetAll()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) && err != io.EOF {
		t.Fatalf("read after ResetAll: %v, want ECONNRESET or EOF", err)
	}
	if err := roundTrip(dial(t, p), "again", 5*time.Second); err != nil {
		t.Fatalf("new connection after ResetAll: %v", err)
	}
}

// With LoseReplies on, a request reaches the server but its reply does
// not reach the client, whose connection is reset; off again, new
// connections work.
func TestProxyLoseReplies(t *testing.T) {
	got := make(chan string, 1)
	p := startProxy(t, startServer(t, func(c net.Conn) {
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err == nil {
			got <- string(buf)
			_, _ = c.Write(buf)
		}
		_, _ = io.Copy(io.Discard, c)
	}))
	p.LoseReplies(true)
	c := dial(t, p)
	err := roundTrip(c, "ping", 5*time.Second)
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("round trip with replies lost: %v, want a reset", err)
	}
	select {
	case msg := <-got:
		if msg != "ping" {
			t.Fatalf("server got %q", msg)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the request never reached the server")
	}
	p.LoseReplies(false)
	if err := roundTrip(dial(t, p), "pong", 5*time.Second); err != nil {
		t.Fatalf("after LoseReplies(false): %v", err)
	}
}

func TestProxyCloseAfter(t *testing.T) {
	received := make(chan int, 4)
	// The server acknowledges the first 5 bytes and counts what reaches
	// it before the connection ends.
	s := startServer(t, func(c net.Conn) {
		n, err := io.ReadFull(c, make([]byte, 5))
		if err == nil {
			io.WriteString(c, "k")
		}
		m, _ := io.Copy(io.Discard, c)
		received <- n + int(m)
	})
	p := startProxy(t, s)

	old := dial(t, p)
	if _, err := io.WriteString(old, "12345"); err != nil {
		t.Fatal(err)
	}
	old.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(old, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	p.SetCloseAfter(3)
	fresh := dial(t, p)
	for _, c := range []net.Conn{old, fresh} {
		// Written in one chunk, so the proxy must split it.
		if _, err := c.Write(bytes.Repeat([]byte("a"), 100)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) && err != io.EOF {
			t.Fatalf("read from a cut connection: %v, want EOF or ECONNRESET", err)
		}
	}
	got := map[int]bool{<-received: true, <-received: true}
	if want := map[int]bool{5 + 3: true, 3: true}; len(got) != 2 || !got[8] || !got[3] {
		t.Errorf("server received %v bytes, want %v", got, want)
	}

	p.SetCloseAfter(0)
	c := dial(t, p)
	if _, err := c.Write(bytes.Repeat([]byte("b"), 100)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if n := <-received; n != 100 {
		t.Errorf("with cutting off, server received %d bytes, want 100", n)
	}
}

func TestProxyCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	s := startServer(t, echo)
	p, err := mongotest.StartProxy(s.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	// Connections in every state: idle, waiting out a delay, held by the
	// blackhole.
	idle := dial(t, p)
	if err := roundTrip(idle, "idle", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.SetLatency(time.Hour)
	io.WriteString(dial(t, p), "delayed")
	time.Sleep(20 * time.Millisecond)
	p.SetLatency(0)
	p.Blackhole(true)
	io.WriteString(dial(t, p), "held")
	time.Sleep(20 * time.Millisecond)
	if len(proxyGoroutines()) == 0 {
		t.Fatal("found no proxy goroutines to stop")
	}

	closed := make(chan error)
	go func() { closed <- p.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if g := proxyGoroutines(); len(g) > 0 {
		t.Fatalf("%d proxy goroutines left after Close:\n%s", len(g), strings.Join(g, "\n\n"))
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Error("proxy still accepts connections after Close")
	}
	// The count includes the echo server, which closes now; it may take a
	// moment for exited goroutines to leave the count.
	s.close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}
}

func TestProxyModesConcurrently(t *testing.T) {
	p := startProxy(t, startServer(t, echo))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				c, err := net.Dial("tcp", p.Addr())
				if err != nil {
					return
				}
				_ = roundTrip(c, "x", 20*time.Millisecond)
				c.Close()
			}
		})
	}
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			p.SetLatency(time.Duration(i%3) * time.Millisecond)
			p.Blackhole(i%4 == 1)
			p.SetCloseAfter(i % 5)
			if i%7 == 0 {
				p.ResetAll()
			}
			time.Sleep(time.Millisecond)
		}
	})
	wg.Wait()
	p.Blackhole(false)
	p.SetCloseAfter(0)
	p.SetLatency(0)
	if err := roundTrip(dial(t, p), "calm", 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestStartProxyRefusesRemoteTargets(t *testing.T) {
	for _, target := range []string{"10.1.2.3:27017", "192.0.2.1:1", "example.com:27017", "[2001:db8::1]:27017", "0.0.0.0:27017", "127.0.0.1", "nonsense"} {
		if p, err := mongotest.StartProxy(target); err == nil {
			p.Close()
			t.Errorf("StartProxy(%q) succeeded", target)
		}
	}
	for _, target := range []string{"127.0.0.1:27017", "127.5.6.7:1", "[::1]:27017", "localhost:27017"} {
		p, err := mongotest.StartProxy(target)
		if err != nil {
			t.Errorf("StartProxy(%q): %v", target, err)
			continue
		}
		p.Close()
	}
}

func TestProxyURI(t *testing.T) {
	p := startProxy(t, startServer(t, echo))
	a := p.Addr()
	for _, tc := range []struct{ base, want string }{
		{"mongodb://127.0.0.1:27017", "mongodb://" + a + "/?directConnection=true"},
		{"mongodb://127.0.0.1:27017/", "mongodb://" + a + "/?directConnection=true"},
		{"mongodb://u:p%40ss@h1:1,h2:2/db?replicaSet=rs0&directConnection=false&w=1",
			"mongodb://u:p%40ss@" + a + "/db?replicaSet=rs0&w=1&directConnection=true"},
		{"mongodb://localhost?appName=x", "mongodb://" + a + "/?appName=x&directConnection=true"},
	} {
		got, err := p.URI(tc.base)
		if err != nil || got != tc.want {
			t.Errorf("URI(%q) = %q, %v, want %q", tc.base, got, err, tc.want)
		}
	}
	if _, err := p.URI("mongodb+srv://cluster.example.com/"); err == nil {
		t.Error("URI accepted a mongodb+srv URI")
	}
}

// TestProxyMongo drives the driver through the proxy to the test server.
func TestProxyMongo(t *testing.T) {
	uri := mongotest.URI()
	rest, ok := strings.CutPrefix(uri, "mongodb://")
	if !ok {
		t.Skipf("server URI %q is not mongodb://", uri)
	}
	host := rest[:strings.IndexAny(rest+"/", "/?")]
	host = host[strings.LastIndexByte(host, '@')+1:]
	if strings.Contains(host, ",") {
		t.Skipf("server URI names several hosts")
	}
	p, err := mongotest.StartProxy(host)
	if err != nil {
		t.Skipf("server is not on loopback: %v", err)
	}
	defer p.Close()
	proxied, err := p.URI(uri)
	if err != nil {
		t.Fatal(err)
	}
	client, err := mongo.Connect(options.Client().ApplyURI(proxied).SetServerSelectionTimeout(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	ping := func(timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return client.Ping(ctx, nil)
	}
	if err := ping(10 * time.Second); err != nil {
		t.Fatalf("ping through the proxy: %v", err)
	}

	p.Blackhole(true)
	if err := ping(300 * time.Millisecond); err == nil {
		t.Error("ping through a blackhole succeeded")
	}
	p.Blackhole(false)
	if err := ping(10 * time.Second); err != nil {
		t.Fatalf("ping after the blackhole: %v", err)
	}

	p.ResetAll()
	_ = ping(5 * time.Second) // may fail, or succeed on a new connection
	if err := ping(10 * time.Second); err != nil {
		t.Fatalf("ping after ResetAll: %v", err)
	}
}
