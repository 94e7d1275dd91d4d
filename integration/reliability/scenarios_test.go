package reliability_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/integration/history"
	"github.com/sessionstore/sessionstore/integration/mongotest"
)

// failedSaying returns the failed calls that began during span, and
// fails the test unless there is one and each says that the server did
// not answer.
func failedSaying(t *testing.T, ops []history.Op, span [2]time.Time, when string) []history.Op {
	t.Helper()
	var failed []history.Op
	for _, op := range ops {
		if op.Outcome == history.Failed && within(op.Start, [][2]time.Time{span}) {
			failed = append(failed, op)
		}
	}
	if len(failed) == 0 {
		t.Errorf("no call failed %s", when)
	}
	for _, op := range failed {
		if !unreachable(op) {
			t.Errorf("a %s failed %s with an error that does not say the server did not answer: %s", op.Kind, when, op.Err)
			break
		}
	}
	return failed
}

// touchesIn counts the touches that began in [from, to).
func touchesIn(ops []history.Op, from, to time.Time) int {
	n := 0
	for _, op := range ops {
		if op.Kind == history.Touch && !op.Start.Before(from) && op.Start.Before(to) {
			n++
		}
	}
	return n
}

// unreachable reports whether a failure's error says that the server
// did not answer: no server could be selected, a connection failed or
// timed out, or no answer came before the deadline.
func unreachable(op history.Op) bool {
	for _, why := range []string{"server selection error", "connection(", "connection pool", "no answer from MongoDB"} {
		if strings.Contains(op.Err, why) {
			return true
		}
	}
	return false
}

// proxied starts a fault proxy in front of the test server.
func proxied(t *testing.T) (*mongotest.Proxy, string) {
	t.Helper()
	uri := mongotest.URI()
	p, err := mongotest.StartProxy(strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/"))
	if err != nil {
		t.Skipf("no fault proxy in front of %s: %v (the proxy reaches loopback servers only)", uri, err)
	}
	t.Cleanup(func() { _ = p.Close() })
	puri, err := p.URI(uri)
	if err != nil {
		t.Fatal(err)
	}
	return p, puri
}

// Scenario 1: the server is killed with SIGKILL mid-load and restarted on
// the same port and data after the fault. Calls fail within their
// timeouts with errors that say the server is unreachable, touches
// buffered meanwhile are written after the restart, the history holds
// and the goroutines return to their baseline.
func TestServerKilled(t *testing.T) {
	set := runSettings(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := mongotest.StartFerretDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	r := newRig(t, srv.URI(), srv.URI(), nil)
	r.start()

	wait := r.load(time.Duration(set.rounds)*(set.fault+set.load) + set.load)
	var downs [][2]time.Time
	for range set.rounds {
		time.Sleep(set.load)
		if err := srv.Kill(); err != nil {
			t.Fatal(err)
		}
		down := time.Now()
		// Touches while the server is down, besides the workload's:
		// buffered, to be written after the restart.
		for i, name := range []string{"A", "B"} {
			for k := range 20 {
				r.touch(i, name, r.seeded(20*i+k))
			}
		}
		time.Sleep(time.Until(down.Add(set.fault)))
		if err := srv.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		downs = append(downs, [2]time.Time{down, time.Now()})
		t.Logf("server down for %v", time.Since(down).Round(time.Millisecond))
	}
	st := wait()
	r.logStats(st)
	flushed := r.flush()
	res := r.check(history.Config{FlushedBy: flushed})

	ops := r.rec.Ops()
	for _, d := range downs {
		failed := failedSaying(t, ops, d, "while the server was down")
		t.Logf("while the server was down: %d calls failed, %d touches buffered; e.g. %q", len(failed), touchesIn(ops, d[0], d[1]), first(failed))
		if touchesIn(ops, d[0], d[1]) == 0 {
			t.Errorf("no touch was buffered while the server was down")
		}
	}
	if res.Checked[history.PropTouchWritten] == 0 {
		t.Error("no touch checked against the final expiries")
	}
	// The touches buffered while the server was down, alone: checked
	// against the final expiries, they were written after the restart.
	var outage []history.Op
	for _, op := range ops {
		if op.Kind != history.Touch || within(op.Start, downs) {
			outage = append(outage, op)
		}
	}
	down := history.Check(outage, nil, r.final, history.Config{Bound: bound, TTL: lifetime, TouchSlack: sessionstore.DefaultTouchGranularity, FlushedBy: flushed})
	t.Logf("touches buffered while the server was down and written after the restart: %d checked, %d violations",
		down.Checked[history.PropTouchWritten], len(down.Violations))
	if down.Checked[history.PropTouchWritten] == 0 {
		t.Error("no touch buffered while the server was down could be checked")
	}
	r.close()
}

// touch touches id on store i, named name, and records it.
func (r *rig) touch(i int, name, id string) {
	c := r.rec.Begin(name, history.Touch, id, "")
	err := r.stores[i].Touch(context.Background(), id)
	c.End(outcomeOf(err), err, nil)
}

// within reports whether t falls in one of spans.
func within(t time.Time, spans [][2]time.Time) bool {
	for _, s := range spans {
		if !t.Before(s[0]) && t.Before(s[1]) {
			return true
		}
	}
	return false
}

func first(ops []history.Op) string {
	if len(ops) == 0 {
		return ""
	}
	return ops[0].Err
}

// Scenario 2: the network to the server drops every packet for the
// fault's duration. Calls fail by their deadlines, the history holds,
// and a Close during a black hole returns by its deadline and reports
// the touches it could not write.
func TestBlackhole(t *testing.T) {
	set := runSettings(t)
	p, puri := proxied(t)
	r := newRig(t, puri, mongotest.URI(), nil)
	r.start()

	wait := r.load(time.Duration(set.rounds)*(set.fault+set.load) + set.load)
	var holes [][2]time.Time
	for range set.rounds {
		time.Sleep(set.load)
		p.Blackhole(true)
		began := time.Now()
		time.Sleep(set.fault)
		p.Blackhole(false)
		holes = append(holes, [2]time.Time{began, time.Now()})
	}
	st := wait()
	r.logStats(st)
	ops := r.rec.Ops()
	for _, h := range holes {
		failed := failedSaying(t, ops, h, "in the black hole")
		t.Logf("in the black hole: %d calls failed; e.g. %q", len(failed), first(failed))
	}
	flushed := r.flush()
	r.check(history.Config{FlushedBy: flushed})

	// Close in a black hole: store A has touches buffered for sessions
	// that exist.
	a := r.stores[0]
	const touched = 50
	for i := range touched {
		if err := a.Touch(context.Background(), r.seeded(i)); err != nil {
			t.Fatal(err)
		}
	}
	p.Blackhole(true)
	const deadline = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	began := time.Now()
	err := a.Close(ctx)
	took := time.Since(began)
	cancel()
	p.Blackhole(false)
	t.Logf("Close in the black hole returned in %v (deadline %v): %v", took.Round(time.Millisecond), deadline, err)
	if took > deadline+500*time.Millisecond {
		t.Errorf("Close took %v, past its %v deadline", took, deadline)
	}
	if err == nil || !strings.Contains(err.Error(), "touches not written") {
		t.Errorf("Close in the black hole returned %v, want it to report the touches not written", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if err := r.stores[1].Close(ctx); err != nil {
		t.Errorf("Close of store B: %v", err)
	}
	r.closed = true
}

// seeded returns the id of the i-th session the workload seeded.
func (r *rig) seeded(i int) string {
	for _, op := range r.rec.Ops() {
		if op.Kind == history.Create && op.Outcome == history.OK {
			if i == 0 {
				return op.ID
			}
			i--
		}
	}
	r.t.Fatal("not enough seeded sessions")
	return ""
}
