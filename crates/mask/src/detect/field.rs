//! What a field name says about its value. A JSON path or key such as
//! `customer.first_name`, `/patients/0/dob`, `billingAddress` or
//! `shipping.address.line1` is split into lower-case words (at `_`, `-`,
//! `.`, spaces and camelCase humps); its last key names the value and the
//! keys above it give context (`customer.name` is a person, `product.name`
//! is not).

use super::PersonalKind;

/// What a field name implies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FieldHint {
    /// The kind the whole value is, if it has the shape of one.
    pub kind: Option<PersonalKind>,
    /// For a person name: whether the name is certain (`first_name`) or
    /// only likely (`name`, `customer`), which decides how strictly the
    /// value is checked.
    pub definite: bool,
    /// For postal addresses: the field holds one component of an address
    /// (a street line or a postcode) rather than a whole one.
    pub component: Option<Component>,
    /// The field or its parents say the data is test data: a card number
    /// there is a test number.
    pub test: bool,
    /// The field holds a version or build number: dotted numbers there are
    /// not IP addresses.
    pub version: bool,
}

/// One part of an address held in its own field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Component {
    Street,
    Postcode,
}

/// Splits a key into lower-case words.
pub(crate) fn words(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Splits a path into its keys, dropping array indices and JSON pointer or
/// JSONPath punctuation.
fn keys(path: &str) -> Vec<&str> {
    path.split(['.', '/', '[', ']', '$', '"', '\'', '#'])
        .filter(|k| !k.is_empty() && !k.bytes().all(|b| b.is_ascii_digit()) && *k != "*")
        .collect()
}

const TEST_WORDS: &[&str] = &[
    "test", "testing", "tests", "sample", "samples", "example", "examples", "dummy", "fake",
    "mock", "fixture", "fixtures", "demo", "sandbox",
];

/// Words that make a name field a person's.
const NAME_PARTS: &[&str] = &[
    "first",
    "given",
    "fore",
    "last",
    "sur",
    "family",
    "middle",
    "maiden",
    "full",
    "legal",
    "real",
    "birth",
    "christian",
    "nick",
];

/// Roles people have in records.
const PERSON_ROLES: &[&str] = &[
    "customer",
    "who",
    "whom",
    "customers",
    "patient",
    "patients",
    "employee",
    "employees",
    "person",
    "persons",
    "people",
    "contact",
    "contacts",
    "owner",
    "owners",
    "holder",
    "holders",
    "cardholder",
    "recipient",
    "recipients",
    "sender",
    "author",
    "authors",
    "assignee",
    "reporter",
    "requester",
    "approver",
    "reviewer",
    "member",
    "members",
    "guest",
    "guests",
    "passenger",
    "passengers",
    "driver",
    "drivers",
    "student",
    "students",
    "teacher",
    "applicant",
    "applicants",
    "beneficiary",
    "spouse",
    "partner",
    "guardian",
    "parent",
    "child",
    "children",
    "dependent",
    "dependents",
    "insured",
    "policyholder",
    "subscriber",
    "subscribers",
    "caller",
    "buyer",
    "seller",
    "tenant",
    "landlord",
    "doctor",
    "physician",
    "nurse",
    "manager",
    "signer",
    "signatory",
    "witness",
    "victim",
    "emergency",
    "billing",
    "shipping",
    "client",
    "clients",
    "user",
    "users",
    "agent",
    "rep",
    "representative",
    "attendee",
    "attendees",
    "participant",
    "participants",
    "candidate",
    "candidates",
    "volunteer",
    "donor",
    "donors",
    "borrower",
    "lender",
    "payee",
    "payer",
    "account",
];

/// Things that have names but are not people.
const ENTITIES: &[&str] = &[
    "product",
    "products",
    "company",
    "companies",
    "org",
    "organization",
    "organisation",
    "business",
    "brand",
    "file",
    "filename",
    "host",
    "hostname",
    "server",
    "domain",
    "app",
    "application",
    "service",
    "project",
    "repo",
    "repository",
    "bucket",
    "table",
    "column",
    "field",
    "key",
    "team",
    "group",
    "role",
    "channel",
    "device",
    "model",
    "item",
    "items",
    "sku",
    "category",
    "tag",
    "city",
    "country",
    "state",
    "street",
    "bank",
    "store",
    "shop",
    "event",
    "plan",
    "tier",
    "queue",
    "topic",
    "branch",
    "image",
    "container",
    "pod",
    "node",
    "cluster",
    "region",
    "zone",
    "database",
    "db",
    "schema",
    "index",
    "class",
    "method",
    "function",
    "module",
    "package",
    "variable",
    "env",
    "feature",
    "flag",
    "metric",
    "label",
    "screen",
    "login",
    "handle",
    "path",
    "url",
    "type",
    "kind",
    "status",
    "code",
    "version",
    "workspace",
    "folder",
    "directory",
    "dir",
    "pipeline",
    "job",
    "task",
    "step",
    "template",
    "resource",
    "vendor",
    "merchant",
    "supplier",
    "manufacturer",
    "carrier",
    "venue",
    "place",
    "location",
    "site",
    "hotel",
    "airline",
    "school",
    "university",
    "hospital",
    "course",
    "title",
    "subject",
    "song",
    "album",
    "movie",
    "book",
    "game",
    "attribute",
    "param",
    "parameter",
    "property",
    "setting",
    "option",
    "config",
    "section",
    "unit",
    "currency",
    "language",
    "locale",
    "timezone",
    "campaign",
    "portfolio",
    "fund",
    "asset",
    "coin",
    "token",
    "network",
    "interface",
    "volume",
    "disk",
    "mount",
    "cert",
    "certificate",
    "secret",
    "policy",
    "rule",
    "alarm",
    "alert",
    "dashboard",
    "report",
    "document",
    "doc",
    "sheet",
    "page",
    "form",
    "widget",
    "component",
    "element",
    "entity",
    "object",
    "record",
    "store",
    "warehouse",
    "route",
    "street",
    "building",
    "room",
    "floor",
    "department",
    "division",
    "office",
    "employer",
    "institution",
    "clinic",
    "pharmacy",
    "insurer",
    "provider",
    "plan",
    "drug",
    "medication",
    "diagnosis",
    "procedure",
    "test",
    "lab",
    "event",
    "venue",
    "restaurant",
    "dish",
    "menu",
    "recipe",
    "color",
    "colour",
    "size",
    "pet",
    "animal",
    "breed",
    "species",
    "vehicle",
    "make",
    "ship",
    "vessel",
    "flight",
    "airport",
    "station",
    "stop",
    "line",
    "brand",
    "label",
    "legal_entity",
    "entity",
    "display",
    "username",
    "nickname",
];

/// Words that make an `address` field something other than a postal one.
const NOT_POSTAL: &[&str] = &[
    "ip",
    "ipv4",
    "ipv6",
    "mac",
    "email",
    "e",
    "web",
    "url",
    "uri",
    "wallet",
    "server",
    "remote",
    "local",
    "bind",
    "listen",
    "host",
    "hw",
    "ether",
    "ethernet",
    "contract",
    "btc",
    "eth",
    "bitcoin",
    "ethereum",
    "crypto",
    "node",
    "peer",
    "socket",
    "memory",
    "mem",
    "base",
    "return",
    "reply",
    "public",
    "private",
    "key",
    "multicast",
    "broadcast",
    "gateway",
    "proxy",
    "dns",
    "smtp",
    "mx",
    "to",
    "from",
    "cc",
    "bcc",
    "network",
    "net",
    "subnet",
    "device",
    "bluetooth",
    "bt",
    "wifi",
    "link",
    "hardware",
    "loopback",
    "source",
    "src",
    "dest",
    "destination",
    "target",
    "virtual",
    "physical",
    "advertise",
    "advertised",
    "external",
    "internal",
    "inet",
    "sock",
    "client",
    "router",
    "forward",
    "forwarded",
    "origin",
];

fn has(words: &[String], set: &[&str]) -> bool {
    words.iter().any(|w| set.contains(&w.as_str()))
}

fn has_word(words: &[String], w: &str) -> bool {
    words.iter().any(|x| x == w)
}

/// The most classifications one thread remembers. Keys repeat (every log
/// line has the same ones), and classifying allocates.
const CACHE_LIMIT: usize = 2048;

thread_local! {
    static CACHE: std::cell::RefCell<std::collections::HashMap<String, FieldHint>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// What the field at `path` implies about its value.
pub(crate) fn classify(path: &str) -> FieldHint {
    if path.len() > 200 {
        return classify_uncached(path);
    }
    if let Some(hint) = CACHE.with(|c| c.borrow().get(path).copied()) {
        return hint;
    }
    let hint = classify_uncached(path);
    CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(path.to_owned(), hint);
    });
    hint
}

fn classify_uncached(path: &str) -> FieldHint {
    let keys = keys(path);
    let Some((last, parents)) = keys.split_last() else {
        return FieldHint::default();
    };
    let key_words = words(last);
    let parent_words: Vec<Vec<String>> = parents.iter().rev().map(|p| words(p)).collect();
    let mut hint = FieldHint {
        test: has(&key_words, TEST_WORDS) || parent_words.iter().any(|w| has(w, TEST_WORDS)),
        ..FieldHint::default()
    };
    let joined: String = key_words.concat();
    hint.version = has(
        &key_words,
        &[
            "version", "ver", "release", "build", "firmware", "revision", "rev", "semver",
        ],
    );
    if let Some(kind) = kind_from_key(&key_words, &joined) {
        hint.kind = Some(kind);
        if kind == PersonalKind::PersonName {
            hint.definite = definite_name(&key_words, &joined);
        }
    }
    let nearest_parent = parent_words.first();
    // A person's `name`, `first`, `full` under a person (`customer.name`),
    // and no person under an entity (`product.name`).
    if let Some(parent) = nearest_parent {
        // Protocol identities name software (`clientInfo.name` in MCP's
        // `initialize`), even though a client can be a person elsewhere.
        let software = matches!(
            parent.concat().as_str(),
            "clientinfo" | "serverinfo" | "implementation" | "useragent"
        );
        let parent_is_person = has(parent, PERSON_ROLES) && !has(parent, ENTITIES) && !software;
        let parent_is_entity = software || (has(parent, ENTITIES) && !has(parent, PERSON_ROLES));
        if hint.kind == Some(PersonalKind::PersonName) && !hint.definite {
            if parent_is_person && key_words.iter().all(|w| w == "name" || w == "display") {
                hint.definite = true;
            }
            if parent_is_entity {
                hint.kind = None;
            }
        }
        if hint.kind.is_none()
            && parent_is_person
            && matches!(
                joined.as_str(),
                "first" | "last" | "middle" | "given" | "family" | "full"
            )
        {
            hint.kind = Some(PersonalKind::PersonName);
            hint.definite = true;
        }
        // Parts of an address: `address.street`, `billing.line1`, `shipping.zip`.
        let parent_is_address = has(
            parent,
            &[
                "address",
                "addresses",
                "addr",
                "billing",
                "shipping",
                "mailing",
                "residence",
                "home",
                "postal",
                "location",
                "adresse",
                "anschrift",
            ],
        ) && !has(parent, NOT_POSTAL);
        if hint.kind.is_none() && parent_is_address {
            hint.component = address_component(&key_words, &joined);
            if hint.component.is_some() {
                hint.kind = Some(PersonalKind::PostalAddress);
            }
        }
    }
    if hint.kind.is_none()
        && matches!(
            joined.as_str(),
            "zip"
                | "zipcode"
                | "postcode"
                | "postalcode"
                | "plz"
                | "postleitzahl"
                | "codepostal"
                | "cp"
        )
    {
        hint.kind = Some(PersonalKind::PostalAddress);
        hint.component = Some(Component::Postcode);
    }
    if hint.kind == Some(PersonalKind::PostalAddress)
        && hint.component.is_none()
        && matches!(
            joined.as_str(),
            "street" | "streetaddress" | "street1" | "street2" | "strasse" | "straße"
        )
    {
        hint.component = Some(Component::Street);
    }
    hint
}

fn address_component(words: &[String], joined: &str) -> Option<Component> {
    match joined {
        "street" | "street1" | "street2" | "streetaddress" | "line" | "line1" | "line2"
        | "line3" | "addressline1" | "addressline2" | "address1" | "address2" | "house"
        | "housenumber" | "building" | "strasse" | "straße" | "rue" => Some(Component::Street),
        "zip" | "zipcode" | "postcode" | "postalcode" | "plz" | "postleitzahl" | "codepostal"
        | "cp" => Some(Component::Postcode),
        _ if has_word(words, "street") || has_word(words, "line") => Some(Component::Street),
        _ => None,
    }
}

fn kind_from_key(w: &[String], joined: &str) -> Option<PersonalKind> {
    let birth = has_word(w, "birth") || has_word(w, "birthdate") || has_word(w, "birthday");
    if has_word(w, "dob")
        || joined == "birthday"
        || joined == "birthdate"
        || joined == "dateofbirth"
        || (birth
            && (has_word(w, "date")
                || has_word(w, "day")
                || has_word(w, "dt")
                || has_word(w, "on")
                || w.len() == 1))
        || joined == "born"
        || joined == "bornon"
        || joined.contains("geburtsdatum")
        || joined.contains("geburtstag")
        || joined.contains("naissance")
        || joined.contains("nacimiento")
    {
        return Some(PersonalKind::DateOfBirth);
    }
    if has_word(w, "ssn")
        || joined.contains("socialsecurity")
        || (has_word(w, "social") && has_word(w, "security"))
    {
        return Some(PersonalKind::UsSsn);
    }
    if has(
        w,
        &[
            "phone",
            "telephone",
            "tel",
            "mobile",
            "cell",
            "cellphone",
            "fax",
            "msisdn",
            "telefon",
            "telefono",
            "téléphone",
            "telephone",
            "handy",
            "portable",
            "whatsapp",
            "landline",
            "phonenumber",
            "mobilephone",
            "homephone",
            "workphone",
        ],
    ) {
        return Some(PersonalKind::Phone);
    }
    let postal_word = has(
        w,
        &[
            "address",
            "addr",
            "adresse",
            "anschrift",
            "street",
            "strasse",
            "straße",
            "residence",
            "domicile",
            "direccion",
            "dirección",
            "indirizzo",
            "endereco",
            "address1",
            "address2",
            "addressline",
            "streetaddress",
        ],
    ) || joined.starts_with("addressline")
        || joined.ends_with("address");
    let email_like = (has_word(w, "mail") && !has_word(w, "mailing")) || joined.contains("email");
    if postal_word && !has(w, NOT_POSTAL) && !email_like {
        return Some(PersonalKind::PostalAddress);
    }
    if is_person_key(w, joined) {
        return Some(PersonalKind::PersonName);
    }
    None
}

fn definite_name(w: &[String], joined: &str) -> bool {
    let name = has_word(w, "name") || joined.ends_with("name");
    (name
        && (has(w, NAME_PARTS) || NAME_PARTS.iter().any(|p| joined.starts_with(p)))
        && !joined.starts_with("username")
        && !joined.starts_with("nickname")
        && !joined.starts_with("filename"))
        || (name && has(w, PERSON_ROLES) && !has(w, ENTITIES))
        || matches!(
            joined,
            "surname"
                | "forename"
                | "firstname"
                | "lastname"
                | "fullname"
                | "givenname"
                | "familyname"
                | "middlename"
                | "maidenname"
                | "cardholder"
                | "cardholdername"
                | "nameoncard"
                | "accountholder"
                | "accountholdername"
                | "signatory"
                | "policyholder"
        )
}

fn is_person_key(w: &[String], joined: &str) -> bool {
    if matches!(
        joined,
        "username"
            | "nickname"
            | "screenname"
            | "login"
            | "handle"
            | "filename"
            | "hostname"
            | "displayname"
    ) {
        return joined == "displayname";
    }
    if definite_name(w, joined) {
        return true;
    }
    if has(w, ENTITIES) && !has(w, NAME_PARTS) {
        return false;
    }
    let bare_role = w.len() <= 2
        && has(w, PERSON_ROLES)
        && !has(
            w,
            &[
                "id", "ids", "count", "type", "email", "phone", "number", "status", "role",
                "address", "uuid", "key", "ref", "url", "code",
            ],
        );
    joined == "name"
        || joined == "person"
        || joined == "contactperson"
        || joined == "createdby"
        || joined == "updatedby"
        || joined == "ownedby"
        || joined == "assignedto"
        || bare_role
}

/// Whether a name field holds a given name (`Some(true)`) or a family name
/// (`Some(false)`).
pub(crate) fn name_part(path: &str) -> Option<bool> {
    let keys = keys(path);
    let last = keys.last()?;
    let w = words(last);
    let joined = w.concat();
    if has(
        &w,
        &[
            "first",
            "given",
            "fore",
            "christian",
            "forename",
            "firstname",
            "givenname",
        ],
    ) || joined.starts_with("first")
        || joined.starts_with("given")
    {
        Some(true)
    } else if has(
        &w,
        &[
            "last",
            "sur",
            "surname",
            "family",
            "maiden",
            "lastname",
            "familyname",
        ],
    ) || joined.starts_with("last")
        || joined.starts_with("surname")
    {
        Some(false)
    } else {
        None
    }
}
