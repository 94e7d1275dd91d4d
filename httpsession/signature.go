package httpsession

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"io"
	"net/url"
	"strings"
	"sync"
)

// signedPrefix marks a signed value in express-session's cookie.
const signedPrefix = "s:"

// sigLen is the length of a signature: unpadded base64 of HMAC-SHA256.
const sigLen = 43

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
	id, sig, ok := splitSigned(value)
	if !ok {
		return "", false
	}
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

// splitSigned splits a signed value, "s:" + id + "." + signature. The id
// may itself contain dots; the signature follows the last. It reports
// false for a value without the prefix or the dot, or with an empty id.
func splitSigned[S ~string | ~[]byte](v S) (id, sig S, ok bool) {
	if len(v) < len(signedPrefix) || v[0] != signedPrefix[0] || v[1] != signedPrefix[1] {
		return id, sig, false
	}
	rest := v[len(signedPrefix):]
	for i := len(rest) - 1; i > 0; i-- {
		if rest[i] == '.' {
			return rest[:i], rest[i+1:], true
		}
	}
	return id, sig, false
}

// A keyring signs and verifies cookie values with a Manager's secrets, the
// first of which signs. Its keyed HMAC states are reused through a pool,
// so that verifying a cookie allocates nothing. It is safe for concurrent
// use.
type keyring struct {
	secrets []string  // none empty; read-only
	pool    sync.Pool // of *macState
}

// macState is HMAC state and scratch space for one call at a time.
type macState struct {
	macs []hash.Hash  // macs[i] is keyed with secrets[i]; nil until used
	buf  []byte       // the decoded cookie value, or the id to sign
	sum  []byte       // the HMAC, capacity sha256.Size
	sig  [sigLen]byte // the base64 of sum
}

func newKeyring(secrets []string) *keyring {
	k := &keyring{secrets: secrets}
	k.pool.New = func() any {
		return &macState{macs: make([]hash.Hash, len(secrets)), sum: make([]byte, 0, sha256.Size)}
	}
	return k
}

// maxPooledBuf bounds the scratch buffer a pooled macState keeps, so that
// one huge cookie does not pin its size in the pool. Browsers send at
// most 4096 bytes per cookie.
const maxPooledBuf = 4 << 10

// put returns st to the pool.
func (k *keyring) put(st *macState) {
	if cap(st.buf) > maxPooledBuf {
		st.buf = nil
	}
	k.pool.Put(st)
}

// signature returns the signature of msg with secret i, in st.sig.
func (k *keyring) signature(st *macState, i int, msg []byte) []byte {
	mac := st.macs[i]
	if mac == nil {
		mac = hmac.New(sha256.New, []byte(k.secrets[i]))
		st.macs[i] = mac
	} else {
		mac.Reset() // restores the keyed state saved on the first Reset
	}
	mac.Write(msg)
	st.sum = mac.Sum(st.sum[:0])
	base64.RawStdEncoding.Encode(st.sig[:], st.sum)
	return st.sig[:]
}

// verify returns the id in raw, a cookie value as [ParseCookieValue]
// takes it, if one of k's secrets signed it. resend is the cookie value to
// send back for that id: raw itself when it is exactly what the first
// secret's [CookieValue] gives, raw re-encoded when only its URL encoding
// differs, and "" when an older secret signed it and it must be signed
// anew. A valid value in CookieValue's form costs no allocation.
func (k *keyring) verify(raw string) (id, resend string, ok bool) {
	st := k.pool.Get().(*macState)
	defer k.put(st)
	var decoded bool
	if st.buf, decoded = appendUnescaped(st.buf[:0], raw); !decoded {
		st.buf = append(st.buf[:0], raw...)
	}
	idb, sig, ok := splitSigned(st.buf)
	if !ok {
		return "", "", false
	}
	for i := range k.secrets {
		if !hmac.Equal(k.signature(st, i, idb), sig) {
			continue
		}
		switch {
		case i > 0:
			resend = ""
		case isEncoded(raw, st.buf):
			resend = raw
		default:
			resend = encodeURIComponent(string(st.buf))
		}
		return substringOr(raw, idb), resend, true
	}
	return "", "", false
}

// cookie returns prefix + CookieValue(id, first secret) + suffix.
func (k *keyring) cookie(prefix, id, suffix string) string {
	st := k.pool.Get().(*macState)
	defer k.put(st)
	st.buf = append(st.buf[:0], id...)
	sig := k.signature(st, 0, st.buf)
	var b strings.Builder
	b.Grow(len(prefix) + encodedLen(signedPrefix) + encodedLen(id) + 1 + encodedLen(sig) + len(suffix))
	b.WriteString(prefix)
	writeEncoded(&b, signedPrefix)
	writeEncoded(&b, id)
	b.WriteByte('.')
	writeEncoded(&b, sig)
	b.WriteString(suffix)
	return b.String()
}

// substringOr returns b as a string: a substring of s, where a cookie
// value in CookieValue's form holds the id verbatim, or else a copy.
func substringOr(s string, b []byte) string {
	for _, off := range [...]int{len("s%3A"), len(signedPrefix)} {
		if end := off + len(b); end <= len(s) && s[off:end] == string(b) {
			return s[off:end]
		}
	}
	return string(b)
}

// encodeURIComponent escapes s as JavaScript's encodeURIComponent does for
// valid UTF-8: every byte outside A-Z, a-z, 0-9 and -_.!~*'() becomes %XX
// with upper-case hex digits. Where JavaScript would throw on malformed
// text, it escapes the bytes.
func encodeURIComponent(s string) string {
	n := encodedLen(s)
	if n == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(n)
	writeEncoded(&b, s)
	return b.String()
}

// upperHex is the digits encodeURIComponent writes.
const upperHex = "0123456789ABCDEF"

// encodedLen returns the length of encodeURIComponent(s).
func encodedLen[S ~string | ~[]byte](s S) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n += 2
		}
	}
	return n
}

// writeEncoded writes encodeURIComponent(s) to b.
func writeEncoded[S ~string | ~[]byte](b *strings.Builder, s S) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; unreserved(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&0xf])
		}
	}
}

// isEncoded reports whether s is encodeURIComponent(b).
func isEncoded(s string, b []byte) bool {
	j := 0
	for _, c := range b {
		if unreserved(c) {
			if j >= len(s) || s[j] != c {
				return false
			}
			j++
			continue
		}
		if j+3 > len(s) || s[j] != '%' || s[j+1] != upperHex[c>>4] || s[j+2] != upperHex[c&0xf] {
			return false
		}
		j += 3
	}
	return j == len(s)
}

// unreserved reports whether encodeURIComponent leaves c as it is.
func unreserved(c byte) bool { return unreservedBytes[c] }

// unreservedBytes lists the bytes encodeURIComponent leaves as they are:
// A-Z, a-z, 0-9 and -_.!~*'().
var unreservedBytes = func() (t [256]bool) {
	for c := range t {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("-_.!~*'()", byte(c)) >= 0
	}
	return t
}()

// appendUnescaped appends s to dst with each %XX escape decoded, as
// url.PathUnescape decodes it. If s has a malformed escape, it returns
// dst unchanged and false.
func appendUnescaped(dst []byte, s string) ([]byte, bool) {
	n := len(dst)
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			return append(dst, s...), true
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return dst[:n], false
		}
		dst = append(dst, s[:i]...)
		dst = append(dst, unhex(s[i+1])<<4|unhex(s[i+2]))
		s = s[i+3:]
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// unhex returns the value of the hex digit c.
func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// newID returns a fresh session id: 24 random bytes from crypto/rand in
// unpadded URL-safe base64, 32 characters, as express-session's uid-safe
// makes them.
func newID() string {
	var b [24]byte
	rand.Read(b[:]) // never returns an error: it crashes the program instead
	return base64.RawURLEncoding.EncodeToString(b[:])
}
