// Package history records what a workload asked of session stores and
// what they answered, reads what the server holds, and checks the two
// against the guarantees of sessionstore, in the manner of Jepsen's
// checkers: every call has a start, an end and a result, and a property
// holds if some order of the calls consistent with those explains every
// result; where the history cannot tell, the checker gives the store the
// benefit of the doubt, never a false alarm.
//
// Sessions carry their provenance as their value ([Value]): the token of
// the Set or Create they descend from and the tokens of the Updates
// applied since, in order. A read thus says which writes it saw, and the
// final state which writes survived.
//
// [Run] drives a mixed load over two or more stores, [Sample] reads the
// server while it runs and [Check] verifies the history afterwards.
package history

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Kind names an operation.
type Kind string

// Kinds of operations. A request through the httpsession middleware is
// recorded as the Get that loads its session and the Update that saves
// the handler's change.
const (
	Get    Kind = "get"
	Set    Kind = "set"
	Create Kind = "create"
	Update Kind = "update"
	Touch  Kind = "touch"
	Delete Kind = "delete"
)

// blind reports whether k writes a session without reading it: its value
// replaces whatever is stored.
func (k Kind) blind() bool { return k == Set || k == Create }

// writes reports whether k changes a session's value or existence.
func (k Kind) writes() bool { return k.blind() || k == Update || k == Delete }

// Outcome is how a call ended.
type Outcome string

// Outcomes. After Failed, a write may or may not have been applied, then
// or at any later time: the history treats it as never ending.
const (
	OK       Outcome = "ok"
	NotFound Outcome = "not-found" // the session does not exist (Get, Update)
	Exists   Outcome = "exists"    // Create found the id taken
	Failed   Outcome = "failed"    // any other error
)

// Value is a session of the workload: its provenance.
type Value struct {
	// Base is the token of the Set or Create this value descends from.
	Base string `json:"base" bson:"base" msgpack:"base"`
	// Applied are the tokens of the Updates applied since Base, oldest
	// first.
	Applied []string `json:"applied" bson:"applied" msgpack:"applied"`
}

// String formats v as Base+[Applied...].
func (v Value) String() string {
	return v.Base + "+[" + strings.Join(v.Applied, ",") + "]"
}

// equal reports whether v and w are the same value.
func (v Value) equal(w Value) bool {
	return v.Base == w.Base && slices.Equal(v.Applied, w.Applied)
}

// Op is one call and its result.
type Op struct {
	Instance string    `json:"instance"` // the store called
	Kind     Kind      `json:"kind"`
	ID       string    `json:"id"`
	Token    string    `json:"token,omitempty"` // the write's token: Base of a Set or Create, appended by an Update
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Outcome  Outcome   `json:"outcome"`
	Err      string    `json:"err,omitempty"`
	// Value is what a Get returned, or what an Update stored, when OK.
	Value *Value `json:"value,omitempty"`
}

// ends returns when op's effect is known to be complete: its End when
// it succeeded or was refused, and never when it failed, since a failed
// write may still be applied.
func (op *Op) ends() time.Time {
	if op.Outcome == Failed {
		return forever
	}
	return op.End
}

// forever is a time after every call.
var forever = time.Unix(1<<40, 0)

// Recorder collects the operations of a workload. It is safe for
// concurrent use; its zero value is ready.
type Recorder struct {
	tokens atomic.Uint64

	mu  sync.Mutex // protects ops
	ops []Op
}

// Token returns a token no other call of r returns, for a write.
func (r *Recorder) Token(instance string) string {
	return fmt.Sprintf("%s%d", instance, r.tokens.Add(1))
}

// Begin starts recording a call of kind on id by instance, writing token
// when it is a write; finish the call with [Call.End].
func (r *Recorder) Begin(instance string, kind Kind, id, token string) *Call {
	return &Call{r: r, op: Op{Instance: instance, Kind: kind, ID: id, Token: token, Start: time.Now()}}
}

// Add records op as it is.
func (r *Recorder) Add(op Op) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

// Ops returns a copy of the operations recorded so far, in the order
// they ended.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ops)
}

// Call is a call being recorded.
type Call struct {
	r  *Recorder
	op Op
}

// End records the call's result: outcome, the error when it failed, and
// the value a Get returned or an Update stored.
func (c *Call) End(outcome Outcome, err error, v *Value) {
	c.op.End = time.Now()
	c.op.Outcome = outcome
	if err != nil {
		c.op.Err = err.Error()
	}
	if v != nil {
		cp := Value{Base: v.Base, Applied: slices.Clone(v.Applied)}
		c.op.Value = &cp
	}
	c.r.Add(c.op)
}

// Doc is a session document as the server holds it.
type Doc struct {
	Value   Value
	Rev     int64
	Expires time.Time
}

// Snapshot is a read of every session document: each one as the server
// held it at some moment between Start and End.
type Snapshot struct {
	Start, End time.Time
	Docs       map[string]Doc
}
