package bench

import (
	"encoding/base64"
	"encoding/binary"
	"maps"
	"slices"
	"strconv"
	"time"
)

// Session is a representative web session: ten fields of the kinds
// applications keep (strings, integers, a time, a small map and a short
// slice). Its tags give every codec the same short field names.
type Session struct {
	UserID        int64             `msgpack:"uid" bson:"uid" json:"uid"`
	Username      string            `msgpack:"user" bson:"user" json:"user"`
	Email         string            `msgpack:"email" bson:"email" json:"email"`
	Authenticated bool              `msgpack:"auth" bson:"auth" json:"auth"`
	Visits        int               `msgpack:"visits" bson:"visits" json:"visits"`
	Created       time.Time         `msgpack:"created" bson:"created" json:"created"`
	CSRFToken     string            `msgpack:"csrf" bson:"csrf" json:"csrf"`
	Locale        string            `msgpack:"locale" bson:"locale" json:"locale"`
	Roles         []string          `msgpack:"roles" bson:"roles" json:"roles"`
	Prefs         map[string]string `msgpack:"prefs" bson:"prefs" json:"prefs"`
}

// epoch is the creation time of sample sessions, so that every run
// encodes the same bytes (bar the msgpack map order).
var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Sample returns the i-th sample session. Sessions differ in their
// strings and numbers but all encode to about the same size.
func Sample(i int) Session {
	n := strconv.Itoa(i)
	return Session{
		UserID:        int64(100_000 + i),
		Username:      "user" + n,
		Email:         "user" + n + "@example.com",
		Authenticated: i%2 == 0,
		Visits:        i % 1000,
		Created:       epoch.Add(time.Duration(i) * time.Second),
		CSRFToken:     ID(i + 1<<40),
		Locale:        "en-GB",
		Roles:         []string{"member", "editor"},
		Prefs:         map[string]string{"theme": "dark", "tz": "Europe/London"},
	}
}

// ID returns the i-th session id: 32 characters of URL-safe base64, the
// size of an express-session id, derived from i so that runs repeat.
func ID(i int) string {
	var b [24]byte
	binary.BigEndian.PutUint64(b[0:], uint64(i))
	binary.BigEndian.PutUint64(b[8:], uint64(i)*0x9e3779b97f4a7c15)
	binary.BigEndian.PutUint64(b[16:], ^uint64(i))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Clone returns a deep copy of s, sharing nothing mutable with it: the
// copy that Options.Clone asks for, written by hand as an application
// would.
func (s Session) Clone() Session {
	s.Roles = slices.Clone(s.Roles)
	s.Prefs = maps.Clone(s.Prefs)
	return s
}
