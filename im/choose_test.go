package im

import "testing"

func TestChooseAgent(t *testing.T) {
	const customer = 100
	// Agents 1–4 of the shop: their away/online choice, open tickets and
	// when they were last assigned one.
	agents := []Agent{
		{UID: 1, Status: StatusOnline, OpenTickets: 3, LastAssignedAt: 10},
		{UID: 2, Status: StatusOnline, OpenTickets: 1, LastAssignedAt: 50},
		{UID: 3, Status: StatusOnline, OpenTickets: 1, LastAssignedAt: 20},
		{UID: 4, Status: StatusAway, OpenTickets: 0, LastAssignedAt: 0},
	}
	all := []int64{1, 2, 3, 4}
	tt := []struct {
		desc      string
		agents    []Agent
		current   int64
		last      int64
		reachable []int64
		want      int64
	}{
		{desc: "rule 1: the ticket's agent, though busier", agents: agents, current: 1, last: 2, reachable: all, want: 1},
		{desc: "rule 1 skipped: the ticket's agent is offline", agents: agents, current: 1, last: 2, reachable: []int64{2, 3}, want: 2},
		{desc: "rule 1 skipped: the ticket's agent is away", agents: agents, current: 4, reachable: all, want: 3},
		{desc: "rule 1 skipped: the ticket's agent is no longer an agent", agents: agents, current: 9, reachable: []int64{1, 2, 3, 9}, want: 3},
		{desc: "rule 2: the customer's last agent", agents: agents, last: 1, reachable: all, want: 1},
		{desc: "rule 2 skipped: the last agent is away", agents: agents, last: 4, reachable: all, want: 3},
		{desc: "rule 2 skipped: the last agent is offline", agents: agents, last: 1, reachable: []int64{2, 3}, want: 3},
		{desc: "rule 3: fewest open tickets, tie to the least recently assigned", agents: agents, reachable: all, want: 3},
		{desc: "rule 3: fewest open tickets wins over assigned long ago", agents: agents, reachable: []int64{1, 2}, want: 2},
		{desc: "rule 3: an away agent with no tickets is not chosen", agents: agents, reachable: []int64{4, 1}, want: 1},
		{desc: "rule 3: full tie goes to the lowest uid", agents: []Agent{
			{UID: 8, Status: StatusOnline, OpenTickets: 2, LastAssignedAt: 5},
			{UID: 7, Status: StatusOnline, OpenTickets: 2, LastAssignedAt: 5},
		}, reachable: []int64{7, 8}, want: 7},
		{desc: "rule 4: nobody reachable", agents: agents, current: 1, last: 2, want: 0},
		{desc: "rule 4: nobody but an away agent", agents: agents, reachable: []int64{4}, want: 0},
		{desc: "rule 4: no agents", reachable: all, want: 0},
		{desc: "an agent is never given its own ticket as a customer", agents: []Agent{
			{UID: customer, Status: StatusOnline},
			{UID: 5, Status: StatusOnline, OpenTickets: 9},
		}, current: customer, last: customer, reachable: []int64{customer, 5}, want: 5},
		{desc: "the agent's own ticket, and nobody else", agents: []Agent{{UID: customer, Status: StatusOnline}}, reachable: []int64{customer}, want: 0},
	}
	for _, tc := range tt {
		t.Run(tc.desc, func(t *testing.T) {
			reachable := map[int64]bool{}
			for _, uid := range tc.reachable {
				reachable[uid] = true
			}
			available := func(a Agent) bool { return a.Status != StatusAway && reachable[a.UID] }
			if got := chooseAgent(tc.agents, tc.current, tc.last, customer, available); got != tc.want {
				t.Fatalf("chooseAgent = %d, want %d", got, tc.want)
			}
		})
	}
}
