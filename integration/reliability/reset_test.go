package reliability_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/integration/history"
	"github.com/sessionstore/sessionstore/integration/mongotest"
)

// Scenario 4: connections are reset, again and again, while Updates are
// on the wire, half of the time after the server has applied what they
// carried (the proxy drops the reply and resets the connection). An Update whose answer was lost may have been applied; the
// caller sends it again (with the same token, adding it only if absent),
// and the history shows every Update applied at most once: the store's
// own retries run only after a conflict, which is a definite "not
// applied", and a caller's retry of a lost answer finds its change
// already there. At least one answer lost after the server applied the
// Update must be seen, or the run goes on, up to three times as long.
func TestResetsDuringWrites(t *testing.T) {
	set := runSettings(t)
	p, puri := proxied(t)
	// Every reset also cuts the change feed, which empties memory, and an
	// Update then fails in its read, before anything is applied: follow
	// no feed here, and bound staleness by MaxCacheAge, so that Updates
	// fail on the wire after the write, which is what this scenario tests.
	r := newRig(t, puri, mongotest.URI(), func(_ int, o *sessionstore.Options[history.Value]) {
		o.Coherence, o.MaxCacheAge = sessionstore.CoherenceOff, bound
	})
	r.w.RetryUpdates = true
	r.w.Mix = history.Mix{Get: 15, Set: 5, Update: 50, Touch: 10, Delete: 2, HTTP: 18}
	r.start()
	// Replies wait in the proxy for a while, so that a reset often comes
	// after the server applied a write and before its answer arrived.
	p.SetLatency(20 * time.Millisecond)

	var st history.Stats
	resets := 0
	for round := 0; round < 3*set.rounds && (round < set.rounds || st.Applied == 0); round++ {
		wait := r.load(set.fault + set.load)
		time.Sleep(set.load / 2)
		for end := time.Now().Add(set.fault); time.Now().Before(end); resets++ {
			time.Sleep(50*time.Millisecond + rand.N(150*time.Millisecond))
			if resets%2 == 0 {
				p.ResetAll()
				continue
			}
			// For a moment, requests reach the server and replies are
			// lost: the Updates then on the wire are applied unanswered.
			p.LoseReplies(true)
			time.Sleep(50 * time.Millisecond)
			p.LoseReplies(false)
		}
		st = wait()
	}
	p.SetLatency(0)
	r.logStats(st)
	t.Logf("%d resets; %d Updates failed and were sent again, %d of them had been applied: their answer was lost", resets, st.Retried, st.Applied)
	res := r.check(history.Config{FlushedBy: r.flush()})
	if st.Applied == 0 {
		t.Errorf("no Update answer was lost after the server applied it (of %d retried): the scenario did not happen", st.Retried)
	}
	if res.Checked[history.PropOrigin] == 0 {
		t.Error("no value was checked for Updates applied twice")
	}
	r.close()
}
