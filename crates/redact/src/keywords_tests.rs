//! The keyword automaton reports exactly what an overlapping Aho-Corasick
//! search reports, in the same order, however the input is split into
//! streams.

use aho_corasick::AhoCorasick;
use proptest::prelude::*;

use crate::keywords::{Keywords, Occurrence};

fn reference(patterns: &[String], hay: &[u8], from: usize, to: usize) -> Vec<Occurrence> {
    let ac = AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(patterns)
        .expect("small pattern sets build");
    let input = aho_corasick::Input::new(hay).span(from..to);
    ac.find_overlapping_iter(input)
        .map(|m| (m.start(), m.end(), m.pattern().as_usize()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn streams_find_what_one_search_finds(
        patterns in prop::collection::vec("[abAB_-]{1,12}", 1..20),
        hay in "[abAB_ -]{0,1200}",
        cut in any::<(u16, u16)>(),
    ) {
        let keywords = Keywords::new(&patterns).expect("small pattern sets build");
        let bytes = hay.as_bytes();
        let mut all = Vec::new();
        keywords.find_all(bytes, &mut all);
        prop_assert_eq!(&all, &reference(&patterns, bytes, 0, bytes.len()));
        let n = bytes.len().max(1);
        let (a, b) = (usize::from(cut.0) % n, usize::from(cut.1) % n);
        let (from, to) = (a.min(b), a.max(b));
        let mut some = Vec::new();
        keywords.find_in(bytes, from, to, &mut some);
        prop_assert_eq!(some, reference(&patterns, bytes, from, to));
    }
}

#[test]
fn every_split_of_a_long_text_is_seen() {
    // A keyword across every possible boundary between parts.
    let patterns = vec!["password".to_owned(), "pass".to_owned(), "word".to_owned()];
    let keywords = Keywords::new(&patterns).expect("three patterns build");
    for len in [95, 96, 191, 192, 383, 384, 385, 1000] {
        for at in 0..len - 8 {
            let mut hay = vec![b'x'; len];
            hay[at..at + 8].copy_from_slice(b"PassWord");
            let mut found = Vec::new();
            keywords.find_all(&hay, &mut found);
            assert_eq!(
                found,
                reference(&patterns, &hay, 0, len),
                "len {len}, at {at}"
            );
            assert_eq!(found.len(), 3, "len {len}, at {at}");
        }
    }
}
