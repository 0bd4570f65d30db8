#!/usr/bin/env python3
"""Generates the labelled corpus that Sandbar's redaction evaluation scores
detectors against.

Four genres of documents -- prose (emails, support tickets, chat), logs
(application, nginx, JSON lines, stack traces), JSON payloads (API requests
and responses, CRM records, orders, webhooks, credentials) and source code
(Python, JavaScript, Go, YAML, .env, Terraform, Dockerfile, shell) -- with
secrets and personal data planted in them and every planted span labelled
with its exact byte offsets in the UTF-8 text. Hard negatives (UUIDs,
hashes, versions, timestamps, ids, prices, ISBNs, test cards in prose,
random base64, placeholders, product names, ...) are labelled too, as kind
`negative` with a `why`, so that error analysis can see what a detector hit.

Everything comes from one seeded random stream per genre: the same seed and
the same document count give the same bytes. Standard library only.

    python3 generate.py                      # corpus/ next to this file
    python3 generate.py --docs 200 --out /tmp/c
    python3 generate.py --files-only --docs 15000 --seed throughput --out corpus/throughput

Output:
    OUT/{prose,logs,json,code}.jsonl   one document a line:
        {"id", "genre", "subtype", "file", "text", "labels": [{"kind", "start", "end", "service"?, "why"?}]}
    OUT/files/<genre>/<id>.<ext>       the same text, byte for byte, for tools that scan files
    OUT/manifest.json                  seed, counts per kind and genre, generator digest
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import shutil
import string
import sys
import zlib
from dataclasses import dataclass, field

GENRES = ("prose", "logs", "json", "code")

POSITIVE_KINDS = (
    "secret",
    "email",
    "phone",
    "payment_card",
    "iban",
    "us_ssn",
    "ip_address",
    "mac_address",
    "date_of_birth",
    "postal_address",
    "person_name",
)

# The self-check demands at least this many positives of every kind in every
# genre (all kinds make sense in all four genres here: logs leak request
# bodies, code carries fixtures and seed data).
MIN_PER_GENRE_KIND = 200
MIN_SERVICES = 60

UP = string.ascii_uppercase
LO = string.ascii_lowercase
DG = string.digits
AL = DG + UP + LO  # base62, in the order GitHub's checksum encoding uses
B64 = UP + LO + DG + "+/"
B64U = UP + LO + DG + "-_"
HEX = "0123456789abcdef"
HEXU = "0123456789ABCDEF"
BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


# --------------------------------------------------------------------------
# Planted items and the document builder
# --------------------------------------------------------------------------


@dataclass
class Item:
    """A labelled span: its kind, its text, and extra label attributes."""

    kind: str
    text: str
    attrs: dict = field(default_factory=dict)


class Val:
    """A value as it appears in a document: plain text segments and labelled
    items in order. Escaping (JSON, YAML indentation) is applied per segment,
    so a label always covers exactly the escaped form of its item."""

    def __init__(self, *segments, raw: bool = False):
        self.segments = [s for s in segments if s != ""]
        self.raw = raw  # a JSON number or bare word: not quoted

    def plain(self) -> str:
        return "".join(s.text if isinstance(s, Item) else s for s in self.segments)

    @property
    def multiline(self) -> bool:
        return "\n" in self.plain()


def item(kind: str, text: str, **attrs) -> Val:
    return Val(Item(kind, text, attrs))


def neg(text: str, why: str) -> Val:
    return Val(Item("negative", text, {"why": why}))


def ident(s):
    return s


class Doc:
    """Accumulates text and labelled items; computes byte offsets at the end."""

    def __init__(self):
        self.parts: list[tuple[str, Item | None]] = []

    def t(self, s: str) -> "Doc":
        if s:
            self.parts.append((s, None))
        return self

    def v(self, val, esc=ident) -> "Doc":
        if isinstance(val, str):
            return self.t(esc(val))
        for seg in val.segments:
            if isinstance(seg, Item):
                self.parts.append((esc(seg.text), seg))
            else:
                self.t(esc(seg))
        return self

    def fill(self, template: str, **slots) -> "Doc":
        """Writes `template`, replacing each `{name}` by slots[name] (a str or
        a Val). Literal braces are written `{{` and `}}`."""
        for literal, name, _spec, _conv in string.Formatter().parse(template):
            self.t(literal)
            if name is not None:
                self.v(slots[name])
        return self

    def build(self) -> tuple[str, list[dict], list[str]]:
        text = []
        labels = []
        expect = []
        pos = 0
        for s, it in self.parts:
            n = len(s.encode("utf-8"))
            if it is not None:
                lab = {"kind": it.kind, "start": pos, "end": pos + n}
                lab.update(it.attrs)
                labels.append(lab)
                expect.append(s)
            text.append(s)
            pos += n
        return "".join(text), labels, expect


# --------------------------------------------------------------------------
# Escaping for the syntaxes values are written in
# --------------------------------------------------------------------------


def json_esc(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)[1:-1]


def indent_esc(prefix: str):
    return lambda s: s.replace("\n", "\n" + prefix)


def newline_esc(s: str) -> str:
    """Writes newlines as the two characters backslash-n (Dockerfile, echo -e)."""
    return s.replace("\n", "\\n")


# --------------------------------------------------------------------------
# Word lists
# --------------------------------------------------------------------------

FIRST = {
    "us": ["James", "Emily", "Michael", "Olivia", "Daniel", "Sophia", "Matthew", "Madison", "Tyler", "Hannah",
           "Brandon", "Ashley", "Kevin", "Megan", "Justin", "Lauren", "Ryan", "Brittany", "Marcus", "Jasmine",
           "Ethan", "Chloe", "Nathan", "Kayla", "Derek", "Alyssa", "Trevor", "Destiny", "Cody", "Savannah"],
    "uk": ["Oliver", "Amelia", "Harry", "Isla", "George", "Poppy", "Alfie", "Freya", "Archie", "Imogen",
           "Rhys", "Siobhan", "Callum", "Niamh", "Angus", "Eilidh", "Hamish", "Gemma", "Declan", "Bethan",
           "Rupert", "Harriet", "Toby", "Philippa", "Gareth", "Ffion", "Alastair", "Morag", "Nigel", "Beatrix"],
    "de": ["Jürgen", "Anna", "Lukas", "Lea", "Maximilian", "Sophie", "Felix", "Johanna", "Tobias", "Katharina",
           "Björn", "Jörg", "Uwe", "Dörte", "Matthias", "Anja", "Sven", "Birgit", "Stefan", "Ulrike",
           "Torsten", "Henrike", "Klaus", "Gisela", "Florian", "Franziska", "Dirk", "Sabine", "Günther", "Käthe"],
    "fr": ["François", "Hélène", "Jérôme", "Anaïs", "Léa", "Mathieu", "Camille", "Théo", "Chloé", "Benoît",
           "Amélie", "Grégoire", "Maëlle", "Sébastien", "Élodie", "Loïc", "Margaux", "Rémi", "Noémie", "Hugo",
           "Céline", "Étienne", "Clémence", "Quentin", "Inès", "Aurélien", "Solène", "Thibault", "Océane", "Cédric"],
    "in": ["Priya", "Rahul", "Ananya", "Arjun", "Kavya", "Vikram", "Sneha", "Rohan", "Divya", "Aditya",
           "Lakshmi", "Suresh", "Deepika", "Karthik", "Meera", "Sanjay", "Pooja", "Ravi", "Nisha", "Harish",
           "Aishwarya", "Venkatesh", "Shreya", "Manoj", "Swati", "Abhishek", "Gayatri", "Naveen", "Ishita", "Prakash"],
}
LAST = {
    "us": ["Johnson", "Williams", "Brown", "Miller", "Davis", "Garcia", "Rodriguez", "Martinez", "Hernandez", "Lopez",
           "Wilson", "Anderson", "Thomas", "Jackson", "Thompson", "Robinson", "Lewis", "Walker", "Ramirez", "Nguyen",
           "Carter", "Mitchell", "Perez", "Roberts", "Turner", "Phillips", "Campbell", "Parker", "Evans", "Edwards"],
    "uk": ["Smith", "Jones", "Taylor", "Davies", "Wright", "Hughes", "Patel", "Murphy", "Cooper", "Ward",
           "Price", "Fletcher", "Pritchard", "MacLeod", "Fraser", "Llewellyn", "Bellamy", "Ashworth", "Whitfield", "Pemberton",
           "Gallagher", "Sutherland", "Blackwood", "Thornton", "Haworth", "Kendrick", "Ogilvy", "Rutherford", "Caldwell", "Hargreaves"],
    "de": ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
           "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann",
           "Krüger", "Hartmann", "Lange", "Köhler", "Jäger", "Vogel", "Brandt", "Günther", "Böhm", "Seidel"],
    "fr": ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
           "Lefèvre", "Fournier", "Girard", "Bonnet", "Dupont", "Lambert", "Fontaine", "Rousseau", "Vincent", "Muller",
           "Lefebvre", "Faure", "André", "Mercier", "Blanc", "Guérin", "Boyer", "Garnier", "Chevalier", "Barbier"],
    "in": ["Sharma", "Verma", "Iyer", "Reddy", "Nair", "Gupta", "Kapoor", "Menon", "Rao", "Pillai",
           "Chatterjee", "Banerjee", "Mukherjee", "Joshi", "Kulkarni", "Deshpande", "Agarwal", "Malhotra", "Srinivasan", "Krishnan",
           "Bhattacharya", "Subramanian", "Chopra", "Saxena", "Trivedi", "Naidu", "Hegde", "Shetty", "Bose", "Mehta"],
}
LOCALES = ("us", "uk", "de", "fr", "in")

EMAIL_DOMAINS = {
    "us": ["gmail.com", "outlook.com", "yahoo.com", "icloud.com", "acme-corp.com", "example.com", "comcast.net", "proton.me"],
    "uk": ["gmail.com", "btinternet.com", "yahoo.co.uk", "outlook.com", "sky.com", "example.co.uk", "northwind.co.uk"],
    "de": ["web.de", "gmx.de", "t-online.de", "gmail.com", "posteo.de", "example.de", "firma-mueller.de"],
    "fr": ["orange.fr", "free.fr", "laposte.net", "gmail.com", "sfr.fr", "example.fr", "entreprise-dupont.fr"],
    "in": ["gmail.com", "rediffmail.com", "yahoo.co.in", "outlook.com", "tcs-example.in", "example.in", "infotech.co.in"],
}
ASCII_FOLD = str.maketrans({"ü": "ue", "ö": "oe", "ä": "ae", "ß": "ss", "é": "e", "è": "e", "ê": "e", "ë": "e",
                            "ï": "i", "î": "i", "ô": "o", "à": "a", "â": "a", "ç": "c", "û": "u", "ù": "u",
                            "É": "E", "Ü": "Ue", "Ö": "Oe", "Ä": "Ae"})

US_AREAS = ["212", "213", "305", "312", "415", "503", "512", "617", "646", "702", "713", "808", "919", "206",
            "303", "404", "470", "628", "720", "818", "925", "972", "347", "469"]
US_STATES = [("Springfield", "IL", "627"), ("Austin", "TX", "787"), ("Portland", "OR", "972"), ("Denver", "CO", "802"),
             ("Columbus", "OH", "432"), ("Raleigh", "NC", "276"), ("Madison", "WI", "537"), ("Boise", "ID", "837"),
             ("Tucson", "AZ", "857"), ("Albany", "NY", "122"), ("Savannah", "GA", "314"), ("Fresno", "CA", "937")]
US_STREETS = ["Maple", "Oak", "Cedar", "Elm", "Washington", "Lincoln", "Park", "Lakeview", "Sunset", "Highland",
              "Ridge", "Willow", "Franklin", "Jefferson", "Chestnut", "Pine"]
UK_PLACES = [("London", ["SW1A", "NW1", "E14", "SE10", "W2", "N7"]), ("Manchester", ["M1", "M14", "M20"]),
             ("Bristol", ["BS1", "BS8"]), ("Leeds", ["LS1", "LS6"]), ("Edinburgh", ["EH1", "EH9"]),
             ("Cardiff", ["CF10", "CF24"]), ("Glasgow", ["G1", "G12"]), ("Brighton", ["BN1", "BN2"])]
UK_STREETS = ["Baker Street", "Victoria Road", "Church Lane", "High Street", "Mill Road", "Station Road",
              "Queensway", "Kings Avenue", "Albert Terrace", "Cromwell Gardens", "Priory Close", "Elm Grove"]
DE_PLACES = [("Berlin", "10"), ("München", "80"), ("Hamburg", "20"), ("Köln", "50"), ("Frankfurt am Main", "60"),
             ("Düsseldorf", "40"), ("Stuttgart", "70"), ("Leipzig", "04"), ("Nürnberg", "90"), ("Bremen", "28")]
DE_STREETS = ["Hauptstraße", "Bahnhofstraße", "Schillerstraße", "Goethestraße", "Gartenweg", "Lindenallee",
              "Königsallee", "Friedrichstraße", "Am Marktplatz", "Rosenstraße", "Bergstraße", "Mühlenweg"]
FR_PLACES = [("Paris", "750"), ("Lyon", "6900"), ("Marseille", "1300"), ("Toulouse", "3100"), ("Nantes", "4400"),
             ("Bordeaux", "3300"), ("Lille", "5900"), ("Strasbourg", "6700")]
FR_STREETS = ["rue de la Paix", "avenue Victor Hugo", "boulevard Saint-Michel", "rue du Faubourg Saint-Antoine",
              "rue de la République", "place Bellecour", "rue des Écoles", "allée des Tilleuls", "quai de la Loire",
              "rue Nationale", "impasse des Lilas", "chemin du Moulin"]
IN_PLACES = [("Bengaluru", "Karnataka", "560"), ("Mumbai", "Maharashtra", "400"), ("Chennai", "Tamil Nadu", "600"),
             ("Hyderabad", "Telangana", "500"), ("Pune", "Maharashtra", "411"), ("New Delhi", "Delhi", "110"),
             ("Kochi", "Kerala", "682"), ("Kolkata", "West Bengal", "700")]
IN_AREAS = ["Indiranagar", "Koramangala", "Andheri West", "T. Nagar", "Banjara Hills", "Kothrud", "Saket",
            "Salt Lake", "Jayanagar", "Powai"]
IN_BUILDINGS = ["Sai Residency", "Green Park Apartments", "Lakshmi Nivas", "Prestige Towers", "Shanti Kunj",
                "Brigade Gardens", "Ganga Enclave"]
IN_ROADS = ["MG Road", "100 Feet Road", "Link Road", "Anna Salai", "FC Road", "Ring Road", "Station Road"]

PRODUCTS = ["Aurora Desk Lamp", "Nimbus 2 Backpack", "Orion Standing Desk", "Harper Oak Chair", "Ella Rocking Chair",
            "Jasper Floor Lamp", "Olivia Wrap Dress", "Morgan Leather Sofa", "Atlas Travel Mug", "Sierra Hiking Boots",
            "Luna Night Light", "Vega Wireless Earbuds", "Summit Rain Jacket", "Piper Ceramic Vase", "Milo Dog Bed",
            "Austin Denim Jacket", "Beatrice Tea Set", "Carter Wall Clock", "Stella Yoga Mat", "Felix Desk Organiser"]
CAPITALISED = ["Customer Success Team", "Quarterly Business Review", "Black Friday", "Premium Plan", "Release Notes",
               "Terms of Service", "General Availability", "Incident Review", "Grand Total", "Enterprise Edition",
               "Data Protection Officer", "Payment Gateway", "Order Confirmation", "Service Desk", "Privacy Policy",
               "Christmas Sale", "Support Portal", "Account Settings", "Billing Cycle", "Board Meeting",
               "Kubernetes Operator", "Golden Gate", "Happy Hour", "Silver Tier", "Early Access"]
CITIES_BARE = ["Berlin", "London", "Paris", "Mumbai", "Austin", "Lyon", "Manchester", "Pune", "Hamburg", "Denver"]
TEAMS = ["payments", "platform", "growth", "billing", "infra", "checkout", "identity", "search", "data", "mobile"]
HOSTS = ["db-primary.internal", "pg-replica-2.internal", "pg.prod.acme.internal", "orders-db.cluster-c9xk2.eu-west-1.rds.amazonaws.com",
         "mysql.staging.svc.cluster.local", "localhost", "cache-01.internal", "mq.internal"]
WORDS = ["alpha", "bravo", "orders", "billing", "checkout", "inventory", "ledger", "reports", "gateway", "sync",
         "notify", "search", "catalog", "shipping", "accounts", "profile"]

TEST_CARDS = ["4242424242424242", "4111111111111111", "5555555555554444", "378282246310005", "6011111111111117",
              "4000056655665556", "5105105105105100", "3530111333300000", "4012888888881881", "371449635398431",
              "2223003122003222", "4000002500003155"]

# IBAN: country, total length, BBAN builder name.
IBAN_COUNTRIES = [("DE", 22), ("GB", 22), ("FR", 27), ("ES", 24), ("IT", 27), ("NL", 18), ("BE", 16),
                  ("CH", 21), ("AT", 20), ("PL", 28), ("IE", 22)]


# --------------------------------------------------------------------------
# Values: personal data, secrets and negatives
# --------------------------------------------------------------------------


def base62(n: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = AL[r] + out
    return out or "0"


def luhn_check_digit(payload: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return luhn_check_digit(number[:-1]) == number[-1]


def iban_check(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    digits = "".join(str(int(c, 36)) for c in rearranged)
    return "%02d" % (98 - int(digits) % 97)


def iban_valid(iban: str) -> bool:
    s = iban.replace(" ", "")
    s = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in s)) % 97 == 1


@dataclass
class Service:
    name: str
    human: str
    keys: list  # config keys in snake_case; env names are these in upper case
    gen: object  # V -> Val (the value as written, with the secret labelled inside)


class V:
    """All random values of one genre, drawn from one seeded stream."""

    def __init__(self, seed: str):
        self.r = random.Random(seed)
        self.services = build_services()

    # -- primitives
    def choice(self, seq):
        return seq[self.r.randrange(len(seq))]

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def n(self, lo: int, hi: int) -> int:
        return self.r.randint(lo, hi)

    def rs(self, alphabet: str, k: int) -> str:
        return "".join(alphabet[self.r.randrange(len(alphabet))] for _ in range(k))

    def digits(self, k: int) -> str:
        return self.rs(DG, k)

    def hex(self, k: int) -> str:
        return self.rs(HEX, k)

    def b64(self, nbytes: int, urlsafe=False, pad=True) -> str:
        raw = bytes(self.r.randrange(256) for _ in range(nbytes))
        s = base64.urlsafe_b64encode(raw).decode() if urlsafe else base64.b64encode(raw).decode()
        return s if pad else s.rstrip("=")

    def locale(self) -> str:
        return self.choice(LOCALES)

    # -- people
    def first(self, loc=None) -> str:
        return self.choice(FIRST[loc or self.locale()])

    def last(self, loc=None) -> str:
        return self.choice(LAST[loc or self.locale()])

    def full_name(self, loc=None) -> str:
        loc = loc or self.locale()
        if loc == "us" and self.chance(0.15):
            return "%s %s. %s" % (self.first(loc), self.choice(UP), self.last(loc))
        return "%s %s" % (self.first(loc), self.last(loc))

    def name(self, loc=None) -> Val:
        return item("person_name", self.full_name(loc))

    def email_text(self, loc=None, person=None) -> str:
        loc = loc or self.locale()
        if person is None:
            person = (self.first(loc), self.last(loc))
        f = person[0].translate(ASCII_FOLD).lower()
        l = person[1].translate(ASCII_FOLD).lower().replace(" ", "")
        style = self.n(0, 7)
        local = [f"{f}.{l}", f"{f[0]}{l}", f"{f}_{l}{self.n(1, 99)}", f"{f}{self.n(70, 99)}",
                 f"{f}.{l}+{self.choice(['orders', 'news', 'work', 'shop'])}", f"{l}.{f}", f"{f}-{l}",
                 self.choice(["billing", "support", "hr", "accounts", "sales", "ops", "security", "noreply"])][style]
        dom = self.choice(EMAIL_DOMAINS[loc])
        if self.chance(0.08):
            dom = self.choice(["mail", "eu", "corp", "in"]) + "." + dom
        return f"{local}@{dom}"

    def email(self, loc=None, person=None) -> Val:
        return item("email", self.email_text(loc, person))

    def phone(self, loc=None) -> Val:
        loc = loc or self.locale()
        if loc == "us":
            a, e, l = self.choice(US_AREAS), str(self.n(2, 9)) + self.digits(2), self.digits(4)
            if e[1:] == "11":
                e = e[0] + "21"
            f = self.choice(["+1 {a} {e} {l}", "+1-{a}-{e}-{l}", "({a}) {e}-{l}", "{a}-{e}-{l}", "{a}.{e}.{l}",
                             "+1{a}{e}{l}", "1-{a}-{e}-{l}", "+1 ({a}) {e}-{l}"])
            s = f.format(a=a, e=e, l=l)
        elif loc == "uk":
            k = self.n(0, 3)
            if k == 0:  # London
                n1, n2 = self.choice("378") + self.digits(3), self.digits(4)
                s = self.choice(["020 {a} {b}", "+44 20 {a} {b}", "+44 (0)20 {a} {b}", "+442{c}"]).format(
                    a=n1, b=n2, c="0" + n1 + n2)
            elif k == 1:  # mobile
                p, rest = "7" + self.choice("4579") + self.digits(2), self.digits(6)
                s = self.choice(["0{p} {r}", "+44 {p} {r}", "+44{p}{r}", "0{p}{r}", "+44 (0){p} {r}"]).format(
                    p=p, r=rest)
            else:
                area = self.choice(["161", "121", "113", "117", "131", "141"])
                a, b = str(self.n(2, 9)) + self.digits(2), self.digits(4)
                s = self.choice(["0{c} {a} {b}", "+44 {c} {a} {b}", "(0{c}) {a} {b}"]).format(c=area, a=a, b=b)
        elif loc == "de":
            k = self.n(0, 2)
            if k == 0:
                mob = self.choice(["151", "152", "160", "170", "171", "172", "175", "176", "177", "179"])
                rest = self.digits(8 if mob[:2] in ("15", "17") else 7)
                s = self.choice(["0{m} {r}", "+49 {m} {r}", "+49{m}{r}", "0{m}/{r}", "0{m}-{r}", "+49 (0){m} {r}"]).format(
                    m=mob, r=rest)
            else:
                area = self.choice(["30", "89", "40", "221", "69", "211", "711"])
                rest = str(self.n(2, 9)) + self.digits(6 if len(area) == 2 else 5)
                s = self.choice(["0{a} {r}", "+49 {a} {r}", "+49 (0){a} {r}", "0{a}/{r}", "0{a}-{r}"]).format(
                    a=area, r=rest)
        elif loc == "fr":
            first = self.choice(["1", "2", "3", "4", "5", "6", "7", "9"])
            pairs = [self.digits(2) for _ in range(4)]
            k = self.n(0, 4)
            if k == 0:
                s = "0" + first + " " + " ".join(pairs)
            elif k == 1:
                s = "+33 " + first + " " + " ".join(pairs)
            elif k == 2:
                s = "0" + first + "." + ".".join(pairs)
            elif k == 3:
                s = "+33" + first + "".join(pairs)
            else:
                s = "+33 (0)" + first + " " + " ".join(pairs)
        else:  # in
            if self.chance(0.7):
                m = self.choice("6789") + self.digits(4)
                rest = self.digits(5)
                s = self.choice(["+91 {m} {r}", "+91-{m}{r}", "+91{m}{r}", "0{m} {r}", "{m} {r}", "{m}-{r}",
                                 "+91 {m}-{r}"]).format(m=m, r=rest)
            else:
                area, n = self.choice([("11", 8), ("22", 8), ("80", 8), ("44", 8), ("40", 8), ("20", 8)])
                rest = self.choice("2456") + self.digits(n - 1)
                s = self.choice(["0{a}-{r}", "+91 {a} {r}", "0{a} {x} {y}", "+91-{a}-{r}"]).format(
                    a=area, r=rest, x=rest[:4], y=rest[4:])
        return item("phone", s)

    def card_number(self) -> str:
        while True:
            issuer = self.n(0, 9)
            if issuer <= 3:
                prefix, length = "4" + self.digits(5), 16
            elif issuer <= 5:
                prefix, length = self.choice(["51", "52", "53", "54", "55"]) + self.digits(4), 16
            elif issuer == 6:
                prefix, length = str(self.n(2221, 2720)) + self.digits(2), 16
            elif issuer == 7:
                prefix, length = self.choice(["34", "37"]) + self.digits(4), 15
            elif issuer == 8:
                prefix, length = self.choice(["6011", "6500", "6541", "6587"]) + self.digits(2), 16
            else:
                if self.chance(0.5):
                    prefix, length = str(self.n(3528, 3589)) + self.digits(2), 16
                else:
                    prefix, length = "36" + self.digits(4), 14
            payload = prefix + self.digits(length - len(prefix) - 1)
            num = payload + luhn_check_digit(payload)
            if num not in TEST_CARDS and len(set(num)) > 3:
                return num

    @staticmethod
    def group_card(num: str, sep: str) -> str:
        if len(num) == 15:
            groups = [num[:4], num[4:10], num[10:]]
        elif len(num) == 14:
            groups = [num[:4], num[4:10], num[10:]]
        else:
            groups = [num[i:i + 4] for i in range(0, len(num), 4)]
        return sep.join(groups)

    def card(self) -> Val:
        num = self.card_number()
        sep = self.choice(["", "", " ", " ", "-"])
        return item("payment_card", self.group_card(num, sep) if sep else num)

    def iban_text(self) -> str:
        country, length = self.choice(IBAN_COUNTRIES)
        if country == "GB":
            bban = self.choice(["NWBK", "BARC", "LOYD", "HBUK", "MIDL"]) + self.digits(14)
        elif country == "IE":
            bban = self.choice(["AIBK", "BOFI"]) + self.digits(14)
        elif country == "NL":
            bban = self.choice(["ABNA", "INGB", "RABO", "TRIO", "SNSB"]) + self.digits(10)
        elif country == "IT":
            bban = self.choice(UP) + self.digits(22)
        elif country == "FR":
            bank, branch, acct = self.digits(5), self.digits(5), self.digits(11)
            key = 97 - (89 * int(bank) + 15 * int(branch) + 3 * int(acct)) % 97
            bban = bank + branch + acct + "%02d" % key
        elif country == "BE":
            body = self.digits(10)
            chk = int(body) % 97 or 97
            bban = body + "%02d" % chk
        else:
            bban = self.digits(length - 4)
        assert len(bban) == length - 4
        iban = country + iban_check(country, bban) + bban
        assert iban_valid(iban)
        return iban

    def iban(self) -> Val:
        s = self.iban_text()
        if self.chance(0.5):
            s = " ".join(s[i:i + 4] for i in range(0, len(s), 4))
        return item("iban", s)

    def ssn(self, sep=None) -> Val:
        area = self.n(1, 899)
        if area == 666:
            area = 667
        s = "%03d%s%02d%s%04d"
        if sep is None:
            sep = self.choice(["-", "-", "-", " "])
        return item("us_ssn", s % (area, sep, self.n(1, 99), sep, self.n(1, 9999)))

    def ipv4_text(self) -> str:
        k = self.n(0, 9)
        if k <= 1:
            return "10.%d.%d.%d" % (self.n(0, 255), self.n(0, 255), self.n(1, 254))
        if k == 2:
            return "192.168.%d.%d" % (self.n(0, 255), self.n(1, 254))
        if k == 3:
            return "172.%d.%d.%d" % (self.n(16, 31), self.n(0, 255), self.n(1, 254))
        first = self.choice([23, 31, 37, 45, 49, 52, 62, 77, 81, 84, 91, 93, 103, 104, 117, 122, 151, 176, 185, 188,
                             193, 203, 212, 217])
        return "%d.%d.%d.%d" % (first, self.n(0, 255), self.n(0, 255), self.n(1, 254))

    def ipv6_text(self) -> str:
        groups = ["%x" % self.n(0, 0xFFFF) for _ in range(8)]
        groups[0] = self.choice(["2001", "2a02", "2a01", "2600", "2405", "2003", "fe80", "2c0f"])
        k = self.n(0, 3)
        if k == 0:
            return ":".join("%04x" % int(g, 16) for g in groups)
        if k == 1:
            return ":".join(groups)
        cut = self.n(2, 5)
        tail = self.n(1, 2)
        return ":".join(groups[:cut]) + "::" + ":".join(groups[8 - tail:])

    def ip_text(self) -> str:
        return self.ipv6_text() if self.chance(0.25) else self.ipv4_text()

    def ip(self) -> Val:
        return item("ip_address", self.ip_text())

    def mac(self) -> Val:
        b = [self.n(0, 255) for _ in range(6)]
        b[0] &= 0xFE
        k = self.n(0, 4)
        if k == 0:
            s = ":".join("%02x" % x for x in b)
        elif k == 1:
            s = ":".join("%02X" % x for x in b)
        elif k == 2:
            s = "-".join("%02X" % x for x in b)
        elif k == 3:
            s = "-".join("%02x" % x for x in b)
        else:
            s = ".".join("%02x%02x" % (b[i], b[i + 1]) for i in (0, 2, 4))
        return item("mac_address", s)

    MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December"]
    MONTHS_DE = ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
                 "November", "Dezember"]
    MONTHS_FR = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
                 "novembre", "décembre"]

    def date_text(self, y: int, style: str | None = None) -> str:
        m, d = self.n(1, 12), self.n(1, 28)
        style = style or self.choice(["iso", "iso", "us", "eu_dot", "uk", "long", "long_us", "abbr"])
        if style == "iso":
            return "%04d-%02d-%02d" % (y, m, d)
        if style == "us":
            return "%02d/%02d/%04d" % (m, d, y)
        if style == "eu_dot":
            return "%02d.%02d.%04d" % (d, m, y)
        if style == "uk":
            return "%02d/%02d/%04d" % (d, m, y)
        if style == "long":
            return "%d %s %d" % (d, self.MONTHS[m - 1], y)
        if style == "long_us":
            return "%s %d, %d" % (self.MONTHS[m - 1], d, y)
        if style == "de":
            return "%d. %s %d" % (d, self.MONTHS_DE[m - 1], y)
        if style == "fr":
            return "%d %s %d" % (d, self.MONTHS_FR[m - 1], y)
        return "%02d-%s-%04d" % (d, self.MONTHS[m - 1][:3], y)

    def dob(self, style=None) -> Val:
        return item("date_of_birth", self.date_text(self.n(1938, 2006), style))

    def address_text(self, loc=None) -> str:
        loc = loc or self.locale()
        if loc == "us":
            city, st, zp = self.choice(US_STATES)
            apt = self.choice(["", "", "", ", Apt %d%s" % (self.n(1, 30), self.choice("ABCD")), ", Suite %d" % self.n(100, 950)])
            return "%d %s %s%s, %s, %s %s%02d" % (self.n(10, 9899), self.choice(US_STREETS),
                                                 self.choice(["Street", "Ave", "Avenue", "Blvd", "Road", "Drive", "Lane"]),
                                                 apt, city, st, zp, self.n(1, 99))
        if loc == "uk":
            city, outs = self.choice(UK_PLACES)
            pc = "%s %d%s" % (self.choice(outs), self.n(1, 9), self.rs("ABDEFGHJLNPQRSTUWXYZ", 2))
            flat = self.choice(["", "", "Flat %d, " % self.n(1, 40)])
            num = str(self.n(1, 240)) + self.choice(["", "", "", "A", "B"])
            return "%s%s %s, %s %s" % (flat, num, self.choice(UK_STREETS), city, pc)
        if loc == "de":
            city, plz = self.choice(DE_PLACES)
            return "%s %d%s, %s%s %s" % (self.choice(DE_STREETS), self.n(1, 180), self.choice(["", "", "a", "b"]),
                                          plz, self.digits(3), city)
        if loc == "fr":
            city, cp = self.choice(FR_PLACES)
            cp = (cp + self.digits(5 - len(cp)))[:5]
            return "%d%s %s, %s %s" % (self.n(1, 160), self.choice(["", "", " bis", " ter"]), self.choice(FR_STREETS),
                                       cp, city)
        city, state, pin = self.choice(IN_PLACES)
        return "%s%s, %s, %s, %s, %s %s%s" % (
            self.choice(["Flat %d%s, " % (self.n(1, 12), self.choice(["01", "02", "03", "04"])),
                         "No. %d, " % self.n(1, 300), ""]),
            self.choice(IN_BUILDINGS), self.choice(IN_ROADS), self.choice(IN_AREAS), city, state, pin, self.digits(3))

    def address(self, loc=None) -> Val:
        return item("postal_address", self.address_text(loc))

    # -- secrets
    def secret(self, service: Service | None = None) -> tuple[Service, Val]:
        svc = service or self.choice(self.services)
        return svc, svc.gen(self)

    def high_entropy(self, k=None, symbols=False) -> str:
        k = k or self.n(16, 40)
        alphabet = AL + ("!%^&*-_+=.~@" if symbols else "")
        while True:
            s = self.rs(alphabet, k)
            if any(c in DG for c in s) and any(c in UP for c in s) and any(c in LO for c in s):
                return s

    def url_password(self) -> str:
        return self.high_entropy(self.n(14, 28), symbols=False)

    def pem(self, label: str, nbytes: int, width=64, lead: str = "") -> str:
        body = lead + self.b64(nbytes)
        body = body[: len(body) - len(body) % 4] if not lead else body
        lines = [body[i:i + width] for i in range(0, len(body), width)]
        return "-----BEGIN %s-----\n%s\n-----END %s-----" % (label, "\n".join(lines), label)

    def jwt_text(self) -> str:
        def b64u(obj):
            return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")
        alg = self.choice(["HS256", "RS256", "ES256", "HS512"])
        header = {"alg": alg, "typ": "JWT"}
        if self.chance(0.4):
            header["kid"] = self.hex(16)
        iat = self.n(1_650_000_000, 1_790_000_000)
        payload = {"sub": self.choice(["usr_", "svc_", ""]) + self.rs(AL, 12), "iat": iat, "exp": iat + 3600 * self.n(1, 48)}
        if self.chance(0.5):
            payload["scope"] = self.choice(["read:orders write:orders", "admin", "openid profile", "repo"])
        if self.chance(0.4):
            payload["iss"] = self.choice(["https://auth.acme.io/", "https://login.example.net", "api-gateway"])
        sig_len = {"HS256": 43, "HS512": 86, "ES256": 86, "RS256": 342}[alg]
        return "%s.%s.%s" % (b64u(header), b64u(payload), self.rs(B64U, sig_len))

    def uuid(self) -> str:
        h = self.hex(32)
        h = h[:12] + "4" + h[13:16] + self.choice("89ab") + h[17:]
        return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])

    # -- negatives
    def n_uuid(self):
        return neg(self.uuid(), "uuid")

    def n_git_sha(self):
        return neg(self.hex(40) if self.chance(0.6) else self.hex(self.n(7, 12)), "git_sha")

    def n_sha256(self):
        return neg(self.hex(64), "sha256")

    def n_md5(self):
        return neg(self.hex(32), "md5")

    def n_version(self):
        k = self.n(0, 6)
        if k == 0:
            s = "%d.%d.%d.%d" % (self.n(1, 9), self.n(0, 9), self.n(0, 9), self.n(0, 9))
        elif k == 1:
            s = "v%d.%d.%d.%d" % (self.n(1, 12), self.n(0, 3), self.n(0, 3), self.n(0, 9))
        elif k == 2:
            s = "%d.%d.%d" % (self.n(0, 12), self.n(0, 40), self.n(0, 20))
        elif k == 3:
            s = "%d.%d.%d.%d" % (self.n(10, 126), 0, self.n(1000, 6999), self.n(10, 250))
        elif k == 4:
            s = "v%d.%d.%d-%s.%d" % (self.n(0, 5), self.n(0, 30), self.n(0, 9), self.choice(["rc", "beta", "alpha"]), self.n(1, 5))
        elif k == 5:
            s = "10.0.%d.%d" % (self.n(17000, 22631), self.n(1, 3999))
        else:
            s = "%d.%d.%d+build.%d" % (self.n(1, 4), self.n(0, 20), self.n(0, 9), self.n(100, 9999))
        return neg(s, "version")

    def ts_text(self, style=None) -> str:
        y, mo, d = self.n(2021, 2026), self.n(1, 12), self.n(1, 28)
        h, mi, s = self.n(0, 23), self.n(0, 59), self.n(0, 59)
        style = style or self.choice(["iso_z", "iso_ms", "space", "space_ms"])
        if style == "iso_z":
            return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (y, mo, d, h, mi, s)
        if style == "iso_ms":
            return "%04d-%02d-%02dT%02d:%02d:%02d.%03d+00:00" % (y, mo, d, h, mi, s, self.n(0, 999))
        if style == "space":
            return "%04d-%02d-%02d %02d:%02d:%02d" % (y, mo, d, h, mi, s)
        if style == "space_ms":
            return "%04d-%02d-%02d %02d:%02d:%02d,%03d" % (y, mo, d, h, mi, s, self.n(0, 999))
        if style == "nginx":
            return "%02d/%s/%04d:%02d:%02d:%02d +0000" % (d, self.MONTHS[mo - 1][:3], y, h, mi, s)
        if style == "rfc2822":
            return "%s, %d %s %04d %02d:%02d:%02d %s" % (self.choice(["Mon", "Tue", "Wed", "Thu", "Fri"]), d,
                                                       self.MONTHS[mo - 1][:3], y, h, mi, s,
                                                       self.choice(["+0000", "+0100", "+0530", "-0500"]))
        if style == "syslog":
            return "%s %2d %02d:%02d:%02d" % (self.MONTHS[mo - 1][:3], d, h, mi, s)
        raise ValueError(style)

    def n_timestamp(self, style=None):
        return neg(self.ts_text(style), "timestamp")

    def n_time(self):
        return neg("%02d:%02d:%02d" % (self.n(0, 23), self.n(0, 59), self.n(0, 59)), "time")

    def n_date(self):
        return neg(self.date_text(self.n(2019, 2026)), "non_birth_date")

    def n_order(self):
        k = self.n(0, 4)
        s = ["ORD-%d-%06d" % (self.n(2021, 2026), self.n(1, 999999)), "INV-%08d" % self.n(1, 99999999),
             "PO-%04d-%02d" % (self.n(1000, 9999), self.n(1, 99)), "#%d" % self.n(100000, 999999),
             "A%s-%s" % (self.digits(3), self.digits(7))][k]
        return neg(s, "invoice_id" if s.startswith("INV") else "order_id")

    def n_price(self):
        amt = self.n(1, 499999) / 100
        k = self.n(0, 5)
        s = ["$%s" % format(amt, ",.2f"), "€%s" % format(amt, ".2f").replace(".", ","),
             "£%.2f" % amt, "₹%s" % format(int(amt * 10), ","), "USD %.2f" % amt,
             "%s €" % format(amt, ".2f").replace(".", ",")][k]
        return neg(s, "price")

    def n_isbn(self):
        body = self.choice(["978", "979"]) + self.digits(9)
        total = sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(body))
        full = body + str((10 - total % 10) % 10)
        if self.chance(0.5):
            full = "%s-%s-%s-%s-%s" % (full[:3], full[3], full[4:7], full[7:12], full[12])
        return neg(full, "isbn")

    def n_phone_like_id(self):
        s = self.choice(["9", "8", "7", "4", "2"]) + self.digits(self.n(9, 11))
        return neg(s, "phone_like_id")

    def n_luhn_invalid(self):
        while True:
            s = self.choice(["4", "5", "6"]) + self.digits(15)
            if not luhn_valid(s):
                return neg(s, "luhn_invalid_number")

    def n_test_card(self):
        num = self.choice(TEST_CARDS)
        sep = self.choice(["", " ", "-"])
        return neg(V.group_card(num, sep) if sep else num, "test_card")

    def n_base64(self):
        return neg(self.b64(self.n(24, 120)), "base64_blob")

    PLACEHOLDERS = ["changeme", "<your-key>", "${SECRET}", "{{ token }}", "xxxxxxxx", "YOUR_API_KEY_HERE", "REPLACE_ME",
                    "********", "<password>", "${DB_PASSWORD}", "{{ .Values.apiKey }}", "%(secret)s", "dummy",
                    "password123", "<insert token>", "TODO", "example", "$API_TOKEN", "xxxx-xxxx-xxxx-xxxx",
                    "sk_live_xxxxxxxxxxxxxxxxxxxxxxxx", "ghp_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "<redacted>",
                    "{{ secrets.DEPLOY_TOKEN }}", "os.environ['API_KEY']"]

    def n_placeholder(self, yaml_safe=False):
        p = self.choice(self.PLACEHOLDERS)
        if yaml_safe and p[0] in "{%*<$":
            p = self.choice(["changeme", "REPLACE_ME", "xxxxxxxx", "YOUR_API_KEY_HERE", "dummy"])
        return neg(p, "placeholder")

    def n_example_key(self):
        return neg(self.choice(["AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                "AKIAI44QH8DHBEXAMPLE", "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"]), "example_key")

    def n_product(self):
        return neg(self.choice(PRODUCTS), "product_name")

    def n_capitalised(self):
        return neg(self.choice(CAPITALISED), "capitalised_not_name")

    def n_object_id(self):
        return neg(self.choice(["req_", "cus_", "ch_", "pi_", "evt_", "in_", "txn_", "sub_"]) + self.rs(AL, self.n(14, 24)),
                   "object_id")

    def n_publishable(self):
        return neg("pk_live_" + self.rs(AL, self.n(24, 99)), "publishable_key")

    def n_trace_id(self):
        return neg(self.hex(32), "trace_id")

    def n_span_id(self):
        return neg(self.hex(16), "span_id")

    def n_image_digest(self):
        return neg("sha256:" + self.hex(64), "image_digest")

    def n_ssh_remote(self):
        return neg("git@%s:%s/%s.git" % (self.choice(["github.com", "gitlab.com", "bitbucket.org"]),
                                         self.choice(["acme", "northwind", "sandbar-labs", "infra"]),
                                         self.choice(WORDS)), "ssh_remote")

    def n_package_spec(self):
        return neg("@%s/%s@%d.%d.%d" % (self.choice(["babel", "types", "aws-sdk", "angular", "acme"]),
                                        self.choice(["core", "node", "client-s3", "cli", "utils-date"]),
                                        self.n(1, 20), self.n(0, 30), self.n(0, 15)), "package_spec")

    def n_oid(self):
        return neg("1.3.6.1.%d.%d.%d.%d" % (self.n(2, 4), self.n(1, 9), self.n(1, 400), self.n(1, 30)), "oid")

    def n_card_expiry(self):
        return neg("%02d/%02d" % (self.n(1, 12), self.n(25, 31)), "card_expiry")

    def n_key_id(self):
        return neg(self.hex(40), "key_id")


# --------------------------------------------------------------------------
# Secret services: realistic formats, checksums where the format has them
# --------------------------------------------------------------------------


def sec(service: str, text: str) -> Item:
    return Item("secret", text, {"service": service})


def github_classic(v: V) -> str:
    body = v.rs(AL, 30)
    crc = zlib.crc32(body.encode()) & 0xFFFFFFFF
    return v.choice(["ghp_", "ghp_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"]) + body + base62(crc).rjust(6, "0")


def npm_token(v: V) -> str:
    body = v.rs(AL, 30)
    crc = zlib.crc32(body.encode()) & 0xFFFFFFFF
    return "npm_" + body + base62(crc).rjust(6, "0")


def rsa_pem(v: V) -> str:
    k = v.n(0, 5)
    if k <= 2:
        return v.pem("EC PRIVATE KEY", 121, lead="MHcCAQEEI")
    if k == 3:
        return v.pem("PRIVATE KEY", 138, lead="MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg")
    if k == 4:
        return v.pem("RSA PRIVATE KEY", 600, lead="MIICXAIBAAKBgQ")
    return v.pem("RSA PRIVATE KEY", 1190, lead="MIIEpAIBAAKCAQEA")


def openssh_pem(v: V) -> str:
    return v.pem("OPENSSH PRIVATE KEY", 290, width=70,
                 lead="b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW")


def pgp_pem(v: V) -> str:
    body = "lQ" + v.choice(["OYBG", "VYBF", "HYBG"]) + v.b64(420)
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    crc = "=" + v.rs(B64, 4)
    return ("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n%s\n%s\n-----END PGP PRIVATE KEY BLOCK-----"
            % ("\n".join(lines), crc))


def user_word(v: V) -> str:
    return v.choice(["app", "admin", "deploy", "svc_orders", "reporting", "etl", "api", "root", "backup", "ci"])


def url_secret(scheme: str, service: str, port: str, path: str, user_opt=False):
    def gen(v: V) -> Val:
        host = v.choice(HOSTS)
        user = "" if (user_opt and v.chance(0.4)) else user_word(v)
        return Val("%s://%s:" % (scheme, user), sec(service, v.url_password()),
                   "@%s%s%s" % (host, port, path.format(db=v.choice(WORDS), n=v.n(0, 15))))
    return gen


def simple(service: str, f):
    return lambda v: Val(sec(service, f(v)))


def build_services() -> list[Service]:
    S = Service
    svcs = [
        S("aws_access_key_id", "AWS access key", ["aws_access_key_id", "access_key_id", "aws_access_key"],
          simple("aws_access_key_id", lambda v: v.choice(["AKIA", "AKIA", "ASIA"]) + v.rs(UP + "234567", 16))),
        S("aws_secret_access_key", "AWS secret key", ["aws_secret_access_key", "secret_access_key", "aws_secret_key"],
          simple("aws_secret_access_key", lambda v: v.rs(UP + LO + DG + "+/", 40))),
        S("aws_session_token", "AWS session token", ["aws_session_token", "session_token"],
          simple("aws_session_token", lambda v: "IQoJb3JpZ2luX2Vj" + v.b64(v.n(150, 240))[:-4])),
        S("github_token", "GitHub token", ["github_token", "gh_token", "github_pat"],
          simple("github_token", github_classic)),
        S("github_fine_grained_token", "GitHub fine-grained token", ["github_token", "gh_pat"],
          simple("github_fine_grained_token", lambda v: "github_pat_11" + v.rs(UP + DG, 20) + "_" + v.rs(AL, 59))),
        S("gitlab_token", "GitLab token", ["gitlab_token", "gitlab_private_token", "ci_job_token"],
          simple("gitlab_token", lambda v: v.choice(["glpat-", "glpat-", "gldt-", "glrt-"]) + v.rs(AL + "-_", 20))),
        S("slack_token", "Slack bot token", ["slack_token", "slack_bot_token", "slack_app_token"],
          simple("slack_token", lambda v: v.choice([
              "xoxb-%s-%s-%s" % (v.digits(v.n(10, 13)), v.digits(v.n(10, 13)), v.rs(AL, 24)),
              "xoxp-%s-%s-%s-%s" % (v.digits(11), v.digits(11), v.digits(13), v.hex(32)),
              "xapp-1-A%s-%s-%s" % (v.rs(UP + DG, 10), v.digits(13), v.hex(64))]))),
        S("slack_webhook", "Slack webhook", ["slack_webhook_url", "slack_webhook", "webhook_url"],
          simple("slack_webhook", lambda v: "https://hooks.slack.com/services/T%s/B%s/%s" % (
              v.rs(UP + DG, 8), v.rs(UP + DG, 10), v.rs(AL, 24)))),
        S("stripe_key", "Stripe secret key", ["stripe_secret_key", "stripe_api_key", "stripe_key"],
          simple("stripe_key", lambda v: v.choice(["sk_live_", "sk_live_", "rk_live_"]) + v.rs(AL, v.choice([24, 99])))),
        S("stripe_webhook_secret", "Stripe webhook secret", ["stripe_webhook_secret", "webhook_signing_secret"],
          simple("stripe_webhook_secret", lambda v: "whsec_" + v.rs(AL, 32))),
        S("twilio", "Twilio API key", ["twilio_api_key", "twilio_key_sid"],
          simple("twilio", lambda v: "SK" + v.hex(32))),
        S("twilio_auth_token", "Twilio auth token", ["twilio_auth_token"],
          simple("twilio_auth_token", lambda v: v.hex(32))),
        S("sendgrid", "SendGrid key", ["sendgrid_api_key", "smtp_password"],
          simple("sendgrid", lambda v: "SG." + v.rs(B64U, 22) + "." + v.rs(B64U, 43))),
        S("openai_key", "OpenAI key", ["openai_api_key", "openai_key"],
          simple("openai_key", lambda v: v.choice([
              "sk-" + v.rs(AL, 20) + "T3BlbkFJ" + v.rs(AL, 20),
              "sk-proj-" + v.rs(B64U, 58) + "T3BlbkFJ" + v.rs(B64U, 58),
              "sk-svcacct-" + v.rs(B64U, 58) + "T3BlbkFJ" + v.rs(B64U, 58)]))),
        S("anthropic_key", "Anthropic key", ["anthropic_api_key", "claude_api_key"],
          simple("anthropic_key", lambda v: "sk-ant-api03-" + v.rs(B64U, 93) + "AA")),
        S("huggingface", "Hugging Face token", ["hf_token", "huggingface_token", "hugging_face_hub_token"],
          simple("huggingface", lambda v: "hf_" + v.rs(UP + LO, 34))),
        S("google_api_key", "Google API key", ["google_api_key", "maps_api_key", "firebase_api_key"],
          simple("google_api_key", lambda v: "AIza" + v.rs(B64U, 35))),
        S("google_oauth_client_secret", "Google OAuth client secret", ["google_client_secret", "oauth_client_secret"],
          simple("google_oauth_client_secret", lambda v: "GOCSPX-" + v.rs(B64U, 28))),
        S("gcp_service_account", "GCP service account key", ["private_key", "gcp_private_key"],
          lambda v: Val(sec("gcp_service_account", v.pem("PRIVATE KEY", 1216, lead="MIIEvQIBADANBgkqhkiG9w0BAQEFAASC")), "\n")),
        S("azure_storage_key", "Azure storage connection string", ["azure_storage_connection_string", "storage_connection"],
          lambda v: Val("DefaultEndpointsProtocol=https;AccountName=%s%s;AccountKey=" % (v.choice(WORDS), v.digits(3)),
                        sec("azure_storage_key", v.b64(64)), ";EndpointSuffix=core.windows.net")),
        S("azure_sas_token", "Azure SAS token", ["azure_sas_token", "sas_token"],
          lambda v: Val("sv=2022-11-02&ss=b&srt=sco&sp=rwdlacx&se=20%d-%02d-01T00:00:00Z&spr=https&sig=" % (
              v.n(25, 27), v.n(1, 12)), sec("azure_sas_token", v.b64(32).replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")))),
        S("azure_client_secret", "Azure AD client secret", ["azure_client_secret", "client_secret"],
          simple("azure_client_secret", lambda v: v.rs(AL, 3) + "8Q~" + v.rs(AL + "-_.~", 31))),
        S("npm_token", "npm token", ["npm_token", "npm_auth_token"], simple("npm_token", npm_token)),
        S("pypi_token", "PyPI token", ["pypi_token", "twine_password", "pypi_api_token"],
          simple("pypi_token", lambda v: "pypi-AgEIcHlwaS5vcmc" + v.rs(B64U, v.n(120, 160)))),
        S("docker_hub", "Docker Hub token", ["docker_password", "dockerhub_token", "docker_hub_token"],
          simple("docker_hub", lambda v: "dckr_pat_" + v.rs(B64U, 27))),
        S("digitalocean", "DigitalOcean token", ["digitalocean_token", "do_token"],
          simple("digitalocean", lambda v: v.choice(["dop_v1_", "doo_v1_", "dor_v1_"]) + v.hex(64))),
        S("heroku", "Heroku API key", ["heroku_api_key"], simple("heroku", lambda v: "HRKU-AA" + v.rs(B64U, 58))),
        S("mailgun", "Mailgun key", ["mailgun_api_key", "mailgun_key"],
          simple("mailgun", lambda v: v.choice(["key-" + v.hex(32), "%s-%s-%s" % (v.hex(32), v.hex(8), v.hex(8))]))),
        S("mailchimp", "Mailchimp key", ["mailchimp_api_key", "mc_api_key"],
          simple("mailchimp", lambda v: v.hex(32) + "-us" + str(v.n(1, 21)))),
        S("datadog", "Datadog API key", ["dd_api_key", "datadog_api_key", "dd_app_key"],
          simple("datadog", lambda v: v.hex(v.choice([32, 40])))),
        S("new_relic", "New Relic key", ["new_relic_api_key", "newrelic_key", "new_relic_license_key"],
          simple("new_relic", lambda v: v.choice(["NRAK-" + v.rs(UP + DG, 27), "NRJS-" + v.hex(19), v.hex(36) + "NRAL"]))),
        S("sentry", "Sentry auth token", ["sentry_auth_token"],
          simple("sentry", lambda v: v.choice(["sntryu_" + v.hex(64), "sntrys_eyJpYXQiO" + v.rs(B64U, 120) + "_" + v.rs(B64U, 43)]))),
        S("shopify", "Shopify token", ["shopify_access_token", "shopify_api_secret"],
          simple("shopify", lambda v: v.choice(["shpat_", "shpss_", "shpca_", "shppa_"]) + v.hex(32))),
        S("square", "Square access token", ["square_access_token", "square_secret"],
          simple("square", lambda v: v.choice(["EAAA" + v.rs(B64U, 60), "sq0atp-" + v.rs(B64U, 22), "sq0csp-" + v.rs(B64U, 43)]))),
        S("paypal_braintree", "Braintree access token", ["braintree_access_token", "paypal_access_token"],
          simple("paypal_braintree", lambda v: "access_token$production$%s$%s" % (v.rs(LO + DG, 16), v.hex(32)))),
        S("jwt", "JWT", ["access_token", "id_token", "jwt", "bearer_token"], simple("jwt", lambda v: v.jwt_text())),
        S("private_key_pem", "private key", ["private_key", "tls_key", "signing_key"], simple("private_key_pem", rsa_pem)),
        S("openssh_private_key", "SSH private key", ["ssh_private_key", "deploy_key", "id_ed25519"],
          simple("openssh_private_key", openssh_pem)),
        S("pgp_private_key", "PGP private key", ["gpg_private_key", "pgp_key", "signing_key"],
          simple("pgp_private_key", pgp_pem)),
        S("basic_auth_url", "URL with credentials", ["registry_url", "index_url", "artifact_url", "proxy_url"],
          lambda v: Val("https://%s:" % user_word(v), sec("basic_auth_url", v.url_password()),
                        "@%s/%s" % (v.choice(["nexus.acme.internal", "pypi.acme.io", "proxy.corp.example", "git.acme.io"]),
                                    v.choice(["simple/", "repository/npm/", "", "api/v1"])))),
        S("basic_auth_header", "Basic auth header", ["authorization"],
          lambda v: Val("Basic ", sec("basic_auth_header", base64.b64encode(
              ("%s:%s" % (user_word(v), v.url_password())).encode()).decode()))),
        S("postgres_url", "Postgres URL", ["database_url", "postgres_url", "db_url"],
          url_secret("postgres", "postgres_url", ":5432", "/{db}")),
        S("mysql_url", "MySQL URL", ["mysql_url", "database_url"], url_secret("mysql", "mysql_url", ":3306", "/{db}")),
        S("mongodb_srv", "MongoDB URL", ["mongodb_uri", "mongo_url"],
          lambda v: Val("mongodb+srv://%s:" % user_word(v), sec("mongodb_srv", v.url_password()),
                        "@cluster0.%s.mongodb.net/%s?retryWrites=true&w=majority" % (v.rs(LO + DG, 5), v.choice(WORDS)))),
        S("redis_url", "Redis URL", ["redis_url", "cache_url"], url_secret("redis", "redis_url", ":6379", "/{n}", user_opt=True)),
        S("amqp_url", "AMQP URL", ["amqp_url", "broker_url", "rabbitmq_url"], url_secret("amqps", "amqp_url", ":5671", "/{db}")),
        S("smtp_url", "SMTP URL", ["smtp_url", "email_url"], url_secret("smtp", "smtp_url", ":587", "")),
        S("jdbc_url", "JDBC URL", ["jdbc_url", "spring_datasource_url"],
          lambda v: Val("jdbc:postgresql://%s:5432/%s?user=%s&password=" % (v.choice(HOSTS), v.choice(WORDS), user_word(v)),
                        sec("jdbc_url", v.url_password()), "&ssl=true")),
        S("generic_password", "password", ["password", "db_password", "admin_password", "smtp_password", "mysql_root_password",
                                           "postgres_password", "ldap_bind_password", "redis_password"],
          simple("generic_password", lambda v: v.high_entropy(v.n(12, 32), symbols=True))),
        S("generic_secret", "secret", ["secret", "secret_key", "client_secret", "app_secret", "session_secret",
                                       "encryption_key", "signing_secret", "hmac_secret"],
          simple("generic_secret", lambda v: v.high_entropy(v.n(24, 64)))),
        S("generic_token", "token", ["auth_token", "api_token", "access_token", "refresh_token", "private_token", "service_token"],
          simple("generic_token", lambda v: v.high_entropy(v.n(24, 48)))),
        S("generic_api_key", "API key", ["api_key", "apikey", "x_api_key", "partner_api_key", "license_key"],
          simple("generic_api_key", lambda v: v.high_entropy(v.n(24, 48)))),
        S("telegram_bot", "Telegram bot token", ["telegram_bot_token", "tg_token"],
          simple("telegram_bot", lambda v: "%d:AA%s" % (v.n(100000000, 7999999999), v.rs(B64U, 33)))),
        S("discord_bot", "Discord bot token", ["discord_token", "discord_bot_token"],
          simple("discord_bot", lambda v: "%s%s.%s.%s" % (v.choice(["MTA", "MTE", "MTI", "OD", "Nz", "OT"]),
                                                          v.rs(AL, 23), v.rs(B64U, 6), v.rs(B64U, 38)))),
        S("discord_webhook", "Discord webhook", ["discord_webhook_url"],
          simple("discord_webhook", lambda v: "https://discord.com/api/webhooks/%s/%s" % (v.digits(19), v.rs(B64U, 68)))),
        S("hashicorp_vault", "Vault token", ["vault_token"],
          simple("hashicorp_vault", lambda v: v.choice(["hvs." + v.rs(AL + "_-", 91), "hvb." + v.rs(AL + "_-", 138),
                                                        "hvs.CAESI" + v.rs(AL + "_-", 82)]))),
        S("terraform_cloud", "Terraform Cloud token", ["tfe_token", "tf_token_app_terraform_io", "terraform_token"],
          simple("terraform_cloud", lambda v: v.rs(AL, 14) + ".atlasv1." + v.rs(AL + "-_", 67))),
        S("pulumi", "Pulumi token", ["pulumi_access_token"], simple("pulumi", lambda v: "pul-" + v.hex(40))),
        S("linear", "Linear API key", ["linear_api_key"], simple("linear", lambda v: "lin_api_" + v.rs(AL, 40))),
        S("notion", "Notion token", ["notion_token", "notion_api_key"],
          simple("notion", lambda v: v.choice(["secret_" + v.rs(AL, 43), "ntn_" + v.digits(11) + v.rs(AL, 35)]))),
        S("atlassian", "Atlassian API token", ["jira_api_token", "atlassian_api_token", "confluence_token"],
          simple("atlassian", lambda v: "ATATT3xFfGF0" + v.rs(B64U, 170) + "=" + v.rs(HEXU, 8))),
        S("grafana", "Grafana token", ["grafana_token", "grafana_service_account_token"],
          simple("grafana", lambda v: v.choice(["glsa_" + v.rs(AL, 32) + "_" + v.hex(8), "glc_eyJvIjoi" + v.rs(AL, 100) + "=="]))),
        S("tailscale", "Tailscale key", ["tailscale_authkey", "ts_authkey", "tailscale_api_key"],
          simple("tailscale", lambda v: "tskey-%s-%sCNTRL-%s" % (v.choice(["auth", "api", "client"]), v.rs(AL, 11), v.rs(AL, 33)))),
        S("age", "age identity", ["age_identity", "sops_age_key"],
          simple("age", lambda v: "AGE-SECRET-KEY-1" + v.rs(BECH32, 58).upper())),
        S("doppler", "Doppler token", ["doppler_token"],
          simple("doppler", lambda v: v.choice(["dp.st.%s.%s" % (v.choice(["dev", "prd", "stg"]), v.rs(AL, 40)),
                                                "dp.pt." + v.rs(AL, 43), "dp.ct." + v.rs(AL, 43)]))),
        S("vercel", "Vercel token", ["vercel_token"], simple("vercel", lambda v: v.rs(AL, 24))),
        S("netlify", "Netlify token", ["netlify_auth_token"], simple("netlify", lambda v: "nfp_" + v.rs(AL, 36))),
        S("supabase", "Supabase token", ["supabase_access_token"], simple("supabase", lambda v: "sbp_" + v.hex(40))),
        S("planetscale", "PlanetScale token", ["planetscale_service_token", "pscale_token", "database_password"],
          simple("planetscale", lambda v: v.choice(["pscale_tkn_", "pscale_pw_", "pscale_oauth_"]) + v.rs(B64U, 43))),
        S("databricks", "Databricks token", ["databricks_token"],
          simple("databricks", lambda v: "dapi" + v.hex(32) + v.choice(["", "", "-2", "-3"]))),
        S("okta", "Okta API token", ["okta_api_token", "okta_token"], simple("okta", lambda v: "00" + v.rs(B64U, 40))),
        S("cloudflare", "Cloudflare API token", ["cloudflare_api_token", "cf_api_token"],
          simple("cloudflare", lambda v: v.rs(AL + "_-", 40))),
        S("contentful", "Contentful token", ["contentful_management_token"],
          simple("contentful", lambda v: "CFPAT-" + v.rs(B64U, 43))),
        S("postman", "Postman API key", ["postman_api_key"],
          simple("postman", lambda v: "PMAK-%s-%s" % (v.hex(24), v.hex(34)))),
        S("rubygems", "RubyGems key", ["gem_host_api_key", "rubygems_api_key"],
          simple("rubygems", lambda v: "rubygems_" + v.hex(48))),
        S("dynatrace", "Dynatrace token", ["dt_api_token", "dynatrace_token"],
          simple("dynatrace", lambda v: "dt0c01.%s.%s" % (v.rs(UP + DG, 24), v.rs(UP + DG, 64)))),
        S("airtable", "Airtable token", ["airtable_api_key", "airtable_token"],
          simple("airtable", lambda v: "pat%s.%s" % (v.rs(AL, 14), v.hex(64)))),
        S("mapbox", "Mapbox secret token", ["mapbox_secret_token", "mapbox_downloads_token"],
          simple("mapbox", lambda v: "sk.eyJ1Ijoi%s.%s" % (v.rs(B64U, 60), v.rs(B64U, 22)))),
        S("launchdarkly", "LaunchDarkly key", ["launchdarkly_sdk_key", "ld_api_key"],
          simple("launchdarkly", lambda v: v.choice(["sdk-", "api-"]) + v.uuid())),
        S("onepassword", "1Password service account token", ["op_service_account_token"],
          simple("onepassword", lambda v: "ops_eyJ" + v.rs(B64U, 200))),
        S("circleci", "CircleCI token", ["circleci_token", "circle_token"],
          simple("circleci", lambda v: "CCIPAT_%s_%s" % (v.rs(AL, 22), v.hex(40)))),
        S("buildkite", "Buildkite token", ["buildkite_api_token", "buildkite_agent_token"],
          simple("buildkite", lambda v: "bkua_" + v.hex(40))),
        S("replicate", "Replicate token", ["replicate_api_token"], simple("replicate", lambda v: "r8_" + v.rs(AL, 37))),
        S("groq", "Groq key", ["groq_api_key"], simple("groq", lambda v: "gsk_" + v.rs(AL, 52))),
        S("perplexity", "Perplexity key", ["perplexity_api_key", "pplx_api_key"],
          simple("perplexity", lambda v: "pplx-" + v.rs(AL, 48))),
        S("xai", "xAI key", ["xai_api_key", "grok_api_key"], simple("xai", lambda v: "xai-" + v.rs(AL, 80))),
        S("algolia", "Algolia admin key", ["algolia_admin_api_key", "algolia_api_key"],
          simple("algolia", lambda v: v.hex(32))),
        S("artifactory", "Artifactory token", ["artifactory_api_key", "jfrog_token"],
          simple("artifactory", lambda v: v.choice(["AKCp8" + v.rs(AL, 68), "cmVmdGtuOjAxOjE3" + v.rs(AL, 48)]))),
        S("ibm_cloud", "IBM Cloud API key", ["ibm_cloud_api_key", "ibmcloud_api_key"],
          simple("ibm_cloud", lambda v: v.rs(B64U, 44))),
        S("django_secret_key", "Django secret key", ["django_secret_key", "secret_key"],
          simple("django_secret_key", lambda v: v.rs(LO + DG + "!@%^&*(-_=+)", 50))),
        S("rails_master_key", "Rails master key", ["rails_master_key"], simple("rails_master_key", lambda v: v.hex(32))),
        S("firebase_fcm", "FCM server key", ["fcm_server_key", "firebase_server_key"],
          simple("firebase_fcm", lambda v: "AAAA%s:APA91b%s" % (v.rs(B64U, 7), v.rs(B64U, 134)))),
    ]
    return svcs


# --------------------------------------------------------------------------
# Kind scheduling: every document plants a balanced share of every kind
# --------------------------------------------------------------------------


class Schedule:
    """Hands out kinds in shuffled rounds so that every kind gets its share
    in every genre; secrets get three shares (there are many services)."""

    def __init__(self, v: V, weights: dict):
        self.v = v
        self.round = []
        self.weights = weights

    def next(self) -> str:
        if not self.round:
            self.round = [k for k in POSITIVE_KINDS for _ in range(self.weights.get(k, 1))]
            self.v.r.shuffle(self.round)
        return self.round.pop()

    def take(self, n: int) -> list:
        return [self.next() for _ in range(n)]


class ServiceCycle:
    """Hands out secret services in shuffled rounds: every service appears."""

    def __init__(self, v: V):
        self.v = v
        self.round = []

    def next(self) -> Service:
        if not self.round:
            self.round = list(self.v.services)
            self.v.r.shuffle(self.round)
        return self.round.pop()


NEGATIVE_MAKERS = ["n_uuid", "n_git_sha", "n_sha256", "n_md5", "n_version", "n_timestamp", "n_time", "n_date",
                   "n_order", "n_price", "n_isbn", "n_phone_like_id", "n_luhn_invalid", "n_test_card", "n_base64",
                   "n_placeholder", "n_example_key", "n_product", "n_capitalised", "n_object_id", "n_publishable",
                   "n_trace_id", "n_span_id", "n_image_digest", "n_ssh_remote", "n_package_spec", "n_oid",
                   "n_card_expiry"]


# --------------------------------------------------------------------------
# Prose
# --------------------------------------------------------------------------

PROSE_SNIPPETS = {
    "email": ["You can reach me at {x} any time.", "Please send the invoice to {x} instead of my old address.",
              "I've added {x} to the distribution list.", "Could you cc {x} on the reply?",
              "Bitte schicken Sie die Rechnung an {x}.", "Vous pouvez me contacter à {x}.",
              "Kindly revert on {x} at the earliest.", "My work address is {x}, the personal one bounces.",
              "The confirmation went to {x} but I never got it."],
    "phone": ["Call me on {x} if anything is unclear.", "My mobile number is {x}.", "You can reach our office at {x}.",
              "Tel.: {x}", "Mob: {x} (WhatsApp too)", "Rufen Sie mich bitte unter {x} an.",
              "Mon numéro de portable : {x}.", "Please give a missed call on {x}, I will call back.",
              "Ring me on {x} after six, cheers.", "The courier tried {x} twice."],
    "payment_card": ["I was charged twice on my card {x}.", "The card number is {x}, expiry {exp}.",
                     "Please refund to the card {x}.", "Kartennummer: {x}", "Numéro de carte : {x}",
                     "Payment was made with card {x} on the portal.", "I used my Visa {x} for the booking."],
    "iban": ["Please refund the amount to IBAN {x}.", "Bankverbindung: IBAN {x}, BIC {bic}",
             "Mes coordonnées bancaires : IBAN {x}.", "Our new account for payouts is {x} (IBAN).",
             "Could you update the payee IBAN to {x}?", "Transfer the deposit to {x}, reference {order}."],
    "us_ssn": ["My SSN is {x}.", "For the tax form: social security number {x}.", "SSN: {x}",
               "The applicant's Social Security No. is {x}.", "I typed my SSN ({x}) into the wrong box."],
    "ip_address": ["The suspicious login came from {x}.", "Our VPN gives me {x}, can you allowlist it?",
                   "My public IP is {x} right now.", "The server at {x} stopped answering.",
                   "Please whitelist {x} for the SFTP upload."],
    "mac_address": ["The device's MAC address is {x}.", "Registered hardware address: {x}.",
                    "Die MAC-Adresse des Routers lautet {x}.", "My laptop shows MAC {x} on the Wi-Fi page."],
    "date_of_birth": ["My date of birth is {x}.", "I was born on {x}.", "DOB: {x}", "Date of birth: {x}",
                      "Geburtsdatum: {x}", "Date de naissance : {x}", "The patient's birthday is {x}.",
                      "geb. am {x}", "Born {x}, if you need it for verification."],
    "postal_address": ["Please ship the replacement to {x}.", "My new address is {x}.", "Lieferadresse: {x}",
                       "Adresse de livraison : {x}", "Billing address: {x}", "I have moved to {x} last month.",
                       "Kindly courier the documents to {x}."],
    "person_name": ["My name is {x} and I am writing about my order.", "Customer {x} called about the refund.",
                    "I spoke with Mr. {last} yesterday.", "Ms. {x} will take over the account.",
                    "Account holder: {x}", "Our customer {x} asked for a callback.",
                    "Mrs. {last} from accounts approved it.", "Please ask Dr. {last} to sign the form."],
    "secret": ["Here is the {human} for staging: {x}", "I accidentally pasted our {human} in the channel: {x}",
               "Use this {human} until the rotation: {x}", "The {human} is {x} -- please do not share it.",
               "Der {human} lautet {x}.", "Voici la clé ({human}) : {x}", "{human}: {x}"],
}

PROSE_NEGATIVES = [
    ("n_order", ["Regarding order {x}, nothing has arrived yet.", "Invoice {x} is still open."]),
    ("n_price", ["The total came to {x} including VAT.", "I was quoted {x} but billed more."]),
    ("n_isbn", ["The book has ISBN {x}.", "Please reorder ISBN {x} for the library."]),
    ("n_test_card", ["For testing, use the test card {x} with any CVC.", "In the sandbox the test card number {x} always succeeds."]),
    ("n_version", ["We upgraded the app to {x} last night.", "Since version {x} the export is broken."]),
    ("n_uuid", ["The reference id is {x}.", "Request id {x} in case you need it."]),
    ("n_git_sha", ["The fix landed in commit {x}.", "Roll back to {x} if it breaks again."]),
    ("n_time", ["We spoke at {x} today.", "The outage started at {x} UTC."]),
    ("n_date", ["The meeting is on {x}.", "My contract renews on {x}."]),
    ("n_phone_like_id", ["My customer number is {x}.", "Ticket number {x} was closed without an answer."]),
    ("n_placeholder", ["Set the password to {x} in the template before you send it.", "Replace {x} with your own key."]),
    ("n_capitalised", ["Please contact the {x} for details.", "The {x} starts next week."]),
    ("n_product", ["The {x} I ordered arrived broken.", "Do you still sell the {x}?"]),
    ("n_sha256", ["The download's sha256 is {x}.", "Checksum: {x}"]),
    ("n_base64", ["The attachment came through as {x} instead of a file.", "It printed {x} and stopped."]),
    ("n_luhn_invalid", ["The tracking number is {x}.", "Parcel {x} is stuck in customs."]),
    ("n_object_id", ["Stripe shows the charge as {x}.", "The event {x} was delivered twice."]),
    ("n_example_key", ["The docs use {x} as the example key.", "Do not use {x}, it is just the sample from the docs."]),
    ("n_card_expiry", ["The card expires {x}.", "Expiry date {x}."]),
]

PROSE_FILLER = ["Thanks for getting back to me so quickly.", "I have attached a screenshot of the error.",
                "Let me know if you need anything else from my side.", "Vielen Dank im Voraus für Ihre Hilfe.",
                "Merci d'avance pour votre retour.", "Kindly do the needful and revert.",
                "This has been going on since last week.", "Cheers, much appreciated.",
                "The app keeps logging me out on the phone.", "I tried clearing the cache but nothing changed.",
                "Is there any update on this?", "It worked fine until the last release.",
                "We are a small team, so a quick fix would help a lot.", "Sorry for the long message.",
                "The dashboard shows an empty page after login.", "Can you escalate this please?",
                "Ich warte seit drei Tagen auf eine Antwort.", "Je n'arrive pas à télécharger la facture.",
                "Please find the details below.", "I'd be grateful for a refund."]

SUBJECTS = ["Refund request", "Problem with my order", "Access to staging", "Rechnung fehlt", "Question about invoice",
            "Login issue", "Problème de paiement", "Urgent: account locked", "Change of address", "Payout details",
            "Re: onboarding", "Fwd: credentials for the new environment", "Duplicate charge", "KYC documents"]


def prose_snippet(b: Doc, v: V, kind: str, svc: ServiceCycle, loc: str):
    tmpl = v.choice(PROSE_SNIPPETS[kind])
    slots = {"exp": v.n_card_expiry(), "bic": v.choice(["DEUTDEFFXXX", "COBADEFFXXX", "BNPAFRPPXXX", "NWBKGB2L"]),
             "order": v.n_order()}
    if kind == "secret":
        s = svc.next()
        slots["x"] = s.gen(v)
        slots["human"] = s.human
        if slots["x"].multiline:
            tmpl = v.choice(["Here is the {human} you asked for:\n\n{x}\n", "I found this {human} in the old wiki:\n{x}\n"])
    elif kind == "person_name":
        slots["x"] = v.name(loc)
        slots["last"] = item("person_name", v.last(loc))
    elif kind == "email":
        slots["x"] = v.email(loc)
    elif kind == "phone":
        slots["x"] = v.phone(loc)
    elif kind == "payment_card":
        slots["x"] = v.card()
    elif kind == "iban":
        slots["x"] = v.iban()
    elif kind == "us_ssn":
        slots["x"] = v.ssn()
    elif kind == "ip_address":
        slots["x"] = v.ip()
    elif kind == "mac_address":
        slots["x"] = v.mac()
    elif kind == "date_of_birth":
        slots["x"] = v.dob(v.choice([None, "de"]) if "Geburt" in tmpl or "geb." in tmpl else
                           (v.choice([None, "fr"]) if "naissance" in tmpl else None))
    elif kind == "postal_address":
        slots["x"] = v.address(loc if v.chance(0.7) else None)
    b.fill(tmpl, **slots)


def prose_negative(b: Doc, v: V):
    maker, templates = v.choice(PROSE_NEGATIVES)
    b.fill(v.choice(templates), x=getattr(v, maker)())


def gen_prose(v: V, idx: int, sched: Schedule, svc: ServiceCycle) -> tuple[Doc, str, str]:
    b = Doc()
    loc = v.locale()
    sub = v.choice(["email", "email", "ticket", "chat"])
    kinds = sched.take(v.n(5, 9))
    negs = v.n(2, 4)

    def body_paragraphs(sep_line):
        items = [("k", k) for k in kinds] + [("n", None)] * negs + [("f", None)] * v.n(2, 4)
        v.r.shuffle(items)
        for i, (what, kind) in enumerate(items):
            if what == "k":
                prose_snippet(b, v, kind, svc, loc)
            elif what == "n":
                prose_negative(b, v)
            else:
                b.t(v.choice(PROSE_FILLER))
            b.t(sep_line if (i % 3 == 2) else " ")

    if sub == "email":
        crlf = v.chance(0.1)
        person = (v.first(loc), v.last(loc))
        b.t("From: ").v(item("person_name", "%s %s" % person)).t(" <").v(v.email(loc, person)).t(">\n")
        b.t("To: ").v(v.email()).t("\n")
        b.t("Subject: " + v.choice(SUBJECTS) + "\n")
        b.t("Date: ").v(v.n_timestamp("rfc2822")).t("\n\n")
        g = v.n(0, 4)
        if g == 0:
            b.t("Dear ").v(v.name()).t(",\n\n")
        elif g == 1:
            b.t("Hi ").v(item("person_name", v.first())).t(",\n\n")
        elif g == 2:
            b.t("Sehr geehrte Frau ").v(item("person_name", v.last("de"))).t(",\n\n")
        elif g == 3:
            b.t("Bonjour M. ").v(item("person_name", v.last("fr"))).t(",\n\n")
        else:
            b.t("Hello team,\n\n")
        body_paragraphs("\n\n")
        b.t("\n\n" + v.choice(["Best regards,", "Kind regards,", "Thanks,", "Mit freundlichen Grüßen,",
                               "Cordialement,", "Warm regards,", "Cheers,"]) + "\n")
        b.v(item("person_name", "%s %s" % person)).t("\n")
        if v.chance(0.5):
            b.v(v.phone(loc)).t("\n")
        if crlf:
            # Mail as it travels: CRLF line ends. Labels are recomputed from
            # the parts, so only plain text segments may change.
            b.parts = [(s.replace("\n", "\r\n"), it) if it is None else (s, it) for s, it in b.parts]
    elif sub == "ticket":
        b.t("Ticket ").v(v.n_order() if v.chance(0.5) else v.n_phone_like_id()).t(" -- " + v.choice(SUBJECTS) + "\n")
        b.t("Customer: ").v(v.name(loc)).t("\n")
        b.t("Priority: " + v.choice(["Low", "Normal", "High", "Urgent"]) + "\n")
        b.t("Opened: ").v(v.n_timestamp("space")).t("\n\nDescription:\n")
        body_paragraphs("\n")
        b.t("\n\n-- Agent notes --\n")
        b.t(v.choice(["Verified identity over the phone. ", "Escalated to tier 2. ", "Waiting for the customer. "]))
        prose_negative(b, v)
        b.t("\n")
    else:
        roles = ["customer", "agent", "support-bot", "ops-oncall", "me"]
        items = [("k", k) for k in kinds] + [("n", None)] * negs + [("f", None)] * v.n(2, 5)
        v.r.shuffle(items)
        for what, kind in items:
            b.t("[").v(v.n_time()).t("] %s: " % v.choice(roles))
            if what == "k":
                prose_snippet(b, v, kind, svc, loc)
            elif what == "n":
                prose_negative(b, v)
            else:
                b.t(v.choice(PROSE_FILLER))
            b.t("\n")
    return b, sub, "txt"


# --------------------------------------------------------------------------
# JSON payloads
# --------------------------------------------------------------------------


class JsonWriter:
    """Writes a tree of dicts (as lists of pairs), lists and leaves (Val,
    str, int, float, bool, None) as JSON into a Doc, labels intact."""

    def __init__(self, b: Doc, indent: int | None, compact_sep=False):
        self.b = b
        self.indent = indent
        self.item_sep = "," if compact_sep else ", "
        self.kv_sep = ":" if compact_sep else ": "

    def write(self, node, depth=0):
        b = self.b
        if isinstance(node, Obj):
            if not node.pairs:
                b.t("{}")
                return
            b.t("{")
            for i, (k, val) in enumerate(node.pairs):
                if i:
                    b.t("," if self.indent is not None else self.item_sep)
                self.newline(depth + 1)
                b.t(json.dumps(k, ensure_ascii=False) + self.kv_sep)
                self.write(val, depth + 1)
            self.newline(depth)
            b.t("}")
        elif isinstance(node, list):
            if not node:
                b.t("[]")
                return
            b.t("[")
            for i, val in enumerate(node):
                if i:
                    b.t("," if self.indent is not None else self.item_sep)
                self.newline(depth + 1)
                self.write(val, depth + 1)
            self.newline(depth)
            b.t("]")
        elif isinstance(node, Val):
            if node.raw:
                b.v(node)
            else:
                b.t('"').v(node, json_esc).t('"')
        else:
            b.t(json.dumps(node, ensure_ascii=False))

    def newline(self, depth):
        if self.indent is not None:
            self.b.t("\n" + " " * (self.indent * depth))


class Obj:
    def __init__(self, *pairs):
        self.pairs = [p for p in pairs if p is not None]

    def add(self, k, val):
        # Keys stay unique, as in any real payload: a second `email` becomes `email_2`.
        used = {p[0] for p in self.pairs}
        base, n = k, 1
        while k in used:
            n += 1
            k = "%s_%d" % (base, n)
        self.pairs.append((k, val))
        return self


def key_style(v: V, key: str, style: str) -> str:
    if style == "camel":
        parts = key.split("_")
        return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])
    if style == "upper":
        return key.upper()
    return key


def person_fields(v: V, kinds: list, svc: ServiceCycle, loc: str, style="snake") -> Obj:
    """A customer-like record carrying the given kinds under telling keys."""
    o = Obj()
    o.add("id", v.n_uuid() if v.chance(0.6) else Val(v.n_phone_like_id().segments[0], raw=True))
    for kind in kinds:
        if kind == "person_name":
            if v.chance(0.5):
                o.add(key_style(v, "first_name", style), item("person_name", v.first(loc)))
                o.add(key_style(v, "last_name", style), item("person_name", v.last(loc)))
            else:
                o.add(key_style(v, v.choice(["name", "full_name", "customer_name", "account_holder", "cardholder_name"]), style),
                      v.name(loc))
        elif kind == "email":
            o.add(key_style(v, v.choice(["email", "contact_email", "billing_email", "email_address"]), style), v.email(loc))
        elif kind == "phone":
            o.add(key_style(v, v.choice(["phone", "phone_number", "mobile", "tel", "msisdn"]), style), v.phone(loc))
        elif kind == "payment_card":
            o.add(key_style(v, v.choice(["card_number", "cc_number", "pan", "credit_card"]), style), v.card())
        elif kind == "iban":
            o.add(key_style(v, v.choice(["iban", "payout_iban", "bank_iban"]), style), v.iban())
        elif kind == "us_ssn":
            o.add(key_style(v, v.choice(["ssn", "social_security_number", "tax_id"]), style), v.ssn())
        elif kind == "ip_address":
            o.add(key_style(v, v.choice(["last_login_ip", "ip", "signup_ip", "client_ip"]), style), v.ip())
        elif kind == "mac_address":
            o.add(key_style(v, v.choice(["device_mac", "mac_address", "mac"]), style), v.mac())
        elif kind == "date_of_birth":
            o.add(key_style(v, v.choice(["dob", "date_of_birth", "birth_date", "birthday"]), style),
                  v.dob(v.choice(["iso", "iso", "us", "eu_dot", "uk"])))
        elif kind == "postal_address":
            o.add(key_style(v, v.choice(["address", "shipping_address", "billing_address", "home_address"]), style),
                  v.address(loc))
        elif kind == "secret":
            s = svc.next()
            o.add(key_style(v, v.choice(s.keys), style), s.gen(v))
    return o


def json_negative_pair(v: V):
    k = v.n(0, 16)
    if k == 0:
        return "request_id", v.n_uuid()
    if k == 1:
        return "created_at", v.n_timestamp(v.choice(["iso_z", "iso_ms"]))
    if k == 2:
        return "order_date", v.n_date()
    if k == 3:
        return "sha256", v.n_sha256()
    if k == 4:
        return "commit", v.n_git_sha()
    if k == 5:
        return "app_version", v.n_version()
    if k == 6:
        return "tracking_number", v.n_luhn_invalid()
    if k == 7:
        return "thumbnail", v.n_base64()
    if k == 8:
        return "password", v.n_placeholder()
    if k == 9:
        return "isbn", v.n_isbn()
    if k == 10:
        return "charge_id", v.n_object_id()
    if k == 11:
        return "publishable_key", v.n_publishable()
    if k == 12:
        return "etag", v.n_md5()
    if k == 13:
        return "ticket_id", Val(v.n_phone_like_id().segments[0], raw=True)
    if k == 14:
        return "plan", v.n_capitalised()
    if k == 15:
        return "image", v.n_image_digest()
    return "total", v.n_price()


def gen_json(v: V, idx: int, sched: Schedule, svc: ServiceCycle) -> tuple[Doc, str, str]:
    b = Doc()
    loc = v.locale()
    sub = v.choice(["crm_record", "api_request", "api_response", "order", "webhook", "credentials", "audit"])
    style = v.choice(["snake", "snake", "camel"])
    kinds = sched.take(v.n(6, 10))
    neg_pairs = [json_negative_pair(v) for _ in range(v.n(2, 4))]

    def split_secrets(ks):
        return [k for k in ks if k != "secret"], [k for k in ks if k == "secret"]

    personal, secrets = split_secrets(kinds)
    if sub == "crm_record":
        rec = person_fields(v, personal, svc, loc, style)
        for k, val in neg_pairs:
            rec.add(key_style(v, k, style), val)
        root = Obj(("customer", rec))
        if secrets:
            root.add("integration", person_fields(v, secrets, svc, loc, style))
        root.add("updated_at", v.n_timestamp("iso_z"))
    elif sub == "api_request":
        s = svc.next()
        auth = Val("Bearer ", *s.gen(v).segments) if s.name in ("jwt", "generic_token", "github_token", "openai_key") else None
        headers = Obj(("Content-Type", "application/json"), ("X-Request-Id", v.n_uuid()))
        if auth:
            headers.add("Authorization", auth)
        else:
            headers.add(key_style(v, "x_" + v.choice(s.keys), "snake").replace("_", "-").title(), s.gen(v))
        root = Obj(("method", v.choice(["POST", "PUT", "PATCH"])),
                   ("url", "https://api.%s.example/v%d/%s" % (v.choice(WORDS), v.n(1, 3), v.choice(["customers", "payouts", "users", "kyc/verify"]))),
                   ("headers", headers),
                   ("body", person_fields(v, personal + secrets[1:], svc, loc, style)))
        for k, val in neg_pairs:
            root.add(k, val)
    elif sub == "api_response":
        n = max(1, len(personal) // 3)
        chunks = [personal[i::n] for i in range(n)]
        data = []
        for ch in chunks:
            rec = person_fields(v, ch, svc, loc, style)
            data.append(rec)
        root = Obj(("object", "list"), ("data", data), ("has_more", v.chance(0.5)))
        if secrets:
            root.add("debug", person_fields(v, secrets, svc, loc, style))
        for k, val in neg_pairs:
            root.add(k, val)
    elif sub == "order":
        items = []
        for _ in range(v.n(1, 3)):
            items.append(Obj(("sku", "SKU-%05d" % v.n(1, 99999)), ("name", v.n_product()), ("qty", v.n(1, 4)),
                             ("price", v.n_price())))
        root = Obj(("order_id", v.n_order()), ("items", items),
                   ("customer", person_fields(v, personal, svc, loc, style)))
        if v.chance(0.3):
            root.add("test_payment", Obj(("note", "test card"), ("card", v.n_test_card())))
        if secrets:
            root.add("payment_provider", person_fields(v, secrets, svc, loc, style))
        for k, val in neg_pairs:
            root.add(k, val)
    elif sub == "webhook":
        root = Obj(("id", v.n_object_id()), ("type", v.choice(["customer.updated", "payout.created", "user.signup"])),
                   ("created", v.n(1_650_000_000, 1_790_000_000)),
                   ("data", Obj(("object", person_fields(v, personal, svc, loc, style)))))
        if secrets:
            root.add("delivery", person_fields(v, secrets, svc, loc, style))
        for k, val in neg_pairs:
            root.add(k, val)
    elif sub == "credentials":
        creds = Obj()
        if v.chance(0.3):
            project = v.choice(WORDS) + "-" + v.digits(6)
            sa = Obj(("type", "service_account"), ("project_id", project), ("private_key_id", v.n_key_id()))
            sa.add("private_key", svc_by_name(v, "gcp_service_account").gen(v))
            sa.add("client_email", item("email", "%s@%s.iam.gserviceaccount.com" % (v.choice(WORDS), project)))
            sa.add("client_id", neg(v.digits(21), "object_id"))
            creds.add("gcp", sa)
        for _ in secrets:
            s = svc.next()
            creds.add(key_style(v, v.choice(s.keys), style), s.gen(v))
        root = Obj(("environment", v.choice(["production", "staging"])), ("credentials", creds),
                   ("owner", person_fields(v, personal, svc, loc, style)))
        for k, val in neg_pairs:
            root.add(k, val)
    else:  # audit
        events = []
        per = max(1, len(kinds) // 3)
        for i in range(0, len(kinds), per):
            ks = kinds[i:i + per]
            events.append(Obj(("at", v.n_timestamp("iso_z")), ("actor", person_fields(v, ks, svc, loc, style)),
                              ("action", v.choice(["login", "export", "update_profile", "rotate_key"]))))
        root = Obj(("events", events))
        for k, val in neg_pairs:
            root.add(k, val)
    indent = v.choice([2, 2, 4, None])
    JsonWriter(b, indent, compact_sep=(indent is None and v.chance(0.5))).write(root)
    b.t("\n")
    return b, sub, "json"


def svc_by_name(v: V, name: str) -> Service:
    for s in v.services:
        if s.name == name:
            return s
    raise KeyError(name)


# --------------------------------------------------------------------------
# Logs
# --------------------------------------------------------------------------

LOG_FILLER = ["GET /healthz 200 1ms", "cache hit ratio=0.93", "worker started concurrency=4", "scheduled job sync_catalog",
              "connection pool size=20 idle=17", "retrying request attempt=2", "flushed 128 metrics",
              "shutting down gracefully", "config reloaded", "rate limit window reset", "GC pause 12ms",
              "migrations up to date", "listening on :8080", "received SIGHUP"]


def log_kv_item(v: V, kind: str, svc: ServiceCycle, loc: str):
    """(template, slots) for one app-log message carrying `kind`."""
    if kind == "email":
        return v.choice(["user signed up email={x}", "sending receipt to <{x}>", "password reset requested for {x}",
                         "smtp: 550 mailbox unavailable for {x}"]), {"x": v.email(loc)}
    if kind == "phone":
        return v.choice(["sms sent to={x} template=otp", "otp requested phone=\"{x}\"", "twilio: delivered to {x}",
                         "callback scheduled for {x}"]), {"x": v.phone(loc)}
    if kind == "payment_card":
        return v.choice(["charge failed card={x} reason=insufficient_funds", "DEBUG payment payload pan={x}",
                         "tokenising card {x}", "card_number={x} declined"]), {"x": v.card()}
    if kind == "iban":
        return v.choice(["SEPA mandate created iban={x}", "payout queued to {x}", "invalid BIC for IBAN {x}"]), {"x": v.iban()}
    if kind == "us_ssn":
        return v.choice(["kyc check ssn={x} result=pass", "DEBUG applicant ssn=\"{x}\"", "ssn {x} failed validation"]), {
            "x": v.ssn()}
    if kind == "ip_address":
        return v.choice(["login ok from {x}", "blocked request from ip={x}", "upstream {x}:443 timed out",
                         "X-Forwarded-For: {x}", "new session remote_addr={x}"]), {"x": v.ip()}
    if kind == "mac_address":
        return v.choice(["DHCPACK on {ip} to {x} via eth0", "device registered mac={x}", "wlan0: associated with bssid {x}",
                         "arp: {ip} is-at {x}"]), {"x": v.mac(), "ip": v.ip()}
    if kind == "date_of_birth":
        return v.choice(["kyc verify dob={x}", "validation error: date_of_birth '{x}' is in the wrong format",
                         "age check birth_date={x} ok"]), {"x": v.dob(v.choice(["iso", "us", "eu_dot"]))}
    if kind == "postal_address":
        return v.choice(["address verification failed address=\"{x}\"", "shipping label created for {x}",
                         "geocode lookup shipping_address=\"{x}\""]), {"x": v.address(loc)}
    if kind == "person_name":
        return v.choice(["created customer name=\"{x}\"", "customer {x} updated profile", "invoice sent to customer {x}",
                         "user first_name={f} last_name={l}"]), {"x": v.name(loc), "f": item("person_name", v.first(loc)),
                                                                   "l": item("person_name", v.last(loc))}
    s = svc.next()
    val = s.gen(v)
    if val.multiline:
        return "DEBUG loaded %s from environment:\n{x}" % (s.keys[0],), {"x": val}
    return v.choice(["using %s={x}" % s.keys[0], "DEBUG env %s={x}" % s.keys[0].upper(),
                     "config: %s: {x}" % v.choice(s.keys), "request failed, credentials %s=\"{x}\"" % s.keys[0]]), {"x": val}


def log_negative(v: V):
    k = v.n(0, 11)
    if k == 0:
        return "request_id={x}", {"x": v.n_uuid()}
    if k == 1:
        return "trace_id={x} span_id={y}", {"x": v.n_trace_id(), "y": v.n_span_id()}
    if k == 2:
        return "deployed commit {x}", {"x": v.n_git_sha()}
    if k == 3:
        return "pulled image app@{x}", {"x": v.n_image_digest()}
    if k == 4:
        return "agent version {x} starting", {"x": v.n_version()}
    if k == 5:
        return "job_id={x} finished", {"x": v.n_phone_like_id()}
    if k == 6:
        return "order {x} total={y}", {"x": v.n_order(), "y": v.n_price()}
    if k == 7:
        return "snmp poll oid={x}", {"x": v.n_oid()}
    if k == 8:
        return "payload={x}", {"x": v.n_base64()}
    if k == 9:
        return "charge {x} captured", {"x": v.n_object_id()}
    if k == 10:
        return "checksum md5={x}", {"x": v.n_md5()}
    return "cloning {x}", {"x": v.n_ssh_remote()}


def gen_logs(v: V, idx: int, sched: Schedule, svc: ServiceCycle) -> tuple[Doc, str, str]:
    b = Doc()
    loc = v.locale()
    sub = v.choice(["app", "app", "nginx", "jsonl", "stacktrace", "syslog"])
    kinds = sched.take(v.n(6, 10))
    lines = [("k", k) for k in kinds] + [("n", None)] * v.n(2, 4) + [("f", None)] * v.n(2, 6)
    v.r.shuffle(lines)
    svcname = v.choice(WORDS)
    if sub in ("app", "stacktrace"):
        for what, kind in lines:
            b.v(v.n_timestamp(v.choice(["space_ms", "iso_z"]))).t(" %s [%s] %s: " % (
                v.choice(["INFO", "INFO", "WARN", "DEBUG", "ERROR"]), v.choice(["main", "worker-3", "http-nio-8080-exec-7", "celery"]),
                "app." + svcname))
            if what == "k":
                tmpl, slots = log_kv_item(v, kind, svc, loc)
                b.fill(tmpl, **slots)
            elif what == "n":
                tmpl, slots = log_negative(v)
                b.fill(tmpl, **slots)
            else:
                b.t(v.choice(LOG_FILLER))
            b.t("\n")
        if sub == "stacktrace":
            b.v(v.n_timestamp("space_ms")).t(" ERROR [main] app.%s: unhandled exception\n" % svcname)
            b.t("Traceback (most recent call last):\n")
            for _ in range(v.n(2, 4)):
                b.t('  File "/app/%s/%s.py", line %d, in %s\n    %s\n' % (
                    svcname, v.choice(WORDS), v.n(10, 900), v.choice(["handle", "run", "connect", "save", "_call"]),
                    v.choice(["return self._send(request)", "conn = engine.connect()", "raise err", "data = fetch(url)"])))
            k = v.n(0, 3)
            if k == 0:
                s = svc_by_name(v, v.choice(["postgres_url", "mysql_url", "redis_url", "mongodb_srv"]))
                b.t("sqlalchemy.exc.OperationalError: could not connect to ").v(s.gen(v)).t("\n")
            elif k == 1:
                b.t("ValueError: invalid IBAN for customer ").v(v.name(loc)).t(": ").v(v.iban()).t("\n")
            elif k == 2:
                b.t("requests.exceptions.HTTPError: 401 Client Error for url: https://api.example.net/v1/me?token=")
                b.v(svc_by_name(v, "generic_token").gen(v)).t("\n")
            else:
                b.t("KeyError: 'email' (record for ").v(v.email(loc)).t(")\n")
            if v.chance(0.5):
                b.t("\tat com.acme.%s.Service.handle(Service.java:%d)\n\tat java.base/java.lang.Thread.run(Thread.java:%d)\n" % (
                    svcname, v.n(20, 400), v.n(800, 1600)))
    elif sub == "nginx":
        for what, kind in lines:
            b.v(v.ip()).t(" - - [").v(v.n_timestamp("nginx")).t("] \"")
            if what == "k" and kind in ("email", "phone", "secret", "person_name", "date_of_birth", "ip_address", "us_ssn",
                                        "payment_card", "iban", "postal_address", "mac_address"):
                if kind == "secret":
                    s = svc.next()
                    val = s.gen(v)
                    if val.multiline:
                        b.t("POST /api/keys HTTP/1.1\" 201 88 \"-\" \"curl/8.5.0\"\n")
                        b.t("DEBUG request body: ").v(val).t("\n")
                        continue
                    b.t("GET /v1/export?%s=" % v.choice(s.keys)).v(val, lambda s_: s_.replace(" ", "%20"))
                else:
                    qk = {"email": "email", "phone": "phone", "person_name": "name", "date_of_birth": "dob",
                          "ip_address": "ip", "us_ssn": "ssn", "payment_card": "card", "iban": "iban",
                          "postal_address": "address", "mac_address": "mac"}[kind]
                    val = {"email": v.email, "phone": v.phone, "person_name": v.name, "date_of_birth": lambda: v.dob("iso"),
                           "ip_address": v.ip, "us_ssn": lambda: v.ssn("-"), "payment_card": v.card, "iban": v.iban,
                           "postal_address": v.address, "mac_address": v.mac}[kind]()
                    b.t("GET /api/lookup?%s=" % qk).v(val)
                b.t(" HTTP/1.1\" %d %d \"-\" \"" % (v.choice([200, 200, 302, 401, 404]), v.n(120, 40000)))
            else:
                b.t("GET /%s/%s HTTP/1.1\" 200 %d \"-\" \"" % (v.choice(WORDS), v.choice(["list", "index.html", "static/app.js"]), v.n(120, 40000)))
            b.t("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/")
            b.v(neg("%d.0.%d.%d" % (v.n(100, 131), v.n(5000, 6999), v.n(10, 250)), "version")).t(" Safari/537.36\"\n")
            if what == "n":
                tmpl, slots = log_negative(v)
                b.t("# ").fill(tmpl, **slots).t("\n")
    elif sub == "jsonl":
        for what, kind in lines:
            o = Obj(("ts", v.n_timestamp("iso_ms")), ("level", v.choice(["info", "warn", "error", "debug"])),
                    ("service", svcname))
            if what == "k":
                o.add("msg", v.choice(["request", "profile updated", "payment", "login"]))
                if kind == "secret":
                    s = svc.next()
                    o.add(v.choice(s.keys), s.gen(v))
                else:
                    rec = person_fields(v, [kind], svc, loc, "snake")
                    for k_, val in rec.pairs[1:]:
                        o.add(k_, val)
            elif what == "n":
                k_, val = json_negative_pair(v)
                o.add("msg", "event").add(k_, val)
            else:
                o.add("msg", v.choice(LOG_FILLER))
            JsonWriter(b, None, compact_sep=True).write(o)
            b.t("\n")
    else:  # syslog
        host = v.choice(["gw-01", "edge-fra-2", "nas", "router", "bastion"])
        for what, kind in lines:
            b.v(v.n_timestamp("syslog")).t(" %s %s[%d]: " % (host, v.choice(["dhcpd", "sshd", "app", "kernel", "postfix/smtp"]), v.n(100, 65000)))
            if what == "k":
                if kind == "ip_address":
                    b.t("Accepted publickey for deploy from ").v(v.ip()).t(" port %d ssh2" % v.n(1024, 65535))
                elif kind == "mac_address":
                    b.t("DHCPREQUEST for ").v(v.ip()).t(" from ").v(v.mac()).t(" via eth0")
                elif kind == "email":
                    b.t("%s: to=<" % v.rs(HEXU, 10)).v(v.email(loc)).t(">, relay=mx.example.net, status=sent")
                else:
                    tmpl, slots = log_kv_item(v, kind, svc, loc)
                    b.fill(tmpl, **slots)
            elif what == "n":
                tmpl, slots = log_negative(v)
                b.fill(tmpl, **slots)
            else:
                b.t(v.choice(LOG_FILLER))
            b.t("\n")
    return b, sub, "log"


# --------------------------------------------------------------------------
# Source code
# --------------------------------------------------------------------------

CODE_LANGS = ["python", "javascript", "go", "yaml", "env", "terraform", "dockerfile", "shell"]
CODE_EXT = {"python": "py", "javascript": "js", "go": "go", "yaml": "yaml", "env": "env", "terraform": "tf",
            "dockerfile": "Dockerfile", "shell": "sh"}


def code_negatives(v: V, n: int, yaml_safe=False) -> list:
    """(key, Val, trailing comment) for constants that must not be flagged."""
    out = []
    for _ in range(n):
        k = v.n(0, 13)
        if k == 0:
            out.append(("version", v.n_version(), ""))
        elif k == 1:
            out.append(("build_sha", v.n_git_sha(), ""))
        elif k == 2:
            out.append(("checksum_sha256", v.n_sha256(), ""))
        elif k == 3:
            out.append(("default_password", v.n_placeholder(yaml_safe), "set the real one in the vault"))
        elif k == 4:
            out.append(("api_key", v.n_placeholder(yaml_safe), "placeholder"))
        elif k == 5:
            out.append(("test_card_number", v.n_test_card(), "test card from the provider's docs"))
        elif k == 6:
            out.append(("logo_png", v.n_base64(), ""))
        elif k == 7:
            out.append(("tenant_id", v.n_uuid(), ""))
        elif k == 8:
            out.append(("aws_access_key_id", v.n_example_key(), "example from the AWS docs"))
        elif k == 9:
            out.append(("stripe_publishable_key", v.n_publishable(), "public by design"))
        elif k == 10:
            out.append(("base_image_digest", v.n_image_digest(), ""))
        elif k == 11:
            out.append(("repo", v.n_ssh_remote(), ""))
        elif k == 12:
            out.append(("release_date", v.n_date(), ""))
        else:
            out.append(("support_ticket", v.n_phone_like_id(), ""))
    return out


def code_secret_pairs(v: V, n: int, svc: ServiceCycle) -> list:
    out = []
    for _ in range(n):
        s = svc.next()
        out.append((v.choice(s.keys), s.gen(v), s))
    return out


def fixture_records(v: V, kinds: list, svc: ServiceCycle, loc: str, style: str) -> list:
    per = v.n(3, 5)
    recs = []
    for i in range(0, len(kinds), per):
        recs.append(person_fields(v, kinds[i:i + per], svc, loc, style))
    return recs


def write_literal(b: Doc, val: Val, quote: str):
    """A string literal in C-like languages: escape quotes and backslashes;
    multi-line values become escaped \\n sequences."""
    def esc(s):
        s = s.replace("\\", "\\\\").replace(quote, "\\" + quote)
        return s.replace("\n", "\\n")
    if val.raw:
        b.v(val)
    else:
        b.t(quote).v(val, esc).t(quote)


def gen_code(v: V, idx: int, sched: Schedule, svc: ServiceCycle) -> tuple[Doc, str, str]:
    b = Doc()
    loc = v.locale()
    lang = CODE_LANGS[idx % len(CODE_LANGS)] if v.chance(0.5) else v.choice(CODE_LANGS)
    kinds = sched.take(v.n(6, 10))
    personal = [k for k in kinds if k != "secret"]
    secrets = code_secret_pairs(v, len(kinds) - len(personal), svc)
    negs = code_negatives(v, v.n(2, 4), yaml_safe=(lang in ("yaml",)))
    # Constant names stay unique within a file.
    used = set()

    def unique(key):
        base, n = key, 1
        while key in used:
            n += 1
            key = "%s_%d" % (base, n)
        used.add(key)
        return key
    secrets = [(unique(k), val, s) for k, val, s in secrets]
    negs = [(unique(k), val, c) for k, val, c in negs]
    GEN_CODE[lang](b, v, personal, secrets, negs, svc, loc)
    return b, lang, CODE_EXT[lang]


def code_python(b, v, personal, secrets, negs, svc, loc):
    b.t('"""%s for the %s service."""\n\n' % (v.choice(["Settings", "Fixtures", "Seed data", "Integration helpers"]), v.choice(WORDS)))
    b.t("import os\nfrom dataclasses import dataclass\n\n")
    b.t("# Maintainer: ").v(v.name(loc)).t(" <").v(v.email(loc)).t(">\n\n")
    for key, val, s in secrets:
        if val.multiline:
            b.t('%s = """' % key.upper()).v(val).t('"""\n')
        elif v.chance(0.25):
            b.t("client = %sClient(%s=" % (v.choice(["Api", "Http", "Payments", "Storage"]), key))
            write_literal(b, val, '"')
            b.t(")\n")
        else:
            b.t("%s = " % key.upper())
            write_literal(b, val, v.choice(['"', "'"]))
            b.t("\n")
    for key, val, comment in negs:
        b.t("%s = " % key.upper())
        write_literal(b, val, '"')
        b.t("  # %s\n" % comment if comment else "\n")
    if personal:
        b.t("\nCUSTOMERS = [\n")
        for rec in fixture_records(v, personal, svc, loc, "snake"):
            b.t("    ")
            JsonWriter(b, None).write(rec)
            b.t(",\n")
        b.t("]\n")
    b.t("\n\ndef test_%s():\n    assert len(CUSTOMERS) >= 0\n" % v.choice(WORDS))


def code_javascript(b, v, personal, secrets, negs, svc, loc):
    b.t("// %s\n'use strict';\n\n" % v.choice(["config for the checkout service", "test fixtures", "seed script"]))
    b.t("/** @author ").v(v.name(loc)).t(" <").v(v.email(loc)).t("> */\n")
    b.t("const config = {\n")
    for key, val, s in secrets:
        ck = key_style(v, key, "camel")
        if val.multiline:
            b.t("  %s: `" % ck).v(val).t("`,\n")
        else:
            b.t("  %s: " % ck)
            write_literal(b, val, "'")
            b.t(",\n")
    for key, val, comment in negs:
        b.t("  %s: " % key_style(v, key, "camel"))
        write_literal(b, val, "'")
        b.t(", // %s\n" % comment if comment else ",\n")
    b.t("};\n\n")
    if personal:
        b.t("const users = [\n")
        for rec in fixture_records(v, personal, svc, loc, "camel"):
            b.t("  ")
            JsonWriter(b, None).write(rec)
            b.t(",\n")
        b.t("];\n\n")
        b.t("module.exports = { config, users };\n")
    else:
        b.t("module.exports = { config };\n")


def go_field(k):
    return "".join(p[:1].upper() + p[1:] for p in k.split("_"))


def code_go(b, v, personal, secrets, negs, svc, loc):
    pkg = v.choice(WORDS)
    b.t("// Package %s holds %s.\npackage %s\n\n" % (pkg, v.choice(["settings", "test fixtures"]), pkg))
    b.t("// Owner: ").v(v.name(loc)).t("\n\n")
    b.t("const (\n")
    for key, val, s in secrets:
        if val.multiline:
            b.t("\t%s = `" % go_field(key)).v(val).t("`\n")
        else:
            b.t("\t%s = " % go_field(key))
            write_literal(b, val, '"')
            b.t("\n")
    for key, val, comment in negs:
        b.t("\t%s = " % go_field(key))
        write_literal(b, val, '"')
        b.t(" // %s\n" % comment if comment else "\n")
    b.t(")\n\n")
    if personal:
        b.t("var testUsers = []User{\n")
        for rec in fixture_records(v, personal, svc, loc, "snake"):
            b.t("\t{")
            for i, (k, val) in enumerate(rec.pairs):
                if i:
                    b.t(", ")
                b.t("%s: " % go_field(k))
                if isinstance(val, Val):
                    write_literal(b, val, '"')
                else:
                    b.t(json.dumps(val))
            b.t("},\n")
        b.t("}\n")


def yaml_scalar(b, val: Val, indent: str, quote_pref: str):
    if val.multiline:
        b.t("|\n" + indent).v(val, indent_esc(indent))
    elif val.raw:
        b.v(val)
    elif quote_pref == '"':
        b.t('"').v(val, lambda s: s.replace("\\", "\\\\").replace('"', '\\"')).t('"')
    else:
        b.t("'").v(val, lambda s: s.replace("'", "''")).t("'")


def code_yaml(b, v, personal, secrets, negs, svc, loc):
    sub = v.choice(["k8s", "compose", "seed"])
    q = v.choice(['"', "'"])
    if sub == "k8s":
        b.t("apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s-credentials\n  labels:\n    team: %s\ntype: Opaque\nstringData:\n" % (
            v.choice(WORDS), v.choice(TEAMS)))
        ind = "  "
    elif sub == "compose":
        b.t("services:\n  %s:\n    image: acme/%s:" % (v.choice(WORDS), v.choice(WORDS))).v(v.n_version()).t("\n    environment:\n")
        ind = "      "
    else:
        b.t("# seed data\nsettings:\n")
        ind = "  "
    for key, val, s in secrets:
        b.t("%s%s: " % (ind, key.upper() if sub == "compose" else key))
        yaml_scalar(b, val, ind + "  ", q)
        b.t("\n")
    for key, val, comment in negs:
        b.t("%s%s: " % (ind, key.upper() if sub == "compose" else key))
        yaml_scalar(b, val, ind + "  ", '"')
        b.t("  # %s\n" % comment if comment else "\n")
    if personal:
        b.t("customers:\n")
        for rec in fixture_records(v, personal, svc, loc, "snake"):
            first = True
            for k, val in rec.pairs:
                b.t("  - " if first else "    ")
                first = False
                b.t("%s: " % k)
                if isinstance(val, Val):
                    yaml_scalar(b, val, "      ", q)
                else:
                    b.t(json.dumps(val))
                b.t("\n")


def env_value(b, val: Val, key: str):
    if val.multiline:
        b.t('%s="' % key).v(val).t('"\n')
    elif val.raw:
        b.t("%s=" % key).v(val).t("\n")
    elif any(c in val.plain() for c in " #'\"$&;"):
        b.t("%s='" % key).v(val).t("'\n")
    else:
        b.t("%s=" % key).v(val).t("\n")


def code_env(b, v, personal, secrets, negs, svc, loc):
    b.t("# %s environment -- do not commit\n" % v.choice(["local", "staging", "production"]))
    b.t("APP_ENV=%s\nPORT=8080\n" % v.choice(["production", "staging"]))
    for key, val, s in secrets:
        env_value(b, val, key.upper())
    for key, val, comment in negs:
        if comment:
            b.t("# %s\n" % comment)
        env_value(b, val, key.upper())
    for kind in personal:
        rec = person_fields(v, [kind], svc, loc, "snake")
        for k, val in rec.pairs[1:]:
            env_value(b, val, ("admin_" + k if not k.startswith("admin") else k).upper())


def code_terraform(b, v, personal, secrets, negs, svc, loc):
    b.t('terraform {\n  required_version = ">= 1.5.0"\n}\n\n')
    b.t('provider "aws" {\n  region = "%s"\n' % v.choice(["eu-central-1", "us-east-1", "ap-south-1", "eu-west-2"]))
    for key, val, s in secrets:
        if val.multiline:
            b.t("  %s = <<EOT\n" % key).v(val).t("\nEOT\n")
        else:
            b.t("  %s = " % key)
            write_literal(b, val, '"')
            b.t("\n")
    b.t("}\n\n")
    for key, val, comment in negs:
        b.t('variable "%s" {\n  default = ' % key)
        write_literal(b, val, '"')
        b.t("%s\n}\n\n" % ("  # " + comment if comment else ""))
    if personal:
        b.t('resource "aws_instance" "app" {\n  ami = "ami-%s"\n  tags = {\n' % v.hex(17))
        for kind in personal:
            rec = person_fields(v, [kind], svc, loc, "snake")
            for k, val in rec.pairs[1:]:
                b.t("    %s = " % ("owner_" + k))
                write_literal(b, val, '"')
                b.t("\n")
        b.t("  }\n}\n")


def code_dockerfile(b, v, personal, secrets, negs, svc, loc):
    b.t("FROM python:").v(neg("3.%d.%d" % (v.n(8, 13), v.n(0, 12)), "version")).t("-slim\n")
    b.t('LABEL maintainer="').v(v.name(loc)).t(' <').v(v.email(loc)).t('>"\n')
    for key, val, s in secrets:
        if val.multiline:
            b.t('RUN echo "').v(val, newline_esc).t('" > /root/.ssh/%s\n' % key)
        else:
            b.t("%s %s=" % (v.choice(["ENV", "ARG"]), key.upper())).v(val).t("\n")
    for key, val, comment in negs:
        if comment:
            b.t("# %s\n" % comment)
        b.t("ENV %s=" % key.upper()).v(val, lambda s: s.replace(" ", "\\ ")).t("\n")
    for kind in personal:
        rec = person_fields(v, [kind], svc, loc, "snake")
        for k, val in rec.pairs[1:]:
            b.t('LABEL org.acme.contact.%s="' % k).v(val).t('"\n')
    b.t("COPY . /app\nWORKDIR /app\nRUN pip install -r requirements.txt\nCMD [\"python\", \"-m\", \"app\"]\n")


def code_shell(b, v, personal, secrets, negs, svc, loc):
    b.t("#!/usr/bin/env bash\nset -euo pipefail\n\n")
    for key, val, s in secrets:
        if val.multiline:
            b.t("cat > ~/.ssh/%s <<'EOF'\n" % key).v(val).t("\nEOF\n")
        elif s.name in ("jwt", "generic_token", "github_token"):
            b.t('curl -fsS -H "Authorization: Bearer ').v(val).t('" https://api.%s.example/v1/status\n' % v.choice(WORDS))
        else:
            b.t('export %s="' % key.upper()).v(val).t('"\n')
    for key, val, comment in negs:
        b.t("%s='" % key.upper()).v(val).t("'%s\n" % ("  # " + comment if comment else ""))
    if personal:
        for kind in personal:
            rec = person_fields(v, [kind], svc, loc, "snake")
            for k, val in rec.pairs[1:]:
                if k in ("first_name", "last_name", "name", "full_name"):
                    b.t('git config user.name "').v(val).t('"\n')
                else:
                    b.t("curl -fsS -X POST https://crm.example.net/api/contacts -d '{\"%s\": \"" % k).v(val).t("\"}'\n")


GEN_CODE = {"python": code_python, "javascript": code_javascript, "go": code_go, "yaml": code_yaml, "env": code_env,
            "terraform": code_terraform, "dockerfile": code_dockerfile, "shell": code_shell}

GENERATORS = {"prose": gen_prose, "logs": gen_logs, "json": gen_json, "code": gen_code}
PREFIX = {"prose": "p", "logs": "l", "json": "j", "code": "c"}


# --------------------------------------------------------------------------
# Generation, self-check, output
# --------------------------------------------------------------------------


def generate_genre(genre: str, seed: str, ndocs: int) -> list[dict]:
    v = V("%s:%s" % (seed, genre))
    sched = Schedule(v, {"secret": 3})
    svc = ServiceCycle(v)
    docs = []
    for i in range(ndocs):
        b, subtype, ext = GENERATORS[genre](v, i, sched, svc)
        text, labels, expect = b.build()
        doc_id = "%s-%05d" % (PREFIX[genre], i + 1)
        docs.append({"id": doc_id, "genre": genre, "subtype": subtype, "file": "files/%s/%s.%s" % (genre, doc_id, ext),
                     "text": text, "labels": labels, "_expect": expect})
    return docs


class CheckFailed(Exception):
    pass


def self_check(all_docs: dict, min_per_kind: int) -> dict:
    """Checks the labels against the text; returns counts per genre and kind."""
    counts = {}
    services = {}
    problems = []
    for genre, docs in all_docs.items():
        c = counts.setdefault(genre, {})
        for d in docs:
            raw = d["text"].encode("utf-8")
            prev_end = 0
            for lab, exp in zip(d["labels"], d["_expect"]):
                s, e = lab["start"], lab["end"]
                if not (0 <= s < e <= len(raw)):
                    problems.append("%s: empty or out-of-range label %r" % (d["id"], lab))
                    continue
                try:
                    got = raw[s:e].decode("utf-8")
                except UnicodeDecodeError:
                    problems.append("%s: label %r does not cut at character boundaries" % (d["id"], lab))
                    continue
                if got != exp:
                    problems.append("%s: label %r reads %r, planted %r" % (d["id"], lab, got, exp))
                if s < prev_end:
                    problems.append("%s: label %r overlaps the one before it" % (d["id"], lab))
                prev_end = max(prev_end, e)
                if got != got.strip():
                    problems.append("%s: label %r has surrounding whitespace" % (d["id"], lab))
                key = lab["kind"] if lab["kind"] != "negative" else "negative:" + lab["why"]
                c[key] = c.get(key, 0) + 1
                if lab["kind"] == "secret":
                    services[lab["service"]] = services.get(lab["service"], 0) + 1
    if min_per_kind:
        for genre in all_docs:
            for kind in POSITIVE_KINDS:
                if counts[genre].get(kind, 0) < min_per_kind:
                    problems.append("genre %s has %d %s labels, fewer than %d" % (
                        genre, counts[genre].get(kind, 0), kind, min_per_kind))
        if len(services) < MIN_SERVICES:
            problems.append("only %d secret services, fewer than %d" % (len(services), MIN_SERVICES))
    if problems:
        raise CheckFailed("\n".join(problems[:50]) + ("\n... %d problems" % len(problems) if len(problems) > 50 else ""))
    return {"per_genre": counts, "services": dict(sorted(services.items()))}


def generator_digest() -> str:
    with open(os.path.abspath(__file__), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def write_corpus(all_docs: dict, out: str, files_only: bool):
    files_root = os.path.join(out, "files")
    for genre, docs in all_docs.items():
        gdir = os.path.join(files_root, genre)
        if os.path.isdir(gdir):
            shutil.rmtree(gdir)
        os.makedirs(gdir, exist_ok=True)
        for d in docs:
            with open(os.path.join(out, d["file"]), "wb") as f:
                f.write(d["text"].encode("utf-8"))
        if not files_only:
            with open(os.path.join(out, genre + ".jsonl"), "w", encoding="utf-8") as f:
                for d in docs:
                    rec = {k: d[k] for k in ("id", "genre", "subtype", "file", "text", "labels")}
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def main(argv=None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "corpus"), help="output directory (default: corpus/ here)")
    ap.add_argument("--seed", default="sandbar-redaction-eval-1", help="seed of the random streams")
    ap.add_argument("--docs", type=int, default=1000, help="documents per genre (default 1000)")
    ap.add_argument("--genres", default=",".join(GENRES), help="comma-separated genres")
    ap.add_argument("--files-only", action="store_true", help="write only files/ (for throughput runs)")
    ap.add_argument("--min-per-kind", type=int, default=None,
                    help="positives each kind needs in each genre (default %d; 0 when --docs < 1000)" % MIN_PER_GENRE_KIND)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    genres = [g for g in args.genres.split(",") if g]
    for g in genres:
        if g not in GENRES:
            ap.error("unknown genre %r" % g)
    min_per = args.min_per_kind
    if min_per is None:
        min_per = MIN_PER_GENRE_KIND if args.docs >= 1000 else 0
    all_docs = {g: generate_genre(g, args.seed, args.docs) for g in genres}
    try:
        stats = self_check(all_docs, min_per)
    except CheckFailed as e:
        print("self-check failed:\n%s" % e, file=sys.stderr)
        return 1
    os.makedirs(args.out, exist_ok=True)
    write_corpus(all_docs, args.out, args.files_only)
    sizes = {g: sum(len(d["text"].encode("utf-8")) for d in docs) for g, docs in all_docs.items()}
    manifest = {"seed": args.seed, "docs_per_genre": args.docs, "genres": genres, "generator_sha256": generator_digest(),
                "bytes": sizes, "labels": stats["per_genre"], "secret_services": stats["services"]}
    with open(os.path.join(args.out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    if not args.quiet:
        print("wrote %d documents (%s bytes) to %s; %d secret services; self-check passed" % (
            sum(len(d) for d in all_docs.values()), format(sum(sizes.values()), ","), args.out, len(stats["services"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
