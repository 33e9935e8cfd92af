package data

// ScenarioInfo names a scenario and describes it in words for LLM prompts.
type ScenarioInfo struct {
	Name        string `json:"name" yaml:"name"`
	Description string `json:"description,omitempty" yaml:"description"`
}

// Schema lists the fields of a dataset in the order they appear in a Table.
// Categorical[0] is always the user field and Categorical[1] the item field.
// Labels[0] is the training target.
type Schema struct {
	Scenarios   []ScenarioInfo
	Categorical []string
	Numeric     []string
	Labels      []string
}

// ScenarioNames returns the scenario names in id order.
func (s *Schema) ScenarioNames() []string {
	out := make([]string, len(s.Scenarios))
	for i, sc := range s.Scenarios {
		out[i] = sc.Name
	}
	return out
}

// ItemText is what a dataset says about an item in words.
type ItemText struct {
	Title    string  `json:"title,omitempty"`
	Category string  `json:"category,omitempty"`
	Tokens   []int32 `json:"tokens,omitempty"` // anonymised token ids (KuaiSAR captions)
}

// Text holds the words a dataset carries, keyed by raw id, for LLM prompts.
type Text struct {
	Items map[string]ItemText // by raw item id
	Users map[string]string   // by raw user id (synthetic data only)
}

func newText() *Text {
	return &Text{Items: map[string]ItemText{}, Users: map[string]string{}}
}

// Table is an encoded dataset, row-major for fast batching. Cat holds the
// dense vocabulary index of each categorical field (0 = out of vocabulary or
// missing); Label holds 0/1 per label.
type Table struct {
	Schema   *Schema
	Scenario []int32   // len N, in 0..len(Schema.Scenarios)-1
	Cat      []int32   // N*len(Schema.Categorical); batches widen it to int64
	Num      []float32 // N*len(Schema.Numeric)
	Label    []float32 // N*len(Schema.Labels)
	Time     []int64   // len N, or nil when the data has no timestamps

	// Source and SourceRow map each row back to the Raw it was encoded
	// from, for raw ids and text. Both are nil for hand-built tables.
	Source    *Raw
	SourceRow []int32
}

// Len is the number of rows.
func (t *Table) Len() int { return len(t.Scenario) }

// UserKey is the raw user id of row i (its dense index as text when the
// table has no Source).
func (t *Table) UserKey(i int) string { return t.rawKey(i, 0) }

// ItemKey is the raw item id of row i.
func (t *Table) ItemKey(i int) string { return t.rawKey(i, 1) }

func (t *Table) rawKey(i, field int) string {
	if t.Source != nil {
		c := t.Source.Cat[field]
		return c.Dict.Strings[c.Codes[t.SourceRow[i]]]
	}
	return itoa(int64(t.Cat[i*len(t.Schema.Categorical)+field]))
}

// rawCode identifies the raw id of field in row i, distinct even for ids
// that share the out-of-vocabulary index.
func (t *Table) rawCode(i, field int) int64 {
	if t.Source != nil {
		return int64(t.Source.Cat[field].Codes[t.SourceRow[i]])
	}
	return int64(t.Cat[i*len(t.Schema.Categorical)+field])
}

// Text returns the words the source data carries, or nil.
func (t *Table) Text() *Text {
	if t.Source == nil {
		return nil
	}
	return t.Source.Text
}
