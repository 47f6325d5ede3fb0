package wire

// Shapes of REST request and response bodies (PROTOCOL.md §2).

// Credentials is the body of POST /auth/register and POST /auth/login.
type Credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// Account is a user as GET /me and POST /auth/register return it, and a
// row of GET /users. Name is a guest's or visitor's display name.
type Account struct {
	UID      int64  `json:"uid"`
	Username string `json:"username"`
	Name     string `json:"name,omitempty"`
	Role     string `json:"role,omitempty"`
}

// UserInfo is a row of an admin's GET /users?q=.
type UserInfo struct {
	UID       int64  `json:"uid"`
	Username  string `json:"username"`
	Name      string `json:"name,omitempty"`
	Role      string `json:"role"`
	Disabled  bool   `json:"disabled"`
	CreatedAt int64  `json:"created_at"`
}

// GuestRequest is the body of POST /auth/guest.
type GuestRequest struct {
	Name string `json:"name"`
}

// VisitorRequest is the body of POST /auth/visitor: hash is the lowercase
// hex HMAC-SHA256 of external_id with the shop's identity secret.
type VisitorRequest struct {
	ShopID     int64  `json:"shop_id"`
	ExternalID string `json:"external_id"`
	Name       string `json:"name"`
	Hash       string `json:"hash"`
}

// PasswordChange is the body of PUT /me/password.
type PasswordChange struct {
	OldPassword string `json:"old_password"`
	NewPassword string `json:"new_password"`
}

// Token is the answer of POST /auth/login.
type Token struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"` // "Bearer"
	ExpiresIn   int64  `json:"expires_in"` // seconds
	UID         int64  `json:"uid"`
	Username    string `json:"username"`
	Role        string `json:"role"`
}

// Conversation is one row of GET /conversations. PeerReadSeq is how far
// the other side has read: in a single chat the other user; in customer
// service, for the customer the furthest of the shop's agents, for staff
// the customer; 0 in rooms and sys.
type Conversation struct {
	Conv        string    `json:"conv"`
	Kind        string    `json:"kind"` // single, room, service, sys
	LastSeq     int64     `json:"last_seq"`
	ReadSeq     int64     `json:"read_seq"`
	Unread      int64     `json:"unread"`
	PeerReadSeq int64     `json:"peer_read_seq"`
	LastMessage *Envelope `json:"last_message"`
}

// ReadState is the answer of POST /conversations/{conv}/read.
type ReadState struct {
	Conv    string `json:"conv"`
	ReadSeq int64  `json:"read_seq"`
	LastSeq int64  `json:"last_seq"`
	Unread  int64  `json:"unread"`
}

// Upload is the answer of POST /uploads. URL is absolute and unguessable;
// Width and Height are set for images.
type Upload struct {
	URL         string `json:"url"`
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type"`
	Width       int    `json:"width,omitempty"`
	Height      int    `json:"height,omitempty"`
}
