package main

import (
	"encoding/json"
	"os"
	"testing"
)

// The shared scenario file parses, its ids are unique, and this driver knows every op in it: a scenario
// added for one language cannot be silently skipped by this one.
func TestScenariosKnown(t *testing.T) {
	raw, err := os.ReadFile("../../../test/conformance/scenarios.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct{ Scenarios []scenario }
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Scenarios) < 30 {
		t.Fatalf("%d scenarios", len(file.Scenarios))
	}
	seen := map[string]bool{}
	for _, s := range file.Scenarios {
		id := s.str("id")
		if id == "" || seen[id] {
			t.Fatalf("missing or repeated id %q", id)
		}
		seen[id] = true
		if _, ok := ops[s.str("op")]; !ok {
			t.Errorf("%s: op %q unknown to the Go driver", id, s.str("op"))
		}
		if _, ok := s["expect"].(map[string]any); !ok {
			t.Errorf("%s: no expect object", id)
		}
	}
}
