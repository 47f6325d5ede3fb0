package wire

// KeywordReply is an automatic reply to text messages containing Keyword
// (case-insensitive).
type KeywordReply struct {
	Keyword string `json:"keyword"`
	Reply   string `json:"reply"`
}

// ShopInput is the body of POST /shops and PATCH /shops/{id}; absent
// fields are left unchanged by PATCH.
type ShopInput struct {
	Name           *string         `json:"name"`
	WelcomeMessage *string         `json:"welcome_message"`
	OfflineMessage *string         `json:"offline_message"`
	KeywordReplies *[]KeywordReply `json:"keyword_replies"`
}

// Shop is a shop as the API returns it. Customers see shop_id and name;
// the settings are shown to the shop's agents and to admins only.
type Shop struct {
	ShopID         int64           `json:"shop_id"`
	Name           string          `json:"name"`
	WelcomeMessage *string         `json:"welcome_message,omitempty"`
	OfflineMessage *string         `json:"offline_message,omitempty"`
	KeywordReplies *[]KeywordReply `json:"keyword_replies,omitempty"`
	CreatedAt      int64           `json:"created_at,omitempty"`
}

// ShopAgent is one row of GET /shops/{id}/agents.
type ShopAgent struct {
	UID          int64  `json:"uid"`
	Username     string `json:"username"`
	Online       bool   `json:"online"`
	Status       string `json:"status"`
	OpenSessions int64  `json:"open_sessions"`
}

// Customer-service session statuses.
const (
	SessionQueued = "queued"
	SessionOpen   = "open"
	SessionClosed = "closed"
)

// CSSession is one row of GET /shops/{id}/sessions. Agent is null while the
// session is queued.
type CSSession struct {
	SessionID int64  `json:"session_id"`
	ShopID    int64  `json:"shop_id"`
	Customer  int64  `json:"customer"`
	Agent     *int64 `json:"agent"`
	Status    string `json:"status"`
	CreatedAt int64  `json:"created_at"`
}

// UserRef is a body naming a user: {uid}.
type UserRef struct {
	UID int64 `json:"uid"`
}

// Transfer is the body of POST /cs/sessions/{id}/transfer.
type Transfer struct {
	To int64 `json:"to"`
}

// Status is the body of PUT /me/status.
type Status struct {
	Status string `json:"status"`
}

// OK is the answer of actions that return nothing else.
type OK struct {
	OK bool `json:"ok"`
}

// IdentitySecret is the answer of GET /shops/{id}/identity-secret.
type IdentitySecret struct {
	IdentitySecret string `json:"identity_secret"`
}

// CannedReply is a shop's canned reply (GET /shops/{id}/canned).
type CannedReply struct {
	ID       int64  `json:"id"`
	Shortcut string `json:"shortcut"`
	Text     string `json:"text"`
}

// CannedInput is the body of POST and PATCH /shops/{id}/canned…; absent
// fields are left unchanged by PATCH.
type CannedInput struct {
	Shortcut *string `json:"shortcut"`
	Text     *string `json:"text"`
}

// PageContext is the page a customer writes from: the body of
// PUT /shops/{id}/context, and part of the customer panel.
type PageContext struct {
	URL       string `json:"url"`
	Title     string `json:"title,omitempty"`
	UpdatedAt int64  `json:"updated_at,omitempty"`
}

// Customer is the answer of GET /shops/{id}/customers/{uid}: what a shop's
// staff see of a customer. Sessions are newest first.
type Customer struct {
	UID          int64        `json:"uid"`
	Username     string       `json:"username"`
	Name         string       `json:"name"`
	FirstContact int64        `json:"first_contact"`
	Sessions     []CSSession  `json:"sessions"`
	Page         *PageContext `json:"page"`
}
