package im

import (
	"context"
)

// Customer-service session statuses.
const (
	SessionQueued = "queued"
	SessionOpen   = "open"
	SessionClosed = "closed"
)

// Shop is a shop's customer service and its automatic replies.
type Shop struct {
	ID             int64
	Name           string
	WelcomeMessage string // sent when a session opens; "" for none
	OfflineMessage string // sent once per queued session; "" for none
	KeywordReplies []KeywordReply
	CreatedAt      int64
}

// KeywordReply is an automatic reply to text messages containing Keyword,
// compared case-insensitively.
type KeywordReply struct {
	Keyword string `json:"keyword"`
	Reply   string `json:"reply"`
}

// Session is a customer's conversation episode with a shop's customer
// service. Agent is 0 while it is queued.
type Session struct {
	ID              int64
	Shop            int64
	Customer        int64
	Agent           int64
	Status          string
	CreatedAt       int64
	AssignedAt      int64
	ClosedAt        int64
	OfflineNotified bool
}

// Agent is an agent of a shop as the routing rules see it.
type Agent struct {
	UID            int64
	Username       string
	Status         string // online or away (the user's choice, not presence)
	OpenSessions   int64  // open sessions of this shop assigned to it
	LastAssignedAt int64
}

// ShopStore keeps shops, agents and customer-service sessions.
type ShopStore interface {
	CreateShop(ctx context.Context, s Shop) (Shop, error)
	UpdateShop(ctx context.Context, s Shop) error
	Shop(ctx context.Context, id int64) (Shop, error)
	Shops(ctx context.Context) ([]Shop, error)
	// AddAgent makes uid an agent of shop; it is not an error if it is one.
	// ErrNotFound if the user or the shop does not exist.
	AddAgent(ctx context.Context, shop, uid, now int64) error
	// RemoveAgent reports whether uid was an agent of shop.
	RemoveAgent(ctx context.Context, shop, uid int64) (bool, error)
	// Agents lists shop's agents with their open-session counts.
	Agents(ctx context.Context, shop int64) ([]Agent, error)
	// AgentShops lists the shops uid is an agent of.
	AgentShops(ctx context.Context, uid int64) ([]int64, error)
	// IsAgent reports whether uid is an agent of shop.
	IsAgent(ctx context.Context, shop, uid int64) (bool, error)
	// Session finds a session by id.
	Session(ctx context.Context, id int64) (Session, error)
	// Sessions lists shop's sessions with the status ("" for all).
	Sessions(ctx context.Context, shop int64, status string, limit int) ([]Session, error)
	// CurrentSession returns the customer's queued or open session with the
	// shop, if there is one, without locking it.
	CurrentSession(ctx context.Context, shop, customer int64) (Session, bool, error)
	// QueuedSessions lists shop's queued sessions, oldest first.
	QueuedSessions(ctx context.Context, shop int64) ([]Session, error)
	// SetUserStatus records a user's online/away choice.
	SetUserStatus(ctx context.Context, uid int64, status string) error
	// InServiceTx runs fn in a write transaction, committed if fn returns
	// nil and rolled back otherwise.
	InServiceTx(ctx context.Context, fn func(ServiceTx) error) error
}

// ServiceTx is a customer-service transaction. Its locking methods take
// row locks on PostgreSQL (SQLite serialises every write transaction), so
// that routing decisions hold when several server processes share one
// database. Lock in this order: shop, then session, then (by appending)
// conversation.
type ServiceTx interface {
	// LockShop locks the shop's row: routing decisions for one shop are
	// serialised.
	LockShop(ctx context.Context, shop int64) (Shop, error)
	// ActiveSession locks and returns the customer's queued or open session
	// with the shop, if there is one.
	ActiveSession(ctx context.Context, shop, customer int64) (Session, bool, error)
	// LockSession locks and returns a session by id.
	LockSession(ctx context.Context, id int64) (Session, error)
	// CreateSession inserts a session and returns it with its id.
	CreateSession(ctx context.Context, s Session) (Session, error)
	// UpdateSession writes a session's agent, status, times and flags.
	UpdateSession(ctx context.Context, s Session) error
	// Agents lists the shop's agents with their loads.
	Agents(ctx context.Context, shop int64) ([]Agent, error)
	// AgentStatus returns uid's online/away choice and whether it is an
	// agent of the shop.
	AgentStatus(ctx context.Context, shop, uid int64) (status string, isAgent bool, err error)
	// LastAgent returns the agent most recently assigned to any of the
	// customer's sessions with the shop, or 0.
	LastAgent(ctx context.Context, shop, customer int64) (int64, error)
	// MarkAssigned records that uid was just assigned a session of shop.
	MarkAssigned(ctx context.Context, shop, uid, now int64) error
	// Append stores a message as MessageStore.AppendMessage does.
	Append(ctx context.Context, m Message) (Message, bool, error)
	// Unseen returns the session's messages the agent has not been sent, in
	// seq order: those stored for other agents or while queued, and not in
	// a backlog it was already sent. It records that the agent has now
	// been sent everything up to the session's last message.
	Unseen(ctx context.Context, session, agent int64) ([]Message, error)
}
