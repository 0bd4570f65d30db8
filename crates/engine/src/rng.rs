//! Deterministic randomness for runs.
//!
//! Every random draw in a run comes from a *stream* named by the run's seed
//! and labels (for instance the tool, the fault and the call number), so a
//! draw never depends on how calls to other tools interleaved. The
//! generator (SplitMix64) and the label hash (FNV-1a) are written here
//! rather than taken from a crate, because replays must produce the same
//! bytes across Sandbar versions and dependency upgrades.

/// A stream of pseudo-random numbers.
#[derive(Debug, Clone)]
pub struct Stream {
    state: u64,
}

impl Stream {
    /// The stream for `seed` and these labels.
    pub fn new(seed: u64, labels: &[&[u8]]) -> Stream {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in seed.to_le_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        for label in labels {
            // The length prefix keeps ["ab", "c"] and ["a", "bc"] apart.
            for b in (label.len() as u64)
                .to_le_bytes()
                .iter()
                .chain(label.iter())
            {
                h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        Stream { state: h }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A float in [0, 1) with 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An integer in [low, high] (inclusive); `low` when the range is empty.
    pub fn int_in(&mut self, low: i64, high: i64) -> i64 {
        if high <= low {
            return low;
        }
        let span = (high as i128 - low as i128 + 1) as u128;
        // Rejection sampling keeps the distribution uniform for any span.
        let zone = u64::MAX as u128 - (u64::MAX as u128 + 1) % span;
        loop {
            let x = self.next_u64() as u128;
            if x <= zone {
                return (low as i128 + (x % span) as i128) as i64;
            }
        }
    }

    /// A version-4-shaped UUID drawn from the stream.
    pub fn uuid(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&a.to_be_bytes());
        bytes[8..].copy_from_slice(&b.to_be_bytes());
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let h: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_stable_and_independent() {
        let mut a = Stream::new(42, &[b"fault", b"deploy", b"1"]);
        let mut b = Stream::new(42, &[b"fault", b"deploy", b"1"]);
        let first: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let second: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        assert_eq!(first, second);
        // Fixed values: a change to the generator would break every recorded run.
        let mut fixed = Stream::new(0, &[]);
        assert_eq!(fixed.next_u64(), 6_603_144_262_649_002_859);
        let mut c = Stream::new(42, &[b"fault", b"deploy", b"2"]);
        assert_ne!(first[0], c.next_u64());
        let mut d = Stream::new(42, &[b"ab", b"c"]);
        let mut e = Stream::new(42, &[b"a", b"bc"]);
        assert_ne!(d.next_u64(), e.next_u64());
    }

    #[test]
    fn ranges_and_uuids() {
        let mut s = Stream::new(7, &[b"t"]);
        for _ in 0..1000 {
            let v = s.int_in(-3, 3);
            assert!((-3..=3).contains(&v));
            let f = s.next_f64();
            assert!((0.0..1.0).contains(&f));
        }
        assert_eq!(s.int_in(5, 5), 5);
        assert_eq!(s.int_in(5, 1), 5);
        let u = s.uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
