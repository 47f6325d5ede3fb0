package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"

	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/wire"
)

func TestSubscribeACL(t *testing.T) {
	s := imtest.Start(t, imtest.Options{})
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	eachTransport(t, func(t *testing.T, tr imtest.Transport) {
		c := s.Connect(t, alice, imtest.ClientOptions{Transport: tr})
		for _, tc := range []struct {
			topic string
			ok    bool
		}{
			{inbox(alice.UID), true},
			{"im/sys/broadcast", true},
			{inbox(bob.UID), false},
			{"#", false},
			{"im/#", false},
			{"im/u/+", false},
			{"+/u/" + fmt.Sprint(alice.UID), false},
			{"$SYS/#", false},
			{"$share/g/" + inbox(alice.UID), false},
			{"im/s/1", false},
			{"im/s/1/u/" + fmt.Sprint(alice.UID), false},
			{"im/r/999", false},
			{"other/topic", false},
		} {
			code := c.Subscribe(t, tc.topic)
			if got := code < 0x80; got != tc.ok {
				t.Errorf("subscribe %q: code 0x%02x, want allowed=%v", tc.topic, code, tc.ok)
			}
		}
	})
	t.Run("mqtt5", func(t *testing.T) {
		c, err := s.Dial5(t, alice, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if code := c.Subscribe(t, inbox(bob.UID)); code != 0x87 {
			t.Fatalf("foreign inbox on MQTT 5: 0x%02x, want 0x87", code)
		}
		if code := c.Subscribe(t, inbox(alice.UID)); code != 1 {
			t.Fatalf("own inbox on MQTT 5: 0x%02x, want 1", code)
		}
	})
}

func TestSingleChat(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		eachTransport(t, func(t *testing.T, tr imtest.Transport) {
			alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
			a1 := s.Connect(t, alice, imtest.ClientOptions{Transport: tr})
			a2 := s.Connect(t, alice, imtest.ClientOptions{Transport: tr}) // alice's second device
			b := s.Connect(t, bob, imtest.ClientOptions{Transport: tr})
			a1.MustSubscribe(t, inbox(alice.UID))
			a2.MustSubscribe(t, inbox(alice.UID))
			b.MustSubscribe(t, inbox(bob.UID))

			// A spoofed from is overridden; the retain flag is ignored.
			msg := map[string]any{"cid": "c-1", "type": "text", "body": "hello bob", "from": bob.UID, "to": 1, "seq": 99}
			a1.Publish(t, inbox(bob.UID), 1, msg)
			got := b.In.Next(t).Envelope(t)
			conv := single(alice.UID, bob.UID)
			if got.Conv != conv || got.Seq != 1 || got.From != alice.UID || got.To != bob.UID || got.Type != "text" ||
				string(got.Body) != `"hello bob"` || got.CID != "c-1" || got.ID == "" || got.TS <= 0 {
				t.Fatalf("bob got %+v", got)
			}
			for _, dev := range []*imtest.Client{a1, a2} {
				echo := dev.In.Next(t).Envelope(t)
				if echo.ID != got.ID || echo.Seq != 1 || echo.CID != "c-1" {
					t.Fatalf("alice's echo %+v, want the stored envelope", echo)
				}
			}

			// QoS 0 and 2 store and deliver too, with the next seqs.
			a1.Publish(t, inbox(bob.UID), 0, text("c-2", "qos0"))
			a1.Publish(t, inbox(bob.UID), 2, text("c-3", "qos2"))
			for want := int64(2); want <= 3; want++ {
				if e := b.In.Next(t).Envelope(t); e.Seq != want {
					t.Fatalf("seq %d, want %d", e.Seq, want)
				}
			}
			// Bob replies: same conversation.
			b.Publish(t, inbox(alice.UID), 1, text("", "hi alice"))
			reply := b.In.Next(t).Envelope(t) // bob's own echo
			if reply.Seq != 4 || reply.From != bob.UID || reply.To != alice.UID || reply.CID != "" {
				t.Fatalf("reply %+v", reply)
			}

			// A re-sent cid is stored and delivered once; the echo repeats it.
			a1.In.Await(t, "reply", func(m imtest.Msg) bool { return m.Envelope(t).Seq == 4 })
			a2.In.Await(t, "reply", func(m imtest.Msg) bool { return m.Envelope(t).Seq == 4 })
			a1.Publish(t, inbox(bob.UID), 1, text("c-1", "hello bob again"))
			if echo := a1.In.Next(t).Envelope(t); echo.ID != got.ID || echo.Seq != 1 || string(echo.Body) != `"hello bob"` {
				t.Fatalf("duplicate echo %+v, want the first message", echo)
			}
			b.In.None(t, 200*time.Millisecond)

			var hist []wire.Envelope
			s.MustDo(t, "GET", "/api/v1/conversations/"+conv+"/messages", bob.Token, nil, http.StatusOK, &hist)
			if len(hist) != 4 {
				t.Fatalf("history has %d messages, want 4: %+v", len(hist), hist)
			}
			for i, e := range hist {
				if e.Seq != int64(i+1) {
					t.Fatalf("history[%d].Seq = %d", i, e.Seq)
				}
			}
			if hist[0].ID != got.ID || hist[0].To != bob.UID {
				t.Fatalf("history[0] = %+v", hist[0])
			}
		})
	})
}

func TestTypedBodies(t *testing.T) {
	s := imtest.Start(t, imtest.Options{})
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	a := s.Connect(t, alice, imtest.ClientOptions{})
	a.MustSubscribe(t, inbox(alice.UID))
	for _, tc := range []struct {
		name string
		msg  string
		body string // canonical body stored, "" if refused
		code string
	}{
		{"image", `{"type":"image","body":{"url":"https://x.test/a.png","width":10,"height":20,"extra":1}}`, `{"url":"https://x.test/a.png","width":10,"height":20}`, ""},
		{"file", `{"type":"file","body":{"url":"https://x.test/f.pdf","name":"f.pdf","size":123}}`, `{"url":"https://x.test/f.pdf","name":"f.pdf","size":123}`, ""},
		{"card", `{"type":"card","body":{"title":"T","description":"D","url":"http://x.test","image":"https://x.test/i.png"}}`, `{"title":"T","description":"D","url":"http://x.test","image":"https://x.test/i.png"}`, ""},
		{"text unicode", `{"type":"text","body":"` + strings.Repeat("語", 4000) + `"}`, `"` + strings.Repeat("語", 4000) + `"`, ""},
		{"not JSON", `hello`, "", "invalid"},
		{"empty payload", ``, "", "invalid"},
		{"JSON array", `[1]`, "", "invalid"},
		{"unknown type", `{"type":"video","body":"x"}`, "", "invalid"},
		{"no type", `{"body":"x"}`, "", "invalid"},
		{"no body", `{"type":"text"}`, "", "invalid"},
		{"empty text", `{"type":"text","body":""}`, "", "invalid"},
		{"text not a string", `{"type":"text","body":{"a":1}}`, "", "invalid"},
		{"text too long", `{"type":"text","body":"` + strings.Repeat("a", 4001) + `"}`, "", "too_large"},
		{"image without url", `{"type":"image","body":{"width":1}}`, "", "invalid"},
		{"image javascript url", `{"type":"image","body":{"url":"javascript:alert(1)"}}`, "", "invalid"},
		{"image negative width", `{"type":"image","body":{"url":"https://x.test/a.png","width":-1}}`, "", "invalid"},
		{"image fractional width", `{"type":"image","body":{"url":"https://x.test/a.png","width":1.5}}`, "", "invalid"},
		{"file without name", `{"type":"file","body":{"url":"https://x.test/f"}}`, "", "invalid"},
		{"file negative size", `{"type":"file","body":{"url":"https://x.test/f","name":"f","size":-2}}`, "", "invalid"},
		{"card without title", `{"type":"card","body":{"description":"d"}}`, "", "invalid"},
		{"card bad url", `{"type":"card","body":{"title":"t","url":"ftp://x"}}`, "", "invalid"},
		{"cid too long", `{"cid":"` + strings.Repeat("c", 65) + `","type":"text","body":"x"}`, "", "invalid"},
		{"cid not a string", `{"cid":5,"type":"text","body":"x"}`, "", "invalid"},
		{"oversized payload", `{"type":"text","body":"x","pad":"` + strings.Repeat("p", 64<<10) + `"}`, "", "too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.Publish(t, inbox(bob.UID), 1, tc.msg)
			m := a.In.Next(t)
			if tc.code == "" {
				if e := m.Envelope(t); string(e.Body) != tc.body {
					t.Fatalf("body %s, want %s", e.Body, tc.body)
				}
				return
			}
			var ev wire.ErrorEvent
			m.Decode(t, &ev)
			if ev.Event != "error" || ev.Code != tc.code || ev.Topic != inbox(bob.UID) || ev.Message == "" {
				t.Fatalf("got %s, want error event %s", m.Payload, tc.code)
			}
		})
	}
	var hist []wire.Envelope
	s.MustDo(t, "GET", "/api/v1/conversations/"+single(alice.UID, bob.UID)+"/messages", alice.Token, nil, http.StatusOK, &hist)
	if len(hist) != 4 {
		t.Fatalf("history has %d messages, want only the 4 valid ones", len(hist))
	}
}

func TestPublishRefusals(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		eachTransport(t, func(t *testing.T, tr imtest.Transport) {
			alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
			a := s.Connect(t, alice, imtest.ClientOptions{Transport: tr})
			b := s.Connect(t, bob, imtest.ClientOptions{Transport: tr})
			a.MustSubscribe(t, inbox(alice.UID))
			b.MustSubscribe(t, inbox(bob.UID), "im/sys/broadcast")
			for _, tc := range []struct {
				name, topic, code string
				msg               any
			}{
				{"unknown user", "im/u/99999", "not_found", text("c1", "hi")},
				{"to self", inbox(alice.UID), "invalid", text("c2", "hi")},
				{"topic outside the table", "chat/general", "forbidden", text("c3", "hi")},
				{"sys topic", "im/sys/other", "forbidden", text("c4", "hi")},
				{"broadcast by a user", "im/sys/broadcast", "forbidden", text("c5", "hi")},
				{"unknown room", "im/r/424242", "not_found", text("c6", "hi")},
				{"bad payload", inbox(bob.UID), "invalid", `{"type":`},
				{"$SYS: answered, not ignored", "$SYS/broker/load", "forbidden", text("c7", "hi")},
				{"a wildcard topic name", "im/u/#", "forbidden", text("c8", "hi")},
			} {
				t.Run(tc.name, func(t *testing.T) {
					a.Publish(t, tc.topic, 1, tc.msg) // 3.1.1: acked, never delivered
					var ev wire.ErrorEvent
					a.In.Next(t).Decode(t, &ev)
					if ev.Event != "error" || ev.Code != tc.code || ev.Topic != tc.topic {
						t.Fatalf("event %+v, want code %s", ev, tc.code)
					}
					if m, ok := tc.msg.(map[string]any); ok && ev.CID != m["cid"] {
						t.Fatalf("event cid %q, want %q", ev.CID, m["cid"])
					}
				})
			}
			b.In.None(t, 200*time.Millisecond)
			var convs []wire.Conversation
			s.MustDo(t, "GET", "/api/v1/conversations", alice.Token, nil, http.StatusOK, &convs)
			for _, c := range convs {
				if c.Conv != "sys" {
					t.Fatalf("a refused publish was stored: %+v", c)
				}
			}
		})
	})
}

func TestMQTT5ReasonCodes(t *testing.T) {
	s := imtest.Start(t, imtest.Options{})
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	c, err := s.Dial5(t, alice, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if code := c.Subscribe(t, inbox(alice.UID)); code != 1 {
		t.Fatalf("subscribe: 0x%02x", code)
	}
	for _, tc := range []struct {
		name   string
		topic  string
		qos    byte
		msg    any
		reason byte
		event  string
	}{
		{"ok qos1", inbox(bob.UID), 1, text("", "hi"), 0x00, ""},
		{"ok qos2", inbox(bob.UID), 2, text("", "hi"), 0x00, ""},
		{"forbidden", "im/sys/broadcast", 1, text("", "hi"), 0x87, "forbidden"},
		{"invalid", inbox(bob.UID), 1, `nope`, 0x99, "invalid"},
		{"too large: 0x97, as 0x95 is not a PUBACK code", inbox(bob.UID), 1, `{"type":"text","body":"` + strings.Repeat("x", 70<<10) + `"}`, 0x97, "too_large"},
		{"not found", "im/u/99999", 1, text("", "hi"), 0x90, "not_found"},
		{"forbidden qos2 gets a PUBREC", "im/sys/broadcast", 2, text("", "hi"), 0x87, "forbidden"},
		{"$SYS is forbidden, not ignored", "$SYS/broker/x", 1, text("", "hi"), 0x87, "forbidden"},
		{"a wildcard topic name is forbidden", "im/u/+", 1, text("", "hi"), 0x87, "forbidden"},
		{"invalid UTF-8 is invalid", inbox(bob.UID), 1, "{\"type\":\"text\",\"body\":\"\xff\xfe\"}", 0x99, "invalid"},
		{"a lone surrogate is invalid", inbox(bob.UID), 1, `{"type":"text","body":"\ud800"}`, 0x99, "invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.Publish(t, tc.topic, tc.qos, tc.msg); got != tc.reason {
				t.Fatalf("reason 0x%02x, want 0x%02x", got, tc.reason)
			}
			m := c.In.Next(t)
			if tc.event == "" {
				m.Envelope(t)
				return
			}
			var ev wire.ErrorEvent
			m.Decode(t, &ev)
			if ev.Code != tc.event || ev.Topic != tc.topic {
				t.Fatalf("event %s, want %s on %s", m.Payload, tc.event, tc.topic)
			}
		})
	}
}

// Strict MQTT 5 clients reject a PUBACK that carries the publisher's user
// properties back (mochi does that unless told not to).
func TestMQTT5PubackHasNoUserProperties(t *testing.T) {
	s := imtest.Start(t, imtest.Options{})
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	c, err := s.Dial5(t, alice, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pr, err := c.Paho.Publish(ctx, &paho5.Publish{
		Topic: inbox(bob.UID), QoS: 1, Payload: []byte(`{"type":"text","body":"x"}`),
		Properties: &paho5.PublishProperties{User: paho5.UserProperties{{Key: "trace", Value: "1"}}},
	})
	if err != nil || pr.ReasonCode != 0 {
		t.Fatalf("publish: %v %+v", err, pr)
	}
	if pr.Properties != nil && len(pr.Properties.User) > 0 {
		t.Fatalf("PUBACK echoes user properties: %+v", pr.Properties.User)
	}
}

func TestRESTSend(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		alice, bob, eve := s.Register(t, "alice"), s.Register(t, "bob"), s.Register(t, "eve")
		b := s.Connect(t, bob, imtest.ClientOptions{Transport: imtest.WS})
		b.MustSubscribe(t, inbox(bob.UID))
		a := s.Connect(t, alice, imtest.ClientOptions{})
		a.MustSubscribe(t, inbox(alice.UID))
		conv := single(alice.UID, bob.UID)
		path := "/api/v1/conversations/" + conv + "/messages"

		var env wire.Envelope
		s.MustDo(t, "POST", path, alice.Token, map[string]any{"cid": "r-1", "type": "text", "body": "via rest"}, http.StatusCreated, &env)
		if env.Seq != 1 || env.From != alice.UID || env.To != bob.UID || env.CID != "r-1" {
			t.Fatalf("answer %+v", env)
		}
		if got := b.In.Next(t).Envelope(t); got.ID != env.ID {
			t.Fatalf("bob got %+v", got)
		}
		if got := a.In.Next(t).Envelope(t); got.ID != env.ID {
			t.Fatalf("alice's echo %+v", got)
		}
		// Same cid again: the same message, not delivered again.
		var again wire.Envelope
		s.MustDo(t, "POST", path, alice.Token, map[string]any{"cid": "r-1", "type": "text", "body": "via rest"}, http.StatusCreated, &again)
		if again.ID != env.ID || again.Seq != 1 {
			t.Fatalf("duplicate answer %+v", again)
		}
		b.In.None(t, 200*time.Millisecond)

		// A form body: the text is the body.
		req, _ := http.NewRequest("POST", s.URL+path+"?access_token="+bob.Token, strings.NewReader("type=text&body=form+hello"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 201 {
			t.Fatalf("form send: %v %v", resp.Status, err)
		}
		json.NewDecoder(resp.Body).Decode(&env)
		resp.Body.Close()
		if string(env.Body) != `"form hello"` || env.From != bob.UID || env.Seq != 2 {
			t.Fatalf("form send answer %+v", env)
		}

		for _, tc := range []struct {
			name, conv, token string
			body              any
			status            int
			code              string
		}{
			{"outsider", conv, eve.Token, text("", "x"), 403, "forbidden"},
			{"malformed conv", "u:2:1", alice.Token, text("", "x"), 400, "invalid_request"},
			{"garbage conv", "hello", alice.Token, text("", "x"), 400, "invalid_request"},
			{"unknown user", single(alice.UID, 99999), alice.Token, text("", "x"), 404, "not_found"},
			{"bad body", conv, alice.Token, map[string]any{"type": "text", "body": 5}, 400, "invalid_request"},
			{"unknown type", conv, alice.Token, map[string]any{"type": "gif", "body": "x"}, 400, "invalid_request"},
			{"too long", conv, alice.Token, text("", strings.Repeat("x", 4001)), 413, "payload_too_large"},
			{"broadcast by a user", "sys", alice.Token, text("", "x"), 403, "forbidden"},
			{"no token", conv, "", text("", "x"), 401, "unauthorized"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, body := s.Do(t, "POST", "/api/v1/conversations/"+tc.conv+"/messages", tc.token, tc.body)
				if status != tc.status || imtest.ErrorCode(body) != tc.code {
					t.Fatalf("%d %s, want %d %s", status, body, tc.status, tc.code)
				}
			})
		}
	})
}

func TestHistoryUnreadAndRead(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		alice, bob, eve := s.Register(t, "alice"), s.Register(t, "bob"), s.Register(t, "eve")
		conv := single(alice.UID, bob.UID)
		path := "/api/v1/conversations/" + conv
		for i := 1; i <= 7; i++ {
			s.MustDo(t, "POST", path+"/messages", alice.Token, text("", fmt.Sprint("m", i)), http.StatusCreated, nil)
		}
		a := s.Connect(t, alice, imtest.ClientOptions{})
		a.MustSubscribe(t, inbox(alice.UID))

		seqs := func(q string) string {
			var hist []wire.Envelope
			s.MustDo(t, "GET", path+"/messages"+q, bob.Token, nil, http.StatusOK, &hist)
			var out []string
			for _, e := range hist {
				out = append(out, fmt.Sprint(e.Seq))
			}
			return strings.Join(out, ",")
		}
		for q, want := range map[string]string{
			"":                          "1,2,3,4,5,6,7",
			"?limit=3":                  "5,6,7",
			"?after_seq=2&limit=2":      "3,4",
			"?after_seq=5":              "6,7",
			"?after_seq=0&limit=2":      "1,2",
			"?after_seq=7":              "",
			"?before_seq=3":             "1,2",
			"?before_seq=6&limit=2":     "4,5",
			"?after_seq=1&before_seq=4": "2,3",
			"?limit=1000":               "1,2,3,4,5,6,7",
		} {
			if got := seqs(q); got != want {
				t.Errorf("history%s = %s, want %s", q, got, want)
			}
		}
		for _, q := range []string{"?limit=-1", "?after_seq=x", "?before_seq=-3", "?limit=1.5"} {
			if status, body := s.Do(t, "GET", path+"/messages"+q, bob.Token, nil); status != 400 || imtest.ErrorCode(body) != "invalid_request" {
				t.Errorf("history%s: %d %s", q, status, body)
			}
		}
		if status, body := s.Do(t, "GET", path+"/messages", eve.Token, nil); status != 403 || imtest.ErrorCode(body) != "forbidden" {
			t.Errorf("outsider reads history: %d %s", status, body)
		}
		if status, _ := s.Do(t, "GET", "/api/v1/conversations/"+single(eve.UID, 99999)+"/messages", eve.Token, nil); status != 404 {
			t.Errorf("history with an unknown user: %d", status)
		}

		unread := func(u imtest.User) wire.Conversation {
			var convs []wire.Conversation
			s.MustDo(t, "GET", "/api/v1/conversations", u.Token, nil, http.StatusOK, &convs)
			for _, c := range convs {
				if c.Conv == conv {
					return c
				}
			}
			t.Fatalf("%s has no conversation %s: %+v", u.Username, conv, convs)
			return wire.Conversation{}
		}
		if c := unread(bob); c.Kind != "single" || c.LastSeq != 7 || c.ReadSeq != 0 || c.Unread != 7 || c.LastMessage == nil || c.LastMessage.Seq != 7 {
			t.Fatalf("bob's conversation %+v", c)
		}
		if c := unread(alice); c.Unread != 0 || c.ReadSeq != 7 {
			t.Fatalf("sending advances the sender's read position: %+v", c)
		}

		var st wire.ReadState
		s.MustDo(t, "POST", path+"/read", bob.Token, map[string]int64{"seq": 5}, http.StatusOK, &st)
		if st.ReadSeq != 5 || st.Unread != 2 {
			t.Fatalf("read answer %+v", st)
		}
		var ev wire.ReadEvent
		a.In.Next(t).Decode(t, &ev)
		if ev.Event != "read" || ev.Conv != conv || ev.UID != bob.UID || ev.Seq != 5 {
			t.Fatalf("read event %+v", ev)
		}
		// Lower: no change, no event. Beyond the end: clamped.
		s.MustDo(t, "POST", path+"/read", bob.Token, map[string]int64{"seq": 3}, http.StatusOK, &st)
		if st.ReadSeq != 5 {
			t.Fatalf("read position went down: %+v", st)
		}
		a.In.None(t, 150*time.Millisecond)
		s.MustDo(t, "POST", path+"/read", bob.Token, map[string]int64{"seq": 1000}, http.StatusOK, &st)
		if st.ReadSeq != 7 || st.Unread != 0 {
			t.Fatalf("read is not clamped: %+v", st)
		}
		if c := unread(bob); c.Unread != 0 {
			t.Fatalf("unread after reading all: %+v", c)
		}
		for _, tc := range []struct {
			body   any
			token  string
			status int
		}{
			{map[string]any{}, bob.Token, 400},
			{map[string]any{"seq": -1}, bob.Token, 400},
			{map[string]any{"seq": "x"}, bob.Token, 400},
			{map[string]any{"seq": 1}, eve.Token, 403},
		} {
			if status, body := s.Do(t, "POST", path+"/read", tc.token, tc.body); status != tc.status {
				t.Errorf("read %v: %d %s, want %d", tc.body, status, body, tc.status)
			}
		}
	})
}

func TestBroadcast(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		alice := s.Register(t, "alice")
		tcp := s.Connect(t, alice, imtest.ClientOptions{Transport: imtest.TCP})
		ws := s.Connect(t, alice, imtest.ClientOptions{Transport: imtest.WS})
		tcp.MustSubscribe(t, "im/sys/broadcast", inbox(alice.UID))
		ws.MustSubscribe(t, "im/sys/broadcast")

		var env wire.Envelope
		s.MustDo(t, "POST", "/api/v1/broadcasts", s.Admin.Token, map[string]string{"text": "maintenance at 10"}, http.StatusCreated, &env)
		if env.Conv != "sys" || env.Seq != 1 || env.From != s.Admin.UID || string(env.Body) != `"maintenance at 10"` {
			t.Fatalf("broadcast answer %+v", env)
		}
		for _, c := range []*imtest.Client{tcp, ws} {
			if got := c.In.Next(t); got.Topic != "im/sys/broadcast" || got.Envelope(t).ID != env.ID {
				t.Fatalf("got %s on %s", got.Payload, got.Topic)
			}
		}
		// An admin's MQTT publish to the broadcast topic works as well.
		admin := s.Connect(t, s.Admin, imtest.ClientOptions{})
		admin.Publish(t, "im/sys/broadcast", 1, text("b-2", "second"))
		if e := ws.In.Next(t).Envelope(t); e.Seq != 2 || e.CID != "b-2" {
			t.Fatalf("second broadcast %+v", e)
		}
		tcp.In.Next(t)

		status, body := s.Do(t, "POST", "/api/v1/broadcasts", alice.Token, map[string]string{"text": "x"})
		if status != 403 || imtest.ErrorCode(body) != "forbidden" {
			t.Fatalf("non-admin broadcast: %d %s", status, body)
		}
		tcp.Publish(t, "im/sys/broadcast", 1, text("", "x"))
		var ev wire.ErrorEvent
		tcp.In.Next(t).Decode(t, &ev)
		if ev.Code != "forbidden" {
			t.Fatalf("non-admin MQTT broadcast: %+v", ev)
		}
		ws.In.None(t, 150*time.Millisecond)
		if status, _ := s.Do(t, "POST", "/api/v1/broadcasts", s.Admin.Token, map[string]string{"text": ""}); status != 400 {
			t.Fatalf("empty broadcast: %d", status)
		}

		var hist []wire.Envelope
		s.MustDo(t, "GET", "/api/v1/conversations/sys/messages", alice.Token, nil, http.StatusOK, &hist)
		if len(hist) != 2 {
			t.Fatalf("sys history %+v", hist)
		}
	})
}

func TestWillAndRetainAreIgnored(t *testing.T) {
	s := imtest.Start(t, imtest.Options{})
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	b := s.Connect(t, bob, imtest.ClientOptions{})
	b.MustSubscribe(t, inbox(bob.UID))

	// A Will aimed at bob's inbox is dropped, whatever it says.
	conn := rawConnectWithWill(t, s, alice, inbox(bob.UID), `{"type":"text","body":"will"}`)
	conn.Close() // abrupt: the broker would publish the Will now
	b.In.None(t, 300*time.Millisecond)

	// A retained publish is stored and delivered once, never retained.
	a := s.Connect(t, alice, imtest.ClientOptions{})
	tok := a.Paho.Publish(inbox(bob.UID), 1, true, `{"type":"text","body":"retained?"}`)
	tok.Wait()
	if e := b.In.Next(t).Envelope(t); e.Seq != 1 {
		t.Fatalf("got %+v", e)
	}
	b2 := s.Connect(t, bob, imtest.ClientOptions{})
	b2.MustSubscribe(t, inbox(bob.UID))
	b2.In.None(t, 200*time.Millisecond)
}
