package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/model"
)

// The files beside model.pt in an exported directory.
const (
	ModelFile        = "model.pt"
	FeaturesFile     = "features.json"
	VocabulariesFile = "vocabularies.json"
	TritonDir        = "triton"
)

// FeaturesFormat is the version of features.json this msrtrain writes and reads.
const FeaturesFormat = 1

// Features is an exported directory's features.json: how to turn a raw
// request into the module's inputs exactly as training encoded its data,
// and what the module returns. The vocabularies and the users' knowledge
// rows are in vocabularies.json beside it (Vocabularies), which
// ReadFeatures loads too.
type Features struct {
	Format   int       `json:"format"`
	Producer string    `json:"producer"`
	Model    ModelInfo `json:"model"`
	// Inputs are forward's arguments in order; Output what it returns.
	Inputs []TensorSpec `json:"inputs"`
	Output TensorSpec   `json:"output"`
	// Categorical are cat's columns in order; Numeric num's.
	Categorical []CategoricalField `json:"categorical"`
	Numeric     []NumericField     `json:"numeric"`
	// Scenarios are the scenario input's values: a scenario's index is its position.
	Scenarios []Scenario `json:"scenarios"`
	// UserKnowledge says how to compute user_knowledge_row.
	UserKnowledge UserKnowledge `json:"user_knowledge"`
	// Label is the training target the probability is of.
	Label string `json:"label"`
	// VocabulariesFile names the sibling file with the vocabularies.
	VocabulariesFile string `json:"vocabularies_file"`

	vocab *Vocabularies
	// vocabs are vocab as data.Vocabs, built by attach: Encode and
	// data.Encode (DataVocabs) share their lookups, built when first used.
	vocabs *data.Vocabs
}

// ModelInfo says what was exported.
type ModelInfo struct {
	Backbone   string `json:"backbone"`
	MetaLevels string `json:"meta_levels"`
	Checkpoint string `json:"checkpoint"`
	Step       int    `json:"step"`
	// TritonName is the model's name in the Triton repository (triton/<name>).
	TritonName string `json:"triton_name"`
}

// TensorSpec describes an input or the output of forward.
type TensorSpec struct {
	Name string `json:"name"`
	// Position is the argument's position in forward (the output's: 0).
	Position int    `json:"position"`
	DType    string `json:"dtype"`
	// Shape in rows B and sizes.
	Shape []string `json:"shape"`
	// Triton is the name in config.pbtxt (<name>__<position>, the libtorch backend's convention).
	Triton      string `json:"triton_name"`
	Description string `json:"description"`
}

// CategoricalField is one column of cat.
type CategoricalField struct {
	Column int    `json:"column"`
	Name   string `json:"name"`
	Role   string `json:"role"`
	// VocabularySize counts the indices, 0 (out of vocabulary) included.
	VocabularySize int `json:"vocabulary_size"`
	// MinCount: values seen fewer times in training were left out of the vocabulary.
	MinCount int `json:"min_count"`
}

// NumericField is one column of num.
type NumericField struct {
	Column        int    `json:"column"`
	Name          string `json:"name"`
	Preprocessing string `json:"preprocessing"`
}

// Scenario is one value of the scenario input.
type Scenario struct {
	Index       int    `json:"index"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// UserKnowledge says how a row's user_knowledge_row is computed.
type UserKnowledge struct {
	// Used: the model has the user-level meta network; without it the input is ignored (pass MissingRow).
	Used bool `json:"used"`
	// Column is the user's column of cat.
	Column int `json:"column"`
	// Rows is the number of users with a knowledge vector in the module.
	Rows int `json:"rows"`
	// MissingRow is the value for a user without one (the learned fallback vector).
	MissingRow int64  `json:"missing_row"`
	Rule       string `json:"rule"`
}

// Vocabularies is vocabularies.json.
type Vocabularies struct {
	// Fields maps each categorical field's name to its values in index
	// order: Fields[name][i] has index i+1.
	Fields map[string][]string `json:"fields"`
	// UserKnowledgeRow is user_knowledge_row by the user's vocabulary index
	// (0, out of vocabulary, included); nil without the user-level network.
	UserKnowledgeRow []int64 `json:"user_knowledge_row"`
}

const (
	oovRule       = "a value is its position in vocabularies.json's list for the field, plus 1; a value not in the list, an empty or a missing one is 0, the out-of-vocabulary index, as in training"
	numericRule   = "none: the value as a 32-bit float (the nearest one), as training read it; training refused missing and non-finite values"
	knowledgeRule = "user_knowledge_row = vocabularies.json's user_knowledge_row[i], i the user's index in cat; -1 (the learned fallback vector) for a user without a knowledge vector, the out-of-vocabulary user included"
)

// newFeatures describes the loaded model's inputs from its checkpoint's vocabularies.
func newFeatures(vocabs *data.Vocabs, spec model.Spec, exp *model.Exported, info ModelInfo) (*Features, *Vocabularies) {
	schema := vocabs.Schema()
	rows := "B"
	f := &Features{
		Format: FeaturesFormat, Producer: "msrtrain", Model: info,
		Label: schema.Labels[0], VocabulariesFile: VocabulariesFile,
	}
	nf, nn := len(schema.Categorical), len(schema.Numeric)
	f.Inputs = []TensorSpec{
		{Name: "cat", Position: 0, DType: "int64", Shape: []string{rows, strconv.Itoa(nf)},
			Description: "each categorical field's vocabulary index, columns in the order of categorical; " + oovRule},
		{Name: "num", Position: 1, DType: "float32", Shape: []string{rows, strconv.Itoa(nn)},
			Description: "the numeric fields, columns in the order of numeric (a [B, 0] tensor when there are none)"},
		{Name: "scenario", Position: 2, DType: "int64", Shape: []string{rows},
			Description: "the scenario's index in scenarios; an unknown scenario name is an error, as in training"},
		{Name: "user_knowledge_row", Position: 3, DType: "int64", Shape: []string{rows},
			Description: "the user's row in the module's knowledge table, see user_knowledge"},
	}
	for i := range f.Inputs {
		f.Inputs[i].Triton = fmt.Sprintf("%s__%d", f.Inputs[i].Name, i)
	}
	f.Output = TensorSpec{Name: "probability", DType: "float32", Shape: []string{rows}, Triton: "probability__0",
		Description: "each row's click probability (" + f.Label + " = 1), in the rows' order"}
	roles := spec.Roles
	if roles == nil {
		roles = model.DefaultRoles(nf)
	}
	v := &Vocabularies{Fields: map[string][]string{}}
	for i, voc := range vocabs.Fields {
		f.Categorical = append(f.Categorical, CategoricalField{Column: i, Name: voc.Name, Role: string(roles[i]), VocabularySize: voc.Size(), MinCount: voc.MinCount})
		v.Fields[voc.Name] = voc.Tokens
	}
	for i, name := range schema.Numeric {
		f.Numeric = append(f.Numeric, NumericField{Column: i, Name: name, Preprocessing: numericRule})
	}
	for i, s := range schema.Scenarios {
		f.Scenarios = append(f.Scenarios, Scenario{Index: i, Name: s.Name, Description: s.Description})
	}
	f.UserKnowledge = UserKnowledge{Column: 0, MissingRow: model.MissingKnowledgeRow, Rule: knowledgeRule}
	if exp.KnowledgeUsers != nil {
		f.UserKnowledge.Used, f.UserKnowledge.Rows = true, len(exp.KnowledgeUsers)
		v.UserKnowledgeRow = make([]int64, vocabs.Fields[0].Size())
		for i := range v.UserKnowledgeRow {
			v.UserKnowledgeRow[i] = model.MissingKnowledgeRow
		}
		for r, u := range exp.KnowledgeUsers {
			v.UserKnowledgeRow[u] = int64(r)
		}
	} else {
		f.UserKnowledge.Rule = "the model has no user-level meta network: pass -1 for every row"
	}
	f.attach(v)
	return f, v
}

// ReadFeatures reads an exported directory's features.json and the
// vocabularies beside it, checking that they agree.
func ReadFeatures(dir string) (*Features, error) {
	path := filepath.Join(dir, FeaturesFile)
	var f Features
	if err := readJSON(path, &f); err != nil {
		return nil, err
	}
	if f.Format != FeaturesFormat {
		return nil, fmt.Errorf("%s: format %d; this msrtrain reads format %d", path, f.Format, FeaturesFormat)
	}
	if f.VocabulariesFile == "" || filepath.Base(f.VocabulariesFile) != f.VocabulariesFile {
		return nil, fmt.Errorf("%s: vocabularies_file = %q: want a file name beside it", path, f.VocabulariesFile)
	}
	vpath := filepath.Join(dir, f.VocabulariesFile)
	var v Vocabularies
	if err := readJSON(vpath, &v); err != nil {
		return nil, err
	}
	if err := f.check(&v); err != nil {
		return nil, fmt.Errorf("%s and %s: %w", path, vpath, err)
	}
	f.attach(&v)
	return &f, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// check verifies that the vocabularies fit the description.
func (f *Features) check(v *Vocabularies) error {
	if len(f.Categorical) == 0 || len(f.Scenarios) == 0 {
		return errors.New("no categorical fields or no scenarios")
	}
	for i, c := range f.Categorical {
		if c.Column != i {
			return fmt.Errorf("categorical[%d] has column %d", i, c.Column)
		}
		tokens, ok := v.Fields[c.Name]
		if !ok {
			return fmt.Errorf("no vocabulary for field %q", c.Name)
		}
		if len(tokens)+1 != c.VocabularySize {
			return fmt.Errorf("field %q: %d values, vocabulary_size %d", c.Name, len(tokens), c.VocabularySize)
		}
	}
	for i, s := range f.Scenarios {
		if s.Index != i {
			return fmt.Errorf("scenarios[%d] has index %d", i, s.Index)
		}
	}
	k := f.UserKnowledge
	if k.Used {
		if k.Column < 0 || k.Column >= len(f.Categorical) {
			return fmt.Errorf("user_knowledge.column = %d: no such categorical column", k.Column)
		}
		if len(v.UserKnowledgeRow) != f.Categorical[k.Column].VocabularySize {
			return fmt.Errorf("user_knowledge_row has %d entries for %d user indices", len(v.UserKnowledgeRow), f.Categorical[k.Column].VocabularySize)
		}
		for i, r := range v.UserKnowledgeRow {
			if r < k.MissingRow || r >= int64(k.Rows) {
				return fmt.Errorf("user_knowledge_row[%d] = %d: outside [%d, %d)", i, r, k.MissingRow, k.Rows)
			}
		}
	}
	return nil
}

func (f *Features) attach(v *Vocabularies) {
	f.vocab = v
	f.vocabs = &data.Vocabs{Labels: []string{f.Label}}
	for _, s := range f.Scenarios {
		f.vocabs.Scenarios = append(f.vocabs.Scenarios, data.ScenarioInfo{Name: s.Name, Description: s.Description})
	}
	for _, c := range f.Categorical {
		f.vocabs.Fields = append(f.vocabs.Fields, data.NewVocab(c.Name, c.MinCount, v.Fields[c.Name]))
	}
	for _, n := range f.Numeric {
		f.vocabs.Numeric = append(f.vocabs.Numeric, n.Name)
	}
	f.vocabs.Schema() // built now, so that concurrent readers only read it
}

// Vocabularies are the vocabularies the features were read with.
func (f *Features) Vocabularies() *Vocabularies { return f.vocab }

// CategoricalIndex is a raw value's index in column's vocabulary, 0 when
// it is not there (out of vocabulary, empty).
func (f *Features) CategoricalIndex(column int, raw string) int64 {
	return f.vocabs.Fields[column].Index(raw)
}

// ScenarioIndex is a scenario name's index.
func (f *Features) ScenarioIndex(name string) (int64, bool) {
	for _, s := range f.Scenarios {
		if s.Name == name {
			return int64(s.Index), true
		}
	}
	return 0, false
}

// UserKnowledgeRow is user_knowledge_row for a user's vocabulary index.
func (f *Features) UserKnowledgeRow(userIndex int64) int64 {
	rows := f.vocab.UserKnowledgeRow
	if userIndex < 0 || userIndex >= int64(len(rows)) {
		return model.MissingKnowledgeRow
	}
	return rows[userIndex]
}

// Row is one raw request row: its scenario's name, each categorical
// field's raw value and each numeric field's value, by field name.
type Row struct {
	Scenario    string
	Categorical map[string]string
	Numeric     map[string]float64
}

// Encoded is a batch of rows encoded as the module's inputs, row-major.
type Encoded struct {
	Rows, Fields     int     // Fields: cat's columns
	Numeric          int     // num's columns
	Cat              []int64 // [Rows, len(Categorical)]
	Num              []float32
	Scenario         []int64
	UserKnowledgeRow []int64
}

// RowError is a raw row that cannot be encoded: which row, which field, why.
type RowError struct {
	Row   int
	Field string
	Err   error
}

func (e *RowError) Error() string { return fmt.Sprintf("row %d: field %q: %v", e.Row, e.Field, e.Err) }
func (e *RowError) Unwrap() error { return e.Err }

// Errors of Encode.
var (
	ErrUnknownScenario = errors.New("unknown scenario")
	ErrMissingField    = errors.New("missing")
	ErrNotFinite       = errors.New("not a finite number")
)

// Encode encodes rows as training did: vocabulary indices (0 for a value
// the vocabulary lacks or an empty one), numeric values as float32, the
// scenario's index and the user's knowledge row. A missing field, a
// non-finite number or an unknown scenario is a *RowError naming the row
// and the field; fields the model does not use are ignored.
func (f *Features) Encode(rows []Row) (*Encoded, error) {
	nf, nn := len(f.Categorical), len(f.Numeric)
	e := &Encoded{
		Rows: len(rows), Fields: nf, Numeric: nn, Cat: make([]int64, 0, len(rows)*nf), Num: make([]float32, 0, len(rows)*nn),
		Scenario: make([]int64, 0, len(rows)), UserKnowledgeRow: make([]int64, 0, len(rows)),
	}
	for i, r := range rows {
		s, ok := f.ScenarioIndex(r.Scenario)
		if !ok {
			return nil, &RowError{Row: i, Field: "scenario", Err: fmt.Errorf("%w %q: want one of %s", ErrUnknownScenario, r.Scenario, f.scenarioList())}
		}
		e.Scenario = append(e.Scenario, s)
		for c, field := range f.Categorical {
			raw, ok := r.Categorical[field.Name]
			if !ok {
				return nil, &RowError{Row: i, Field: field.Name, Err: ErrMissingField}
			}
			e.Cat = append(e.Cat, f.CategoricalIndex(c, raw))
		}
		for _, field := range f.Numeric {
			v, ok := r.Numeric[field.Name]
			if !ok {
				return nil, &RowError{Row: i, Field: field.Name, Err: ErrMissingField}
			}
			if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > math.MaxFloat32 {
				return nil, &RowError{Row: i, Field: field.Name, Err: fmt.Errorf("%w: %g", ErrNotFinite, v)}
			}
			e.Num = append(e.Num, float32(v))
		}
		row := int64(model.MissingKnowledgeRow)
		if f.UserKnowledge.Used {
			row = f.UserKnowledgeRow(e.Cat[i*nf+f.UserKnowledge.Column])
		}
		e.UserKnowledgeRow = append(e.UserKnowledgeRow, row)
	}
	return e, nil
}

func (f *Features) scenarioList() string {
	names := make([]string, len(f.Scenarios))
	for i, s := range f.Scenarios {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}

// Tensors are the module's four inputs for the batch, on the CPU (owned by
// the innermost open scope), ready for torch.ScriptModule.Forward.
func (e *Encoded) Tensors() []*torch.Tensor {
	n := int64(e.Rows)
	return []*torch.Tensor{
		torch.FromSlice(e.Cat, n, int64(e.Fields)), torch.FromSlice(e.Num, n, int64(e.Numeric)),
		torch.FromSlice(e.Scenario, n), torch.FromSlice(e.UserKnowledgeRow, n),
	}
}

// IsExported reports whether dir looks like an exported directory (model.pt and features.json).
func IsExported(dir string) bool {
	for _, f := range []string{ModelFile, FeaturesFile} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || !st.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// DataVocabs are the vocabularies as data.Encode takes them, so that rows
// read as training read its files (data.Raw) encode exactly as training
// encoded them.
func (f *Features) DataVocabs() *data.Vocabs { return f.vocabs }

// KnowledgeRows are the user_knowledge_row values of a table's rows
// (encoded with DataVocabs), MissingRow for every row without the user level.
func (f *Features) KnowledgeRows(t *data.Table) []int64 {
	rows := make([]int64, t.Len())
	fields := len(f.Categorical)
	for i := range rows {
		rows[i] = f.UserKnowledge.MissingRow
		if f.UserKnowledge.Used {
			rows[i] = f.UserKnowledgeRow(int64(t.Cat[i*fields+f.UserKnowledge.Column]))
		}
	}
	return rows
}
