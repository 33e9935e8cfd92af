package report

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Chart is a rendered PNG with what the page says about it.
type Chart struct {
	Title string
	Alt   string
	PNG   []byte
}

// Src is the chart as a data: URI, so the page stands alone on disk.
func (c Chart) Src() template.URL {
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(c.PNG))
}

// Chart sizes.
const (
	wideWidth   = 7.2 * vg.Inch
	narrowWidth = 5 * vg.Inch
	chartHeight = 3.3 * vg.Inch
	// Twice the 96 dpi of a CSS inch, so text stays sharp on high-density screens.
	chartDPI = 192
)

func init() {
	// Sans-serif text reads better at chart sizes; msrtrain is the only
	// user of gonum/plot in the process, so the package default is ours to set.
	plot.DefaultFont = font.Font{Typeface: "Liberation", Variant: "Sans"}
	plotter.DefaultFont = plot.DefaultFont
}

// Series is one line of a line chart.
type Series struct {
	Name  string
	X, Y  []float64
	Dash  bool
	Thick bool
}

// Marker is a vertical line at X with a label, e.g. the best epoch.
type Marker struct {
	X     float64
	Label string
}

// render draws p into a PNG of the given size.
func render(p *plot.Plot, title string, w, h vg.Length) (Chart, error) {
	p.Title.Text = title
	c := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(chartDPI), vgimg.UseBackgroundColor(color.White))
	p.Draw(draw.New(c))
	var b bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&b); err != nil {
		return Chart{}, fmt.Errorf("chart %q: %w", title, err)
	}
	return Chart{Title: title, PNG: b.Bytes()}, nil
}

// newPlot makes a plot with axis labels and a light grid.
func newPlot(xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	p.Add(gridLines())
	return p
}

func gridLines() *plotter.Grid {
	g := plotter.NewGrid()
	g.Vertical.Color = color.Gray{Y: 225}
	g.Horizontal.Color = color.Gray{Y: 225}
	g.Vertical.Width = vg.Points(1)
	g.Horizontal.Width = vg.Points(1)
	return g
}

// Color is the i-th series colour, the same across every chart of a page.
func Color(i int) color.Color { return plotutil.Color(i) }

// LineChart draws series over x with optional vertical markers.
func LineChart(title, xLabel, yLabel string, series []Series, markers []Marker) (Chart, error) {
	p := newPlot(xLabel, yLabel)
	p.Legend.Top = true
	for i, s := range series {
		if len(s.X) == 0 {
			continue
		}
		xy := make(plotter.XYs, len(s.X))
		for j := range s.X {
			xy[j].X, xy[j].Y = s.X[j], s.Y[j]
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return Chart{}, fmt.Errorf("chart %q: series %q: %w", title, s.Name, err)
		}
		l.Color = Color(i)
		l.Width = vg.Points(1.5)
		if s.Thick {
			l.Width = vg.Points(3)
		}
		if s.Dash {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		p.Add(l)
		if len(xy) <= 30 { // few points (epochs): show them
			sc, _ := plotter.NewScatter(xy)
			sc.GlyphStyle.Color = Color(i)
			sc.GlyphStyle.Radius = vg.Points(2.2)
			sc.GlyphStyle.Shape = draw.CircleGlyph{}
			p.Add(sc)
		}
		if s.Name != "" {
			p.Legend.Add(s.Name, l)
		}
	}
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for j, y := range s.Y {
			xmin, xmax = math.Min(xmin, s.X[j]), math.Max(xmax, s.X[j])
			ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
		}
	}
	for _, m := range markers {
		if !math.IsInf(ymin, 0) {
			addMarker(p, m, ymin, ymax, m.X > (xmin+xmax)/2)
		}
	}
	legendRoom(p, ymin, ymax, len(series))
	return render(p, title, wideWidth, chartHeight)
}

// addMarker draws a dashed vertical line at m.X from ymin to ymax with its
// label at the top, on the line's left when it is in the right half of the
// chart, so the label stays inside the chart.
func addMarker(p *plot.Plot, m Marker, ymin, ymax float64, labelLeft bool) {
	l, err := plotter.NewLine(plotter.XYs{{X: m.X, Y: ymin}, {X: m.X, Y: ymax}})
	if err != nil {
		return
	}
	l.Color = color.Gray{Y: 90}
	l.Width = vg.Points(1.2)
	l.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
	p.Add(l)
	text, align := " "+m.Label, draw.XLeft
	if labelLeft {
		text, align = m.Label+" ", draw.XRight
	}
	lab, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: m.X, Y: ymax}}, Labels: []string{text}})
	if err == nil {
		for i := range lab.TextStyle {
			lab.TextStyle[i].Color = color.Gray{Y: 60}
			lab.TextStyle[i].XAlign, lab.TextStyle[i].YAlign = align, draw.YTop
		}
		p.Add(lab)
	}
}

// legendRoom raises the top of the y axis so that a legend of n entries in
// the top corner sits above the data rather than on it.
func legendRoom(p *plot.Plot, ymin, ymax float64, n int) {
	if math.IsInf(ymin, 0) || n == 0 {
		return
	}
	span := ymax - ymin
	if span == 0 { // a constant (a fixed learning rate): show it from zero
		ymin, span = math.Min(0, ymax), math.Max(math.Abs(ymax), 1e-9)
	}
	p.Y.Min = math.Min(p.Y.Min, ymin)
	p.Y.Max = ymax + span*math.Min(0.09*float64(n), 1.2)
}

// Bars is one series of a grouped bar chart: one value per group, with an
// optional symmetric error (NaN value: no bar).
type Bars struct {
	Name   string
	Values []float64
	Errors []float64 // nil: no error bars
}

// BarChart draws one cluster of bars per group, one bar per series; yMin,
// when not NaN, starts the y axis there (AUCs live near their upper end).
func BarChart(title, yLabel string, groups []string, series []Bars, yMin float64) (Chart, error) {
	p := newPlot("", yLabel)
	p.Legend.Top = true
	p.Legend.Left = true
	n := len(series)
	// Each group gets an equal share of the plot's width (about 85% of the
	// chart's); its bars fill three quarters of it.
	width := vg.Length(0.75 * 0.85 * float64(wideWidth) / float64(max(len(groups), 1)) / float64(max(n, 1)))
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, s := range series {
		vals := make(plotter.Values, len(groups))
		for g := range groups {
			v := math.NaN()
			if g < len(s.Values) {
				v = s.Values[g]
			}
			if math.IsNaN(v) {
				v = 0 // an undefined metric: no bar (clipped away below yMin)
				if !math.IsNaN(yMin) {
					v = yMin
				}
			} else {
				e := 0.0
				if s.Errors != nil {
					e = s.Errors[g]
				}
				lo, hi = math.Min(lo, v-e), math.Max(hi, v+e)
			}
			vals[g] = v
		}
		bc, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return Chart{}, fmt.Errorf("chart %q: series %q: %w", title, s.Name, err)
		}
		bc.Color = Color(i)
		bc.LineStyle.Width = 0
		bc.Offset = width * vg.Length(float64(i)-float64(n-1)/2)
		p.Add(bc)
		p.Legend.Add(s.Name, bc)
		if s.Errors != nil {
			eb, err := errorBars(vals, s.Errors, float64(bc.Offset), width)
			if err != nil {
				return Chart{}, fmt.Errorf("chart %q: series %q: %w", title, s.Name, err)
			}
			p.Add(eb)
		}
	}
	p.NominalX(groups...)
	p.X.Min, p.X.Max = -0.5, float64(len(groups))-0.5 // whole clusters, clear of the axes
	if !math.IsNaN(yMin) && !math.IsInf(lo, 0) {
		lo = math.Max(yMin, lo-0.35*math.Max(hi-lo, 0.01))
	} else {
		lo = 0
	}
	p.Y.Min = lo
	legendRoom(p, lo, hi, len(series))
	return render(p, title, wideWidth, chartHeight)
}

// errorBars are drawn at each bar's centre: the bar chart shifts bars by an
// offset in page units, which error bars cannot, so they are drawn by a
// small plotter of their own.
func errorBars(vals plotter.Values, errs []float64, offset float64, width vg.Length) (plot.Plotter, error) {
	if err := plotter.CheckFloats(errs...); err != nil {
		return nil, err
	}
	return &shiftedErrorBars{vals: vals, errs: errs, offset: vg.Length(offset), cap: width / 3}, nil
}

type shiftedErrorBars struct {
	vals   plotter.Values
	errs   []float64
	offset vg.Length
	cap    vg.Length
}

func (e *shiftedErrorBars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	ls := draw.LineStyle{Color: color.Black, Width: vg.Points(1.2)}
	for i, v := range e.vals {
		if i >= len(e.errs) || e.errs[i] == 0 {
			continue
		}
		x := trX(float64(i)) + e.offset
		lo, hi := trY(v-e.errs[i]), trY(v+e.errs[i])
		c.StrokeLine2(ls, x, lo, x, hi)
		c.StrokeLine2(ls, x-e.cap/2, lo, x+e.cap/2, lo)
		c.StrokeLine2(ls, x-e.cap/2, hi, x+e.cap/2, hi)
	}
}

func (e *shiftedErrorBars) DataRange() (xmin, xmax, ymin, ymax float64) {
	ymin, ymax = math.Inf(1), math.Inf(-1)
	for i, v := range e.vals {
		ymin, ymax = math.Min(ymin, v-e.errs[i]), math.Max(ymax, v+e.errs[i])
	}
	return 0, float64(len(e.vals) - 1), ymin, ymax
}

// Heatmap draws a square matrix with its row and column names and each
// cell's value written in it.
func Heatmap(title string, names []string, m [][]float64) (Chart, error) {
	n := len(names)
	if n == 0 {
		return Chart{}, fmt.Errorf("chart %q: no rows", title)
	}
	p := newPlot("", "")
	p.HideAxes()
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.ConstantTicks(nil), plot.ConstantTicks(nil)
	g := matrixGrid{m: m}
	pal := moreland.SmoothBlueRed().Palette(255)
	lo, hi := g.Min(), g.Max()
	hm := plotter.NewHeatMap(g, pal)
	hm.Min, hm.Max = math.Min(lo, hi-1e-9), hi
	p.Add(hm)
	var xys plotter.XYs
	var labels []string
	for r := range n {
		for c := range n {
			xys = append(xys, plotter.XY{X: float64(c), Y: float64(n - 1 - r)})
			labels = append(labels, fmt.Sprintf("%.2f", m[r][c]))
		}
	}
	cells, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
	if err != nil {
		return Chart{}, err
	}
	for i := range cells.TextStyle {
		cells.TextStyle[i].XAlign, cells.TextStyle[i].YAlign = draw.XCenter, draw.YCenter
		if v := m[i/n][i%n]; (v-lo)/math.Max(hi-lo, 1e-9) > 0.8 || (v-lo)/math.Max(hi-lo, 1e-9) < 0.2 {
			cells.TextStyle[i].Color = color.White
		}
	}
	p.Add(cells)
	// Names along the left and the bottom, as text in data space, so they
	// sit beside their cells whatever the axes do.
	var nameXY plotter.XYs
	var nameText []string
	for i, name := range names {
		nameXY = append(nameXY, plotter.XY{X: -0.55, Y: float64(n - 1 - i)})
		nameText = append(nameText, name)
	}
	rowNames, _ := plotter.NewLabels(plotter.XYLabels{XYs: nameXY, Labels: nameText})
	for i := range rowNames.TextStyle {
		rowNames.TextStyle[i].XAlign, rowNames.TextStyle[i].YAlign = draw.XRight, draw.YCenter
	}
	p.Add(rowNames)
	nameXY = nil
	for i := range names {
		nameXY = append(nameXY, plotter.XY{X: float64(i), Y: -0.55})
	}
	colNames, _ := plotter.NewLabels(plotter.XYLabels{XYs: nameXY, Labels: append([]string(nil), names...)})
	for i := range colNames.TextStyle {
		colNames.TextStyle[i].XAlign, colNames.TextStyle[i].YAlign = draw.XCenter, draw.YTop
	}
	p.Add(colNames)
	longest := 0
	for _, s := range names {
		longest = max(longest, len(s))
	}
	p.X.Min, p.X.Max = -0.5-0.12*float64(longest), float64(n)-0.5
	p.Y.Min, p.Y.Max = -1.1, float64(n)-0.5
	return render(p, title, narrowWidth*1.25, chartHeight*1.25)
}

// matrixGrid shows m[r][c] with row 0 at the top.
type matrixGrid struct{ m [][]float64 }

func (g matrixGrid) Dims() (c, r int)   { return len(g.m), len(g.m) }
func (g matrixGrid) Z(c, r int) float64 { return g.m[len(g.m)-1-r][c] }
func (g matrixGrid) X(c int) float64    { return float64(c) }
func (g matrixGrid) Y(r int) float64    { return float64(r) }
func (g matrixGrid) Min() float64 {
	v := math.Inf(1)
	for _, row := range g.m {
		for _, x := range row {
			v = math.Min(v, x)
		}
	}
	return v
}
func (g matrixGrid) Max() float64 {
	v := math.Inf(-1)
	for _, row := range g.m {
		for _, x := range row {
			v = math.Max(v, x)
		}
	}
	return v
}

// Group is one coloured class of points in a scatter chart.
type Group struct {
	Name string
	XY   plotter.XYs
}

// Scatter draws points coloured by group.
func Scatter(title, xLabel, yLabel string, groups []Group, diagonal bool) (Chart, error) {
	p := newPlot(xLabel, yLabel)
	p.Legend.Top = true
	if diagonal {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, g := range groups {
			for _, xy := range g.XY {
				lo, hi = math.Min(lo, math.Min(xy.X, xy.Y)), math.Max(hi, math.Max(xy.X, xy.Y))
			}
		}
		if !math.IsInf(lo, 0) {
			pad := math.Max((hi-lo)*0.1, 0.01)
			d, _ := plotter.NewLine(plotter.XYs{{X: lo - pad, Y: lo - pad}, {X: hi + pad, Y: hi + pad}})
			d.Color = color.Gray{Y: 150}
			d.Width = vg.Points(1)
			d.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			p.Add(d)
			p.Legend.Add("perfectly calibrated", d)
		}
	}
	radius := vg.Points(2.2)
	total := 0
	for _, g := range groups {
		total += len(g.XY)
	}
	if total > 500 {
		radius = vg.Points(1.3)
	}
	ylo, yhi := math.Inf(1), math.Inf(-1)
	shapes := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}, draw.PyramidGlyph{}, draw.RingGlyph{}, draw.BoxGlyph{}}
	for i, g := range groups {
		if len(g.XY) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(g.XY)
		if err != nil {
			return Chart{}, fmt.Errorf("chart %q: %s: %w", title, g.Name, err)
		}
		sc.GlyphStyle.Color = Color(i)
		sc.GlyphStyle.Radius = radius
		sc.GlyphStyle.Shape = shapes[i%len(shapes)]
		p.Add(sc)
		p.Legend.Add(g.Name, sc)
		for _, xy := range g.XY {
			ylo, yhi = math.Min(ylo, xy.Y), math.Max(yhi, xy.Y)
		}
	}
	legendRoom(p, ylo, yhi, len(groups)+btoi(diagonal))
	return render(p, title, narrowWidth*1.25, chartHeight*1.25)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
