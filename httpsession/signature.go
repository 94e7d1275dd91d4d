package httpsession

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/url"
	"strings"
)

// signedPrefix marks a signed value in express-session's cookie.
const signedPrefix = "s:"

// Sign returns id signed with secret in express-session's form, before URL
// encoding: "s:" + id + "." + the standard base64 of HMAC-SHA256(secret, id)
// without "=" padding.
func Sign(id, secret string) string {
	return signedPrefix + id + "." + signature(id, secret)
}

// Unsign returns the id in value, a signed value in the form [Sign]
// produces, if it carries a valid signature by one of secrets. Empty
// secrets are skipped. It reports false for a value without the "s:"
// prefix, without a signature, with an empty id, or with a signature that
// no secret produces. Signatures are compared in constant time.
func Unsign(value string, secrets []string) (id string, ok bool) {
	rest, found := strings.CutPrefix(value, signedPrefix)
	if !found {
		return "", false
	}
	// The id may itself contain dots; the signature follows the last.
	dot := strings.LastIndexByte(rest, '.')
	if dot <= 0 {
		return "", false
	}
	id, sig := rest[:dot], rest[dot+1:]
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		if hmac.Equal([]byte(signature(id, secret)), []byte(sig)) {
			return id, true
		}
	}
	return "", false
}

// CookieValue returns the cookie value express-session would send for id:
// Sign(id, secret), URL-encoded as JavaScript's encodeURIComponent does.
func CookieValue(id, secret string) string {
	return encodeURIComponent(Sign(id, secret))
}

// ParseCookieValue returns the id in a cookie value that [CookieValue] or
// express-session produced, if one of secrets signed it. Like the cookie
// package express-session uses, it URL-decodes the value and, if that
// fails, tries the value as it is.
func ParseCookieValue(value string, secrets []string) (id string, ok bool) {
	if decoded, err := url.PathUnescape(value); err == nil {
		value = decoded
	}
	return Unsign(value, secrets)
}

// signature returns the unpadded standard base64 of HMAC-SHA256(secret, id).
func signature(id, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	io.WriteString(mac, id)
	return base64.RawStdEncoding.EncodeToString(mac.Sum(nil))
}

// encodeURIComponent escapes s as JavaScript's encodeURIComponent does for
// valid UTF-8: every byte outside A-Z, a-z, 0-9 and -_.!~*'() becomes %XX
// with upper-case hex digits. Where JavaScript would throw on malformed
// text, it escapes the bytes.
func encodeURIComponent(s string) string {
	const hex = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&0xf])
		}
	}
	return string(b)
}

// unreserved reports whether encodeURIComponent leaves c as it is.
func unreserved(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-_.!~*'()", c) >= 0
}

// newID returns a fresh session id: 24 random bytes from crypto/rand in
// unpadded URL-safe base64, 32 characters, as express-session's uid-safe
// makes them.
func newID() string {
	var b [24]byte
	rand.Read(b[:]) // never returns an error: it crashes the program instead
	return base64.RawURLEncoding.EncodeToString(b[:])
}
