package history

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Properties that [Check] verifies.
const (
	// PropDurable: every acknowledged Set, Create and Update is in the
	// final state, or superseded by a Set, Create or Delete that did not
	// end before it began (an Update never supersedes: it keeps the
	// Updates applied before it).
	PropDurable = "acknowledged writes survive or are superseded"
	// PropOrigin: every value read or stored descends from a Set or
	// Create of its session, holds only Updates of that session that were
	// not refused, and none of them twice.
	PropOrigin = "values come from writes, each applied once"
	// PropDeleted: no read returns a value written before an
	// acknowledged Delete of its session that ended more than the bound
	// before the read began. Each read and Delete of a session, the read
	// beginning more than the bound after the Delete ended, is a case.
	PropDeleted = "no read of a deleted session beyond the bound"
	// PropMonotonic: on one instance, no read returns a value older than
	// one an earlier read returned, if the earlier read ended more than
	// the bound before the later one began.
	PropMonotonic = "reads on one instance never go back beyond the bound"
	// PropVersions: the server never holds a session at a lower version,
	// or an older value, than it held before, unless a Delete ran in
	// between.
	PropVersions = "versions never go backwards"
	// PropResurrect: the server never holds a value written before an
	// acknowledged Delete of its session once that Delete has ended. Each
	// server read of a session and Delete of it that ended before, is a
	// case.
	PropResurrect = "no session comes back after an acknowledged delete"
	// PropTouchShorten: the server's expiry of a session never moves
	// back but by a write of its value (Set, Create, Update).
	PropTouchShorten = "touches never shorten an expiry"
	// PropTouchWritten: a touch that ended before a successful flush
	// (Config.FlushedBy) shows in the final expiry: at least the touch's
	// start plus the TTL.
	PropTouchWritten = "touches before a successful flush are written"
)

// Properties lists every property, in the order results report them.
var Properties = []string{
	PropDurable, PropOrigin, PropDeleted, PropMonotonic,
	PropVersions, PropResurrect, PropTouchShorten, PropTouchWritten,
}

// Config is what the store under test guarantees.
type Config struct {
	// Bound is the staleness bound: how long after another instance's
	// write or delete a read may still return what it replaced. For
	// sessionstore that is MaxCacheAge.
	Bound time.Duration
	// TTL is the sessions' lifetime: a touch moves the expiry to at least
	// its start plus TTL.
	TTL time.Duration
	// FlushedBy, when set, is a time by which every touch that ended
	// before it was written: a Flush or Close that began then returned
	// nil. Zero skips PropTouchWritten.
	FlushedBy time.Time
	// TouchSlack is how far below a touch's start plus the TTL the final
	// expiry may be: the store's TouchGranularity, within which a touch
	// of an expiry that memory holds already is skipped, even if another
	// instance has since written an expiry up to that much lower.
	TouchSlack time.Duration
}

// Violation is a property that does not hold for one session, with the
// part of the history that shows it.
type Violation struct {
	Property string
	ID       string
	Detail   string
	Ops      []Op // the calls involved, by start
}

// Result is the checker's verdict.
type Result struct {
	Ops        int            // calls in the history
	Sessions   int            // distinct ids
	Samples    int            // server reads during the run
	Checked    map[string]int // cases examined, by property
	Violations []Violation
	origin     time.Time // times in reports are relative to it
}

// Err returns nil when every property held, or else an error listing
// the violations (up to 20) with the calls that show them.
func (r *Result) Err() error {
	if len(r.Violations) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "history: %d violation(s); times are seconds from the first call\n", len(r.Violations))
	for i, v := range r.Violations {
		if i == 20 {
			fmt.Fprintf(&b, "... and %d more\n", len(r.Violations)-i)
			break
		}
		fmt.Fprintf(&b, "\n%s: session %s: %s\n", v.Property, v.ID, v.Detail)
		for _, op := range v.Ops {
			b.WriteString("    " + r.format(op) + "\n")
		}
	}
	return errors.New(b.String())
}

// String summarises the verdict on one line per property.
func (r *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "history: %d calls over %d sessions, %d server samples: ", r.Ops, r.Sessions, r.Samples)
	if len(r.Violations) == 0 {
		b.WriteString("every property holds")
	} else {
		fmt.Fprintf(&b, "%d violation(s)", len(r.Violations))
	}
	failed := map[string]int{}
	for _, v := range r.Violations {
		failed[v.Property]++
	}
	for _, p := range Properties {
		fmt.Fprintf(&b, "\n  %-55s %7d cases, %d violated", p, r.Checked[p], failed[p])
	}
	return b.String()
}

func (r *Result) format(op Op) string {
	rel := func(t time.Time) string {
		if t.IsZero() {
			return "       -"
		}
		return fmt.Sprintf("%8.3f", t.Sub(r.origin).Seconds())
	}
	s := fmt.Sprintf("%s..%s %-4s %-6s %-10s", rel(op.Start), rel(op.End), op.Instance, op.Kind, op.Outcome)
	if op.Token != "" {
		s += " token=" + op.Token
	}
	if op.Value != nil {
		s += " value=" + op.Value.String()
	}
	if op.Err != "" {
		s += " err=" + op.Err
	}
	return s
}

// observation is a session document as one server read saw it.
type observation struct {
	snap *Snapshot
	doc  *Doc // nil: absent
}

// checker holds a history indexed for the checks.
type checker struct {
	cfg    Config
	res    *Result
	byID   map[string][]*Op         // by start
	tokens map[string][]*Op         // the calls that wrote each token (an Update retried keeps its token)
	server map[string][]observation // by snapshot start, final last
	final  *Snapshot
	seen   map[string]bool // tokens some read or server read saw as a Base
}

// Check verifies the properties of [Properties] on ops, the calls of a
// workload, samples, server reads taken while it ran, and final, the
// server read after every call ended.
func Check(ops []Op, samples []Snapshot, final Snapshot, cfg Config) *Result {
	c := &checker{
		cfg:    cfg,
		res:    &Result{Ops: len(ops), Samples: len(samples), Checked: map[string]int{}},
		byID:   map[string][]*Op{},
		tokens: map[string][]*Op{},
		server: map[string][]observation{},
		final:  &final,
		seen:   map[string]bool{},
	}
	ops = slices.Clone(ops)
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].Start.Before(ops[j].Start) })
	if len(ops) > 0 {
		c.res.origin = ops[0].Start
	}
	for i := range ops {
		op := &ops[i]
		c.byID[op.ID] = append(c.byID[op.ID], op)
		if op.Token != "" {
			c.tokens[op.Token] = append(c.tokens[op.Token], op)
		}
		if op.Value != nil {
			c.seen[op.Value.Base] = true
		}
	}
	samples = slices.Clone(samples)
	sort.SliceStable(samples, func(i, j int) bool { return samples[i].Start.Before(samples[j].Start) })
	snaps := append(samples, final)
	ids := map[string]bool{}
	for id := range c.byID {
		ids[id] = true
	}
	for i := range snaps {
		for id, d := range snaps[i].Docs {
			ids[id] = true
			c.seen[d.Value.Base] = true
		}
	}
	for id := range ids {
		for i := range snaps {
			o := observation{snap: &snaps[i]}
			if d, ok := snaps[i].Docs[id]; ok {
				o.doc = &d
			}
			c.server[id] = append(c.server[id], o)
		}
	}
	c.res.Sessions = len(ids)

	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	slices.Sort(sorted)
	for _, id := range sorted {
		c.durable(id)
		c.origin(id)
		c.deleted(id)
		c.monotonic(id)
		c.server1(id)
		c.touchesWritten(id)
	}
	return c.res
}

func (c *checker) fail(prop, id, detail string, ops ...*Op) {
	v := Violation{Property: prop, ID: id, Detail: detail}
	for _, op := range ops {
		if op != nil {
			v.Ops = append(v.Ops, *op)
		}
	}
	sort.SliceStable(v.Ops, func(i, j int) bool { return v.Ops[i].Start.Before(v.Ops[j].Start) })
	c.res.Violations = append(c.res.Violations, v)
}

// context returns the calls of id that overlap [from, to], at most 30,
// to show with a violation.
func (c *checker) context(id string, from, to time.Time) []*Op {
	var out []*Op
	for _, op := range c.byID[id] {
		if op.Start.Before(to) && op.ends().After(from) || !op.Start.Before(from) && !op.Start.After(to) {
			out = append(out, op)
		}
	}
	if len(out) > 30 {
		out = out[len(out)-30:]
	}
	return out
}

// effective reports whether op certainly took effect: it succeeded, or it
// failed but its result was seen (a Set's value read, a Delete's session
// gone at the end).
func (c *checker) effective(op *Op) bool {
	switch {
	case op.Outcome == OK:
		return true
	case op.Outcome != Failed:
		return false
	case op.Kind.blind():
		return c.seen[op.Token]
	case op.Kind == Delete:
		_, present := c.final.Docs[op.ID]
		return !present
	}
	return false
}

// writers returns the blind writes of id that wrote token as a Base.
func (c *checker) writers(id, token string) []*Op {
	var out []*Op
	for _, op := range c.tokens[token] {
		if op.ID == id && op.Kind.blind() {
			out = append(out, op)
		}
	}
	return out
}

// writtenBefore reports whether every write of base into id certainly
// ended before t. With no such write it reports false: PropOrigin
// reports that case.
func (c *checker) writtenBefore(id, base string, t time.Time) bool {
	ws := c.writers(id, base)
	for _, w := range ws {
		if !w.ends().Before(t) {
			return false
		}
	}
	return len(ws) > 0
}

// older reports whether value a of id is certainly older than b: the
// same Base with fewer Updates, or a Base whose writes all ended before
// any write of b's Base began.
func (c *checker) older(id string, a, b Value) bool {
	if a.Base == b.Base {
		return len(a.Applied) < len(b.Applied) && slices.Equal(a.Applied, b.Applied[:len(a.Applied)])
	}
	wb := c.writers(id, b.Base)
	if len(wb) == 0 {
		return false
	}
	first := wb[0].Start
	for _, w := range wb {
		if w.Start.Before(first) {
			first = w.Start
		}
	}
	return c.writtenBefore(id, a.Base, first)
}

func (c *checker) durable(id string) {
	final, present := c.final.Docs[id]
	for _, w := range c.byID[id] {
		if w.Outcome != OK || !(w.Kind.blind() || w.Kind == Update) {
			continue
		}
		c.res.Checked[PropDurable]++
		if present && (w.Kind.blind() && final.Value.Base == w.Token || w.Kind == Update && slices.Contains(final.Value.Applied, w.Token)) {
			continue
		}
		superseded := false
		for _, x := range c.byID[id] {
			if x.Token != w.Token && (x.Kind.blind() || x.Kind == Delete) && x.ends().After(w.Start) && c.effective(x) {
				superseded = true
				break
			}
		}
		if superseded {
			continue
		}
		state := "absent"
		if present {
			state = final.Value.String()
		}
		c.fail(PropDurable, id, fmt.Sprintf("acknowledged %s %s is not in the final state (%s) and no later Set, Create or Delete replaced it", w.Kind, w.Token, state),
			c.context(id, time.Time{}, forever)...)
	}
}

func (c *checker) origin(id string) {
	check := func(v Value, where string, op *Op) {
		c.res.Checked[PropOrigin]++
		if len(c.writers(id, v.Base)) == 0 {
			c.fail(PropOrigin, id, fmt.Sprintf("%s holds %s, but no Set or Create of this session wrote %s", where, v, v.Base), op)
			return
		}
		applied := map[string]bool{}
		for _, tok := range v.Applied {
			if applied[tok] {
				c.fail(PropOrigin, id, fmt.Sprintf("%s holds %s: Update %s applied twice", where, v, tok), c.tokenOps(id, tok, op)...)
				return
			}
			applied[tok] = true
			ups := c.tokenOps(id, tok, nil)
			ok := false
			for _, u := range ups {
				if u.Kind == Update && u.Outcome != NotFound {
					ok = true
				}
			}
			if !ok {
				c.fail(PropOrigin, id, fmt.Sprintf("%s holds %s, but %s is no Update of this session that was not refused", where, v, tok), append(ups, op)...)
				return
			}
		}
	}
	for _, op := range c.byID[id] {
		if op.Value != nil {
			check(*op.Value, fmt.Sprintf("%s's result", op.Kind), op)
		}
	}
	for _, o := range c.server[id] {
		if o.doc != nil {
			check(o.doc.Value, "the server", nil)
		}
	}
}

// tokenOps returns the calls of id that wrote tok, and extra.
func (c *checker) tokenOps(id, tok string, extra *Op) []*Op {
	var out []*Op
	for _, op := range c.tokens[tok] {
		if op.ID == id {
			out = append(out, op)
		}
	}
	if extra != nil {
		out = append(out, extra)
	}
	return out
}

// deletes returns the acknowledged Deletes of id.
func (c *checker) deletes(id string) []*Op {
	var out []*Op
	for _, op := range c.byID[id] {
		if op.Kind == Delete && op.Outcome == OK {
			out = append(out, op)
		}
	}
	return out
}

func (c *checker) deleted(id string) {
	dels := c.deletes(id)
	for _, r := range c.byID[id] {
		if r.Kind != Get && r.Kind != Update || r.Outcome != OK && r.Outcome != NotFound {
			continue
		}
		for _, d := range dels {
			if !d.End.Add(c.cfg.Bound).Before(r.Start) {
				continue
			}
			c.res.Checked[PropDeleted]++
			if r.Value != nil && c.writtenBefore(id, r.Value.Base, d.Start) {
				c.fail(PropDeleted, id, fmt.Sprintf("%s began %v after the Delete ended (bound %v) and returned %s, written before the Delete",
					r.Kind, r.Start.Sub(d.End).Round(time.Millisecond), c.cfg.Bound, r.Value),
					append(c.writers(id, r.Value.Base), d, r)...)
				break
			}
		}
	}
}

func (c *checker) monotonic(id string) {
	byInstance := map[string][]*Op{}
	for _, op := range c.byID[id] {
		if op.Value != nil && op.Outcome == OK {
			byInstance[op.Instance] = append(byInstance[op.Instance], op)
		}
	}
	for _, reads := range byInstance {
		for i, r1 := range reads {
			for _, r2 := range reads[i+1:] {
				if r2.Start.Sub(r1.End) <= c.cfg.Bound {
					continue
				}
				c.res.Checked[PropMonotonic]++
				if c.older(id, *r2.Value, *r1.Value) {
					c.fail(PropMonotonic, id, fmt.Sprintf("%s returned %s, older than %s that a %s returned %v before it began (bound %v)",
						r2.Kind, r2.Value, r1.Value, r1.Kind, r2.Start.Sub(r1.End).Round(time.Millisecond), c.cfg.Bound),
						append(c.context(id, r1.Start, r2.End), r1, r2)...)
				}
			}
		}
	}
}

// overlapping reports whether a call of id of one of kinds may have run
// between from and to.
func (c *checker) overlapping(id string, from, to time.Time, kinds ...Kind) bool {
	for _, op := range c.byID[id] {
		if slices.Contains(kinds, op.Kind) && op.Start.Before(to) && op.ends().After(from) {
			return true
		}
	}
	return false
}

// server1 checks the server's documents of id, read after read:
// versions, resurrections and expiries.
func (c *checker) server1(id string) {
	dels := c.deletes(id)
	var prev *observation
	for i := range c.server[id] {
		o := &c.server[id][i]
		for _, d := range dels {
			if !d.End.Before(o.snap.Start) {
				continue
			}
			c.res.Checked[PropResurrect]++
			if o.doc != nil && c.writtenBefore(id, o.doc.Value.Base, d.Start) {
				c.fail(PropResurrect, id, fmt.Sprintf("the server held %s (rev %d) %v after the Delete ended; it was written before the Delete",
					o.doc.Value, o.doc.Rev, o.snap.Start.Sub(d.End).Round(time.Millisecond)),
					c.context(id, d.Start, o.snap.End)...)
				break
			}
		}
		if o.doc == nil {
			continue
		}
		if prev != nil && prev.snap.End.Before(o.snap.Start) {
			from, to := prev.snap.Start, o.snap.End
			c.res.Checked[PropVersions]++
			back := o.doc.Rev < prev.doc.Rev || c.older(id, o.doc.Value, prev.doc.Value)
			if back && !c.overlapping(id, from, to, Delete) {
				c.fail(PropVersions, id, fmt.Sprintf("the server held rev %d %s, then rev %d %s, with no Delete in between",
					prev.doc.Rev, prev.doc.Value, o.doc.Rev, o.doc.Value), c.context(id, from, to)...)
			}
			c.res.Checked[PropTouchShorten]++
			if o.doc.Expires.Before(prev.doc.Expires) && !c.overlapping(id, from, to, Set, Create, Update, Delete) {
				c.fail(PropTouchShorten, id, fmt.Sprintf("the server's expiry moved back from %s to %s with no write in between",
					prev.doc.Expires.Format(time.StampMilli), o.doc.Expires.Format(time.StampMilli)), c.context(id, from, to)...)
			}
		}
		prev = o
	}
}

func (c *checker) touchesWritten(id string) {
	if c.cfg.FlushedBy.IsZero() {
		return
	}
	final, present := c.final.Docs[id]
	if !present {
		return
	}
	for _, t := range c.byID[id] {
		if t.Kind != Touch || t.Outcome != OK || !t.End.Before(c.cfg.FlushedBy) {
			continue
		}
		if c.overlapping(id, t.Start, t.End, Set, Create, Update, Delete) {
			continue // a write racing the touch sets the expiry itself
		}
		c.res.Checked[PropTouchWritten]++
		want := t.Start.Add(c.cfg.TTL - c.cfg.TouchSlack).Truncate(time.Millisecond)
		if final.Expires.Before(want) {
			c.fail(PropTouchWritten, id, fmt.Sprintf("the final expiry %s is before the touch's start plus the TTL less the slack, %s",
				final.Expires.Format(time.StampMilli), want.Format(time.StampMilli)), c.context(id, t.Start, c.cfg.FlushedBy)...)
		}
	}
}
