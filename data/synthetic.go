package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// Synthetic sizes the generated dataset. Zero values take the defaults
// (250k rows, 200k for training), small enough to train in minutes on a
// laptop's CPU.
//
// # The generative model
//
// There are S scenarios, C item categories and D latent dimensions.
//
//   - Scenario correlation. R is an S×S correlation matrix (default: 0.8
//     between scenarios 2k and 2k+1, 0.1 otherwise) with Cholesky factor L.
//   - Users. Each user u draws S independent standard normal vectors e_t
//     (dimension D) and scalars η_t. Their interest vector in scenario s is
//     z_us = Σ_t L[s,t]·e_t and their click propensity a_us = Σ_t L[s,t]·η_t,
//     so for any two scenarios s, t the interests and propensities of the
//     same user have correlation exactly R[s,t]: tastes carry across
//     correlated scenarios and not across the others. A user is present in
//     scenario s with probability Presence[s] (1 for scenario 0) and has an
//     activity weight drawn log-normally.
//   - Items. Category k has a centre c_k ~ N(0, I_D). Each scenario owns
//     ItemsPerScenario items; scenario s prefers some categories (weights
//     exp(N(0,1))), an item of category k has vector v_i = c_k + 0.5·N(0, I_D),
//     a Zipf(1) popularity, and a bias q_i ~ N(0, 0.3²).
//   - Impressions. A row picks scenario s with probability Share[s], a user
//     present in s by activity weight, and an item of s by popularity. Its
//     time is spread evenly over 30 days in row order.
//   - Clicks. P(click) = σ(β_s·z_us·v_i/√D + 0.8·a_us + q_i + logit(CTR_s)),
//     where CTR_s and the interest strength β_s are properties of the
//     scenario. TrueProb keeps this probability for every row.
//
// Text is written from the same latent structure, so a text encoder can
// recover part of it: each scenario description states its click rate, how
// much interests matter, its frequent categories and which scenarios share
// its users' tastes; each user's text names the categories their average
// interest z̄_u = mean_s z_us likes most and least, how often they click
// (mean a_us) and the scenario where they click most. Item titles name the
// category.
//
// Features: categorical user_id, item_id, item_category, user_segment (the
// category the user likes most, a coarse hint); numeric
// item_pop (log popularity) and user_activity (log activity weight);
// label click.
type Synthetic struct {
	Scenarios        int         `yaml:"scenarios"`          // S, default 3
	Users            int         `yaml:"users"`              // default 20000
	ItemsPerScenario int         `yaml:"items_per_scenario"` // default 3000
	Categories       int         `yaml:"categories"`         // C, default 12
	Dim              int         `yaml:"dim"`                // D, default 8
	Rows             int         `yaml:"rows"`               // default 250000
	Correlation      [][]float64 `yaml:"correlation"`        // R, default block 0.8/0.1
	Share            []float64   `yaml:"share"`              // row share per scenario, default 0.5, 0.3, 0.2, ...
	Presence         []float64   `yaml:"presence"`           // default 1, 0.7, 0.5, 0.6, ...
	CTR              []float64   `yaml:"ctr"`                // base click rate, default 0.30, 0.20, 0.40, 0.15, ...
	Strength         []float64   `yaml:"strength"`           // β, default 1.5, 1.0, 2.0, 0.8, ...
}

var (
	synthScenarioNames = []string{"video", "search", "shop", "news", "music", "books", "live", "games"}
	synthScenarioWhat  = []string{
		"a feed of short videos that users scroll through",
		"results shown for a query the user typed",
		"product recommendations in an online store",
		"news articles on the home page",
		"songs suggested for the next play",
		"book recommendations in a reading app",
		"live streams to join",
		"mini games to try",
	}
	synthCategoryNames = []string{"sci-fi", "history", "cooking", "sports", "travel", "music",
		"comedy", "science", "fashion", "gaming", "finance", "pets", "art", "health", "politics", "cars"}
)

func cycle(vals []float64, i int) float64 { return vals[i%len(vals)] }

func (c *Synthetic) fillDefaults() {
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&c.Scenarios, 3)
	def(&c.Users, 20000)
	def(&c.ItemsPerScenario, 3000)
	def(&c.Categories, 12)
	def(&c.Dim, 8)
	def(&c.Rows, 250000)
	S := c.Scenarios
	if len(c.Correlation) == 0 {
		c.Correlation = make([][]float64, S)
		for s := range S {
			c.Correlation[s] = make([]float64, S)
			for t := range S {
				switch {
				case s == t:
					c.Correlation[s][t] = 1
				case s/2 == t/2:
					c.Correlation[s][t] = 0.8
				default:
					c.Correlation[s][t] = 0.1
				}
			}
		}
	}
	fill := func(p *[]float64, f func(s int) float64) {
		if len(*p) == 0 {
			for s := range S {
				*p = append(*p, f(s))
			}
		}
	}
	fill(&c.Share, func(s int) float64 { return cycle([]float64{0.5, 0.3, 0.2, 0.15}, s) })
	fill(&c.Presence, func(s int) float64 { return cycle([]float64{1, 0.7, 0.5, 0.6}, s) })
	fill(&c.CTR, func(s int) float64 { return cycle([]float64{0.30, 0.20, 0.40, 0.15}, s) })
	fill(&c.Strength, func(s int) float64 { return cycle([]float64{1.5, 1.0, 2.0, 0.8}, s) })
}

func (c *Synthetic) validate() error {
	S := c.Scenarios
	if c.Categories > len(synthCategoryNames) {
		return fmt.Errorf("synthetic: categories %d: at most %d", c.Categories, len(synthCategoryNames))
	}
	if c.Users < 1 || c.ItemsPerScenario < 1 || c.Rows < 1 || c.Dim < 1 {
		return fmt.Errorf("synthetic: users, items_per_scenario, rows and dim must be positive")
	}
	for name, v := range map[string][]float64{"share": c.Share, "presence": c.Presence, "ctr": c.CTR, "strength": c.Strength} {
		if len(v) != S {
			return fmt.Errorf("synthetic: %s has %d values for %d scenarios", name, len(v), S)
		}
	}
	for s := range S {
		if c.CTR[s] <= 0 || c.CTR[s] >= 1 || c.Presence[s] <= 0 || c.Presence[s] > 1 || c.Share[s] < 0 {
			return fmt.Errorf("synthetic: scenario %d: need 0 < ctr < 1, 0 < presence <= 1, share >= 0", s)
		}
	}
	if len(c.Correlation) != S {
		return fmt.Errorf("synthetic: correlation must be %d×%d", S, S)
	}
	for s := range S {
		if len(c.Correlation[s]) != S || c.Correlation[s][s] != 1 {
			return fmt.Errorf("synthetic: correlation must be %d×%d with 1 on the diagonal", S, S)
		}
		for t := range S {
			if c.Correlation[s][t] != c.Correlation[t][s] {
				return fmt.Errorf("synthetic: correlation must be symmetric")
			}
		}
	}
	if _, err := cholesky(c.Correlation); err != nil {
		return err
	}
	return nil
}

// SyntheticData is a generated dataset with its ground truth.
type SyntheticData struct {
	Config     Synthetic
	Raw        *Raw
	Cholesky   [][]float64
	Categories []string // category names, by id
	// UserInterest[u][s] is z_us (length Dim); UserPropensity[u][s] is a_us.
	UserInterest   [][][]float64
	UserPropensity [][]float64
	UserPresent    [][]bool    // [u][s]
	ItemScenario   []int       // by item id
	ItemCategory   []int       // by item id
	ItemVector     [][]float64 // by item id
	ItemBias       []float64   // by item id
	TrueProb       []float32   // by raw row
	RowUser        []int32     // by raw row: user id
	RowItem        []int32     // by raw row: item id
	ScenarioInfo   []ScenarioInfo
}

// TrueProbability is the click probability of user u and item i in
// scenario s under the generative model.
func (d *SyntheticData) TrueProbability(u, i, s int) float64 {
	c := &d.Config
	x := c.Strength[s]*dot(d.UserInterest[u][s], d.ItemVector[i])/math.Sqrt(float64(c.Dim)) + 0.8*d.UserPropensity[u][s] + d.ItemBias[i] + logit(c.CTR[s])
	return sigmoid(x)
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
func logit(p float64) float64   { return math.Log(p / (1 - p)) }

// cholesky factors a symmetric positive-definite matrix.
func cholesky(a [][]float64) ([][]float64, error) {
	n := len(a)
	l := make([][]float64, n)
	for i := range n {
		l[i] = make([]float64, n)
		for j := 0; j <= i; j++ {
			sum := a[i][j]
			for k := range j {
				sum -= l[i][k] * l[j][k]
			}
			if i == j {
				if sum <= 1e-12 {
					return nil, fmt.Errorf("synthetic: correlation matrix is not positive definite")
				}
				l[i][i] = math.Sqrt(sum)
			} else {
				l[i][j] = sum / l[j][j]
			}
		}
	}
	return l, nil
}

// sampler draws indices in proportion to weights (cumulative sums and a
// binary search: O(log n) per draw).
type sampler []float64

func newSampler(w []float64) sampler {
	c := make(sampler, len(w))
	sum := 0.0
	for i, x := range w {
		sum += x
		c[i] = sum
	}
	return c
}

func (c sampler) draw(r *rand.Rand) int {
	x := r.Float64() * c[len(c)-1]
	i, _ := slices.BinarySearch(c, x)
	return min(i, len(c)-1)
}

// Generate builds the synthetic dataset for cfg (defaults filled in) from
// seed. The same (cfg, seed) gives the same data on every machine: the
// phases below draw from one generator in this order.
func Generate(cfg Synthetic, seed int64) (*SyntheticData, error) {
	cfg.fillDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	L, _ := cholesky(cfg.Correlation)
	g := &synthGen{
		cfg: cfg, rng: rand.New(rand.NewPCG(uint64(seed), 0x5eed_da7a)),
		d: &SyntheticData{Config: cfg, Cholesky: L, Categories: synthCategoryNames[:cfg.Categories]},
	}
	g.categories()
	g.items()
	g.users()
	g.d.ScenarioInfo = synthScenarios(&g.cfg, g.catWeight, g.d.Categories)
	raw := g.newRaw()
	g.rows(raw, g.namer(raw))
	g.d.Raw = raw
	return g.d, nil
}

// synthGen is Generate's state from one phase to the next.
type synthGen struct {
	cfg Synthetic
	rng *rand.Rand
	d   *SyntheticData

	centre    [][]float64 // [category] its centre
	catWeight [][]float64 // [scenario][category] preference weights
	catPref   []sampler   // [scenario] draws a category by catWeight

	itemPop      []sampler // [scenario] draws one of its items by popularity
	itemPopValue []float32 // [item] log popularity, the item_pop feature

	activity []float64 // [user] activity weight
	present  [][]int32 // [scenario] the users present in it
	userPick []sampler // [scenario] draws one of present by activity
}

// categories draws the category centres and each scenario's category preferences.
func (g *synthGen) categories() {
	S, C, D := g.cfg.Scenarios, g.cfg.Categories, g.cfg.Dim
	g.centre = make([][]float64, C)
	for k := range C {
		g.centre[k] = normals(g.rng, D)
	}
	g.catPref = make([]sampler, S)
	g.catWeight = make([][]float64, S)
	for s := range S {
		g.catWeight[s] = make([]float64, C)
		for k := range C {
			g.catWeight[s][k] = math.Exp(g.rng.NormFloat64())
		}
		g.catPref[s] = newSampler(g.catWeight[s])
	}
}

// items draws the items, scenario by scenario, with Zipf popularity over a random order.
func (g *synthGen) items() {
	S, D, N := g.cfg.Scenarios, g.cfg.Dim, g.cfg.ItemsPerScenario
	d := g.d
	g.itemPop = make([]sampler, S)
	g.itemPopValue = make([]float32, S*N)
	for s := range S {
		rank := g.rng.Perm(N)
		w := make([]float64, N)
		for j := range N {
			i := len(d.ItemScenario)
			k := g.catPref[s].draw(g.rng)
			v := normals(g.rng, D)
			for x := range v {
				v[x] = g.centre[k][x] + 0.5*v[x]
			}
			d.ItemScenario = append(d.ItemScenario, s)
			d.ItemCategory = append(d.ItemCategory, k)
			d.ItemVector = append(d.ItemVector, v)
			d.ItemBias = append(d.ItemBias, 0.3*g.rng.NormFloat64())
			w[j] = 1 / float64(rank[j]+1)
			g.itemPopValue[i] = float32(-math.Log(float64(rank[j]+1)) / math.Log(float64(N+1)))
		}
		g.itemPop[s] = newSampler(w)
	}
}

// users draws the users' correlated interests and propensities, their
// presence in each scenario and their activity.
func (g *synthGen) users() {
	S, D, U := g.cfg.Scenarios, g.cfg.Dim, g.cfg.Users
	d, L := g.d, g.d.Cholesky
	d.UserInterest = make([][][]float64, U)
	d.UserPropensity = make([][]float64, U)
	d.UserPresent = make([][]bool, U)
	g.activity = make([]float64, U)
	g.present = make([][]int32, S)
	presentW := make([][]float64, S)
	for u := range U {
		e := make([][]float64, S)
		eta := make([]float64, S)
		for t := range S {
			e[t] = normals(g.rng, D)
			eta[t] = g.rng.NormFloat64()
		}
		d.UserInterest[u] = make([][]float64, S)
		d.UserPropensity[u] = make([]float64, S)
		d.UserPresent[u] = make([]bool, S)
		g.activity[u] = math.Exp(0.8 * g.rng.NormFloat64())
		for s := range S {
			z := make([]float64, D)
			a := 0.0
			for t := 0; t <= s; t++ {
				for x := range D {
					z[x] += L[s][t] * e[t][x]
				}
				a += L[s][t] * eta[t]
			}
			d.UserInterest[u][s], d.UserPropensity[u][s] = z, a
			if s == 0 || g.rng.Float64() < g.cfg.Presence[s] {
				d.UserPresent[u][s] = true
				g.present[s] = append(g.present[s], int32(u))
				presentW[s] = append(presentW[s], g.activity[u])
			}
		}
	}
	g.userPick = make([]sampler, S)
	for s := range S {
		if len(g.present[s]) == 0 { // tiny configs: make sure someone is there
			g.present[s], presentW[s] = []int32{0}, []float64{1}
			d.UserPresent[0][s] = true
		}
		g.userPick[s] = newSampler(presentW[s])
	}
}

// newRaw makes the raw table's columns and the dictionaries known before
// any row: scenarios with their descriptions, categories and segments.
func (g *synthGen) newRaw() *Raw {
	raw := newSyntheticRaw()
	raw.addFile("synthetic")
	for _, sc := range g.d.ScenarioInfo {
		raw.Scenario.Dict.add(sc.Name)
		raw.Descriptions[sc.Name] = sc.Description
	}
	for _, name := range g.d.Categories {
		raw.Cat[2].Dict.add(name)
		raw.Cat[3].Dict.add("likes " + name)
	}
	return raw
}

// synthNamer gives users and items a code, a text and a dictionary entry
// when a row first names them: with millions of them and fewer rows, the
// ones no row names were most of the generator's memory and training never
// sees them.
type synthNamer struct {
	d        *SyntheticData
	raw      *Raw
	catMean  [][]float64 // [category] mean item vector, for the users' texts
	userCode []int32
	segment  []int32 // [user] the category they like most
	itemCode []int32
}

func (g *synthGen) namer(raw *Raw) *synthNamer {
	d := g.d
	n := &synthNamer{d: d, raw: raw, userCode: make([]int32, g.cfg.Users), segment: make([]int32, g.cfg.Users),
		itemCode: make([]int32, len(d.ItemScenario)), catMean: make([][]float64, g.cfg.Categories)}
	for k := range n.catMean {
		n.catMean[k] = make([]float64, g.cfg.Dim)
	}
	catCount := make([]float64, g.cfg.Categories)
	for i, k := range d.ItemCategory {
		catCount[k]++
		for x, v := range d.ItemVector[i] {
			n.catMean[k][x] += v
		}
	}
	for k := range n.catMean {
		for x := range n.catMean[k] {
			n.catMean[k][x] /= max(catCount[k], 1)
		}
	}
	return n
}

func (n *synthNamer) user(u int) int32 {
	if n.userCode[u] == 0 {
		key := "u" + strconv.Itoa(u)
		n.userCode[u] = n.raw.Cat[0].Dict.add(key)
		text, top := synthUserText(n.d, u, n.catMean)
		n.raw.Text.Users[key] = text
		n.segment[u] = int32(top)
	}
	return n.userCode[u]
}

func (n *synthNamer) item(i int) int32 {
	if n.itemCode[i] == 0 {
		key := "i" + strconv.Itoa(i)
		n.itemCode[i] = n.raw.Cat[1].Dict.add(key)
		cat := n.d.Categories[n.d.ItemCategory[i]]
		n.raw.Text.Items[key] = ItemText{
			Title:    fmt.Sprintf("%s %s #%d", cat, synthScenarioNoun(n.d.ItemScenario[i]), i),
			Category: cat,
		}
	}
	return n.itemCode[i]
}

// rows draws the impressions and their clicks into raw.
func (g *synthGen) rows(raw *Raw, names *synthNamer) {
	R, N, d := g.cfg.Rows, g.cfg.ItemsPerScenario, g.d
	for _, c := range raw.Cat {
		c.Codes = make([]int32, R)
	}
	raw.Scenario.Codes = make([]int32, R)
	raw.Num[0].Values = make([]float32, R)
	raw.Num[1].Values = make([]float32, R)
	raw.Labels[0].Values = make([]float32, R)
	raw.Time = make([]int64, R)
	raw.File = make([]uint16, R)
	raw.Line = make([]int32, R)
	d.TrueProb = make([]float32, R)
	d.RowUser = make([]int32, R)
	d.RowItem = make([]int32, R)
	scenPick := newSampler(g.cfg.Share)
	const span = 30 * 24 * 3600
	logAct := make([]float32, len(g.activity))
	for u, a := range g.activity {
		logAct[u] = float32(math.Log(a))
	}
	for r := range R {
		s := scenPick.draw(g.rng)
		u := int(g.present[s][g.userPick[s].draw(g.rng)])
		i := s*N + g.itemPop[s].draw(g.rng)
		p := d.TrueProbability(u, i, s)
		click := float32(0)
		if g.rng.Float64() < p {
			click = 1
		}
		raw.Scenario.Codes[r] = int32(s + 1)
		raw.Cat[0].Codes[r] = names.user(u)
		raw.Cat[1].Codes[r] = names.item(i)
		raw.Cat[2].Codes[r] = int32(d.ItemCategory[i] + 1)
		raw.Cat[3].Codes[r] = names.segment[u] + 1
		raw.Num[0].Values[r] = g.itemPopValue[i]
		raw.Num[1].Values[r] = logAct[u]
		raw.Labels[0].Values[r] = click
		raw.Time[r] = int64(r) * span / int64(R)
		raw.Line[r] = int32(r + 1)
		d.TrueProb[r] = float32(p)
		d.RowUser[r], d.RowItem[r] = int32(u), int32(i)
	}
}

func normals(r *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = r.NormFloat64()
	}
	return v
}

func synthScenarioName(s int) string {
	if s < len(synthScenarioNames) {
		return synthScenarioNames[s]
	}
	return "scenario" + strconv.Itoa(s)
}

var synthScenarioItems = []string{"video", "result", "product", "article", "song", "book", "stream", "game"}

func synthScenarioNoun(s int) string {
	if s < len(synthScenarioItems) {
		return synthScenarioItems[s]
	}
	return "item"
}

// synthScenarios writes each scenario's description from its parameters.
func synthScenarios(c *Synthetic, catWeight [][]float64, cats []string) []ScenarioInfo {
	out := make([]ScenarioInfo, c.Scenarios)
	for s := range c.Scenarios {
		var b strings.Builder
		name := synthScenarioName(s)
		what := "items recommended to users"
		if s < len(synthScenarioWhat) {
			what = synthScenarioWhat[s]
		}
		fmt.Fprintf(&b, "The %s scenario shows %s. About %.0f%% of shown items are clicked. ", name, what, 100*c.CTR[s])
		switch beta := c.Strength[s]; {
		case beta >= 1.5:
			b.WriteString("Clicks depend strongly on the user's interests. ")
		case beta >= 1:
			b.WriteString("Clicks depend moderately on the user's interests. ")
		default:
			b.WriteString("Clicks depend only weakly on the user's interests. ")
		}
		order := make([]int, len(cats))
		for k := range order {
			order[k] = k
		}
		slices.SortStableFunc(order, func(a, b int) int {
			switch {
			case catWeight[s][a] > catWeight[s][b]:
				return -1
			case catWeight[s][a] < catWeight[s][b]:
				return 1
			}
			return 0
		})
		top := make([]string, 0, 3)
		for _, k := range order[:min(3, len(order))] {
			top = append(top, cats[k])
		}
		fmt.Fprintf(&b, "Most items are about %s.", strings.Join(top, ", "))
		for t := range c.Scenarios {
			if t == s {
				continue
			}
			switch r := c.Correlation[s][t]; {
			case r >= 0.6:
				fmt.Fprintf(&b, " Users' tastes here closely match their tastes in %s.", synthScenarioName(t))
			case r >= 0.3:
				fmt.Fprintf(&b, " Users' tastes here partly match their tastes in %s.", synthScenarioName(t))
			default:
				fmt.Fprintf(&b, " Tastes here are unrelated to those in %s.", synthScenarioName(t))
			}
		}
		out[s] = ScenarioInfo{Name: name, Description: b.String()}
	}
	return out
}

// synthUserText describes user u from the mean of their latent interests
// and propensities; it returns the text and the user's favourite category.
func synthUserText(d *SyntheticData, u int, catMean [][]float64) (string, int) {
	c := &d.Config
	S, D := c.Scenarios, c.Dim
	mean := make([]float64, D)
	prop := 0.0
	best, bestProp := 0, math.Inf(-1)
	for s := range S {
		for x := range D {
			mean[x] += d.UserInterest[u][s][x] / float64(S)
		}
		a := d.UserPropensity[u][s]
		prop += a / float64(S)
		if d.UserPresent[u][s] && a > bestProp {
			best, bestProp = s, a
		}
	}
	// Affinity to each category: the dot product with its mean item vector.
	type aff struct {
		k int
		v float64
	}
	affs := make([]aff, len(catMean))
	for k, m := range catMean {
		affs[k] = aff{k, dot(mean, m)}
	}
	slices.SortStableFunc(affs, func(a, b aff) int {
		switch {
		case a.v > b.v:
			return -1
		case a.v < b.v:
			return 1
		}
		return 0
	})
	n := len(affs)
	var b strings.Builder
	fmt.Fprintf(&b, "Enjoys %s and %s; not interested in %s.", d.Categories[affs[0].k], d.Categories[affs[min(1, n-1)].k], d.Categories[affs[n-1].k])
	switch {
	case prop > 0.5:
		b.WriteString(" Clicks often.")
	case prop < -0.5:
		b.WriteString(" Rarely clicks.")
	default:
		b.WriteString(" Clicks now and then.")
	}
	fmt.Fprintf(&b, " Most active in %s.", synthScenarioName(best))
	return b.String(), affs[0].k
}

// newSyntheticRaw is an empty table with the generator's fields.
func newSyntheticRaw() *Raw {
	return newRaw([]string{"user_id", "item_id", "item_category", "user_segment"},
		[]string{"item_pop", "user_activity"}, []string{"click"}, true)
}
