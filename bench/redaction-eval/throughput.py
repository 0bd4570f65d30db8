#!/usr/bin/env python3
"""Measures scanning throughput (MB/s, MB = 10^6 bytes) on prose, logs,
JSON and source code for Sandbar, detect-secrets and presidio-analyzer, on
the same files, one core each (`taskset -c 0`).

    python3 bench/redaction-eval/throughput.py                   # ~20 MB per genre
    python3 bench/redaction-eval/throughput.py --mb 5 --budget 30 --detectors sandbar

The files are a bigger corpus from generate.py (another seed, files only,
under corpus/throughput/), one file per document as in the scored corpus.

  * Sandbar: `sandbar scan --json FILE...` over every file of a genre, in
    batches of --batch files; wall time of the processes minus, per
    process, the wall time of `sandbar scan --json` on an empty file (the
    median of 5), so process start and rule compilation are not counted.
    Median of --repeat runs.
  * detect-secrets and presidio: in process, through their Python APIs
    (peer_scan.py in the peers' venv), timing only the scan calls -- not
    imports, plugin set-up or the spaCy model load. They are slow, so each
    scans the genre's files in order until --budget seconds of scan time
    have passed, and the rate is over what it scanned.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import detectors as D

HERE = os.path.dirname(os.path.abspath(__file__))
GENRES = ["prose", "logs", "json", "code"]
# Average document size per genre (bytes), to choose how many documents
# make the requested size; checked against the files written.
AVG_DOC = {"prose": 1000, "logs": 2050, "json": 1020, "code": 900}
SEED = "sandbar-redaction-eval-throughput-1"


def file_digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def pin_prefix() -> list[str]:
    if shutil.which("taskset"):
        return ["taskset", "-c", "0"]
    print("warning: taskset not found; running unpinned", file=sys.stderr)
    return []


def ensure_files(root: str, genre: str, mb: float) -> list[str]:
    """Generates (or reuses) about `mb` MB of documents of `genre`."""
    docs = max(1000, int(mb * 1e6 / AVG_DOC[genre]))
    stamp_path = os.path.join(root, genre + ".stamp")
    want = {"generator_sha256": file_digest(os.path.join(HERE, "generate.py")), "seed": SEED, "docs": docs}
    gdir = os.path.join(root, "files", genre)
    if os.path.exists(stamp_path):
        with open(stamp_path) as f:
            if json.load(f) == want and os.path.isdir(gdir):
                return sorted(os.path.join(gdir, n) for n in os.listdir(gdir))
    print("generating %d %s documents for the throughput run ..." % (docs, genre), file=sys.stderr)
    subprocess.run([sys.executable, os.path.join(HERE, "generate.py"), "--out", root, "--seed", SEED, "--docs", str(docs),
                    "--genres", genre, "--files-only", "--quiet", "--min-per-kind", "0"], check=True)
    with open(stamp_path, "w") as f:
        json.dump(want, f)
    return sorted(os.path.join(gdir, n) for n in os.listdir(gdir))


def wall(cmd: list[str], cwd: str | None = None) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if r.returncode not in (0, 1):
        raise RuntimeError("%s exited %d: %s" % (" ".join(cmd[:4]), r.returncode, r.stderr.decode(errors="replace")[:1000]))
    return dt


def sandbar_rate(binary: str, files: list[str], batch: int, repeat: int, prefix: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        empty = os.path.join(tmp, "empty.txt")
        open(empty, "w").close()
        start_cost = statistics.median(wall(prefix + [binary, "scan", "--json", empty]) for _ in range(5))
    nbytes = sum(os.path.getsize(f) for f in files)
    runs = []
    for _ in range(repeat):
        total = 0.0
        batches = 0
        for i in range(0, len(files), batch):
            total += wall(prefix + [binary, "scan", "--json"] + files[i:i + batch])
            batches += 1
        runs.append(max(total - batches * start_cost, 1e-9))
    secs = statistics.median(runs)
    return {"bytes": nbytes, "files": len(files), "seconds": secs, "mb_per_s": nbytes / 1e6 / secs,
            "process_start_seconds": start_cost, "runs_seconds": runs}


def peer_rate(name: str, files: list[str], budget: float, prefix: list[str]) -> dict:
    py = D.ensure_peers()
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as lst:
        lst.write("\n".join(files) + "\n")
        list_path = lst.name
    try:
        cmd = prefix + [py, os.path.join(HERE, "peer_scan.py"), name, "--time", "--budget", str(budget),
                        "--files-from", list_path]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("%s failed: %s" % (name, r.stderr[-3000:]))
        out = json.loads(r.stdout)
    finally:
        os.unlink(list_path)
    out["mb_per_s"] = out["bytes"] / 1e6 / out["seconds"] if out["seconds"] else None
    return out


def machine(load_before: float) -> dict:
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "loadavg_1m_before": load_before}


def rate(x: float) -> str:
    """Three significant figures: 312, 41.7, 0.212, 0.0233."""
    return "%.3g" % x if x < 1000 else "%.0f" % x


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=20.0, help="MB of documents per genre (default 20)")
    ap.add_argument("--genres", default=",".join(GENRES))
    ap.add_argument("--detectors", default="sandbar,detect-secrets,presidio")
    ap.add_argument("--sandbar", help="the sandbar binary (default: $SANDBAR, target/release/sandbar, PATH)")
    ap.add_argument("--budget", type=float, default=60.0, help="seconds of scan time per peer and genre (default 60)")
    ap.add_argument("--batch", type=int, default=2000, help="files per sandbar process (default 2000)")
    ap.add_argument("--repeat", type=int, default=3, help="sandbar runs per genre; the median is kept (default 3)")
    ap.add_argument("--root", default=os.path.join(HERE, "corpus", "throughput"))
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    args = ap.parse_args(argv)
    genres = [g for g in args.genres.split(",") if g]
    names = [n for n in args.detectors.split(",") if n]
    prefix = pin_prefix()
    load_before = os.getloadavg()[0]

    sandbar = None
    skipped = {}
    if "sandbar" in names:
        try:
            sandbar = D.find_sandbar(args.sandbar)
            version = D.check_sandbar_scan(sandbar)
        except D.Unavailable as e:
            skipped["sandbar"] = str(e)
            print("sandbar: skipped: %s" % e, file=sys.stderr)
            sandbar = None

    results = {}
    for g in genres:
        files = ensure_files(os.path.abspath(args.root), g, args.mb)
        results[g] = {}
        for n in names:
            if n == "sandbar":
                if sandbar:
                    print("sandbar: %s ..." % g, file=sys.stderr)
                    results[g][n] = sandbar_rate(sandbar, files, args.batch, args.repeat, prefix)
                    results[g][n]["version"] = version
            else:
                print("%s: %s (up to %.0f s) ..." % (n, g, args.budget), file=sys.stderr)
                results[g][n] = peer_rate(n, files, args.budget, prefix)

    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(load_before),
              "pinned": " ".join(prefix) or "no", "results": results, "skipped": skipped}
    report["machine"]["loadavg_1m_after"] = os.getloadavg()[0]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "throughput.json"), "w") as f:
        json.dump(report, f, indent=1)

    cols = [n for n in names]
    print("Throughput, MB/s (10^6 bytes) on one core; MB scanned in brackets\n")
    print("| genre | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for g in genres:
        cells = []
        for n in cols:
            r = results[g].get(n)
            if r is None:
                cells.append("skipped")
            else:
                cells.append("%s (%.1f MB)" % (rate(r["mb_per_s"]), r["bytes"] / 1e6))
        print("| %s | %s |" % (g, " | ".join(cells)))
    for n, why in skipped.items():
        print("\n%s: %s" % (n, why))
    print("\nJSON report: %s" % os.path.join(args.out, "throughput.json"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
