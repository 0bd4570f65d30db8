#!/usr/bin/env python3
"""Scores Sandbar, detect-secrets and presidio-analyzer on the labelled
corpus: precision, recall and F1 per kind, per genre, recall per secret
service, and which hard negatives each detector hit. Prints tables and
writes a JSON report.

    python3 bench/redaction-eval/score.py                  # all three detectors
    python3 bench/redaction-eval/score.py --detectors sandbar --sandbar target/release/sandbar
    python3 bench/redaction-eval/score.py --services       # also the per-service recall table

The corpus is generated (generate.py) when it is missing or older than the
generator. The peers run from a venv under ${XDG_CACHE_HOME:-~/.cache}/sandbar/
that is created on first use; their findings are cached in out/ for the same
corpus and peer versions (--fresh reruns them).

Matching (README.md has the reasoning):
  * a label is found when the detector's findings of the label's kind cover
    at least half of its bytes (for detect-secrets, which reports lines: when
    one of its findings overlaps the label at all, or sits on the first line
    of a label that spans several);
  * a finding is a false positive when it overlaps no label of its kind;
  * precision = found labels / (found labels + false-positive findings),
    recall = found labels / labels.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time

import detectors as D

HERE = os.path.dirname(os.path.abspath(__file__))
DETECTOR_NAMES = ["sandbar", "detect-secrets", "presidio"]
GENRES = ["prose", "logs", "json", "code"]

# The requirement's targets, checked for Sandbar.
STRUCTURED_PERSONAL = ["email", "phone", "payment_card", "iban", "us_ssn", "ip_address", "mac_address"]
TARGET_SECRET_RECALL = 0.95
TARGET_STRUCTURED_RECALL = 0.98
TARGET_PRECISION = 0.95


# --------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------


def file_digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def ensure_corpus(corpus: str, docs_per_genre: int | None) -> dict:
    """Generates the corpus when it is missing, stale, or of another size."""
    manifest_path = os.path.join(corpus, "manifest.json")
    want = file_digest(os.path.join(HERE, "generate.py"))
    manifest = None
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            manifest = json.load(f)
    stale = (manifest is None or manifest.get("generator_sha256") != want
             or (docs_per_genre and manifest.get("docs_per_genre") != docs_per_genre)
             or not all(os.path.exists(os.path.join(corpus, g + ".jsonl")) for g in GENRES))
    if stale:
        cmd = [sys.executable, os.path.join(HERE, "generate.py"), "--out", corpus]
        if docs_per_genre:
            cmd += ["--docs", str(docs_per_genre)]
        print("generating the corpus: %s" % " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=True, stdout=sys.stderr)
        with open(manifest_path) as f:
            manifest = json.load(f)
    return manifest


def load_docs(corpus: str) -> list[dict]:
    docs = []
    for g in GENRES:
        with open(os.path.join(corpus, g + ".jsonl"), encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                d["raw"] = d.pop("text").encode("utf-8")
                docs.append(d)
    return docs


# --------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------


def overlap(a0, a1, b0, b1) -> int:
    return max(0, min(a1, b1) - max(a0, b0))


def union_len(intervals) -> int:
    total = 0
    end = -1
    for s, e in sorted(intervals):
        if e <= end:
            continue
        total += e - max(s, end)
        end = e
    return total


class Tally:
    def __init__(self):
        self.labels = 0
        self.found = 0
        self.fp = 0

    def add(self, other: "Tally"):
        self.labels += other.labels
        self.found += other.found
        self.fp += other.fp

    def metrics(self) -> dict:
        p = self.found / (self.found + self.fp) if (self.found + self.fp) else None
        r = self.found / self.labels if self.labels else None
        f1 = 2 * p * r / (p + r) if (p is not None and r is not None and p + r) else (0.0 if p is not None and r is not None else None)
        return {"labels": self.labels, "found": self.found, "false_positives": self.fp,
                "precision": p, "recall": r, "f1": f1}


def context(raw: bytes, start: int, end: int, width: int = 60) -> str:
    """The text around a span, the span itself in `>>...<<`, on one line."""
    def text(b: bytes) -> str:
        return b.decode("utf-8", "replace").replace("\r", "\\r").replace("\n", "\\n")
    return "%s>>%s<<%s" % (text(raw[max(0, start - width):start]), text(raw[start:end][:200]),
                           text(raw[end:end + width]))


def print_examples(report: dict, which: str, spec: str) -> None:
    """Prints every missed label (`which` = "missed") or false positive
    ("false_positives") of `spec` (`KIND` or `KIND/GENRE`) for each detector,
    one per line, with the text around it."""
    kind, _, genre = spec.partition("/")
    for name, det in report["detectors"].items():
        rows = [e for e in det["examples"][which].get(kind, []) if not genre or e["genre"] == genre]
        print("## %s: %d %s (%s)" % (name, len(rows), which.replace("_", " "), spec))
        for e in rows:
            tag = e.get("service") or e.get("type") or ""
            print("%s %s %s\t%s" % (e["doc"], e["genre"], tag, e["context"]))


def score(name: str, docs: list[dict], findings: list[dict], examples: int | None = 25) -> dict:
    """Scores one detector. `examples` caps the missed labels and false
    positives kept per kind (`None` keeps them all)."""
    covers = D.COVERAGE[name]
    line_based = name in D.LINE_BASED
    lenient = D.LENIENT_TYPES.get(name, set())
    by_doc = {}
    ignored_types = {}
    for f in findings:
        if f.get("kind") in covers:
            by_doc.setdefault(f["doc"], []).append(f)
        else:
            ignored_types[f["type"]] = ignored_types.get(f["type"], 0) + 1

    tallies = {k: {g: Tally() for g in GENRES} for k in covers}
    services = {}
    neg_total = {}
    neg_hit = {}
    fp_where = {k: {"negative": 0, "other_kind_label": 0, "unlabelled": 0} for k in covers}
    lenient_ignored = 0
    missed_examples = {k: [] for k in covers}
    fp_examples = {k: [] for k in covers}

    for d in docs:
        g = d["genre"]
        raw = d["raw"]
        labels = d["labels"]
        for lab in labels:
            if lab["kind"] == "negative":
                neg_total[lab["why"]] = neg_total.get(lab["why"], 0) + 1
        cover = {}  # label index -> list of covered intervals
        line_hit = set()
        neg_hit_here = set()
        for f in by_doc.get(d["id"], []):
            fs, fe, fk = f["start"], f["end"], f["kind"]
            matched = False
            other = False
            negs = []
            for i, lab in enumerate(labels):
                ls, le = lab["start"], lab["end"]
                ov = overlap(fs, fe, ls, le)
                # A line-reporting detector points at a line, not a span: any
                # overlap with the label, or (for a label over several lines)
                # a finding on its first line, finds it.
                line_rule = line_based and lab["kind"] == fk and (
                    ov > 0 or (b"\n" in raw[ls:le] and f["line_start"] <= ls <= f["line_end"]))
                if lab["kind"] == fk and (ov > 0 or line_rule):
                    matched = True
                    if ov > 0:
                        cover.setdefault(i, []).append((max(fs, ls), min(fe, le)))
                    if line_rule:
                        line_hit.add(i)
                elif ov > 0:
                    if lab["kind"] == "negative":
                        negs.append(i)
                    else:
                        other = True
            if matched:
                continue
            if f["type"] in lenient and not negs and not other:
                lenient_ignored += 1
                continue
            tallies[fk][g].fp += 1
            where = "negative" if negs else ("other_kind_label" if other else "unlabelled")
            fp_where[fk][where] += 1
            for i in negs:
                neg_hit_here.add(i)
            if examples is None or len(fp_examples[fk]) < examples:
                fp_examples[fk].append({"doc": d["id"], "genre": g, "type": f["type"], "where": where,
                                        "why": [labels[i]["why"] for i in negs],
                                        "text": raw[fs:fe].decode("utf-8", "replace")[:160],
                                        "context": context(raw, fs, fe)})
        for i in neg_hit_here:
            why = labels[i]["why"]
            neg_hit[why] = neg_hit.get(why, 0) + 1
        for i, lab in enumerate(labels):
            k = lab["kind"]
            if k not in covers:
                continue
            t = tallies[k][g]
            t.labels += 1
            n = lab["end"] - lab["start"]
            found = i in line_hit or 2 * union_len(cover.get(i, [])) >= n
            if found:
                t.found += 1
            elif examples is None or len(missed_examples[k]) < examples:
                missed_examples[k].append({"doc": d["id"], "genre": g, "service": lab.get("service"),
                                           "text": raw[lab["start"]:lab["end"]].decode("utf-8", "replace")[:160],
                                           "context": context(raw, lab["start"], lab["end"])})
            if k == "secret":
                s = services.setdefault(lab["service"], [0, 0])
                s[0] += 1
                s[1] += 1 if found else 0

    per_kind = {}
    per_genre = {}
    for k in covers:
        total = Tally()
        for g in GENRES:
            total.add(tallies[k][g])
            per_genre.setdefault(k, {})[g] = tallies[k][g].metrics()
        per_kind[k] = total.metrics()
    return {
        "covers": covers,
        "per_kind": per_kind,
        "per_genre": per_genre,
        "secret_services": {s: {"labels": n, "found": f, "recall": f / n} for s, (n, f) in sorted(services.items())},
        "negatives": {w: {"labels": neg_total[w], "hit": neg_hit.get(w, 0)} for w in sorted(neg_total)},
        "false_positives_on": fp_where,
        "lenient_findings_ignored": lenient_ignored,
        "ignored_types": dict(sorted(ignored_types.items())),
        "examples": {"missed": missed_examples, "false_positives": fp_examples},
    }


# --------------------------------------------------------------------------
# Running the detectors
# --------------------------------------------------------------------------


def cached_peer(name: str, corpus: str, manifest: dict, out_dir: str, fresh: bool) -> dict:
    key = hashlib.sha256(json.dumps([manifest["generator_sha256"], manifest["seed"], manifest["docs_per_genre"],
                                     D.PEER_REQUIREMENTS, file_digest(os.path.join(HERE, "peer_scan.py")),
                                     file_digest(os.path.join(HERE, "detectors.py"))]).encode()).hexdigest()
    path = os.path.join(out_dir, "findings-%s.json" % name)
    if not fresh and os.path.exists(path):
        with open(path) as f:
            cached = json.load(f)
        if cached.get("key") == key:
            print("%s: using cached findings (%s; --fresh reruns it)" % (name, os.path.relpath(path)), file=sys.stderr)
            return cached["result"]
    print("%s: scanning the corpus ..." % name, file=sys.stderr)
    t0 = time.time()
    result = D.peer_findings(name, corpus)
    print("%s: %d findings in %.0f s" % (name, len(result["findings"]), time.time() - t0), file=sys.stderr)
    os.makedirs(out_dir, exist_ok=True)
    with open(path, "w") as f:
        json.dump({"key": key, "result": result}, f)
    return result


def collect(names, corpus, manifest, docs, out_dir, fresh, sandbar_path):
    results = {}
    skipped = {}
    for name in names:
        try:
            if name == "sandbar":
                binary = D.find_sandbar(sandbar_path)
                results[name] = D.sandbar_findings(binary, corpus, docs)
            else:
                results[name] = cached_peer(name, corpus, manifest, out_dir, fresh)
        except D.Unavailable as e:
            skipped[name] = str(e)
            print("%s: skipped: %s" % (name, e), file=sys.stderr)
    return results, skipped


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------


def fmt(x) -> str:
    return "—" if x is None else "%.3f" % x


def cell(m: dict | None) -> str:
    if m is None:
        return "not covered"
    return "%s / %s / %s" % (fmt(m["precision"]), fmt(m["recall"]), fmt(m["f1"]))


def table(header, rows) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep] + [line(r) for r in rows])


def render(report: dict, show_services: bool) -> str:
    out = []
    dets = [n for n in DETECTOR_NAMES if n in report["detectors"] or n in report["skipped"]]
    scored = report["detectors"]

    def det_cell(n, getter):
        if n in report["skipped"]:
            return "skipped"
        s = scored[n]
        return getter(s)

    out.append("Corpus: %d documents, %s bytes (seed %s). Cells are precision / recall / F1.\n" % (
        report["corpus"]["documents"], format(report["corpus"]["bytes"], ","), report["corpus"]["seed"]))
    kinds = D.ALL_KINDS
    rows = []
    for k in kinds:
        labels = report["corpus"]["labels_per_kind"].get(k, 0)
        rows.append([k, labels] + [det_cell(n, lambda s: cell(s["per_kind"].get(k))) for n in dets])
    out.append("Per kind, all genres\n")
    out.append(table(["kind", "labels"] + dets, rows))

    out.append("\nPer kind and genre (precision / recall)\n")
    rows = []
    for k in kinds:
        for g in GENRES:
            def pg(s, k=k, g=g):
                m = s["per_genre"].get(k, {}).get(g)
                return "not covered" if m is None else "%s / %s" % (fmt(m["precision"]), fmt(m["recall"]))
            rows.append([k, g] + [det_cell(n, pg) for n in dets])
    out.append(table(["kind", "genre"] + dets, rows))

    out.append("\nHard negatives hit (negative labels overlapped by a false positive / labels)\n")
    whys = sorted({w for s in scored.values() for w in s["negatives"]})
    rows = []
    for w in whys:
        rows.append([w] + [det_cell(n, lambda s, w=w: "%d / %d" % (s["negatives"].get(w, {}).get("hit", 0),
                                                                     s["negatives"].get(w, {}).get("labels", 0)))
                           for n in dets])
    out.append(table(["negative"] + dets, rows))

    out.append("\nWhere the false positives fall (on a negative label / inside another kind's label / unlabelled text)\n")
    rows = []
    for k in kinds:
        rows.append([k] + [det_cell(n, lambda s, k=k: "not covered" if k not in s["false_positives_on"] else
                                    "%d / %d / %d" % tuple(s["false_positives_on"][k][x] for x in
                                                           ("negative", "other_kind_label", "unlabelled")))
                           for n in dets])
    out.append(table(["kind"] + dets, rows))

    if show_services:
        out.append("\nSecret recall per service\n")
        services = sorted({s for d in scored.values() for s in d["secret_services"]})
        rows = []
        for sv in services:
            rows.append([sv] + [det_cell(n, lambda s, sv=sv: "not covered" if "secret" not in s["covers"] else
                                         "%d / %d" % (s["secret_services"][sv]["found"], s["secret_services"][sv]["labels"]))
                                for n in dets])
        out.append(table(["service"] + dets, rows))

    if "sandbar" in scored:
        out.append("\nTargets (Sandbar)\n")
        out.append(table(["target", "measured", "met?"], report["targets"]))
    for n, why in report["skipped"].items():
        out.append("\n%s: %s" % (n, why))
    return "\n".join(out) + "\n"


def targets(report: dict) -> list:
    s = report["detectors"]["sandbar"]["per_kind"]
    rows = []

    def met(ok):
        return "yes" if ok else "**no**"

    m = s["secret"]
    rows.append(["secrets: recall ≥ %.2f at precision ≥ %.2f" % (TARGET_SECRET_RECALL, TARGET_PRECISION),
                 "R %s, P %s" % (fmt(m["recall"]), fmt(m["precision"])),
                 met((m["recall"] or 0) >= TARGET_SECRET_RECALL and (m["precision"] or 0) >= TARGET_PRECISION)])
    for k in STRUCTURED_PERSONAL:
        m = s[k]
        rows.append(["%s: recall ≥ %.2f at precision ≥ %.2f" % (k, TARGET_STRUCTURED_RECALL, TARGET_PRECISION),
                     "R %s, P %s" % (fmt(m["recall"]), fmt(m["precision"])),
                     met((m["recall"] or 0) >= TARGET_STRUCTURED_RECALL and (m["precision"] or 0) >= TARGET_PRECISION)])
    for k in D.ALL_KINDS:
        peers = [(n, report["detectors"][n]["per_kind"][k]["f1"]) for n in ("detect-secrets", "presidio")
                 if n in report["detectors"] and k in report["detectors"][n]["per_kind"]]
        if not peers:
            continue
        mine = s[k]["f1"] or 0
        best = max(peers, key=lambda p: p[1] or 0)
        rows.append(["%s: F1 ahead of %s" % (k, " and ".join(p[0] for p in peers)),
                     "%s vs %s (%s)" % (fmt(mine), fmt(best[1]), best[0]), met(mine > (best[1] or 0))])
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=os.path.join(HERE, "corpus"))
    ap.add_argument("--docs", type=int, default=None, help="documents per genre when (re)generating")
    ap.add_argument("--detectors", default=",".join(DETECTOR_NAMES))
    ap.add_argument("--sandbar", help="the sandbar binary (default: $SANDBAR, target/release/sandbar, PATH)")
    ap.add_argument("--out", default=os.path.join(HERE, "out"), help="report and cache directory")
    ap.add_argument("--fresh", action="store_true", help="rerun the peers even if their findings are cached")
    ap.add_argument("--services", action="store_true", help="print the per-service secret recall table")
    ap.add_argument("--misses", metavar="KIND[/GENRE]",
                    help="also print every missed label of KIND (in GENRE), with its context, per detector")
    ap.add_argument("--false-positives", metavar="KIND[/GENRE]",
                    help="also print every false positive of KIND (in GENRE), with its context, per detector")
    args = ap.parse_args(argv)
    names = [n for n in args.detectors.split(",") if n]
    for n in names:
        if n not in DETECTOR_NAMES:
            ap.error("unknown detector %r" % n)

    corpus = os.path.abspath(args.corpus)
    manifest = ensure_corpus(corpus, args.docs)
    docs = load_docs(corpus)
    results, skipped = collect(names, corpus, manifest, docs, args.out, args.fresh, args.sandbar)

    labels_per_kind = {}
    for d in docs:
        for lab in d["labels"]:
            labels_per_kind[lab["kind"]] = labels_per_kind.get(lab["kind"], 0) + 1
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "corpus": {"path": corpus, "seed": manifest["seed"], "documents": len(docs),
                   "bytes": sum(len(d["raw"]) for d in docs), "generator_sha256": manifest["generator_sha256"],
                   "labels_per_kind": labels_per_kind},
        "versions": {n: {k: v for k, v in r.items() if k not in ("findings",)} for n, r in results.items()},
        "detectors": {n: score(n, docs, r["findings"]) for n, r in results.items()},
        "skipped": skipped,
    }
    if "sandbar" in report["detectors"]:
        report["targets"] = targets(report)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "report.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1, ensure_ascii=False)
    text = render(report, args.services)
    with open(os.path.join(args.out, "report.md"), "w", encoding="utf-8") as f:
        f.write(text)
    sys.stdout.write(text)
    print("\nJSON report: %s" % path, file=sys.stderr)
    if args.misses or args.false_positives:
        # Scored again keeping every example; report.json keeps 25 per kind.
        full = {"detectors": {n: score(n, docs, r["findings"], examples=None) for n, r in results.items()}}
        if args.misses:
            print_examples(full, "missed", args.misses)
        if args.false_positives:
            print_examples(full, "false_positives", args.false_positives)
    return 0


if __name__ == "__main__":
    sys.exit(main())
