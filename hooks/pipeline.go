package hooks

import (
	"bytes"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// A connection's publishes are pipelined: mochi hands each one to
// OnPublish on the connection's read goroutine, which queues it for
// storage and goes back to reading at once; the PUBACK is written when
// the message's group commits. MQTT wants a connection's PUBACKs (and
// PUBRECs) in the order its PUBLISHes came, so each connection has a
// pipeline: the acknowledgements it is owed, in arrival order, and a
// goroutine that writes those at its head as soon as they are known, all
// ready ones in one write. At most maxInflight publishes of a connection
// are in its pipeline; past that its read goroutine waits, which stops
// reading the connection: a fast publisher is slowed down to what the
// store takes, and nothing it was not acknowledged is lost.

// pipeline is one connection's publishes in flight.
type pipeline struct {
	cl    *mqtt.Client
	slots chan struct{} // one per publish in flight: a full channel stops the reader
	wake  chan struct{} // the head may be writable
	quit  chan struct{} // closed when the connection is gone: write nothing more
	done  chan struct{} // closed when the writer has finished

	mu      sync.Mutex
	queue   []*owed
	closing bool // no more publishes: the writer ends once queue is empty
}

// owed is what a publish is owed once its result is known: ack, the bytes
// of its PUBACK or PUBREC (none for QoS 0), or a packet to write with
// mochi's encoder (a refusal with a reason), or stop, closing the
// connection without an ack.
type owed struct {
	ready  bool
	ack    []byte
	packet *packets.Packet
	stop   bool
	idle   chan struct{} // closed when written: waitIdle's marker
	wg     *sync.WaitGroup
}

// pipelines is the hook's pipelines, by client.
type pipelines struct {
	max     int
	writers *sync.WaitGroup // every writer goroutine

	mu sync.Mutex
	by map[*mqtt.Client]*pipeline
}

func newPipelines(max int, writers *sync.WaitGroup) *pipelines {
	return &pipelines{max: max, writers: writers, by: make(map[*mqtt.Client]*pipeline)}
}

// get returns cl's pipeline, starting it on cl's first publish.
func (ps *pipelines) get(cl *mqtt.Client) *pipeline {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p := ps.by[cl]
	if p == nil {
		p = &pipeline{cl: cl, slots: make(chan struct{}, ps.max), wake: make(chan struct{}, 1),
			quit: make(chan struct{}), done: make(chan struct{})}
		ps.by[cl] = p
		ps.writers.Add(1)
		go func() {
			defer ps.writers.Done()
			p.write()
			ps.mu.Lock()
			if ps.by[cl] == p {
				delete(ps.by, cl)
			}
			ps.mu.Unlock()
		}()
	}
	return p
}

// end tells cl's pipeline, if any, that its connection is gone: the
// publishes in flight are still stored, but nothing more is written.
func (ps *pipelines) end(cl *mqtt.Client) {
	ps.mu.Lock()
	p := ps.by[cl]
	delete(ps.by, cl)
	ps.mu.Unlock()
	if p != nil {
		p.mu.Lock()
		if !p.closing {
			p.closing = true
			close(p.quit)
		}
		p.mu.Unlock()
		p.signal()
	}
}

// push appends a publish to the pipeline, once there is a slot for it; it
// waits for one (the reader stops) while maxInflight are in flight. ok is
// false if the connection went away meanwhile. wg counts the publish
// until its answer is written.
func (p *pipeline) push(wg *sync.WaitGroup) (*owed, bool) {
	select {
	case p.slots <- struct{}{}:
	case <-p.quit:
		return nil, false
	}
	o := &owed{wg: wg}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		<-p.slots
		return nil, false
	}
	wg.Add(1)
	p.queue = append(p.queue, o)
	return o, true
}

// settle records what o is owed and wakes the writer. It never blocks: it
// runs on the store's pipeline.
func (p *pipeline) settle(o *owed, ack []byte, packet *packets.Packet, stop bool) {
	p.mu.Lock()
	o.ready, o.ack, o.packet, o.stop = true, ack, packet, stop
	p.mu.Unlock()
	p.signal()
}

func (p *pipeline) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// waitIdle waits until everything pushed so far is written, or the
// connection is gone.
func (p *pipeline) waitIdle(wg *sync.WaitGroup) {
	o, ok := p.push(wg)
	if !ok {
		return
	}
	o.idle = make(chan struct{})
	p.settle(o, nil, nil, false)
	select {
	case <-o.idle:
	case <-p.quit:
	}
}

// write is the pipeline's writer: it writes the acknowledgements at the
// head of the queue as they become ready, in order, coalesced into one
// write, until the connection is gone and nothing is in flight.
func (p *pipeline) write() {
	defer close(p.done)
	var buf bytes.Buffer
	stopped := false // the connection was closed for a failure: write nothing more
	for {
		<-p.wake
		p.mu.Lock()
		n := 0
		for n < len(p.queue) && p.queue[n].ready {
			n++
		}
		batch := append([]*owed(nil), p.queue[:n]...)
		p.queue = p.queue[n:]
		finished := p.closing && len(p.queue) == 0
		p.mu.Unlock()

		for _, o := range batch {
			switch {
			case stopped || p.cl.Closed():
			case o.stop:
				p.flush(&buf)
				p.cl.Stop(packets.ErrServerUnavailable)
				stopped = true
			case o.packet != nil:
				p.flush(&buf)
				_ = p.cl.WritePacket(*o.packet)
			default:
				buf.Write(o.ack)
			}
		}
		p.flush(&buf)
		for _, o := range batch {
			if o.idle != nil {
				close(o.idle)
			}
			<-p.slots
			o.wg.Done()
		}
		if finished {
			return
		}
	}
}

// flush writes what buf holds to the connection, under the client's lock
// (mochi's writes take it too), and empties buf.
func (p *pipeline) flush(buf *bytes.Buffer) {
	if buf.Len() == 0 {
		return
	}
	if !p.cl.Closed() && p.cl.Net.Conn != nil {
		p.cl.Lock()
		_, err := p.cl.Net.Conn.Write(buf.Bytes())
		p.cl.Unlock()
		if err != nil {
			p.cl.Stop(err)
		}
	}
	buf.Reset()
}

// pubAck is the encoding of a successful PUBACK for packet id (3.1.1 and
// 5 alike: MQTT 5 omits the reason code 0 and empty properties).
func pubAck(id uint16) []byte {
	return []byte{packets.Puback << 4, 2, byte(id >> 8), byte(id)}
}
