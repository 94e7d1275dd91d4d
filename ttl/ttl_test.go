package ttl_test

import (
	"testing"

	"github.com/sessionstore/sessionstore/ttl"
)

func TestStrings(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{ttl.Auto.String(), "auto"},
		{ttl.Off.String(), "off"},
		{ttl.Require.String(), "require"},
		{ttl.Mode(9).String(), "Mode(9)"},
		{ttl.Disabled.String(), "disabled"},
		{ttl.Created.String(), "created"},
		{ttl.Present.String(), "present"},
		{ttl.Repaired.String(), "repaired"},
		{ttl.Converted.String(), "converted"},
		{ttl.UseReaper.String(), "reaper"},
		{ttl.Action(9).String(), "Action(9)"},
		{
			ttl.Decision{Mode: ttl.Auto, Action: ttl.UseReaper, Reaper: true, ServerVersion: "7.0.42", Reason: "server answered createIndexes with 238 NotImplemented; using the built-in reaper"}.String(),
			"sessionstore: ttl: mode=auto action=reaper reaper=true server=7.0.42: server answered createIndexes with 238 NotImplemented; using the built-in reaper",
		},
		{ttl.Decision{Mode: ttl.Off}.String(), "sessionstore: ttl: mode=off action=disabled reaper=false server=unknown"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
