"""The Python scoring service a team would write for an exported msrtrain model.

FastAPI + uvicorn, torch.jit.load of the exported model.pt, one forward per
request (no batching across requests): the baseline of msrtrain serve's
load test (loadtest.py). It answers the same API as msrtrain serve:

    POST /v1/score {"rows": [{"scenario": ..., "user_id": ..., ...}, ...]}
      -> {"model": NAME, "scores": [a click probability per row, in order]}
    GET /readyz

Encoding follows the exported directory's features.json and the
vocabularies.json beside it (Encoder below): each categorical value maps
through its field's vocabulary (index 0 when unseen or missing), the scenario
name to its index, and the user to its row of the module's knowledge table
(user_knowledge.missing_row, the learned fallback, when the user has none).

    /usr/bin/python3 pyservice.py --export DIR --port 8081 --threads 1
"""

import argparse
import json
import os
from typing import Any, Dict, List

import torch
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel


class Encoder:
    """Raw request rows -> forward(cat, num, scenario, user_knowledge_row)."""

    def __init__(self, export_dir: str, features: Dict[str, Any]):
        with open(os.path.join(export_dir, features["vocabularies_file"])) as f:
            vocab = json.load(f)
        self.scenarios = {s["name"]: s["index"] for s in features["scenarios"]}
        cat = sorted(features["categorical"], key=lambda c: c["column"])
        self.cat_names = [c["name"] for c in cat]
        self.vocabs = [{tok: i + 1 for i, tok in enumerate(vocab["fields"][name])} for name in self.cat_names]
        self.num_names = [n["name"] for n in sorted(features["numeric"], key=lambda n: n["column"])]
        know = features["user_knowledge"]
        self.user_rows = vocab.get("user_knowledge_row") if know["used"] else None
        self.user_column = know["column"]
        self.missing_row = know["missing_row"]

    @staticmethod
    def text(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise ValueError("want a string or a number")
        return v if isinstance(v, str) else json.dumps(v)

    def encode(self, rows: List[Dict[str, Any]]):
        cat, num, scen, know = [], [], [], []
        for i, row in enumerate(rows):
            try:
                s = self.text(row["scenario"])
                if s not in self.scenarios:
                    raise ValueError(f"unknown scenario {s!r}")
                scen.append(self.scenarios[s])
                idx = [v.get(self.text(row[f]), 0) for v, f in zip(self.vocabs, self.cat_names)]
                cat.append(idx)
                num.append([float(row[f]) for f in self.num_names])
                know.append(self.user_rows[idx[self.user_column]] if self.user_rows else self.missing_row)
            except KeyError as e:
                raise HTTPException(400, f"row {i}: field {e.args[0]!r}: missing")
            except (ValueError, TypeError) as e:
                raise HTTPException(400, f"row {i}: {e}")
        return (
            torch.tensor(cat, dtype=torch.int64),
            torch.tensor(num, dtype=torch.float32).reshape(len(rows), len(self.num_names)),
            torch.tensor(scen, dtype=torch.int64),
            torch.tensor(know, dtype=torch.int64),
        )


class ScoreRequest(BaseModel):
    rows: List[Dict[str, Any]]


def create_app(export_dir: str) -> FastAPI:
    model = torch.jit.load(os.path.join(export_dir, "model.pt"))
    model.eval()
    with open(os.path.join(export_dir, "features.json")) as f:
        encoder = Encoder(export_dir, json.load(f))
    name = os.path.abspath(export_dir)
    app = FastAPI()

    @app.post("/v1/score")
    def score(req: ScoreRequest):
        if not req.rows:
            raise HTTPException(400, "no rows")
        inputs = encoder.encode(req.rows)
        with torch.inference_mode():
            probs = model(*inputs)
        return {"model": name, "scores": probs.tolist()}

    @app.get("/readyz")
    def ready():
        return "ok"

    return app


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--export", required=True, help="msrtrain export's output directory (model.pt, features.json)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    uvicorn.run(create_app(args.export), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
