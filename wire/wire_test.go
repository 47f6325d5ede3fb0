package wire

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// The JSON of the contract's shapes is fixed: clients are written against
// it. A change here must be a deliberate change of PROTOCOL.md.
func TestGolden(t *testing.T) {
	for name, v := range map[string]any{
		"envelope_single":     Envelope{ID: "m1", Conv: "u:1:2", Seq: 5, From: 1, To: 2, Type: TypeText, Body: json.RawMessage(`"hello"`), CID: "c-1", TS: 1732330000000},
		"envelope_room":       Envelope{ID: "m2", Conv: "r:7", Seq: 1, From: 3, Room: 7, Type: TypeImage, Body: json.RawMessage(`{"url":"https://x.test/a.png"}`), TS: 1732330000000},
		"envelope_auto":       Envelope{ID: "m3", Conv: "s:3:9", Seq: 2, From: 0, Shop: 3, Customer: 9, Agent: 4, Session: 11, Type: TypeText, Body: json.RawMessage(`"welcome"`), TS: 1732330000000, Auto: true},
		"event_error":         ErrorEvent{Event: EventError, CID: "c-1", Topic: "im/u/2", Code: CodeForbidden, Message: "no"},
		"event_read":          ReadEvent{Event: EventRead, Conv: "u:1:2", UID: 2, Seq: 5},
		"event_session":       SessionEvent{Event: EventCSAssigned, Session: 11, Shop: 3, Customer: 9, Agent: 4, Conv: "s:3:9"},
		"event_member":        RoomMemberEvent{Event: EventRoomMember, Room: 7, UID: 3, Action: ActionRemoved},
		"event_session_named": SessionEvent{Event: EventCSAssigned, Session: 11, Shop: 3, Customer: 9, Agent: 4, Conv: "s:3:9", CustomerName: "Vera", AgentName: "agent"},
		"event_presence":      PresenceEvent{Event: EventPresence, UID: 7, Online: true, Status: "online", LastSeen: 1732330000000},
		"event_typing":        TypingEvent{Event: EventTyping, Conv: "u:2:7", UID: 2},
		"event_cs_queue":      QueueEvent{Event: EventCSQueue, Session: 12, Shop: 1, Position: 2},
		"event_cs_queued":     QueuedEvent{Event: EventCSQueued, Session: 12, Shop: 1, Customer: 9, Conv: "s:1:9", CreatedAt: 1732330000000},
		"event_cs_dequeued":   DequeuedEvent{Event: EventCSDequeued, Session: 12, Shop: 1},
		"event_resync":        ResyncEvent{Event: EventResync, Conv: "u:1:2", AfterSeq: 40},
		"error_response":      ErrorResponse{Error: ErrorBody{Code: HTTPNotFound, Message: "no such room"}},
	} {
		t.Run(name, func(t *testing.T) { checkGolden(t, name, v) })
	}
}

// checkGolden compares v's indented JSON with testdata/name.golden.json,
// rewriting the file first with -update.
func checkGolden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./wire -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s changed:\n%s\nwant:\n%s", path, got, want)
	}
}
