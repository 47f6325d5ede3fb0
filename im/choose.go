package im

// chooseAgent applies the routing rules 1–3 of PROTOCOL.md §5 to a ticket
// of customer, among the shop's agents:
//
//  1. current, the ticket's agent (0 if it has none), if available;
//  2. last, the agent who last served the customer, if available;
//  3. the available agent with the fewest open tickets, ties going to the
//     one assigned least recently, then to the lowest uid.
//
// An agent is a candidate only if it is one of agents, is not the customer
// itself, and available says so. It returns 0 when nobody is (rule 4: the
// ticket is queued). It is pure: everything it decides on is passed in.
func chooseAgent(agents []Agent, current, last, customer int64, available func(Agent) bool) int64 {
	var cur, prev, best *Agent
	for i := range agents {
		a := &agents[i]
		if a.UID == customer || !available(*a) {
			continue
		}
		switch a.UID {
		case current:
			cur = a
		case last:
			prev = a
		}
		if best == nil || a.OpenTickets < best.OpenTickets ||
			a.OpenTickets == best.OpenTickets && (a.LastAssignedAt < best.LastAssignedAt ||
				a.LastAssignedAt == best.LastAssignedAt && a.UID < best.UID) {
			best = a
		}
	}
	for _, a := range []*Agent{cur, prev, best} {
		if a != nil {
			return a.UID
		}
	}
	return 0
}
