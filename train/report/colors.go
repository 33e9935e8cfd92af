package report

import (
	"image/color"
	"slices"
)

// Every colour means one thing in every chart of the run and sweep
// reports: a model where a chart compares models, a scenario where it
// compares scenarios. The two sets share no colour, and a model's colour
// never depends on the order it is drawn in. Where a chart compares
// scenarios, the bare backbone is told apart by a dashed line instead.
var (
	// LLM4MSRColor is the model with meta networks.
	LLM4MSRColor color.Color = color.RGBA{R: 0x00, G: 0x72, B: 0xB2, A: 0xFF}
	// BackboneColor is the bare backbone, without meta networks.
	BackboneColor color.Color = color.RGBA{R: 0xD5, G: 0x5E, B: 0x00, A: 0xFF}
	// ObservedColor is what the data says rather than a model: the
	// positive rate, sweep trials.
	ObservedColor color.Color = color.RGBA{R: 0x8C, G: 0x8C, B: 0x8C, A: 0xFF}
	// OverallColor is every scenario together.
	OverallColor color.Color = color.RGBA{A: 0xFF}
)

// scenarioPalette is the Okabe–Ito palette for colour-blind readers,
// without the blue and vermillion the models use, extended with colours far
// from those (the yellow last: it reads worst on white).
var scenarioPalette = []color.Color{
	color.RGBA{R: 0xE6, G: 0x9F, B: 0x00, A: 0xFF}, // orange
	color.RGBA{R: 0x00, G: 0x9E, B: 0x73, A: 0xFF}, // bluish green
	color.RGBA{R: 0xCC, G: 0x79, B: 0xA7, A: 0xFF}, // reddish purple
	color.RGBA{R: 0x56, G: 0xB4, B: 0xE9, A: 0xFF}, // sky blue
	color.RGBA{R: 0x8C, G: 0x56, B: 0x4B, A: 0xFF}, // brown
	color.RGBA{R: 0x7B, G: 0x3F, B: 0xC4, A: 0xFF}, // violet
	color.RGBA{R: 0x9A, G: 0xA1, B: 0x1C, A: 0xFF}, // olive
	color.RGBA{R: 0x17, G: 0xA5, B: 0xA5, A: 0xFF}, // teal
	color.RGBA{R: 0xE0, G: 0xC4, B: 0x2E, A: 0xFF}, // yellow
}

// Overall is the name the reports give every scenario together.
const Overall = "overall"

// ScenarioColors gives each scenario a colour by its place among the names
// sorted, so that the run and sweep reports, which list scenarios in
// different orders, colour a scenario alike; overall is OverallColor.
// Beyond the palette's length colours repeat.
func ScenarioColors(names []string) map[string]color.Color {
	sorted := slices.Clone(names)
	sorted = slices.DeleteFunc(sorted, func(n string) bool { return n == Overall })
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	out := map[string]color.Color{Overall: OverallColor}
	for i, n := range sorted {
		out[n] = scenarioPalette[i%len(scenarioPalette)]
	}
	return out
}

// Color is the model's colour.
func (m Model) Color() color.Color {
	if m.Bare {
		return BackboneColor
	}
	return LLM4MSRColor
}
