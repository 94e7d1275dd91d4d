package main

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/sessionstore/sessionstore/integration/expressapp"
	"github.com/sessionstore/sessionstore/integration/mongotest"
)

// TestExpressServesDemoSessions points Express apps (express-session over
// each Node store) at the demo's collection with the demo's secret: they
// serve the sessions the demo made, req.session.something included, and
// the demo still serves them after Express touched them.
func TestExpressServesDemoSessions(t *testing.T) {
	tools := expressapp.Require(t)
	dir := expressapp.Install(t, tools)
	d := newDemo(t)
	var apps []expressapp.App
	for _, store := range []string{"iwsio", "connect-mongo"} {
		apps = append(apps, expressapp.App{
			Name: store, Store: store, Collection: d.coll.Name(), Secret: testSecret, TTL: 7 * 24 * 3600,
			Cookie: map[string]any{"maxAge": 7 * 24 * 3600 * 1000, "sameSite": "strict"}, Rolling: true,
		})
	}
	urls := expressapp.Start(t, tools, dir, expressapp.DatabaseURI(t, mongotest.URI(), mongotest.Database), apps)

	for _, store := range []string{"iwsio", "connect-mongo"} {
		t.Run(store, func(t *testing.T) {
			cookie := d.get(t, nil)
			id := sessionID(t, cookie)
			want := d.find(t, id).Session.Value.Something
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, urls[store]+"/get", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.AddCookie(&http.Cookie{Name: "connect.sid", Value: cookie.Value})
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			var got struct {
				ID      string `json:"id"`
				Session struct {
					Something string `json:"something"`
				} `json:"session"`
			}
			if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &got) != nil {
				t.Fatalf("Express answered %s %s", resp.Status, body)
			}
			if got.ID != id || got.Session.Something != want || want == "" {
				t.Fatalf("Express served session %s with something %q, want the demo's %s with %q", got.ID, got.Session.Something, id, want)
			}
			if again := d.get(t, cookie); again == nil || sessionID(t, again) != id {
				t.Errorf("after Express served it, the demo answered with cookie %v, want session %s", again, id)
			}
			if s := d.find(t, id).Session.Value.Something; s != want {
				t.Errorf("something = %q after both apps served it, want %q", s, want)
			}
		})
	}
}
