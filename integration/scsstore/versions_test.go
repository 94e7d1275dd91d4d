package scsstore_test

import (
	"testing"
	"time"

	"github.com/sessionstore/sessionstore/integration/mongotest"
	"github.com/sessionstore/sessionstore/scsstore"
)

// A session that one instance loaded and another deleted (a logout) is
// not recreated by the first instance's commit, changed or not.
func TestCommitNeverRecreatesADeletedSession(t *testing.T) {
	coll := mongotest.Collection(t)
	collB, _ := mongotest.Monitored(t, coll)
	a := scsstore.New(newSessions(t, coll, nil), nil)
	b := scsstore.New(newSessions(t, collB, nil), nil)
	ctx := mongotest.Context(t)
	exp := time.Now().Add(time.Hour)
	for _, tok := range []string{"changed", "unchanged"} {
		if err := a.CommitCtx(ctx, tok, []byte("v1"), exp); err != nil {
			t.Fatal(err)
		}
		if _, found, err := a.FindCtx(ctx, tok); !found || err != nil {
			t.Fatalf("FindCtx(%s) = %t, %v", tok, found, err)
		}
		if err := b.DeleteCtx(ctx, tok); err != nil {
			t.Fatal(err)
		}
		data := []byte("v2")
		if tok == "unchanged" {
			data = []byte("v1")
		}
		if err := a.CommitCtx(ctx, tok, data, exp.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, found, err := b.FindCtx(ctx, tok); found || err != nil {
			t.Fatalf("%s: the deleted session came back: %t, %v", tok, found, err)
		}
		if raw, ok := mongotest.RawDoc(t, coll, tok); ok {
			t.Fatalf("%s: document recreated: %v", tok, raw)
		}
	}
	// A token never found is a new session: committed as one.
	if err := a.CommitCtx(ctx, "new", []byte("n"), exp); err != nil {
		t.Fatal(err)
	}
	if b, found, err := b.FindCtx(ctx, "new"); !found || string(b) != "n" || err != nil {
		t.Fatalf("new session: %q, %t, %v", b, found, err)
	}
}
