package data

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// Sniffed is what SniffCSV guessed about a delimited file: the reading
// options and each column's role, every guess with the reason for it, and
// the data config they make.
type Sniffed struct {
	Path       string // as given
	Delimiter  byte
	DelimWhy   string
	Header     bool
	HeaderWhy  string
	Rows       int // data rows sampled
	SampledAll bool
	Columns    []SniffedColumn
	Notes      []string // what could not be guessed
	Config     Config   // the data config of the guesses
}

// SniffedColumn is one column of a sniffed file.
type SniffedColumn struct {
	Index    int
	Name     string // the header's name, or col<i> without a header
	Kind     ColumnKind
	Distinct int // distinct non-empty values in the sample
	Empty    int // empty cells in the sample
	Values   []string
	Ones     float64 // binary columns: share of 1s
	Role     ColumnRole
	ByName   bool // the role was guessed from the column's name
	FreeText bool // text that reads as prose: no feature
	Why      string
}

// ColumnRole is what a sniffed column is used as: its key under data.columns.
type ColumnRole string

// The roles SniffCSV gives columns; RoleNone leaves a column out.
const (
	RoleNone         ColumnRole = ""
	RoleScenario     ColumnRole = "scenario"
	RoleUser         ColumnRole = "user"
	RoleItem         ColumnRole = "item"
	RoleLabel        ColumnRole = "label"
	RoleRating       ColumnRole = "rating" // a label through a threshold
	RoleTime         ColumnRole = "time"
	RoleItemTitle    ColumnRole = "item_title"
	RoleItemCategory ColumnRole = "item_category"
	RoleCategorical  ColumnRole = "categorical"
	RoleNumeric      ColumnRole = "numeric"
)

// ColumnKind is what a column's values look like.
type ColumnKind string

// The column kinds SniffCSV tells apart.
const (
	KindEmpty   ColumnKind = "empty"
	KindBinary  ColumnKind = "0/1"
	KindInteger ColumnKind = "integers"
	KindNumber  ColumnKind = "numbers"
	KindDate    ColumnKind = "dates"
	KindText    ColumnKind = "text"
)

// sniffRows is how many data rows SniffCSV looks at.
const sniffRows = 20000

// Words in a column's name that suggest its role; a name matches when one
// of its words (split at _, -, spaces, dots and case changes) is listed.
var roleWords = []struct {
	role  ColumnRole
	words []string
}{
	{RoleScenario, []string{"scenario", "scene", "domain", "channel", "surface", "tab", "page", "slot", "placement", "section", "platform", "site", "app", "market", "pid", "entrance"}},
	{RoleUser, []string{"user", "uid", "userid", "customer", "member", "reader", "visitor", "viewer", "buyer", "account", "client", "person", "listener", "player"}},
	{RoleItem, []string{"item", "iid", "itemid", "product", "asin", "sku", "movie", "book", "song", "track", "video", "ad", "article", "doc", "post", "goods", "offer", "listing", "poi", "news", "mid", "course", "game"}},
	{RoleLabel, []string{"label", "click", "clicked", "clk", "target", "y", "conversion", "converted", "purchase", "purchased", "buy", "bought", "like", "liked", "watched", "outcome", "response", "is_click", "finish", "follow"}},
	{RoleRating, []string{"rating", "ratings", "stars", "star", "overall", "score"}},
	{RoleTime, []string{"time", "timestamp", "ts", "date", "datetime", "when", "created", "at"}},
	{RoleItemTitle, []string{"title", "headline", "caption"}},
	{RoleItemCategory, []string{"category", "categories", "genre", "cate", "cat", "categoryid"}},
}

// notEventTime are words that make a date-named column something other
// than the interaction's time (a user's join date, a birthday).
// A time cut into bins or zones is a categorical feature rather than the time.
var notEventTime = []string{"join", "joined", "birth", "birthday", "register", "registered", "signup", "release", "published", "born", "bin", "bucket", "zone", "duration", "spent"}

// SniffCSV reads the start of a CSV or TSV file and guesses how to read it:
// the delimiter, whether the first line is a header, each column's kind and
// the likely scenario, user, item and label columns (by name first, then by
// content). It reads at most sniffRows rows with the same scanner as the
// csv reader, quoted fields and a byte-order mark included.
func SniffCSV(path string) (*Sniffed, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	head := make([]byte, 1<<16)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	head = head[:n]
	if len(bytes.TrimSpace(bytes.TrimPrefix(head, []byte(utf8BOM)))) == 0 {
		return nil, &RowError{File: path, Line: 1, Err: ErrEmptyFile}
	}
	s := &Sniffed{Path: path}
	s.Delimiter, s.DelimWhy = sniffDelimiter(path, head, n == len(head) && n == 1<<16)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	sc := newScanner(path, f, s.Delimiter)
	var records [][]string
	for len(records) <= sniffRows {
		ok, err := sc.scan()
		if err != nil {
			return nil, err
		}
		if !ok {
			s.SampledAll = true
			break
		}
		rec := make([]string, len(sc.fields))
		for i, b := range sc.fields {
			rec[i] = string(b)
		}
		records = append(records, rec)
	}
	if len(records) > sniffRows {
		records = records[:sniffRows]
	}
	s.Header, s.HeaderWhy = sniffHeader(records)
	names := records[0]
	if s.Header {
		records = records[1:]
	} else {
		names = make([]string, len(records[0]))
		for i := range names {
			names[i] = "col" + strconv.Itoa(i)
		}
	}
	if len(records) == 0 {
		return nil, &RowError{File: path, Line: 2, Err: ErrEmptyFile}
	}
	s.Rows = len(records)
	for i, name := range names {
		s.Columns = append(s.Columns, describeColumn(i, name, records))
	}
	s.assignRoles()
	s.Config = s.config()
	return s, nil
}

// sniffDelimiter picks the candidate that splits the first lines into the
// same number of fields (more than one), the most fields on a tie; .tsv
// files are tab-separated unless their lines say otherwise.
func sniffDelimiter(path string, head []byte, truncated bool) (byte, string) {
	type option struct {
		delim  byte
		fields int
		lines  int
		same   bool
	}
	var best *option
	for _, d := range []byte{',', '\t', ';', '|'} {
		sc := newScanner(path, bytes.NewReader(head), d)
		var counts []int
		for len(counts) < 50 {
			ok, err := sc.scan()
			if err != nil || !ok {
				break
			}
			counts = append(counts, len(sc.fields))
		}
		if truncated && len(counts) > 1 {
			counts = counts[:len(counts)-1] // the sample may cut the last line
		}
		if len(counts) == 0 {
			continue
		}
		o := option{delim: d, fields: counts[0], lines: len(counts), same: true}
		for _, c := range counts {
			o.same = o.same && c == counts[0]
		}
		if o.fields < 2 || !o.same {
			continue
		}
		if best == nil || o.fields > best.fields || (o.fields == best.fields && d == '\t' && strings.HasSuffix(path, ".tsv")) {
			best = &o
		}
	}
	if best == nil {
		if strings.HasSuffix(path, ".tsv") {
			return '\t', "the .tsv name (no delimiter splits every line alike)"
		}
		return ',', "the default (no delimiter splits every line into the same number of fields)"
	}
	return best.delim, fmt.Sprintf("%d fields on each of the first %d lines", best.fields, best.lines)
}

// sniffHeader decides whether the first record names the columns: names
// are never numbers, and a header is likely when a column that is numeric
// below starts with text, or when no first value recurs in its column.
func sniffHeader(records [][]string) (bool, string) {
	first := records[0]
	rest := records[1:]
	for i, v := range first {
		if isNumber(v) || len(rest) == 0 {
			continue
		}
		numeric := 0
		for _, r := range rest {
			if i < len(r) && isNumber(r[i]) {
				numeric++
			}
		}
		if numeric*10 >= len(rest)*9 {
			return true, fmt.Sprintf("column %d is numbers below a first line of text (%q)", i+1, v)
		}
	}
	for _, v := range first {
		if isNumber(v) {
			return false, fmt.Sprintf("the first line holds a number (%q) in a column of text or numbers alike", v)
		}
		if v == "" {
			return false, "the first line has an empty field, which a column name would not be"
		}
	}
	if len(rest) == 0 {
		return true, "the first line is all text"
	}
	for i, v := range first {
		for _, r := range rest {
			if i < len(r) && r[i] == v {
				return false, fmt.Sprintf("the first line's %q recurs below it in the same column, as data does", v)
			}
		}
	}
	return true, "no value of the first line recurs in its column"
}

func isNumber(v string) bool {
	_, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	return err == nil
}

func isInteger(v string) bool {
	_, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	return err == nil
}

// describeColumn finds the kind and the distinct values of column i.
func describeColumn(i int, name string, records [][]string) SniffedColumn {
	c := SniffedColumn{Index: i, Name: name}
	seen := map[string]int{}
	ints, nums, dates, ones, spaces, long := 0, 0, 0, 0, 0, 0
	for _, r := range records {
		if i >= len(r) || r[i] == "" {
			c.Empty++
			continue
		}
		v := r[i]
		seen[v]++
		switch {
		case isInteger(v):
			ints++
			nums++
		case isNumber(v):
			nums++
		default:
			if _, err := parseTime([]byte(v)); err == nil {
				dates++
			}
		}
		if v == "1" {
			ones++
		}
		if strings.ContainsRune(v, ' ') {
			spaces++
		}
		if len(v) > 40 {
			long++
		}
	}
	filled := len(records) - c.Empty
	c.Distinct = len(seen)
	for v := range seen {
		c.Values = append(c.Values, v)
	}
	slices.SortFunc(c.Values, func(a, b string) int {
		if seen[a] != seen[b] {
			return seen[b] - seen[a]
		}
		return naturalCompare(a, b)
	})
	switch {
	case filled == 0:
		c.Kind = KindEmpty
	case ints == filled && len(seen) <= 2 && allIn(seen, "0", "1"):
		c.Kind = KindBinary
		c.Ones = float64(ones) / float64(filled)
	case ints == filled:
		c.Kind = KindInteger
	case nums == filled:
		c.Kind = KindNumber
	case dates == filled:
		c.Kind = KindDate
	default:
		c.Kind = KindText
		if (spaces*2 > filled && c.Distinct*2 > filled) || long*2 > filled {
			c.FreeText, c.Why = true, "free text"
		}
	}
	return c
}

func allIn(seen map[string]int, values ...string) bool {
	for v := range seen {
		if !slices.Contains(values, v) {
			return false
		}
	}
	return true
}

// nameWords splits a column name into lower-case words at _, -, spaces,
// dots and lower-to-upper case changes (userId → user, id).
func nameWords(name string) []string {
	var words []string
	var cur []rune
	prevLower := false
	flush := func() {
		if len(cur) > 0 {
			words = append(words, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	for _, r := range name {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			flush()
			prevLower = false
			continue
		case unicode.IsUpper(r) && prevLower:
			flush()
		}
		cur = append(cur, r)
		prevLower = unicode.IsLower(r)
	}
	flush()
	if len(words) > 1 { // "user_id" also as one word, "userid"
		words = append(words, strings.Join(words, ""))
	}
	return words
}

// nameSays returns the role the column's name suggests, or "".
func nameSays(name string) ColumnRole {
	words := nameWords(name)
	for _, rw := range roleWords {
		for _, w := range words {
			if slices.Contains(rw.words, w) {
				return rw.role
			}
		}
	}
	return RoleNone
}

// assignRoles gives each column a role: by name first, then by content.
func (s *Sniffed) assignRoles() {
	free := func(c *SniffedColumn) bool { return c.Role == RoleNone && c.Kind != KindEmpty && !c.FreeText }
	take := func(role ColumnRole, pick func(c *SniffedColumn) bool, why func(c *SniffedColumn) string) *SniffedColumn {
		for i := range s.Columns {
			c := &s.Columns[i]
			if free(c) && pick(c) {
				c.Role, c.Why = role, why(c)
				return c
			}
		}
		return nil
	}
	byName := func(role ColumnRole, fits func(c *SniffedColumn) bool) *SniffedColumn {
		c := take(role, func(c *SniffedColumn) bool { return nameSays(c.Name) == role && fits(c) },
			func(c *SniffedColumn) string { return "guess, by its name" })
		if c != nil {
			c.ByName = true
		}
		return c
	}
	anyKind := func(*SniffedColumn) bool { return true }
	idLike := func(c *SniffedColumn) bool {
		return c.Kind == KindInteger || c.Kind == KindText || c.Kind == KindBinary
	}
	label := byName(RoleLabel, func(c *SniffedColumn) bool { return c.Kind == KindBinary })
	if label == nil {
		label = take(RoleLabel, func(c *SniffedColumn) bool {
			says := nameSays(c.Name)
			return c.Kind == KindBinary && (says == "" || says == RoleRating)
		}, func(c *SniffedColumn) string { return "guess, by content: the only values are 0 and 1" })
	}
	if label == nil {
		label = byName(RoleRating, func(c *SniffedColumn) bool { return c.Kind == KindInteger || c.Kind == KindNumber })
		if label != nil {
			label.Why = "guess, by its name: a rating, so the label is rating > 3 (change the threshold to suit)"
		}
	}
	if label == nil {
		s.Notes = append(s.Notes, "no column looks like a 0/1 label: set columns.labels (with threshold: for a rating)")
	}
	// Other outcomes (a purchase beside a click) would leak the label as
	// features: they go to labels too, after the one trained.
	for label != nil {
		if byName(RoleLabel, func(c *SniffedColumn) bool { return c.Kind == KindBinary }) == nil {
			break
		}
	}
	for i := range s.Columns {
		if c := &s.Columns[i]; c.Role == RoleLabel && c != label && c.ByName {
			c.Why = "another outcome, by its name: kept out of the features (labels[0] is the one trained)"
		}
	}
	for _, role := range []ColumnRole{RoleScenario, RoleUser, RoleItem} {
		byName(role, idLike)
	}
	take(RoleTime, func(c *SniffedColumn) bool {
		return nameSays(c.Name) == RoleTime && (c.Kind == KindDate || c.Kind == KindInteger || c.Kind == KindNumber) && !hasWord(c.Name, notEventTime)
	}, func(*SniffedColumn) string {
		return "guess, by its name: when the interaction happened (for split.method: time)"
	})
	byName(RoleItemTitle, func(c *SniffedColumn) bool { return c.Kind == KindText })
	for i := range s.Columns {
		if c := &s.Columns[i]; c.Role == RoleNone && c.FreeText && nameSays(c.Name) == RoleItemTitle && s.role(RoleItemTitle) == nil {
			c.Role, c.Why, c.ByName = RoleItemTitle, "guess, by its name", true
		}
	}
	byName(RoleItemCategory, anyKind)
	if s.role(RoleScenario) == nil {
		// Few values, each with a real share of the rows: the scenarios.
		var best *SniffedColumn
		for i := range s.Columns {
			c := &s.Columns[i]
			if free(c) && (c.Kind == KindText || c.Kind == KindInteger) && c.Distinct >= 2 && c.Distinct <= 32 && c.Distinct*20 <= s.Rows &&
				(best == nil || c.Distinct < best.Distinct || (c.Kind == KindText && best.Kind != KindText && c.Distinct == best.Distinct)) {
				best = c
			}
		}
		if best != nil {
			best.Role, best.Why = RoleScenario, "guess, by content: few distinct values"
		} else {
			s.Notes = append(s.Notes, "no column looks like the scenario: set columns.scenario (a column with one value per scenario)")
		}
	}
	for _, role := range []ColumnRole{RoleUser, RoleItem} {
		if s.role(role) != nil {
			continue
		}
		// Ids: the most distinct values among the remaining id-like columns.
		var best *SniffedColumn
		for i := range s.Columns {
			c := &s.Columns[i]
			if free(c) && (c.Kind == KindInteger || c.Kind == KindText) && (best == nil || c.Distinct > best.Distinct) {
				best = c
			}
		}
		if best == nil {
			s.Notes = append(s.Notes, fmt.Sprintf("no column is left for the %s id: set columns.%s", role, role))
			continue
		}
		best.Role, best.Why = role, "guess, by content: the most distinct values of the columns left"
	}
	if s.role(RoleUser) != nil && s.role(RoleItem) != nil && !s.role(RoleUser).ByName && !s.role(RoleItem).ByName &&
		s.role(RoleItem).Index < s.role(RoleUser).Index {
		u, it := s.role(RoleUser), s.role(RoleItem)
		u.Role, it.Role = RoleItem, RoleUser // files list the user before the item
	}
	for i := range s.Columns {
		c := &s.Columns[i]
		if !free(c) {
			continue
		}
		switch c.Kind {
		case KindNumber:
			c.Role = RoleNumeric
		case KindDate:
			c.Why = "dates other than the interaction's time are left out"
		case KindInteger:
			c.Role = RoleCategorical
			if c.Distinct > 1000 && !hasWord(c.Name, []string{"id"}) {
				c.Role, c.Why = RoleNumeric, "many values: a quantity, not ids?"
			}
		default:
			c.Role = RoleCategorical
		}
	}
}

func hasWord(name string, words []string) bool {
	for _, w := range nameWords(name) {
		if slices.Contains(words, w) {
			return true
		}
	}
	return false
}

// role is the column given role, or nil.
func (s *Sniffed) role(role ColumnRole) *SniffedColumn {
	for i := range s.Columns {
		if s.Columns[i].Role == role {
			return &s.Columns[i]
		}
	}
	return nil
}

// ref selects column c by name, or by position without a header or where
// the header repeats its name.
func (s *Sniffed) ref(c *SniffedColumn) ColumnRef {
	switch {
	case !s.Header:
		return ColAt(c.Index, "")
	case s.repeated(c.Name):
		return ColAt(c.Index, fmt.Sprintf("%s_%d", c.Name, c.Index))
	}
	return Col(c.Name)
}

// repeated reports whether the header has name more than once.
func (s *Sniffed) repeated(name string) bool {
	n := 0
	for _, c := range s.Columns {
		if c.Name == name {
			n++
		}
	}
	return n > 1
}

// delimiterText is the delimiter as data.delimiter spells it.
func (s *Sniffed) delimiterText() string {
	if s.Delimiter == '\t' {
		return "tab"
	}
	return string(s.Delimiter)
}

// config is the data config of the guesses.
func (s *Sniffed) config() Config {
	cfg := Config{Format: FormatCSV, Path: s.Path, Delimiter: s.delimiterText()}
	header := s.Header
	cfg.Header = &header
	cols := &cfg.Columns
	three := 3.0
	for i := range s.Columns {
		c := &s.Columns[i]
		r := s.ref(c)
		switch c.Role {
		case RoleScenario:
			cols.Scenario = r
		case RoleUser:
			cols.User = r
		case RoleItem:
			cols.Item = r
		case RoleLabel:
			cols.Labels = append(cols.Labels, r)
		case RoleRating:
			r.As, r.Threshold = "like", &three
			cols.Labels = append(cols.Labels, r)
		case RoleTime:
			cols.Time = r
		case RoleItemTitle:
			cols.ItemTitle = r
		case RoleItemCategory:
			cols.ItemCategory = r
			cols.Categorical = append(cols.Categorical, r)
		case RoleCategorical:
			cols.Categorical = append(cols.Categorical, r)
		case RoleNumeric:
			cols.Numeric = append(cols.Numeric, r)
		}
	}
	return cfg
}

// WriteYAML writes the data section of a run config for the guesses, each
// guess with a comment saying what it rests on; path is how the config
// names the file (relative to the config's own directory, or absolute).
func (s *Sniffed) WriteYAML(w io.Writer, path string) error {
	var b strings.Builder
	line := func(indent int, text, comment string) {
		l := strings.Repeat("  ", indent) + text
		if comment != "" {
			l += strings.Repeat(" ", max(1, 36-len(l))) + "# " + comment
		}
		b.WriteString(l + "\n")
	}
	line(0, "data:", "")
	line(1, "format: csv", "")
	line(1, "path: "+yamlScalar(path), "relative to this file")
	line(1, "delimiter: "+yamlScalar(s.delimiterText()), "guess: "+s.DelimWhy)
	line(1, fmt.Sprintf("header: %v", s.Header), "guess: "+s.HeaderWhy)
	line(1, "columns:", "")
	refText := func(c *SniffedColumn) string {
		r := s.ref(c)
		switch {
		case r.Index == nil:
			return yamlScalar(r.Name)
		case r.As != "":
			return fmt.Sprintf("{index: %d, as: %s}", *r.Index, yamlScalar(r.As))
		}
		return strconv.Itoa(*r.Index)
	}
	for _, role := range []ColumnRole{RoleScenario, RoleUser, RoleItem} {
		if c := s.role(role); c != nil {
			line(2, string(role)+": "+refText(c), joinComment(c.Why, s.describe(c)))
		} else {
			line(2, "# "+string(role)+": ?", "not found: name the column")
		}
	}
	list := func(key string, roles ...ColumnRole) {
		var cs []*SniffedColumn
		for i := range s.Columns {
			if slices.Contains(roles, s.Columns[i].Role) {
				cs = append(cs, &s.Columns[i])
			}
		}
		if len(cs) == 0 {
			line(2, key+": []", "none found")
			return
		}
		line(2, key+":", "")
		for _, c := range cs {
			text := refText(c)
			if r := s.ref(c); c.Role == RoleRating && r.As == "" {
				text = fmt.Sprintf("{%s: %s, as: like, threshold: 3}", map[bool]string{true: "name", false: "index"}[r.Index == nil], text)
			}
			line(3, "- "+text, joinComment(c.Why, s.describe(c)))
		}
	}
	list("categorical", RoleCategorical, RoleItemCategory)
	list("numeric", RoleNumeric)
	list("labels", RoleLabel, RoleRating)
	for _, role := range []ColumnRole{RoleTime, RoleItemTitle, RoleItemCategory} {
		if c := s.role(role); c != nil {
			line(2, string(role)+": "+refText(c), c.Why)
		}
	}
	var left []string
	for _, c := range s.Columns {
		if c.Role == RoleNone {
			why := c.Why
			if why == "" {
				why = string(c.Kind)
			}
			left = append(left, fmt.Sprintf("%s (%s)", c.Name, why))
		}
	}
	if len(left) > 0 {
		line(1, "# left out: "+strings.Join(left, ", "), "")
	}
	if sc := s.role(RoleScenario); sc != nil && sc.Distinct <= 32 {
		line(1, "# scenarios:", "optional: what each scenario is, for LLM4MSR's scenario prompts")
		for _, v := range sc.Values {
			line(1, fmt.Sprintf("#   - {name: %s, description: \"\"}", yamlScalar(v)), "")
		}
	}
	for _, n := range s.Notes {
		line(0, "# TODO: "+n, "")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func joinComment(parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p != "" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, "; ")
}

// describe says what a column holds, for its comment.
func (s *Sniffed) describe(c *SniffedColumn) string {
	switch c.Kind {
	case KindBinary:
		return fmt.Sprintf("0/1, %.0f%% ones", 100*c.Ones)
	}
	d := fmt.Sprintf("%s, %d distinct in %d rows", c.Kind, c.Distinct, s.Rows)
	if c.Distinct <= 8 && len(c.Values) > 0 {
		d += " (" + strings.Join(c.Values, ", ") + ")"
	}
	return d
}

// yamlScalar writes s as a YAML scalar that reads back as the same string
// (quoted when plain text would read as a number, a boolean or syntax).
func yamlScalar(s string) string {
	b, err := yaml.Marshal(s)
	if err != nil {
		return strconv.Quote(s)
	}
	return strings.TrimSuffix(string(b), "\n")
}
