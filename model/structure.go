package model

import (
	"go.yaml.in/yaml/v3"

	"github.com/msrtrain/msrtrain/data/choice"
)

// Structure picks, for a backbone whose paper and Scenario-Wise-Rec
// (github.com/Xiaopengli1/Scenario-Wise-Rec) build it differently, which of
// the two it follows. The backbone's doc comment says what differs.
type Structure string

// The structures.
const (
	StructurePaper           Structure = "paper"
	StructureScenarioWiseRec Structure = "scenario_wise_rec"
)

// StructureValues are the values of model.epnet.structure and model.m3oe.structure.
var StructureValues = choice.New("structure", StructurePaper, StructureScenarioWiseRec)

// UnmarshalYAML accepts one of StructureValues.
func (s *Structure) UnmarshalYAML(n *yaml.Node) error { return StructureValues.Decode(n, s) }
