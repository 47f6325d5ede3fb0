package conformance

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imserver/imserver/internal/imtest"
)

// maxPacketSize is the largest packet the server reads (docs/protocol.md:
// "packets over 256 KiB close the connection"); an MQTT 5 CONNACK must
// announce it.
const maxPacketSize = 256 << 10

// connectAs sends a CONNECT through the library and returns its answer.
func connectAs(t *testing.T, d *driver, l lib, srv *imtest.Server, conn string, u imtest.User, clientID, token string, props map[string]int) (event, bool) {
	t.Helper()
	return d.do(t, command{Op: "connect", Conn: conn, URL: l.url(srv), Version: l.version,
		ClientID: clientID, Username: u.Username, Password: token, Props: props}, wait)
}

// TestConnack checks what each library sees of the server's CONNACK:
// MQTT 5's properties announce what the server enforces, and refused
// CONNECTs get the contract's code and leave the library usable.
func TestConnack(t *testing.T) {
	srv := imtest.Start(t, imtest.Options{})
	shop := newShop(t, srv)
	for _, l := range libs {
		t.Run(l.String(), func(t *testing.T) {
			t.Parallel()
			d := l.start(t)
			f := newFixture(t, srv, shop)
			notAuthorized, badID := 5, 2
			if l.version == 5 {
				notAuthorized, badID = 0x87, 0x85
			}
			if l.version == 5 {
				t.Run("properties", func(t *testing.T) {
					ev, ok := connectAs(t, d, l, srv, "props", f.a, fmt.Sprintf("u%d-props", f.a.UID), f.a.Token, nil)
					defer d.do(t, command{Op: "disconnect", Conn: "props"}, wait)
					if !ok || ev.Ev != "connack" || ev.rc() != 0 {
						t.Fatalf("connect: %v (answered %v)", ev, ok)
					}
					var problems []string
					prop := func(name string, def float64) (float64, bool) {
						v, ok := ev.Props[name].(float64)
						if !ok {
							return def, false
						}
						return v, true
					}
					if v, ok := prop("maximum_packet_size", 0); !ok || v != maxPacketSize {
						problems = append(problems, fmt.Sprintf("maximum packet size %v (present: %v), want %d", v, ok, maxPacketSize))
					}
					for _, name := range []string{"retain_available", "wildcard_subscription_available", "shared_subscription_available"} {
						if v, ok := prop(name, 1); v != 0 {
							problems = append(problems, fmt.Sprintf("%s %v (present: %v), want 0", strings.ReplaceAll(name, "_", " "), v, ok))
						}
					}
					if len(problems) > 0 {
						t.Errorf("%s: the MQTT 5 CONNACK does not announce what the server enforces (properties seen: %v):\n  %s", l, ev.Props, strings.Join(problems, "\n  "))
					}
				})
			}
			refusals := []struct {
				name     string
				clientID string
				token    string
				want     int
			}{
				{"bad token", fmt.Sprintf("u%d-bad", f.a.UID), f.a.Token[:len(f.a.Token)-4] + "AAAA", notAuthorized},
				{"another user's client id", fmt.Sprintf("u%d-phone", f.b.UID), f.a.Token, notAuthorized},
				{"client id of 129 bytes", fmt.Sprintf("u%d-", f.a.UID) + strings.Repeat("x", 129-len(fmt.Sprintf("u%d-", f.a.UID))), f.a.Token, badID},
			}
			for i, r := range refusals {
				t.Run(r.name, func(t *testing.T) {
					conn := fmt.Sprintf("refused%d", i)
					ev, ok := connectAs(t, d, l, srv, conn, f.a, r.clientID, r.token, nil)
					d.do(t, command{Op: "disconnect", Conn: conn}, wait)
					var problems []string
					switch {
					case !ok:
						problems = append(problems, fmt.Sprintf("no answer to CONNECT within %v", wait))
					case ev.Ev != "connack":
						problems = append(problems, "no CONNACK: "+ev.String())
					case ev.rc() != r.want:
						problems = append(problems, fmt.Sprintf("CONNACK code 0x%02x, want 0x%02x", ev.rc(), r.want))
					}
					s := f.open(t, d, l, f.a) // the library still works
					problems = append(problems, s.probe()...)
					for _, c := range d.crashed(d.drain(conn, 0)) {
						problems = append(problems, "the library crashed: "+firstLine(c))
					}
					if len(problems) > 0 {
						t.Errorf("%s, CONNECT with %s (client id %d bytes):\n  %s", l, r.name, len(r.clientID), strings.Join(problems, "\n  "))
					}
				})
			}
			if l.version == 5 {
				for _, p := range []string{"receive_maximum", "maximum_packet_size"} {
					t.Run(p+" 0", func(t *testing.T) {
						conn := "zero-" + p
						ev, ok := connectAs(t, d, l, srv, conn, f.a, fmt.Sprintf("u%d-zero", f.a.UID), f.a.Token, map[string]int{p: 0})
						d.do(t, command{Op: "disconnect", Conn: conn}, wait)
						switch {
						case !ok:
							t.Errorf("%s: no answer to CONNECT within %v", l, wait)
						case ev.Ev == "refused_by_library":
							t.Logf("%s would not send it: %s", l, ev.Error)
						case ev.Ev == "connect_error":
							t.Logf("%s: no CONNACK (%s)", l, ev.Error)
						case ev.Ev == "connack" && ev.rc() < 0x80:
							t.Errorf("%s: CONNECT with %s 0 (a protocol error) was accepted: CONNACK 0x%02x", l, p, ev.rc())
						case ev.Ev == "connack" && ev.rc() != 0x82:
							t.Errorf("%s: CONNECT with %s 0: CONNACK 0x%02x, want 0x82 (protocol error) or a closed connection", l, p, ev.rc())
						}
					})
				}
			}
		})
	}
}

// TestServerDisconnects ends a connection from the server's side, by a
// session takeover (the same client id connecting again) and by revoking
// its token (POST /auth/logout), and checks what each library saw: on
// MQTT 5 a DISCONNECT with 0x8E / 0x98, on 3.1.1 no DISCONNECT packet at
// all (the raw reader of TestRaw311NeverGetsDisconnect sees the bytes).
func TestServerDisconnects(t *testing.T) {
	srv := imtest.Start(t, imtest.Options{})
	shop := newShop(t, srv)
	for _, l := range libs {
		t.Run(l.String(), func(t *testing.T) {
			t.Parallel()
			d := l.start(t)
			f := newFixture(t, srv, shop)
			t.Run("takeover", func(t *testing.T) {
				id := fmt.Sprintf("u%d-twice", f.a.UID)
				if ev, ok := connectAs(t, d, l, srv, "first", f.a, id, f.a.Token, nil); !ok || ev.rc() != 0 {
					t.Fatalf("first connect: %v", ev)
				}
				if ev, ok := connectAs(t, d, l, srv, "second", f.a, id, f.a.Token, nil); !ok || ev.rc() != 0 {
					t.Fatalf("second connect: %v", ev)
				}
				defer d.do(t, command{Op: "disconnect", Conn: "second"}, wait)
				checkEnded(t, d, l, "first", 0x8E)
			})
			t.Run("logout", func(t *testing.T) {
				u := srv.Login(t, f.a.Username, "password1")
				if ev, ok := connectAs(t, d, l, srv, "revoked", u, fmt.Sprintf("u%d-revoked", u.UID), u.Token, nil); !ok || ev.rc() != 0 {
					t.Fatalf("connect: %v", ev)
				}
				srv.MustDo(t, "POST", "/api/v1/auth/logout", u.Token, nil, http.StatusNoContent, nil)
				checkEnded(t, d, l, "revoked", 0x98)
			})
		})
	}
}

// checkEnded waits for the library to report that conn ended, and checks
// how: MQTT 5 with a DISCONNECT carrying want, 3.1.1 without DISCONNECT.
func checkEnded(t *testing.T, d *driver, l lib, conn string, want int) {
	t.Helper()
	var evs []event
	_, ok := d.await(conn, wait, func(ev event) bool {
		evs = append(evs, ev)
		return ev.Ev == "disconnect" || ev.Ev == "close" || ev.Ev == "crash"
	})
	evs = append(evs, d.drain(conn, 200*time.Millisecond)...)
	if !ok {
		t.Fatalf("%s: the library saw no end of the connection within %v; it saw: %v", l, wait, evs)
	}
	var problems []string
	for _, c := range d.crashed(evs) {
		problems = append(problems, "the library crashed: "+firstLine(c))
	}
	sawPacket, code := false, -1
	for _, ev := range evs {
		if ev.Ev == "disconnect" && ev.Packet {
			sawPacket, code = true, ev.rc()
		}
		if ev.Ev == "log" && strings.Contains(ev.Msg, "Unrecognised command 224") { // Paho Python 3.1.1 reading a DISCONNECT
			sawPacket = true
		}
	}
	switch {
	case l.version == 4 && sawPacket:
		problems = append(problems, "a DISCONNECT packet reached a 3.1.1 client")
	case l.version == 5 && !sawPacket:
		problems = append(problems, fmt.Sprintf("no DISCONNECT 0x%02x", want))
	case l.version == 5 && code != want:
		problems = append(problems, fmt.Sprintf("DISCONNECT 0x%02x, want 0x%02x", code, want))
	}
	if len(problems) > 0 {
		t.Errorf("%s:\n  %s\n  events: %v", l, strings.Join(problems, "\n  "), evs)
	}
}
