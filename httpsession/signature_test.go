package httpsession_test

import (
	"strings"
	"testing"

	"github.com/sessionstore/sessionstore/httpsession"
)

// expressVectors were computed with Node v20.20.2 and the packages
// express-session 1.18 itself depends on: cookie-signature 1.0.7 and
// cookie 0.7.2. For each id and secret:
//
//	signed = 's:' + require('cookie-signature').sign(id, secret)
//	encoded = require('cookie').serialize('connect.sid', signed) minus the 'connect.sid=' prefix
//
// and each was checked to equal
//
//	's:' + id + '.' + crypto.createHmac('sha256', secret).update(id).digest('base64').replace(/=+$/, '')
//	encodeURIComponent(signed)
//
// respectively.
var expressVectors = []struct {
	id, secret, signed, encoded string
}{
	{
		id:      "H4sWm3pq9XrT-c2Lk_0aZyBv7eNdQoJf",
		secret:  "keyboard cat",
		signed:  "s:H4sWm3pq9XrT-c2Lk_0aZyBv7eNdQoJf.jy9+FEVB0aRPCfm1GVkrW58bMRJXIomEiWJ6LRdSIBI",
		encoded: "s%3AH4sWm3pq9XrT-c2Lk_0aZyBv7eNdQoJf.jy9%2BFEVB0aRPCfm1GVkrW58bMRJXIomEiWJ6LRdSIBI",
	},
	{
		id:      "abc",
		secret:  "keyboard cat",
		signed:  "s:abc.BpxCrWRpvZMh/wk/djl34N+m+VQEU7K/5WenLwJCgFU",
		encoded: "s%3Aabc.BpxCrWRpvZMh%2Fwk%2Fdjl34N%2Bm%2BVQEU7K%2F5WenLwJCgFU",
	},
	{
		id:      "H4sWm3pq9XrT-c2Lk_0aZyBv7eNdQoJf",
		secret:  "sécret-ключ-🔑",
		signed:  "s:H4sWm3pq9XrT-c2Lk_0aZyBv7eNdQoJf.12AcEcIxFmi6RZsvmY525PvV6W8FrGUfF4/DX7xJoZ8",
		encoded: "s%3AH4sWm3pq9XrT-c2Lk_0aZyBv7eNdQoJf.12AcEcIxFmi6RZsvmY525PvV6W8FrGUfF4%2FDX7xJoZ8",
	},
	{
		// An id containing dots: the signature follows the last one.
		id:      "a.b.c",
		secret:  "keyboard cat",
		signed:  "s:a.b.c.G8ReS2HiYVtvMBGFvZUGp5RaCauWFLUTjnnTm/EQ2aE",
		encoded: "s%3Aa.b.c.G8ReS2HiYVtvMBGFvZUGp5RaCauWFLUTjnnTm%2FEQ2aE",
	},
	{
		id:      "H4sWm3pq9XrT-c2Lk_0aZyBv7eNdQoJf",
		secret:  "old secret",
		signed:  "s:H4sWm3pq9XrT-c2Lk_0aZyBv7eNdQoJf.yPG2+qnHEXQbJgBdFkx4JmUgL2v9I0+xttInRjkVRIw",
		encoded: "s%3AH4sWm3pq9XrT-c2Lk_0aZyBv7eNdQoJf.yPG2%2BqnHEXQbJgBdFkx4JmUgL2v9I0%2BxttInRjkVRIw",
	},
}

func TestSignMatchesExpress(t *testing.T) {
	for _, v := range expressVectors {
		if got := httpsession.Sign(v.id, v.secret); got != v.signed {
			t.Errorf("Sign(%q, %q) = %q, want %q", v.id, v.secret, got, v.signed)
		}
		if got := httpsession.CookieValue(v.id, v.secret); got != v.encoded {
			t.Errorf("CookieValue(%q, %q) = %q, want %q", v.id, v.secret, got, v.encoded)
		}
	}
}

func TestUnsignAcceptsExpress(t *testing.T) {
	for _, v := range expressVectors {
		if id, ok := httpsession.Unsign(v.signed, []string{v.secret}); !ok || id != v.id {
			t.Errorf("Unsign(%q) = %q, %v, want %q, true", v.signed, id, ok, v.id)
		}
		if id, ok := httpsession.ParseCookieValue(v.encoded, []string{v.secret}); !ok || id != v.id {
			t.Errorf("ParseCookieValue(%q) = %q, %v, want %q, true", v.encoded, id, ok, v.id)
		}
		// The cookie package tolerates a value that was not encoded.
		if id, ok := httpsession.ParseCookieValue(v.signed, []string{v.secret}); !ok || id != v.id {
			t.Errorf("ParseCookieValue(%q) = %q, %v, want %q, true", v.signed, id, ok, v.id)
		}
	}
}

func TestUnsignRotation(t *testing.T) {
	old := expressVectors[4] // signed with "old secret"
	secrets := []string{"new secret", "old secret"}
	if id, ok := httpsession.ParseCookieValue(old.encoded, secrets); !ok || id != old.id {
		t.Errorf("old secret second in list: got %q, %v, want %q, true", id, ok, old.id)
	}
	if _, ok := httpsession.ParseCookieValue(old.encoded, []string{"new secret"}); ok {
		t.Error("old secret retired: value still accepted")
	}
}

func TestUnsignRejects(t *testing.T) {
	v := expressVectors[0]
	secrets := []string{v.secret}
	tamperedID := strings.Replace(v.signed, "H4sW", "H4sX", 1)
	tamperedSig := v.signed[:len(v.signed)-1] + "J"
	for name, value := range map[string]string{
		"tampered id":        tamperedID,
		"tampered signature": tamperedSig,
		"without s: prefix":  strings.TrimPrefix(v.signed, "s:"),
		"padded signature":   v.signed + "=",
		"no signature":       "s:" + v.id,
		"empty id":           "s:." + strings.SplitN(v.signed, ".", 2)[1],
		"empty":              "",
		"prefix only":        "s:",
	} {
		if id, ok := httpsession.Unsign(value, secrets); ok {
			t.Errorf("%s: Unsign(%q) = %q, true; want false", name, value, id)
		}
		encoded := strings.ReplaceAll(value, ":", "%3A")
		if id, ok := httpsession.ParseCookieValue(encoded, secrets); ok {
			t.Errorf("%s: ParseCookieValue(%q) = %q, true; want false", name, encoded, id)
		}
	}
	if _, ok := httpsession.Unsign(v.signed, []string{"", "other"}); ok {
		t.Error("Unsign accepted a value with no matching secret")
	}
}
