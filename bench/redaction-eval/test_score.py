"""Checks of the evaluation's own machinery: the generator's labels, the
matching rules, and the Sandbar path of the scorer against a stand-in
`sandbar scan --json` that reports exactly the labelled spans.

    python3 -m unittest discover -s bench/redaction-eval -p 'test_*.py'
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import detectors as D  # noqa: E402
import generate as G  # noqa: E402
import score as S  # noqa: E402

# A stand-in for `sandbar scan --json FILE...`: it looks each file up in the
# corpus's JSONL and reports its positive labels (secrets under a rule name,
# personal data by kind), plus one finding on every `uuid` negative so that
# false positives are exercised too.
ORACLE = textwrap.dedent("""\
    #!%(python)s
    import json, os, sys
    args = sys.argv[1:]
    if args[:1] == ["--version"]:
        print("sandbar 0.0.0-oracle"); sys.exit(0)
    if args[:2] == ["scan", "--help"]:
        print("usage"); sys.exit(0)
    assert args[:2] == ["scan", "--json"], args
    labels = {}
    for g in ("prose", "logs", "json", "code"):
        for line in open(os.path.join(os.getcwd(), g + ".jsonl"), encoding="utf-8"):
            d = json.loads(line)
            labels[d["file"]] = d["labels"]
    out = []
    for path in args[2:]:
        for lab in labels[path]:
            if lab["kind"] == "negative":
                if lab["why"] != "uuid":
                    continue
                kind, cat = "generic_secret", "secret"
            elif lab["kind"] == "secret":
                kind, cat = "github_token", "secret"
            else:
                kind, cat = lab["kind"], "personal"
            out.append({"path": path, "kind": kind, "category": cat, "start": lab["start"], "end": lab["end"],
                        "line": 1, "column": 1, "preview": "[REDACTED:%%s]" %% kind})
    print(json.dumps({"findings": out, "summary": {"files": len(args) - 2, "bytes": 0, "by_kind": {}}}))
    sys.exit(1 if out else 0)
    """)


class Matching(unittest.TestCase):
    def doc(self, text, labels):
        return {"id": "d", "genre": "prose", "raw": text.encode(), "labels": labels}

    def test_half_coverage_finds_a_label(self):
        d = self.doc("token abcdefgh end", [{"kind": "secret", "start": 6, "end": 14, "service": "x"}])
        half = [{"doc": "d", "type": "t", "kind": "secret", "start": 6, "end": 10, "line_start": 0, "line_end": 18}]
        less = [{"doc": "d", "type": "t", "kind": "secret", "start": 6, "end": 9, "line_start": 0, "line_end": 18}]
        self.assertEqual(S.score("sandbar", [d], half)["per_kind"]["secret"]["found"], 1)
        r = S.score("sandbar", [d], less)["per_kind"]["secret"]
        self.assertEqual((r["found"], r["false_positives"]), (0, 0))  # overlaps its label: missed, not a false positive

    def test_pieces_add_up(self):
        d = self.doc("token abcdefgh end", [{"kind": "secret", "start": 6, "end": 14, "service": "x"}])
        fs = [{"doc": "d", "type": "t", "kind": "secret", "start": s, "end": e, "line_start": 0, "line_end": 18}
              for s, e in ((6, 8), (11, 13))]
        self.assertEqual(S.score("sandbar", [d], fs)["per_kind"]["secret"]["found"], 1)

    def test_every_miss_is_kept_with_its_context(self):
        labels = [{"kind": "secret", "start": 4 + 10 * i, "end": 12 + 10 * i, "service": "x"} for i in range(30)]
        d = self.doc("key " + "abcdefgh, " * 30, labels)
        capped = S.score("sandbar", [d], [])["examples"]["missed"]["secret"]
        every = S.score("sandbar", [d], [], examples=None)["examples"]["missed"]["secret"]
        self.assertEqual((len(capped), len(every)), (25, 30))
        self.assertEqual(every[0]["genre"], "prose")
        self.assertEqual(every[0]["context"][:18], "key >>abcdefgh<<, ")

    def test_false_positive_on_a_negative_is_reported(self):
        d = self.doc("id 1.2.3.4 ok", [{"kind": "negative", "start": 3, "end": 10, "why": "version"}])
        fs = [{"doc": "d", "type": "ip", "kind": "ip_address", "start": 3, "end": 10, "line_start": 3, "line_end": 10}]
        r = S.score("sandbar", [d], fs)
        self.assertEqual(r["per_kind"]["ip_address"]["false_positives"], 1)
        self.assertEqual(r["negatives"]["version"]["hit"], 1)

    def test_presidio_dates_on_unlabelled_text_are_not_counted(self):
        d = self.doc("on Monday at 1999-01-02", [{"kind": "negative", "start": 13, "end": 23, "why": "non_birth_date"}])
        fs = [{"doc": "d", "type": "DATE_TIME", "kind": "date_of_birth", "start": 3, "end": 9, "line_start": 3, "line_end": 9},
              {"doc": "d", "type": "DATE_TIME", "kind": "date_of_birth", "start": 13, "end": 23, "line_start": 13, "line_end": 23}]
        r = S.score("presidio", [d], fs)
        self.assertEqual(r["per_kind"]["date_of_birth"]["false_positives"], 1)
        self.assertEqual(r["lenient_findings_ignored"], 1)

    def test_line_reporting_detector_finds_a_key_by_its_first_line(self):
        text = "key:\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n"
        s = text.index("-----BEGIN")
        e = text.rindex("-----") + 5
        d = self.doc(text, [{"kind": "secret", "start": s, "end": e, "service": "private_key_pem"}])
        hdr_end = text.index("\n", s)
        fs = [{"doc": "d", "type": "Private Key", "kind": "secret", "start": s + 5, "end": s + 26,
               "line_start": s, "line_end": hdr_end}]
        self.assertEqual(S.score("detect-secrets", [d], fs)["per_kind"]["secret"]["found"], 1)
        self.assertEqual(S.score("sandbar", [d], fs)["per_kind"]["secret"]["found"], 0)
        # The same key JSON-escaped is one line; the header alone still finds it for detect-secrets.
        one = text.replace("\n", "\\n")
        s1, e1 = one.index("-----BEGIN"), one.rindex("-----") + 5
        d1 = self.doc(one, [{"kind": "secret", "start": s1, "end": e1, "service": "private_key_pem"}])
        f1 = [{"doc": "d", "type": "Private Key", "kind": "secret", "start": s1, "end": s1 + 31,
               "line_start": 0, "line_end": len(one)}]
        self.assertEqual(S.score("detect-secrets", [d1], f1)["per_kind"]["secret"]["found"], 1)
        self.assertEqual(S.score("sandbar", [d1], f1)["per_kind"]["secret"]["found"], 0)


class Generator(unittest.TestCase):
    def test_checksums(self):
        v = G.V("t")
        for _ in range(200):
            self.assertTrue(G.luhn_valid(v.card_number()))
            self.assertTrue(G.iban_valid(v.iban_text()))
        self.assertTrue(G.luhn_valid("4242424242424242"))
        self.assertTrue(G.iban_valid("GB82 WEST 1234 5698 7654 32"))

    def test_small_corpus_is_deterministic_and_checks(self):
        a = G.generate_genre("code", "s", 30)
        b = G.generate_genre("code", "s", 30)
        self.assertEqual([d["text"] for d in a], [d["text"] for d in b])
        G.self_check({"code": a}, 0)


class SandbarPath(unittest.TestCase):
    def test_oracle_scores_perfectly_except_planted_false_positives(self):
        with tempfile.TemporaryDirectory() as tmp:
            corpus = os.path.join(tmp, "corpus")
            subprocess.run([sys.executable, os.path.join(HERE, "generate.py"), "--docs", "25", "--out", corpus,
                            "--quiet"], check=True)
            fake = os.path.join(tmp, "sandbar")
            with open(fake, "w") as f:
                f.write(ORACLE % {"python": sys.executable})
            os.chmod(fake, os.stat(fake).st_mode | stat.S_IEXEC)
            docs = S.load_docs(corpus)
            res = D.sandbar_findings(fake, corpus, docs)
            r = S.score("sandbar", docs, res["findings"])
            for k in D.PERSONAL_KINDS:
                m = r["per_kind"][k]
                self.assertEqual((m["recall"], m["precision"]), (1.0, 1.0), k)
            self.assertEqual(r["per_kind"]["secret"]["recall"], 1.0)
            uuids = r["negatives"]["uuid"]
            self.assertEqual(uuids["hit"], uuids["labels"])
            self.assertEqual(r["per_kind"]["secret"]["false_positives"], uuids["labels"])


if __name__ == "__main__":
    unittest.main()
