package knowledge

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func testScenarios() []ScenarioProfile {
	return []ScenarioProfile{
		{Name: "search", Description: "results for typed queries", Rows: 1000, Users: 100, Items: 50, PositiveRate: 0.125,
			SharedUsers: map[string]float64{"feed": 0.4}, TopCategories: []string{"games", "music"}},
		{Name: "feed", Rows: 2000, Users: 150, Items: 80, PositiveRate: 0.05},
	}
}

func TestRenderScenarioPrompts(t *testing.T) {
	tpl, err := LoadTemplates("", "")
	require.NoError(t, err)
	ps, err := tpl.RenderScenarioPrompts(testScenarios())
	require.NoError(t, err)
	if len(ps) != 2 || ps[0].Key != "scenario:search" || ps[1].Key != "scenario:feed" {
		t.Fatalf("keys = %+v", ps)
	}
	for _, want := range []string{
		`in 2 scenarios: search, feed.`,
		`the scenario "search".`,
		"Description: results for typed queries",
		"1000 logged interactions by 100 users on 50 items; 12.5% of the interactions are positive",
		"Most frequent item categories: games, music.",
		`40.0% of its users are also active in "feed".`,
		"commonalities with and differences from the other scenarios",
	} {
		if !strings.Contains(ps[0].Text, want) {
			t.Errorf("scenario prompt lacks %q:\n%s", want, ps[0].Text)
		}
	}
	if strings.Contains(ps[1].Text, "Description:") || strings.Contains(ps[1].Text, "categories") {
		t.Errorf("feed prompt shows absent fields:\n%s", ps[1].Text)
	}
	if !strings.Contains(ps[1].Text, `0.0% of its users are also active in "search"`) {
		t.Errorf("feed prompt lacks the zero overlap:\n%s", ps[1].Text)
	}
	if ps[0].Facts != "search. results for typed queries. games, music" {
		t.Errorf("facts = %q", ps[0].Facts)
	}
}

func TestRenderUserPromptsCapsPerScenario(t *testing.T) {
	tpl, _ := LoadTemplates("", "")
	u := UserProfile{ID: "42", Text: "likes jazz", ByScenario: []ScenarioInteractions{
		{Scenario: "search", Items: []Interaction{
			{ID: "1", Text: "old song", Clicked: true}, {ID: "2", Text: "jazz piano", Category: "music", Clicked: true}, {ID: "3", Category: "games"},
		}},
		{Scenario: "feed", Items: []Interaction{{ID: "9", Text: "cat video"}}},
	}}
	tests := []struct {
		max        int
		want, miss []string
		facts      string
	}{
		{2, []string{
			"About the user: likes jazz",
			`In scenario "search" (the 2 most recent of 3 interactions):`,
			"- jazz piano [music] (clicked)",
			"- item 3 [games] (not clicked)",
			`In scenario "feed":`,
			"- cat video (not clicked)",
		}, []string{"old song"}, "likes jazz"},
		{0, []string{`In scenario "search":`, "- old song (clicked)"}, []string{"most recent"}, "likes jazz"},
	}
	for _, tc := range tests {
		ps, err := tpl.RenderUserPrompts([]UserProfile{u}, tc.max)
		require.NoError(t, err)
		if ps[0].Key != "user:42" || ps[0].Facts != tc.facts {
			t.Errorf("max %d: key %q facts %q, want facts %q", tc.max, ps[0].Key, ps[0].Facts, tc.facts)
		}
		for _, w := range tc.want {
			if !strings.Contains(ps[0].Text, w) {
				t.Errorf("max %d: prompt lacks %q:\n%s", tc.max, w, ps[0].Text)
			}
		}
		for _, m := range tc.miss {
			if strings.Contains(ps[0].Text, m) {
				t.Errorf("max %d: prompt has %q:\n%s", tc.max, m, ps[0].Text)
			}
		}
	}
}

func TestLoadTemplatesOverrideAndErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
		return p
	}
	custom := write("s.tmpl", "Scenario {{.Name}} has {{.Users}} users.")
	tpl, err := LoadTemplates(custom, "")
	require.NoError(t, err)
	ps, err := tpl.RenderScenarioPrompts(testScenarios()[:1])
	if err != nil || ps[0].Text != "Scenario search has 100 users." {
		t.Fatalf("custom render = %q, %v", ps[0].Text, err)
	}
	def, _ := LoadTemplates("", "")
	if tpl.Hash() == def.Hash() {
		t.Error("custom and default templates have the same hash")
	}
	if again, _ := LoadTemplates("", ""); again.Hash() != def.Hash() {
		t.Error("hash is not stable")
	}

	broken := write("broken.tmpl", "line one\n{{.Name}\n")
	if _, err := LoadTemplates(broken, ""); err == nil || !strings.Contains(err.Error(), broken+":2:") {
		t.Errorf("parse error = %v, want file:line", err)
	}
	unknown := write("unknown.tmpl", "ok\n\n{{.Nope}}")
	tpl, err = LoadTemplates("", unknown)
	require.NoError(t, err)
	_, err = tpl.RenderUserPrompts([]UserProfile{{ID: "7"}}, 0)
	if err == nil || !strings.Contains(err.Error(), `user "7"`) || !strings.Contains(err.Error(), unknown+":3:") {
		t.Errorf("execution error = %v, want user, file and line", err)
	}
	if _, err := LoadTemplates(filepath.Join(dir, "missing.tmpl"), ""); err == nil || !strings.Contains(err.Error(), "missing.tmpl") {
		t.Errorf("missing file error = %v", err)
	}
}

func TestWritePromptsJSONL(t *testing.T) {
	in := []Prompt{{Key: "scenario:a", Text: "x <b> & \"q\"\nline", Facts: "a"}, {Key: "user:1", Text: "y"}}
	var buf bytes.Buffer
	require.NoError(t, WritePromptsJSONL(&buf, in))
	sc := bufio.NewScanner(&buf)
	var got []Prompt
	for sc.Scan() {
		var p Prompt
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, p)
	}
	if len(got) != 2 || got[0] != in[0] || got[1] != in[1] {
		t.Errorf("round trip = %+v", got)
	}
}

// Without a description, the facts summarise clicks by category (else
// title), never by item id, so a user's vector cannot name training items.
func TestUserFactsWithoutDescription(t *testing.T) {
	tpl, _ := LoadTemplates("", "")
	u := UserProfile{ID: "7", ByScenario: []ScenarioInteractions{
		{Scenario: "search", Items: []Interaction{
			{ID: "1", Text: "old song", Clicked: true}, {ID: "2", Text: "jazz piano", Category: "music", Clicked: true}, {ID: "3", Category: "games"},
		}},
		{Scenario: "feed", Items: []Interaction{{ID: "9", Clicked: true}}},
	}}
	ps, err := tpl.RenderUserPrompts([]UserProfile{u}, 0)
	require.NoError(t, err)
	if want := "search: old song, music. feed"; ps[0].Facts != want {
		t.Errorf("facts %q, want %q", ps[0].Facts, want)
	}
}
