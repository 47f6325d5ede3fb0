package conformance

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"
)

// wait is how long the tests wait for something that should come at once
// on loopback; only an absence (a hang) costs this long.
const wait = 5 * time.Second

// command is one line to a library driver (see testdata/paho_client.py).
type command struct {
	Op       string         `json:"op"`
	Conn     string         `json:"conn"`
	ID       string         `json:"id,omitempty"`
	URL      string         `json:"url,omitempty"`
	Version  int            `json:"version,omitempty"`
	ClientID string         `json:"client_id,omitempty"`
	Username string         `json:"username,omitempty"`
	Password string         `json:"password,omitempty"`
	Props    map[string]int `json:"props,omitempty"`
	Topic    string         `json:"topic,omitempty"`
	Payload  []byte         `json:"payload,omitempty"` // base64 in JSON
	QoS      int            `json:"qos"`
}

// event is one thing a library reported.
type event struct {
	Ev      string         `json:"ev"`
	Conn    string         `json:"conn"`
	ID      string         `json:"id"`
	RC      *int           `json:"rc"`
	Codes   []int          `json:"codes"`
	Props   map[string]any `json:"props"`
	Topic   string         `json:"topic"`
	Payload []byte         `json:"payload"`
	Error   string         `json:"error"`
	Msg     string         `json:"msg"`
	Packet  bool           `json:"packet"` // a DISCONNECT packet (mqtt.js)
	Kind    string         `json:"kind"`   // "wire": the packet the library was handling
}

func (e event) rc() int {
	if e.RC == nil {
		return -1
	}
	return *e.RC
}

func (e event) String() string {
	s := e.Ev
	if e.RC != nil {
		s += fmt.Sprintf(" rc=0x%02x", *e.RC)
	}
	if e.Codes != nil {
		s += fmt.Sprintf(" codes=%v", e.Codes)
	}
	if e.Packet {
		s += " (packet)"
	}
	for _, f := range []struct{ k, v string }{{"kind", e.Kind}, {"topic", e.Topic}, {"error", e.Error}, {"msg", e.Msg}} {
		if f.v != "" {
			s += fmt.Sprintf(" %s=%q", f.k, f.v)
		}
	}
	if len(e.Payload) > 0 {
		p := string(e.Payload)
		if len(p) > 200 {
			p = p[:200] + "…"
		}
		s += " payload=" + p
	}
	return "{" + s + "}"
}

// driver talks to one library: a child process (Python, Node) or an
// in-process adapter (Paho Go). Answers carry the command's id; everything
// else goes to the connection's queue.
type driver struct {
	name string
	send func(command) error

	mu      sync.Mutex
	waiters map[string]chan event
	queues  map[string]chan event
	crashes []event // crashes not tied to a connection
	n       int
	log     []string // the last lines, for failure messages
}

func newDriver(name string) *driver {
	return &driver{name: name, waiters: map[string]chan event{}, queues: map[string]chan event{}}
}

func (d *driver) queue(conn string) chan event {
	d.mu.Lock()
	defer d.mu.Unlock()
	q, ok := d.queues[conn]
	if !ok {
		q = make(chan event, 4096)
		d.queues[conn] = q
	}
	return q
}

// deliver routes an event from the library.
func (d *driver) deliver(ev event) {
	d.mu.Lock()
	d.log = append(d.log, ev.String())
	if len(d.log) > 40 {
		d.log = d.log[len(d.log)-40:]
	}
	if ev.Ev == "crash" && ev.Conn == "" {
		d.crashes = append(d.crashes, ev)
	}
	if w, ok := d.waiters[ev.ID]; ok && ev.ID != "" {
		delete(d.waiters, ev.ID)
		d.mu.Unlock()
		w <- ev
		return
	}
	d.mu.Unlock()
	select {
	case d.queue(ev.Conn) <- ev:
	default: // a flood nobody reads
	}
}

// do sends c and waits up to timeout for its answer; ok is false when none
// came (the library hangs).
func (d *driver) do(t *testing.T, c command, timeout time.Duration) (event, bool) {
	t.Helper()
	d.mu.Lock()
	d.n++
	c.ID = strconv.Itoa(d.n)
	w := make(chan event, 1)
	d.waiters[c.ID] = w
	d.mu.Unlock()
	if err := d.send(c); err != nil {
		t.Fatalf("%s: send %s: %v", d.name, c.Op, err)
	}
	select {
	case ev := <-w:
		return ev, true
	case <-time.After(timeout):
		d.mu.Lock()
		delete(d.waiters, c.ID)
		d.mu.Unlock()
		return event{}, false
	}
}

// await returns the first queued event of conn that match accepts,
// discarding the others, or false after timeout.
func (d *driver) await(conn string, timeout time.Duration, match func(event) bool) (event, bool) {
	q := d.queue(conn)
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-q:
			if match(ev) {
				return ev, true
			}
		case <-deadline:
			return event{}, false
		}
	}
}

// drain returns what is queued for conn now, and what arrives within d.
func (d *driver) drain(conn string, within time.Duration) []event {
	q := d.queue(conn)
	var out []event
	deadline := time.After(within)
	for {
		select {
		case ev := <-q:
			out = append(out, ev)
		case <-deadline:
			return out
		}
	}
}

// crashed returns the crashes reported for conn or for no connection.
func (d *driver) crashed(evs []event) []string {
	var out []string
	for _, ev := range evs {
		if ev.Ev == "crash" {
			out = append(out, ev.Error)
		}
	}
	d.mu.Lock()
	for _, ev := range d.crashes {
		out = append(out, ev.Error)
	}
	d.crashes = nil
	d.mu.Unlock()
	return out
}

func (d *driver) recent() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.log, "\n")
}

// process starts a child that speaks the JSON-lines protocol.
func startProcess(t *testing.T, name string, cmd *exec.Cmd) *driver {
	t.Helper()
	d := newDriver(name)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	var stderrMu sync.Mutex
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		stderrMu.Lock()
		defer stderrMu.Unlock()
		if stderr.Len() < 1<<16 {
			stderr.Write(p)
		}
		return len(p), nil
	})
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var wmu sync.Mutex
	enc := json.NewEncoder(stdin)
	d.send = func(c command) error {
		wmu.Lock()
		defer wmu.Unlock()
		return enc.Encode(c)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<22)
		for sc.Scan() {
			var ev event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				d.deliver(event{Ev: "crash", Error: "unreadable output: " + sc.Text()})
				continue
			}
			d.deliver(ev)
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = cmd.Wait()
		stderrMu.Lock()
		defer stderrMu.Unlock()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("%s stderr:\n%s", name, stderr.String())
		}
	})
	return d
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// need reports a missing tool: a skip locally, a failure under CI.
func need(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip("SKIPPING: " + msg)
}

// pythonWithPaho finds a python3 that imports paho.mqtt (a pyenv shim on
// PATH may not see Debian's package, /usr/bin/python3 does).
func pythonWithPaho() (string, string, error) {
	var tried []string
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		out, err := exec.Command(path, "-c", "import paho.mqtt; print(paho.mqtt.__version__)").Output()
		if err == nil {
			return path, strings.TrimSpace(string(out)), nil
		}
		tried = append(tried, path)
	}
	return "", "", fmt.Errorf("no python3 with paho-mqtt (tried %v); Debian: apt-get install python3-paho-mqtt", tried)
}

func startPython(t *testing.T) *driver {
	t.Helper()
	py, version, err := pythonWithPaho()
	if err != nil {
		need(t, "%v", err)
	}
	t.Logf("Paho Python %s (%s)", version, py)
	return startProcess(t, "paho-python", exec.Command(py, "-u", filepath.Join("testdata", "paho_client.py")))
}

var (
	mqttjsOnce sync.Once
	mqttjsDir  string
	mqttjsErr  error
)

// mqttjs returns a directory whose node_modules holds the locked mqtt.js.
func mqttjs() (string, error) {
	mqttjsOnce.Do(func() {
		src, err := filepath.Abs(filepath.Join("testdata", "mqttjs"))
		if err != nil {
			mqttjsErr = err
			return
		}
		if _, err := os.Stat(filepath.Join(src, "node_modules", "mqtt", "package.json")); err == nil {
			mqttjsDir = src // .ci/run's npm ci
			return
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			mqttjsErr = fmt.Errorf("npm not found (Debian: apt-get install nodejs npm): %w", err)
			return
		}
		lock, err := os.ReadFile(filepath.Join(src, "package-lock.json"))
		if err != nil {
			mqttjsErr = err
			return
		}
		sum := sha256.Sum256(lock)
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("imserver-mqttjs-%d-%s", os.Getuid(), hex.EncodeToString(sum[:6])))
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "mqtt", "package.json")); err == nil {
			mqttjsDir = dir
			return
		}
		tmp, err := os.MkdirTemp(os.TempDir(), "imserver-mqttjs-tmp-")
		if err != nil {
			mqttjsErr = err
			return
		}
		defer os.RemoveAll(tmp)
		for _, f := range []string{"package.json", "package-lock.json"} {
			b, err := os.ReadFile(filepath.Join(src, f))
			if err == nil {
				err = os.WriteFile(filepath.Join(tmp, f), b, 0o644)
			}
			if err != nil {
				mqttjsErr = err
				return
			}
		}
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = tmp
		if out, err := cmd.CombinedOutput(); err != nil {
			mqttjsErr = fmt.Errorf("npm ci: %v\n%s", err, out)
			return
		}
		_ = os.RemoveAll(dir)
		if err := os.Rename(tmp, dir); err != nil {
			mqttjsErr = err
			return
		}
		mqttjsDir = dir
	})
	return mqttjsDir, mqttjsErr
}

func startNode(t *testing.T) *driver {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		need(t, "node not found (Debian: apt-get install nodejs npm)")
	}
	dir, err := mqttjs()
	if err != nil {
		need(t, "mqtt.js: %v", err)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "mqttjs", "client.js"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, script)
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"))
	return startProcess(t, "mqtt.js", cmd)
}

// startPahoGo returns a driver over Paho Go: eclipse/paho.mqtt.golang for
// 3.1.1 (TCP and WebSocket) and eclipse/paho.golang for 5 (TCP).
func startPahoGo(t *testing.T) *driver {
	d := newDriver("paho-go")
	var mu sync.Mutex
	v3 := map[string]paho.Client{}
	v5 := map[string]*paho5.Client{}
	closeConn := func(name string) {
		mu.Lock()
		c3, c5 := v3[name], v5[name]
		delete(v3, name)
		delete(v5, name)
		mu.Unlock()
		if c3 != nil {
			c3.Disconnect(0)
		}
		if c5 != nil {
			_ = c5.Disconnect(&paho5.Disconnect{})
		}
	}
	d.send = func(c command) error {
		go func() {
			ev := goCommand(d, c, &mu, v3, v5, closeConn)
			if ev.Ev != "" {
				ev.Conn, ev.ID = c.Conn, c.ID
				d.deliver(ev)
			}
		}()
		return nil
	}
	t.Cleanup(func() {
		mu.Lock()
		var names []string
		for n := range v3 {
			names = append(names, n)
		}
		for n := range v5 {
			names = append(names, n)
		}
		mu.Unlock()
		for _, n := range names {
			closeConn(n)
		}
	})
	return d
}

func intp(n int) *int { return &n }

// goCommand runs one command on Paho Go and returns its answer (Ev empty
// when the answer is delivered otherwise).
func goCommand(d *driver, c command, mu *sync.Mutex, v3 map[string]paho.Client, v5 map[string]*paho5.Client, closeConn func(string)) event {
	switch c.Op {
	case "connect":
		closeConn(c.Conn)
		if c.Version == 5 {
			return goConnect5(d, c, mu, v5)
		}
		return goConnect3(d, c, mu, v3)
	case "disconnect":
		closeConn(c.Conn)
		return event{Ev: "closed"}
	}
	mu.Lock()
	c3, c5 := v3[c.Conn], v5[c.Conn]
	mu.Unlock()
	switch {
	case c3 != nil && c.Op == "publish":
		tok := c3.Publish(c.Topic, byte(c.QoS), false, c.Payload)
		tok.Wait()
		if err := tok.Error(); err != nil { // Paho Go checks nothing before sending
			return event{Ev: "publish_error", Error: err.Error()}
		}
		return event{Ev: "puback", RC: intp(0)}
	case c3 != nil && c.Op == "subscribe":
		tok := c3.Subscribe(c.Topic, byte(c.QoS), nil)
		tok.Wait()
		if err := tok.Error(); err != nil {
			return event{Ev: "suback", Codes: []int{0x80}, Error: err.Error()}
		}
		var codes []int
		for _, code := range tok.(*paho.SubscribeToken).Result() {
			codes = append(codes, int(code))
		}
		return event{Ev: "suback", Codes: codes}
	case c5 != nil && c.Op == "publish":
		pr, err := c5.Publish(context.Background(), &paho5.Publish{Topic: c.Topic, QoS: byte(c.QoS), Payload: c.Payload})
		if pr != nil {
			return event{Ev: "puback", RC: intp(int(pr.ReasonCode))}
		}
		if err != nil {
			return event{Ev: "publish_error", Error: err.Error()}
		}
		return event{Ev: "puback", RC: intp(0)}
	case c5 != nil && c.Op == "subscribe":
		sa, err := c5.Subscribe(context.Background(), &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: c.Topic, QoS: byte(c.QoS)}}})
		if sa != nil {
			var codes []int
			for _, r := range sa.Reasons {
				codes = append(codes, int(r))
			}
			return event{Ev: "suback", Codes: codes}
		}
		return event{Ev: "refused_by_library", Error: fmt.Sprint(err)}
	}
	return event{Ev: "refused_by_library", Error: "no such connection"}
}

func goConnect3(d *driver, c command, mu *sync.Mutex, v3 map[string]paho.Client) event {
	broker := c.URL
	opts := paho.NewClientOptions().
		AddBroker(broker).
		SetClientID(c.ClientID).
		SetUsername(c.Username).
		SetPassword(c.Password).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(wait).
		SetKeepAlive(60 * time.Second).
		SetOrderMatters(false).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			d.deliver(event{Ev: "disconnect", Conn: c.Conn, Error: err.Error()})
		}).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			d.deliver(event{Ev: "message", Conn: c.Conn, Topic: m.Topic(), Payload: append([]byte(nil), m.Payload()...)})
		})
	cl := paho.NewClient(opts)
	tok := cl.Connect()
	tok.Wait()
	ct := tok.(*paho.ConnectToken)
	if err := tok.Error(); err != nil {
		if ct.ReturnCode() != 0 {
			return event{Ev: "connack", RC: intp(int(ct.ReturnCode())), Error: err.Error()}
		}
		return event{Ev: "connect_error", Error: err.Error()}
	}
	mu.Lock()
	v3[c.Conn] = cl
	mu.Unlock()
	return event{Ev: "connack", RC: intp(0)}
}

func goConnect5(d *driver, c command, mu *sync.Mutex, v5 map[string]*paho5.Client) event {
	u, err := url.Parse(c.URL)
	if err != nil || u.Scheme != "tcp" {
		return event{Ev: "connect_error", Error: "paho.golang is driven over TCP only here"}
	}
	conn, err := net.DialTimeout("tcp", u.Host, wait)
	if err != nil {
		return event{Ev: "connect_error", Error: err.Error()}
	}
	cl := paho5.NewClient(paho5.ClientConfig{
		Conn: conn,
		OnServerDisconnect: func(dc *paho5.Disconnect) {
			d.deliver(event{Ev: "disconnect", Conn: c.Conn, RC: intp(int(dc.ReasonCode)), Packet: true})
		},
		OnClientError: func(err error) {
			d.deliver(event{Ev: "log", Conn: c.Conn, Msg: err.Error()})
		},
		OnPublishReceived: []func(paho5.PublishReceived) (bool, error){func(pr paho5.PublishReceived) (bool, error) {
			d.deliver(event{Ev: "message", Conn: c.Conn, Topic: pr.Packet.Topic, Payload: append([]byte(nil), pr.Packet.Payload...)})
			return true, nil
		}},
	})
	cp := &paho5.Connect{ClientID: c.ClientID, KeepAlive: 60, CleanStart: true,
		Username: c.Username, UsernameFlag: true, Password: []byte(c.Password), PasswordFlag: true}
	if len(c.Props) > 0 {
		cp.Properties = &paho5.ConnectProperties{}
		if v, ok := c.Props["receive_maximum"]; ok {
			n := uint16(v)
			cp.Properties.ReceiveMaximum = &n
		}
		if v, ok := c.Props["maximum_packet_size"]; ok {
			n := uint32(v)
			cp.Properties.MaximumPacketSize = &n
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ca, err := cl.Connect(ctx, cp)
	if ca == nil {
		conn.Close()
		msg := "no CONNACK"
		if err != nil {
			msg = err.Error()
		}
		return event{Ev: "connect_error", Error: msg}
	}
	ev := event{Ev: "connack", RC: intp(int(ca.ReasonCode)), Props: map[string]any{}}
	if err != nil {
		ev.Error = err.Error()
	}
	if p := ca.Properties; p != nil {
		if p.MaximumPacketSize != nil {
			ev.Props["maximum_packet_size"] = float64(*p.MaximumPacketSize)
		}
		ev.Props["retain_available"] = float64(b2i(p.RetainAvailable))
		ev.Props["wildcard_subscription_available"] = float64(b2i(p.WildcardSubAvailable))
		ev.Props["shared_subscription_available"] = float64(b2i(p.SharedSubAvailable))
	}
	if ca.ReasonCode >= 0x80 {
		conn.Close()
		return ev
	}
	mu.Lock()
	v5[c.Conn] = cl
	mu.Unlock()
	return ev
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
