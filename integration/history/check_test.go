package history

import (
	"strings"
	"testing"
	"time"
)

// Hand-made histories: times are milliseconds from t0.

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

const ttl = time.Hour

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func val(base string, applied ...string) *Value { return &Value{Base: base, Applied: applied} }

func op(inst string, k Kind, id, tok string, start, end int, out Outcome, v *Value) Op {
	return Op{Instance: inst, Kind: k, ID: id, Token: tok, Start: at(start), End: at(end), Outcome: out, Value: v}
}

// doc is a document written at ms, expiring a TTL later.
func doc(rev int64, expiresAt int, v *Value) Doc {
	return Doc{Value: *v, Rev: rev, Expires: at(expiresAt).Add(ttl)}
}

func snap(start, end int, docs map[string]Doc) Snapshot {
	return Snapshot{Start: at(start), End: at(end), Docs: docs}
}

var cfg = Config{Bound: time.Second, TTL: ttl, TouchSlack: time.Second}

// violations checks and returns the properties violated.
func violations(t *testing.T, ops []Op, samples []Snapshot, final Snapshot, c Config) []string {
	t.Helper()
	res := Check(ops, samples, final, c)
	var props []string
	for _, v := range res.Violations {
		props = append(props, v.Property)
	}
	if (res.Err() == nil) != (len(props) == 0) {
		t.Fatalf("Err() = %v with %d violations", res.Err(), len(props))
	}
	t.Log(res)
	if err := res.Err(); err != nil {
		t.Log(err)
	}
	return props
}

func wantViolations(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("violated %q, want %q", got, want)
	}
}

// A history where two instances create, read, update, touch and delete
// sessions as the store promises passes, and every property examined
// at least one case.
func TestCheckValidHistory(t *testing.T) {
	ops := []Op{
		op("A", Create, "s1", "A1", 0, 10, OK, nil),
		op("B", Get, "s1", "", 20, 30, OK, val("A1")),
		op("B", Update, "s1", "B1", 40, 50, OK, val("A1", "B1")),
		// A's cached copy may lag B's update by the bound.
		op("A", Get, "s1", "", 60, 70, OK, val("A1")),
		op("A", Get, "s1", "", 1200, 1210, OK, val("A1", "B1")),
		op("A", Touch, "s1", "", 1300, 1301, OK, nil),
		// A Set whose answer was lost, and a later Update on top of it.
		op("A", Set, "s2", "A2", 0, 30, Failed, nil),
		op("B", Update, "s2", "B2", 100, 120, OK, val("A2", "B2")),
		op("A", Update, "s2", "A3", 130, 150, Failed, nil), // never applied
		// Deleted, then read within the bound, touched and updated after.
		op("A", Set, "s3", "A4", 0, 10, OK, nil),
		op("B", Get, "s3", "", 20, 30, OK, val("A4")),
		op("A", Delete, "s3", "", 100, 110, OK, nil),
		op("B", Get, "s3", "", 500, 510, OK, val("A4")),
		op("B", Get, "s3", "", 1200, 1210, NotFound, nil),
		op("B", Touch, "s3", "", 1300, 1301, OK, nil),
		op("B", Update, "s3", "B5", 1400, 1410, NotFound, nil),
		// A Set may recreate a deleted session.
		op("A", Set, "s3", "A7", 1500, 1510, OK, nil),
		op("B", Get, "s3", "", 1600, 1610, OK, val("A7")),
		// Two writers race; the last one ends earlier but was applied
		// later, which is allowed.
		op("A", Set, "s4", "A6", 0, 100, OK, nil),
		op("B", Set, "s4", "B6", 10, 50, OK, nil),
	}
	samples := []Snapshot{
		snap(55, 58, map[string]Doc{"s1": doc(2, 40, val("A1", "B1")), "s3": doc(1, 0, val("A4")), "s2": doc(1, 0, val("A2"))}),
		snap(1250, 1260, map[string]Doc{"s1": doc(2, 40, val("A1", "B1")), "s2": doc(2, 100, val("A2", "B2")), "s4": doc(2, 10, val("A6"))}),
	}
	final := snap(2000, 2010, map[string]Doc{
		"s1": doc(2, 1301, val("A1", "B1")),
		"s2": doc(2, 100, val("A2", "B2")),
		"s4": doc(2, 10, val("A6")),
		"s3": doc(1, 1500, val("A7")),
	})
	c := cfg
	c.FlushedBy = at(1900)
	wantViolations(t, violations(t, ops, samples, final, c))
	res := Check(ops, samples, final, c)
	for _, p := range Properties {
		if res.Checked[p] == 0 {
			t.Errorf("no case of %q examined", p)
		}
	}
	if res.Sessions != 4 || res.Ops != len(ops) || res.Samples != 2 {
		t.Errorf("result counts %d sessions, %d calls, %d samples", res.Sessions, res.Ops, res.Samples)
	}
}

func TestCheckLostUpdate(t *testing.T) {
	ops := []Op{
		op("A", Create, "s", "A1", 0, 10, OK, nil),
		op("A", Update, "s", "A2", 20, 30, OK, val("A1", "A2")),
		op("B", Update, "s", "B1", 40, 50, OK, val("A1", "A2", "B1")),
	}
	final := snap(100, 110, map[string]Doc{"s": doc(2, 20, val("A1", "A2"))})
	wantViolations(t, violations(t, ops, nil, final, cfg), PropDurable)

	// A Set that ended before the Update began does not excuse it; one
	// that raced it does.
	ops = append(ops, op("A", Set, "s", "A3", 0, 35, OK, nil))
	final = snap(100, 110, map[string]Doc{"s": doc(3, 20, val("A3"))})
	wantViolations(t, violations(t, ops, nil, final, cfg), PropDurable)
	ops[3].End = at(45)
	wantViolations(t, violations(t, ops, nil, final, cfg))
}

func TestCheckLostSet(t *testing.T) {
	ops := []Op{
		op("A", Set, "s", "A1", 0, 10, OK, nil),
		op("B", Delete, "s", "", 0, 5, OK, nil),
	}
	// The Delete ended before the Set ended but may have run after it?
	// No: it ended before the Set began only if it ended before 0.
	wantViolations(t, violations(t, ops, nil, snap(100, 110, nil), cfg))
	ops[1].Start, ops[1].End = at(-20), at(-10)
	wantViolations(t, violations(t, ops, nil, snap(100, 110, nil), cfg), PropDurable)
	// A Delete that failed but whose session is gone counts.
	ops[1].Start, ops[1].End, ops[1].Outcome = at(20), at(30), Failed
	wantViolations(t, violations(t, ops, nil, snap(100, 110, nil), cfg))
}

func TestCheckOrigin(t *testing.T) {
	ops := []Op{
		op("A", Create, "s", "A1", 0, 10, OK, nil),
		op("A", Update, "s", "A2", 20, 30, Failed, nil),
		op("A", Update, "s", "A2", 40, 50, OK, val("A1", "A2")), // the retry of A2
		op("B", Update, "s", "B1", 60, 70, NotFound, nil),
	}
	final := func(v *Value) Snapshot { return snap(100, 110, map[string]Doc{"s": doc(2, 40, v)}) }
	wantViolations(t, violations(t, ops, nil, final(val("A1", "A2")), cfg))
	wantViolations(t, violations(t, ops, nil, final(val("A1", "A2", "A2")), cfg), PropOrigin)
	wantViolations(t, violations(t, ops, nil, final(val("X9")), cfg), PropDurable, PropDurable, PropOrigin)
	wantViolations(t, violations(t, ops, nil, final(val("A1", "A2", "B1")), cfg), PropOrigin)
}

func TestCheckReadAfterDelete(t *testing.T) {
	ops := []Op{
		op("A", Set, "s", "A1", 0, 10, OK, nil),
		op("A", Delete, "s", "", 100, 110, OK, nil),
		op("B", Get, "s", "", 1000, 1010, OK, val("A1")),
	}
	wantViolations(t, violations(t, ops, nil, snap(2000, 2010, nil), cfg))
	ops[2].Start, ops[2].End = at(1111), at(1120)
	wantViolations(t, violations(t, ops, nil, snap(2000, 2010, nil), cfg), PropDeleted)
	// A Set racing the Delete may have recreated the session.
	ops[0].End = at(105)
	wantViolations(t, violations(t, ops, nil, snap(2000, 2010, nil), cfg))
}

func TestCheckMonotonic(t *testing.T) {
	ops := []Op{
		op("A", Create, "s", "A1", 0, 10, OK, nil),
		op("B", Update, "s", "B1", 20, 30, OK, val("A1", "B1")),
		op("A", Get, "s", "", 40, 50, OK, val("A1", "B1")),
		op("A", Get, "s", "", 900, 910, OK, val("A1")),
	}
	final := snap(2000, 2010, map[string]Doc{"s": doc(2, 20, val("A1", "B1"))})
	wantViolations(t, violations(t, ops, nil, final, cfg))
	ops[3].Start, ops[3].End = at(1051), at(1060)
	wantViolations(t, violations(t, ops, nil, final, cfg), PropMonotonic)
	// On another instance, it is a different cache.
	ops[3].Instance = "C"
	wantViolations(t, violations(t, ops, nil, final, cfg))
	// Different bases: a value from a Set that ended before the other's
	// Set began is older.
	ops = []Op{
		op("A", Set, "s", "A1", 0, 10, OK, nil),
		op("B", Set, "s", "B1", 20, 30, OK, nil),
		op("A", Get, "s", "", 40, 50, OK, val("B1")),
		op("A", Get, "s", "", 1100, 1110, OK, val("A1")),
	}
	final = snap(2000, 2010, map[string]Doc{"s": doc(2, 20, val("B1"))})
	wantViolations(t, violations(t, ops, nil, final, cfg), PropMonotonic)
}

func TestCheckServerHistory(t *testing.T) {
	ops := []Op{
		op("A", Create, "s", "A1", 0, 10, OK, nil),
		op("B", Update, "s", "B1", 20, 30, OK, val("A1", "B1")),
		op("A", Touch, "s", "", 200, 201, OK, nil),
	}
	before := snap(100, 110, map[string]Doc{"s": doc(2, 20, val("A1", "B1"))})
	final := snap(2000, 2010, map[string]Doc{"s": doc(2, 200, val("A1", "B1"))})
	wantViolations(t, violations(t, ops, []Snapshot{before}, final, cfg))

	back := snap(300, 310, map[string]Doc{"s": doc(1, 0, val("A1"))})
	wantViolations(t, violations(t, ops, []Snapshot{before, back}, final, cfg), PropVersions, PropTouchShorten)

	shorter := snap(300, 310, map[string]Doc{"s": doc(2, 0, val("A1", "B1"))})
	wantViolations(t, violations(t, ops, []Snapshot{before, shorter}, final, cfg), PropTouchShorten)
	// An Update in between may set an earlier expiry.
	ops = append(ops, op("A", Update, "s", "A2", 250, 260, Failed, nil))
	wantViolations(t, violations(t, ops, []Snapshot{before, shorter}, final, cfg))
}

func TestCheckResurrection(t *testing.T) {
	ops := []Op{
		op("A", Create, "s", "A1", 0, 10, OK, nil),
		op("B", Delete, "s", "", 100, 110, OK, nil),
		op("A", Touch, "s", "", 105, 106, OK, nil),
	}
	final := snap(2000, 2010, map[string]Doc{"s": doc(1, 105, val("A1"))})
	wantViolations(t, violations(t, ops, nil, final, cfg), PropResurrect)
	wantViolations(t, violations(t, ops, nil, snap(2000, 2010, nil), cfg))
}

func TestCheckTouchWritten(t *testing.T) {
	ops := []Op{
		op("A", Create, "s", "A1", 0, 10, OK, nil),
		op("B", Touch, "s", "", 5000, 5001, OK, nil),
	}
	c := cfg
	c.FlushedBy = at(6000)
	final := func(expiresAt int) Snapshot {
		return snap(7000, 7010, map[string]Doc{"s": doc(1, expiresAt, val("A1"))})
	}
	wantViolations(t, violations(t, ops, nil, final(5000), c))
	wantViolations(t, violations(t, ops, nil, final(4000), c)) // within the slack
	wantViolations(t, violations(t, ops, nil, final(3999), c), PropTouchWritten)
	c.FlushedBy = at(5000) // the touch ended after the flush began
	wantViolations(t, violations(t, ops, nil, final(3999), c))
}

// A violation prints the calls that show it, with their times.
func TestCheckReport(t *testing.T) {
	ops := []Op{
		op("A", Create, "s7", "A1", 0, 10, OK, nil),
		op("B", Update, "s7", "B1", 20, 30, OK, val("A1", "B1")),
	}
	res := Check(ops, nil, snap(100, 110, map[string]Doc{"s7": doc(1, 0, val("A1"))}), cfg)
	err := res.Err()
	if err == nil {
		t.Fatal("no violation")
	}
	for _, want := range []string{PropDurable, "session s7", "0.020..   0.030 B    update ok         token=B1 value=A1+[B1]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("report lacks %q:\n%v", want, err)
		}
	}
	if !strings.Contains(res.String(), "1 violation(s)") {
		t.Errorf("summary: %s", res)
	}
}
