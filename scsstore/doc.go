// Package scsstore lets an [scs] SessionManager keep its sessions in a
// sessionstore.Store: in MongoDB, behind the store's in-memory tier, with
// its batched touches and TTL management.
//
// The adapter works on a *sessionstore.Store[[]byte] whose codec passes
// scs's bytes through unchanged; [NewSessionStore] makes one:
//
//	sessions, err := scsstore.NewSessionStore(client.Database("app").Collection("sessions"), nil)
//	if err != nil { ... }
//	defer sessions.Close(ctx) // after the last request: writes pending touches
//	sm := scs.New()
//	sm.Store = scsstore.New(sessions, nil)
//
// # Expiry
//
// scs passes an absolute expiry to every Commit. The adapter stores it as
// it is: a Commit that changes the session writes the document with
// expires set to that time, to the millisecond (the precision of a BSON
// date). The store's TTL and TTLFunc options play no part.
//
// # Unchanged commits are touches
//
// With IdleTimeout set, scs commits every session on every request, even
// one that only read it, to push its idle expiry forward. Writing the
// whole session each time would cost one database write per request. So
// Commit first reads the stored session, from the store's in-memory tier
// when it holds it (it does after the Find that loaded the session for the
// request), and compares. When nothing changed, Commit only extends the
// expiry with [sessionstore.Store.TouchUntil]: the extension is buffered
// and written with other sessions' in one updateMany of {$set: {expires}}
// every TouchInterval, rounded up to TouchGranularity (one second by
// default). Such a Commit never shortens an expiry, which scs does not
// need: its absolute deadline is part of the session's bytes, so an
// unchanged session has an unchanged deadline, and the idle expiry it asks
// for only moves forward (unless IdleTimeout is lowered, or the clocks of
// several servers disagree: then the later expiry stays).
//
// Sessions compare equal when their bytes are equal, or, since gob writes
// maps in random order, when both decode with the SessionManager's codec
// (see [Options]) to the same deadline and values.
//
// [scs]: https://github.com/alexedwards/scs
package scsstore
