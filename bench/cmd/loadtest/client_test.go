package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore/bench"
	"github.com/sessionstore/sessionstore/examples/demo/app"
)

// TestRawClient checks that the load generator's client sends the cookie,
// reads keep-alive responses one after another, dials again after the
// server closes the connection, and fails on any status but 200.
func TestRawClient(t *testing.T) {
	var cookies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cookies = append(cookies, r.Header.Get("Cookie"))
		switch r.URL.Path {
		case "/":
			if r.Header.Get("Cookie") == "close=1" {
				w.Header().Set("Connection", "close")
			}
			w.Write([]byte("OK"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	rc := newRawClient(5 * time.Second)
	defer rc.close()
	ctx := context.Background()
	for _, ck := range []string{"a=1", "close=1", "b=2", ""} {
		if err := rc.do(ctx, addr, request(addr, ck)); err != nil {
			t.Fatalf("request with cookie %q: %v", ck, err)
		}
	}
	if strings.Join(cookies, ",") != "a=1,close=1,b=2," {
		t.Errorf("the server saw cookies %q", cookies)
	}
	notFound := []byte("GET /missing HTTP/1.1\r\nHost: " + addr + "\r\n\r\n")
	var status errStatus
	if err := rc.do(ctx, addr, notFound); !errors.As(err, &status) || !strings.Contains(err.Error(), "404") {
		t.Errorf("a 404 answered %v, want a status error", err)
	}
}

// TestFloorSetsTheCookieBack checks the returning sessions' floor: the
// cookie it got goes back with the demo's attributes.
func TestFloorSetsTheCookieBack(t *testing.T) {
	ck := signedCookies(1)[0]
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(ck)
	rec := httptest.NewRecorder()
	bench.Floor("connect.sid", app.Lifetime).ServeHTTP(rec, req)
	got := rec.Result().Cookies()
	if rec.Body.String() != "OK" || len(got) != 1 || got[0].Value != ck.Value || !got[0].HttpOnly ||
		got[0].SameSite != http.SameSiteStrictMode || got[0].MaxAge != int(app.Lifetime/time.Second) || got[0].Path != "/" {
		t.Errorf("floor answered %q with cookies %v", rec.Body.String(), got)
	}
}

// TestSummary checks the medians and the verdicts the summary prints.
func TestSummary(t *testing.T) {
	run := func(name string, requests int64, d time.Duration, commands int) result {
		return result{name: name, requests: requests, elapsed: d, commands: map[string]int{"update": commands},
			used: usage{mallocs: uint64(requests) * 10, cpu: time.Duration(requests) * time.Microsecond}}
	}
	runs := map[string][]result{
		"floor":     {run("floor", 1000, time.Second, 0), run("floor", 1000, 2*time.Second, 0), run("floor", 1000, time.Second, 0)},
		"returning": {run("returning", 850, time.Second, 1), run("returning", 100, time.Second, 1), run("returning", 900, time.Second, 1)},
	}
	var b strings.Builder
	summarize(&b, runs, []string{"floor", "returning"})
	out := b.String()
	for _, want := range []string{
		"medians over 3 rounds",
		"returning / floor: 0.85x requests/s (target >= 0.8x: PASS)",
		"returning: 0.0012 commands/request (target <= 0.01: PASS)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if line := runs["floor"][0].benchLine(); !strings.HasPrefix(line, "BenchmarkLoad/floor-") || !strings.Contains(line, "\t1000 req/s\t10.0 allocs/req\t1000 cpu-ns/req\t0.00000 commands/req") {
		t.Errorf("benchmark line %q", line)
	}
	if median([]float64{3, 1, 2, 10}) != 2.5 || median(nil) != 0 {
		t.Error("median")
	}
}
