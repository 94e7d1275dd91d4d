package mongotest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Proxy is a TCP proxy in front of a loopback server that injects network
// faults, so tests can see how a client behaves when MongoDB is slow,
// unreachable or cut off. It forwards bytes unchanged until a fault mode is
// switched on: [Proxy.SetLatency], [Proxy.Blackhole], [Proxy.SetCloseAfter],
// [Proxy.LoseReplies] and the one-shot [Proxy.ResetAll]. Modes can be changed at any time, from
// any goroutine, and apply to open and new connections alike.
//
// A Proxy owns one goroutine accepting connections and two per open
// connection; [Proxy.Close] stops them all. Its methods are safe for
// concurrent use.
type Proxy struct {
	target string         // loopback host:port that connections are forwarded to
	ln     net.Listener   // accepts clients
	done   chan struct{}  // closed by Close
	wg     sync.WaitGroup // counts the accept loop and every connection's goroutines

	mu         sync.Mutex         // protects the fields below
	links      map[*link]struct{} // open connections
	closed     bool               // Close was called
	latency    time.Duration      // delay before each forwarded chunk
	blocked    chan struct{}      // non-nil while blackholed; closed when lifted
	closeAfter int64              // bytes each connection may still send before it is cut; 0: off
	lose       bool               // replies are dropped and their connection reset
}

// link is one proxied connection: a client and its upstream connection.
type link struct {
	client, server *net.TCPConn
	gone           chan struct{} // closed when the link is closed
	once           sync.Once     // closes gone and both connections once

	// Protected by the proxy's mu:
	budget int64 // bytes still forwarded from client to server before a cut; negative: no limit
	open   int   // directions not yet ended
}

// close closes both connections of l; with reset, the close sends a TCP
// RST instead of a FIN.
func (l *link) close(reset bool) {
	l.once.Do(func() {
		close(l.gone)
		for _, c := range []*net.TCPConn{l.client, l.server} {
			if reset {
				_ = c.SetLinger(0)
			}
			_ = c.Close()
		}
	})
}

// StartProxy starts a proxy listening on a free port of 127.0.0.1 that
// forwards each connection it accepts to target, a host:port whose host is
// a loopback IP address or "localhost". Any other target is an error: the
// proxy is for tests and never reaches beyond this machine. Call
// [Proxy.Close] to stop it.
func StartProxy(target string) (*Proxy, error) {
	addr, err := loopbackTarget(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("mongotest: proxy: %w", err)
	}
	p := &Proxy{
		target: addr,
		ln:     ln,
		done:   make(chan struct{}),
		links:  make(map[*link]struct{}),
	}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// loopbackTarget checks that target names a loopback address and returns
// it with the host resolved to an IP address, so that every dial goes to
// the address that was checked.
func loopbackTarget(target string) (string, error) {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return "", fmt.Errorf("mongotest: proxy target %q: %w", target, err)
	}
	if strings.EqualFold(host, "localhost") {
		ips, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", host)
		if err != nil || len(ips) == 0 {
			return "", fmt.Errorf("mongotest: proxy target %q: cannot resolve localhost: %v", target, err)
		}
		for _, ip := range ips {
			if !ip.Unmap().IsLoopback() {
				return "", fmt.Errorf("mongotest: proxy target %q: localhost resolves to %v, which is not a loopback address", target, ip)
			}
		}
		host = ips[0].Unmap().String()
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Unmap().IsLoopback() {
		return "", fmt.Errorf("mongotest: proxy target %q: host is not a loopback address", target)
	}
	return net.JoinHostPort(ip.Unmap().String(), port), nil
}

// Addr returns the host:port the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URI returns base, a mongodb:// connection string, with its hosts replaced
// by the proxy's address and directConnection=true set, so that the driver
// talks to the proxy only instead of discovering the servers behind it. It
// keeps the credentials, database and other options of base. A
// mongodb+srv:// URI, which names hosts through DNS, is an error.
func (p *Proxy) URI(base string) (string, error) {
	rest, ok := strings.CutPrefix(base, "mongodb://")
	if !ok {
		return "", errors.New("mongotest: proxy: URI does not start with mongodb://")
	}
	// The hosts end at the first "/" (or "?" without a path); userinfo,
	// which must percent-encode both, ends at the last "@" before them.
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	userinfo := ""
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		userinfo = authority[:at+1]
	}
	path, query, _ := strings.Cut(tail, "?")
	if path == "" {
		path = "/"
	}
	var opts []string
	for opt := range strings.SplitSeq(query, "&") {
		key, _, _ := strings.Cut(opt, "=")
		if opt != "" && !strings.EqualFold(key, "directConnection") {
			opts = append(opts, opt)
		}
	}
	opts = append(opts, "directConnection=true")
	return "mongodb://" + userinfo + p.Addr() + path + "?" + strings.Join(opts, "&"), nil
}

// SetLatency delays every chunk of bytes forwarded, in either direction,
// by d; 0 (the initial setting) forwards at once. A request and its reply
// are thus delayed by at least 2*d.
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latency = max(d, 0)
}

// Blackhole, when on, stops forwarding: the proxy still accepts new
// connections and keeps open ones open, but passes no byte in either
// direction, as when the network drops every packet. Bytes received
// meanwhile are held and forwarded once it is turned off. Off is the
// initial setting.
func (p *Proxy) Blackhole(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case on && p.blocked == nil:
		p.blocked = make(chan struct{})
	case !on && p.blocked != nil:
		close(p.blocked)
		p.blocked = nil
	}
}

// SetCloseAfter cuts every connection, open or new, once it has forwarded
// n more bytes from client to server: the proxy forwards exactly n bytes
// (splitting a chunk if need be) and then closes both sides, so the server
// sees a truncated message and the client an EOF or reset. Each connection
// counts its n bytes from this call or from its start, whichever is later.
// n <= 0 turns cutting off, the initial setting.
func (p *Proxy) SetCloseAfter(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closeAfter = max(int64(n), 0)
	for l := range p.links {
		l.budget = p.newBudget()
	}
}

// newBudget returns the budget of a link starting now. p.mu must be held.
func (p *Proxy) newBudget() int64 {
	if p.closeAfter == 0 {
		return -1
	}
	return p.closeAfter
}

// LoseReplies, when on, forwards requests as usual but never delivers a
// reply: the first bytes the server sends back on a connection reset it,
// to both sides. The server has done what it was asked and the client
// sees a reset, as when an acknowledgement is lost on the network. Off is
// the initial setting.
func (p *Proxy) LoseReplies(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lose = on
}

// ResetAll aborts every open connection with a TCP RST, to its client and
// to the server. New connections are accepted as before.
func (p *Proxy) ResetAll() {
	for _, l := range p.takeLinks() {
		l.close(true)
	}
}

// Close stops accepting connections, closes every open one and returns
// once all of the proxy's goroutines have exited. Later calls do nothing
// but wait likewise. It returns the error of closing the listener, if any,
// on the first call.
func (p *Proxy) Close() error {
	p.mu.Lock()
	first := !p.closed
	if first {
		p.closed = true
		close(p.done)
	}
	p.mu.Unlock()
	var err error
	if first {
		err = p.ln.Close()
	}
	for _, l := range p.takeLinks() {
		l.close(false)
	}
	p.wg.Wait()
	return err
}

// takeLinks removes and returns every open link.
func (p *Proxy) takeLinks() []*link {
	p.mu.Lock()
	defer p.mu.Unlock()
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
		delete(p.links, l)
	}
	return links
}

// serve accepts connections until the listener is closed.
func (p *Proxy) serve() {
	defer p.wg.Done()
	// Cancelled when Close closes the listener, which aborts pending dials.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // closed; a proxy for tests does not retry other errors
		}
		p.wg.Add(1)
		go p.connect(ctx, c.(*net.TCPConn))
	}
}

// connect dials the target for client and starts forwarding.
func (p *Proxy) connect(ctx context.Context, client *net.TCPConn) {
	defer p.wg.Done()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", p.target)
	if err != nil {
		// The server is down: the client sees its connection refused as
		// well as a proxy can tell it, by a reset.
		_ = client.SetLinger(0)
		_ = client.Close()
		return
	}
	l := &link{client: client, server: c.(*net.TCPConn), gone: make(chan struct{}), open: 2}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		l.close(false)
		return
	}
	l.budget = p.newBudget()
	p.links[l] = struct{}{}
	p.wg.Add(2)
	p.mu.Unlock()
	go p.forward(l, l.client, l.server, true)
	go p.forward(l, l.server, l.client, false)
}

// forward copies from src to dst until src ends, applying the fault modes
// to each chunk. upstream says that src is the client.
func (p *Proxy) forward(l *link, src, dst *net.TCPConn, upstream bool) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.send(l, dst, buf[:n], upstream) {
			p.drop(l)
			return
		}
		if err == io.EOF {
			// Pass the half-close on: the other direction may still
			// have bytes to deliver.
			_ = dst.CloseWrite()
			p.mu.Lock()
			l.open--
			last := l.open == 0
			p.mu.Unlock()
			if last {
				p.drop(l)
			}
			return
		}
		if err != nil {
			p.drop(l)
			return
		}
	}
}

// send forwards chunk to dst after the configured delay, waiting while the
// proxy is blackholed. It reports whether forwarding should go on.
func (p *Proxy) send(l *link, dst *net.TCPConn, chunk []byte, upstream bool) bool {
	p.mu.Lock()
	latency := p.latency
	p.mu.Unlock()
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-l.gone:
			t.Stop()
			return false
		case <-p.done:
			t.Stop()
			return false
		}
	}
	for {
		p.mu.Lock()
		blocked := p.blocked
		p.mu.Unlock()
		if blocked == nil {
			break
		}
		select {
		case <-blocked:
		case <-l.gone:
			return false
		case <-p.done:
			return false
		}
	}
	if !upstream {
		p.mu.Lock()
		lose := p.lose
		p.mu.Unlock()
		if lose {
			l.close(true)
			return false
		}
	}
	cut := false
	if upstream {
		p.mu.Lock()
		if l.budget >= 0 && int64(len(chunk)) >= l.budget {
			chunk, cut = chunk[:l.budget], true
		} else if l.budget >= 0 {
			l.budget -= int64(len(chunk))
		}
		p.mu.Unlock()
	}
	if _, err := dst.Write(chunk); err != nil {
		return false
	}
	if cut {
		l.close(false)
		return false
	}
	return true
}

// drop closes l and forgets it. A link is dropped when one direction
// fails or is cut, or when both have ended with a clean EOF.
func (p *Proxy) drop(l *link) {
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
	l.close(false)
}
