package broker

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// WebSocket is a mochi listener that is also an http.Handler: mount it on
// the REST server (at /mqtt) and MQTT over WebSocket shares that port.
// mochi's own WebSocket listener runs its own http.Server and cannot.
//
// By default every Origin is accepted: clients authenticate with a token in
// the MQTT CONNECT, not with cookies, so a foreign page gains nothing by
// opening the socket. Options.AllowedOrigins narrows it to a list (see
// originChecker).
type WebSocket struct {
	id             string
	upgrader       websocket.Upgrader
	writeTimeout   time.Duration
	connectTimeout time.Duration
	readLimit      int64
	closeClients   func(id string) // the broker's; see Broker.closeListenerClients
	log            *slog.Logger

	mu        sync.RWMutex
	establish listeners.EstablishFn // set by Serve
	closed    bool
	done      chan struct{}
	serving   chan struct{} // closed once Serve has recorded establish
}

var _ listeners.Listener = (*WebSocket)(nil)
var _ http.Handler = (*WebSocket)(nil)

func newWebSocket(id string, writeTimeout, connectTimeout time.Duration, readLimit int64, origins []string) *WebSocket {
	ws := &WebSocket{id: id, writeTimeout: writeTimeout, connectTimeout: connectTimeout, readLimit: readLimit, done: make(chan struct{}), serving: make(chan struct{})}
	ws.upgrader = websocket.Upgrader{
		Subprotocols:    []string{"mqtt", "mqttv3.1"},
		ReadBufferSize:  wsReadBufferSize,
		WriteBufferSize: 2048,
		// A write buffer is only taken from the pool for the length of a
		// write: an idle client holds none.
		WriteBufferPool: new(sync.Pool),
		CheckOrigin:     originChecker(origins),
	}
	return ws
}

// originChecker returns the upgrader's Origin check: every origin when
// origins is empty or holds "*"; otherwise only the listed ones, compared
// as scheme://host[:port] with default ports dropped and case ignored.
// Requests without an Origin header (not from a browser) pass. The Host
// header is never trusted: it is whatever the client sent, so a page on
// evil.example that sends "Host: evil.example" would pass a same-origin
// check; list the server's own public origin instead (Options.PublicURL).
func originChecker(origins []string) func(*http.Request) bool {
	allowed := map[string]bool{}
	for _, o := range origins {
		if o = strings.TrimSpace(o); o == "*" {
			return func(*http.Request) bool { return true }
		} else if o != "" {
			allowed[normalizeOrigin(o)] = true
		}
	}
	if len(allowed) == 0 {
		return func(*http.Request) bool { return true }
	}
	return func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		if origin == "" {
			return true // not a browser
		}
		return allowed[normalizeOrigin(origin)]
	}
}

// normalizeOrigin returns scheme://host[:port] in lower case, without a
// default port (80 for http and ws, 443 for https and wss), or the input
// lower-cased if it is not such a URL ("null").
func normalizeOrigin(o string) string {
	o = strings.ToLower(strings.TrimSpace(o))
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return strings.TrimSuffix(o, "/")
	}
	host := u.Host
	if h, port, err := net.SplitHostPort(u.Host); err == nil {
		switch {
		case port == "80" && (u.Scheme == "http" || u.Scheme == "ws"), port == "443" && (u.Scheme == "https" || u.Scheme == "wss"):
			host = h
			if strings.Contains(h, ":") {
				host = "[" + h + "]"
			}
		}
	}
	return u.Scheme + "://" + host
}

// ID implements listeners.Listener.
func (l *WebSocket) ID() string { return l.id }

// Address implements listeners.Listener.
func (l *WebSocket) Address() string { return "/mqtt" }

// Protocol implements listeners.Listener.
func (l *WebSocket) Protocol() string { return "ws" }

// Init implements listeners.Listener.
func (l *WebSocket) Init(log *slog.Logger) error {
	l.log = log
	return nil
}

// Serve implements listeners.Listener: it records how to hand connections
// to the broker and blocks until Close.
func (l *WebSocket) Serve(establish listeners.EstablishFn) {
	l.mu.Lock()
	l.establish = establish
	l.mu.Unlock()
	close(l.serving)
	<-l.done
}

// Close implements listeners.Listener: new upgrades are refused and every
// client of this listener is closed. (http.Server.Shutdown does not wait
// for hijacked connections, so this is what ends them.)
func (l *WebSocket) Close(_ listeners.CloseFn) {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.done)
	}
	l.mu.Unlock()
	l.closeClients(l.id)
}

// wsReadBufferSize is each WebSocket client's frame read buffer, held for
// the life of the connection (mochi reads through its own buffer on top).
const wsReadBufferSize = 1024

// ServeHTTP upgrades the request to a WebSocket (subprotocol mqtt) and
// starts an MQTT session over it. As over TCP, the client must send a
// CONNECT of at most MaxConnectSize within the connect timeout, read here
// before mochi sees the connection, and until the broker answers it the
// HTTP connection stays pending for netguard. It returns once the session has started,
// without waiting for it to end: the connection belongs to the broker from
// then on, and the HTTP server's goroutine (whose stack the router grew)
// and its per-connection buffers are let go instead of being held for as
// long as the client stays connected.
func (l *WebSocket) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.RLock()
	establish, closed := l.establish, l.closed
	l.mu.RUnlock()
	if establish == nil || closed {
		http.Error(w, "MQTT over WebSocket is not available right now", http.StatusServiceUnavailable)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":{"code":"invalid_request","message":"this endpoint speaks MQTT over WebSocket (subprotocol mqtt)"}}`)
		return
	}
	c, err := l.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered with an HTTP error
	}
	c.SetReadLimit(l.readLimit)
	conn := &wsConn{Conn: c.UnderlyingConn(), ws: c}
	conn.w = &writeBehind{write: conn.writeFrame, close: c.Close, timeout: l.writeTimeout}
	go func() {
		defer conn.w.wait() // its writer, once the connection is closed
		defer conn.Close()
		mc, err := preauth(conn, c.UnderlyingConn(), l.connectTimeout)
		if err != nil {
			if l.log != nil {
				l.log.Debug("websocket closed before CONNECT", "error", err, "remote", conn.RemoteAddr())
			}
			return
		}
		if err := establish(l.id, mc); err != nil && l.log != nil && !errors.Is(err, io.EOF) {
			l.log.Debug("websocket client ended", "error", err)
		}
	}()
}

// wsConn carries MQTT packets in binary WebSocket frames, as a net.Conn.
// Deadlines: reads follow mochi's keepalive deadline, each write has its
// own writeTimeout (see deadlineConn).
type wsConn struct {
	net.Conn // the TCP connection: addresses, read deadlines, Close
	ws       *websocket.Conn
	w        *writeBehind
	r        io.Reader // the current frame being read, if any
}

// errTextFrame is returned for a text frame: MQTT travels in binary frames.
var errTextFrame = errors.New("websocket: MQTT must be sent in binary frames")

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			op, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if op != websocket.BinaryMessage {
				return 0, errTextFrame
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil // frame done; MQTT packets may span frames
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

// Write writes p behind (see writeBehind): a frame is written whole or not
// at all, so nothing goes to the socket from the caller.
func (c *wsConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// Close closes the connection once what waits is written (see
// writeBehind.Close).
func (c *wsConn) Close() error { return c.w.Close() }

// writeFrame writes p as one binary frame within timeout. gorilla resets
// the socket's write deadline to its own on every write, so the deadline
// is set on the websocket, not the TCP conn.
func (c *wsConn) writeFrame(p []byte, timeout time.Duration) (int, error) {
	_ = c.ws.SetWriteDeadline(time.Now().Add(timeout))
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// SetDeadline applies mochi's keepalive deadline to reads only.
func (c *wsConn) SetDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }

func (c *wsConn) SetReadDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }

func (c *wsConn) SetWriteDeadline(time.Time) error { return nil } // see Write
