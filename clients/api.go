package clients

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/imserver/imserver/wire"
)

// API calls the server's REST API (PROTOCOL.md §2). The zero value is not
// usable: make one with NewAPI. An API is safe for concurrent use; WithToken
// returns a copy that authenticates as another user.
type API struct {
	base  string // http://host:port, without /api/v1
	token string
	hc    *http.Client
}

// NewAPI returns an API for the server at baseURL (for example
// "http://127.0.0.1:8080"), unauthenticated. hc may be nil for
// http.DefaultClient.
func NewAPI(baseURL string, hc *http.Client) *API {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &API{base: strings.TrimRight(baseURL, "/"), hc: hc}
}

// WithToken returns a copy of a that sends token as its bearer token.
func (a *API) WithToken(token string) *API {
	c := *a
	c.token = token
	return &c
}

// BaseURL returns the server's URL.
func (a *API) BaseURL() string { return a.base }

// Token returns the access token a sends, or "".
func (a *API) Token() string { return a.token }

// Do sends a request to path under /api/v1 (for example "/me") with body
// encoded as JSON (nil for none) and decodes a 2xx answer into out (nil to
// discard it). A refusal is returned as an *Error.
func (a *API) Do(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+"/api/v1"+path, r)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e wire.ErrorResponse
		if json.Unmarshal(data, &e) != nil || e.Error.Code == "" {
			e.Error.Message = strings.TrimSpace(string(data))
			if e.Error.Message == "" {
				e.Error.Message = http.StatusText(resp.StatusCode)
			}
		}
		return &Error{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// Register creates an account. It returns an error matching ErrConflict if
// the username is taken.
func (a *API) Register(ctx context.Context, username, password string) (wire.Account, error) {
	var acc wire.Account
	err := a.Do(ctx, http.MethodPost, "/auth/register", wire.Credentials{Username: username, Password: password}, &acc)
	return acc, err
}

// Login checks a username and password and returns an access token, to use
// with WithToken and as Options.Token of Dial. Bad credentials return an
// error matching ErrUnauthorized.
func (a *API) Login(ctx context.Context, username, password string) (wire.Token, error) {
	var tok wire.Token
	err := a.Do(ctx, http.MethodPost, "/auth/login", wire.Credentials{Username: username, Password: password}, &tok)
	return tok, err
}

// Me returns the account of the token's user.
func (a *API) Me(ctx context.Context) (wire.Account, error) {
	var acc wire.Account
	err := a.Do(ctx, http.MethodGet, "/me", nil, &acc)
	return acc, err
}

// Agent statuses for SetStatus.
const (
	StatusOnline = "online"
	StatusAway   = "away"
)

// SetStatus sets the user's status, StatusOnline or StatusAway: an away
// agent gets no new customer-service sessions.
func (a *API) SetStatus(ctx context.Context, status string) error {
	return a.Do(ctx, http.MethodPut, "/me/status", map[string]string{"status": status}, nil)
}

// Conversations lists the user's conversations, newest activity first.
func (a *API) Conversations(ctx context.Context) ([]wire.Conversation, error) {
	var out []wire.Conversation
	err := a.Do(ctx, http.MethodGet, "/conversations", nil, &out)
	return out, err
}

// HistoryQuery selects a page of history. The zero value asks for the
// newest DefHistory messages.
type HistoryQuery struct {
	// After, when set, asks for the messages after AfterSeq (AfterSeq 0:
	// from the beginning).
	After    bool
	AfterSeq int64
	// BeforeSeq, when positive, asks only for messages before it.
	BeforeSeq int64
	// Limit is the page size: 0 for the server's default (50), at most 200.
	Limit int
}

// After returns the query for the page of up to limit messages after seq.
func After(seq int64, limit int) HistoryQuery {
	return HistoryQuery{After: true, AfterSeq: seq, Limit: limit}
}

// History returns a page of conv's messages, in ascending seq.
func (a *API) History(ctx context.Context, conv string, q HistoryQuery) ([]wire.Envelope, error) {
	v := url.Values{}
	if q.After {
		v.Set("after_seq", strconv.FormatInt(q.AfterSeq, 10))
	}
	if q.BeforeSeq > 0 {
		v.Set("before_seq", strconv.FormatInt(q.BeforeSeq, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "/conversations/" + url.PathEscape(conv) + "/messages"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out []wire.Envelope
	err := a.Do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// Post stores a message in conv over REST and returns its envelope. It has
// the same rules and effects as a send over MQTT.
func (a *API) Post(ctx context.Context, conv string, msg wire.Publish) (wire.Envelope, error) {
	var env wire.Envelope
	err := a.Do(ctx, http.MethodPost, "/conversations/"+url.PathEscape(conv)+"/messages", msg, &env)
	return env, err
}

// MarkRead raises the user's read position in conv to seq (clamped to the
// conversation's last seq; it never goes down).
func (a *API) MarkRead(ctx context.Context, conv string, seq int64) (wire.ReadState, error) {
	var st wire.ReadState
	err := a.Do(ctx, http.MethodPost, "/conversations/"+url.PathEscape(conv)+"/read", map[string]int64{"seq": seq}, &st)
	return st, err
}

// Broadcast sends a system broadcast (admins only) and returns its envelope.
func (a *API) Broadcast(ctx context.Context, text string) (wire.Envelope, error) {
	var env wire.Envelope
	err := a.Do(ctx, http.MethodPost, "/broadcasts", map[string]string{"text": text}, &env)
	return env, err
}
