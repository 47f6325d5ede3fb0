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
