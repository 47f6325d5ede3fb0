package conformance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/wire"
)

// lib is one MQTT library on one protocol version and transport.
type lib struct {
	name      string // paho-go, paho-python, mqtt.js
	version   int    // 4 (3.1.1) or 5
	transport imtest.Transport
}

func (l lib) String() string {
	v := "3.1.1"
	if l.version == 5 {
		v = "5"
	}
	return fmt.Sprintf("%s/%s/%s", l.name, v, l.transport)
}

// libs are the clients every refusal is checked with. paho.golang (MQTT 5)
// takes a net.Conn and has no WebSocket dialer of its own: TCP only.
var libs = []lib{
	{"paho-go", 4, imtest.TCP}, {"paho-go", 4, imtest.WS}, {"paho-go", 5, imtest.TCP},
	{"paho-python", 4, imtest.TCP}, {"paho-python", 5, imtest.TCP}, {"paho-python", 4, imtest.WS}, {"paho-python", 5, imtest.WS},
	{"mqtt.js", 4, imtest.TCP}, {"mqtt.js", 5, imtest.TCP}, {"mqtt.js", 4, imtest.WS}, {"mqtt.js", 5, imtest.WS},
}

func (l lib) start(t *testing.T) *driver {
	t.Helper()
	switch l.name {
	case "paho-python":
		return startPython(t)
	case "mqtt.js":
		return startNode(t)
	}
	return startPahoGo(t)
}

func (l lib) url(s *imtest.Server) string {
	if l.transport == imtest.WS {
		return s.WSURL
	}
	if l.name == "mqtt.js" {
		return "mqtt://" + s.MQTTAddr
	}
	return "tcp://" + s.MQTTAddr
}

// pubackCodes are the reason codes MQTT 5 allows in a PUBACK (and PUBREC).
var pubackCodes = map[int]bool{0x00: true, 0x10: true, 0x80: true, 0x83: true, 0x87: true, 0x90: true, 0x91: true, 0x97: true, 0x99: true}

// reasonFor is the PUBACK reason code the contract gives each error code.
var reasonFor = map[string]int{
	wire.CodeForbidden: 0x87, wire.CodeInvalid: 0x99, wire.CodeTooLarge: 0x97, wire.CodeNotFound: 0x90, wire.CodeRateLimited: 0x97,
}

// fixture is the users and rooms one library's tests run with: a sends, b
// is its correspondent, c owns a room a is not in.
type fixture struct {
	srv     *imtest.Server
	a, b, c imtest.User
	room    int64 // c's private room
	shop    int64
	n       atomic.Int64
}

func newFixture(t *testing.T, srv *imtest.Server, shop int64) *fixture {
	t.Helper()
	f := &fixture{srv: srv, a: srv.Register(t, "a"), b: srv.Register(t, "b"), c: srv.Register(t, "c"), shop: shop}
	var room wire.Room
	srv.MustDo(t, "POST", "/api/v1/rooms", f.c.Token, map[string]any{"name": "closed", "private": true}, http.StatusCreated, &room)
	f.room = room.RoomID
	return f
}

func newShop(t *testing.T, srv *imtest.Server) int64 {
	t.Helper()
	var shop struct {
		ID int64 `json:"shop_id"`
	}
	srv.MustDo(t, "POST", "/api/v1/shops", srv.Admin.Token, map[string]any{"name": "Tea House"}, http.StatusCreated, &shop)
	return shop.ID
}

// refusal is one publish the contract refuses.
type refusal struct {
	name    string
	topic   string
	payload []byte
	code    string // the error event's code
	cid     string // the cid the event must carry ("" when the payload has none)
}

func textPayload(cid, body string) []byte {
	b, _ := json.Marshal(map[string]any{"cid": cid, "type": "text", "body": body})
	return b
}

// refusals lists PROTOCOL §4's refusals for f.a.
func (f *fixture) refusals() []refusal {
	inbox := func(uid int64) string { return fmt.Sprintf("im/u/%d", uid) }
	p := func(cid string) []byte { return textPayload(cid, "hello") }
	return []refusal{
		{"topic outside the table", "chat/general", p("r-outside"), wire.CodeForbidden, "r-outside"},
		{"$SYS topic", "$SYS/x", p("r-sys"), wire.CodeForbidden, "r-sys"},
		{"wildcard + in topic name", "im/u/+", p("r-plus"), wire.CodeForbidden, "r-plus"},
		{"wildcard # in topic name", "im/#", p("r-hash"), wire.CodeForbidden, "r-hash"},
		{"room of which not a member", fmt.Sprintf("im/r/%d", f.room), p("r-member"), wire.CodeForbidden, "r-member"},
		{"broadcast by a non-admin", "im/sys/broadcast", p("r-bcast"), wire.CodeForbidden, "r-bcast"},
		{"shop reply by a non-agent", fmt.Sprintf("im/s/%d/u/%d", f.shop, f.b.UID), p("r-reply"), wire.CodeForbidden, "r-reply"},
		{"invalid JSON", inbox(f.b.UID), []byte(`{"cid":"r-json","type":"text","body":"unterminated`), wire.CodeInvalid, ""},
		{"unknown type", inbox(f.b.UID), []byte(`{"cid":"r-type","type":"video","body":"x"}`), wire.CodeInvalid, "r-type"},
		{"bad body", inbox(f.b.UID), []byte(`{"cid":"r-body","type":"image","body":{"url":"javascript:alert(1)"}}`), wire.CodeInvalid, "r-body"},
		{"cid too long", inbox(f.b.UID), p(strings.Repeat("c", wire.MaxCIDLen+1)), wire.CodeInvalid, ""},
		{"text over 4000 characters", inbox(f.b.UID), textPayload("r-text", strings.Repeat("é", wire.MaxTextLen+1)), wire.CodeTooLarge, "r-text"},
		{"payload over 64 KiB", inbox(f.b.UID), textPayload("r-big", strings.Repeat("x", wire.MaxPayload)), wire.CodeTooLarge, ""},
		{"message to oneself", inbox(f.a.UID), p("r-self"), wire.CodeInvalid, "r-self"},
		{"unknown user", "im/u/999999999", p("r-user"), wire.CodeNotFound, "r-user"},
		{"unknown room", "im/r/999999999", p("r-room"), wire.CodeNotFound, "r-room"},
		{"unknown shop", "im/s/999999999", p("r-shop"), wire.CodeNotFound, "r-shop"},
		{"invalid UTF-8 in a text body", inbox(f.b.UID), []byte("{\"cid\":\"r-utf8\",\"type\":\"text\",\"body\":\"caf\xe9 \xff\"}"), wire.CodeInvalid, "r-utf8"},
	}
}

// session is one connection of a library as user u, subscribed to its
// inbox; seen keeps every event the checks skipped over.
type session struct {
	t    *testing.T
	d    *driver
	l    lib
	f    *fixture
	u    imtest.User
	conn string
	seen []event
}

func (f *fixture) open(t *testing.T, d *driver, l lib, u imtest.User) *session {
	t.Helper()
	n := f.n.Add(1)
	s := &session{t: t, d: d, l: l, f: f, u: u, conn: fmt.Sprintf("k%d", n)}
	ev, ok := d.do(t, command{Op: "connect", Conn: s.conn, URL: l.url(f.srv), Version: l.version,
		ClientID: fmt.Sprintf("u%d-conf-%d", u.UID, n), Username: u.Username, Password: u.Token}, wait)
	if !ok || ev.Ev != "connack" || ev.rc() != 0 {
		t.Fatalf("%s: connect: %v (answered %v)\n%s", l, ev, ok, d.recent())
	}
	ev, ok = d.do(t, command{Op: "subscribe", Conn: s.conn, Topic: fmt.Sprintf("im/u/%d", u.UID), QoS: 1}, wait)
	if !ok || ev.Ev != "suback" || len(ev.Codes) != 1 || ev.Codes[0] >= 0x80 {
		t.Fatalf("%s: subscribe to the inbox: %v (answered %v)\n%s", l, ev, ok, d.recent())
	}
	t.Cleanup(func() { d.do(t, command{Op: "disconnect", Conn: s.conn}, wait) })
	return s
}

// await waits for a queued event, keeping the ones it skips.
func (s *session) await(match func(event) bool) (event, bool) {
	return s.d.await(s.conn, wait, func(ev event) bool {
		if match(ev) {
			return true
		}
		s.seen = append(s.seen, ev)
		return false
	})
}

// inboxEvent waits for an event (the "event" field) on the inbox.
func (s *session) inboxEvent(match func(wire.ErrorEvent) bool) (wire.ErrorEvent, bool) {
	var got wire.ErrorEvent
	_, ok := s.await(func(ev event) bool {
		if ev.Ev != "message" || ev.Topic != fmt.Sprintf("im/u/%d", s.u.UID) {
			return false
		}
		var e wire.ErrorEvent
		if json.Unmarshal(ev.Payload, &e) != nil || !match(e) {
			return false
		}
		got = e
		return true
	})
	return got, ok
}

// probe sends a normal message to b and reports what went wrong: no ack,
// a refused ack, or no echo.
func (s *session) probe() []string {
	cid := fmt.Sprintf("probe-%s-%d", s.conn, s.f.n.Add(1))
	ev, ok := s.d.do(s.t, command{Op: "publish", Conn: s.conn, Topic: fmt.Sprintf("im/u/%d", s.f.b.UID), Payload: textPayload(cid, "still there?"), QoS: 1}, wait)
	switch {
	case !ok:
		return []string{fmt.Sprintf("a normal publish afterwards got no PUBACK within %v: the client hangs", wait)}
	case ev.Ev != "puback":
		return []string{fmt.Sprintf("a normal publish afterwards failed in the library (%s): %s", ev.Ev, ev.Error)}
	case ev.rc() != 0:
		return []string{fmt.Sprintf("a normal publish afterwards got reason code 0x%02x", ev.rc())}
	}
	_, ok = s.await(func(ev event) bool {
		var env wire.Envelope
		return ev.Ev == "message" && json.Unmarshal(ev.Payload, &env) == nil && env.CID == cid && env.Seq > 0
	})
	if !ok {
		return []string{fmt.Sprintf("a normal publish afterwards was acked but its echo did not arrive within %v", wait)}
	}
	return nil
}

// trouble lists crashes, disconnects and library errors among the events.
func (s *session) trouble() []string {
	var out []string
	evs := append(s.seen, s.d.drain(s.conn, 0)...)
	for _, c := range s.d.crashed(evs) {
		out = append(out, "the library crashed: "+firstLine(c))
	}
	for _, ev := range evs {
		switch ev.Ev {
		case "disconnect", "close":
			out = append(out, fmt.Sprintf("the connection ended (%s rc=%d %s)", ev.Ev, ev.rc(), ev.Error))
		case "log":
			out = append(out, "the library reported: "+ev.Msg)
		case "wire":
			if !pubackCodes[ev.rc()] {
				out = append(out, fmt.Sprintf("the server sent %s with reason code 0x%02x", strings.ToUpper(strings.TrimSuffix(ev.Kind, "comp")), ev.rc()))
			}
		}
	}
	return out
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// TestRefusals publishes each refusal of PROTOCOL §4 at QoS 1 with each
// library and checks that the library survives it (a normal publish
// afterwards gets its ack and its echo), that on MQTT 5 the PUBACK carries
// a reason code valid in a PUBACK and the contract's one, and that the
// error event with the contract's code arrives on the inbox.
func TestRefusals(t *testing.T) {
	srv := imtest.Start(t, imtest.Options{})
	shop := newShop(t, srv)
	for _, l := range libs {
		t.Run(l.String(), func(t *testing.T) {
			t.Parallel()
			d := l.start(t)
			f := newFixture(t, srv, shop)
			for _, r := range f.refusals() {
				t.Run(r.name, func(t *testing.T) { checkRefusal(t, d, l, f, r) })
			}
			t.Run("subscription to another user's inbox", func(t *testing.T) {
				s := f.open(t, d, l, f.a)
				ev, ok := d.do(t, command{Op: "subscribe", Conn: s.conn, Topic: fmt.Sprintf("im/u/%d", f.b.UID), QoS: 1}, wait)
				var problems []string
				switch {
				case !ok:
					problems = append(problems, fmt.Sprintf("no SUBACK within %v", wait))
				case ev.Ev != "suback" || len(ev.Codes) != 1:
					problems = append(problems, "SUBACK: "+ev.String())
				case l.version == 4 && ev.Codes[0] != 0x80:
					problems = append(problems, fmt.Sprintf("SUBACK 0x%02x, want 0x80 (failure)", ev.Codes[0]))
				case l.version == 5 && ev.Codes[0] != 0x87:
					problems = append(problems, fmt.Sprintf("SUBACK 0x%02x, want 0x87 (not authorized)", ev.Codes[0]))
				}
				problems = append(problems, s.probe()...)
				problems = append(problems, s.trouble()...)
				if len(problems) > 0 {
					t.Errorf("%s, subscribing to b's inbox:\n  %s", l, strings.Join(problems, "\n  "))
				}
			})
		})
	}
}

func checkRefusal(t *testing.T, d *driver, l lib, f *fixture, r refusal) {
	s := f.open(t, d, l, f.a)
	var problems []string
	ev, ok := d.do(t, command{Op: "publish", Conn: s.conn, Topic: r.topic, Payload: r.payload, QoS: 1}, wait)
	libraryRefused := false
	switch {
	case !ok:
		problems = append(problems, fmt.Sprintf("no PUBACK within %v (the library got none, or could not read it)", wait))
	case ev.Ev == "refused_by_library":
		libraryRefused = true
		t.Logf("%s would not send it: %s", l, ev.Error)
	case ev.Ev == "publish_error":
		problems = append(problems, "the publish failed in the library: "+ev.Error)
	case ev.Ev != "puback":
		problems = append(problems, "publish: "+ev.String())
	case l.version == 5 && !pubackCodes[ev.rc()]:
		problems = append(problems, fmt.Sprintf("PUBACK reason code 0x%02x is not one MQTT 5 allows in a PUBACK (want 0x%02x)", ev.rc(), reasonFor[r.code]))
	case l.version == 5 && ev.rc() != reasonFor[r.code]:
		problems = append(problems, fmt.Sprintf("PUBACK reason code 0x%02x, want 0x%02x (%s)", ev.rc(), reasonFor[r.code], r.code))
	case l.version == 4 && ev.rc() != 0:
		problems = append(problems, fmt.Sprintf("PUBACK reason %d on 3.1.1", ev.rc()))
	}
	if !libraryRefused {
		e, ok := s.inboxEvent(func(e wire.ErrorEvent) bool { return e.Event == wire.EventError && e.Topic == r.topic })
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("no error event for topic %q on the inbox within %v", r.topic, wait))
		case e.Code != r.code:
			problems = append(problems, fmt.Sprintf("error event code %q, want %q (%s)", e.Code, r.code, e.Message))
		case r.cid != "" && e.CID != r.cid:
			problems = append(problems, fmt.Sprintf("error event cid %q, want %q", e.CID, r.cid))
		}
	}
	problems = append(problems, s.probe()...)
	problems = append(problems, s.trouble()...)
	if len(problems) > 0 {
		t.Errorf("%s, %s (publish to %q, %d bytes):\n  %s", l, r.name, r.topic, len(r.payload), strings.Join(problems, "\n  "))
	}
}
