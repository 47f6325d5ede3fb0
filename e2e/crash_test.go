package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/imserver/imserver/internal/pgtest"
	"github.com/imserver/imserver/wire"
)

// The crash test (GitHub issue 11): the real binary, default settings but
// its listen addresses, takes QoS 1 chats from several MQTT 3.1.1 and 5
// clients sending as fast as their acks allow; it is killed with SIGKILL
// in the middle, restarted on the same database, and every message a
// client saw acknowledged must be in history exactly once, with every
// conversation's seqs contiguous from 1. Run it alone with
//
//	go test ./e2e -run Crash -v

// crashDevices is, per sending user, how many connections it sends from
// (alternately MQTT 3.1.1 and 5). The first user sends from enough of
// them to go over the default per-user rate (50/s, bursts of 100) within
// the load: what the server does then must lose nothing either.
var crashDevices = []int{6, 2}

const crashLoad = 4 * time.Second // of load before the kill

func TestCrashSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary under load for seconds")
	}
	db := "sqlite:" + filepath.Join(t.TempDir(), "data", "im.db")
	crashTest(t, db)
}

func TestCrashPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary under load for seconds")
	}
	crashTest(t, pgtest.URL(t))
}

// crashSender is one client's account and what it saw.
type crashSender struct {
	user, peer restUser
	v5         bool
	acked      map[string]string // cid -> conv, for every publish acknowledged as a success
	refused    map[byte]int      // MQTT 5 reason codes of refused publishes
	sent       int
	stopErr    string // why it stopped sending
}

type restUser struct {
	UID   int64
	Name  string
	Token string
}

func crashTest(t *testing.T, db string) {
	srv := startChild(t, childOptions{Args: []string{"--db", db}})
	room := int64(0)
	var senders []*crashSender
	for i, devices := range crashDevices {
		user := crashRegister(t, srv.URL, fmt.Sprintf("crash_s%d", i))
		if i == 0 {
			var r wire.Room
			crashDo(t, srv.URL, "POST", "/api/v1/rooms", user.Token, map[string]any{"name": "crash"}, http.StatusCreated, &r)
			room = r.RoomID
		} else {
			crashDo(t, srv.URL, "POST", fmt.Sprintf("/api/v1/rooms/%d/join", room), user.Token, nil, http.StatusOK, nil)
		}
		for d := range devices { // each connection chats with its own correspondent: conversations lock one at a time
			peer := crashRegister(t, srv.URL, fmt.Sprintf("crash_p%d_%d", i, d))
			senders = append(senders, &crashSender{user: user, peer: peer, v5: d%2 == 1, acked: map[string]string{}, refused: map[byte]int{}})
		}
	}

	// The load: each sender alternates between its single chat and the
	// shared room, one publish at a time, the next as soon as the ack comes.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			crashSend(srv.MQTTAddr, i, s, room, stop)
		}()
	}
	start := time.Now()
	time.Sleep(crashLoad)
	if err := srv.cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	waitGone(t, srv.cmd.Process.Pid)
	t.Logf("killed after %v of load; restarting", time.Since(start).Round(time.Millisecond))

	// The same database, a new process.
	srv2 := startChild(t, childOptions{Args: []string{"--db", db}})
	t.Logf("restarted in %v", time.Since(start).Round(time.Millisecond))
	convs := map[string]bool{fmt.Sprintf("r:%d", room): true}
	for _, s := range senders {
		convs[single(s.user.UID, s.peer.UID)] = true
	}
	stored := map[string]map[string]int{} // conv -> cid -> times
	for conv := range convs {
		token := senders[0].user.Token
		for _, s := range senders {
			if conv == single(s.user.UID, s.peer.UID) {
				token = s.user.Token
			}
		}
		envs := crashHistory(t, srv2.URL, token, conv)
		stored[conv] = map[string]int{}
		for i, e := range envs {
			if e.Seq != int64(i+1) {
				t.Errorf("%s: seqs are not contiguous from 1: position %d holds seq %d", conv, i+1, e.Seq)
				break
			}
		}
		for _, e := range envs {
			stored[conv][e.CID]++
		}
	}

	var acked, missing, dup, refused, storedTotal, storedUnacked int
	for _, conv := range stored {
		for _, n := range conv {
			storedTotal += n
		}
	}
	for i, s := range senders {
		proto := "3.1.1"
		if s.v5 {
			proto = "5"
		}
		var miss []string
		for cid, conv := range s.acked {
			switch n := stored[conv][cid]; {
			case n == 0:
				miss = append(miss, cid)
			case n > 1:
				dup++
				t.Errorf("connection %d (user %d, MQTT %s): %s stored %d times in %s", i, s.user.UID, proto, cid, n, conv)
			}
		}
		sort.Strings(miss)
		acked += len(s.acked)
		missing += len(miss)
		nRefused := 0
		var codes []string
		for code, n := range s.refused {
			nRefused += n
			codes = append(codes, fmt.Sprintf("%d×0x%02x", n, code))
		}
		refused += nRefused
		t.Logf("connection %d (user %d, MQTT %s): %d sent, %d acked, %d refused %v, %d acked but not in history; stopped: %s",
			i, s.user.UID, proto, s.sent, len(s.acked), nRefused, codes, len(miss), s.stopErr)
		if n := len(miss); n > 0 {
			if n > 10 {
				miss = append(miss[:10], "…")
			}
			t.Errorf("connection %d (user %d, MQTT %s): %d messages acknowledged but not stored: %s", i, s.user.UID, proto, n, strings.Join(miss, " "))
		}
	}
	for conv, cids := range stored {
		for cid := range cids {
			found := false
			for _, s := range senders {
				if _, ok := s.acked[cid]; ok {
					found = true
				}
			}
			if !found {
				storedUnacked++
				_ = conv
			}
		}
	}
	if refused > 0 {
		t.Errorf("%d MQTT 5 publishes were refused: over the per-user rate a publish must be delayed, never refused (PROTOCOL §9)", refused)
	}
	t.Logf("%s: %d acked, %d stored (%d of them never acked: in flight at the kill), %d acked but missing, %d stored twice, %d refused (MQTT 5 reason codes)",
		strings.SplitN(db, ":", 2)[0], acked, storedTotal, storedUnacked, missing, dup, refused)
	if acked == 0 {
		t.Errorf("no publish was acknowledged in %v of load", crashLoad)
	}
}

// crashSend publishes QoS 1 chats as s until stop or until the connection
// fails.
func crashSend(addr string, i int, s *crashSender, room int64, stop <-chan struct{}) {
	topics := []string{fmt.Sprintf("im/u/%d", s.peer.UID), fmt.Sprintf("im/r/%d", room)}
	convs := []string{single(s.user.UID, s.peer.UID), fmt.Sprintf("r:%d", room)}
	clientID := fmt.Sprintf("u%d-crash-%d", s.user.UID, i)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-stop; cancel() }()
	var publish func(topic string, payload []byte) (ok bool, code byte, err error)
	if s.v5 {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			s.stopErr = err.Error()
			return
		}
		c := paho5.NewClient(paho5.ClientConfig{Conn: conn})
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = c.Connect(cctx, &paho5.Connect{ClientID: clientID, KeepAlive: 30, CleanStart: true,
			Username: s.user.Name, UsernameFlag: true, Password: []byte(s.user.Token), PasswordFlag: true})
		ccancel()
		if err != nil {
			s.stopErr = "connect: " + err.Error()
			return
		}
		defer conn.Close()
		publish = func(topic string, payload []byte) (bool, byte, error) {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			pr, err := c.Publish(ctx, &paho5.Publish{Topic: topic, QoS: 1, Payload: payload})
			if pr != nil {
				return pr.ReasonCode < 0x80, pr.ReasonCode, nil
			}
			return false, 0, err
		}
	} else {
		c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(clientID).
			SetUsername(s.user.Name).SetPassword(s.user.Token).SetProtocolVersion(4).SetCleanSession(true).
			SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			s.stopErr = fmt.Sprintf("connect: %v", tok.Error())
			return
		}
		defer c.Disconnect(0)
		publish = func(topic string, payload []byte) (bool, byte, error) {
			tok := c.Publish(topic, 1, false, payload)
			select {
			case <-tok.Done():
			case <-ctx.Done():
				return false, 0, fmt.Errorf("no PUBACK before the test stopped sending")
			}
			return tok.Error() == nil, 0, tok.Error()
		}
	}
	for n := 0; ; n++ {
		select {
		case <-stop:
			if s.stopErr == "" {
				s.stopErr = "stopped"
			}
			return
		default:
		}
		cid := fmt.Sprintf("c%d-%d", i, n)
		k := 0
		if n%4 == 3 { // one in four to the shared room
			k = 1
		}
		payload, _ := json.Marshal(map[string]any{"cid": cid, "type": "text", "body": fmt.Sprintf("message %d of sender %d", n, i)})
		s.sent++
		ok, code, err := publish(topics[k], payload)
		switch {
		case ok:
			s.acked[cid] = convs[k]
		case err == nil:
			s.refused[code]++
		default:
			s.stopErr = err.Error()
			return
		}
	}
}

// waitGone waits until the killed process has been reaped.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(b), ") Z ") {
			return
		}
	}
	t.Fatalf("process %d still runs after SIGKILL", pid)
}

func crashRegister(t *testing.T, base, name string) restUser {
	t.Helper()
	crashDo(t, base, "POST", "/api/v1/auth/register", "", creds(name, "password1"), http.StatusCreated, nil)
	var tok wire.Token
	crashDo(t, base, "POST", "/api/v1/auth/login", "", creds(name, "password1"), http.StatusOK, &tok)
	return restUser{UID: tok.UID, Name: name, Token: tok.AccessToken}
}

func crashDo(t *testing.T, base, method, path, token string, body any, want int, out any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// crashHistory pages through a conversation's whole history.
func crashHistory(t *testing.T, base, token, conv string) []wire.Envelope {
	t.Helper()
	var all []wire.Envelope
	after := int64(0)
	for range 10000 {
		var page []wire.Envelope
		crashDo(t, base, "GET", fmt.Sprintf("/api/v1/conversations/%s/messages?after_seq=%d&limit=200", conv, after), token, nil, http.StatusOK, &page)
		all = append(all, page...)
		if len(page) < 200 {
			return all
		}
		after = page[len(page)-1].Seq
	}
	t.Fatalf("%s: more than 2,000,000 messages", conv)
	return nil
}
