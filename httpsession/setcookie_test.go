package httpsession_test

import (
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore/httpsession"
)

// TestSetCookieMatchesNetHTTP checks that every Set-Cookie header the
// middleware writes, whether it signs a cookie, re-sends the request's or
// expires it, is byte for byte what http.Cookie.String gives for the same
// cookie, for a range of cookie options.
func TestSetCookieMatchesNetHTTP(t *testing.T) {
	const hundredYears = 100 * 365 * 24 * time.Hour
	for name, tc := range map[string]struct {
		opts httpsession.Options
		want http.Cookie // the cookie without Value
	}{
		"defaults": {
			httpsession.Options{},
			http.Cookie{Name: "connect.sid", Path: "/", HttpOnly: true},
		},
		"MaxAge rounded up": {
			httpsession.Options{MaxAge: 90*time.Minute + time.Millisecond},
			http.Cookie{Name: "connect.sid", Path: "/", MaxAge: 5401, HttpOnly: true},
		},
		"MaxAge capped": {
			httpsession.Options{MaxAge: hundredYears},
			http.Cookie{Name: "connect.sid", Path: "/", MaxAge: math.MaxInt32, HttpOnly: true},
		},
		"every attribute": {
			httpsession.Options{
				CookieName: "sid", Path: "/app", Domain: "example.com", MaxAge: time.Hour,
				AllowScriptAccess: true, Secure: true, SameSite: http.SameSiteLaxMode,
			},
			http.Cookie{Name: "sid", Path: "/app", Domain: "example.com", MaxAge: 3600, Secure: true, SameSite: http.SameSiteLaxMode},
		},
		"SameSite Strict": {
			httpsession.Options{SameSite: http.SameSiteStrictMode, MaxAge: 7 * 24 * time.Hour},
			http.Cookie{Name: "connect.sid", Path: "/", MaxAge: 604800, HttpOnly: true, SameSite: http.SameSiteStrictMode},
		},
		"SameSite None": {
			httpsession.Options{SameSite: http.SameSiteNoneMode, Secure: true},
			http.Cookie{Name: "connect.sid", Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode},
		},
		"SameSite default": {
			httpsession.Options{SameSite: http.SameSiteDefaultMode},
			http.Cookie{Name: "connect.sid", Path: "/", HttpOnly: true, SameSite: http.SameSiteDefaultMode},
		},
		"Domain with a leading dot": {
			httpsession.Options{Domain: ".example.com"},
			http.Cookie{Name: "connect.sid", Path: "/", Domain: ".example.com", HttpOnly: true},
		},
		"Domain an IP address": {
			httpsession.Options{Domain: "192.0.2.1", Path: "/a b"},
			http.Cookie{Name: "connect.sid", Path: "/a b", Domain: "192.0.2.1", HttpOnly: true},
		},
	} {
		t.Run(name, func(t *testing.T) {
			tc.opts.Secrets = []string{"new", "old"}
			tc.opts.Rolling = true
			store := newFakeStore[cart]()
			store.put("s1", cart{User: "ann"})
			m := newManager(t, store, tc.opts)
			signed := func(id string) string {
				c := tc.want
				c.Value = httpsession.CookieValue(id, "new")
				return c.String()
			}
			expired := tc.want
			expired.MaxAge, expired.Expires = -1, time.Unix(0, 0)

			// check serves a request with Cookie header cookie and compares
			// its Set-Cookie header with want(id of the stored session).
			check := func(what, cookie string, fn func(http.ResponseWriter, *http.Request, *httpsession.Session[cart]), want func(id string) string) {
				t.Helper()
				req := httptest.NewRequest(http.MethodGet, "/", nil)
				if cookie != "" {
					req.Header.Set("Cookie", tc.want.Name+"="+cookie)
				}
				rec := httptest.NewRecorder()
				var id string
				m.Handler(handle(t, func(w http.ResponseWriter, r *http.Request, s *httpsession.Session[cart]) {
					fn(w, r, s)
					id = s.ID()
				})).ServeHTTP(rec, req)
				got := rec.Result().Header.Values("Set-Cookie")
				if w := want(id); len(got) != 1 || got[0] != w {
					t.Errorf("%s: Set-Cookie = %q\nwant %q", what, got, w)
				}
			}
			check("new session", "", addItem("fig"), signed)
			check("re-sent", httpsession.CookieValue("s1", "new"), readOnly, signed)
			check("quoted", `"`+httpsession.CookieValue("s1", "new")+`"`, readOnly, signed)
			check("not URL-encoded", httpsession.Sign("s1", "new"), readOnly, signed)
			check("old secret", httpsession.CookieValue("s1", "old"), readOnly, signed)
			check("regenerated", httpsession.CookieValue("s1", "new"), func(_ http.ResponseWriter, r *http.Request, s *httpsession.Session[cart]) {
				if err := s.Regenerate(r.Context()); err != nil {
					t.Error(err)
				}
			}, signed)
			store.put("s1", cart{User: "ann"})
			check("destroyed", httpsession.CookieValue("s1", "new"), func(_ http.ResponseWriter, _ *http.Request, s *httpsession.Session[cart]) {
				s.Destroy()
			}, func(string) string { return expired.String() })
		})
	}
}
