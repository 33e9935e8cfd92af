"""Bounded load test of msrtrain serve on loopback, against a Python service.

For 1-row and 100-row requests at 1, 8 and 64 concurrent clients, wrk posts
the same request for a fixed duration and reports throughput (rows/s) and
p50/p99 latency. With --export (msrtrain export's directory), the same model
behind pyservice.py (FastAPI, uvicorn, torch.jit.load, no batching) runs in
the same invocation, each configuration right after msrtrain serve's, and the
table gives the ratios. Both servers get the same torch threads; wrk runs on
the same machine, so the numbers are the whole machine's.

    /usr/bin/python3 train/serve/bench/loadtest.py --checkpoint RUN --data rows.csv \\
        [--export DIR] [--duration 3] [--threads 1]

--data is a CSV with a header naming the model's fields (the scenario, the
categorical and the numeric fields; other columns are ignored), for example
the file the checkpoint was trained on; its first rows make the requests.
"""

import argparse
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, proc, what, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with status {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"{what} was not ready within {timeout}s")


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def post_json(url, body):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def request_rows(path, model, n):
    """The first n rows of a CSV as request rows: numeric fields as numbers,
    everything else as strings."""
    numeric = set(model["numeric"])
    fields = [model["scenario_field"]] + model["categorical"] + model["numeric"]
    rows = []
    with open(path, newline="") as f:
        for rec in csv.DictReader(f):
            missing = [k for k in fields if k not in rec]
            if missing:
                sys.exit(f"{path}: no column {missing[0]!r}, a field of the model")
            rows.append({k: (float(rec[k]) if k in numeric else rec[k]) for k in fields})
            if len(rows) == n:
                break
    if len(rows) < n:
        sys.exit(f"{path}: {len(rows)} rows, want at least {n}")
    return rows


def wrk(url, body_file, clients, duration):
    threads = max(1, min(clients, os.cpu_count() or 1))
    cmd = ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{duration}s", "--timeout", "30s",
           "-s", os.path.join(HERE, "post.lua"), url + "/v1/score"]
    out = subprocess.run(cmd, env=dict(os.environ, BODY_FILE=body_file), capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: exit status {out.returncode}\n{out.stdout}{out.stderr}")
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    sys.exit("wrk printed no result:\n" + out.stdout + out.stderr)


def measure(url, body_file, rows, clients, duration):
    r = wrk(url, body_file, clients, duration)
    if r["errors"]:
        sys.exit(f"{url}: {r['errors']} failed requests at {clients} clients, {rows} rows")
    seconds = r["duration_us"] / 1e6
    return {"rows_s": r["requests"] * rows / seconds, "p50_ms": r["p50_us"] / 1e3, "p99_ms": r["p99_us"] / 1e3,
            "requests": r["requests"]}


def start(cmd, what, log):
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, help="run or checkpoint directory for msrtrain serve")
    p.add_argument("--data", required=True, help="CSV of raw rows with the model's fields")
    p.add_argument("--export", help="msrtrain export's directory of the same model, for the Python service")
    p.add_argument("--msrtrain", default="bin/msrtrain")
    p.add_argument("--python", default="/usr/bin/python3")
    p.add_argument("--duration", type=int, default=3, help="seconds per configuration and server")
    p.add_argument("--threads", type=int, default=1, help="torch threads of each server")
    p.add_argument("--clients", default="1,8,64")
    p.add_argument("--rows", default="1,100", help="rows per request")
    p.add_argument("--max-batch-rows", type=int, default=1024)
    p.add_argument("--max-wait", default="0s")
    args = p.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    sizes = [int(r) for r in args.rows.split(",")]

    tmp = tempfile.mkdtemp(prefix="msrtrain-loadtest-")
    procs = []
    try:
        port = free_port()
        go_url = f"http://127.0.0.1:{port}"
        log = open(os.path.join(tmp, "msrtrain-serve.log"), "w")
        procs.append(start([args.msrtrain, "serve", "--checkpoint", args.checkpoint, "--addr", f"127.0.0.1:{port}",
                            "--device", "cpu", "--threads", str(args.threads), "--max-batch-rows", str(args.max_batch_rows),
                            "--max-wait", args.max_wait], "msrtrain serve", log))
        wait_ready(go_url, procs[-1], "msrtrain serve")
        model = get_json(go_url + "/v1/model")
        rows = request_rows(args.data, model, max(sizes))
        bodies = {}
        for n in sizes:
            bodies[n] = os.path.join(tmp, f"rows-{n}.json")
            with open(bodies[n], "w") as f:
                json.dump({"rows": rows[:n]}, f)

        py_url = None
        if args.export:
            py_port = free_port()
            py_url = f"http://127.0.0.1:{py_port}"
            py_log = open(os.path.join(tmp, "pyservice.log"), "w")
            procs.append(start([args.python, os.path.join(HERE, "pyservice.py"), "--export", args.export,
                                "--port", str(py_port), "--threads", str(args.threads)], "pyservice", py_log))
            wait_ready(py_url, procs[-1], "the Python service")
            with open(bodies[max(sizes)], "rb") as f:
                body = f.read()
            a, b = post_json(go_url + "/v1/score", body)["scores"], post_json(py_url + "/v1/score", body)["scores"]
            diff = max(abs(x - y) for x, y in zip(a, b))
            print(f"same {len(a)} rows on both servers: largest score difference {diff:.2e}")
            if len(a) != len(b) or diff > 1e-5:
                sys.exit("the two servers score the same rows differently: not the same model")

        print(f"msrtrain serve --checkpoint {args.checkpoint} --threads {args.threads} "
              f"--max-batch-rows {args.max_batch_rows} --max-wait {args.max_wait}; {args.duration}s per configuration")
        head = "| rows/request | clients | msrtrain rows/s | p50 ms | p99 ms |"
        rule = "|---:|---:|---:|---:|---:|"
        if py_url:
            head += " Python rows/s | p50 ms | p99 ms | rows/s ratio | p99 ratio (msrtrain/Python) |"
            rule += "---:|---:|---:|---:|---:|"
        print(head)
        print(rule)
        met = []
        for n in sizes:
            for c in clients:
                g = measure(go_url, bodies[n], n, c, args.duration)
                line = f"| {n} | {c} | {g['rows_s']:,.0f} | {g['p50_ms']:.2f} | {g['p99_ms']:.2f} |"
                if py_url:
                    q = measure(py_url, bodies[n], n, c, args.duration)
                    speedup, p99 = g["rows_s"] / q["rows_s"], g["p99_ms"] / q["p99_ms"]
                    line += (f" {q['rows_s']:,.0f} | {q['p50_ms']:.2f} | {q['p99_ms']:.2f} |"
                             f" {speedup:.1f}x | {p99:.2f} |")
                    met.append(speedup >= 3 and p99 <= 1)
                print(line, flush=True)
        if py_url:
            print(f"goal (3x the Python service's rows/s at the same or lower p99): met in {sum(met)} of {len(met)} configurations")
    finally:
        for proc in procs:
            stop(proc)


if __name__ == "__main__":
    main()
