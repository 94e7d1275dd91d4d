package integration_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/sessionstore/sessionstore"
	"github.com/sessionstore/sessionstore/integration/mongotest"
)

// The quick start of the README, run against the test server.
func Example() {
	type Session struct {
		UserID string
		Cart   []string
	}
	ctx := context.Background()
	uri := withDatabase(mongotest.URI(), mongotest.Database)
	store, err := sessionstore.Open(ctx, uri, &sessionstore.Options[Session]{
		Collection: "example_sessions",
		TTL:        2 * time.Hour,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close(ctx)
	defer store.Clear(ctx)

	if err := store.Set(ctx, "sid-1", Session{UserID: "ada", Cart: []string{"book"}}); err != nil {
		log.Fatal(err)
	}
	s, err := store.Get(ctx, "sid-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.UserID, s.Cart)

	_ = store.Touch(ctx, "sid-1") // buffered; written in a batch
	_ = store.Delete(ctx, "sid-1")
	if _, err := store.Get(ctx, "sid-1"); errors.Is(err, sessionstore.ErrNotFound) {
		fmt.Println("gone")
	}
	// Output:
	// ada [book]
	// gone
}
