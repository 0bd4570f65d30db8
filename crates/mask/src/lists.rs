//! Built-in word lists: given names and family names from many cultures,
//! street names, towns with their postcode shapes, and the reserved email
//! domains pseudonyms use. Detection uses the name lists to accept a lone
//! word after a weak context ("customer Ada"); pseudonyms draw from all of
//! them. The lists are plain ASCII or UTF-8 words written for this crate.

use std::collections::HashMap;
use std::sync::LazyLock;

/// Given names, across cultures. Every entry is one capitalised word.
pub(crate) const GIVEN_NAMES: &[&str] = &[
    // English-speaking countries
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William",
    "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Daniel", "Nancy", "Matthew", "Lisa", "Anthony", "Betty", "Mark",
    "Margaret", "Donald", "Sandra", "Steven", "Ashley", "Paul", "Kimberly", "Andrew", "Emily",
    "Joshua", "Donna", "Kenneth", "Michelle", "Kevin", "Dorothy", "Brian", "Carol", "George",
    "Amanda", "Edward", "Melissa", "Ronald", "Deborah", "Timothy", "Stephanie", "Jason",
    "Rebecca", "Jeffrey", "Laura", "Ryan", "Helen", "Jacob", "Sharon", "Gary", "Cynthia",
    "Nicholas", "Kathleen", "Eric", "Amy", "Jonathan", "Shirley", "Stephen", "Angela", "Larry",
    "Anna", "Justin", "Ruth", "Scott", "Brenda", "Brandon", "Pamela", "Benjamin", "Nicole",
    "Samuel", "Katherine", "Gregory", "Virginia", "Frank", "Catherine", "Alexander", "Christine",
    "Raymond", "Samantha", "Patrick", "Debra", "Jack", "Janet", "Dennis", "Rachel", "Jerry",
    "Carolyn", "Tyler", "Emma", "Aaron", "Maria", "Henry", "Heather", "Adam", "Diane",
    "Douglas", "Julie", "Nathan", "Joyce", "Peter", "Evelyn", "Zachary", "Frances", "Kyle",
    "Joan", "Noah", "Christina", "Alan", "Kelly", "Ethan", "Victoria", "Jeremy", "Lauren",
    "Lucas", "Olivia", "Oliver", "Amelia", "Harry", "Isla", "Charlie", "Ava", "Leo", "Mia",
    "Oscar", "Grace", "Archie", "Sophie", "Freddie", "Chloe", "Theo", "Ella", "Ada", "Alice",
    "Florence", "Lily", "Harriet", "Imogen", "Rosie", "Eleanor", "Hugo", "Rory", "Declan",
    "Siobhan", "Aoife", "Ciaran", "Niamh", "Eoin", "Saoirse", "Fiona", "Callum", "Ewan",
    // Spanish and Portuguese
    "José", "Juan", "Carlos", "Luis", "Javier", "Miguel", "Alejandro", "Pablo", "Diego",
    "Sergio", "Lucía", "Carmen", "Sofía", "Isabel", "Paula", "Marta", "Elena", "Valeria",
    "Camila", "Mateo", "Santiago", "Ximena", "Guadalupe", "Joaquín", "Rafael", "Inés", "João",
    "Pedro", "Tiago", "Gonçalo", "Beatriz", "Mariana", "Leonor", "Rodrigo", "Thiago",
    "Gabriela", "Fernanda",
    // French
    "Jean", "Pierre", "Louis", "Antoine", "Julien", "Nicolas", "Camille", "Manon", "Chloé",
    "Léa", "Inès", "Juliette", "Mathilde", "Élodie", "Hélène", "Margaux", "Étienne", "Mathis",
    "Gaël", "Baptiste", "Clément", "Aurélien", "Océane", "Amélie",
    // German, Dutch, Nordic
    "Hans", "Jürgen", "Klaus", "Stefan", "Andreas", "Matthias", "Lukas", "Jonas", "Felix",
    "Maximilian", "Katharina", "Anja", "Sabine", "Ursula", "Lena", "Hannah", "Johanna",
    "Greta", "Jörg", "Günter", "Sven", "Lars", "Erik", "Nils", "Magnus", "Astrid", "Ingrid",
    "Freya", "Sigrid", "Linnea", "Anneke", "Sanne", "Joost", "Daan", "Bram", "Femke", "Wouter",
    "Eelco", "Mikko", "Aino", "Saara",
    // Italian and Greek
    "Giuseppe", "Giovanni", "Francesco", "Alessandro", "Lorenzo", "Matteo", "Giulia",
    "Chiara", "Francesca", "Alessia", "Federica", "Giorgio", "Dimitrios", "Nikos", "Eleni",
    "Katerina", "Yannis", "Sofia",
    // Central and Eastern Europe
    "Piotr", "Krzysztof", "Tomasz", "Agnieszka", "Małgorzata", "Katarzyna", "Zofia", "Jakub",
    "Ivan", "Dmitri", "Sergei", "Olga", "Tatiana", "Natalia", "Anastasia", "Yulia", "Oksana",
    "Bogdan", "Milan", "Jelena", "Ivana", "Petra", "Tereza", "Ondřej", "Zsófia", "Bence",
    "Andrei", "Ioana",
    // South Asia
    "Aarav", "Vivaan", "Aditya", "Arjun", "Rohan", "Rahul", "Vikram", "Sanjay", "Anil",
    "Priya", "Ananya", "Diya", "Aisha", "Kavya", "Meera", "Neha", "Pooja", "Lakshmi", "Sunita",
    "Deepak", "Imran", "Farhan", "Nasreen", "Tanvir", "Nimal", "Chamari",
    // East and Southeast Asia
    "Wei", "Fang", "Jing", "Lei", "Min", "Xiaoming", "Yan", "Hui", "Jun", "Haruto", "Yuto",
    "Sota", "Hina", "Yui", "Sakura", "Aiko", "Kenji", "Takeshi", "Minjun", "Seojun", "Jiwoo",
    "Seoyeon", "Jisoo", "Hyun", "Linh", "Minh", "Thanh", "Huong", "Tuan", "Somchai",
    "Siriporn", "Putri", "Budi", "Rizal", "Maricel", "Jose",
    // Middle East and North Africa
    "Mohammed", "Ahmed", "Ali", "Omar", "Youssef", "Hassan", "Khalid", "Fatima", "Layla",
    "Zainab", "Mariam", "Noor", "Yasmin", "Karim", "Rania", "Tariq", "Samir", "Leila",
    "Mehmet", "Mustafa", "Emre", "Elif", "Zeynep", "Ayşe", "Dariush", "Shirin",
    "Yosef", "Noa", "Avi", "Tamar",
    // Sub-Saharan Africa
    "Chinedu", "Ngozi", "Emeka", "Oluwaseun", "Adaeze", "Kwame", "Ama", "Kofi", "Abena",
    "Thabo", "Lerato", "Sipho", "Nomvula", "Wanjiru", "Kamau", "Amara", "Tendai", "Chipo",
    "Abebe", "Selam",
];

/// Family names, across cultures. Every entry is one capitalised word.
pub(crate) const FAMILY_NAMES: &[&str] = &[
    // English-speaking countries
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson",
    "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris",
    "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott",
    "Green", "Baker", "Adams", "Nelson", "Hill", "Campbell", "Mitchell", "Roberts", "Carter",
    "Phillips", "Evans", "Turner", "Parker", "Collins", "Edwards", "Stewart", "Morris",
    "Murphy", "Cook", "Rogers", "Morgan", "Cooper", "Peterson", "Reed", "Bailey", "Bell",
    "Kelly", "Howard", "Ward", "Cox", "Richardson", "Wood", "Watson", "Brooks", "Bennett",
    "Gray", "Hughes", "Sanders", "Myers", "Long", "Ross", "Foster", "Powell",
    "Jenkins", "Perry", "Russell", "Sullivan", "Fisher", "Henderson", "Coleman", "Patterson",
    "Jordan", "Reynolds", "Hamilton", "Graham", "Wallace", "Fletcher", "Holmes", "Lovelace",
    "Hopper", "Turing", "Babbage", "Hartley", "Ashworth", "Pemberton", "Whitaker", "Blackwood",
    "Thornton", "Kensington", "Gallagher", "O'Brien", "O'Connor", "McCarthy", "Byrne",
    "Doyle", "Kennedy", "MacLeod", "Fraser", "Sinclair", "Robertson", "Gordon",
    // Spanish and Portuguese
    "García", "Rodríguez", "Martínez", "Hernández", "López", "González", "Pérez", "Sánchez",
    "Ramírez", "Torres", "Flores", "Rivera", "Gómez", "Díaz", "Reyes", "Morales", "Ortiz",
    "Castillo", "Jiménez", "Moreno", "Romero", "Navarro", "Ruiz", "Vargas", "Castro",
    "Mendoza", "Silva", "Santos", "Oliveira", "Souza", "Ferreira", "Costa", "Almeida",
    "Carvalho", "Pereira", "Ribeiro",
    // French
    "Martin", "Bernard", "Dubois", "Durand", "Lefebvre", "Moreau", "Laurent", "Simon",
    "Michel", "Leroy", "Roux", "Fournier", "Girard", "Bonnet", "Dupont", "Lambert", "Fontaine",
    "Rousseau", "Vincent", "Chevalier", "Beaumont", "Lemaire",
    // German, Dutch, Nordic
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
    "Schulz", "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Schröder", "Neumann",
    "Zimmermann", "Braun", "Krüger", "Hartmann", "Lange", "Werner", "Krause", "Jansen",
    "Bakker", "Visser", "Smit", "Meijer", "Mulder", "Bos", "Vos", "Dekker", "Hansen",
    "Johansson", "Andersson", "Nilsson", "Larsen", "Nielsen", "Lindqvist", "Berg", "Virtanen",
    "Korhonen",
    // Italian and Greek
    "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
    "Marino", "Greco", "Bruno", "Gallo", "Conti", "Lombardi", "Moretti", "Papadopoulos",
    "Georgiou", "Nikolaidis", "Pappas",
    // Central and Eastern Europe
    "Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kamiński", "Lewandowski", "Zieliński",
    "Ivanov", "Smirnov", "Kuznetsov", "Popov", "Volkov", "Sokolov", "Petrov", "Kovač",
    "Horvat", "Novák", "Dvořák", "Nagy", "Tóth", "Popescu", "Ionescu", "Shevchenko",
    "Kovalenko",
    // South Asia
    "Sharma", "Patel", "Singh", "Kumar", "Gupta", "Reddy", "Iyer", "Nair", "Menon", "Rao",
    "Joshi", "Mehta", "Chatterjee", "Banerjee", "Das", "Khan", "Ahmed", "Hussain", "Chowdhury",
    "Perera", "Fernando",
    // East and Southeast Asia
    "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun",
    "Lin", "Tanaka", "Suzuki", "Takahashi", "Watanabe", "Ito", "Yamamoto", "Nakamura",
    "Kobayashi", "Sato", "Kim", "Park", "Choi", "Jung", "Kang", "Cho", "Yoon", "Nguyen",
    "Tran", "Pham", "Le", "Hoang", "Santoso", "Wijaya", "Cruz", "Bautista",
    "Chaiyaporn",
    // Middle East and North Africa
    "Haddad", "Khoury", "Nasser", "Saleh", "Mansour", "Abdullah", "Rahman", "Karimi",
    "Hosseini", "Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Cohen", "Levi", "Mizrahi",
    "Benali", "El-Amin",
    // Sub-Saharan Africa
    "Okafor", "Okonkwo", "Adeyemi", "Balogun", "Mensah", "Owusu", "Boateng", "Nkosi",
    "Dlamini", "Mokoena", "Kamau", "Otieno", "Mwangi", "Kiplagat", "Moyo", "Banda", "Tesfaye",
    "Haile",
];

/// Street names without their type, for pseudonymous addresses. Chosen to
/// sound ordinary in English, German and French towns alike.
pub(crate) const STREET_NAMES: &[&str] = &[
    "Maple", "Oak", "Cedar", "Willow", "Birch", "Elm", "Chestnut", "Juniper", "Hawthorn",
    "Linden", "Alder", "Aspen", "Rowan", "Magnolia", "Larkspur", "Primrose", "Heather",
    "Foxglove", "Meadow", "Orchard", "Brook", "River", "Lake", "Harbor", "Bay", "Ridge",
    "Valley", "Summit", "Sunset", "Sunrise", "Highland", "Lowell", "Fairview", "Greenfield",
    "Westbrook", "Eastwood", "Northgate", "Southcliff", "Kingsley", "Ashford", "Bramley",
    "Chadwick", "Dunmore", "Elmhurst", "Fernley", "Glenwood", "Hollis", "Ivywood", "Kestrel",
    "Lindley", "Marlow", "Newbury", "Oakridge", "Pinecrest", "Quarry", "Redfern", "Stonebridge",
    "Thistle", "Upton", "Waverly", "Wren", "Yarrow", "Beacon", "Copper", "Silver", "Mill",
    "Church", "School", "Station", "Market", "Park", "Garden", "Forest", "Spring", "Hillcrest",
    "Bluebell", "Clover", "Daisy", "Lavender", "Poppy", "Sparrow", "Falcon", "Heron", "Otter",
    "Badger", "Lantern", "Anchor", "Compass", "Granite", "Slate", "Amber", "Coral", "Ivory",
    "Jasper",
];

/// German street names, written together with a suffix (`Lindenstraße`).
pub(crate) const DE_STREET_NAMES: &[&str] = &[
    "Linden", "Birken", "Eichen", "Buchen", "Ahorn", "Kastanien", "Rosen", "Tulpen", "Garten",
    "Schul", "Kirch", "Bahnhof", "Wald", "Wiesen", "Berg", "Bach", "Mühlen", "Sonnen", "Feld",
    "Schiller", "Goethe", "Mozart", "Blumen", "Heide", "Ulmen", "Erlen", "Tannen", "Amsel",
    "Finken", "Lerchen",
];

/// English street types, written after the name, with their abbreviations.
pub(crate) const EN_STREET_TYPES: &[(&str, &str)] = &[
    ("Street", "St"), ("Avenue", "Ave"), ("Road", "Rd"), ("Lane", "Ln"), ("Drive", "Dr"),
    ("Boulevard", "Blvd"), ("Court", "Ct"), ("Place", "Pl"), ("Way", "Way"), ("Terrace", "Ter"),
    ("Circle", "Cir"), ("Close", "Cl"), ("Crescent", "Cres"), ("Grove", "Gr"), ("Parkway", "Pkwy"),
];

/// German street suffixes, written together with the name.
pub(crate) const DE_STREET_SUFFIXES: &[&str] = &["straße", "weg", "allee", "platz", "gasse", "ring"];

/// French street types, written before the name.
pub(crate) const FR_STREET_TYPES: &[&str] = &["rue", "avenue", "boulevard", "place", "chemin", "allée", "impasse", "quai"];

/// French name endings after a street type: `rue des Lilas`.
pub(crate) const FR_STREET_NAMES: &[&str] = &[
    "des Lilas", "du Moulin", "de la Gare", "des Écoles", "du Marché", "de l'Église",
    "des Tilleuls", "du Château", "de la Fontaine", "des Acacias", "du Stade", "de la Poste",
    "des Peupliers", "du Port", "des Vignes", "de la Forêt", "des Roses", "du Parc",
    "Victor Hugo", "Jean Jaurès", "Pasteur", "Voltaire", "Molière", "Gambetta",
];

/// Towns by country: (town, state or region, postcode prefix). The
/// postcode of a pseudonymous address starts with the prefix; the rest of
/// its digits are drawn.
pub(crate) const US_TOWNS: &[(&str, &str, &str)] = &[
    ("Springfield", "IL", "627"), ("Riverside", "CA", "925"), ("Franklin", "TN", "370"),
    ("Greenville", "SC", "296"), ("Fairview", "OR", "970"), ("Madison", "WI", "537"),
    ("Georgetown", "TX", "786"), ("Clinton", "IA", "527"), ("Salem", "MA", "019"),
    ("Bristol", "CT", "060"), ("Dover", "DE", "199"), ("Arlington", "VA", "222"),
    ("Ashland", "OH", "448"), ("Burlington", "VT", "054"), ("Marion", "IN", "469"),
    ("Oxford", "MS", "386"), ("Milton", "FL", "325"), ("Newport", "RI", "028"),
    ("Auburn", "AL", "368"), ("Columbia", "MO", "652"),
];

/// British towns with a postcode area.
pub(crate) const UK_TOWNS: &[(&str, &str)] = &[
    ("London", "N"), ("Manchester", "M"), ("Leeds", "LS"), ("Bristol", "BS"), ("York", "YO"),
    ("Bath", "BA"), ("Oxford", "OX"), ("Cambridge", "CB"), ("Norwich", "NR"), ("Exeter", "EX"),
    ("Chester", "CH"), ("Durham", "DH"), ("Brighton", "BN"), ("Reading", "RG"),
    ("Sheffield", "S"), ("Nottingham", "NG"),
];

/// German towns with the first two digits of their postcodes.
pub(crate) const DE_TOWNS: &[(&str, &str)] = &[
    ("Berlin", "10"), ("Hamburg", "20"), ("München", "80"), ("Köln", "50"), ("Frankfurt am Main", "60"),
    ("Stuttgart", "70"), ("Leipzig", "04"), ("Dresden", "01"), ("Hannover", "30"), ("Bremen", "28"),
    ("Nürnberg", "90"), ("Freiburg", "79"), ("Münster", "48"), ("Kiel", "24"),
];

/// French towns with their département's postcode prefix.
pub(crate) const FR_TOWNS: &[(&str, &str)] = &[
    ("Paris", "75"), ("Lyon", "69"), ("Marseille", "13"), ("Toulouse", "31"), ("Nantes", "44"),
    ("Bordeaux", "33"), ("Lille", "59"), ("Rennes", "35"), ("Strasbourg", "67"),
    ("Montpellier", "34"), ("Nice", "06"), ("Dijon", "21"), ("Grenoble", "38"), ("Tours", "37"),
];

/// Domains for pseudonymous email addresses: the names reserved for
/// documentation by RFC 2606 and RFC 6761 (`example.com`, `example.net`,
/// `example.org`, and names under the reserved `.example` top-level
/// domain). None can ever deliver mail to a real person.
pub(crate) const EMAIL_DOMAINS: &[&str] = &[
    "example.com", "example.net", "example.org", "mail.example", "inbox.example",
    "post.example", "webmail.example", "corp.example", "office.example", "letters.example",
];

/// North American area codes in service, for pseudonymous numbers in the
/// 555-0100–0199 range that no carrier assigns.
pub(crate) const NANP_AREA_CODES: &[&str] = &[
    "201", "202", "203", "205", "206", "207", "208", "209", "210", "212", "213", "214", "215",
    "216", "217", "218", "219", "224", "225", "228", "229", "231", "234", "239", "240", "248",
    "251", "252", "253", "254", "256", "260", "262", "267", "269", "270", "276", "281", "301",
    "302", "303", "304", "305", "307", "308", "309", "310", "312", "313", "314", "315", "316",
    "317", "318", "319", "320", "321", "323", "330", "334", "336", "337", "339", "347", "351",
    "352", "360", "361", "385", "386", "401", "402", "404", "405", "406", "407", "408", "409",
    "410", "412", "413", "414", "415", "416", "417", "419", "423", "425", "430", "432", "434",
    "435", "440", "443", "469", "478", "479", "480", "484", "501", "502", "503", "504", "505",
    "507", "508", "509", "510", "512", "513", "515", "516", "517", "518", "520", "530", "540",
    "541", "551", "559", "561", "562", "563", "567", "570", "571", "573", "574", "575", "580",
    "585", "586", "601", "602", "603", "604", "605", "606", "607", "608", "609", "610", "612",
    "614", "615", "616", "617", "618", "619", "620", "623", "626", "630", "631", "636", "641",
    "646", "647", "650", "651", "657", "660", "661", "662", "678", "682", "701", "702", "703",
    "704", "706", "707", "708", "712", "713", "714", "715", "716", "717", "718", "719", "720",
    "724", "727", "731", "732", "734", "740", "754", "757", "760", "763", "765", "769", "770",
    "772", "773", "774", "775", "781", "785", "786", "801", "802", "803", "804", "805", "806",
    "808", "810", "812", "813", "814", "815", "816", "817", "818", "828", "830", "831", "832",
    "843", "845", "847", "848", "850", "856", "857", "858", "859", "860", "862", "863", "864",
    "865", "870", "901", "903", "904", "906", "907", "908", "909", "910", "912", "913", "914",
    "915", "916", "917", "918", "919", "920", "925", "928", "931", "936", "937", "940", "941",
    "947", "949", "951", "952", "954", "956", "970", "971", "972", "973", "978", "979", "980",
    "985", "989",
];

/// Lower-case given names to their index in [`GIVEN_NAMES`].
static GIVEN_INDEX: LazyLock<HashMap<String, usize>> = LazyLock::new(|| index(GIVEN_NAMES));
/// Lower-case family names to their index in [`FAMILY_NAMES`].
static FAMILY_INDEX: LazyLock<HashMap<String, usize>> = LazyLock::new(|| index(FAMILY_NAMES));

fn index(list: &[&str]) -> HashMap<String, usize> {
    let mut map = HashMap::with_capacity(list.len());
    for (i, name) in list.iter().enumerate() {
        map.entry(name.to_lowercase()).or_insert(i);
    }
    map
}

/// The index of `word` (any case) in [`GIVEN_NAMES`].
pub(crate) fn given_index(word: &str) -> Option<usize> {
    GIVEN_INDEX.get(&word.to_lowercase()).copied()
}

/// The index of `word` (any case) in [`FAMILY_NAMES`].
pub(crate) fn family_index(word: &str) -> Option<usize> {
    FAMILY_INDEX.get(&word.to_lowercase()).copied()
}

/// Whether `word` is one of the built-in given names (any case).
pub(crate) fn is_given_name(word: &str) -> bool {
    given_index(word).is_some()
}
