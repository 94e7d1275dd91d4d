package bench

import (
	"io"
	"net/http"
	"time"
)

// Floor returns the floor under the demo's handler for returning
// sessions: a bare net/http handler that reads the session cookie named
// name, sets it back with the attributes the demo gives it (Path=/,
// Max-Age of maxAge, HttpOnly, SameSite=Strict) and answers OK. It
// verifies nothing and stores nothing, so the demo's cost beyond it is
// the session layer's.
func Floor(name string, maxAge time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(name); err == nil {
			http.SetCookie(w, &http.Cookie{
				Name:     name,
				Value:    c.Value,
				Path:     "/",
				MaxAge:   int(maxAge / time.Second),
				HttpOnly: true,
				SameSite: http.SameSiteStrictMode,
			})
		}
		_, _ = io.WriteString(w, "OK")
	})
}
