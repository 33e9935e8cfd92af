package knowledge

import (
	"bufio"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/template"
)

//go:embed templates/*.tmpl
var defaultTemplates embed.FS

// Templates renders the scenario-level and user-level prompts.
type Templates struct {
	scenario, user       *template.Template
	scenarioSrc, userSrc string
}

// LoadTemplates parses the scenario and user templates from the given paths;
// an empty path selects the built-in default. Errors name the file and line.
func LoadTemplates(scenarioPath, userPath string) (*Templates, error) {
	var t Templates
	var err error
	if t.scenario, t.scenarioSrc, err = loadTemplate(scenarioPath, "templates/scenario.tmpl"); err != nil {
		return nil, err
	}
	if t.user, t.userSrc, err = loadTemplate(userPath, "templates/user.tmpl"); err != nil {
		return nil, err
	}
	return &t, nil
}

func loadTemplate(path, builtin string) (*template.Template, string, error) {
	name := path
	var src []byte
	var err error
	if path == "" {
		name = "builtin:" + builtin
		src, err = defaultTemplates.ReadFile(builtin)
	} else {
		src, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, "", fmt.Errorf("prompt template: %w", err)
	}
	// The template is named after its file, so parse and execution errors
	// read "template: FILE:LINE: ...".
	t, err := template.New(name).Option("missingkey=error").Funcs(templateFuncs).Parse(string(src))
	if err != nil {
		return nil, "", err
	}
	return t, string(src), nil
}

var templateFuncs = template.FuncMap{
	"join": strings.Join,
	"pct":  func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"item": itemLabel,
}

// itemLabel shows an item's text, else its id, with its category if known.
func itemLabel(it Interaction) string {
	label := it.Text
	if label == "" {
		label = "item " + it.ID
	}
	if it.Category != "" {
		label += " [" + it.Category + "]"
	}
	return label
}

// Hash identifies both templates; the store records it so vectors from
// different templates are never mixed.
func (t *Templates) Hash() string {
	h := sha256.New()
	for _, s := range []string{"scenario", t.scenarioSrc, "user", t.userSrc} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// scenarioView is the data the scenario template sees: the profile's fields
// plus the names of all scenarios and the user overlap with each other one.
type scenarioView struct {
	ScenarioProfile
	AllScenarios []string
	Others       []sharedView
}

type sharedView struct {
	Name     string
	Fraction float64
}

// RenderScenarioPrompts renders one prompt per scenario, keyed ScenarioKey(name).
func (t *Templates) RenderScenarioPrompts(profiles []ScenarioProfile) ([]Prompt, error) {
	names := make([]string, len(profiles))
	for i, p := range profiles {
		names[i] = p.Name
	}
	prompts := make([]Prompt, 0, len(profiles))
	for _, p := range profiles {
		v := scenarioView{ScenarioProfile: p, AllScenarios: names}
		for _, other := range names {
			if other != p.Name {
				v.Others = append(v.Others, sharedView{other, p.SharedUsers[other]})
			}
		}
		text, err := execute(t.scenario, v)
		if err != nil {
			return nil, fmt.Errorf("scenario %q: %w", p.Name, err)
		}
		facts := joinNonEmpty(". ", p.Name, p.Description, strings.Join(p.TopCategories, ", "))
		prompts = append(prompts, Prompt{Key: ScenarioKey(p.Name), Text: text, Facts: facts})
	}
	return prompts, nil
}

// userView is the data the user template sees.
type userView struct {
	ID, Key, Text string
	Scenarios     []userScenarioView
}

type userScenarioView struct {
	Name         string
	Items        []Interaction // the most recent Shown of Total
	Shown, Total int
}

// RenderUserPrompts renders one prompt per user, keyed UserKey(id). Each
// scenario shows at most the maxPerScenario most recent interactions (the
// paper's interaction threshold); maxPerScenario <= 0 shows all.
func (t *Templates) RenderUserPrompts(users []UserProfile, maxPerScenario int) ([]Prompt, error) {
	prompts := make([]Prompt, 0, len(users))
	for _, u := range users {
		v := userView{ID: u.ID, Key: UserKey(u.ID), Text: u.Text}
		facts := []string{u.Text}
		for _, s := range u.ByScenario {
			items := s.Items
			if maxPerScenario > 0 && len(items) > maxPerScenario {
				items = items[len(items)-maxPerScenario:]
			}
			v.Scenarios = append(v.Scenarios, userScenarioView{Name: s.Scenario, Items: items, Shown: len(items), Total: len(s.Items)})
			// A description of the user, where the data has one, is the whole of the
			// facts: a bag of words over the user's training clicks (even their
			// categories) hands the model the labels it is trained on, and it then
			// memorises them instead of learning interests (docs/benchmarks.md).
			if u.Text == "" {
				facts = append(facts, scenarioFacts(s.Scenario, items))
			}
		}
		text, err := execute(t.user, v)
		if err != nil {
			return nil, fmt.Errorf("user %q: %w", u.ID, err)
		}
		prompts = append(prompts, Prompt{Key: v.Key, Text: text, Facts: joinNonEmpty(". ", facts...)})
	}
	return prompts, nil
}

// scenarioFacts names a scenario and what the user clicked there, at the
// level an LLM would summarise it: item categories, else item titles.
// Item ids are left out on purpose: hashed into a user's vector, the ids
// of the very items whose clicks are being predicted let a model memorise
// training labels instead of learning interests.
func scenarioFacts(scenario string, items []Interaction) string {
	var clicked []string
	for _, it := range items {
		if !it.Clicked {
			continue
		}
		switch {
		case it.Category != "":
			clicked = append(clicked, it.Category)
		case it.Text != "":
			clicked = append(clicked, it.Text)
		}
	}
	if len(clicked) == 0 {
		return scenario
	}
	return scenario + ": " + strings.Join(clicked, ", ")
}

func execute(t *template.Template, data any) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

func joinNonEmpty(sep string, parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, sep)
}

// WritePromptsJSONL writes one JSON object {key, prompt, facts} per line.
func WritePromptsJSONL(w io.Writer, prompts []Prompt) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for _, p := range prompts {
		if err := enc.Encode(p); err != nil {
			return fmt.Errorf("prompt %q: %w", p.Key, err)
		}
	}
	return bw.Flush()
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
