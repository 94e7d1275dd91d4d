package ttlindex

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sessionstore/sessionstore/ttl"
)

// fakeServer answers commands the way the server it imitates does. It
// keeps the collection's index list so that commands take effect.
type fakeServer struct {
	mu sync.Mutex // protects every field below

	version string // reported by buildInfo; "" makes buildInfo fail
	major   int    // decides whether collMod can convert a plain index
	minor   int    //
	noTTL   bool   // FerretDB v1: no TTL indexes, no collMod
	batch   int    // listIndexes batch size; 0 means all in firstBatch
	indexes []bson.D
	missing bool // the collection does not exist yet

	// errs answers the named command with an error instead, once per
	// entry.
	errs map[string][]error
	// beforeCreate runs when createIndexes arrives, before it is answered.
	beforeCreate func(f *fakeServer)

	sent []bson.D
}

func (f *fakeServer) RunCommand(ctx context.Context, cmd bson.D) (bson.Raw, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, cmd)
	name := cmd[0].Key
	if name == "createIndexes" && f.beforeCreate != nil {
		f.beforeCreate(f)
	}
	if q := f.errs[name]; len(q) > 0 {
		f.errs[name] = q[1:]
		return nil, q[0]
	}
	switch name {
	case "buildInfo":
		if f.version == "" {
			return nil, cmdErr(13, "Unauthorized", "not authorized on app to execute command buildInfo")
		}
		return marshal(bson.D{
			{Key: "version", Value: f.version},
			{Key: "versionArray", Value: bson.A{int32(f.major), int32(f.minor), int32(0), int32(0)}},
			{Key: "ok", Value: 1.0},
		}), nil
	case "listIndexes":
		if f.missing {
			return nil, cmdErr(26, "NamespaceNotFound", "ns does not exist: app.sessions")
		}
		first := f.indexes
		id := int64(0)
		if f.batch > 0 && len(first) > f.batch {
			first, id = first[:f.batch], 42
		}
		return cursorReply("firstBatch", id, first), nil
	case "getMore":
		if f.batch == 0 || len(f.indexes) <= f.batch {
			return nil, cmdErr(43, "CursorNotFound", "cursor id 42 not found")
		}
		return cursorReply("nextBatch", 0, f.indexes[f.batch:]), nil
	case "createIndexes":
		spec := lookup(cmd, "indexes").(bson.A)[0].(bson.D)
		if f.noTTL && lookup(spec, "expireAfterSeconds") != nil {
			return nil, cmdErr(238, "NotImplemented", "Index option \"expireAfterSeconds\" is not implemented yet")
		}
		for _, ix := range f.indexes {
			if lookup(ix, "name") != lookup(spec, "name") {
				continue
			}
			if !sameIndex(ix, spec) {
				return nil, cmdErr(85, "IndexOptionsConflict", "An existing index has the same name as the requested index")
			}
			return okReply(), nil // identical: no-op
		}
		f.missing = false
		f.indexes = append(f.indexes, append(bson.D{{Key: "v", Value: int32(2)}}, spec...))
		return okReply(), nil
	case "collMod":
		if f.noTTL {
			return nil, cmdErr(238, "NotImplemented", "collMod is not implemented yet")
		}
		for i, ix := range f.indexes {
			if !isExpiresKey(ix) {
				continue
			}
			if lookup(ix, "expireAfterSeconds") == nil && (f.major < 5 || f.major == 5 && f.minor < 1) {
				return nil, cmdErr(72, "InvalidOptions", "no expireAfterSeconds field to update")
			}
			f.indexes[i] = with(ix, "expireAfterSeconds", int32(0))
			return okReply(), nil
		}
		return nil, cmdErr(27, "IndexNotFound", "cannot find index {expires: 1}")
	}
	return nil, cmdErr(59, "CommandNotFound", "no such command: '"+name+"'")
}

func (f *fakeServer) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for _, c := range f.sent {
		names = append(names, c[0].Key)
	}
	return names
}

func (f *fakeServer) last(name string) bson.D {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.sent) - 1; i >= 0; i-- {
		if f.sent[i][0].Key == name {
			return f.sent[i]
		}
	}
	return nil
}

func (f *fakeServer) index() bson.D {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ix := range f.indexes {
		if isExpiresKey(ix) {
			return ix
		}
	}
	return nil
}

func cmdErr(code int32, name, msg string) error {
	return mongo.CommandError{Code: code, Name: name, Message: msg}
}

func marshal(d bson.D) bson.Raw {
	b, err := bson.Marshal(d)
	if err != nil {
		panic(err)
	}
	return b
}

func okReply() bson.Raw { return marshal(bson.D{{Key: "ok", Value: 1.0}}) }

func cursorReply(batch string, id int64, docs []bson.D) bson.Raw {
	arr := bson.A{}
	for _, d := range docs {
		arr = append(arr, d)
	}
	return marshal(bson.D{
		{Key: "cursor", Value: bson.D{
			{Key: "id", Value: id},
			{Key: "ns", Value: "app.sessions"},
			{Key: batch, Value: arr},
		}},
		{Key: "ok", Value: 1.0},
	})
}

func lookup(d bson.D, key string) any {
	for _, e := range d {
		if e.Key == key {
			return e.Value
		}
	}
	return nil
}

func with(d bson.D, key string, v any) bson.D {
	out := bson.D{}
	set := false
	for _, e := range d {
		if e.Key == key {
			e.Value, set = v, true
		}
		out = append(out, e)
	}
	if !set {
		out = append(out, bson.E{Key: key, Value: v})
	}
	return out
}

func isExpiresKey(ix bson.D) bool {
	k, ok := lookup(ix, "key").(bson.D)
	return ok && len(k) == 1 && k[0].Key == "expires" && fmt.Sprint(k[0].Value) == "1"
}

func sameIndex(ix, spec bson.D) bool {
	return fmt.Sprint(lookup(ix, "key")) == fmt.Sprint(lookup(spec, "key")) &&
		fmt.Sprint(lookup(ix, "expireAfterSeconds")) == fmt.Sprint(lookup(spec, "expireAfterSeconds"))
}

// Index specs as listIndexes returns them.
var (
	idIndex    = bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "_id", Value: int32(1)}}}, {Key: "name", Value: "_id_"}}
	plainIndex = bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "expires", Value: int32(1)}}}, {Key: "name", Value: "expires_1"}}
)

func ttlIndex(eas any) bson.D { return with(plainIndex, "expireAfterSeconds", eas) }

func mongoDB(version string, indexes ...bson.D) *fakeServer {
	var major, minor int
	fmt.Sscanf(version, "%d.%d", &major, &minor)
	return &fakeServer{version: version, major: major, minor: minor, indexes: append([]bson.D{idIndex}, indexes...)}
}

func ferretDB(indexes ...bson.D) *fakeServer {
	f := mongoDB("7.0.42", indexes...)
	f.noTTL = true
	return f
}

var (
	wantCreate = bson.D{
		{Key: "createIndexes", Value: "sessions"},
		{Key: "indexes", Value: bson.A{bson.D{
			{Key: "name", Value: "expires_1"},
			{Key: "key", Value: bson.D{{Key: "expires", Value: int32(1)}}},
			{Key: "expireAfterSeconds", Value: int32(0)},
		}}},
	}
	wantCollMod = bson.D{
		{Key: "collMod", Value: "sessions"},
		{Key: "index", Value: bson.D{
			{Key: "keyPattern", Value: bson.D{{Key: "expires", Value: int32(1)}}},
			{Key: "expireAfterSeconds", Value: int32(0)},
		}},
	}
)

func TestEnsure(t *testing.T) {
	tests := []struct {
		name     string
		srv      func() *fakeServer
		action   ttl.Action
		cmds     string // command names sent, in order
		reason   string // substring of ttl.Decision.Reason
		ttlAfter bool   // the index has expireAfterSeconds 0 afterwards
	}{
		{"4.4 no index", func() *fakeServer { return mongoDB("4.4.29") }, ttl.Created, "buildInfo listIndexes createIndexes", `created TTL index "expires_1"`, true},
		{"4.4 plain index", func() *fakeServer { return mongoDB("4.4.29", plainIndex) }, ttl.UseReaper, "buildInfo listIndexes", "MongoDB 4.4.29 cannot convert it (needs 5.1)", false},
		{"4.4 ttl 0", func() *fakeServer { return mongoDB("4.4.29", ttlIndex(int32(0))) }, ttl.Present, "buildInfo listIndexes", "already has expireAfterSeconds 0", true},
		{"5.0 NaN", func() *fakeServer { return mongoDB("5.0.13", ttlIndex(math.NaN())) }, ttl.Repaired, "buildInfo listIndexes collMod", "had expireAfterSeconds NaN", true},
		{"5.0 plain index", func() *fakeServer { return mongoDB("5.0.13", plainIndex) }, ttl.UseReaper, "buildInfo listIndexes", "needs 5.1", false},
		{"5.1 plain index", func() *fakeServer { return mongoDB("5.1.1", plainIndex) }, ttl.Converted, "buildInfo listIndexes collMod", `converted index "expires_1"`, true},
		{"6.0 ttl 3600", func() *fakeServer { return mongoDB("6.0.1", ttlIndex(int32(3600))) }, ttl.Repaired, "buildInfo listIndexes collMod", "had expireAfterSeconds 3600", true},
		{"6.0 ttl int64 0", func() *fakeServer { return mongoDB("6.0.1", ttlIndex(int64(0))) }, ttl.Present, "buildInfo listIndexes", "already", true},
		{"6.0 ttl double 0", func() *fakeServer { return mongoDB("6.0.1", ttlIndex(0.0)) }, ttl.Present, "buildInfo listIndexes", "already", true},
		{"6.0 ttl int64 above int32", func() *fakeServer { return mongoDB("6.0.1", ttlIndex(int64(1)<<33)) }, ttl.Repaired, "buildInfo listIndexes collMod", "had expireAfterSeconds 8589934592", true},
		{"7.0 no index", func() *fakeServer { return mongoDB("7.0.12") }, ttl.Created, "buildInfo listIndexes createIndexes", "created", true},
		{"7.0 no collection", func() *fakeServer { f := mongoDB("7.0.12"); f.missing = true; return f }, ttl.Created, "buildInfo listIndexes createIndexes", "created", true},
		{"7.0 identical index", func() *fakeServer { return mongoDB("7.0.12", ttlIndex(int32(0))) }, ttl.Present, "buildInfo listIndexes", "already", true},
		{"8.0 no index", func() *fakeServer { return mongoDB("8.0.4") }, ttl.Created, "buildInfo listIndexes createIndexes", "created", true},
		{"8.0 ttl fractional", func() *fakeServer { return mongoDB("8.0.4", ttlIndex(0.5)) }, ttl.Repaired, "buildInfo listIndexes collMod", "had expireAfterSeconds 0.5", true},
		{"8.0 index in getMore batch", func() *fakeServer {
			f := mongoDB("8.0.4", bson.D{{Key: "key", Value: bson.D{{Key: "a", Value: int32(1)}}}, {Key: "name", Value: "a_1"}}, ttlIndex(int32(0)))
			f.batch = 2
			return f
		}, ttl.Present, "buildInfo listIndexes getMore", "already", true},
		{"FerretDB v1 no index", func() *fakeServer { return ferretDB() }, ttl.UseReaper, "buildInfo listIndexes createIndexes", "server answered createIndexes with 238 NotImplemented", false},
		{"FerretDB v1 plain index", func() *fakeServer { return ferretDB(plainIndex) }, ttl.UseReaper, "buildInfo listIndexes collMod", "answered collMod with 238 NotImplemented", false},
		{"unknown version plain index, 5.0 underneath", func() *fakeServer { f := mongoDB("5.0.13", plainIndex); f.version = ""; return f }, ttl.UseReaper, "buildInfo listIndexes collMod", "answered collMod with 72 InvalidOptions", false},
		{"unknown version plain index, 6.0 underneath", func() *fakeServer { f := mongoDB("6.0.1", plainIndex); f.version = ""; return f }, ttl.Converted, "buildInfo listIndexes collMod", "converted", true},
		{"createIndexes 115", func() *fakeServer {
			f := mongoDB("7.0.12")
			f.errs = map[string][]error{"createIndexes": {cmdErr(115, "CommandNotSupported", "not supported")}}
			return f
		}, ttl.UseReaper, "buildInfo listIndexes createIndexes", "115 CommandNotSupported", false},
		{"createIndexes 59", func() *fakeServer {
			f := mongoDB("7.0.12")
			f.errs = map[string][]error{"createIndexes": {cmdErr(59, "CommandNotFound", "no such command")}}
			return f
		}, ttl.UseReaper, "buildInfo listIndexes createIndexes", "59 CommandNotFound", false},
		{"createIndexes 67", func() *fakeServer {
			f := mongoDB("7.0.12")
			f.errs = map[string][]error{"createIndexes": {cmdErr(67, "CannotCreateIndex", "cannot create index")}}
			return f
		}, ttl.UseReaper, "buildInfo listIndexes createIndexes", "67 CannotCreateIndex", false},
		{"repair answered 115", func() *fakeServer {
			f := mongoDB("6.0.1", ttlIndex(int32(3600)))
			f.errs = map[string][]error{"collMod": {cmdErr(115, "CommandNotSupported", "not supported")}}
			return f
		}, ttl.UseReaper, "buildInfo listIndexes collMod", "expireAfterSeconds 3600 and the server answered collMod with 115", false},
		{"85 conflict: another instance created expires_1 with 3600", func() *fakeServer {
			f := mongoDB("7.0.12")
			f.beforeCreate = func(f *fakeServer) {
				f.indexes = append(f.indexes, ttlIndex(int32(3600)))
				f.beforeCreate = nil
			}
			return f
		}, ttl.Repaired, "buildInfo listIndexes createIndexes listIndexes collMod", "had expireAfterSeconds 3600", true},
		{"86 conflict then identical", func() *fakeServer {
			f := mongoDB("7.0.12")
			f.errs = map[string][]error{"createIndexes": {cmdErr(86, "IndexKeySpecsConflict", "key specs conflict")}}
			f.beforeCreate = func(f *fakeServer) {
				f.indexes = append(f.indexes, ttlIndex(int32(0)))
				f.beforeCreate = nil
			}
			return f
		}, ttl.Present, "buildInfo listIndexes createIndexes listIndexes", "already", true},
	}
	for _, tt := range tests {
		for _, mode := range []ttl.Mode{ttl.Auto, ttl.Require} {
			t.Run(tt.name+"/"+mode.String(), func(t *testing.T) {
				srv := tt.srv()
				d, err := Ensure(context.Background(), srv, "sessions", mode)
				t.Logf("%v", d)

				if got := strings.Join(srv.commands(), " "); got != tt.cmds {
					t.Errorf("commands = %q, want %q", got, tt.cmds)
				}
				if d.Mode != mode || d.Action != tt.action || d.ServerVersion != srv.version {
					t.Errorf("Decision = %+v, want ttl.Mode %v, ttl.Action %v, ServerVersion %q", d, mode, tt.action, srv.version)
				}
				if !strings.Contains(d.Reason, tt.reason) {
					t.Errorf("Reason = %q, want it to contain %q", d.Reason, tt.reason)
				}
				if c := srv.last("createIndexes"); c != nil {
					sameCommand(t, c, wantCreate)
				}
				if c := srv.last("collMod"); c != nil {
					sameCommand(t, c, wantCollMod)
				}
				ix := srv.index()
				if got := ix != nil && fmt.Sprint(lookup(ix, "expireAfterSeconds")) == "0"; got != tt.ttlAfter {
					t.Errorf("TTL index afterwards = %t (%v), want %t", got, ix, tt.ttlAfter)
				}

				switch {
				case tt.action != ttl.UseReaper:
					if err != nil || d.Reaper {
						t.Errorf("err = %v, Reaper = %t; want nil, false", err, d.Reaper)
					}
				case mode == ttl.Auto:
					if err != nil || !d.Reaper || !strings.HasSuffix(d.Reason, "; using the built-in reaper") {
						t.Errorf("err = %v, ttl.Decision %+v; want nil and the reaper", err, d)
					}
				default:
					if !errors.Is(err, ttl.ErrUnsupported) || d.Reaper {
						t.Fatalf("err = %v, Reaper = %t; want ttl.ErrUnsupported, false", err, d.Reaper)
					}
					msg := err.Error()
					if !strings.HasPrefix(msg, "sessionstore: ttl: server cannot keep a TTL index: ") ||
						!strings.Contains(msg, "use Mode Auto") || !strings.Contains(msg, tt.reason) {
						t.Errorf("error %q does not explain itself", msg)
					}
				}
			})
		}
	}
}

func sameCommand(t *testing.T, got, want bson.D) {
	t.Helper()
	g, w := marshal(got), marshal(want)
	if string(g) != string(w) {
		t.Errorf("command = %s, want %s", g, w)
	}
}

func TestEnsureRequireKeepsCommandError(t *testing.T) {
	_, err := Ensure(context.Background(), ferretDB(), "sessions", ttl.Require)
	var ce mongo.CommandError
	if !errors.As(err, &ce) || ce.Code != 238 {
		t.Fatalf("err = %v, want it to wrap the 238 CommandError", err)
	}
}

func TestEnsureOff(t *testing.T) {
	srv := mongoDB("7.0.12")
	d, err := Ensure(context.Background(), srv, "sessions", ttl.Off)
	if err != nil || d.Action != ttl.Disabled || d.Reaper || d.Mode != ttl.Off {
		t.Fatalf("Ensure(ttl.Off) = %+v, %v", d, err)
	}
	if cmds := srv.commands(); len(cmds) != 0 {
		t.Fatalf("Off sent %v", cmds)
	}
	if _, err := Ensure(context.Background(), nil, "sessions", ttl.Off); err != nil {
		t.Fatalf("Off with nil Commander: %v", err)
	}
}

func TestEnsureErrors(t *testing.T) {
	network := mongo.CommandError{Labels: []string{"NetworkError"}, Message: "connection reset by peer"}
	tests := []struct {
		name string
		srv  func() *fakeServer
		ctx  func() context.Context
		cmds string
		is   error // errors.Is target, if any
		code int32 // CommandError code expected in the chain, if not 0
	}{
		{
			name: "network error on listIndexes",
			srv: func() *fakeServer {
				f := mongoDB("7.0.12")
				f.errs = map[string][]error{"listIndexes": {network}}
				return f
			},
			cmds: "buildInfo listIndexes",
		},
		{
			name: "network error on createIndexes is not a reason for the reaper",
			srv: func() *fakeServer {
				f := mongoDB("7.0.12")
				f.errs = map[string][]error{"createIndexes": {network}}
				return f
			},
			cmds: "buildInfo listIndexes createIndexes",
		},
		{
			name: "network error on collMod with unknown version",
			srv: func() *fakeServer {
				f := mongoDB("6.0.1", plainIndex)
				f.version = ""
				f.errs = map[string][]error{"collMod": {network}}
				return f
			},
			cmds: "buildInfo listIndexes collMod",
		},
		{
			name: "unauthorized createIndexes",
			srv: func() *fakeServer {
				f := mongoDB("7.0.12")
				f.errs = map[string][]error{"createIndexes": {cmdErr(13, "Unauthorized", "not authorized")}}
				return f
			},
			cmds: "buildInfo listIndexes createIndexes",
			code: 13,
		},
		{
			name: "conflict that persists",
			srv: func() *fakeServer {
				f := mongoDB("7.0.12")
				c := cmdErr(85, "IndexOptionsConflict", "conflict")
				f.errs = map[string][]error{"createIndexes": {c, c}}
				return f
			},
			cmds: "buildInfo listIndexes createIndexes listIndexes createIndexes",
			code: 85,
		},
		{
			name: "cancelled context",
			srv:  func() *fakeServer { return mongoDB("7.0.12") },
			ctx: func() context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			},
			cmds: "",
			is:   context.Canceled,
		},
		{
			name: "deadline during listIndexes",
			srv: func() *fakeServer {
				f := mongoDB("7.0.12")
				f.errs = map[string][]error{"listIndexes": {context.DeadlineExceeded}}
				return f
			},
			cmds: "buildInfo listIndexes",
			is:   context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		for _, mode := range []ttl.Mode{ttl.Auto, ttl.Require} {
			t.Run(tt.name+"/"+mode.String(), func(t *testing.T) {
				ctx := context.Background()
				if tt.ctx != nil {
					ctx = tt.ctx()
				}
				srv := tt.srv()
				d, err := Ensure(ctx, srv, "sessions", mode)
				if got := strings.Join(srv.commands(), " "); got != tt.cmds {
					t.Errorf("commands = %q, want %q", got, tt.cmds)
				}
				if err == nil {
					t.Fatalf("Ensure = %+v, nil; want an error", d)
				}
				if d.Reaper || errors.Is(err, ttl.ErrUnsupported) {
					t.Errorf("Decision %+v, err %v: a failure must not turn into the reaper", d, err)
				}
				if !strings.HasPrefix(err.Error(), "sessionstore: ttl: ") {
					t.Errorf("error %q lacks the package prefix", err)
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Errorf("err = %v, want errors.Is %v", err, tt.is)
				}
				var ce mongo.CommandError
				if tt.code != 0 && (!errors.As(err, &ce) || ce.Code != tt.code) {
					t.Errorf("err = %v, want CommandError %d in the chain", err, tt.code)
				}
			})
		}
	}
}

// Instances starting together must not fail each other.
func TestEnsureConcurrentInstances(t *testing.T) {
	for _, version := range []string{"4.4.29", "7.0.12", "8.0.4"} {
		t.Run(version, func(t *testing.T) {
			srv := mongoDB(version)
			srv.missing = true
			const n = 8
			var wg sync.WaitGroup
			decisions := make([]ttl.Decision, n)
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() {
					decisions[i], errs[i] = Ensure(context.Background(), srv, "sessions", ttl.Require)
				})
			}
			wg.Wait()
			for i := range n {
				if errs[i] != nil || (decisions[i].Action != ttl.Created && decisions[i].Action != ttl.Present) {
					t.Errorf("instance %d: %v, %v", i, decisions[i], errs[i])
				}
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if len(srv.indexes) != 2 {
				t.Errorf("indexes = %v, want _id_ and expires_1", srv.indexes)
			}
		})
	}
}

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in           string
		major, minor int
		ok           bool
	}{
		{"5.0.13", 5, 0, true},
		{"5.1.0-rc3", 5, 1, true},
		{"7.0", 7, 0, true},
		{"8.0.0-alpha-123-gabc", 8, 0, true},
		{"", 0, 0, false},
		{"seven", 0, 0, false},
		{"7.x.1", 0, 0, false},
	}
	for _, tt := range tests {
		major, minor, ok := parseVersion(tt.in)
		if major != tt.major || minor != tt.minor || ok != tt.ok {
			t.Errorf("parseVersion(%q) = %d, %d, %t; want %d, %d, %t", tt.in, major, minor, ok, tt.major, tt.minor, tt.ok)
		}
	}
}

// A server whose buildInfo has a version string but no versionArray.
type noArrayServer struct{ *fakeServer }

func (s noArrayServer) RunCommand(ctx context.Context, cmd bson.D) (bson.Raw, error) {
	if cmd[0].Key == "buildInfo" {
		s.fakeServer.RunCommand(ctx, cmd)
		return marshal(bson.D{{Key: "version", Value: "5.0.13"}, {Key: "ok", Value: 1.0}}), nil
	}
	return s.fakeServer.RunCommand(ctx, cmd)
}

func TestEnsureVersionFromString(t *testing.T) {
	srv := mongoDB("5.0.13", plainIndex)
	d, err := Ensure(context.Background(), noArrayServer{srv}, "sessions", ttl.Auto)
	if err != nil || d.Action != ttl.UseReaper || d.ServerVersion != "5.0.13" {
		t.Fatalf("Ensure = %v, %v", d, err)
	}
	if got := strings.Join(srv.commands(), " "); got != "buildInfo listIndexes" {
		t.Fatalf("commands = %q: a 5.0 plain index must not be sent collMod", got)
	}
}

func TestEnsureBadArguments(t *testing.T) {
	srv := mongoDB("7.0.12")
	for _, tt := range []struct {
		srv  Commander
		coll string
		mode ttl.Mode
	}{
		{srv, "sessions", ttl.Mode(7)},
		{srv, "sessions", ttl.Mode(-1)},
		{nil, "sessions", ttl.Auto},
		{srv, "", ttl.Auto},
	} {
		if _, err := Ensure(context.Background(), tt.srv, tt.coll, tt.mode); err == nil || !strings.HasPrefix(err.Error(), "sessionstore: ttl: ") {
			t.Errorf("Ensure(%v, %q, %v) = %v, want an error", tt.srv, tt.coll, tt.mode, err)
		}
	}
	if cmds := srv.commands(); len(cmds) != 0 {
		t.Errorf("bad arguments sent %v", cmds)
	}
}
