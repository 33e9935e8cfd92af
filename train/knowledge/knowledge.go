// Package knowledge prepares LLM4MSR's knowledge for a run: the knowledge
// section of its configuration, the scenario- and user-level prompts of its
// training split, the encoder that turns them into vectors, the store that
// keeps them (data/knowledge, imported here as kb) and the matrices the
// model's meta networks read.
package knowledge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data"
	kb "github.com/msrtrain/msrtrain/data/knowledge"
	"github.com/msrtrain/msrtrain/model"
	"github.com/msrtrain/msrtrain/train/rundir"
)

// Profiles turns the training split into what LLM4MSR's prompts describe:
// each scenario's statistics and each user's interactions per scenario.
// Only the training split is used, so no test interaction leaks into kb.
func Profiles(t *data.Table, stats []data.ScenarioStats, maxPerScenario int) ([]kb.ScenarioProfile, []kb.UserProfile) {
	return scenarioProfiles(t, stats), userProfiles(t, t.UserHistories(maxPerScenario))
}

func scenarioProfiles(t *data.Table, stats []data.ScenarioStats) []kb.ScenarioProfile {
	names := t.Schema.ScenarioNames()
	scenarios := make([]kb.ScenarioProfile, len(stats))
	for i, st := range stats {
		p := kb.ScenarioProfile{
			Name: st.Name, Rows: st.Rows, Users: st.Users, Items: st.Items,
			PositiveRate: st.PositiveRate, TopCategories: st.TopCategories, SharedUsers: map[string]float64{},
		}
		if i < len(t.Schema.Scenarios) {
			p.Description = t.Schema.Scenarios[i].Description
		}
		for j, f := range st.SharedUsers {
			if j != i && j < len(names) {
				p.SharedUsers[names[j]] = f
			}
		}
		scenarios[i] = p
	}
	return scenarios
}

func userProfiles(t *data.Table, histories []data.UserHistory) []kb.UserProfile {
	names := t.Schema.ScenarioNames()
	var users []kb.UserProfile
	for _, h := range histories {
		u := kb.UserProfile{ID: h.User, Text: h.Text}
		for s, items := range h.Scenarios {
			if len(items) == 0 {
				continue
			}
			si := kb.ScenarioInteractions{Scenario: names[s]}
			for _, it := range items {
				si.Items = append(si.Items, kb.Interaction{ID: it.Item, Text: it.Title, Category: it.Category, Clicked: it.Label > 0.5})
			}
			u.ByScenario = append(u.ByScenario, si)
		}
		users = append(users, u)
	}
	return users
}

// RenderPrompts renders the scenario-level and user-level prompts of a training split.
func RenderPrompts(kc Config, sp *data.Splits) ([]kb.Prompt, *kb.Templates, error) {
	return RenderPromptsOf(kc, sp, nil)
}

// RenderPromptsOf renders the scenario prompts and those of the given raw
// user ids only (every user's when users is nil): a report shows a few
// users' prompts and need not build every user's history for them.
func RenderPromptsOf(kc Config, sp *data.Splits, users []string) ([]kb.Prompt, *kb.Templates, error) {
	if sp.Train == nil {
		return nil, nil, fmt.Errorf("knowledge: prompts need an in-memory training split (data.stream.enabled is on)")
	}
	tmpl, err := kb.LoadTemplates(kc.ScenarioPrompt, kc.UserPrompt)
	if err != nil {
		return nil, nil, err
	}
	histories := sp.Train.UserHistories
	if users != nil {
		histories = func(n int) []data.UserHistory { return sp.Train.UserHistoriesOf(n, users) }
	}
	sp1, err := tmpl.RenderScenarioPrompts(scenarioProfiles(sp.Train, sp.Stats))
	if err != nil {
		return nil, nil, err
	}
	up, err := tmpl.RenderUserPrompts(userProfiles(sp.Train, histories(kc.MaxPerScenario)), kc.MaxPerScenario)
	if err != nil {
		return nil, nil, err
	}
	return append(sp1, up...), tmpl, nil
}

// NewEncoder creates the configured encoder.
func NewEncoder(kc Config) (kb.Encoder, error) {
	switch kc.Encoder {
	case EncoderHash:
		return kb.NewHashEncoder(kc.Hash.Dim, kc.Hash.Seed), nil
	case EncoderOpenAI:
		o := kc.OpenAI
		enc, err := kb.NewOpenAIEncoder(kb.OpenAIConfig{
			BaseURL: o.BaseURL, ChatModel: o.ChatModel, EmbeddingModel: o.EmbeddingModel, Dim: o.Dim,
			APIKeyEnv: o.APIKeyEnv, MaxTokens: o.MaxTokens, Concurrency: o.Concurrency,
			Timeout: time.Duration(o.TimeoutSeconds * float64(time.Second)), MaxRetries: o.MaxRetries,
		})
		var missing kb.MissingSettings
		if errors.As(err, &missing) {
			keys := map[string]string{"BaseURL": "knowledge.openai.base_url", "EmbeddingModel": "knowledge.openai.embedding_model", "Dim": "knowledge.openai.dim (the embedding model's dimension)"}
			named := make([]string, len(missing))
			for i, f := range missing {
				named[i] = keys[f]
			}
			return nil, fmt.Errorf("knowledge.encoder = openai needs %s", strings.Join(named, " and "))
		}
		return enc, err
	case EncoderFile:
		if kc.File.Vectors == "" || kc.File.IDs == "" {
			return nil, fmt.Errorf("knowledge.encoder = file needs knowledge.file.vectors and knowledge.file.ids")
		}
		return kb.NewFileEncoder(kc.File.Vectors, kc.File.IDs, kc.File.Tensor, filepath.Base(kc.File.Vectors))
	case EncoderLearned, EncoderRandom:
		return nil, fmt.Errorf("knowledge.encoder = %s reads no prompts and keeps no knowledge store; it needs no build", kc.Encoder)
	}
	return nil, EncoderValues.Check("knowledge.encoder", kc.Encoder)
}

// StoreDir is where the run in out keeps its knowledge store: knowledge.dir, or <out>/knowledge.
func (c Config) StoreDir(out string) string {
	if c.Dir != "" {
		return c.Dir
	}
	return rundir.Dir(out).Knowledge()
}

// Build encodes every prompt the store of the run in out lacks (resuming
// an interrupted build) and returns the open store.
func Build(ctx context.Context, c Config, out string, sp *data.Splits, progress io.Writer) (*kb.Store, kb.BuildStats, error) {
	var stats kb.BuildStats
	prompts, tmpl, err := RenderPrompts(c, sp)
	if err != nil {
		return nil, stats, err
	}
	enc, err := NewEncoder(c)
	if err != nil {
		return nil, stats, err
	}
	dir := c.StoreDir(out)
	if c.Force {
		if err := kb.Reset(dir); err != nil {
			return nil, stats, err
		}
	}
	store, err := kb.Open(dir, kb.Meta{Encoder: enc.Name(), Model: enc.Model(), Dim: enc.Dim(), TemplateHash: tmpl.Hash()})
	if err != nil {
		return nil, stats, err
	}
	stats, err = kb.Build(ctx, store, enc, prompts, progress)
	if err != nil {
		store.Close()
		return nil, stats, err
	}
	return store, stats, nil
}

// ForModel lays the store's vectors out for the model: one row per
// scenario and one per entry of the user vocabulary. It returns how many
// vocabulary users have no vector (they use the learned fallback).
func ForModel(store *kb.Store, vocabs *data.Vocabs, dev torch.Device) (*model.Knowledge, int, error) {
	scen, user, known, err := Matrices(store, vocabs)
	if err != nil {
		return nil, 0, err
	}
	missing := 0
	for _, k := range known[1:] {
		if !k {
			missing++
		}
	}
	k, err := model.NewKnowledge(scen, user, known, int64(store.Meta().Dim), dev)
	return k, missing, err
}

// Load lays the vectors of the store in dir out for the model, like ForModel.
func Load(dir string, vocabs *data.Vocabs, dev torch.Device) (*model.Knowledge, int, error) {
	store, err := kb.Load(dir)
	if err != nil {
		return nil, 0, err
	}
	defer store.Close()
	return ForModel(store, vocabs, dev)
}

// Matrices are the row-major scenario and user matrices of
// model.NewKnowledge, with which users have a vector (never row 0, the
// out-of-vocabulary user).
func Matrices(store *kb.Store, vocabs *data.Vocabs) (scen, user []float32, known []bool, err error) {
	scenarioKeys := make([]string, len(vocabs.Scenarios))
	for i, s := range vocabs.Scenarios {
		scenarioKeys[i] = kb.ScenarioKey(s.Name)
	}
	scen, found := store.Matrix(scenarioKeys)
	for i, ok := range found {
		if !ok {
			return nil, nil, nil, fmt.Errorf("knowledge store %s has no vector for %s; run `msrtrain knowledge build`", store.Dir(), scenarioKeys[i])
		}
	}
	users := vocabs.Fields[0]
	userKeys := make([]string, users.Size())
	for i := range userKeys {
		if i == 0 {
			userKeys[i] = "" // the out-of-vocabulary row: always the fallback
			continue
		}
		userKeys[i] = kb.UserKey(users.Token(int64(i)))
	}
	user, known = store.Matrix(userKeys)
	known[0] = false
	return scen, user, known, nil
}
