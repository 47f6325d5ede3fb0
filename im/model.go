package im

import (
	"encoding/json"
	"time"

	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

// Roles of users. A guest (PROTOCOL.md §6) is a customer without a
// password: made by POST /auth/guest or /auth/visitor, it may only talk to
// shops.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
	RoleGuest = "guest"
)

// Agent statuses (PUT /me/status).
const (
	StatusOnline = "online"
	StatusAway   = "away"
)

// Roles of room members.
const (
	RoomRoleOwner  = "owner"
	RoomRoleMember = "member"
)

// User is an account.
type User struct {
	UID          int64
	Username     string
	Name         string // display name (guests and visitors may give one); "" for none
	PasswordHash string // "" for guests: they cannot log in
	Role         string // RoleUser, RoleAdmin or RoleGuest
	Status       string
	Disabled     bool
	CreatedAt    int64 // Unix milliseconds
	LastSeen     int64 // when its last live connection closed, Unix milliseconds; 0 if never
}

// Principal is an authenticated caller: the account an access token was
// issued to, as it is now (its role is the account's current role), and
// the token's id.
type Principal struct {
	UID      int64
	Username string
	Role     string
	Token    string // the access token's id; "" for callers inside the server
}

// IsAdmin reports whether p may use the admin API.
func (p Principal) IsAdmin() bool { return p.Role == RoleAdmin }

// IsGuest reports whether p is a guest or a verified visitor.
func (p Principal) IsGuest() bool { return p.Role == RoleGuest }

// AccessToken is an access token as issued: its id (jti, 128 random bits
// in hex), who it is for and its lifetime (Unix milliseconds). The token
// string itself is only ever handed to its owner.
type AccessToken struct {
	ID        string
	UID       int64
	IssuedAt  int64
	ExpiresAt int64
}

// Token is an issued access token and what a login answers with.
type Token struct {
	Token     string // the signed token, for the Authorization header and the MQTT password
	ExpiresAt time.Time
	User      User
}

// Message is a stored message.
type Message struct {
	ID     string
	Conv   string
	Seq    int64
	From   int64 // 0 for messages the server made
	Type   string
	Body   json.RawMessage
	CID    string
	TS     int64 // Unix milliseconds
	Auto   bool
	Ticket int64 // customer service: the ticket it belongs to
	Agent  int64 // customer service: the ticket's agent when stored, 0 if queued
}

// Envelope returns the message as the contract delivers it.
func (m Message) Envelope() wire.Envelope {
	e := wire.Envelope{
		ID: m.ID, Conv: m.Conv, Seq: m.Seq, From: m.From, Type: m.Type,
		Body: m.Body, CID: m.CID, TS: m.TS, Auto: m.Auto,
	}
	c, err := topics.ParseConv(m.Conv)
	if err != nil {
		return e
	}
	switch c.Kind {
	case topics.ConvSingle:
		e.To = c.Other(m.From)
	case topics.ConvRoom:
		e.Room = c.Room
	case topics.ConvService:
		e.Shop, e.Customer, e.Agent, e.Session = c.Shop, c.Customer, m.Agent, m.Ticket
	}
	return e
}

// HistoryQuery selects a page of a conversation's history. With After set,
// the page is the first Limit messages after AfterSeq (after_seq=0 starts
// at the beginning); otherwise it is the newest Limit messages. BeforeSeq,
// when positive, excludes it and everything later. Messages are always in
// ascending seq.
type HistoryQuery struct {
	After     bool
	AfterSeq  int64
	BeforeSeq int64
	Limit     int
}

// ConversationSummary is one row of GET /conversations.
type ConversationSummary struct {
	Conv        string
	Kind        topics.ConvKind
	LastSeq     int64
	ReadSeq     int64 // never above LastSeq
	PeerReadSeq int64 // how far the other side has read (see wire.Conversation)
	UpdatedAt   int64
	LastMessage *Message
}

// Unread is how many messages of the conversation the user has not read.
func (c ConversationSummary) Unread() int64 { return c.LastSeq - c.ReadSeq }

// ReadPosition is how far a user has read a conversation.
type ReadPosition struct {
	Conv    string
	ReadSeq int64
	LastSeq int64
}

// Unread is how many messages of the conversation the user has not read.
func (r ReadPosition) Unread() int64 { return r.LastSeq - r.ReadSeq }

// Upload is a file a user uploaded (POST /uploads). Its id is its
// capability: 128 random bits, in hex, in its URL. ContentType was sniffed
// from its bytes; Width and Height are set for images.
type Upload struct {
	ID          string
	Owner       int64
	Name        string
	Size        int64
	ContentType string
	Width       int
	Height      int
	CreatedAt   int64 // Unix milliseconds
}
