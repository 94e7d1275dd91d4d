package httpsession

import (
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Cookie is express-session's cookie object, which it stores in every
// session as session.cookie and rebuilds on every load. The middleware
// keeps it for T, so a session type declares only its own fields.
//
// A loaded session keeps the object as stored, with its field names,
// BSON types and fields unknown here, except for what the middleware
// changes: the expiry on every save, and what [Session.SetCookie] sets.
// The cookie the middleware sends for a loaded session follows the stored
// object: path, domain, HttpOnly, Secure, SameSite, Partitioned, Priority
// and Max-Age.
type Cookie struct {
	// MaxAge is express-session's originalMaxAge: how long the cookie
	// lives after each response that saves or touches the session. Zero
	// (null in the store) is a browser-session cookie, which has no
	// Max-Age and lasts in the store as long as the store's TTL.
	MaxAge time.Duration
	// Expires is when the cookie expires as of the session's last save:
	// that save's time plus MaxAge. Zero (null) for a browser-session
	// cookie.
	Expires time.Time
	// Path and Domain are the cookie's attributes; an empty Domain
	// limits the cookie to the host that set it.
	Path, Domain string
	// HTTPOnly, Secure and Partitioned are the cookie's flags.
	HTTPOnly, Secure, Partitioned bool
	// SameSite is the SameSite attribute; zero omits it. express-session's
	// true reads as [http.SameSiteStrictMode].
	SameSite http.SameSite
	// Priority is the Priority attribute, "low", "medium" or "high"; empty
	// omits it.
	Priority string
}

// Keys of express-session's cookie object.
const (
	keyMaxAge      = "originalMaxAge"
	keyExpires     = "expires"
	keyRawExpires  = "_expires" // the Cookie's own field, which the Node driver stores
	keySecure      = "secure"
	keyHTTPOnly    = "httpOnly"
	keyDomain      = "domain"
	keyPath        = "path"
	keySameSite    = "sameSite"
	keyPartitioned = "partitioned"
	keyPriority    = "priority"
)

// restart sets Expires to now plus MaxAge, as express-session does on
// every response, rounded up to the next whole second so that a save by
// another app in the same second does not end later, and never earlier
// than floor or the stored expiry; a browser-session cookie has none.
func (c *Cookie) restart(now, floor time.Time) {
	if c.MaxAge <= 0 {
		c.Expires = time.Time{}
		return
	}
	next := now.Add(c.MaxAge).Truncate(time.Second).Add(time.Second)
	c.Expires = later(later(c.Expires, floor), next)
}

// expiry returns when the store should expire a session with this
// cookie: its Expires, or zero for the store's TTL.
func (c *Cookie) expiry() time.Time {
	if c.MaxAge <= 0 {
		return time.Time{}
	}
	return c.Expires
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// maxAgeSeconds returns MaxAge in whole seconds, rounded up, for the
// Max-Age attribute: 0 omits it.
func (c *Cookie) maxAgeSeconds() int {
	if c.MaxAge <= 0 {
		return 0
	}
	secs := c.MaxAge / time.Second
	if c.MaxAge%time.Second != 0 {
		secs++
	}
	return int(min(secs, math.MaxInt32))
}

// attributes reports whether c and d send the same cookie attributes.
func (c *Cookie) attributes(d *Cookie) bool {
	return c.maxAgeSeconds() == d.maxAgeSeconds() && c.Path == d.Path && c.Domain == d.Domain &&
		c.HTTPOnly == d.HTTPOnly && c.Secure == d.Secure && c.Partitioned == d.Partitioned &&
		c.SameSite == d.SameSite && strings.EqualFold(c.Priority, d.Priority)
}

// httpCookie returns the cookie named name carrying value with c's
// attributes. A path or domain that net/http would reject (and log) is
// replaced by fallback's.
func (c *Cookie) httpCookie(name, value string, fallback *Cookie) *http.Cookie {
	hc := &http.Cookie{
		Name:        name,
		Value:       value,
		Path:        c.Path,
		Domain:      c.Domain,
		MaxAge:      c.maxAgeSeconds(),
		HttpOnly:    c.HTTPOnly,
		Secure:      c.Secure,
		SameSite:    c.SameSite,
		Partitioned: c.Partitioned,
	}
	if hc.Path == "" {
		hc.Path = "/"
	}
	if (&http.Cookie{Name: name, Path: hc.Path}).Valid() != nil {
		hc.Path = fallback.Path
	}
	if hc.Domain != "" && (&http.Cookie{Name: name, Domain: hc.Domain}).Valid() != nil {
		hc.Domain = fallback.Domain
	}
	return hc
}

// priorityAttr returns the Priority attribute for c, with its leading
// "; ", or "" when c has none; net/http does not write it.
func (c *Cookie) priorityAttr() string {
	switch strings.ToLower(c.Priority) {
	case "low":
		return "; Priority=Low"
	case "medium":
		return "; Priority=Medium"
	case "high":
		return "; Priority=High"
	}
	return ""
}

// decodeCookie reads express-session's cookie object. It never fails: a
// field of a type express-session would not write reads as unset, and is
// kept as it is when the cookie is stored again.
func decodeCookie(raw bson.Raw) Cookie {
	var c Cookie
	var fromRaw bool           // c.Expires came from _expires
	elems, _ := raw.Elements() // the caller validated raw
	for _, e := range elems {
		k, v := e.Key(), e.Value()
		// express-session's expires setter writes _expires: that one
		// wins, unless it is null.
		if k == keyExpires && fromRaw || k == keyRawExpires && readDate(v).IsZero() {
			continue
		}
		readCookieField(&c, k, v)
		fromRaw = fromRaw || k == keyRawExpires
	}
	return c
}

// readCookieField sets c's field named k from the stored value v. Unknown
// keys change nothing.
func readCookieField(c *Cookie, k string, v bson.RawValue) {
	switch k {
	case keyMaxAge:
		c.MaxAge = readMaxAge(v)
	case keyExpires, keyRawExpires:
		c.Expires = readDate(v)
	case keySecure:
		c.Secure = readBool(v)
	case keyHTTPOnly:
		c.HTTPOnly = readBool(v)
	case keyDomain:
		c.Domain = readString(v)
	case keyPath:
		c.Path = readString(v)
	case keySameSite:
		c.SameSite = readSameSite(v)
	case keyPartitioned:
		c.Partitioned = readBool(v)
	case keyPriority:
		c.Priority = readString(v)
	}
}

// readMaxAge reads originalMaxAge, in milliseconds: a JavaScript number
// is a BSON double, an int32 or an int64.
func readMaxAge(v bson.RawValue) time.Duration {
	var ms float64
	switch v.Type {
	case bson.TypeInt32:
		ms = float64(v.Int32())
	case bson.TypeInt64:
		ms = float64(v.Int64())
	case bson.TypeDouble:
		ms = v.Double()
	default:
		return 0
	}
	if math.IsNaN(ms) || ms <= 0 {
		return 0
	}
	if ms >= float64(math.MaxInt64/int64(time.Millisecond)) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(ms * float64(time.Millisecond))
}

// readDate reads a BSON date, or the ISO string JSON.stringify writes.
func readDate(v bson.RawValue) time.Time {
	switch v.Type {
	case bson.TypeDateTime:
		return normalDate(time.UnixMilli(v.DateTime()))
	case bson.TypeString:
		t, err := time.Parse(time.RFC3339Nano, v.StringValue())
		if err == nil {
			return normalDate(t)
		}
	}
	return time.Time{}
}

// normalDate returns t as a BSON date holds it: in UTC, to the
// millisecond; the zero time stays zero.
func normalDate(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Truncate(time.Millisecond).UTC()
}

func readBool(v bson.RawValue) bool {
	b, ok := v.BooleanOK()
	return ok && b
}

func readString(v bson.RawValue) string {
	s, _ := v.StringValueOK()
	return s
}

// readSameSite reads sameSite as the cookie module does: true is strict,
// false none at all, and strings are case-insensitive.
func readSameSite(v bson.RawValue) http.SameSite {
	if b, ok := v.BooleanOK(); ok {
		if b {
			return http.SameSiteStrictMode
		}
		return 0
	}
	switch s, _ := v.StringValueOK(); strings.ToLower(s) {
	case "strict":
		return http.SameSiteStrictMode
	case "lax":
		return http.SameSiteLaxMode
	case "none":
		return http.SameSiteNoneMode
	}
	return 0
}

// encodeCookie returns c as express-session's cookie object. Starting
// from stored, the object as it was read (nil for a new cookie), it keeps
// every element whose value still reads as c's, so names, BSON types and
// unknown fields survive; it replaces the others and adds what c sets
// that stored lacks.
func encodeCookie(c *Cookie, stored bson.Raw) ([]byte, error) {
	if c.SameSite != 0 && c.SameSite != http.SameSiteLaxMode && c.SameSite != http.SameSiteStrictMode && c.SameSite != http.SameSiteNoneMode {
		return nil, fmt.Errorf("httpsession: cookie SameSite %d has no express-session form", c.SameSite)
	}
	b := startDocument(nil)
	seen := make(map[string]bool, 10)
	elems, _ := stored.Elements() // nil for a new cookie; validated otherwise
	for _, e := range elems {
		k := e.Key()
		seen[k] = true
		v := e.Value()
		if !cookieFieldSame(c, k, v) {
			b = appendCookieField(b, c, k)
			continue
		}
		b = append(b, e...)
	}
	// A new object has express-session's own fields; a stored one gets
	// only what differs from the field's absence.
	fresh := stored == nil
	if !seen[keyMaxAge] && (fresh || c.MaxAge > 0) {
		b = appendCookieField(b, c, keyMaxAge)
	}
	if !seen[keyExpires] && !seen[keyRawExpires] && (fresh || !c.Expires.IsZero()) {
		b = appendCookieField(b, c, keyExpires)
	}
	for _, k := range []string{keySecure, keyHTTPOnly, keyDomain, keyPath, keySameSite, keyPartitioned, keyPriority} {
		if !seen[k] && (fresh && (k == keyHTTPOnly || k == keyPath) || cookieFieldSet(c, k)) {
			b = appendCookieField(b, c, k)
		}
	}
	return endDocument(b), nil
}

// cookieFieldSame reports whether the stored element k, v reads as c's
// field k; unknown keys always do.
func cookieFieldSame(c *Cookie, k string, v bson.RawValue) bool {
	want := *c
	want.MaxAge, want.Expires = max(want.MaxAge, 0), normalDate(want.Expires)
	got := want
	readCookieField(&got, k, v)
	return got == want
}

// cookieFieldSet reports whether c's field k differs from its absence
// (unset, false or empty), so that an object without it must carry it.
func cookieFieldSet(c *Cookie, k string) bool {
	switch k {
	case keySecure:
		return c.Secure
	case keyHTTPOnly:
		return c.HTTPOnly
	case keyPath:
		return c.Path != ""
	case keyDomain:
		return c.Domain != ""
	case keySameSite:
		return c.SameSite != 0
	case keyPartitioned:
		return c.Partitioned
	case keyPriority:
		return c.Priority != ""
	}
	return false
}

// appendCookieField appends c's field k in the form express-session and
// the Node driver write it.
func appendCookieField(b []byte, c *Cookie, k string) []byte {
	switch k {
	case keyMaxAge:
		if c.MaxAge <= 0 {
			return appendNull(b, k)
		}
		return appendNumber(b, k, c.MaxAge.Milliseconds())
	case keyExpires, keyRawExpires:
		if c.Expires.IsZero() {
			return appendNull(b, k)
		}
		return appendDate(b, k, c.Expires)
	case keySecure:
		return appendBool(b, k, c.Secure)
	case keyHTTPOnly:
		return appendBool(b, k, c.HTTPOnly)
	case keyPartitioned:
		return appendBool(b, k, c.Partitioned)
	case keyDomain:
		return appendStringOrNull(b, k, c.Domain)
	case keyPath:
		return appendStringOrNull(b, k, c.Path)
	case keyPriority:
		return appendStringOrNull(b, k, strings.ToLower(c.Priority))
	case keySameSite:
		switch c.SameSite {
		case http.SameSiteStrictMode:
			return appendString(b, k, "strict")
		case http.SameSiteLaxMode:
			return appendString(b, k, "lax")
		case http.SameSiteNoneMode:
			return appendString(b, k, "none")
		}
		return appendBool(b, k, false)
	}
	return b
}
