package knowledge

import (
	"go.yaml.in/yaml/v3"

	"github.com/msrtrain/msrtrain/data/choice"
)

// Config is the knowledge section of a run's configuration: where LLM4MSR's knowledge vectors come from.
type Config struct {
	Encoder Encoder `yaml:"encoder"`
	// Dir holds the knowledge store; default <out>/knowledge.
	Dir string `yaml:"dir"`
	// MaxPerScenario caps the interactions per scenario in a user prompt (the paper's interaction threshold).
	MaxPerScenario int          `yaml:"max_per_scenario"`
	ScenarioPrompt string       `yaml:"scenario_template"` // path of a text/template; empty = built in
	UserPrompt     string       `yaml:"user_template"`
	Hash           HashConfig   `yaml:"hash"`
	OpenAI         OpenAIConfig `yaml:"openai"`
	File           FileConfig   `yaml:"file"`
	Learned        IDConfig     `yaml:"learned"`
	Random         IDConfig     `yaml:"random"`
	Force          bool         `yaml:"force"` // start the store over when its encoder, model or templates changed
}

// HashConfig configures the built-in hashing text encoder.
type HashConfig struct {
	Dim  int    `yaml:"dim"`
	Seed uint64 `yaml:"seed"`
}

// IDConfig sizes the vectors of the learned and random encoders, which
// have no text: one per user and per scenario.
type IDConfig struct {
	Dim int `yaml:"dim"`
}

// OpenAIConfig configures the OpenAI-compatible encoder (vLLM, llama.cpp, Ollama, TEI, OpenAI).
type OpenAIConfig struct {
	BaseURL        string  `yaml:"base_url"`
	ChatModel      string  `yaml:"chat_model"`
	EmbeddingModel string  `yaml:"embedding_model"`
	APIKeyEnv      string  `yaml:"api_key_env"`
	Dim            int     `yaml:"dim"`
	Concurrency    int     `yaml:"concurrency"`
	TimeoutSeconds float64 `yaml:"timeout_seconds"`
	MaxRetries     int     `yaml:"max_retries"`
	MaxTokens      int     `yaml:"max_tokens"`
}

// FileConfig names vectors computed elsewhere.
type FileConfig struct {
	Vectors string `yaml:"vectors"` // .safetensors or .npy, [N, D]
	IDs     string `yaml:"ids"`     // JSON array or CSV of keys, row i ↔ id i
	Tensor  string `yaml:"tensor"`  // tensor name in a safetensors file with several
}

// DefaultConfig is the built-in hash encoder and the paper's interaction threshold.
func DefaultConfig() Config {
	return Config{
		Encoder: EncoderHash, MaxPerScenario: 20,
		Hash: HashConfig{Dim: 64, Seed: 1}, Learned: IDConfig{Dim: 64}, Random: IDConfig{Dim: 64},
		OpenAI: OpenAIConfig{BaseURL: "http://localhost:8000/v1", APIKeyEnv: "OPENAI_API_KEY", Concurrency: 4,
			TimeoutSeconds: 120, MaxRetries: 5, MaxTokens: 512},
	}
}

// Encoder is knowledge.encoder, what turns prompts into knowledge vectors.
type Encoder string

// The encoders.
const (
	EncoderHash   Encoder = "hash"   // built in, no LLM: hashed words (tests, smoke runs)
	EncoderOpenAI Encoder = "openai" // an OpenAI-compatible server
	EncoderFile   Encoder = "file"   // vectors computed elsewhere
	// The ablations with no text: a vector per user and per scenario that
	// the model trains (learned) or that stays as drawn from the seed (random).
	EncoderLearned Encoder = "learned"
	EncoderRandom  Encoder = "random"
)

// EncoderValues are knowledge.encoder's values.
var EncoderValues = choice.New("knowledge encoder", EncoderHash, EncoderOpenAI, EncoderFile, EncoderLearned, EncoderRandom)

// FromText reports whether the encoder turns prompts into vectors kept in
// a knowledge store; learned and random read no text and keep no store.
func (e Encoder) FromText() bool { return e != EncoderLearned && e != EncoderRandom }

// UnmarshalYAML accepts one of EncoderValues.
func (e *Encoder) UnmarshalYAML(n *yaml.Node) error { return EncoderValues.Decode(n, e) }
