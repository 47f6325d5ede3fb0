// Package topics names the MQTT topics and conversation ids of the public
// contract (PROTOCOL.md §3 and §4) and parses them back. It is pure: no I/O,
// no dependencies beyond the standard library, so the server and the client
// SDK share it.
package topics

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Broadcast is the system broadcast topic: everyone may subscribe, only
// admins may publish.
const Broadcast = "im/sys/broadcast"

// SysConv is the conversation id of system broadcasts.
const SysConv = "sys"

// Typing is the topic clients publish typing notices to (PROTOCOL.md §7).
// Nobody subscribes to it: notices reach the others of a conversation on
// their inboxes or the room topic.
const Typing = "im/typing"

// ErrInvalid is returned when a topic or a conversation id is not one of the
// shapes of the contract.
var ErrInvalid = errors.New("not a valid topic or conversation id")

// Inbox returns the personal topic of a user, im/u/{uid}.
func Inbox(uid int64) string { return "im/u/" + strconv.FormatInt(uid, 10) }

// Room returns the topic of a group chat, im/r/{room_id}.
func Room(id int64) string { return "im/r/" + strconv.FormatInt(id, 10) }

// Shop returns the topic customers publish to, im/s/{shop_id}.
func Shop(id int64) string { return "im/s/" + strconv.FormatInt(id, 10) }

// Presence returns the topic of a user's presence, im/p/{uid}.
func Presence(uid int64) string { return "im/p/" + strconv.FormatInt(uid, 10) }

// ShopReply returns the topic agents reply on, im/s/{shop_id}/u/{customer_uid}.
func ShopReply(shop, customer int64) string {
	return Shop(shop) + "/u/" + strconv.FormatInt(customer, 10)
}

// Kind tells which row of the topic table a topic is.
type Kind uint8

// The kinds of topics.
const (
	KindInvalid   Kind = iota
	KindInbox          // im/u/{uid}
	KindRoom           // im/r/{room_id}
	KindShop           // im/s/{shop_id}
	KindShopReply      // im/s/{shop_id}/u/{customer_uid}
	KindBroadcast      // im/sys/broadcast
	KindPresence       // im/p/{uid}
	KindTyping         // im/typing
)

// Route is a parsed topic.
type Route struct {
	Kind     Kind
	UID      int64 // KindInbox: the inbox owner; KindPresence: whose presence
	Room     int64 // KindRoom
	Shop     int64 // KindShop, KindShopReply
	Customer int64 // KindShopReply
}

// String returns the topic the route was parsed from.
func (r Route) String() string {
	switch r.Kind {
	case KindInbox:
		return Inbox(r.UID)
	case KindRoom:
		return Room(r.Room)
	case KindShop:
		return Shop(r.Shop)
	case KindShopReply:
		return ShopReply(r.Shop, r.Customer)
	case KindBroadcast:
		return Broadcast
	case KindPresence:
		return Presence(r.UID)
	case KindTyping:
		return Typing
	}
	return ""
}

// Parse parses a topic of the contract. Wildcards, shared subscriptions,
// $SYS and anything not in the table return ErrInvalid.
func Parse(topic string) (Route, error) {
	rest, ok := strings.CutPrefix(topic, "im/")
	if !ok {
		return Route{}, fmt.Errorf("%w: %q", ErrInvalid, topic)
	}
	switch rest {
	case "sys/broadcast":
		return Route{Kind: KindBroadcast}, nil
	case "typing":
		return Route{Kind: KindTyping}, nil
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 2 && parts[0] == "u":
		if uid, ok := parseID(parts[1]); ok {
			return Route{Kind: KindInbox, UID: uid}, nil
		}
	case len(parts) == 2 && parts[0] == "p":
		if uid, ok := parseID(parts[1]); ok {
			return Route{Kind: KindPresence, UID: uid}, nil
		}
	case len(parts) == 2 && parts[0] == "r":
		if id, ok := parseID(parts[1]); ok {
			return Route{Kind: KindRoom, Room: id}, nil
		}
	case len(parts) == 2 && parts[0] == "s":
		if id, ok := parseID(parts[1]); ok {
			return Route{Kind: KindShop, Shop: id}, nil
		}
	case len(parts) == 4 && parts[0] == "s" && parts[2] == "u":
		shop, ok1 := parseID(parts[1])
		cust, ok2 := parseID(parts[3])
		if ok1 && ok2 {
			return Route{Kind: KindShopReply, Shop: shop, Customer: cust}, nil
		}
	}
	return Route{}, fmt.Errorf("%w: %q", ErrInvalid, topic)
}

// parseID accepts the canonical decimal form of a positive int64 only, so
// that every id has exactly one spelling ("07" and "+7" are refused).
func parseID(s string) (int64, bool) {
	if s == "" || s[0] < '1' || s[0] > '9' || len(s) > 19 {
		return 0, false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
