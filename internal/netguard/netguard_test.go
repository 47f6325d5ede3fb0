package netguard

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imserver/imserver/internal/throttle"
)

func TestMain(m *testing.M) {
	if os.Getenv("NETGUARD_TEST_CHILD") == "1" {
		child()
		return
	}
	os.Exit(m.Run())
}

// server accepts from l, greets every connection with "ok" and holds it
// until the test ends.
type server struct {
	l     *Listener
	mu    sync.Mutex
	conns []net.Conn
}

func serve(t *testing.T, o Options) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &server{l: Wrap(ln, o)}
	go func() {
		for {
			c, err := s.l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			c.Write([]byte("ok"))
		}
	}()
	t.Cleanup(func() {
		s.l.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.conns {
			c.Close()
		}
	})
	return s
}

// conn returns the i-th accepted connection.
func (s *server) conn(t *testing.T, i int) net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i >= len(s.conns) {
		t.Fatalf("only %d connections accepted", len(s.conns))
	}
	return s.conns[i]
}

// dial connects from the loopback address from and reports whether the
// server took the connection ("ok") or closed it at once (EOF).
func dial(t *testing.T, from, to string) (net.Conn, bool) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", to)
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 2)
	_, err = io.ReadFull(c, b)
	switch {
	case err == nil && string(b) == "ok":
		return c, true
	case err != nil && !isTimeout(err):
		return c, false
	}
	t.Fatalf("the connection from %s was neither served nor closed: %q %v", from, b, err)
	return nil, false
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func TestPendingPerIP(t *testing.T) {
	s := serve(t, Options{PendingPerIP: 3})
	addr := s.l.Addr().String()
	for i := range 3 {
		if _, ok := dial(t, "127.0.0.2", addr); !ok {
			t.Fatalf("connection %d from 127.0.0.2 refused", i)
		}
	}
	if _, ok := dial(t, "127.0.0.2", addr); ok {
		t.Fatal("a 4th pending connection from 127.0.0.2 was accepted")
	}
	if _, ok := dial(t, "127.0.0.3", addr); !ok {
		t.Fatal("another address is refused")
	}
	// Admitting one frees a slot; so does closing one.
	s.conn(t, 0).(*Conn).Admit()
	if _, ok := dial(t, "127.0.0.2", addr); !ok {
		t.Fatal("refused after one was admitted")
	}
	s.conn(t, 1).Close()
	if _, ok := dial(t, "127.0.0.2", addr); !ok {
		t.Fatal("refused after one was closed")
	}
	if got := s.l.Pending(throttle.AddrOf("127.0.0.2:1")); got != 3 {
		t.Fatalf("Pending = %d, want 3", got)
	}
}

func TestPendingExempt(t *testing.T) {
	proxies, _ := throttle.ParseProxies("127.0.0.2")
	s := serve(t, Options{PendingPerIP: 1, Exempt: proxies})
	for i := range 3 {
		if _, ok := dial(t, "127.0.0.2", s.l.Addr().String()); !ok {
			t.Fatalf("connection %d from the trusted proxy refused", i)
		}
	}
}

func TestRate(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := serve(t, Options{Rate: 2, Now: clock})
	addr := s.l.Addr().String()
	accepted := 0
	for range 5 {
		if _, ok := dial(t, "127.0.0.1", addr); ok {
			accepted++
		}
	}
	if accepted != 2 {
		t.Fatalf("%d of 5 accepted in one instant at 2/s, want 2", accepted)
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if _, ok := dial(t, "127.0.0.1", addr); !ok {
		t.Fatal("refused a second later")
	}
}

// With the process out of file descriptors, a new connection is closed at
// once (not left waiting in the backlog), the accept loop does not spin,
// and connections are served again once descriptors are free. The server
// runs in a child process with a limit of 64 descriptors.
func TestOutOfDescriptors(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "NETGUARD_TEST_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	addr = strings.TrimSpace(addr)

	var held []net.Conn
	shed := false
	for i := 0; i < 200 && !shed; i++ {
		c, ok := dial(t, "127.0.0.2", addr)
		if ok {
			held = append(held, c)
		} else {
			shed = true
		}
	}
	if !shed {
		t.Fatalf("%d connections held and the child never ran out of descriptors", len(held))
	}
	t.Logf("out of descriptors after %d connections", len(held))
	for range 3 {
		if _, ok := dial(t, "127.0.0.3", addr); ok {
			t.Fatal("served while out of descriptors?")
		}
	}
	before := cpuTicks(t, cmd.Process.Pid)
	time.Sleep(time.Second)
	if used := cpuTicks(t, cmd.Process.Pid) - before; used > 50 {
		t.Fatalf("the child used %d/100 s of CPU in 1 s while out of descriptors: the accept loop spins", used)
	}
	for _, c := range held {
		c.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := dial(t, "127.0.0.1", addr); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not serving again 10 s after descriptors were freed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// child serves with a limit of 64 descriptors, printing its address; each
// connection is greeted and held until the peer closes it.
func child() {
	lim := syscall.Rlimit{Cur: 64, Max: 64}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintln(os.Stderr, "setrlimit:", err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	l := Wrap(ln, Options{Name: "child"})
	fmt.Println(ln.Addr().String())
	for {
		c, err := l.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "accept:", err)
			os.Exit(3)
		}
		go func() {
			c.Write([]byte("ok"))
			io.Copy(io.Discard, c)
			c.Close()
		}()
	}
}

func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

func TestRatePerIP(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := serve(t, Options{Rate: 3, RatePerIP: 2, Now: func() time.Time { return now }})
	addr := s.l.Addr().String()
	got := ""
	for _, ip := range []string{"127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		if _, ok := dial(t, ip, addr); ok {
			got += "+"
		} else {
			got += "-"
		}
	}
	// .2 gets its 2; its third, refused by its own rate, takes nothing from
	// the listener's 3, which go to .2, .2 and .3; .4 finds none left.
	if got != "++-+-" {
		t.Fatalf("accepted %s, want ++-+-", got)
	}
}
