package im

import (
	"encoding/json"

	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

// Roles of users.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
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
	PasswordHash string
	Role         string
	Status       string
	CreatedAt    int64 // Unix milliseconds
	LastSeen     int64 // when its last live connection closed, Unix milliseconds; 0 if never
}

// Principal is an authenticated caller, as proven by an access token.
type Principal struct {
	UID      int64
	Username string
	Role     string
}

// IsAdmin reports whether p may use the admin API.
func (p Principal) IsAdmin() bool { return p.Role == RoleAdmin }

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
