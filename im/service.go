// Package im is the domain of the server: accounts, conversations and their
// sequence numbers, message validation, rooms, customer-service routing.
// It knows nothing of HTTP, MQTT or SQL: it declares the small interfaces
// it consumes (Store, Publisher, Passwords) and the edges adapt to them.
package im

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"
)

// Store is the persistence the domain needs. Implementations map their
// driver errors to ErrNotFound and ErrConflict.
type Store interface {
	UserStore
	MessageStore
	RoomStore
	ShopStore
}

// UserStore keeps accounts.
type UserStore interface {
	// CreateUser inserts u and returns it with its uid. It returns
	// ErrConflict if the username is taken, compared case-insensitively.
	CreateUser(ctx context.Context, u User) (User, error)
	// UserByName finds a user by username, case-insensitively.
	UserByName(ctx context.Context, username string) (User, error)
	// UserByID finds a user by uid.
	UserByID(ctx context.Context, uid int64) (User, error)
}

// MessageStore keeps conversations, their messages and read positions.
type MessageStore interface {
	// AppendMessage stores m in one transaction with the conversation's next
	// seq (creating the conversation on its first message), and advances the
	// sender's read position to it when m.From is not 0. If m.CID is set and
	// m.From already stored a message with that cid in m.Conv, it stores
	// nothing and returns that message with dup set.
	AppendMessage(ctx context.Context, m Message) (stored Message, dup bool, err error)
	// History returns a page of conv's messages in ascending seq.
	History(ctx context.Context, conv string, q HistoryQuery) ([]Message, error)
	// Conversations lists the conversations uid takes part in, newest
	// activity first.
	Conversations(ctx context.Context, uid int64) ([]ConversationSummary, error)
	// MarkRead raises uid's read position in conv to seq, clamped to the
	// conversation's last seq, and never lowers it. It returns the resulting
	// position, the conversation's last seq, and whether the position moved.
	MarkRead(ctx context.Context, conv string, uid, seq int64) (readSeq, lastSeq int64, moved bool, err error)
}

// Publisher delivers a payload to every subscriber of an MQTT topic.
type Publisher interface {
	Publish(topic string, payload []byte) error
}

// Sessions acts on users' live MQTT connections.
type Sessions interface {
	// DropSubscription removes uid's subscriptions to topic on every live
	// client of uid, at once.
	DropSubscription(uid int64, topic string)
}

// Passwords hashes and checks passwords with a slow, salted KDF. Verify
// with an empty hash does the same work as a real check and returns false.
// Both may refuse to work when too many checks are in progress; their
// error then wraps ErrUnavailable.
type Passwords interface {
	Hash(password string) (string, error)
	Verify(hash, password string) (bool, error)
}

// Options configures a Service. Store, Publisher and Passwords are required.
type Options struct {
	Store     Store
	Publisher Publisher
	Passwords Passwords
	Sessions  Sessions         // default: none (nothing to act on)
	Log       *slog.Logger     // default: slog.Default()
	Now       func() time.Time // default: time.Now
	NewID     func() string    // message ids; default: 20 random hex digits
	// PublishRate is how many messages per second one user may send, over
	// MQTT and REST together, with bursts of PublishBurst. 0 disables the
	// limit.
	PublishRate  float64
	PublishBurst int
}

// Service is the domain's entry point. Its methods are safe for concurrent
// use.
type Service struct {
	store    Store
	pub      Publisher
	pw       Passwords
	sess     Sessions
	log      *slog.Logger
	now      func() time.Time
	newID    func() string
	limiter  *limiter
	presence presence
	locks    *convLocks
	known    sync.Map // uid → struct{}: users known to exist (accounts are never deleted)

	rooms *roomCache // who is a member of which room (rooms_cache.go)
}

// NewService returns a Service.
func NewService(o Options) *Service {
	s := &Service{store: o.Store, pub: o.Publisher, pw: o.Passwords, sess: o.Sessions, log: o.Log, now: o.Now, newID: o.NewID}
	if s.sess == nil {
		s.sess = noSessions{}
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.newID == nil {
		s.newID = randomID
	}
	s.limiter = newLimiter(o.PublishRate, o.PublishBurst, s.now)
	s.locks = newConvLocks()
	s.rooms = newRoomCache(s.store, s.log)
	s.loadRooms()
	return s
}

func randomID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Service) nowMillis() int64 { return s.now().UnixMilli() }

type noSessions struct{}

func (noSessions) DropSubscription(int64, string) {}
