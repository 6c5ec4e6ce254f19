package app

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Failed sign-ins are counted per client address; past the limit in a
// window, that address gets 429 until the window ends, whatever it sends.
// The admin token is long and random unless an operator chose a weak one;
// the throttle makes guessing a weak one slow.
const (
	signInFailures = 10
	signInWindow   = 5 * time.Minute
	// signInClients bounds the table: an attacker with many addresses
	// cannot grow it without limit. Past it, new addresses share one
	// entry, so a flood of them is throttled together.
	signInClients = 4096
)

// overflowClient is the shared entry of addresses past signInClients.
const overflowClient = "*"

type failures struct {
	count int
	start time.Time
}

// throttle counts failed sign-ins per client.
type throttle struct {
	mu      sync.Mutex
	max     int
	window  time.Duration
	clients int
	now     func() time.Time
	seen    map[string]*failures
}

func newThrottle() *throttle {
	return &throttle{max: signInFailures, window: signInWindow, clients: signInClients, now: time.Now,
		seen: map[string]*failures{}}
}

// blocked says how long client must wait; 0 when it may try.
func (t *throttle) blocked(client string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.entry(client, false)
	if f == nil || f.count < t.max {
		return 0
	}
	return f.start.Add(t.window).Sub(t.now())
}

// fail counts a failed attempt of client.
func (t *throttle) fail(client string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.entry(client, true).count++
}

// forget clears client's failures after a successful sign-in.
func (t *throttle) forget(client string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.seen, client)
}

// entry is client's current window, nil if it has none and !create.
// While the table overflows, clients not in it share the overflow entry.
func (t *throttle) entry(client string, create bool) *failures {
	now := t.now()
	live := func(c string) *failures {
		f := t.seen[c]
		if f != nil && now.Sub(f.start) >= t.window {
			delete(t.seen, c)
			return nil
		}
		return f
	}
	if f := live(client); f != nil {
		return f
	}
	if f := live(overflowClient); f != nil {
		return f
	}
	if !create {
		return nil
	}
	if len(t.seen) >= t.clients {
		for c := range t.seen {
			live(c)
		}
	}
	if len(t.seen) >= t.clients {
		client = overflowClient
	}
	f := &failures{start: now}
	t.seen[client] = f
	return f
}

// clientOf is the address a request is throttled by: its peer's IP, an
// IPv6 peer's /64 (one subscriber usually holds a whole /64). Behind a
// reverse proxy every client shares the proxy's address; the host does
// not trust forwarded headers, which anyone can set.
func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
