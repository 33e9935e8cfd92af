package report

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Chart is a rendered PNG with what the page says about it and what it
// draws.
type Chart struct {
	Title string
	Alt   string
	PNG   []byte
	Spec  ChartSpec
}

// ChartSpec is what a chart draws, read from the plot as it is rendered,
// so that tests check the chart rather than its pixels.
type ChartSpec struct {
	XLabel, YLabel string
	XMin, XMax     float64
	YMin, YMax     float64
	XTicks, YTicks []Tick   // the labelled ones
	Series         []Legend // in legend order
	ColorBar       *ColorBar
}

// Tick is one labelled axis tick.
type Tick struct {
	Value float64
	Label string
}

// Legend is one series as the legend shows it.
type Legend struct {
	Name   string
	Color  color.Color
	Dashed bool
}

// ColorBar is the value range a heatmap's colour scale spans.
type ColorBar struct{ Min, Max float64 }

// SeriesColor is the colour of the named series; nil when the chart has none.
func (s ChartSpec) SeriesColor(name string) color.Color {
	for _, l := range s.Series {
		if l.Name == name {
			return l.Color
		}
	}
	return nil
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

// Series is one line of a line chart, with an optional band (a
// confidence interval) from Low to High at each X.
type Series struct {
	Name      string
	X, Y      []float64
	Low, High []float64 // nil: no band
	Color     color.Color
	Dash      bool
	Thick     bool
}

// Marker is a vertical line at X with a label, e.g. the best epoch.
type Marker struct {
	X     float64
	Label string
}

// chart is a plot being built and the legend entries it records for its spec.
type chart struct {
	*plot.Plot
	legend []Legend
}

// newChart makes a plot with axis labels and a light grid.
func newChart(xLabel, yLabel string) *chart {
	p := plot.New()
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	p.Add(gridLines())
	return &chart{Plot: p}
}

func (c *chart) addLegend(name string, col color.Color, dashed bool, thumb plot.Thumbnailer) {
	c.Legend.Add(name, thumb)
	c.legend = append(c.legend, Legend{Name: name, Color: col, Dashed: dashed})
}

// render draws the chart into a PNG of the given size and records its spec.
func (c *chart) render(title string, w, h vg.Length) (Chart, error) {
	return renderWith(c, title, w, h, nil, func(dc draw.Canvas) { c.Draw(dc) })
}

func renderWith(c *chart, title string, w, h vg.Length, bar *ColorBar, drawOn func(draw.Canvas)) (Chart, error) {
	c.Title.Text = title
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(chartDPI), vgimg.UseBackgroundColor(color.White))
	drawOn(draw.New(img)) // settles the axes' ranges
	var b bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&b); err != nil {
		return Chart{}, fmt.Errorf("chart %q: %w", title, err)
	}
	spec := ChartSpec{
		XLabel: c.X.Label.Text, YLabel: c.Y.Label.Text,
		XMin: c.X.Min, XMax: c.X.Max, YMin: c.Y.Min, YMax: c.Y.Max,
		XTicks: labelled(c.X), YTicks: labelled(c.Y),
		Series: c.legend, ColorBar: bar,
	}
	return Chart{Title: title, PNG: b.Bytes(), Spec: spec}, nil
}

func labelled(a plot.Axis) []Tick {
	var out []Tick
	for _, t := range a.Tick.Marker.Ticks(a.Min, a.Max) {
		if t.Label != "" && t.Value >= a.Min && t.Value <= a.Max {
			out = append(out, Tick{Value: t.Value, Label: t.Label})
		}
	}
	return out
}

func gridLines() *plotter.Grid {
	g := plotter.NewGrid()
	g.Vertical.Color = color.Gray{Y: 225}
	g.Horizontal.Color = color.Gray{Y: 225}
	g.Vertical.Width = vg.Points(1)
	g.Horizontal.Width = vg.Points(1)
	return g
}

// colorOr is c, or the i-th default colour when c is nil.
func colorOr(c color.Color, i int) color.Color {
	if c != nil {
		return c
	}
	return plotutil.Color(i)
}

// LineOptions shape a line chart's axes.
type LineOptions struct {
	// YFrom starts the y axis at a value that means something (0 for a
	// loss, the chance level 0.5 for an AUC) below the data; NaN starts it
	// at the data.
	YFrom float64
	// IntegerX labels whole numbers only on the x axis (epochs).
	IntegerX bool
}

// LineChart draws series over x with optional vertical markers.
func LineChart(title, xLabel, yLabel string, series []Series, markers []Marker, o LineOptions) (Chart, error) {
	p := newChart(xLabel, yLabel)
	p.Legend.Top = true
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for i, s := range series {
		if len(s.X) == 0 {
			continue
		}
		col := colorOr(s.Color, i)
		xy := make(plotter.XYs, len(s.X))
		for j := range s.X {
			xy[j].X, xy[j].Y = s.X[j], s.Y[j]
			xmin, xmax = math.Min(xmin, s.X[j]), math.Max(xmax, s.X[j])
			ymin, ymax = math.Min(ymin, s.Y[j]), math.Max(ymax, s.Y[j])
		}
		if s.Low != nil {
			band, err := bandPolygon(s, col)
			if err != nil {
				return Chart{}, fmt.Errorf("chart %q: series %q: %w", title, s.Name, err)
			}
			p.Add(band)
			for j := range s.Low {
				ymin, ymax = math.Min(ymin, s.Low[j]), math.Max(ymax, s.High[j])
			}
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return Chart{}, fmt.Errorf("chart %q: series %q: %w", title, s.Name, err)
		}
		l.Color = col
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
			sc.GlyphStyle.Color = col
			sc.GlyphStyle.Radius = vg.Points(2.2)
			sc.GlyphStyle.Shape = draw.CircleGlyph{}
			p.Add(sc)
		}
		if s.Name != "" {
			p.addLegend(s.Name, col, s.Dash, l)
		}
	}
	if !math.IsNaN(o.YFrom) && !math.IsInf(ymin, 0) {
		ymin = math.Min(ymin, o.YFrom)
	}
	for _, m := range markers {
		if !math.IsInf(ymin, 0) {
			addMarker(p.Plot, m, ymin, ymax, m.X > (xmin+xmax)/2)
		}
	}
	if o.IntegerX {
		p.X.Tick.Marker = integerTicks{}
		if xmin == xmax { // one epoch: keep it in the middle, not at an edge
			p.X.Min, p.X.Max = xmin-0.5, xmax+0.5
		}
	}
	legendRoom(p.Plot, ymin, ymax, len(p.legend))
	return p.render(title, wideWidth, chartHeight)
}

// bandPolygon is the filled area between a series' Low and High.
func bandPolygon(s Series, col color.Color) (*plotter.Polygon, error) {
	var ring plotter.XYs
	for j := range s.X {
		ring = append(ring, plotter.XY{X: s.X[j], Y: s.Low[j]})
	}
	for j := len(s.X) - 1; j >= 0; j-- {
		ring = append(ring, plotter.XY{X: s.X[j], Y: s.High[j]})
	}
	band, err := plotter.NewPolygon(ring)
	if err != nil {
		return nil, err
	}
	r, g, b, _ := col.RGBA()
	band.Color = color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: 0x30}
	band.LineStyle.Width = 0
	return band, nil
}

// integerTicks labels whole numbers only, at most about ten of them, at a
// step of 1, 2 or 5 times a power of ten.
type integerTicks struct{}

func (integerTicks) Ticks(min, max float64) []plot.Tick {
	lo, hi := math.Ceil(min), math.Floor(max)
	step := 1.0
	for i := 0; (hi-lo)/step > 10; i++ {
		step = []float64{2, 5, 10}[i%3] * math.Pow(10, float64(i/3))
	}
	var out []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		out = append(out, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', 0, 64)})
	}
	return out
}

// roundTicks labels 4 to 8 round values: a step of 1, 2, 2.5 or 5 times a
// power of ten (gonum's default labels as few as two on a short axis).
type roundTicks struct{}

func (roundTicks) Ticks(lo, hi float64) []plot.Tick {
	span := hi - lo
	if !(span > 0) || math.IsInf(span, 0) {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	unit := math.Pow(10, math.Floor(math.Log10(span/8)))
	step := 10 * unit
	for _, m := range []float64{1, 2, 2.5, 5} {
		if span/(m*unit) <= 8 {
			step = m * unit
			break
		}
	}
	decimals := max(0, int(-math.Floor(math.Log10(step)+1e-9)))
	if math.Abs(step/math.Pow(10, math.Floor(math.Log10(step)+1e-9))-2.5) < 1e-9 {
		decimals++ // 0.25 needs one digit more than 0.2
	}
	var out []plot.Tick
	for i := math.Ceil(lo/step - 1e-9); i*step <= hi+step*1e-9; i++ {
		v := i*step + 0 // no -0
		out = append(out, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', decimals, 64)})
	}
	return out
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

// legendRoom lowers the y axis to ymin and raises its top so that a
// legend of n entries in the top corner sits above the data rather than on it.
func legendRoom(p *plot.Plot, ymin, ymax float64, n int) {
	if math.IsInf(ymin, 0) {
		return
	}
	span := ymax - ymin
	if span == 0 { // a constant: show it from zero
		ymin, span = math.Min(0, ymax), math.Max(math.Abs(ymax), 1e-9)
	}
	p.Y.Min = math.Min(p.Y.Min, ymin)
	p.Y.Max = ymax + span*math.Min(0.09*float64(n), 1.2)
}

// Bars is one series of a grouped bar chart: one value per group (NaN: no
// bar), with an optional interval from Low to High drawn as a whisker.
type Bars struct {
	Name      string
	Values    []float64
	Low, High []float64 // nil: no whiskers; NaN: none for that group
	Color     color.Color
}

// BarOptions shape a bar chart.
type BarOptions struct {
	// Base is where bars start, a value that means something: 0 for a
	// probability, the chance level 0.5 for an AUC (a worse AUC grows
	// down from it). The value axis always includes it.
	Base float64
	// Horizontal lays groups out top to bottom, the first at the top,
	// with room for long group labels.
	Horizontal bool
}

// BarChart draws one cluster of bars per group, one bar per series.
func BarChart(title, valueLabel string, groups []string, series []Bars, o BarOptions) (Chart, error) {
	p := newChart("", valueLabel)
	if o.Horizontal {
		p = newChart(valueLabel, "")
	}
	p.Legend.Top = true
	p.Legend.Left = !o.Horizontal
	n := len(series)
	// A cluster takes three quarters of its group's share of the axis.
	axisLen := float64(wideWidth) * 0.85
	if o.Horizontal {
		axisLen = float64(barChartHeight(len(groups), n)) * 0.8
	}
	width := vg.Length(0.75 * axisLen / float64(max(len(groups), 1)) / float64(max(n, 1)))
	lo, hi := o.Base, o.Base
	for i, s := range series {
		col := colorOr(s.Color, i)
		bs := &barSeries{values: s.Values, low: s.Low, high: s.High, base: o.Base, width: width,
			offset: width * vg.Length(float64(i)-float64(n-1)/2), color: col, horizontal: o.Horizontal, groups: len(groups)}
		if o.Horizontal { // the first series on top within its group
			bs.offset = -bs.offset
		}
		vlo, vhi := bs.valueRange()
		lo, hi = math.Min(lo, vlo), math.Max(hi, vhi)
		p.Add(bs)
		p.addLegend(s.Name, col, false, bs)
	}
	if o.Horizontal {
		names := make([]string, len(groups))
		for i, g := range groups {
			names[len(groups)-1-i] = g
		}
		p.NominalY(names...)
		p.X.Tick.Marker = roundTicks{}
		p.Y.Min, p.Y.Max = -0.5, float64(len(groups))-0.5
		// The legend needs room at the value axis's far end.
		p.X.Min, p.X.Max = lo, hi+(hi-lo)*0.3
		return p.render(title, wideWidth, barChartHeight(len(groups), n))
	}
	p.NominalX(groups...)
	p.Y.Tick.Marker = roundTicks{}
	p.X.Min, p.X.Max = -0.5, float64(len(groups))-0.5 // whole clusters, clear of the axes
	legendRoom(p.Plot, lo, hi, len(series))
	return p.render(title, wideWidth, chartHeight)
}

// barChartHeight gives a horizontal bar chart room for every bar.
func barChartHeight(groups, series int) vg.Length {
	return max(chartHeight, vg.Inch*(0.9+0.16*vg.Length(groups*max(series, 1))+0.12*vg.Length(groups)))
}

// barSeries draws one series of a grouped bar chart from a base value,
// with whiskers: gonum's bar chart grows bars from 0 and its error bars
// cannot follow a bar's offset within its group.
type barSeries struct {
	values, low, high []float64
	base              float64
	width, offset     vg.Length
	color             color.Color
	horizontal        bool
	groups            int
}

func (b *barSeries) valueRange() (lo, hi float64) {
	lo, hi = b.base, b.base
	for i, v := range b.values {
		if math.IsNaN(v) {
			continue
		}
		lo, hi = math.Min(lo, v), math.Max(hi, v)
		if b.low != nil && !math.IsNaN(b.low[i]) {
			lo, hi = math.Min(lo, b.low[i]), math.Max(hi, b.high[i])
		}
	}
	return lo, hi
}

// at is the page point of value v in group i at offset d across the group.
func (b *barSeries) at(trX, trY func(float64) vg.Length, i int, v float64, d vg.Length) vg.Point {
	if b.horizontal {
		return vg.Point{X: trX(v), Y: trY(float64(b.groups-1-i)) + b.offset + d}
	}
	return vg.Point{X: trX(float64(i)) + b.offset + d, Y: trY(v)}
}

func (b *barSeries) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	whisker := draw.LineStyle{Color: color.Black, Width: vg.Points(1.2)}
	half, capHalf := b.width/2, b.width/6
	for i, v := range b.values {
		if math.IsNaN(v) {
			continue
		}
		c.FillPolygon(b.color, c.ClipPolygonXY([]vg.Point{
			b.at(trX, trY, i, b.base, -half), b.at(trX, trY, i, b.base, half),
			b.at(trX, trY, i, v, half), b.at(trX, trY, i, v, -half),
		}))
		if b.low == nil || math.IsNaN(b.low[i]) {
			continue
		}
		lo, hi := b.at(trX, trY, i, b.low[i], 0), b.at(trX, trY, i, b.high[i], 0)
		c.StrokeLines(whisker, c.ClipLinesXY([]vg.Point{lo, hi})...)
		for _, end := range []float64{b.low[i], b.high[i]} {
			c.StrokeLines(whisker, c.ClipLinesXY([]vg.Point{b.at(trX, trY, i, end, -capHalf), b.at(trX, trY, i, end, capHalf)})...)
		}
	}
}

func (b *barSeries) DataRange() (xmin, xmax, ymin, ymax float64) {
	lo, hi := b.valueRange()
	if b.horizontal {
		return lo, hi, 0, float64(b.groups - 1)
	}
	return 0, float64(b.groups - 1), lo, hi
}

// Thumbnail draws the legend's swatch.
func (b *barSeries) Thumbnail(c *draw.Canvas) {
	c.FillPolygon(b.color, []vg.Point{c.Min, {X: c.Max.X, Y: c.Min.Y}, c.Max, {X: c.Min.X, Y: c.Max.Y}})
}

// Heatmap draws a square matrix of values in [-1, 1] (cosines) with its
// row and column names, each cell's value written in it, and a colour bar.
// The scale is fixed, so that colours compare across runs and white means 0.
func Heatmap(title string, names []string, m [][]float64) (Chart, error) {
	n := len(names)
	if n == 0 {
		return Chart{}, fmt.Errorf("chart %q: no rows", title)
	}
	const lo, hi = -1.0, 1.0
	p := newChart("", "")
	p.HideAxes()
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.ConstantTicks(nil), plot.ConstantTicks(nil)
	scale := moreland.SmoothBlueRed()
	scale.SetMin(lo)
	scale.SetMax(hi)
	hm := plotter.NewHeatMap(matrixGrid{m: m}, scale.Palette(255))
	hm.Min, hm.Max = lo, hi
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
		if math.Abs(m[i/n][i%n]) > 0.6 { // dark cells
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

	// The colour bar: a narrow plot of its own on the right.
	bar := plot.New()
	bar.Add(&plotter.ColorBar{ColorMap: scale, Vertical: true})
	bar.HideX()
	bar.Y.Label.Text = "cosine"
	bar.Y.Min, bar.Y.Max = lo, hi
	bar.Y.Tick.Marker = plot.ConstantTicks([]plot.Tick{{Value: -1, Label: "-1"}, {Value: -0.5, Label: "-0.5"}, {Value: 0, Label: "0"}, {Value: 0.5, Label: "0.5"}, {Value: 1, Label: "1"}})
	const barWidth = 0.85 * vg.Inch
	return renderWith(p, title, narrowWidth*1.25, chartHeight*1.25, &ColorBar{Min: lo, Max: hi}, func(dc draw.Canvas) {
		p.Draw(draw.Crop(dc, 0, -barWidth, 0, 0))
		// Level with the matrix: below the title, above the column names.
		bar.Draw(draw.Crop(dc, dc.Max.X-dc.Min.X-barWidth+vg.Points(14), -vg.Points(8), vg.Inch*0.55, -vg.Inch*0.35))
	})
}

// matrixGrid shows m[r][c] with row 0 at the top.
type matrixGrid struct{ m [][]float64 }

func (g matrixGrid) Dims() (c, r int)   { return len(g.m), len(g.m) }
func (g matrixGrid) Z(c, r int) float64 { return g.m[len(g.m)-1-r][c] }
func (g matrixGrid) X(c int) float64    { return float64(c) }
func (g matrixGrid) Y(r int) float64    { return float64(r) }

// Group is one coloured class of points in a scatter chart.
type Group struct {
	Name  string
	XY    plotter.XYs
	Color color.Color
}

// Scatter draws points coloured by group.
func Scatter(title, xLabel, yLabel string, groups []Group, diagonal bool) (Chart, error) {
	p := newChart(xLabel, yLabel)
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
			p.addLegend("perfectly calibrated", d.Color, true, d)
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
		col := colorOr(g.Color, i)
		sc.GlyphStyle.Color = col
		sc.GlyphStyle.Radius = radius
		sc.GlyphStyle.Shape = shapes[i%len(shapes)]
		p.Add(sc)
		p.addLegend(g.Name, col, false, sc)
		for _, xy := range g.XY {
			ylo, yhi = math.Min(ylo, xy.Y), math.Max(yhi, xy.Y)
		}
	}
	legendRoom(p.Plot, ylo, yhi, len(p.legend))
	return p.render(title, narrowWidth*1.25, chartHeight*1.25)
}
