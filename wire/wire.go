// Package wire holds the JSON shapes of the public contract (PROTOCOL.md §4)
// that the server and its clients exchange over MQTT and REST: what a client
// publishes, the envelope every stored message is delivered as, and the
// events on a user's inbox. It has no dependencies beyond the standard
// library.
package wire

import "encoding/json"

// Message types.
const (
	TypeText  = "text"
	TypeImage = "image"
	TypeFile  = "file"
	TypeCard  = "card"
)

// Limits of the contract.
const (
	MaxPayload  = 64 << 10 // bytes of an MQTT publish payload or a REST message body
	MaxCIDLen   = 64       // characters of a client message id
	MaxTextLen  = 4000     // characters of a text body
	MaxHistory  = 200      // largest page of GET /conversations/{conv}/messages
	DefHistory  = 50       // default page size
	MaxUsername = 32
	MinUsername = 3
	MaxPassword = 128
	MinPassword = 6
)

// Publish is what a client sends: to an MQTT topic, or as the body of
// POST /conversations/{conv}/messages.
type Publish struct {
	CID  string          `json:"cid,omitempty"`
	Type string          `json:"type"`
	Body json.RawMessage `json:"body"`
}

// Envelope is a stored message as it is delivered and returned by history.
// From is 0 for messages the server made (automatic replies).
type Envelope struct {
	ID       string          `json:"id"`
	Conv     string          `json:"conv"`
	Seq      int64           `json:"seq"`
	From     int64           `json:"from"`
	To       int64           `json:"to,omitempty"`       // single chat
	Room     int64           `json:"room,omitempty"`     // group chat
	Shop     int64           `json:"shop,omitempty"`     // customer service
	Customer int64           `json:"customer,omitempty"` // customer service
	Agent    int64           `json:"agent,omitempty"`    // customer service, when assigned
	Session  int64           `json:"session,omitempty"`  // customer service
	Type     string          `json:"type"`
	Body     json.RawMessage `json:"body"`
	CID      string          `json:"cid,omitempty"`
	TS       int64           `json:"ts"` // Unix milliseconds
	Auto     bool            `json:"auto,omitempty"`
}

// Body shapes of the non-text types.
type (
	// ImageBody is the body of an image message.
	ImageBody struct {
		URL    string `json:"url"`
		Width  *int64 `json:"width,omitempty"`
		Height *int64 `json:"height,omitempty"`
	}
	// FileBody is the body of a file message.
	FileBody struct {
		URL  string `json:"url"`
		Name string `json:"name"`
		Size *int64 `json:"size,omitempty"`
	}
	// CardBody is the body of a card message.
	CardBody struct {
		Title       string `json:"title"`
		Description string `json:"description,omitempty"`
		URL         string `json:"url,omitempty"`
		Image       string `json:"image,omitempty"`
	}
)

// Event names: the "event" field of every non-message object on an inbox or
// room topic.
const (
	EventError         = "error"
	EventRead          = "read"
	EventCSAssigned    = "cs_assigned"
	EventCSTransferred = "cs_transferred"
	EventCSClosed      = "cs_closed"
	EventRoomMember    = "room_member"
	EventPresence      = "presence"
	EventTyping        = "typing"
	EventCSQueue       = "cs_queue"
	EventCSQueued      = "cs_queued"
	EventCSDequeued    = "cs_dequeued"
	EventResync        = "resync"
)

// Error codes of the error event.
const (
	CodeForbidden   = "forbidden"
	CodeInvalid     = "invalid"
	CodeTooLarge    = "too_large"
	CodeNotFound    = "not_found"
	CodeRateLimited = "rate_limited"
)

// ErrorEvent tells a publisher why its publish was refused.
type ErrorEvent struct {
	Event   string `json:"event"` // "error"
	CID     string `json:"cid,omitempty"`
	Topic   string `json:"topic"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ReadEvent tells the other side of a conversation how far a user has read.
type ReadEvent struct {
	Event string `json:"event"` // "read"
	Conv  string `json:"conv"`
	UID   int64  `json:"uid"`
	Seq   int64  `json:"seq"`
}

// SessionEvent is cs_assigned, cs_transferred or cs_closed. The names
// (display names, else usernames) spare clients a lookup; guests may not
// look users up.
type SessionEvent struct {
	Event        string `json:"event"`
	Session      int64  `json:"session"`
	Shop         int64  `json:"shop"`
	Customer     int64  `json:"customer"`
	Agent        int64  `json:"agent"`
	Conv         string `json:"conv"`
	CustomerName string `json:"customer_name,omitempty"`
	AgentName    string `json:"agent_name,omitempty"`
}

// QueueEvent tells a queued customer its place in the queue (1 is next)
// and, when recent assignments tell, an estimate of its wait in seconds
// (PROTOCOL.md §8).
type QueueEvent struct {
	Event    string `json:"event"` // "cs_queue"
	Session  int64  `json:"session"`
	Shop     int64  `json:"shop"`
	Position int    `json:"position"`
	ETA      *int64 `json:"eta_s"`
}

// ResyncEvent tells a persistent session that reconnected that more
// messages of conv were missed than it is sent (PROTOCOL.md §9): it gets
// the newest ones, and pages history for those after AfterSeq before them.
type ResyncEvent struct {
	Event    string `json:"event"` // "resync"
	Conv     string `json:"conv"`
	AfterSeq int64  `json:"after_seq"`
}

// QueuedEvent tells a shop's online agents that a session entered the
// queue.
type QueuedEvent struct {
	Event     string `json:"event"` // "cs_queued"
	Session   int64  `json:"session"`
	Shop      int64  `json:"shop"`
	Customer  int64  `json:"customer"`
	Conv      string `json:"conv"`
	CreatedAt int64  `json:"created_at"`
}

// DequeuedEvent tells a shop's online agents that a session left the
// queue: assigned to Agent, or closed (Agent null).
type DequeuedEvent struct {
	Event   string `json:"event"` // "cs_dequeued"
	Session int64  `json:"session"`
	Shop    int64  `json:"shop"`
	Agent   *int64 `json:"agent"`
}

// Room member actions.
const (
	ActionJoined  = "joined"
	ActionLeft    = "left"
	ActionRemoved = "removed"
)

// RoomMemberEvent announces a membership change on the room topic.
type RoomMemberEvent struct {
	Event  string `json:"event"` // "room_member"
	Room   int64  `json:"room"`
	UID    int64  `json:"uid"`
	Action string `json:"action"`
}

// PresenceEvent is a user's presence on im/p/{uid}: sent at once on
// SUBSCRIBE, then on every change (PROTOCOL.md §7). LastSeen is when the
// user's last live connection closed (Unix milliseconds; 0 if never).
type PresenceEvent struct {
	Event    string `json:"event"` // "presence"
	UID      int64  `json:"uid"`
	Online   bool   `json:"online"`
	Status   string `json:"status"` // "online" or "away"
	LastSeen int64  `json:"last_seen"`
}

// Typing is what a client publishes to im/typing.
type Typing struct {
	Conv string `json:"conv"`
}

// TypingEvent tells the others of a conversation that uid is typing.
type TypingEvent struct {
	Event string `json:"event"` // "typing"
	Conv  string `json:"conv"`
	UID   int64  `json:"uid"`
}

// Inbound is anything that arrives on a subscribed topic: either a message
// envelope (Event is empty) or an event. Decode into it first, then look at
// Event to decide which of the shapes above to decode into.
type Inbound struct {
	Event string `json:"event,omitempty"`
}

// ErrorBody is the REST error envelope's inner object.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ErrorResponse is the REST error envelope: {"error":{"code","message"}}.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// REST error codes.
const (
	HTTPInvalidRequest  = "invalid_request"
	HTTPUnauthorized    = "unauthorized"
	HTTPForbidden       = "forbidden"
	HTTPNotFound        = "not_found"
	HTTPConflict        = "conflict"
	HTTPPayloadTooLarge = "payload_too_large"
	HTTPRateLimited     = "rate_limited"
	HTTPInternal        = "internal"
	// HTTPUnavailable (503, with Retry-After) is not in the contract's
	// list: the server is too busy to check a password right now.
	HTTPUnavailable = "unavailable"
)
