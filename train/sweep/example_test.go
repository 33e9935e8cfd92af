package sweep_test

import (
	"fmt"

	"github.com/msrtrain/msrtrain/train/sweep"
)

func ExampleExpand() {
	spec, err := sweep.ParseSpec([]byte(`
metric: test.overall.auc
seeds: 2
grid:
  model.backbone: [star, mmoe]
  train.lr: [0.001]
`), "sweep.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	trials, err := sweep.Expand(spec)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, t := range trials {
		fmt.Println(t.ID[:7], t.Overrides["model.backbone"], t.Overrides["train.lr"])
	}
	// Output:
	// p000-s1 star 0.001
	// p000-s2 star 0.001
	// p001-s1 mmoe 0.001
	// p001-s2 mmoe 0.001
}
