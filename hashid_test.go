package sessionstore_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/httpsession"
	"github.com/sessionstore/sessionstore/internal/mongofake"
	"github.com/sessionstore/sessionstore/ttl"
)

var hashKey = bytes.Repeat([]byte("k"), 32)

// noID fails the test if any document of s holds one of ids anywhere.
func noID(t *testing.T, coll *mongo.Collection, ids ...string) {
	t.Helper()
	for _, raw := range docs(t, coll) {
		for _, id := range ids {
			if bytes.Contains(raw, []byte(id)) {
				t.Fatalf("document %s holds the session id %q", raw, id)
			}
		}
	}
}

// With IDHashKey the documents hold no session id, and every operation
// works unchanged, with the same id, on two stores.
func TestHashedIDs(t *testing.T) {
	srv := mongofake.Start(t)
	ctx := context.Background()
	opts := sessionstore.Options[account]{IDHashKey: hashKey, Prefix: "app:", Owner: func(a account) string { return a.User }}
	a := openFake(t, srv, "hashed", opts)
	opts.CacheSize = -1
	b := openFake(t, srv, "hashed", opts)
	ids := []string{"T10xKEAfTJliWAUnpec5O2DijDTT9OlT", "second-session-id", "third-session-id"}
	for i, id := range ids {
		if err := a.Create(ctx, id, account{User: "ada", Device: i}); err != nil {
			t.Fatal(err)
		}
	}
	noID(t, a.Collection(), ids...)
	mac := hmac.New(sha256.New, hashKey)
	mac.Write([]byte(ids[0]))
	want := "app:" + hex.EncodeToString(mac.Sum(nil))
	if _, ok := rawDoc(t, a.Collection(), want); !ok {
		t.Fatalf("no document with _id %s, the HMAC-SHA-256 of the id behind the prefix", want)
	}
	if v, err := b.Get(ctx, ids[0]); err != nil || v.Device != 0 {
		t.Fatalf("Get from another store = %+v, %v", v, err)
	}
	if err := b.Touch(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Update(ctx, ids[1], func(v *account) error { v.Device = 42; return nil }); err != nil || v.Device != 42 {
		t.Fatalf("Update = %+v, %v", v, err)
	}
	if v, err := b.Get(ctx, ids[1]); err != nil || v.Device != 42 {
		t.Fatalf("Get after Update = %+v, %v", v, err)
	}
	if err := b.Set(ctx, ids[2], account{User: "ada", Device: 3}); err != nil {
		t.Fatal(err)
	}
	noID(t, a.Collection(), ids...)
	var owned []string
	for e, err := range a.ByOwner(ctx, "ada") {
		if err != nil {
			t.Fatal(err)
		}
		owned = append(owned, e.ID)
	}
	if len(owned) != 3 || !strings.Contains(strings.Join(owned, ","), strings.TrimPrefix(want, "app:")) {
		t.Fatalf("ByOwner yielded %v, want the three hashes", owned)
	}
	for e, err := range a.All(ctx) {
		if err != nil || len(e.ID) != 64 {
			t.Fatalf("All yielded %q, %v; want a hash", e.ID, err)
		}
	}
	if n, err := a.DeleteByOwner(ctx, "ada", ids[0]); err != nil || n != 2 {
		t.Fatalf("DeleteByOwner keeping the first = %d, %v", n, err)
	}
	if _, err := a.Get(ctx, ids[0]); err != nil {
		t.Fatalf("the session kept: %v", err)
	}
	if err := a.Delete(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := b.Get(ctx, id); !errors.Is(err, sessionstore.ErrNotFound) {
			t.Fatalf("Get(%s) after the deletes: %v", id, err)
		}
	}
	if n, err := a.Len(ctx); err != nil || n != 0 {
		t.Fatalf("Len = %d, %v", n, err)
	}
	if _, err := sessionstore.New(a.Collection(), &sessionstore.Options[account]{IDHashKey: []byte("short"), TTLIndex: ttl.Off}); err == nil || !strings.Contains(err.Error(), "IDHashKey") {
		t.Fatalf("a short IDHashKey: %v", err)
	}
}

// The middleware works unchanged on a store with hashed ids, encryption
// and a maximum lifetime: a new session, a change, a regenerated id that
// keeps its deadline, and a logout; no document holds a cookie's id, and
// no cookie outlives its session.
func TestMiddlewareOnSecuredStore(t *testing.T) {
	srv := mongofake.Start(t)
	store := openFake(t, srv, "middleware", sessionstore.Options[httpsession.Record[account]]{
		IDHashKey:      hashKey,
		EncryptionKeys: []sessionstore.EncryptionKey{testKey("k")},
		MaxLifetime:    time.Hour,
		Owner:          func(r httpsession.Record[account]) string { return r.Value.User },
	})
	m, err := httpsession.New[account](store, &httpsession.Options{Secrets: []string{"s3cret"}, MaxAge: 2 * time.Hour, Rolling: true})
	if err != nil {
		t.Fatal(err)
	}
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := httpsession.FromContext[account](r.Context())
		switch r.URL.Path {
		case "/visit":
			s.Update(func(a *account) { a.Device++ })
		case "/login":
			if err := s.Regenerate(r.Context()); err != nil {
				t.Error(err)
			}
			s.Update(func(a *account) { a.User = "ada" })
		case "/logout":
			s.Destroy()
		}
		w.Write([]byte(s.ID()))
	}))
	var cookie *http.Cookie
	var cookieIDs []string
	get := func(path string) (id string, maxAge int) {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		for _, c := range rec.Result().Cookies() {
			cookie, maxAge = c, c.MaxAge
		}
		cookieIDs = append(cookieIDs, rec.Body.String())
		return rec.Body.String(), maxAge
	}
	first, age := get("/visit")
	if age > 3600 || age < 3599 {
		t.Fatalf("Max-Age=%d on a store with a 1 h MaxLifetime", age)
	}
	deadline, err := store.Deadline(context.Background(), first)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := get("/visit"); again != first {
		t.Fatalf("second visit got session %s, want %s", again, first)
	}
	if v, err := store.Get(context.Background(), first); err != nil || v.Value.Device != 2 {
		t.Fatalf("stored session = %+v, %v", v, err)
	}
	second, _ := get("/login")
	if second == first {
		t.Fatal("login kept the id")
	}
	if d, err := store.Deadline(context.Background(), second); err != nil || !d.Equal(deadline) {
		t.Fatalf("the regenerated id's deadline = %v, %v; want the first's %v", d, err, deadline)
	}
	if _, err := store.Get(context.Background(), first); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("the old id after login: %v", err)
	}
	owned := 0
	for _, err := range store.ByOwner(context.Background(), "ada") {
		if err != nil {
			t.Fatal(err)
		}
		owned++
	}
	if owned != 1 {
		t.Fatalf("ada owns %d sessions, want 1", owned)
	}
	noID(t, store.Collection(), cookieIDs...)
	for _, raw := range docs(t, store.Collection()) {
		// The owner is stored in clear, for its index; the value is not.
		if _, data, ok := raw.Lookup("session").BinaryOK(); !ok || bytes.Contains(data, []byte("ada")) || raw.Lookup("owner").StringValue() != "ada" {
			t.Fatalf("document %s: want an encrypted session and the owner ada", raw)
		}
	}
	get("/logout")
	if _, err := store.Get(context.Background(), second); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("after logout: %v", err)
	}
}
