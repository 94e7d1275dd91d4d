package httpsession

import (
	"context"
	"net/url"
	"testing"
	"time"
)

const testSecret = "keyboard cat"

// verifyInputs are cookie values, valid and not, in the forms a client
// may send.
var verifyInputs = []string{
	CookieValue("abc", testSecret),
	CookieValue("a.b.c", testSecret),
	CookieValue("sp ace/ü", testSecret),
	CookieValue("abc", "old"),
	CookieValue("abc", "other"),
	Sign("abc", testSecret),                     // not URL-encoded
	"s%3a" + CookieValue("abc", testSecret)[4:], // lower-case escape
	"%73%3A" + CookieValue("abc", testSecret)[4:],
	CookieValue("abc", testSecret) + "%",
	CookieValue("abc", testSecret) + "%zz",
	CookieValue("abc", testSecret) + "=",
	"s%3A." + CookieValue("abc", testSecret)[8:],
	"s%3Aabc",
	"s%3A",
	"s:",
	"abc",
	"",
}

func TestVerifyAgreesWithParseCookieValue(t *testing.T) {
	secrets := []string{testSecret, "old"}
	k := newKeyring(secrets)
	for _, raw := range verifyInputs {
		wantID, wantOK := ParseCookieValue(raw, secrets)
		id, resend, ok := k.verify(raw)
		if id != wantID || ok != wantOK {
			t.Errorf("verify(%q) = %q, %v; ParseCookieValue gives %q, %v", raw, id, ok, wantID, wantOK)
			continue
		}
		// What goes back is what the first secret's CookieValue gives, or
		// nothing when the value must be signed anew.
		_, byFirst := ParseCookieValue(raw, secrets[:1])
		switch {
		case !ok && resend != "":
			t.Errorf("verify(%q) rejected the value but gave %q to re-send", raw, resend)
		case ok && byFirst && resend != CookieValue(id, testSecret):
			t.Errorf("verify(%q) re-sends %q, want %q", raw, resend, CookieValue(id, testSecret))
		case ok && !byFirst && resend != "":
			t.Errorf("verify(%q), signed with an old secret, re-sends %q", raw, resend)
		}
	}
}

func TestAppendUnescapedMatchesPathUnescape(t *testing.T) {
	for _, s := range []string{"", "abc", "%41%62", "%3a%3A", "a+b", "%", "%4", "%4g", "x%", "%%41", "%C3%BC", "%00", "%2F%2f%Af%aF%e9%99"} {
		want, err := url.PathUnescape(s)
		got, ok := appendUnescaped([]byte("keep"), s)
		if ok != (err == nil) || ok && string(got) != "keep"+want || !ok && string(got) != "keep" {
			t.Errorf("appendUnescaped(%q) = %q, %v; PathUnescape gives %q, %v", s, got, ok, want, err)
		}
	}
}

// nullStore holds every session, as the zero int.
type nullStore struct{}

func (nullStore) Get(context.Context, string) (Record[int], error)  { return Record[int]{}, nil }
func (nullStore) Create(context.Context, string, Record[int]) error { return nil }
func (nullStore) Update(_ context.Context, _ string, fn func(*Record[int]) error) (Record[int], error) {
	var v Record[int]
	return v, fn(&v)
}
func (nullStore) Touch(context.Context, string) error  { return nil }
func (nullStore) Delete(context.Context, string) error { return nil }

// TestCookieAllocs holds verifying a cookie to no allocation and sending
// one to a single allocation, the header string.
func TestCookieAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	const id = "H4sWm3pq9XrT-c2Lk_0aZyBv7eNdQoJf"
	m, err := New[int](nullStore{}, &Options{Secrets: []string{testSecret, "old"}, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	current, old := CookieValue(id, testSecret), CookieValue(id, "old")
	resent := &Session[int]{m: m, id: id, cookieID: id, cookieValue: current, rec: Record[int]{Cookie: m.fresh}}
	fresh := &Session[int]{m: m, id: id, rec: Record[int]{Cookie: m.fresh}}
	for _, tc := range []struct {
		name string
		max  float64
		fn   func()
	}{
		{"verify", 0, func() { m.keys.verify(current) }},
		{"verify with an old secret", 0, func() { m.keys.verify(old) }},
		{"re-send", 1, func() { m.setCookie(resent) }},
		{"sign", 1, func() { m.setCookie(fresh) }},
	} {
		if got := testing.AllocsPerRun(100, tc.fn); got > tc.max {
			t.Errorf("%s: %v allocations, want at most %v", tc.name, got, tc.max)
		}
	}
}
