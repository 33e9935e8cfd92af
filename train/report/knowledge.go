package report

import (
	"math"

	"gonum.org/v1/plot/plotter"
)

// Knowledge is the part of a knowledge store the report draws.
type Knowledge struct {
	Store      string
	Encoder    string // encoder and model, as the store records them
	Scenarios  []string
	Similarity [][]float64 // scenario × scenario cosine
	Users      []UserVector
}

// UserVector is one user's knowledge vector and the scenario where the
// user has the most training rows.
type UserVector struct {
	Key          string
	MainScenario string
	Vector       []float32
}

// maxProjected bounds the users drawn in the projection (evenly spaced
// through the list) so a large dataset still gives a readable chart.
const maxProjected = 4000

// Projection projects user vectors on their first two principal
// components and groups the points by main scenario, in the order of
// scenarios. It also returns the share of variance each component explains.
func (k *Knowledge) Projection() ([]Group, [2]float64) {
	users := k.Users
	if len(users) > maxProjected {
		step := float64(len(users)) / maxProjected
		sample := make([]UserVector, maxProjected)
		for i := range sample {
			sample[i] = users[int(float64(i)*step)]
		}
		users = sample
	}
	rows := make([][]float64, len(users))
	for i, u := range users {
		rows[i] = make([]float64, len(u.Vector))
		for j, v := range u.Vector {
			rows[i][j] = float64(v)
		}
	}
	coords, explained := pca2(rows)
	index := map[string]int{}
	groups := make([]Group, len(k.Scenarios))
	for i, s := range k.Scenarios {
		index[s], groups[i].Name = i, s
	}
	for i, u := range users {
		g, ok := index[u.MainScenario]
		if !ok {
			g = len(groups)
			index[u.MainScenario] = g
			groups = append(groups, Group{Name: u.MainScenario})
		}
		groups[g].XY = append(groups[g].XY, plotter.XY{X: coords[i][0], Y: coords[i][1]})
	}
	return groups, explained
}

// pca2 centres rows and projects them on the two leading eigenvectors of
// their covariance, found by power iteration with deflation (the
// dimension is the knowledge vector's, so the d×d covariance is small).
func pca2(rows [][]float64) ([][2]float64, [2]float64) {
	out := make([][2]float64, len(rows))
	if len(rows) == 0 {
		return out, [2]float64{}
	}
	d := len(rows[0])
	mean := make([]float64, d)
	for _, r := range rows {
		for j, v := range r {
			mean[j] += v / float64(len(rows))
		}
	}
	cov := make([][]float64, d)
	for i := range cov {
		cov[i] = make([]float64, d)
	}
	for _, r := range rows {
		for i := range d {
			ci := r[i] - mean[i]
			for j := i; j < d; j++ {
				cov[i][j] += ci * (r[j] - mean[j])
			}
		}
	}
	var trace float64
	for i := range d {
		for j := i; j < d; j++ {
			cov[j][i] = cov[i][j]
		}
		trace += cov[i][i]
	}
	var explained [2]float64
	for c := range 2 {
		v, lambda := powerIteration(cov)
		if trace > 0 {
			explained[c] = lambda / trace
		}
		for i, r := range rows {
			var s float64
			for j := range d {
				s += (r[j] - mean[j]) * v[j]
			}
			out[i][c] = s
		}
		for i := range d { // deflate: remove the component found
			for j := range d {
				cov[i][j] -= lambda * v[i] * v[j]
			}
		}
	}
	return out, explained
}

// powerIteration returns the leading eigenvector of the symmetric matrix a
// (sign fixed so its largest entry is positive) and its eigenvalue.
func powerIteration(a [][]float64) ([]float64, float64) {
	d := len(a)
	v := make([]float64, d)
	for i := range v {
		v[i] = 1 / math.Sqrt(float64(d)) * (1 + 0.01*float64(i)) // not orthogonal to any axis
	}
	var lambda float64
	next := make([]float64, d)
	for range 500 {
		for i := range d {
			next[i] = 0
			for j := range d {
				next[i] += a[i][j] * v[j]
			}
		}
		norm := math.Sqrt(dot(next, next))
		if norm == 0 {
			return v, 0
		}
		for i := range next {
			next[i] /= norm
		}
		delta := 0.0
		for i := range v {
			delta = math.Max(delta, math.Abs(next[i]-v[i]))
		}
		copy(v, next)
		lambda = norm
		if delta < 1e-10 {
			break
		}
	}
	big := 0
	for i := range v {
		if math.Abs(v[i]) > math.Abs(v[big]) {
			big = i
		}
	}
	if v[big] < 0 {
		for j := range v {
			v[j] = -v[j]
		}
	}
	return v, lambda
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}
