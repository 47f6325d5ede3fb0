package topics

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		topic string
		want  Route
		ok    bool
	}{
		{"inbox", "im/u/7", Route{Kind: KindInbox, UID: 7}, true},
		{"room", "im/r/12", Route{Kind: KindRoom, Room: 12}, true},
		{"shop", "im/s/3", Route{Kind: KindShop, Shop: 3}, true},
		{"shop reply", "im/s/3/u/9", Route{Kind: KindShopReply, Shop: 3, Customer: 9}, true},
		{"broadcast", "im/sys/broadcast", Route{Kind: KindBroadcast}, true},
		{"presence", "im/p/7", Route{Kind: KindPresence, UID: 7}, true},
		{"typing", "im/typing", Route{Kind: KindTyping}, true},
		{"presence wildcard", "im/p/+", Route{}, false},
		{"typing level", "im/typing/1", Route{}, false},
		{"hash wildcard", "#", Route{}, false},
		{"inbox wildcard", "im/u/+", Route{}, false},
		{"all inboxes", "im/u/#", Route{}, false},
		{"sys", "$SYS/broker/clients", Route{}, false},
		{"shared", "$share/g/im/u/7", Route{}, false},
		{"zero uid", "im/u/0", Route{}, false},
		{"leading zero", "im/u/07", Route{}, false},
		{"plus sign", "im/u/+7", Route{}, false},
		{"negative", "im/u/-7", Route{}, false},
		{"overflow", "im/u/99999999999999999999", Route{}, false},
		{"trailing slash", "im/u/7/", Route{}, false},
		{"extra level", "im/r/1/x", Route{}, false},
		{"shop reply bad level", "im/s/3/x/9", Route{}, false},
		{"sys other", "im/sys/other", Route{}, false},
		{"empty", "", Route{}, false},
		{"prefix only", "im/", Route{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.topic)
			if tc.ok != (err == nil) {
				t.Fatalf("Parse(%q) error = %v, want ok=%v", tc.topic, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q) error %v is not ErrInvalid", tc.topic, err)
			}
			if got != tc.want {
				t.Fatalf("Parse(%q) = %+v, want %+v", tc.topic, got, tc.want)
			}
			if tc.ok && got.String() != tc.topic {
				t.Fatalf("String() = %q, want %q", got.String(), tc.topic)
			}
		})
	}
}

func TestParseConv(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   string
		want Conv
		ok   bool
	}{
		{"single", "u:1:2", Conv{Kind: ConvSingle, A: 1, B: 2}, true},
		{"single reversed", "u:2:1", Conv{}, false},
		{"single self", "u:2:2", Conv{}, false},
		{"room", "r:5", Conv{Kind: ConvRoom, Room: 5}, true},
		{"service", "s:3:9", Conv{Kind: ConvService, Shop: 3, Customer: 9}, true},
		{"sys", "sys", Conv{Kind: ConvSys}, true},
		{"garbage", "x:1", Conv{}, false},
		{"room zero", "r:0", Conv{}, false},
		{"room extra", "r:1:2", Conv{}, false},
		{"empty", "", Conv{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConv(tc.id)
			if tc.ok != (err == nil) {
				t.Fatalf("ParseConv(%q) error = %v, want ok=%v", tc.id, err, tc.ok)
			}
			if got != tc.want {
				t.Fatalf("ParseConv(%q) = %+v, want %+v", tc.id, got, tc.want)
			}
			if tc.ok && got.String() != tc.id {
				t.Fatalf("String() = %q, want %q", got.String(), tc.id)
			}
		})
	}
}

func TestSingleConvOrders(t *testing.T) {
	if got := SingleConv(9, 3); got != "u:3:9" {
		t.Fatalf("SingleConv(9, 3) = %q", got)
	}
	c, _ := ParseConv("u:3:9")
	if c.Other(3) != 9 || c.Other(9) != 3 || c.Other(4) != 0 {
		t.Fatalf("Other is wrong: %+v", c)
	}
}

// FuzzParse checks that every topic Parse accepts is the canonical
// spelling of its route (so one topic cannot be reached under two names),
// seeded with the contract's topics and the edge cases clients send.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"im/u/7", "im/r/1", "im/s/3", "im/s/3/u/9", "im/sys/broadcast", "#", "im/+/1", "$SYS/x",
		"im/u/9223372036854775807", "im/u/9223372036854775808", "im/u/0", "im/u/07", "im/u/+7", "im/u/-7",
		"im/u/7/", "im//u/7", "IM/u/7", "im/u/7\x00", "im/u/\u0667", "im/s/3/u/", "im/s/3/u/9/x",
		"im/s/3/x/9", "$share/g/im/u/7", "im/sys/broadcast/", "im/sys/#", "", "im/", "im/u/1e3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if r, err := Parse(s); err == nil && r.String() != s {
			t.Fatalf("Parse(%q) round-trips to %q", s, r.String())
		}
	})
}

// FuzzParseConv checks that every conversation id ParseConv accepts is
// the canonical id of its conversation (u:a:b with a < b, no leading
// zeros), seeded with the contract's ids and their near misses.
func FuzzParseConv(f *testing.F) {
	for _, s := range []string{
		"u:1:2", "r:5", "s:3:9", "sys", "u:2:1", "u:1:1", "u:0:1", "u:01:2", "u:1:2:3", "r:07", "r:",
		"s:3", "s:3:9:1", "SYS", "sys:", "u:9223372036854775806:9223372036854775807", "u:1:9223372036854775808",
		"r:+5", "r:-5", "r: 5", "", ":", "u::",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if c, err := ParseConv(s); err == nil && c.String() != s {
			t.Fatalf("ParseConv(%q) round-trips to %q", s, c.String())
		}
	})
}
