package im

import (
	"hash/maphash"
	"sync"
)

// convLocks serialises, within this process, the work on one conversation
// from the start of its database transaction to the end of its deliveries.
// The database already serialises the transactions (the conversation row
// lock); holding this lock across the deliveries too means subscribers get
// a conversation's messages in seq order. Conversations share a fixed set
// of stripes; one caller holds at most one stripe at a time, so stripes
// cannot deadlock. Lock order everywhere: stripe, then database locks
// (shop row, session row, conversation row).
type convLocks struct {
	seed    maphash.Seed
	stripes [512]sync.Mutex
}

func newConvLocks() *convLocks { return &convLocks{seed: maphash.MakeSeed()} }

// lock locks conv's stripe and returns its unlock.
func (l *convLocks) lock(conv string) func() {
	m := &l.stripes[maphash.String(l.seed, conv)%uint64(len(l.stripes))]
	m.Lock()
	return m.Unlock
}
