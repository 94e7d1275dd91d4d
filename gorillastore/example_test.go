package gorillastore_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionstore/sessionstore/gorillastore"
)

// A net/http server keeping gorilla sessions in MongoDB. The hash key
// signs the cookie and the block key encrypts it; to rotate them, pass
// the new pair first and the old one after. This example needs a server,
// so it is compiled but not run here; integration/gorillastore runs the
// gin and echo examples against the test server.
func Example() {
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://localhost:27017"))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(ctx)

	sessions, err := gorillastore.NewSessionStore(client.Database("app").Collection("sessions"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sessions.Close(ctx) // writes the touches still buffered

	store, err := gorillastore.New(sessions, nil, []byte(os.Getenv("SESSION_HASH_KEY")), []byte(os.Getenv("SESSION_BLOCK_KEY")))
	if err != nil {
		log.Fatal(err)
	}

	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s, _ := store.Get(r, "session") // an error means a new session: a refused cookie, or see the error
		gorillastore.Change(r, s, func(v map[any]any) {
			n, _ := v["visits"].(int)
			v["visits"] = n + 1
		})
		if err := s.Save(r, w); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "visit %d\n", s.Values["visits"])
	})
	log.Fatal(http.ListenAndServe(":3000", nil))
}
