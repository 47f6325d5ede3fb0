package topics

import (
	"fmt"
	"strconv"
	"strings"
)

// ConvKind is the kind of a conversation.
type ConvKind string

// The conversation kinds, as they appear in the "kind" field of
// GET /conversations.
const (
	ConvSingle  ConvKind = "single"
	ConvRoom    ConvKind = "room"
	ConvService ConvKind = "service"
	ConvSys     ConvKind = "sys"
)

// Conv is a parsed conversation id.
type Conv struct {
	Kind     ConvKind
	A, B     int64 // ConvSingle: the two users, A < B
	Room     int64 // ConvRoom
	Shop     int64 // ConvService
	Customer int64 // ConvService
}

// SingleConv returns the id of the single chat between two users, u:{a}:{b}
// with a < b, whichever order they are given in.
func SingleConv(x, y int64) string {
	if x > y {
		x, y = y, x
	}
	return "u:" + strconv.FormatInt(x, 10) + ":" + strconv.FormatInt(y, 10)
}

// RoomConv returns the id of a room's conversation, r:{room_id}.
func RoomConv(room int64) string { return "r:" + strconv.FormatInt(room, 10) }

// ServiceConv returns the id of a customer's conversation with a shop,
// s:{shop_id}:{customer_uid}.
func ServiceConv(shop, customer int64) string {
	return "s:" + strconv.FormatInt(shop, 10) + ":" + strconv.FormatInt(customer, 10)
}

// String returns the conversation id.
func (c Conv) String() string {
	switch c.Kind {
	case ConvSingle:
		return SingleConv(c.A, c.B)
	case ConvRoom:
		return RoomConv(c.Room)
	case ConvService:
		return ServiceConv(c.Shop, c.Customer)
	case ConvSys:
		return SysConv
	}
	return ""
}

// Other returns the other participant of a single chat, or 0 if uid is not
// one of its two users.
func (c Conv) Other(uid int64) int64 {
	switch uid {
	case c.A:
		return c.B
	case c.B:
		return c.A
	}
	return 0
}

// ParseConv parses a conversation id. Single chats must name two different
// users in ascending order, so that each pair has one id.
func ParseConv(id string) (Conv, error) {
	if id == SysConv {
		return Conv{Kind: ConvSys}, nil
	}
	parts := strings.Split(id, ":")
	switch {
	case len(parts) == 3 && parts[0] == "u":
		a, ok1 := parseID(parts[1])
		b, ok2 := parseID(parts[2])
		if ok1 && ok2 && a < b {
			return Conv{Kind: ConvSingle, A: a, B: b}, nil
		}
	case len(parts) == 2 && parts[0] == "r":
		if room, ok := parseID(parts[1]); ok {
			return Conv{Kind: ConvRoom, Room: room}, nil
		}
	case len(parts) == 3 && parts[0] == "s":
		shop, ok1 := parseID(parts[1])
		cust, ok2 := parseID(parts[2])
		if ok1 && ok2 {
			return Conv{Kind: ConvService, Shop: shop, Customer: cust}, nil
		}
	}
	return Conv{}, fmt.Errorf("%w: conversation %q", ErrInvalid, id)
}
