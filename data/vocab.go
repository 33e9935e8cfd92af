package data

import (
	"cmp"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"runtime"
	"slices"
	"sync"
)

// Vocab maps the raw values of one categorical field to dense indices.
// Index 0 is out-of-vocabulary and missing; Tokens[i] has index i+1.
//
// Each token is held once: the map from token to index is built on the
// first call to Index (eval and predict data), not for the rows the
// vocabulary was counted on, which encodeRows maps through their codes.
type Vocab struct {
	Name     string
	MinCount int
	Tokens   []string

	once  sync.Once
	index map[string]int64
	// from is the dictionary BuildVocabs counted, codes its codes' indices.
	from  *Dict
	codes []int32
}

// NewVocab makes a vocabulary from tokens in index order (1, 2, ...).
func NewVocab(name string, minCount int, tokens []string) *Vocab {
	return &Vocab{Name: name, MinCount: minCount, Tokens: tokens}
}

// Size is the number of indices, out-of-vocabulary included.
func (v *Vocab) Size() int { return len(v.Tokens) + 1 }

// Index maps a raw value to its index, 0 when unknown.
func (v *Vocab) Index(tok string) int64 {
	v.once.Do(func() {
		v.index = make(map[string]int64, len(v.Tokens))
		for i, t := range v.Tokens {
			v.index[t] = int64(i + 1)
		}
	})
	return v.index[tok]
}

// indexOf maps every code of d to its index: through the codes counted
// when d is the dictionary they were counted on and has no string since.
func (v *Vocab) indexOf(d *Dict) []int32 {
	if d == v.from && len(d.Strings) == len(v.codes) {
		return v.codes
	}
	m := make([]int32, len(d.Strings))
	for code, str := range d.Strings {
		m[code] = int32(v.Index(str))
	}
	return m
}

// Token maps an index back to the raw value ("" for 0 or out of range).
func (v *Vocab) Token(i int64) string {
	if i < 1 || int(i) > len(v.Tokens) {
		return ""
	}
	return v.Tokens[i-1]
}

type vocabJSON struct {
	Name     string   `json:"name"`
	MinCount int      `json:"min_count"`
	Tokens   []string `json:"tokens"`
}

// MarshalJSON writes the name, min count and tokens in index order.
func (v *Vocab) MarshalJSON() ([]byte, error) {
	return json.Marshal(vocabJSON{v.Name, v.MinCount, v.Tokens})
}

// UnmarshalJSON restores a vocabulary written by MarshalJSON.
func (v *Vocab) UnmarshalJSON(b []byte) error {
	var j vocabJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	v.Name, v.MinCount, v.Tokens = j.Name, j.MinCount, j.Tokens
	if hasDuplicates(j.Tokens) {
		return fmt.Errorf("vocab %q: duplicate tokens", j.Name)
	}
	return nil
}

// hasDuplicates reports whether a token repeats, with a set of 8-byte
// hashes (a tenth of a map of the tokens; a shared hash is checked exactly).
func hasDuplicates(tokens []string) bool {
	seed := maphash.MakeSeed()
	seen := make(map[uint64]int32, len(tokens))
	for i, t := range tokens {
		h := maphash.String(seed, t)
		if j, ok := seen[h]; ok && tokens[j] == t {
			return true
		}
		seen[h] = int32(i)
	}
	return false
}

// Vocabs is everything needed to map raw data as training did: the
// scenarios in id order, a Vocab per categorical field, and the names of the
// numeric and label fields. It is saved with a model.
type Vocabs struct {
	Scenarios []ScenarioInfo `json:"scenarios"`
	Fields    []*Vocab       `json:"fields"`
	Numeric   []string       `json:"numeric"`
	Labels    []string       `json:"labels"`

	schema *Schema
}

// Schema returns the schema of tables encoded with v (one shared value,
// built on first use; BuildVocabs and LoadVocabs build it before returning).
func (v *Vocabs) Schema() *Schema {
	if v.schema == nil {
		s := &Schema{Scenarios: v.Scenarios, Numeric: v.Numeric, Labels: v.Labels}
		for _, f := range v.Fields {
			s.Categorical = append(s.Categorical, f.Name)
		}
		v.schema = s
	}
	return v.schema
}

// Sizes returns Size() of each field's vocabulary, in schema order.
func (v *Vocabs) Sizes() []int {
	out := make([]int, len(v.Fields))
	for i, f := range v.Fields {
		out[i] = f.Size()
	}
	return out
}

// ScenarioIndex returns the id of a scenario name.
func (v *Vocabs) ScenarioIndex(name string) (int, bool) {
	for i, s := range v.Scenarios {
		if s.Name == name {
			return i, true
		}
	}
	return 0, false
}

// Save writes v as indented JSON.
func (v *Vocabs) Save(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(v)
}

// LoadVocabs reads vocabularies written by Save.
func LoadVocabs(r io.Reader) (*Vocabs, error) {
	var v Vocabs
	if err := json.NewDecoder(r).Decode(&v); err != nil {
		return nil, fmt.Errorf("load vocabs: %w", err)
	}
	if len(v.Fields) < 2 || len(v.Labels) < 1 || len(v.Scenarios) < 1 {
		return nil, fmt.Errorf("load vocabs: need scenarios, user and item fields and a label")
	}
	v.Schema() // built now, so later concurrent readers only read it
	return &v, nil
}

// BuildVocabs counts the values of each categorical field over rows of raw
// (all rows when rows is nil) and keeps those seen at least minCount times,
// most frequent first (ties by value), so the result does not depend on row
// order. Scenarios come from fixed when given (their order is the id order),
// otherwise from the scenarios seen in rows, in natural order.
func BuildVocabs(raw *Raw, rows []int32, minCount int, fixed []ScenarioInfo) *Vocabs {
	minCount = max(minCount, 1)
	v := &Vocabs{Numeric: raw.numNames(), Labels: raw.labelNames()}
	forRows := func(f func(int32)) {
		if rows == nil {
			for i := range int32(raw.Len()) {
				f(i)
			}
			return
		}
		for _, i := range rows {
			f(i)
		}
	}
	for _, c := range raw.Cat {
		counts := make([]int32, len(c.Dict.Strings))
		forRows(func(i int32) { counts[c.Codes[i]]++ })
		voc := NewVocab(c.Name, minCount, nil)
		voc.Tokens, voc.codes = keepFrequent(c.Dict.Strings, counts, minCount)
		voc.from = c.Dict
		v.Fields = append(v.Fields, voc)
	}
	seen := make([]bool, len(raw.Scenario.Dict.Strings))
	forRows(func(i int32) { seen[raw.Scenario.Codes[i]] = true })
	var names []string
	for code, ok := range seen {
		if ok {
			names = append(names, raw.Scenario.Dict.Strings[code])
		}
	}
	v.Scenarios = scenarioList(names, fixed, raw.Descriptions)
	v.Schema()
	return v
}

// scenarioList is fixed when given, else the names seen in natural order
// with their descriptions.
func scenarioList(seen []string, fixed []ScenarioInfo, desc map[string]string) []ScenarioInfo {
	if len(fixed) > 0 {
		return slices.Clone(fixed)
	}
	seen = slices.Clone(seen)
	slices.SortFunc(seen, naturalCompare)
	out := make([]ScenarioInfo, len(seen))
	for i, n := range seen {
		out[i] = ScenarioInfo{Name: n, Description: desc[n]}
	}
	return out
}

// keepFrequent returns the values seen at least minCount times, most
// frequent first (ties by value), and each code's index among them (0 for
// those left out). Codes are sorted by count as integers, then each run
// of equal counts by value, the runs on GOMAXPROCS goroutines: at millions
// of ids, comparing strings is most of the work.
func keepFrequent[N int | int32](strs []string, counts []N, minCount int) ([]string, []int32) {
	var keys []uint64                         // count (descending) above code
	for code := 1; code < len(strs); code++ { // code 0 is the empty value
		if c := int(counts[code]); c >= minCount {
			keys = append(keys, uint64(math.MaxUint32-uint32(min(c, math.MaxUint32)))<<32|uint64(code))
		}
	}
	slices.Sort(keys)
	idx := make([]int32, len(keys))
	for i, k := range keys {
		idx[i] = int32(uint32(k))
	}
	var runs [][]int32
	for start := 0; start < len(keys); {
		end := start + 1
		for end < len(keys) && keys[end]>>32 == keys[start]>>32 {
			end++
		}
		if end-start > 1 {
			runs = append(runs, idx[start:end])
		}
		start = end
	}
	byValue := func(a, b int32) int { return cmp.Compare(strs[a], strs[b]) }
	var wg sync.WaitGroup
	next := make(chan []int32)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for run := range next {
				slices.SortFunc(run, byValue)
			}
		})
	}
	for _, run := range runs {
		next <- run
	}
	close(next)
	wg.Wait()
	out := make([]string, len(idx))
	codes := make([]int32, len(strs))
	for i, code := range idx {
		out[i] = strs[code]
		codes[code] = int32(i + 1)
	}
	return out, codes
}

// naturalCompare orders integers numerically and everything else as text,
// so scenarios "1".."10" keep their numeric order.
func naturalCompare(a, b string) int {
	ia, ea := parseInt(a)
	ib, eb := parseInt(b)
	switch {
	case ea == nil && eb == nil:
		return cmp.Compare(ia, ib)
	case ea == nil:
		return -1
	case eb == nil:
		return 1
	}
	return cmp.Compare(a, b)
}

// Encode maps every row of raw with v. A scenario that v does not know is an
// error naming the file and line of its first row; other unknown values map
// to index 0. Fields of v missing from raw are an error; raw without label
// columns (predict data) gets labels 0.
func Encode(raw *Raw, v *Vocabs) (*Table, error) {
	return encodeRows(raw, allRows(raw.Len()), v)
}

// encodeRows maps the given rows of raw (none when rows is empty) with v.
func encodeRows(raw *Raw, rows []int32, v *Vocabs) (*Table, error) {
	ts, err := encodeParts(raw, [][]int32{rows}, v, false)
	if err != nil {
		return nil, err
	}
	return ts[0], nil
}

// encodeParts maps each list of rows of raw with v, column by column.
// With free, each column of raw that the tables do not read back is
// dropped once every table has it: the Raw and the tables it fills are
// never both whole in memory (see Raw.compact).
func encodeParts(raw *Raw, parts [][]int32, v *Vocabs, free bool) ([]*Table, error) {
	s := v.Schema()
	nc, nl := len(s.Categorical), len(s.Labels)
	ts := make([]*Table, len(parts))
	for p, rows := range parts {
		ts[p] = &Table{Schema: s, Scenario: make([]int32, len(rows)), Source: raw, SourceRow: rows}
	}
	// Scenario: raw code -> id, -1 when unknown.
	scen := make([]int32, len(raw.Scenario.Dict.Strings))
	for code, name := range raw.Scenario.Dict.Strings {
		id, ok := v.ScenarioIndex(name)
		scen[code] = int32(id)
		if !ok {
			scen[code] = -1
		}
	}
	for p, rows := range parts {
		for r, i := range rows {
			id := scen[raw.Scenario.Codes[i]]
			if id < 0 {
				return nil, raw.errAt(int(i), raw.Scenario.Name, raw.Scenario.Dict.Strings[raw.Scenario.Codes[i]], ErrUnknownScenario)
			}
			ts[p].Scenario[r] = id
		}
	}
	for p, rows := range parts {
		ts[p].Cat = make([]int32, len(rows)*nc)
	}
	for f, voc := range v.Fields {
		col := findCat(raw.Cat, voc.Name)
		if col == nil {
			return nil, fmt.Errorf("%s: categorical field %q: %w", rawName(raw), voc.Name, ErrMissingColumn)
		}
		m := voc.indexOf(col.Dict)
		for p, rows := range parts {
			cat := ts[p].Cat
			inParallel(len(rows), func(lo, hi int) {
				for r := lo; r < hi; r++ {
					cat[r*nc+f] = m[col.Codes[rows[r]]]
				}
			})
		}
		if free && f >= 2 { // user and item codes stay: raw ids
			col.Codes = nil
		}
	}
	floats := func(cols []*NumColumn, names []string, get func(*Table) *[]float32) error {
		for p, rows := range parts {
			*get(ts[p]) = make([]float32, len(rows)*len(names))
		}
		for f, name := range names {
			col := findNum(cols, name)
			if col == nil {
				return fmt.Errorf("%s: field %q: %w", rawName(raw), name, ErrMissingColumn)
			}
			for p, rows := range parts {
				dst := *get(ts[p])
				for r, i := range rows {
					dst[r*len(names)+f] = col.Values[i]
				}
			}
			if free {
				col.Values = nil
			}
		}
		return nil
	}
	if err := floats(raw.Num, s.Numeric, func(t *Table) *[]float32 { return &t.Num }); err != nil {
		return nil, err
	}
	if len(raw.Labels) == 0 { // predict data without labels: 0
		for p, rows := range parts {
			ts[p].Label = make([]float32, len(rows)*nl)
		}
	} else if err := floats(raw.Labels, s.Labels, func(t *Table) *[]float32 { return &t.Label }); err != nil {
		return nil, err
	}
	if raw.Time != nil {
		for p, rows := range parts {
			t := make([]int64, len(rows))
			for r, i := range rows {
				t[r] = raw.Time[i]
			}
			ts[p].Time = t
		}
	}
	if free {
		raw.compact()
	}
	return ts, nil
}

// inParallel calls f on GOMAXPROCS parts of [0, n) at once (large n only).
func inParallel(n int, f func(lo, hi int)) {
	w := runtime.GOMAXPROCS(0)
	if n < 1<<16 || w == 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for k := range w {
		wg.Go(func() { f(n*k/w, n*(k+1)/w) })
	}
	wg.Wait()
}

func rawName(raw *Raw) string {
	if len(raw.Files) == 0 {
		return "data"
	}
	return raw.Files[0]
}

func findCat(cs []*CatColumn, name string) *CatColumn {
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func findNum(cs []*NumColumn, name string) *NumColumn {
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	return nil
}
