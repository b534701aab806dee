package mysql

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/recording"
)

// TestRealResultCapture: a resource with record.results keeps the first
// rows of each result with the operation's outcome, masked for the trail
// even where the reader's role sees the value (the rule names only
// approvers), in the text protocol and the binary one (prepared).
func TestRealResultCapture(t *testing.T) {
	t.Parallel()
	res := realResource("my-capture", "wait", []config.MaskRule{{Columns: []string{"name"}, Strategy: "redact", Roles: []string{"approver"}}})
	res.Record.Results = 1
	re := newRealEnv(t, res)
	table := scratchTable(t, "cap")
	db := re.login(t, person("alice", "engineers"), "my-capture")
	var id int
	var name string
	if err := db.QueryRow("SELECT id, name FROM "+table+" ORDER BY id").Scan(&id, &name); err != nil || name != "ada" {
		t.Fatalf("text protocol: %q %v (alice is not an approver: she sees the name)", name, err)
	}
	if err := db.QueryRow("SELECT name FROM "+table+" WHERE id = ?", 2).Scan(&name); err != nil || name != "bob" {
		t.Fatalf("binary protocol: %q %v", name, err)
	}
	db.Close()

	type outcome struct {
		Results []recording.Result `json:"results"`
	}
	var kept []recording.Result
	waitFor(t, func() bool {
		kept = nil
		ws, _ := re.st.Writers(context.Background())
		for _, w := range ws {
			evs, _ := re.st.Events(context.Background(), w, 0, 0)
			for _, e := range evs {
				var o outcome
				if e.Type == recording.TypeOperationOutcome && json.Unmarshal(e.Data, &o) == nil && len(o.Results) > 0 {
					if strings.Contains(string(e.Data), "ada") || strings.Contains(string(e.Data), "bob") {
						t.Fatalf("the trail holds an unmasked name: %s", e.Data)
					}
					kept = append(kept, o.Results...)
				}
			}
		}
		return len(kept) == 2
	})
	text, bin := kept[0], kept[1]
	if strings.Join(text.Columns, ",") != "id,name" || len(text.Rows) != 1 || !text.Truncated ||
		*text.Rows[0][0] != "1" || *text.Rows[0][1] != "****" {
		t.Errorf("text protocol result kept: %+v", text)
	}
	if len(bin.Rows) != 1 || bin.Truncated || *bin.Rows[0][0] != "****" {
		t.Errorf("binary protocol result kept: %+v", bin)
	}
}
