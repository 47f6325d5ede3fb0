// Package hooks connects the embedded broker to the domain. Its mochi hook
// authenticates CONNECTs (token as password, client-id rule, Will
// discarded), enforces the topic ACL, hands every client publish to the
// domain's single send path before the broker acknowledges it, reports
// presence, and disconnects clients that stop reading. It holds no business
// rules and no SQL.
package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

// Chat stores and delivers what clients publish (implemented by
// *im.Chat).
type Chat interface {
	// Submit refuses a publish at once (giving done the refusal), or
	// queues it and gives done the result once it is stored: see
	// im.Chat.Submit.
	Submit(ctx context.Context, p im.Principal, topic string, payload []byte, done im.Done)
	// PublishTopic is Submit, waiting for the result.
	PublishTopic(ctx context.Context, p im.Principal, topic string, payload []byte) (im.Message, error)
}

// Domain is what else the hook tells and asks the domain (implemented by
// *im.Service).
type Domain interface {
	// MayReceive is the read ACL of subscriptions and of every delivery,
	// but for presence topics (granted per connection: see OnSubscribe).
	MayReceive(p im.Principal, topic string) bool
	// SubscribePresence checks that p may follow uid's presence and
	// readies uid's current state for p (nil error: allowed).
	SubscribePresence(ctx context.Context, p im.Principal, uid int64) error
	// UserReachable says that uid's first live client has subscribed to
	// its inbox.
	UserReachable(uid int64)
	// InboxSubscribed says that one of uid's clients has subscribed to its
	// inbox.
	InboxSubscribed(uid int64)
	// UserOnline and UserOffline say that uid's first live client is
	// established, or its last one gone.
	UserOnline(uid int64)
	UserOffline(uid int64)
}

// Authenticator answers who an access token is for and when it expires
// (implemented by *im.Accounts).
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (im.Principal, time.Time, error)
}

// Broker is the broker control the hook needs (implemented by
// *broker.Broker).
type Broker interface {
	RefuseConnect(cl *mqtt.Client, code packets.Code) error
	Unsubscribe(cl *mqtt.Client, filter string)
	Disconnect(cl *mqtt.Client, code packets.Code)
	ForgetSession(id string)
	Session(id string) (*mqtt.Client, bool)
	// Delivering returns the payload Publish is delivering on topic, when
	// asked from within that delivery (the read ACL), or nil.
	Delivering(topic string) []byte
	Publish(topic string, payload []byte) error
}

// Options configures a Hook.
type Options struct {
	Chat     Chat
	Domain   Domain
	Tokens   Authenticator
	Registry *Registry
	Log      *slog.Logger
	// PublishTimeout bounds the storing of one publish. Keep it well under
	// the keepalive: the publisher's connection reads nothing meanwhile.
	// Default 10s.
	PublishTimeout time.Duration
	// Keepalive is imposed on clients that ask for none (0) or for more
	// than MaxKeepalive, so dead connections are found. Default 300s.
	Keepalive, MaxKeepalive uint16
	// MaxPacketSize is the broker's inbound packet limit, announced to
	// MQTT 5 clients in the CONNACK. 0: not announced.
	MaxPacketSize uint32
	// MaxSessions is how many live connections and parked persistent
	// sessions one user may hold together; 0 is unlimited.
	MaxSessions int
	// MaxInflight is how many publishes of one connection may wait for
	// their ack; past it the connection is not read until one is
	// answered. Default DefaultMaxInflight.
	MaxInflight int
	// Sessions keeps persistent sessions in the store (sessions.go); nil
	// leaves them to mochi's memory.
	Sessions Sessions
}

// DefaultMaxInflight is the default Options.MaxInflight; announce it as
// the broker's Receive Maximum.
const DefaultMaxInflight = 256

// Hook is the mochi hook of the server.
type Hook struct {
	mqtt.HookBase
	chat      Chat
	dom       Domain
	tokens    Authenticator
	registry  *Registry
	log       *slog.Logger
	timeout   time.Duration
	keep      uint16
	maxKeep   uint16
	maxPacket uint32
	maxSess   int

	pipes    *pipelines     // the publishes in flight, by connection (pipeline.go)
	inflight sync.WaitGroup // the publishes in flight
	writers  sync.WaitGroup // the pipelines' writers
	// drain is held shared by OnPublish and exclusively by Drain, which
	// then sets draining; ctx ends then, ending waits for the rate.
	drain    sync.RWMutex
	draining bool
	ctx      context.Context
	cancel   context.CancelFunc

	sess *keeper // persistent sessions; nil without Options.Sessions
}

var _ mqtt.Hook = (*Hook)(nil)

// New returns a Hook.
func New(o Options) *Hook {
	h := &Hook{chat: o.Chat, dom: o.Domain, tokens: o.Tokens, registry: o.Registry, log: o.Log, timeout: o.PublishTimeout, keep: o.Keepalive, maxKeep: o.MaxKeepalive, maxPacket: o.MaxPacketSize, maxSess: o.MaxSessions}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.timeout <= 0 {
		h.timeout = 10 * time.Second
	}
	if h.keep == 0 {
		h.keep = 300
	}
	if h.maxKeep == 0 {
		h.maxKeep = 1200
	}
	if o.MaxInflight <= 0 {
		o.MaxInflight = DefaultMaxInflight
	}
	h.pipes = newPipelines(o.MaxInflight, &h.writers)
	h.ctx, h.cancel = context.WithCancel(context.Background())
	if o.Sessions != nil {
		h.sess = newKeeper(h.ctx, o.Sessions, h.log, h.timeout)
		h.registry.forgotten = func(id string) { h.forget(id) }
	}
	return h
}

// ID implements mqtt.Hook.
func (h *Hook) ID() string { return "imserver" }

// Provides implements mqtt.Hook. mochi asks before every call of every
// event (several times per delivery), so it is a plain switch.
func (h *Hook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnSessionEstablished, mqtt.OnDisconnect,
		mqtt.OnSubscribe, mqtt.OnSubscribed, mqtt.OnUnsubscribed, mqtt.OnACLCheck, mqtt.OnPublish, mqtt.OnPublishDropped,
		mqtt.OnPacketRead, mqtt.OnPacketEncode, mqtt.OnClientExpired:
		return true
	case mqtt.OnSessionEstablish, mqtt.OnQosPublish, mqtt.OnQosComplete,
		mqtt.StoredClients, mqtt.StoredSubscriptions:
		return h.sess != nil
	}
	return false
}

// OnConnect authenticates the client: the password is an access token and
// the client id must be empty or start with "u{uid}-", so nobody can take
// over another user's session. A refusal is answered with CONNACK "not
// authorized" here (mochi's own refusal says "bad username or password").
// The Will message is discarded: it would be published without any check.
func (h *Hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	if len(pk.Connect.ClientIdentifier) > MaxClientIDLen {
		h.log.Debug("mqtt connect refused", "reason", "client id too long", "remote", cl.Net.Remote)
		return h.refuseConnect(cl, packets.ErrClientIdentifierNotValid)
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	p, exp, err := h.tokens.Authenticate(ctx, string(pk.Connect.Password))
	cancel()
	if err != nil {
		if _, _, refused := refusal(err); !refused {
			h.log.Warn("mqtt connect: checking the token failed", "remote", cl.Net.Remote, "error", err)
			return h.refuseConnect(cl, packets.ErrServerUnavailable)
		}
		h.log.Info("mqtt connect refused", "reason", "bad token", "remote", cl.Net.Remote)
		return h.refuseConnect(cl, packets.ErrNotAuthorized)
	}
	if id := pk.Connect.ClientIdentifier; id != "" && !strings.HasPrefix(id, clientIDPrefix(p.UID)) {
		h.log.Info("mqtt connect refused", "reason", "foreign client id", "uid", p.UID, "client", id)
		return h.refuseConnect(cl, packets.ErrNotAuthorized)
	}
	if !h.registry.admit(cl, p, exp, h.maxSess) {
		h.log.Info("mqtt connect refused", "reason", "too many connections", "uid", p.UID)
		return h.refuseConnect(cl, packets.ErrQuotaExceeded)
	}
	cl.Properties.Will = mqtt.Will{}
	if ka := cl.State.Keepalive; ka == 0 || ka > h.maxKeep {
		cl.State.Keepalive = min(max(ka, h.keep), h.maxKeep)
		cl.State.ServerKeepalive = true
	}
	return nil
}

// MaxClientIDLen is the longest client id accepted, in bytes (PROTOCOL.md
// §9): longer ones are refused with CONNACK 0x85 (3.1.1: 2).
const MaxClientIDLen = 128

// refuseConnect answers the CONNECT with code (see Broker.RefuseConnect) and
// makes mochi close the connection.
func (h *Hook) refuseConnect(cl *mqtt.Client, code packets.Code) error {
	if err := h.registry.broker.RefuseConnect(cl, code); err != nil {
		return err
	}
	return code
}

// clientIDPrefix is the prefix every client id chosen by user uid must have.
func clientIDPrefix(uid int64) string { return "u" + strconv.FormatInt(uid, 10) + "-" }

// OnConnectAuthenticate implements mqtt.Hook: clients that passed OnConnect
// are let in.
func (h *Hook) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	_, ok := h.registry.principal(cl)
	return ok
}

// OnSessionEstablished marks the client live in the registry, which
// disconnects it when its token expires.
func (h *Hook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	h.registry.unpark(cl.ID) // resumed, or replaced by a clean session
	p, first, ok := h.registry.establish(cl)
	if !ok {
		return
	}
	if first {
		h.dom.UserOnline(p.UID)
	}
	// A resumed session (clean=false) may already hold its inbox
	// subscription, without a SUBSCRIBE.
	if _, ok := cl.State.Subscriptions.Get(topics.Inbox(p.UID)); ok {
		h.inbox(cl, true)
	}
	h.sessionEstablished(cl, p)
}

// OnSessionEstablish readies a persistent session's connection, before
// mochi hands it the session it resumes: what mochi kept unacknowledged
// is dropped (the store has it, and the catch-up sends it again), and
// live deliveries of messages wait for the catch-up.
func (h *Hook) OnSessionEstablish(cl *mqtt.Client, _ packets.Packet) {
	if !persistent(cl) {
		return
	}
	p, ok := h.registry.principal(cl)
	if !ok {
		return
	}
	old, resumed := h.registry.broker.Session(cl.ID)
	if resumed {
		old.ClearInflights()
		if t := h.sess.tracker(old); t != nil {
			h.sess.flush(t) // a connection taken over: how far it got, before the catch-up reads it
		}
	}
	h.sess.track(cl, p, resumed)
}

// sessionEstablished records a persistent session and starts its
// catch-up; a clean start ends the session its client id had.
func (h *Hook) sessionEstablished(cl *mqtt.Client, p im.Principal) {
	if h.sess == nil {
		return
	}
	t := h.sess.tracker(cl)
	if t == nil {
		if h.sess.markStored(cl.ID, false) {
			h.forget(cl.ID)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	err := h.sess.dom.Save(ctx, im.MQTTSession{ClientID: cl.ID, UID: p.UID, Username: string(cl.Properties.Username),
		Version: cl.Properties.ProtocolVersion, Expiry: cl.Properties.Props.SessionExpiryInterval})
	cancel()
	if err != nil {
		h.log.Warn("record a persistent session", "client", cl.ID, "error", err)
	} else {
		h.sess.markStored(cl.ID, true)
	}
	if h.sess.catchingUp(cl) {
		h.sess.wg.Add(1)
		go h.sess.catchUp(t)
	}
}

// forget deletes the recorded session of client id.
func (h *Hook) forget(id string) {
	if h.sess == nil {
		return
	}
	h.sess.markStored(id, false)
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	if err := h.sess.dom.Forget(ctx, id); err != nil {
		h.log.Warn("forget a persistent session", "client", id, "error", err)
	}
}

// OnQosPublish follows a persistent session's QoS 1 deliveries.
func (h *Hook) OnQosPublish(cl *mqtt.Client, pk packets.Packet, _ int64, _ int) {
	if cl.Properties.Clean || pk.FixedHeader.Type != packets.Publish {
		return
	}
	if k, ok := envelopeKey(pk.Payload); ok {
		if t := h.sess.tracker(cl); t != nil {
			t.sent(pk.PacketID, k)
		}
	}
}

// OnQosComplete follows a persistent session's PUBACKs.
func (h *Hook) OnQosComplete(cl *mqtt.Client, pk packets.Packet) {
	if cl.Properties.Clean || pk.FixedHeader.Type != packets.Puback {
		return
	}
	if t := h.sess.tracker(cl); t != nil {
		t.acked(pk.PacketID)
	}
}

// StoredClients gives mochi, as it starts, the persistent sessions
// recorded in the store: their clients resume them.
func (h *Hook) StoredClients() ([]storage.Client, error) {
	return h.sess.storedClients(func(uid int64, id string) { h.registry.park(uid, id) })
}

// StoredSubscriptions gives mochi their subscriptions.
func (h *Hook) StoredSubscriptions() ([]storage.Subscription, error) {
	return h.sess.storedSubscriptions(), nil
}

// OnSubscribe grants the presence topics of a SUBSCRIBE that the domain
// allows (the user itself, or someone sharing a conversation with it) to
// this connection; the ACL then refuses the others in the SUBACK, and
// mochi sends the granted ones' current state (their retained message)
// right after it. The domain's check reads the database: it is bounded by
// the publish timeout.
func (h *Hook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	p, ok := h.registry.principal(cl)
	if !ok {
		return pk
	}
	var fresh map[string]bool
	for i, f := range pk.Filters {
		pk.Filters[i].Qos = min(f.Qos, 1) // PROTOCOL.md §9: QoS 2 subscriptions are granted 1
		if _, had := cl.State.Subscriptions.Get(f.Filter); !had {
			if fresh == nil {
				fresh = map[string]bool{}
			}
			fresh[f.Filter] = true
		}
	}
	if h.sess != nil {
		if t := h.sess.tracker(cl); t != nil {
			t.mu.Lock()
			t.fresh = fresh
			t.mu.Unlock()
		}
	}
	for _, f := range pk.Filters {
		r, err := topics.Parse(f.Filter)
		if err != nil || r.Kind != topics.KindPresence || h.registry.presenceGranted(cl, r.UID) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
		err = h.dom.SubscribePresence(ctx, p, r.UID)
		cancel()
		if err == nil {
			h.registry.grantPresence(cl, r.UID)
		} else if _, _, refused := refusal(err); !refused {
			h.log.Warn("presence subscription", "uid", p.UID, "of", r.UID, "error", err)
		}
	}
	return pk
}

// OnSubscribed records when a client has subscribed to its own inbox: from
// then on its user is reachable (customer-service tickets are only given
// to reachable agents).
func (h *Hook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	p, ok := h.registry.principal(cl)
	if !ok {
		return
	}
	inbox := topics.Inbox(p.UID)
	for i, f := range pk.Filters {
		if f.Filter == inbox && i < len(codes) && codes[i] < 0x80 {
			h.inbox(cl, true)
			h.dom.InboxSubscribed(p.UID)
		}
	}
	h.sessionSubscribed(cl, p, pk, codes)
}

// sessionSubscribed records a persistent session's granted subscriptions.
func (h *Hook) sessionSubscribed(cl *mqtt.Client, p im.Principal, pk packets.Packet, codes []byte) {
	if h.sess == nil {
		return
	}
	t := h.sess.tracker(cl)
	if t == nil {
		return
	}
	t.mu.Lock()
	fresh := t.fresh
	t.fresh = nil
	t.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	for i, f := range pk.Filters {
		if i >= len(codes) || codes[i] >= 0x80 {
			continue
		}
		sub := im.MQTTSubscription{Filter: f.Filter, QoS: codes[i]}
		if err := h.sess.dom.Subscribe(ctx, cl.ID, p, sub, fresh[f.Filter]); err != nil {
			h.log.Warn("record a persistent session's subscription", "client", cl.ID, "error", err)
		}
	}
}

// OnUnsubscribed records when a client has left its own inbox.
func (h *Hook) OnUnsubscribed(cl *mqtt.Client, pk packets.Packet) {
	p, ok := h.registry.principal(cl)
	if !ok {
		return
	}
	inbox := topics.Inbox(p.UID)
	for _, f := range pk.Filters {
		if f.Filter == inbox {
			h.inbox(cl, false)
		}
	}
	if h.sess != nil && h.sess.tracker(cl) != nil {
		ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
		defer cancel()
		for _, f := range pk.Filters {
			if err := h.sess.dom.Unsubscribe(ctx, cl.ID, f.Filter); err != nil {
				h.log.Warn("forget a persistent session's subscription", "client", cl.ID, "error", err)
			}
		}
	}
}

// inbox records cl's inbox subscription, and tells the domain when its
// user has just become reachable.
func (h *Hook) inbox(cl *mqtt.Client, on bool) {
	if p, reachable := h.registry.setInbox(cl, on); reachable {
		h.dom.UserReachable(p.UID)
	}
}

// OnDisconnect releases the client. With a session takeover the old
// client's disconnect may come after the new one is established; each
// client is counted on its own, so presence never blinks.
func (h *Hook) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	h.pipes.end(cl)
	if h.sess != nil {
		if t := h.sess.tracker(cl); t != nil {
			// Flushed while still tracked: a connection resuming the
			// session waits for this flush before reading the cursors.
			if expire {
				h.forget(cl.ID)
			} else {
				h.sess.flush(t) // how far it got, for its next connection
			}
			h.sess.untrack(cl)
		}
	}
	uid, last := h.registry.remove(cl)
	if !expire && !cl.IsTakenOver() && uid != 0 {
		h.registry.park(uid, cl.ID) // a persistent session outlives its connection
	}
	if last {
		h.dom.UserOffline(uid)
	}
}

// OnClientExpired forgets a parked persistent session mochi expired.
func (h *Hook) OnClientExpired(cl *mqtt.Client) {
	h.registry.unpark(cl.ID)
	h.forget(cl.ID)
}

// OnACLCheck implements mqtt.Hook. Subscriptions and deliveries (write is
// false) follow the contract's topic table. Publishes (write is true) are
// all let through to OnPublish, which refuses them with an error event
// and a reason code: refused here, a 3.1.1 client would be disconnected
// without knowing why.
func (h *Hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if write {
		return true
	}
	if cl.Closed() {
		// A persistent session without a connection: nothing is queued
		// for it in memory; it gets what it missed from the store.
		return false
	}
	if h.sess != nil && h.sess.withhold(cl, topic, h.registry.broker.Delivering(topic)) {
		return false // catching up: it gets the message from the store, or later
	}
	p, ok := h.registry.principal(cl)
	if !ok {
		return false
	}
	if uid, ok := presenceTopic(topic); ok {
		return h.registry.presenceGranted(cl, uid)
	}
	return h.dom.MayReceive(p, topic)
}

// presenceTopic returns the uid of a presence topic im/p/{uid}.
func presenceTopic(topic string) (int64, bool) {
	if !strings.HasPrefix(topic, "im/p/") {
		return 0, false
	}
	r, err := topics.Parse(topic)
	return r.UID, err == nil && r.Kind == topics.KindPresence
}

// refusedTopic stands in for a publish's topic that mochi would drop
// without a word ($SYS/…, wildcards): OnPacketRead renames it, keeping
// the client's topic in a user property, so that OnPublish refuses it as
// forbidden like any topic outside the table (PROTOCOL.md §9).
const (
	refusedTopic    = "im/!refused"
	refusedTopicKey = "imserver-refused-topic"
)

// OnPacketRead renames the topic of a client's PUBLISH that mochi would
// drop silently (see refusedTopic), and lets a CONNECT with an empty
// password be refused as not authorized. Every other packet passes as it
// is.
func (h *Hook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type == packets.Connect && pk.Connect.PasswordFlag && len(pk.Connect.Password) == 0 {
		// An empty password is a bad token like any other (CONNACK not
		// authorized), not the malformed packet mochi would call it.
		pk.Connect.PasswordFlag = false
		return pk, nil
	}
	if pk.FixedHeader.Type != packets.Publish || cl.Net.Inline || mqtt.IsValidFilter(pk.TopicName, true) {
		return pk, nil
	}
	pk.Properties.User = append(pk.Properties.User, packets.UserProperty{Key: refusedTopicKey, Val: pk.TopicName})
	pk.TopicName = refusedTopic
	return pk, nil
}

// clientTopic is the topic the client published to (see refusedTopic).
func clientTopic(pk packets.Packet) string {
	if pk.TopicName == refusedTopic {
		for _, u := range pk.Properties.User {
			if u.Key == refusedTopicKey {
				return u.Val
			}
		}
	}
	return pk.TopicName
}

// OnPacketEncode keeps what the server sends within each protocol
// version's rules: a 3.1.1 client is never sent a DISCONNECT (3.1.1 has
// none from the server: its connection is just closed) nor a CONNACK code
// above 5 (the connection is closed without one); an MQTT 5 CONNACK
// announces what the server enforces.
func (h *Hook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	switch pk.FixedHeader.Type {
	case packets.Disconnect:
		if cl.Properties.ProtocolVersion < 5 {
			return packets.Packet{} // an invalid type: mochi writes nothing, then closes
		}
	case packets.Connack:
		if cl.Properties.ProtocolVersion < 5 {
			if pk.ReasonCode > packets.Err3NotAuthorized.Code {
				return packets.Packet{}
			}
			break
		}
		if pk.ReasonCode == packets.CodeSuccess.Code {
			pk.Properties.MaximumPacketSize = h.maxPacket
			pk.Properties.RetainAvailable, pk.Properties.RetainAvailableFlag = 0, true
			pk.Properties.WildcardSubAvailable, pk.Properties.WildcardSubAvailableFlag = 0, true
			pk.Properties.SharedSubAvailable, pk.Properties.SharedSubAvailableFlag = 0, true
		}
	}
	return pk
}

// OnPublish stores a client's message through the domain before mochi
// acknowledges it, and stops mochi from forwarding the raw publish: the
// domain delivers the stored envelope itself.
func (h *Hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil // the server's own deliveries
	}
	h.drain.RLock()
	defer h.drain.RUnlock()
	if h.draining {
		// Shutting down: no ack, so the client sends it again to the next
		// server once it reconnects.
		cl.Stop(packets.ErrServerShuttingDown)
		return pk, packets.ErrRejectPacket
	}
	p, ok := h.registry.principal(cl)
	if !ok {
		return pk, packets.ErrRejectPacket
	}
	pl := h.pipes.get(cl)
	if pk.FixedHeader.Qos == 2 {
		// QoS 2 keeps mochi's own flow (PUBREC, PUBREL, PUBCOMP and the
		// packet id's state), after every earlier publish is answered.
		pl.waitIdle(&h.inflight)
		return h.publishNow(cl, p, pk)
	}
	o, ok := pl.push(&h.inflight)
	if !ok {
		return pk, packets.ErrRejectPacket // the connection is gone
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.timeout)
	defer cancel()
	h.chat.Submit(ctx, p, clientTopic(pk), pk.Payload, func(_ im.Message, err error) {
		ack, packet, stop := h.answer(cl, p, pk, err)
		pl.settle(o, ack, packet, stop)
	})
	// mochi does nothing more: the pipeline acknowledges it.
	return pk, packets.ErrRejectPacket
}

// publishNow stores a QoS 2 publish and waits for it, then lets mochi
// answer it.
func (h *Hook) publishNow(cl *mqtt.Client, p im.Principal, pk packets.Packet) (packets.Packet, error) {
	ctx, cancel := context.WithTimeout(h.ctx, h.timeout)
	defer cancel()
	_, err := h.chat.PublishTopic(ctx, p, clientTopic(pk), pk.Payload)
	if err == nil {
		return pk, packets.CodeSuccessIgnore
	}
	return h.reject(cl, p, pk, err)
}

// answer turns a publish's result into what its connection is owed: the
// bytes of its PUBACK (none for QoS 0), a refusal packet, or stop (close
// the connection without an ack). A refusal is told on the publisher's
// inbox too (see reject).
func (h *Hook) answer(cl *mqtt.Client, p im.Principal, pk packets.Packet, err error) (ack []byte, packet *packets.Packet, stop bool) {
	if err == nil {
		if pk.FixedHeader.Qos == 0 {
			return nil, nil, false
		}
		return pubAck(pk.PacketID), nil, false
	}
	code := h.refuse(cl, p, pk, err)
	switch {
	case code == nil:
		return nil, nil, true
	case pk.FixedHeader.Qos == 0:
		return nil, nil, false
	case code.Code == packets.CodeSuccess.Code:
		return pubAck(pk.PacketID), nil, false
	}
	return nil, &packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Puback},
		PacketID:    pk.PacketID,
		ReasonCode:  code.Code,
		Properties:  packets.Properties{ReasonString: code.Reason},
	}, false
}

// reject tells the publisher why its publish failed, for a publish that
// mochi answers (QoS 2): see refuse.
func (h *Hook) reject(cl *mqtt.Client, p im.Principal, pk packets.Packet, err error) (packets.Packet, error) {
	code := h.refuse(cl, p, pk, err)
	switch {
	case code == nil:
		cl.Stop(packets.ErrServerUnavailable)
		return pk, packets.ErrRejectPacket
	case code.Code == packets.CodeSuccess.Code:
		return pk, packets.CodeSuccessIgnore
	}
	return h.nack(cl, pk, *code)
}

// refuse decides how a failed publish is answered, and tells the
// publisher why: an error event on its inbox in every case of refusal,
// and on MQTT 5 the reason code of its PUBACK or PUBREC. Other refusals
// get a plain ack (code success): any other answer would make a 3.1.1
// client wait for an ack forever. A failure that is not the client's
// doing (the database is down, say) stored nothing: MQTT 5 clients get
// "unspecified error" at once; for 3.1.1 clients code is nil: close the
// connection without an ack, so that the client sends it again after it
// reconnects.
func (h *Hook) refuse(cl *mqtt.Client, p im.Principal, pk packets.Packet, err error) *packets.Code {
	event, c, refused := refusal(err)
	if !refused {
		if h.ctx.Err() == nil { // not merely cut short by the shutdown
			h.log.Error("publish failed", "uid", p.UID, "topic", clientTopic(pk), "error", err)
		}
		if cl.Properties.ProtocolVersion == 5 && pk.FixedHeader.Qos > 0 {
			return &packets.ErrUnspecifiedError
		}
		return nil
	}
	ev := wire.ErrorEvent{Event: wire.EventError, CID: cidOf(pk.Payload), Topic: clientTopic(pk), Code: event, Message: im.PublicMessage(err)}
	if b, err := json.Marshal(ev); err == nil {
		_ = h.registry.broker.Publish(topics.Inbox(p.UID), b)
	}
	if cl.Properties.ProtocolVersion == 5 && pk.FixedHeader.Qos > 0 {
		c.Reason = ev.Message
		return &c
	}
	return &packets.CodeSuccess
}

// nack refuses a v5 QoS 1 or 2 publish with a reason code. mochi answers a
// refused QoS 2 publish with a PUBACK, which is the wrong packet, so the
// PUBREC is written here.
func (h *Hook) nack(cl *mqtt.Client, pk packets.Packet, code packets.Code) (packets.Packet, error) {
	if pk.FixedHeader.Qos == 2 {
		_ = cl.WritePacket(packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Pubrec},
			PacketID:    pk.PacketID,
			ReasonCode:  code.Code,
			Properties:  packets.Properties{ReasonString: code.Reason},
		})
		return pk, packets.ErrRejectPacket
	}
	return pk, code
}

// refusal maps a domain error to the error event's code and the MQTT 5
// reason code. refused is false for failures that are not the client's
// doing. This is the one place MQTT learns what domain errors mean.
func refusal(err error) (event string, code packets.Code, refused bool) {
	switch {
	case errors.Is(err, im.ErrForbidden), errors.Is(err, im.ErrUnauthorized):
		return wire.CodeForbidden, packets.ErrNotAuthorized, true
	case errors.Is(err, im.ErrInvalid), errors.Is(err, im.ErrConflict):
		return wire.CodeInvalid, packets.ErrPayloadFormatInvalid, true
	case errors.Is(err, im.ErrTooLarge):
		// 0x95 "packet too large" is not a code a PUBACK may carry
		// (MQTT 5 §3.4.2.1): strict clients fail on it. 0x97 "quota
		// exceeded" is.
		return wire.CodeTooLarge, packets.ErrQuotaExceeded, true
	case errors.Is(err, im.ErrNotFound):
		return wire.CodeNotFound, packets.ErrTopicNameInvalid, true
	case errors.Is(err, im.ErrRateLimited):
		return wire.CodeRateLimited, packets.ErrQuotaExceeded, true
	}
	return "", packets.ErrUnspecifiedError, false
}

// cidOf digs the cid out of a payload for the error event, if it can.
func cidOf(payload []byte) string {
	if len(payload) > wire.MaxPayload {
		return ""
	}
	var v struct {
		CID any `json:"cid"`
	}
	if json.Unmarshal(payload, &v) != nil {
		return ""
	}
	s, _ := v.CID.(string)
	if r := []rune(s); len(r) > wire.MaxCIDLen {
		s = string(r[:wire.MaxCIDLen])
	}
	return s
}

// OnPublishDropped disconnects a client whose outbound queue is full: it is
// not reading, and waiting for it would only grow its backlog. It catches
// up from history when it reconnects.
func (h *Hook) OnPublishDropped(cl *mqtt.Client, _ packets.Packet) {
	if cl.Net.Inline || cl.Closed() {
		return
	}
	h.log.Warn("disconnecting a client that does not keep up", "client", cl.ID)
	cl.Stop(packets.ErrPendingClientWritesExceeded)
}

// Wait waits until every connection's pipeline has stopped, or ctx ends.
// Call it once the broker is closed: a pipeline stops when its connection
// is gone.
func (h *Hook) Wait(ctx context.Context) error {
	h.cancel()
	done := make(chan struct{})
	go func() {
		h.writers.Wait()
		if h.sess != nil {
			h.sess.stop()
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Drain makes new publishes fail without an ack (their clients are closed
// and resend after reconnecting) and waits until the publishes in flight
// are stored and acknowledged, or ctx ends. Call it before closing the
// broker and the store.
func (h *Hook) Drain(ctx context.Context) error {
	h.cancel() // publishes waiting for the rate give up, unacknowledged
	done := make(chan struct{})
	go func() {
		h.drain.Lock() // waits for OnPublish calls under way
		h.draining = true
		h.drain.Unlock()
		h.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
