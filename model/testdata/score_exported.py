"""Scores encoded batches with exported msrtrain models, using nothing but
torch.jit.load: the Python half of model/script_test.go.

Usage: /usr/bin/python3 score_exported.py MANIFEST SUFFIX

MANIFEST has one command a line:
  model PATH                     load an exported module (torch.jit.load)
  rebuild                        zero its meta.cache.* buffers, then call its
                                 rebuild_meta_cache(), so that scores after it
                                 come from the tables it computed
  case INPUT ROWS FIELDS NUMERIC OUTPUT
                                 score INPUT (little-endian: cat int64 [ROWS, FIELDS],
                                 num float32 [ROWS, NUMERIC], scenario int64 [ROWS],
                                 user_knowledge_row int64 [ROWS]) and write the
                                 probabilities to OUTPUT+SUFFIX (float32 [ROWS])
"""
import struct
import sys

import torch


def take(raw, offset, count, dtype, size):
    end = offset + count * size
    return torch.frombuffer(bytearray(raw[offset:end]), dtype=dtype) if count else torch.empty(0, dtype=dtype), end


def main(manifest, suffix):
    torch.set_num_threads(1)
    model = None
    for line in open(manifest):
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "model":
            model = torch.jit.load(parts[1])
            model.eval()
        elif parts[0] == "rebuild":
            with torch.no_grad():
                for name, buf in model.named_buffers():
                    if name.startswith("meta.cache."):
                        buf.zero_()
            model.rebuild_meta_cache()
        elif parts[0] == "case":
            path, rows, fields, numeric, out = parts[1], int(parts[2]), int(parts[3]), int(parts[4]), parts[5]
            raw = open(path, "rb").read()
            cat, off = take(raw, 0, rows * fields, torch.int64, 8)
            num, off = take(raw, off, rows * numeric, torch.float32, 4)
            scenario, off = take(raw, off, rows, torch.int64, 8)
            knowledge_row, off = take(raw, off, rows, torch.int64, 8)
            with torch.no_grad():
                p = model(cat.view(rows, fields), num.view(rows, numeric), scenario, knowledge_row)
            values = p.tolist()
            with open(out + suffix, "wb") as f:
                f.write(struct.pack("<%df" % len(values), *values))
        else:
            raise SystemExit("manifest: unknown command " + parts[0])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
