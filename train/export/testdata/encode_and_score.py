"""Encodes raw CSV rows with nothing but an exported directory's
features.json and vocabularies.json, scores them with torch.jit.load, and
writes one probability a line: what a serving team's Python would do (the
Python half of train/export's test).

Usage: /usr/bin/python3 encode_and_score.py EXPORTED_DIR ROWS.csv SCORES.txt

The CSV names its columns as the fields do, the scenario's column "scenario".
"""
import csv
import json
import os
import sys

import torch


def main(exported, rows_path, out_path):
    features = json.load(open(os.path.join(exported, "features.json")))
    vocab = json.load(open(os.path.join(exported, features["vocabularies_file"])))
    index = {}
    for field in features["categorical"]:
        index[field["name"]] = {token: i + 1 for i, token in enumerate(vocab["fields"][field["name"]])}
    scenarios = {s["name"]: s["index"] for s in features["scenarios"]}
    knowledge = features["user_knowledge"]

    cat, num, scenario, knowledge_row = [], [], [], []
    for row in csv.DictReader(open(rows_path, newline="")):
        codes = [index[f["name"]].get(row[f["name"]], 0) for f in features["categorical"]]
        cat.append(codes)
        num.append([float(row[f["name"]]) for f in features["numeric"]])
        scenario.append(scenarios[row["scenario"]])
        if knowledge["used"]:
            knowledge_row.append(vocab["user_knowledge_row"][codes[knowledge["column"]]])
        else:
            knowledge_row.append(knowledge["missing_row"])

    extra = {"features.json": ""}
    model = torch.jit.load(os.path.join(exported, "model.pt"), _extra_files=extra)
    model.eval()
    assert json.loads(extra["features.json"]) == features, "model.pt's features.json differs from the file"
    state = model.state_dict()
    for name in ("embedding.weight", "meta.knowledge.scenario", "meta.user.fallback"):
        assert name in state, name + " missing from the state dict: " + ", ".join(sorted(state)[:10])
    rows = len(cat)
    with torch.no_grad():
        p = model(torch.tensor(cat, dtype=torch.int64).view(rows, -1),
                  torch.tensor(num, dtype=torch.float32).view(rows, len(features["numeric"])),
                  torch.tensor(scenario, dtype=torch.int64),
                  torch.tensor(knowledge_row, dtype=torch.int64))
    with open(out_path, "w") as f:
        for v in p.tolist():
            f.write(repr(v) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
