// Package ttl names how a store's sessions are removed once they expire:
// the TTL index [Mode] a store is given, and the [Decision] it reports
// (Store.TTLIndex) after asking the server what it can keep.
package ttl

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// DefaultTTL is a session's lifetime when nothing else is configured: one
// day, as in express-session stores.
const DefaultTTL = 24 * time.Hour

// IndexName is the name the store gives the TTL index it creates.
const IndexName = "expires_1"

// ErrUnsupported is wrapped by the error TTL index setup returns in Require mode when
// the server cannot keep a TTL index.
var ErrUnsupported = errors.New("sessionstore: ttl: server cannot keep a TTL index")

// Mode says how TTL index setup treats the TTL index. The zero value is Auto.
type Mode int

const (
	// Auto keeps a TTL index when the server can, and otherwise asks for
	// the built-in reaper.
	Auto Mode = iota
	// Off leaves expiry to the user: TTL index setup sends no command and no
	// reaper runs.
	Off
	// Require makes TTL index setup fail if the server cannot keep a TTL index.
	Require
)

// String returns "auto", "off" or "require".
func (m Mode) String() string {
	switch m {
	case Auto:
		return "auto"
	case Off:
		return "off"
	case Require:
		return "require"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// Action is what TTL index setup did about the TTL index.
type Action int

const (
	// Disabled means TTL index setup did nothing because the mode is Off.
	Disabled Action = iota
	// Created means TTL index setup created the TTL index.
	Created
	// Present means a TTL index with expireAfterSeconds 0 already existed.
	Present
	// Repaired means a TTL index with another expireAfterSeconds (or NaN)
	// existed and TTL index setup set it to 0 with collMod.
	Repaired
	// Converted means a plain {expires: 1} index existed and TTL index setup turned
	// it into a TTL index with collMod (MongoDB 5.1 and later).
	Converted
	// UseReaper means the server cannot keep the TTL index and the store
	// must run the built-in reaper.
	UseReaper
)

// String returns the action's name in lower case.
func (a Action) String() string {
	switch a {
	case Disabled:
		return "disabled"
	case Created:
		return "created"
	case Present:
		return "present"
	case Repaired:
		return "repaired"
	case Converted:
		return "converted"
	case UseReaper:
		return "reaper"
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// Decision reports what TTL index setup found and did.
type Decision struct {
	// Mode is the mode TTL index setup was called with.
	Mode Mode
	// Action is what TTL index setup did.
	Action Action
	// Reaper reports that the store must run the built-in reaper.
	Reaper bool
	// ServerVersion is the version the server reported, or "" if buildInfo
	// failed.
	ServerVersion string
	// Reason is a sentence explaining the decision.
	Reason string
}

// String formats d for an info log line.
func (d Decision) String() string {
	v := d.ServerVersion
	if v == "" {
		v = "unknown"
	}
	s := fmt.Sprintf("sessionstore: ttl: mode=%s action=%s reaper=%t server=%s", d.Mode, d.Action, d.Reaper, v)
	if d.Reason != "" {
		s += ": " + d.Reason
	}
	return s
}
