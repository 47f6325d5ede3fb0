package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// rssBytes reads the resident set size of process pid from /proc.
func rssBytes(pid int) (int64, error) { return procStatus(pid, "VmRSS") }

// peakRSSBytes reads the largest resident set size process pid has had.
func peakRSSBytes(pid int) (int64, error) { return procStatus(pid, "VmHWM") }

// procStatus reads a size in kB from /proc/PID/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read %s of pid %d: %w", field, pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			fields := strings.Fields(rest)
			if len(fields) >= 1 {
				kb, err := strconv.ParseInt(fields[0], 10, 64)
				if err != nil {
					return 0, fmt.Errorf("%s of pid %d: %w", field, pid, err)
				}
				return kb * 1024, nil
			}
		}
	}
	return 0, fmt.Errorf("no %s for pid %d", field, pid)
}

// cpuTicks returns the user+system CPU time of pid in clock ticks (1/100 s
// on Linux), or -1 if it cannot be read.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return -1
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

// raiseFileLimit lifts RLIMIT_NOFILE to at least want (as far as the hard
// limit, or beyond it when running as root), and returns the soft limit
// now in force. Child processes inherit it.
func raiseFileLimit(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur >= want {
		return lim.Cur, nil
	}
	if lim.Max < want {
		raised := syscall.Rlimit{Cur: want, Max: want}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			return want, nil
		}
	}
	lim.Cur = min(want, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("setrlimit: %w", err)
	}
	return lim.Cur, nil
}

// isLoopback reports whether addr (host:port) is on the loopback network.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// perSourceAddr is how many connections the tool opens from one loopback
// source address: Linux gives each source address its own ephemeral port
// range (about 28,000 ports by default); staying well under it keeps the
// kernel's port search short.
const perSourceAddr = 5000

// ipBindAddressNoPort is Linux's IP_BIND_ADDRESS_NO_PORT: bind() to a
// source address leaves the port to connect(), which picks it by the whole
// 4-tuple. Without it every bind scans the address's used ports, and
// connecting slows to a crawl past ~15,000 connections.
const ipBindAddressNoPort = 24

// bindNoPort is a net.Dialer Control function setting
// IP_BIND_ADDRESS_NO_PORT; errors are ignored (other systems lack it).
func bindNoPort(_, _ string, c syscall.RawConn) error {
	return c.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	})
}

// sourceAddr returns the loopback source address of the i-th connection
// to a loopback server: 127.0.0.2 for the first 5,000, then 127.0.0.3, …
// Linux routes all of 127.0.0.0/8 to the loopback interface.
func sourceAddr(i int) *net.TCPAddr {
	n := 2 + i/perSourceAddr
	return &net.TCPAddr{IP: net.IPv4(127, byte(n>>16), byte(n>>8), byte(n))}
}

// writeCalls returns how many write system calls pid has made (syscw of
// /proc/PID/io), or -1 if it cannot be read.
func writeCalls(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}
