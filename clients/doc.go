// Package clients is the Go SDK of imserver: what an app needs to build a
// chat client without reading the server's code.
//
// API calls the REST API: Register, Login, history, conversations, read
// positions, rooms, shops and customer-service sessions. Dial opens the MQTT
// connection (over WebSocket by default, or TCP) with the token of a login,
// and gives a Client that
//
//   - subscribes to the user's inbox, the broadcast topic and the rooms it
//     follows, and reconnects and resubscribes by itself;
//   - sends typed messages (SendUser, SendRoom, SendShop, Reply, Broadcast)
//     and returns the stored envelope, resolved by the echo that carries the
//     message's cid, or an *Error resolved by the error event, within the
//     caller's context;
//   - hands messages and every event of the protocol to typed Handlers;
//   - resumes without gaps: it remembers the last seq it handed over per
//     conversation, and after a reconnect, or when a received seq skips
//     ahead, it fetches the missing range from history before handing over
//     later messages, so the app sees each conversation in seq order,
//     exactly once.
//
// The package depends only on the protocol packages (topics, wire) and on
// Paho (github.com/eclipse/paho.mqtt.golang), never on the server.
//
// A minimal client:
//
//	ctx := context.Background()
//	api := clients.NewAPI("http://127.0.0.1:8080", nil)
//	tok, err := api.Login(ctx, "alice", "secret1")
//	if err != nil { … }
//	c, err := clients.Dial(ctx, clients.Options{
//		Server: "http://127.0.0.1:8080",
//		Token:  tok,
//		Handlers: clients.Handlers{
//			Message: func(m wire.Envelope) { fmt.Println(m.Conv, m.Seq, clients.TextOf(m)) },
//		},
//	})
//	if err != nil { … }
//	defer c.Close()
//	env, err := c.SendUser(ctx, bobUID, clients.Text("hello bob"))
//	if errors.Is(err, clients.ErrNotFound) { … } // no such user
//
// Handlers run one at a time on a goroutine of the client, never on the
// network's: a slow handler delays only the next handler calls.
package clients
