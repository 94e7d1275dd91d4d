package sessionstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/codec"
)

// Open a store and use it. This example needs a MongoDB server, so it is
// compiled but not run here; the integration module runs the same code
// against a real server.
func ExampleOpen() {
	type Session struct {
		UserID string
		Cart   []string
	}
	ctx := context.Background()
	store, err := sessionstore.Open(ctx, "mongodb://localhost:27017/app", &sessionstore.Options[Session]{
		TTL: 2 * time.Hour,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close(ctx)

	if err := store.Set(ctx, "sid-1", Session{UserID: "ada"}); err != nil {
		log.Fatal(err)
	}
	s, err := store.Get(ctx, "sid-1")
	switch {
	case errors.Is(err, sessionstore.ErrNotFound):
		fmt.Println("no session")
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println(s.UserID)
	}
}

// Sessions written by an Express app with express-session and
// @iwsio/mongodb-express-session (or connect-mongo with stringify: false)
// are read with the BSON codec and a struct with bson tags.
func ExampleOptions_express() {
	type ExpressSession struct {
		Cookie struct {
			OriginalMaxAge int64     `bson:"originalMaxAge"`
			Expires        time.Time `bson:"expires"`
			HTTPOnly       bool      `bson:"httpOnly"`
			Path           string    `bson:"path"`
		} `bson:"cookie"`
		UserID string `bson:"userId"`
	}
	store, err := sessionstore.Open(context.Background(), "mongodb://localhost:27017/app", &sessionstore.Options[ExpressSession]{
		Collection: "sessions",
		Codec:      codec.BSON[ExpressSession]{},
		TTLFunc: func(s ExpressSession) time.Duration {
			return time.Duration(s.Cookie.OriginalMaxAge) * time.Millisecond
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close(context.Background())
}

// Several instances behind a load balancer share one collection: keep the
// default CoherenceStrict, and a logout on one instance is honoured by
// every other within MaxStaleness. A single instance that is the only
// writer can turn the change feed off.
func ExampleCoherence() {
	type Session struct{ UserID string }
	shared := &sessionstore.Options[Session]{
		MaxStaleness: 500 * time.Millisecond, // tighter than the default 1s
	}
	single := &sessionstore.Options[Session]{
		Coherence:   sessionstore.CoherenceOff,
		MaxCacheAge: -1, // memory answers until expiry or eviction
	}
	fmt.Println(shared.Coherence == sessionstore.CoherenceStrict, single.Coherence == sessionstore.CoherenceOff)
	// Output: true true
}
