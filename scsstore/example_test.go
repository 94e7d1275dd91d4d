package scsstore_test

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionstore/sessionstore/scsstore"
)

// An scs SessionManager keeping its sessions in MongoDB. With IdleTimeout
// set, requests that only read the session extend it through the store's
// batched touches. This example needs a server, so it is compiled but not
// run here; integration/scsstore runs it against the test server.
func Example() {
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://localhost:27017"))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(ctx)

	sessions, err := scsstore.NewSessionStore(client.Database("app").Collection("sessions"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sessions.Close(ctx) // writes the touches still buffered

	sm := scs.New()
	sm.Store = scsstore.New(sessions, nil)
	sm.IdleTimeout = 30 * time.Minute

	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), "user", "ada")
	})
	log.Fatal(http.ListenAndServe(":3000", sm.LoadAndSave(mux)))
}
