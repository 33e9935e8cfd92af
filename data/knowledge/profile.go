package knowledge

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Key prefixes of scenario-level and user-level knowledge.
const (
	ScenarioPrefix = "scenario:"
	UserPrefix     = "user:"
)

// ScenarioKey is the knowledge key of a scenario.
func ScenarioKey(name string) string { return ScenarioPrefix + name }

// UserKey is the knowledge key of a user given its raw id.
func UserKey(id string) string { return UserPrefix + id }

// validKey reports whether key has one of the two prefixes and a non-empty rest.
func validKey(key string) bool {
	for _, p := range []string{ScenarioPrefix, UserPrefix} {
		if strings.HasPrefix(key, p) && len(key) > len(p) {
			return true
		}
	}
	return false
}

// ScenarioProfile is what the scenario-level prompt says about a scenario.
type ScenarioProfile struct {
	Name         string
	Description  string
	Rows         int     // logged interactions
	Users        int     // distinct users
	Items        int     // distinct items
	PositiveRate float64 // fraction of rows with a positive label
	// SharedUsers maps another scenario's name to the fraction of this
	// scenario's users who also appear there.
	SharedUsers map[string]float64
	// TopCategories lists the most frequent item categories, most frequent
	// first, where the dataset has categories.
	TopCategories []string
}

// Interaction is one logged item a user saw.
type Interaction struct {
	ID       string // raw item id, shown when Text is empty
	Text     string // item title or description, where the dataset has one
	Category string
	Clicked  bool
}

// ScenarioInteractions are a user's interactions in one scenario, oldest first.
type ScenarioInteractions struct {
	Scenario string
	Items    []Interaction
}

// UserProfile is what the user-level prompt says about a user.
type UserProfile struct {
	ID         string // raw user id; the key is UserKey(ID)
	Text       string // free-form description, where the dataset has one
	ByScenario []ScenarioInteractions
}

// Prompt is one rendered prompt. Text is what an LLM reads; Facts is the
// data it was rendered from without the template's instructions, which
// encoders that do not reason (the hash encoder) embed instead.
type Prompt struct {
	Key   string `json:"key"`
	Text  string `json:"prompt"`
	Facts string `json:"facts,omitempty"`
}

// Hash identifies the prompt's content; the store keeps it per key to notice
// a prompt that changed since its vector was computed.
func (p Prompt) Hash() string {
	h := sha256.New()
	h.Write([]byte(p.Text))
	h.Write([]byte{0})
	h.Write([]byte(p.Facts))
	return hex.EncodeToString(h.Sum(nil)[:16])
}
