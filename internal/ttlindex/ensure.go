package ttlindex

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sessionstore/sessionstore/ttl"
)

// Server error codes Ensure acts on.
const (
	codeNamespaceNotFound     = 26
	codeCommandNotFound       = 59
	codeCannotCreateIndex     = 67
	codeIndexOptionsConflict  = 85
	codeIndexKeySpecsConflict = 86
	codeCommandNotSupported   = 115
	codeNotImplemented        = 238
)

// Commander runs commands on the database that holds the session
// collection. Implementations must be safe for concurrent use.
type Commander interface {
	// RunCommand runs cmd and returns the server's reply. A command the
	// server rejects yields the error the Go driver returns, a
	// mongo.CommandError carrying the server's code.
	RunCommand(ctx context.Context, cmd bson.D) (bson.Raw, error)
}

// DatabaseCommander returns a Commander that runs commands on db with the
// driver's default read preference for RunCommand (primary).
func DatabaseCommander(db *mongo.Database) Commander { return dbCommander{db} }

type dbCommander struct{ db *mongo.Database }

var _ Commander = dbCommander{}

func (c dbCommander) RunCommand(ctx context.Context, cmd bson.D) (bson.Raw, error) {
	return c.db.RunCommand(ctx, cmd).Raw()
}

// Ensure makes sure the collection has a TTL index {expires: 1} with
// expireAfterSeconds 0, or finds out that the server cannot keep one.
//
// It decides from the server's answers, not from its version alone:
// look-alike servers report MongoDB versions yet reject TTL indexes. In
// Auto mode a server that cannot keep the index yields a Decision with
// Reaper set. In Require mode it yields an error wrapping ErrUnsupported.
// Off sends no command. A failure to reach the server, or an answer Ensure
// does not expect, is returned as an error. Several instances may call
// Ensure on the same collection at once.
//
// When err is not nil the Decision still reports what was found, for
// logging; the store must not start with it.
func Ensure(ctx context.Context, srv Commander, collection string, mode ttl.Mode) (ttl.Decision, error) {
	d := ttl.Decision{Mode: mode}
	switch mode {
	case ttl.Off:
		d.Action = ttl.Disabled
		d.Reason = "TTL index management is off; expired sessions are left to the user"
		return d, nil
	case ttl.Auto, ttl.Require:
	default:
		return d, fmt.Errorf("sessionstore: ttl: unknown mode %d", int(mode))
	}
	if srv == nil {
		return d, errors.New("sessionstore: ttl: nil Commander")
	}
	if collection == "" {
		return d, errors.New("sessionstore: ttl: empty collection name")
	}
	e := ensurer{srv: srv, coll: collection, d: d}
	e.buildInfo(ctx)
	return e.run(ctx)
}

// ensurer holds the state of one Ensure call.
type ensurer struct {
	srv  Commander
	coll string
	d    ttl.Decision
	// major and minor are the server version; known reports whether
	// buildInfo gave one.
	major, minor int
	known        bool
}

// buildInfo records the server version. A failure leaves it unknown.
func (e *ensurer) buildInfo(ctx context.Context) {
	reply, err := e.srv.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: int32(1)}})
	if err != nil {
		return
	}
	if s, ok := reply.Lookup("version").StringValueOK(); ok {
		e.d.ServerVersion = s
	}
	if arr, ok := reply.Lookup("versionArray").ArrayOK(); ok {
		vals, err := arr.Values()
		if err == nil && len(vals) >= 2 {
			major, ok1 := vals[0].AsInt64OK()
			minor, ok2 := vals[1].AsInt64OK()
			if ok1 && ok2 {
				e.major, e.minor, e.known = int(major), int(minor), true
				if e.d.ServerVersion == "" {
					e.d.ServerVersion = fmt.Sprintf("%d.%d", major, minor)
				}
				return
			}
		}
	}
	e.major, e.minor, e.known = parseVersion(e.d.ServerVersion)
}

// parseVersion reads the major and minor numbers of a version such as
// "5.0.13" or "7.0.0-rc1".
func parseVersion(s string) (major, minor int, ok bool) {
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(strings.SplitN(parts[1], "-", 2)[0])
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return major, minor, true
}

// before reports whether the server is known to be older than major.minor.
func (e *ensurer) before(major, minor int) bool {
	return e.known && (e.major < major || e.major == major && e.minor < minor)
}

func (e *ensurer) run(ctx context.Context) (ttl.Decision, error) {
	for attempt := 0; ; attempt++ {
		idx, err := e.find(ctx)
		if err != nil {
			return e.d, err
		}
		switch {
		case idx == nil:
			err := e.create(ctx)
			if err == nil {
				return e.done(ttl.Created, fmt.Sprintf("created TTL index %q on %s", ttl.IndexName, e.coll))
			}
			code, name := serverCode(err)
			if unsupported(code) || code == codeCannotCreateIndex {
				return e.reaper(fmt.Sprintf("server answered createIndexes with %s", codeText(code, name)), err)
			}
			if (code == codeIndexOptionsConflict || code == codeIndexKeySpecsConflict) && attempt == 0 {
				// Another instance created a different index meanwhile:
				// look again, once.
				continue
			}
			return e.d, fmt.Errorf("sessionstore: ttl: createIndexes on %s: %w", e.coll, err)

		case !idx.ttl && e.before(5, 1):
			return e.reaper(fmt.Sprintf("index %q on %s has no expireAfterSeconds and MongoDB %s cannot convert it (needs 5.1); leaving it alone",
				idx.name, e.coll, e.d.ServerVersion), nil)

		case idx.zero:
			return e.done(ttl.Present, fmt.Sprintf("TTL index %q on %s already has expireAfterSeconds 0", idx.name, e.coll))

		default:
			// A plain index to convert, or a TTL index to repair: the same
			// collMod does both.
			action := ttl.Repaired
			found := fmt.Sprintf("TTL index %q on %s has expireAfterSeconds %s", idx.name, e.coll, idx.eas)
			fixed := fmt.Sprintf("TTL index %q on %s had expireAfterSeconds %s; set it to 0 with collMod", idx.name, e.coll, idx.eas)
			if !idx.ttl {
				action = ttl.Converted
				found = fmt.Sprintf("index %q on %s has no expireAfterSeconds", idx.name, e.coll)
				fixed = fmt.Sprintf("converted index %q on %s into a TTL index with collMod", idx.name, e.coll)
			}
			err := e.collMod(ctx)
			if err == nil {
				return e.done(action, fixed)
			}
			code, name := serverCode(err)
			// With the version unknown, a plain index may sit on a server
			// older than 5.1, which refuses the conversion with any code.
			if unsupported(code) || (!idx.ttl && !e.known && code != 0) {
				return e.reaper(fmt.Sprintf("%s and the server answered collMod with %s; leaving it alone", found, codeText(code, name)), err)
			}
			return e.d, fmt.Errorf("sessionstore: ttl: collMod on %s: %w", e.coll, err)
		}
	}
}

func (e *ensurer) done(a ttl.Action, reason string) (ttl.Decision, error) {
	e.d.Action = a
	e.d.Reason = reason
	return e.d, nil
}

// reaper ends with the built-in reaper, or with an error in Require mode.
// cause is the server's error, if any.
func (e *ensurer) reaper(why string, cause error) (ttl.Decision, error) {
	e.d.Action = ttl.UseReaper
	if e.d.Mode == ttl.Require {
		e.d.Reason = why
		const hint = "use Mode Auto for the built-in reaper, or create the index by hand and use Mode Off"
		if cause != nil {
			return e.d, fmt.Errorf("%w: %s; %s: %w", ttl.ErrUnsupported, why, hint, cause)
		}
		return e.d, fmt.Errorf("%w: %s; %s", ttl.ErrUnsupported, why, hint)
	}
	e.d.Reaper = true
	e.d.Reason = why + "; using the built-in reaper"
	return e.d, nil
}

func unsupported(code int32) bool {
	return code == codeNotImplemented || code == codeCommandNotSupported || code == codeCommandNotFound
}

// serverCode returns the code and name of a command error the server
// answered with, or 0 for any other error (network errors are
// CommandErrors with code 0).
func serverCode(err error) (int32, string) {
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		return ce.Code, ce.Name
	}
	var pce *mongo.CommandError
	if errors.As(err, &pce) && pce != nil {
		return pce.Code, pce.Name
	}
	return 0, ""
}

func codeText(code int32, name string) string {
	if name == "" {
		return strconv.Itoa(int(code))
	}
	return strconv.Itoa(int(code)) + " " + name
}

// index is an index on exactly {expires: 1}.
type index struct {
	name string
	ttl  bool   // has expireAfterSeconds
	zero bool   // expireAfterSeconds is numerically 0
	eas  string // expireAfterSeconds as text, for Reason
}

// find lists the collection's indexes and returns the one on exactly
// {expires: 1}, or nil. A TTL index with expireAfterSeconds 0 wins over
// others on the same key.
func (e *ensurer) find(ctx context.Context) (*index, error) {
	reply, err := e.srv.RunCommand(ctx, bson.D{{Key: "listIndexes", Value: e.coll}})
	if err != nil {
		if code, _ := serverCode(err); code == codeNamespaceNotFound {
			return nil, nil
		}
		return nil, fmt.Errorf("sessionstore: ttl: listIndexes on %s: %w", e.coll, err)
	}
	var found *index
	batch := "firstBatch"
	// A collection holds at most 64 indexes; the bound only guards
	// against a server that never closes the cursor.
	for range 100 {
		docs, ok := reply.Lookup("cursor", batch).ArrayOK()
		if !ok {
			return nil, fmt.Errorf("sessionstore: ttl: listIndexes on %s: reply has no cursor.%s", e.coll, batch)
		}
		vals, err := docs.Values()
		if err != nil {
			return nil, fmt.Errorf("sessionstore: ttl: listIndexes on %s: %w", e.coll, err)
		}
		for _, v := range vals {
			spec, ok := v.DocumentOK()
			if !ok {
				continue
			}
			if idx := readIndex(spec); idx != nil && (found == nil || !found.zero) {
				found = idx
			}
		}
		id, _ := reply.Lookup("cursor", "id").AsInt64OK()
		if id == 0 {
			return found, nil
		}
		reply, err = e.srv.RunCommand(ctx, bson.D{{Key: "getMore", Value: id}, {Key: "collection", Value: e.coll}})
		if err != nil {
			return nil, fmt.Errorf("sessionstore: ttl: listIndexes on %s: getMore: %w", e.coll, err)
		}
		batch = "nextBatch"
	}
	return nil, fmt.Errorf("sessionstore: ttl: listIndexes on %s: cursor did not end", e.coll)
}

// readIndex returns spec as an index if its key is exactly {expires: 1}.
func readIndex(spec bson.Raw) *index {
	key, ok := spec.Lookup("key").DocumentOK()
	if !ok {
		return nil
	}
	elems, err := key.Elements()
	if err != nil || len(elems) != 1 || elems[0].Key() != "expires" {
		return nil
	}
	if f, ok := elems[0].Value().AsFloat64OK(); !ok || f != 1 {
		return nil
	}
	idx := &index{}
	idx.name, _ = spec.Lookup("name").StringValueOK()
	v, err := spec.LookupErr("expireAfterSeconds")
	if err != nil {
		return idx
	}
	idx.ttl = true
	f, ok := v.AsFloat64OK()
	idx.zero = ok && f == 0
	switch {
	case v.Type == bson.TypeInt32 || v.Type == bson.TypeInt64:
		idx.eas = strconv.FormatInt(v.AsInt64(), 10)
	case ok && math.IsNaN(f):
		idx.eas = "NaN"
	case ok:
		idx.eas = strconv.FormatFloat(f, 'g', -1, 64)
	default:
		idx.eas = v.String()
	}
	return idx
}

func (e *ensurer) create(ctx context.Context) error {
	_, err := e.srv.RunCommand(ctx, bson.D{
		{Key: "createIndexes", Value: e.coll},
		{Key: "indexes", Value: bson.A{bson.D{
			{Key: "name", Value: ttl.IndexName},
			{Key: "key", Value: bson.D{{Key: "expires", Value: int32(1)}}},
			{Key: "expireAfterSeconds", Value: int32(0)},
		}}},
	})
	return err
}

// collMod sets expireAfterSeconds to 0 on the {expires: 1} index. Since
// MongoDB 5.1 this also turns a plain index into a TTL index.
func (e *ensurer) collMod(ctx context.Context) error {
	_, err := e.srv.RunCommand(ctx, bson.D{
		{Key: "collMod", Value: e.coll},
		{Key: "index", Value: bson.D{
			{Key: "keyPattern", Value: bson.D{{Key: "expires", Value: int32(1)}}},
			{Key: "expireAfterSeconds", Value: int32(0)},
		}},
	})
	return err
}
