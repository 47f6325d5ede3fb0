package hooks

import (
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imserver/imserver/im"
)

// Sessions knows which user each connected MQTT client belongs to. The
// domain uses it to act on a user's live connections (dropping a room
// subscription when the user leaves the room).
type Sessions struct {
	broker Broker

	mu      sync.RWMutex
	clients map[*mqtt.Client]*session // keyed by pointer: a taken-over session has the same id as its successor
	byUser  map[int64]map[*mqtt.Client]struct{}
}

type session struct {
	p           im.Principal
	expires     time.Time
	established bool
	inbox       bool // subscribed to its user's inbox
	timer       *time.Timer
}

// NewSessions returns an empty registry acting on broker.
func NewSessions(b Broker) *Sessions {
	return &Sessions{broker: b, clients: make(map[*mqtt.Client]*session), byUser: make(map[int64]map[*mqtt.Client]struct{})}
}

func (s *Sessions) add(cl *mqtt.Client, p im.Principal, expires time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[cl] = &session{p: p, expires: expires}
}

func (s *Sessions) principal(cl *mqtt.Client) (im.Principal, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ss, ok := s.clients[cl]
	if !ok {
		return im.Principal{}, false
	}
	return ss.p, true
}

// establish marks a client live and arms its token-expiry disconnect.
func (s *Sessions) establish(cl *mqtt.Client) (im.Principal, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.clients[cl]
	if !ok || ss.established {
		return im.Principal{}, false
	}
	ss.established = true
	set := s.byUser[ss.p.UID]
	if set == nil {
		set = make(map[*mqtt.Client]struct{})
		s.byUser[ss.p.UID] = set
	}
	set[cl] = struct{}{}
	ss.timer = time.AfterFunc(time.Until(ss.expires), func() {
		s.broker.Disconnect(cl, packets.ErrNotAuthorized) // the token expired: log in again
	})
	return ss.p, true
}

// setInbox records whether cl is subscribed to its user's inbox and
// reports whether that changed.
func (s *Sessions) setInbox(cl *mqtt.Client, on bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.clients[cl]
	if !ok || !ss.established || ss.inbox == on {
		return false
	}
	ss.inbox = on
	return true
}

// remove forgets cl and returns what was known of it.
func (s *Sessions) remove(cl *mqtt.Client) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.clients[cl]
	if !ok {
		return session{}, false
	}
	delete(s.clients, cl)
	if ss.timer != nil {
		ss.timer.Stop()
	}
	if set := s.byUser[ss.p.UID]; set != nil {
		delete(set, cl)
		if len(set) == 0 {
			delete(s.byUser, ss.p.UID)
		}
	}
	return *ss, true
}

// clientsOf returns the live clients of uid.
func (s *Sessions) clientsOf(uid int64) []*mqtt.Client {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*mqtt.Client, 0, len(s.byUser[uid]))
	for cl := range s.byUser[uid] {
		out = append(out, cl)
	}
	return out
}

// DropSubscription removes uid's subscriptions to topic on all its live
// clients at once, without waiting for them to unsubscribe.
func (s *Sessions) DropSubscription(uid int64, topic string) {
	for _, cl := range s.clientsOf(uid) {
		s.broker.Unsubscribe(cl, topic)
	}
}

// Count returns the number of authenticated live clients.
func (s *Sessions) Count() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.clients)
}
