package im

import "context"

// The store interfaces, one per area. Package store implements them all
// over SQL; tests may implement only what an area uses.

// UserStore keeps accounts.
type UserStore interface {
	// CreateUser inserts u and returns it with its uid. It returns
	// ErrConflict if the username is taken, compared case-insensitively.
	CreateUser(ctx context.Context, u User) (User, error)
	// UserByName finds a user by username, case-insensitively.
	UserByName(ctx context.Context, username string) (User, error)
	// UserByID finds a user by uid.
	UserByID(ctx context.Context, uid int64) (User, error)
	// UsersByID finds the users of uids that exist.
	UsersByID(ctx context.Context, uids []int64) ([]User, error)
	// SearchUsers lists users whose username contains q
	// (case-insensitive), newest first.
	SearchUsers(ctx context.Context, q string, limit int) ([]User, error)
	// SetPassword stores a new password hash.
	SetPassword(ctx context.Context, uid int64, hash string) error
	// SetDisabled disables or enables an account.
	SetDisabled(ctx context.Context, uid int64, disabled bool) error
	// SetName changes a user's display name.
	SetName(ctx context.Context, uid int64, name string) error

	// CreateToken records an issued access token.
	CreateToken(ctx context.Context, t AccessToken) error
	// Token returns a recorded token and whether it was revoked;
	// ErrNotFound if this installation never issued it.
	Token(ctx context.Context, id string) (t AccessToken, revoked bool, err error)
	// RevokeToken revokes one token.
	RevokeToken(ctx context.Context, id string, at int64) error
	// RevokeTokens revokes every token of uid but except ("" for none).
	RevokeTokens(ctx context.Context, uid int64, except string, at int64) error
	// RevokedSince lists the tokens revoked at or after since, with their
	// users.
	RevokedSince(ctx context.Context, since int64) ([]AccessToken, error)
	// DeleteExpiredTokens forgets tokens that expired before before.
	DeleteExpiredTokens(ctx context.Context, before int64) error
}

// MessageStore keeps conversations, their messages and read positions.
type MessageStore interface {
	// Append queues m for storage with its conversation's next seq
	// (creating the conversation on its first message), advancing the
	// sender's read position to it when m.From is not 0. If m.CID is set
	// and m.From already stored a message with that cid in m.Conv, it
	// stores nothing and answers that message with dup set. done is
	// called once m is durably stored (or failed), on the store's pipeline
	// goroutine, after the answers of every write queued before it (see
	// SupportStore.SupportWrite): deliveries made from done are in seq
	// order. done must not block.
	Append(m Message, done func(stored Message, dup bool, err error))
	// History returns a page of conv's messages in ascending seq.
	History(ctx context.Context, conv string, q HistoryQuery) ([]Message, error)
	// Conversations lists the conversations uid takes part in, newest
	// activity first.
	Conversations(ctx context.Context, uid int64) ([]ConversationSummary, error)
	// MarkRead raises uid's read position in conv to seq, clamped to the
	// conversation's last seq, and never lowers it. It returns the resulting
	// position and whether it moved.
	MarkRead(ctx context.Context, conv string, uid, seq int64) (pos ReadPosition, moved bool, err error)
}

// RoomStore keeps rooms and their members. Every room has exactly one
// owner, who is one of its members.
type RoomStore interface {
	// CreateRoom inserts r, makes r.Owner its owner and only member, and
	// creates the room's (empty) conversation. It returns r with its id.
	CreateRoom(ctx context.Context, r Room) (Room, error)
	// Room returns a room, or ErrNotFound.
	Room(ctx context.Context, id int64) (Room, error)
	// RoomsOf lists the rooms uid is a member of, by id.
	RoomsOf(ctx context.Context, uid int64) ([]Room, error)
	// RoomMembers lists a room's members, owner first, then by the time
	// they joined.
	RoomMembers(ctx context.Context, room int64) ([]RoomMember, error)
	// AddRoomMember makes uid a member of room and reports whether it was
	// not one already. A new member's read position starts at the room's
	// last seq, so history from before it joined does not count as unread.
	// It returns ErrNotFound if the room or the user does not exist.
	AddRoomMember(ctx context.Context, room, uid, now int64) (added bool, err error)
	// RemoveRoomMember removes uid from room. If uid was the owner,
	// ownership passes to the longest-standing remaining member; if uid was
	// the last member, the room is deleted (its messages stay stored).
	RemoveRoomMember(ctx context.Context, room, uid int64) (RoomRemoval, error)
	// RoomMemberships calls fn for every member of every room, and once
	// with uid 0 for a room without members.
	RoomMemberships(ctx context.Context, fn func(room, uid int64)) error
	// PublicRooms lists public rooms whose name contains q
	// (case-insensitive; "" for all), most members first.
	PublicRooms(ctx context.Context, q string, limit int) ([]PublicRoom, error)
}

// PresenceStore keeps what presence needs beyond the user's row.
type PresenceStore interface {
	// SetLastSeen records when uid's last live connection closed (it
	// never goes back in time).
	SetLastSeen(ctx context.Context, uid, at int64) error
	// SharesConversation reports whether a and b take part in a
	// conversation together: a single chat with at least one message, a
	// room, or a service conversation (its customer and the shop's
	// agents).
	SharesConversation(ctx context.Context, a, b int64) (bool, error)
}

// SupportStore keeps shops, their agents and customer-service tickets.
type SupportStore interface {
	CreateShop(ctx context.Context, s Shop) (Shop, error)
	UpdateShop(ctx context.Context, s Shop) error
	Shop(ctx context.Context, id int64) (Shop, error)
	Shops(ctx context.Context) ([]Shop, error)
	// AddAgent makes uid an agent of shop; it is not an error if it is one.
	// ErrNotFound if the user or the shop does not exist.
	AddAgent(ctx context.Context, shop, uid, now int64) error
	// RemoveAgent reports whether uid was an agent of shop.
	RemoveAgent(ctx context.Context, shop, uid int64) (bool, error)
	// Agents lists shop's agents with their open-ticket counts.
	Agents(ctx context.Context, shop int64) ([]Agent, error)
	// AgentShops lists the shops uid is an agent of.
	AgentShops(ctx context.Context, uid int64) ([]int64, error)
	// IsAgent reports whether uid is an agent of shop.
	IsAgent(ctx context.Context, shop, uid int64) (bool, error)
	// ShopFor is Shop and IsAgent at once: the shop, and whether uid is
	// one of its agents.
	ShopFor(ctx context.Context, shop, uid int64) (Shop, bool, error)
	// Ticket finds a ticket by id.
	Ticket(ctx context.Context, id int64) (Ticket, error)
	// Tickets lists shop's tickets with the status ("" for all): queued
	// and open ones oldest first, closed ones (and all) newest first;
	// limit 0 for no limit.
	Tickets(ctx context.Context, shop int64, status string, limit int) ([]Ticket, error)
	// CurrentTicket returns the customer's queued or open ticket with the
	// shop, if there is one, without locking it.
	CurrentTicket(ctx context.Context, shop, customer int64) (Ticket, bool, error)
	// SetUserStatus records a user's online/away choice.
	SetUserStatus(ctx context.Context, uid int64, status string) error
	// SupportWrite queues fn, to run in a write transaction of the store's
	// pipeline of writes, in the order they are queued; its work is kept
	// if fn returns Commit and no error. Then after (if not nil) is called
	// with fn's error, on the pipeline's goroutine, in the order of the
	// writes: what it delivers is in seq order with every message stored
	// before and after. after must not block. fn may run more than once
	// (it must start afresh each time) and gets the context to use. A
	// Rollback is for undoing work: a read-only fn returns Commit (the
	// store may undo and rerun the writes around a rollback).
	SupportWrite(fn func(ctx context.Context, tx SupportTx) (TxEnd, error), after func(error))
	// SupportAppend is SupportWrite for a customer's message that most
	// likely goes where the customer's last one went. At the write's turn
	// open says where (ok false: nowhere known). If that ticket is still
	// open with that agent, who still serves the shop and is not away, the
	// message is stored in it in one step, with the neighbouring writes of
	// the same kind (one statement for all of them on PostgreSQL), and
	// Held is called; otherwise nothing is written and fn runs in its
	// place, as SupportWrite's. open, like fn, may be called more than
	// once: each call starts afresh.
	SupportAppend(open func() (OpenAppend, bool), fn func(ctx context.Context, tx SupportTx) (TxEnd, error), after func(error))

	// IdentitySecret returns the shop's identity secret, first setting it
	// to fresh if it has none.
	IdentitySecret(ctx context.Context, shop int64, fresh string) (string, error)
	// Visitor returns the user of the shop's verified visitor externalID,
	// creating it as u (a guest) the first time.
	Visitor(ctx context.Context, shop int64, externalID string, u User) (User, error)

	// CannedReplies lists a shop's canned replies by shortcut.
	CannedReplies(ctx context.Context, shop int64) ([]CannedReply, error)
	// CannedReply finds one, or ErrNotFound.
	CannedReply(ctx context.Context, shop, id int64) (CannedReply, error)
	// CreateCannedReply inserts one and returns it with its id.
	CreateCannedReply(ctx context.Context, c CannedReply) (CannedReply, error)
	// UpdateCannedReply writes one's shortcut and text.
	UpdateCannedReply(ctx context.Context, c CannedReply) error
	// DeleteCannedReply deletes one, reporting whether it existed.
	DeleteCannedReply(ctx context.Context, shop, id int64) (bool, error)

	// SetCustomerPage records the page a customer writes to the shop from.
	SetCustomerPage(ctx context.Context, p CustomerPage) error
	// CustomerPage returns it, if there is one.
	CustomerPage(ctx context.Context, shop, customer int64) (CustomerPage, bool, error)
	// CustomerTickets lists the customer's tickets with the shop, newest
	// first.
	CustomerTickets(ctx context.Context, shop, customer int64, limit int) ([]Ticket, error)
	// AssignmentTimes returns when the shop's last n tickets that waited
	// in its queue were assigned, since since, newest first (Unix
	// milliseconds).
	AssignmentTimes(ctx context.Context, shop, since int64, n int) ([]int64, error)
}

// OpenAppend is a customer's message for the open ticket its last one
// went to (SupportStore.SupportAppend).
type OpenAppend struct {
	Ticket, Agent int64
	Msg           Message // with its conversation, id and time
	// Held is called, on the store's pipeline, once the message is stored
	// in the ticket (or found stored before: dup, and stored is the
	// earlier copy); t is the ticket as locked.
	Held func(t Ticket, stored Message, dup bool)
}

// TxEnd is what a transaction function decides: keep its work or not.
type TxEnd bool

// The ends of a transaction.
const (
	Commit   TxEnd = true
	Rollback TxEnd = false
)

// SupportTx is a customer-service transaction. Its locking methods take
// row locks on PostgreSQL (SQLite serialises every write transaction), so
// that routing decisions hold when several server processes share one
// database. Lock in this order: shop, then ticket, then (by appending)
// conversation.
type SupportTx interface {
	// LockShop locks the shop's row: routing decisions for one shop are
	// serialised.
	LockShop(ctx context.Context, shop int64) (Shop, error)
	// ActiveTicket locks and returns the customer's queued or open ticket
	// with the shop, if there is one.
	ActiveTicket(ctx context.Context, shop, customer int64) (Ticket, bool, error)
	// LockTicket locks and returns a ticket by id.
	LockTicket(ctx context.Context, id int64) (Ticket, error)
	// CreateTicket inserts a ticket and returns it with its id.
	CreateTicket(ctx context.Context, t Ticket) (Ticket, error)
	// UpdateTicket writes a ticket's agent, status, times and flags.
	UpdateTicket(ctx context.Context, t Ticket) error
	// Agents lists the shop's agents with their loads.
	Agents(ctx context.Context, shop int64) ([]Agent, error)
	// AgentStatus returns uid's online/away choice and whether it is an
	// agent of the shop.
	AgentStatus(ctx context.Context, shop, uid int64) (status string, isAgent bool, err error)
	// LastAgent returns the agent most recently assigned to any of the
	// customer's tickets with the shop, or 0.
	LastAgent(ctx context.Context, shop, customer int64) (int64, error)
	// MarkAssigned records that uid was just assigned a ticket of shop.
	MarkAssigned(ctx context.Context, shop, uid, now int64) error
	// Append stores a message as MessageStore.AppendMessage does. When it
	// reports dup, something was written that only a rollback undoes.
	Append(ctx context.Context, m Message) (stored Message, dup bool, err error)
	// CustomerTickets returns the customer's queued and open tickets with
	// every shop.
	CustomerTickets(ctx context.Context, customer int64) ([]Ticket, error)
	// QueuePosition returns a queued ticket's place in its shop's queue
	// (1 is next), in the order of Tickets.
	QueuePosition(ctx context.Context, t Ticket) (int, error)
	// Unseen returns the ticket's messages the agent has not been sent, in
	// seq order: those stored for other agents or while queued, and not in
	// a backlog it was already sent. It records that the agent has now
	// been sent everything up to the ticket's last message.
	Unseen(ctx context.Context, ticket, agent int64) ([]Message, error)
}

// UploadStore keeps what is known of uploaded files (their bytes are kept
// by package uploads).
type UploadStore interface {
	// CreateUpload records an upload.
	CreateUpload(ctx context.Context, u Upload) error
	// Upload finds an upload by id, or ErrNotFound.
	Upload(ctx context.Context, id string) (Upload, error)
}

// SessionStore keeps persistent MQTT sessions: their subscriptions, and
// how far each has received the conversations they cover.
type SessionStore interface {
	// SaveSession records a session (not its subscriptions).
	SaveSession(ctx context.Context, s MQTTSession, now int64) error
	// DeleteSession forgets a session with its subscriptions and cursors.
	DeleteSession(ctx context.Context, clientID string) error
	// MQTTSessions lists the sessions with their subscriptions.
	MQTTSessions(ctx context.Context) ([]MQTTSession, error)
	// SaveSubscription records a subscription of a session, and starts a
	// cursor at the last seq of each conversation c covers that the
	// session has no cursor for.
	SaveSubscription(ctx context.Context, clientID string, sub MQTTSubscription, c Cover) error
	// DeleteSubscription forgets one.
	DeleteSubscription(ctx context.Context, clientID, filter string) error
	// Cursors returns a session's cursors, by conversation.
	Cursors(ctx context.Context, clientID string) (map[string]Cursor, error)
	// SaveCursors records some of a session's cursors (none if the session
	// is not recorded).
	SaveCursors(ctx context.Context, clientID string, c map[string]Cursor) error
	// Covered lists the conversations c covers, with their last seqs.
	Covered(ctx context.Context, c Cover) ([]ConvHead, error)
	// MessagesAfter returns up to limit of conv's messages after seq after,
	// in seq order; with agent not 0, only those stored for that agent.
	MessagesAfter(ctx context.Context, conv string, after, agent int64, limit int) ([]Message, error)
}
