package scsstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/integration/mongotest"
	"github.com/sessionstore/sessionstore/scsstore"
)

// A SessionManager over the adapter: put, read back with the cookie,
// renew the token, destroy.
func TestSessionManager(t *testing.T) {
	coll := mongotest.Collection(t)
	rec := record(scsstore.New(newSessions(t, coll, nil), nil))
	sm := scs.New()
	sm.Store = rec
	a := newApp(t, sm)

	a.do("/put", "k", "user", "v", "ada")
	token := a.token()
	if token == "" {
		t.Fatal("no session cookie after a put")
	}
	if got := a.do("/get", "k", "user"); got != "ada" {
		t.Fatalf("second request read %q, want ada", got)
	}
	if got := a.client().do("/get", "k", "user"); got != "" {
		t.Fatalf("a request without the cookie read %q", got)
	}

	// The document holds scs's bytes as they are, expiring when scs said.
	exp, payload := stored(t, coll, token)
	if want := rec.lastExpiry(t, token).Truncate(time.Millisecond); !exp.Equal(want) {
		t.Errorf("expires = %v, want scs's expiry %v", exp, want)
	}
	_, values, err := sm.Codec.Decode(payload)
	if err != nil || values["user"] != "ada" {
		t.Errorf("stored payload decodes to %v, %v; want user=ada", values, err)
	}

	a.do("/renew")
	renewed := a.token()
	if renewed == "" || renewed == token {
		t.Fatalf("token after RenewToken = %q, was %q", renewed, token)
	}
	if got := a.do("/get", "k", "user"); got != "ada" {
		t.Fatalf("after RenewToken read %q, want ada", got)
	}
	if _, found, err := rec.FindCtx(bg(t), token); found || err != nil {
		t.Errorf("Find(old token) = found %t, %v; want not found, nil", found, err)
	}
	if _, ok := mongotest.RawDoc(t, coll, token); ok {
		t.Error("the old token's document is still there")
	}

	a.do("/destroy")
	if got := a.token(); got != "" {
		t.Errorf("cookie after Destroy = %q, want none", got)
	}
	if _, found, err := rec.FindCtx(bg(t), renewed); found || err != nil {
		t.Errorf("Find(destroyed) = found %t, %v; want not found, nil", found, err)
	}
	if _, ok := mongotest.RawDoc(t, coll, renewed); ok {
		t.Error("the destroyed session's document is still there")
	}
	if got := a.do("/get", "k", "user"); got != "" {
		t.Errorf("after Destroy read %q, want nothing", got)
	}
}

// Find reports missing, malformed and expired sessions as not found,
// without an error; Delete of a missing session is not an error.
func TestNotFound(t *testing.T) {
	coll := mongotest.Collection(t)
	clk := mongotest.NewClock()
	st := scsstore.New(newSessions(t, coll, &sessionstore.Options[[]byte]{Clock: clk}), nil)
	ctx := bg(t)
	for _, token := range []string{"missing", "", "bad\xffutf8", string(make([]byte, 600))} {
		if b, found, err := st.FindCtx(ctx, token); b != nil || found || err != nil {
			t.Errorf("FindCtx(%q) = %v, %t, %v; want nil, false, nil", token, b, found, err)
		}
		if err := st.DeleteCtx(ctx, token); err != nil {
			t.Errorf("DeleteCtx(%q) = %v", token, err)
		}
	}

	// A document written by something else: not an scs session.
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "alien"}, {Key: "expires", Value: time.Now().Add(time.Hour)}, {Key: "session", Value: "text"}}); err != nil {
		t.Fatal(err)
	}
	if _, found, err := st.FindCtx(ctx, "alien"); found || err != nil {
		t.Errorf("FindCtx(alien) = %t, %v; want false, nil", found, err)
	}

	if err := st.CommitCtx(ctx, "short", []byte("s"), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if b, found, err := st.FindCtx(ctx, "short"); !found || err != nil || string(b) != "s" {
		t.Fatalf("FindCtx(short) = %q, %t, %v", b, found, err)
	}
	clk.Add(2 * time.Minute)
	if b, found, err := st.FindCtx(ctx, "short"); b != nil || found || err != nil {
		t.Errorf("FindCtx(expired) = %v, %t, %v; want nil, false, nil", b, found, err)
	}
	// The non-context methods behave the same.
	if _, found, err := st.Find("short"); found || err != nil {
		t.Errorf("Find(expired) = %t, %v", found, err)
	}
}

// Through scs: a session past its Lifetime is gone on the next request.
func TestExpiredSessionIsNew(t *testing.T) {
	coll := mongotest.Collection(t)
	clk := mongotest.NewClock()
	sm := scs.New()
	sm.Lifetime = time.Minute
	sm.Store = scsstore.New(newSessions(t, coll, &sessionstore.Options[[]byte]{Clock: clk}), nil)
	a := newApp(t, sm)
	a.do("/put", "k", "n", "v", "1")
	if got := a.do("/get", "k", "n"); got != "1" {
		t.Fatalf("read %q before expiry, want 1", got)
	}
	clk.Add(2 * time.Minute)
	if got := a.do("/get", "k", "n"); got != "" {
		t.Fatalf("read %q after expiry, want nothing", got)
	}
}

// AllCtx lists the live sessions, and scs's Iterate sees them.
func TestAll(t *testing.T) {
	coll := mongotest.Collection(t)
	clk := mongotest.NewClock()
	st := scsstore.New(newSessions(t, coll, &sessionstore.Options[[]byte]{Clock: clk}), nil)
	sm := scs.New()
	sm.Store = st
	a := newApp(t, sm)
	want := map[string]string{}
	for i := range 3 {
		c := a.client()
		c.do("/put", "k", "n", "v", fmt.Sprint(i))
		want[c.token()] = fmt.Sprint(i)
	}
	ctx := bg(t)
	if err := st.CommitCtx(ctx, "doomed", []byte("d"), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if all, err := st.AllCtx(ctx); err != nil || len(all) != 4 {
		t.Fatalf("AllCtx = %d sessions, %v; want 4", len(all), err)
	}
	clk.Add(2 * time.Minute) // "doomed" expires

	all, err := st.AllCtx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, exp := slices.Sorted(maps.Keys(all)), slices.Sorted(maps.Keys(want)); !slices.Equal(got, exp) {
		t.Fatalf("AllCtx tokens = %q, want %q", got, exp)
	}
	got := map[string]string{}
	err = sm.Iterate(ctx, func(ctx context.Context) error {
		got[sm.Token(ctx)] = sm.GetString(ctx, "n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Errorf("Iterate saw %v, want %v", got, want)
	}
	if all, err := st.All(); err != nil || len(all) != 3 {
		t.Errorf("All = %d sessions, %v; want 3", len(all), err)
	}

	empty := scsstore.New(newSessions(t, mongotest.Collection(t), nil), nil)
	if all, err := empty.AllCtx(ctx); err != nil || all == nil || len(all) != 0 {
		t.Errorf("AllCtx of an empty store = %v, %v; want an empty map", all, err)
	}
}

// With IdleTimeout, scs re-commits a session on every request. A request
// that only reads it must not write it: its commit becomes a buffered
// touch, and the flush sends one updateMany that sets expires alone.
func TestUnchangedCommitIsATouch(t *testing.T) {
	for _, keys := range []int{1, 5} {
		t.Run(fmt.Sprintf("%d values", keys), func(t *testing.T) {
			testUnchangedCommit(t, keys)
		})
	}
}

func testUnchangedCommit(t *testing.T, keys int) {
	coll := mongotest.Collection(t)
	mcoll, cmds := mongotest.Monitored(t, coll)
	sessions := newSessions(t, mcoll, &sessionstore.Options[[]byte]{TouchInterval: time.Hour}) // only Flush writes touches
	rec := record(scsstore.New(sessions, nil))
	sm := scs.New()
	sm.IdleTimeout = 20 * time.Minute
	sm.Store = rec
	a := newApp(t, sm)

	for i := range keys {
		a.do("/put", "k", fmt.Sprint("k", i), "v", fmt.Sprint("value ", i))
	}
	token := a.token()
	written := rec.lastExpiry(t, token)
	exp, payload := stored(t, coll, token)
	if !exp.Equal(written.Truncate(time.Millisecond)) {
		t.Fatalf("after a put, expires = %v, want scs's expiry %v", exp, written)
	}
	t.Logf("puts: %v", mongotest.Names(cmds.Take()))

	// Requests that only read: scs commits each one, and with several
	// values gob encodes them in a different order from time to time.
	const reads = 5
	before := rec.commits
	for range reads {
		time.Sleep(20 * time.Millisecond) // so that each idle expiry is later
		if got := a.do("/get", "k", "k0"); got != "value 0" {
			t.Fatalf("read %q, want value 0", got)
		}
	}
	if n := rec.commits - before; n != reads {
		t.Fatalf("scs committed %d times for %d reads; the test expects one commit per request", n, reads)
	}
	during := cmds.Take()
	t.Logf("%d read requests: commands %v", reads, mongotest.Names(during))
	for _, c := range during {
		if n := mongotest.Names([]bson.Raw{c})[0]; n != "find" {
			t.Errorf("a read-only request sent %s: %v", n, c)
		}
	}
	if exp2, payload2 := stored(t, coll, token); !exp2.Equal(exp) || !bytes.Equal(payload2, payload) {
		t.Errorf("the document changed before the flush")
	}

	if err := sessions.Flush(bg(t)); err != nil {
		t.Fatal(err)
	}
	flushed := cmds.Take()
	if got := mongotest.Names(flushed); !slices.Equal(got, []string{"update"}) {
		t.Fatalf("Flush sent %v, want one update", got)
	}
	mongotest.CheckTouch(t, flushed[0])

	last := rec.lastExpiry(t, token)
	exp3, payload3 := stored(t, coll, token)
	if want := roundUp(last.Truncate(time.Millisecond), sessionstore.DefaultTouchGranularity); !exp3.Equal(want) {
		t.Errorf("after Flush, expires = %v, want the last expiry scs asked for, %v, rounded up to %v",
			exp3, last, sessionstore.DefaultTouchGranularity)
	}
	if !exp3.After(exp) {
		t.Errorf("after Flush, expires = %v, not after %v", exp3, exp)
	}
	if !bytes.Equal(payload3, payload) {
		t.Error("the touch changed the payload")
	}

	// A request that changes the session writes it.
	a.do("/put", "k", "k0", "v", "changed")
	got := mongotest.Names(cmds.Take())
	// The read is from memory unless the change feed lags on a busy
	// machine: then memory is not trusted and the session is read first.
	if !slices.Equal(got, []string{"update"}) && !slices.Equal(got, []string{"find", "update"}) {
		t.Errorf("a changing request sent %v, want one update (the upsert), after a find at most", got)
	}
	if _, p := stored(t, coll, token); bytes.Equal(p, payload) {
		t.Error("the changed session was not written")
	}
}

// noDecode is an scs codec that decodes nothing.
type noDecode struct{ scs.GobCodec }

func (noDecode) Decode([]byte) (time.Time, map[string]any, error) {
	return time.Time{}, nil, errors.New("noDecode")
}

// Gob writes maps in random order: a commit whose bytes differ from the
// stored ones but decode to the same session is a touch too, unless the
// codec cannot tell.
func TestEquivalentCommitIsATouch(t *testing.T) {
	deadline := time.Now().Add(24 * time.Hour).UTC()
	values := map[string]any{"a": "1", "b": 2, "c": true, "d": "4", "e": 5.5}
	b1, err := scs.GobCodec{}.Encode(deadline, values)
	if err != nil {
		t.Fatal(err)
	}
	var b2 []byte
	for range 1000 {
		b, _ := scs.GobCodec{}.Encode(deadline, values)
		if !bytes.Equal(b, b1) {
			b2 = b
			break
		}
	}
	if b2 == nil {
		t.Fatal("gob encoded a five-value map the same way 1000 times")
	}

	for _, c := range []struct {
		name   string
		opts   *scsstore.Options
		writes bool
	}{
		{"default codec", nil, false},
		{"codec that cannot decode", &scsstore.Options{Codec: noDecode{}}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			coll := mongotest.Collection(t)
			mcoll, cmds := mongotest.Monitored(t, coll)
			sessions := newSessions(t, mcoll, &sessionstore.Options[[]byte]{TouchInterval: time.Hour})
			st := scsstore.New(sessions, c.opts)
			ctx := bg(t)
			if err := st.CommitCtx(ctx, "tok", b1, time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			cmds.Take()
			if err := st.CommitCtx(ctx, "tok", b2, time.Now().Add(2*time.Hour)); err != nil {
				t.Fatal(err)
			}
			got := mongotest.Names(cmds.Take())
			if wrote := slices.Contains(got, "update"); wrote != c.writes {
				t.Errorf("equivalent commit sent %v; want a write: %t", got, c.writes)
			}
			want := b1
			if c.writes {
				want = b2
			}
			if b, found, err := st.FindCtx(ctx, "tok"); !found || err != nil || !bytes.Equal(b, want) {
				t.Errorf("FindCtx = found %t, %v; stored payload is the first commit's: %t", found, err, bytes.Equal(b, b1))
			}
		})
	}
}
