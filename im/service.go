// Package im is the domain of the server: accounts, conversations and their
// sequence numbers, message validation, rooms, customer-service routing.
// It knows nothing of HTTP, MQTT or SQL: it declares the small interfaces
// it consumes (the stores, Publisher, Live, Passwords) and the edges adapt
// to them.
//
// The domain is split by area, each a type holding only what it uses:
// Accounts (users), Chat (sending, history, read positions), Rooms (group
// chats) and Support (customer service: shops, agents and the tickets the
// contract calls customer-service sessions). They share a core: the
// publisher, the live-connection port, conversation locks, the clock, ids
// and the background workers. Service puts them together.
package im

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/imserver/imserver/topics"
)

// Store is the persistence the domain needs. Implementations map their
// driver errors to ErrNotFound and ErrConflict.
type Store interface {
	UserStore
	MessageStore
	RoomStore
	SupportStore
	PresenceStore
	SessionStore
}

// Publisher delivers payloads to MQTT topics.
type Publisher interface {
	// Publish delivers payload to every subscriber of topic.
	Publish(topic string, payload []byte) error
	// Retain keeps payload as topic's retained message: a client that
	// subscribes to topic gets it right after its SUBACK. It delivers
	// nothing now.
	Retain(topic string, payload []byte)
}

// Live answers for users' live MQTT connections. The registry of
// connections (package hooks) implements it; it is the only owner of that
// state.
type Live interface {
	// Online reports whether uid has at least one live connection.
	Online(uid int64) bool
	// Reachable reports whether uid has a live connection subscribed to
	// its inbox: only then can it be sent anything, so only then does it
	// get customer-service tickets.
	Reachable(uid int64) bool
	// DropSubscription removes uid's subscriptions to topic on every live
	// connection of uid, at once.
	DropSubscription(uid int64, topic string)
	// CloseToken disconnects uid's live connections made with the access
	// token token (its id).
	CloseToken(uid int64, token string)
	// CloseUser disconnects every live connection of uid but those made
	// with the token except ("" for none).
	CloseUser(uid int64, except string)
}

// TokenCodec signs and parses access tokens (auth.Tokens implements it).
// Parse checks the signature, the algorithm, the expiry and that this
// installation issued it; the domain checks the rest (see
// Accounts.Authenticate).
type TokenCodec interface {
	Sign(t AccessToken) (string, error)
	Parse(token string) (AccessToken, error)
}

// Passwords hashes and checks passwords with a slow, salted KDF. Verify
// with an empty hash does the same work as a real check and returns false.
// Both may refuse to work when too many checks are in progress; their
// error then wraps ErrUnavailable.
type Passwords interface {
	Hash(password string) (string, error)
	Verify(hash, password string) (bool, error)
}

// Options configures a Service. Store, Publisher, Passwords and Tokens are
// required.
type Options struct {
	Store     Store
	Publisher Publisher
	Passwords Passwords
	Tokens    TokenCodec
	// TokenTTL is how long users' access tokens last (default 7 days);
	// guests' last GuestTokenTTL (default 30 days): a guest has no
	// password to log in with again, and its token is its account.
	TokenTTL, GuestTokenTTL time.Duration
	Live                    Live             // default: nobody is connected
	Log                     *slog.Logger     // default: slog.Default()
	Now                     func() time.Time // default: time.Now
	NewID                   func() string    // message ids; default: 20 random hex digits
	// PublishRate is how many messages per second one user may send, over
	// MQTT and REST together, with bursts of PublishBurst. 0 disables the
	// limit.
	PublishRate  float64
	PublishBurst int
	// ResumeMax is how many missed messages of one conversation a
	// reconnecting persistent session is sent at most (the newest); past
	// it, a resync event comes first. Default DefaultResumeMax.
	ResumeMax int
}

// Service is the domain: its areas, sharing one core. Its methods and
// those of its areas are safe for concurrent use.
type Service struct {
	Accounts *Accounts
	Chat     *Chat
	Rooms    *Rooms
	Support  *Support
	Presence *Presence
	Sessions *Sessions

	core *core
}

// New builds the domain and loads what it keeps in memory (room
// memberships). Close stops its background work.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.Store == nil || o.Publisher == nil || o.Passwords == nil || o.Tokens == nil {
		return nil, fmt.Errorf("im: Store, Publisher, Passwords and Tokens are required")
	}
	c := newCore(o)
	accounts := newAccounts(c, o)
	rooms, err := newRooms(ctx, c, o.Store, accounts)
	if err != nil {
		return nil, err
	}
	presence := newPresence(c, o.Store)
	d := &dispatcher{core: c, store: o.Store, accounts: accounts}
	support := &Support{core: c, store: o.Store, accounts: accounts, dispatch: d, presence: presence}
	chat := &Chat{core: c, store: o.Store, accounts: accounts, rooms: rooms, support: support,
		limiter: newLimiter(o.PublishRate, o.PublishBurst, c.now), typing: newTypingThrottle(c.now)}
	if o.ResumeMax <= 0 {
		o.ResumeMax = DefaultResumeMax
	}
	sessions := &Sessions{core: c, store: o.Store, rooms: rooms, resumeMax: o.ResumeMax, barrier: d.afterWrites}
	c.work.start()
	return &Service{Accounts: accounts, Chat: chat, Rooms: rooms, Support: support, Presence: presence, Sessions: sessions, core: c}, nil
}

// Close stops taking background work and waits, until ctx ends, for what
// is running to finish. Call it before closing the store.
func (s *Service) Close(ctx context.Context) error { return s.core.work.stop(ctx) }

// MayReceive reports whether p may subscribe to topic and receive what is
// delivered on it: their own inbox, the broadcast topic, and the rooms they
// are a member of. Wildcards, $SYS and everything else are refused. The
// broker asks for every delivery to every subscriber, so it must stay
// cheap: no database access.
func (s *Service) MayReceive(p Principal, topic string) bool {
	r, err := topics.Parse(topic)
	if err != nil {
		return false
	}
	switch r.Kind {
	case topics.KindInbox:
		return r.UID == p.UID
	case topics.KindBroadcast:
		return true
	case topics.KindRoom:
		return s.Rooms.mayReceive(p, r.Room)
	}
	return false // presence topics are granted per subscription (see Presence.Subscribe)
}

// UserReachable tells the domain that uid has become reachable (its first
// live connection subscribed to its inbox). The queues of the shops it is
// an agent of drain to it, in the background.
func (s *Service) UserReachable(uid int64) { s.Support.dispatch.agentReachable(uid) }

// InboxSubscribed says that one of uid's clients has just subscribed to
// its inbox: as a customer, it is told where its sessions stand.
func (s *Service) InboxSubscribed(uid int64) { s.Support.dispatch.customerState(uid) }

// SubscribePresence checks that p may follow uid's presence and makes its
// current state the topic's retained message (see Presence.Subscribe).
func (s *Service) SubscribePresence(ctx context.Context, p Principal, uid int64) error {
	return s.Presence.Subscribe(ctx, p, uid)
}

// UserOnline tells the domain that uid's first live connection is
// established; UserOffline that its last one closed. Presence subscribers
// hear of it, in the background.
func (s *Service) UserOnline(uid int64) { s.Presence.changed(uid, 0) }

// UserOffline: see UserOnline.
func (s *Service) UserOffline(uid int64) { s.Presence.changed(uid, s.core.nowMillis()) }
