package clients_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/imserver/imserver/clients"
	"github.com/imserver/imserver/wire"
)

// A chat client: log in, connect, print what arrives, send a message.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const server = "http://127.0.0.1:8080"
	api := clients.NewAPI(server, nil)
	if _, err := api.Register(ctx, "alice", "secret1"); err != nil && !errors.Is(err, clients.ErrConflict) {
		log.Fatal(err)
	}
	tok, err := api.Login(ctx, "alice", "secret1")
	if err != nil {
		log.Fatal(err)
	}

	c, err := clients.Dial(ctx, clients.Options{
		Server: server,
		Token:  tok,
		Handlers: clients.Handlers{
			Message: func(m wire.Envelope) {
				fmt.Printf("%s #%d from %d: %s\n", m.Conv, m.Seq, m.From, clients.TextOf(m))
			},
			Read: func(ev wire.ReadEvent) { fmt.Printf("%d read %s up to #%d\n", ev.UID, ev.Conv, ev.Seq) },
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	env, err := c.SendUser(ctx, 3, clients.Text("hello"))
	switch {
	case errors.Is(err, clients.ErrNotFound):
		fmt.Println("there is no user 3")
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println("stored as", env.Conv, env.Seq)
	}
}

// Resuming where the app left off: save Positions when stopping, pass them
// to the next Dial.
func ExampleClient_Positions() {
	ctx := context.Background()
	var saved map[string]int64 // loaded from the app's storage
	tok := wire.Token{}        // from api.Login
	c, err := clients.Dial(ctx, clients.Options{Server: "http://127.0.0.1:8080", Token: tok, Positions: saved})
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		saved = c.Positions() // store it for the next run
		c.Close()
	}()
}

// Reading history page by page, oldest first.
func ExampleAPI_History() {
	ctx := context.Background()
	api := clients.NewAPI("http://127.0.0.1:8080", nil).WithToken("…access token…")
	var after int64
	for {
		page, err := api.History(ctx, "u:1:2", clients.After(after, 200))
		if err != nil {
			log.Fatal(err)
		}
		for _, m := range page {
			fmt.Println(m.Seq, clients.TextOf(m))
			after = m.Seq
		}
		if len(page) < 200 {
			break
		}
	}
}
