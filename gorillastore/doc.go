// Package gorillastore is a [gorilla/sessions] store over a
// sessionstore.Store: sessions live in MongoDB, behind the store's
// in-memory tier, with its batched touches, versioned writes and TTL
// management. gorilla/sessions' Store interface is what echo's
// echo-contrib/session and gin's gin-contrib/sessions build on; for gin,
// package ginstore adds the Options method gin-contrib asks for.
//
// The adapter works on a *sessionstore.Store[[]byte] whose codec passes
// bytes through unchanged; [NewSessionStore] makes one:
//
//	sessions, err := gorillastore.NewSessionStore(client.Database("app").Collection("sessions"), nil)
//	if err != nil { ... }
//	defer sessions.Close(ctx) // after the last request: writes pending touches
//	store, err := gorillastore.New(sessions, nil, hashKey, blockKey)
//	if err != nil { ... }
//
//	// net/http, as with any gorilla store:
//	s, err := store.Get(r, "session")
//	s.Values["user"] = "ada"
//	err = s.Save(r, w)
//
//	// echo:
//	e.Use(session.Middleware(store))
//	s, err := session.Get("session", c)
//
// # Cookies and keys
//
// The cookie carries only the session id, signed with securecookie and,
// with a block key, encrypted; the values stay in the database. Key pairs
// rotate as with gorilla's stores: pass the new pair first and the old
// one after it, and cookies signed with either are read, while new ones
// are signed with the new pair. A cookie that no key accepts gives a new
// session along with securecookie's error, as gorilla's stores do; treat
// an error whose securecookie.Error reports IsDecode as "no session".
//
// # Expiry
//
// A session's Options.MaxAge decides both its cookie and its lifetime in
// the database: a Save sets the stored expiry to now plus MaxAge seconds.
// MaxAge 0 makes a browser-session cookie and keeps the stored session
// for the store's TTL; MaxAge < 0 deletes the session at once. Setting ID
// to "" before a Save gives a loaded session a new id and deletes the old
// one, which is what to do at login.
//
// # Unchanged saves are touches
//
// Many handlers save the session on every request, changed or not (gin
// apps that render flashes do, and so do gorilla middlewares). Save keeps
// what New loaded and compares the session's Values with it
// (reflect.DeepEqual): when nothing changed it writes nothing, and only
// extends the expiry through the store's batched touches, written with
// other sessions' in one updateMany every TouchInterval. A request whose
// session is in memory and unchanged thus sends no command of its own.
//
// # Concurrent requests
//
// Saves are versioned: a changed session is written only if the stored
// version is still the one loaded. When another request saved the
// session meanwhile, on this instance or another, Save reads the stored
// values and applies this request's changes to them, then tries again:
//
//   - the functions given to [Change] are called again, in order, on the
//     stored values: read-modify-write changes such as counters add up;
//   - then the keys the request set or deleted directly in Values, apart
//     from those changes, are set or deleted: the last request to save a
//     key wins it, and keys that only the other request changed are kept.
//
// After the Save the session's Values are those stored. A session loaded
// and then deleted by another request (a logout, on any instance) is
// never recreated by a changed Save: it writes nothing, sends a cookie
// that the browser deletes and returns nil; an unchanged Save is a touch,
// which never creates a session either.
//
// Flashes are values under a key ("_flash" by default), so they merge as
// keys do.
//
// # The codec
//
// Values are encoded with [Gob] by default, as gorilla's stores encode
// them, so an application moves to this store without changing what it
// keeps in sessions: Go types survive (an int reads back as an int, a
// registered struct as that struct) and keys need not be strings. The
// price: every custom type stored in a session, time.Time included, must
// be registered with gob.Register, as with gorilla's stores; the bytes
// are readable only from Go; and gob is slower and larger than JSON,
// since each session carries its type descriptions (BenchmarkCodec: a
// six-value session is about three times JSON's size, encodes about five
// times and decodes about eight times slower than JSON). A request that
// loads and saves a session decodes it twice, once to hand it to the
// handler and once to see whether it changed. [Options].Codec takes
// another [Codec].
//
// [gorilla/sessions]: https://github.com/gorilla/sessions
package gorillastore
