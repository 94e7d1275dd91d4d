package httpsession_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/sessionstore/sessionstore/httpsession"
)

// fuzzSecrets verify in the fuzz targets: the secrets of expressVectors.
var fuzzSecrets = []string{"keyboard cat", "sécret-ключ-🔑", "old secret"}

// reSigns reports whether signed is Sign(id, s) for one of fuzzSecrets.
func reSigns(signed, id string) bool {
	for _, s := range fuzzSecrets {
		if httpsession.Sign(id, s) == signed {
			return true
		}
	}
	return false
}

// FuzzUnsign checks that Unsign never panics, that what it accepts is
// exactly what Sign makes, and that it accepts everything Sign makes.
func FuzzUnsign(f *testing.F) {
	for _, v := range expressVectors {
		f.Add(v.signed, v.secret)
		f.Add(v.id, v.secret)
	}
	f.Add("s:.", "k")
	f.Add("s:a.b.", "")
	f.Fuzz(func(t *testing.T, value, secret string) {
		if id, ok := httpsession.Unsign(value, []string{secret}); ok {
			if secret == "" || id == "" {
				t.Fatalf("Unsign(%q, %q) = %q, true", value, secret, id)
			}
			if signed := httpsession.Sign(id, secret); signed != value {
				t.Fatalf("Unsign(%q) = %q, which signs to %q", value, id, signed)
			}
		}
		if id, ok := httpsession.Unsign(value, fuzzSecrets); ok && !reSigns(value, id) {
			t.Fatalf("Unsign(%q) = %q, which no secret signs to the value", value, id)
		}
		// value as an id: every signed id comes back.
		if value != "" && secret != "" {
			signed := httpsession.Sign(value, secret)
			if id, ok := httpsession.Unsign(signed, []string{"other", secret}); !ok || id != value {
				t.Fatalf("Unsign(Sign(%q)) = %q, %v", value, id, ok)
			}
		}
	})
}

// FuzzParseCookieValue checks that ParseCookieValue never panics, that a
// value it accepts re-signs to what it verified (the URL-decoded value, or
// the value as it is when that fails to decode), and that it reads back
// every CookieValue.
func FuzzParseCookieValue(f *testing.F) {
	for _, v := range expressVectors {
		f.Add(v.encoded, v.id)
		f.Add(v.signed, v.id)
	}
	f.Add("s%3a%48%34.x", "a%2Fb")
	f.Add("s%3Aabc.%ZZ", "id with spaces;=,\"")
	f.Add("%", "\xff\x00")
	f.Fuzz(func(t *testing.T, value, id string) {
		if got, ok := httpsession.ParseCookieValue(value, fuzzSecrets); ok {
			verified := value
			if decoded, err := url.PathUnescape(value); err == nil {
				verified = decoded
			}
			if !reSigns(verified, got) {
				t.Fatalf("ParseCookieValue(%q) = %q, which no secret signs to %q", value, got, verified)
			}
		}
		if id == "" {
			return
		}
		// One secret a run is enough, and keeps each run cheap.
		secret := fuzzSecrets[len(id)%len(fuzzSecrets)]
		cv := httpsession.CookieValue(id, secret)
		if got, ok := httpsession.ParseCookieValue(cv, fuzzSecrets); !ok || got != id {
			t.Fatalf("ParseCookieValue(CookieValue(%q, %q) = %q) = %q, %v", id, secret, cv, got, ok)
		}
		// The cookie package lets through only values that are valid in
		// a header; CookieValue must make one.
		if err := (&http.Cookie{Name: "connect.sid", Value: cv}).Valid(); err != nil {
			t.Fatalf("CookieValue(%q, %q) = %q: %v", id, secret, cv, err)
		}
	})
}

// FuzzCookieHeader sends arbitrary Cookie headers through a Manager: it
// must not panic, and may only load a session whose id one of the
// connect.sid cookies in the header carries with a valid signature.
func FuzzCookieHeader(f *testing.F) {
	for _, v := range expressVectors {
		f.Add("connect.sid=" + v.encoded)
		f.Add("a=b; connect.sid=" + v.signed + "; connect.sid=x")
	}
	f.Add(`connect.sid="s%3Aabc.BpxCrWRpvZMh%2Fwk%2Fdjl34N%2Bm%2BVQEU7K%2F5WenLwJCgFU"`)
	f.Add("connect.sid=; ;;=; connect.sid=s%3A")
	f.Fuzz(func(t *testing.T, header string) {
		store := newFakeStore[cart]()
		for _, v := range expressVectors {
			store.put(v.id, cart{User: "u"})
		}
		m, err := httpsession.New(store, &httpsession.Options{Secrets: fuzzSecrets})
		if err != nil {
			t.Fatal(err)
		}
		h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if s := httpsession.FromContext[cart](r.Context()); s == nil {
				t.Error("no session in the request context")
			}
		}))
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Cookie", header)
		h.ServeHTTP(httptest.NewRecorder(), req)

		for _, call := range store.takeCalls() {
			id, ok := strings.CutPrefix(call, "Get ")
			if !ok {
				continue
			}
			signed := false
			for _, c := range req.CookiesNamed("connect.sid") {
				verified := c.Value
				if decoded, err := url.PathUnescape(c.Value); err == nil {
					verified = decoded
				}
				signed = signed || reSigns(verified, id)
			}
			if !signed {
				t.Fatalf("header %q loaded session %q, which no cookie in it signs", header, id)
			}
		}
	})
}
