// Package ginstore is a [gin-contrib/sessions] store over a
// sessionstore.Store: [gorillastore] with the Options method gin-contrib
// asks for, in a module of its own so that gin stays out of gorillastore's.
//
//	sessionsStore, err := gorillastore.NewSessionStore(client.Database("app").Collection("sessions"), nil)
//	if err != nil { ... }
//	defer sessionsStore.Close(ctx) // after the last request: writes pending touches
//	store, err := ginstore.New(sessionsStore, nil, hashKey, blockKey)
//	if err != nil { ... }
//	r := gin.Default()
//	r.Use(sessions.Sessions("session", store))
//
// Handlers use sessions.Default(c) as with gin-contrib's other stores.
// gin-contrib saves a session only after Set, Delete, Clear, AddFlash,
// Flashes or Options; a session saved unchanged costs no write, only a
// batched extension of its expiry. Concurrent requests of one session
// merge key by key; a read-modify-write such as a counter goes through
// [Change] so that none is lost. The package documentation of gorillastore
// says the rest: cookies and key rotation, expiry, the codec, versioned
// saves.
//
// [gin-contrib/sessions]: https://github.com/gin-contrib/sessions
package ginstore
