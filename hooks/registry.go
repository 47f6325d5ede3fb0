package hooks

import (
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imserver/imserver/im"
)

// Registry is the one owner of live-connection state: which user each MQTT
// client belongs to, which clients are established and which of them are
// subscribed to their user's inbox, and, derived from that, who is online
// and reachable. It implements im.Live, the domain's port to it, and acts
// on a user's connections through the broker (dropping a room
// subscription, closing them). Everything it keeps is behind one lock.
//
// A user is online while at least one of its clients is established, and
// reachable while at least one of them is subscribed to its inbox. Several
// devices count once, and a session taken over by a reconnect never reads
// as offline: each client is counted on its own, and the new one is
// counted before the old one is released.
type Registry struct {
	broker Broker

	mu      sync.RWMutex
	clients map[*mqtt.Client]*conn     // keyed by pointer: a taken-over client has the same id as its successor
	users   map[int64]*userConns       // users with at least one established client
	parked  map[int64]map[string]int64 // persistent sessions without a connection: by uid, client id → when parked (parks, in order)
	parkers map[string]int64           // client id → uid of a parked session
	conns   map[int64]int              // authenticated connections by uid, established or not
	parks   int64                      // parks so far

	// forgotten, if set, is told of a parked session admit forgot.
	forgotten func(id string)
}

// conn is one authenticated MQTT client.
type conn struct {
	p           im.Principal
	expires     time.Time
	established bool
	inbox       bool           // subscribed to its user's inbox
	presence    map[int64]bool // presence topics it may receive, by uid
	timer       *time.Timer    // disconnects it when its token expires
}

// userConns is a user's established clients.
type userConns struct {
	clients   map[*mqtt.Client]struct{}
	reachable int // how many of them are subscribed to the inbox
}

var _ im.Live = (*Registry)(nil)

// NewRegistry returns an empty registry acting on broker.
func NewRegistry(b Broker) *Registry {
	return &Registry{broker: b, clients: make(map[*mqtt.Client]*conn), users: make(map[int64]*userConns),
		parked: make(map[int64]map[string]int64), parkers: make(map[string]int64), conns: make(map[int64]int)}
}

// addLocked records an authenticated client that is not established yet.
// r.mu is held.
func (r *Registry) addLocked(cl *mqtt.Client, p im.Principal, expires time.Time) {
	if _, ok := r.clients[cl]; !ok {
		r.conns[p.UID]++
	}
	r.clients[cl] = &conn{p: p, expires: expires}
}

// principal returns who cl is, if it authenticated.
func (r *Registry) principal(cl *mqtt.Client) (im.Principal, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.clients[cl]
	if !ok {
		return im.Principal{}, false
	}
	return c.p, true
}

// establish marks a client live, counts it for its user, and arms its
// token-expiry disconnect. first reports that the user has just come
// online (its first live client).
func (r *Registry) establish(cl *mqtt.Client) (p im.Principal, first, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.clients[cl]
	if !ok || c.established {
		return im.Principal{}, false, false
	}
	c.established = true
	u := r.users[c.p.UID]
	if u == nil {
		u = &userConns{clients: make(map[*mqtt.Client]struct{})}
		r.users[c.p.UID] = u
		first = true
	}
	u.clients[cl] = struct{}{}
	c.timer = time.AfterFunc(time.Until(c.expires), func() {
		r.broker.Disconnect(cl, packets.ErrNotAuthorized) // the token expired: log in again
	})
	return c.p, first, true
}

// grantPresence lets cl receive uid's presence topic.
func (r *Registry) grantPresence(cl *mqtt.Client, uid int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.clients[cl]; ok {
		if c.presence == nil {
			c.presence = make(map[int64]bool)
		}
		c.presence[uid] = true
	}
}

// presenceGranted reports whether cl may receive uid's presence topic: its
// own user's, or one granted to it.
func (r *Registry) presenceGranted(cl *mqtt.Client, uid int64) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.clients[cl]
	return ok && (c.p.UID == uid || c.presence[uid])
}

// setInbox records whether cl is subscribed to its user's inbox. It
// returns the user and whether the user has just become reachable (its
// first client on the inbox).
func (r *Registry) setInbox(cl *mqtt.Client, on bool) (p im.Principal, nowReachable bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.clients[cl]
	if !ok || !c.established || c.inbox == on {
		return im.Principal{}, false
	}
	c.inbox = on
	u := r.users[c.p.UID]
	if on {
		u.reachable++
		return c.p, u.reachable == 1
	}
	u.reachable--
	return c.p, false
}

// remove forgets cl. last reports that it was its user's last live
// client: the user has gone offline.
func (r *Registry) remove(cl *mqtt.Client) (uid int64, last bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.clients[cl]
	if !ok {
		return 0, false
	}
	delete(r.clients, cl)
	if r.conns[c.p.UID]--; r.conns[c.p.UID] <= 0 {
		delete(r.conns, c.p.UID)
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	if !c.established {
		return c.p.UID, false
	}
	u := r.users[c.p.UID]
	delete(u.clients, cl)
	if c.inbox {
		u.reachable--
	}
	if len(u.clients) == 0 {
		delete(r.users, c.p.UID)
		return c.p.UID, true
	}
	return c.p.UID, false
}

// Online implements im.Live.
func (r *Registry) Online(uid int64) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.users[uid] != nil
}

// Reachable implements im.Live.
func (r *Registry) Reachable(uid int64) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	u := r.users[uid]
	return u != nil && u.reachable > 0
}

// clientsOf returns the established clients of uid.
func (r *Registry) clientsOf(uid int64) []*mqtt.Client {
	r.mu.RLock()
	defer r.mu.RUnlock()
	u := r.users[uid]
	if u == nil {
		return nil
	}
	out := make([]*mqtt.Client, 0, len(u.clients))
	for cl := range u.clients {
		out = append(out, cl)
	}
	return out
}

// DropSubscription implements im.Live: uid's subscriptions to topic are
// removed on all its live clients at once, without waiting for them to
// unsubscribe.
func (r *Registry) DropSubscription(uid int64, topic string) {
	for _, cl := range r.clientsOf(uid) {
		r.broker.Unsubscribe(cl, topic)
	}
}

// CloseToken implements im.Live: uid's live clients authenticated with
// the token are disconnected (MQTT 5: DISCONNECT 0x98 administrative
// action first).
func (r *Registry) CloseToken(uid int64, token string) {
	r.closeWhere(uid, func(c *conn) bool { return c.p.Token == token })
}

// CloseUser implements im.Live: every live client of uid but those
// authenticated with except is disconnected (MQTT 5: DISCONNECT 0x98
// administrative action first).
func (r *Registry) CloseUser(uid int64, except string) {
	r.closeWhere(uid, func(c *conn) bool { return except == "" || c.p.Token != except })
}

// closeWhere disconnects the live clients of uid that match.
func (r *Registry) closeWhere(uid int64, match func(c *conn) bool) {
	r.mu.RLock()
	var out []*mqtt.Client
	if u := r.users[uid]; u != nil {
		for cl := range u.clients {
			if match(r.clients[cl]) {
				out = append(out, cl)
			}
		}
	}
	r.mu.RUnlock()
	for _, cl := range out {
		r.broker.Disconnect(cl, packets.ErrAdministrativeAction)
	}
}

// admit makes room for cl, a connection of p with client id, and adds it
// (see add): a user holds at most max connections (authenticated, whether
// established yet or not) and parked persistent sessions together (0: no
// limit). A client resuming its own parked session takes its place; when
// the user is at the limit, its oldest parked session is forgotten; when
// all its places are connections, admit returns false and adds nothing.
// Counting and adding happen under one lock, so two connections arriving
// together cannot both take the last place.
func (r *Registry) admit(cl *mqtt.Client, p im.Principal, expires time.Time, max int) bool {
	r.mu.Lock()
	var oldest string
	used := 0
	if max > 0 {
		var since int64
		used = len(r.parked[p.UID]) + r.conns[p.UID]
		if _, resuming := r.parked[p.UID][cl.ID]; resuming {
			used--
		}
		if used >= max {
			for pid, t := range r.parked[p.UID] {
				if pid != cl.ID && (oldest == "" || t < since) {
					oldest, since = pid, t
				}
			}
			if oldest == "" {
				r.mu.Unlock()
				return false
			}
			r.unparkLocked(oldest)
		}
	}
	r.addLocked(cl, p, expires)
	r.mu.Unlock()
	if oldest != "" {
		r.broker.ForgetSession(oldest)
		if r.forgotten != nil {
			r.forgotten(oldest)
		}
	}
	return true
}

// park records a persistent session whose connection ended; unpark
// forgets one (resumed, expired or forgotten).
func (r *Registry) park(uid int64, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.parked[uid] == nil {
		r.parked[uid] = make(map[string]int64)
	}
	r.parks++ // orders parks, even within one clock tick
	r.parked[uid][id] = r.parks
	r.parkers[id] = uid
}

func (r *Registry) unpark(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unparkLocked(id)
}

func (r *Registry) unparkLocked(id string) {
	uid, ok := r.parkers[id]
	if !ok {
		return
	}
	delete(r.parkers, id)
	delete(r.parked[uid], id)
	if len(r.parked[uid]) == 0 {
		delete(r.parked, uid)
	}
}
