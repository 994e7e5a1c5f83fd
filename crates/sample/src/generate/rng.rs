//! Pseudo-random numbers: splitmix64, one independent stream per table or entity.

/// splitmix64's output function: a bijective mixer of 64-bit values.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// splitmix64 generator. Each table/entity gets its own stream derived from the seed
/// (see [`Rng::derive`]), so generating one table lazily (the events, the ad
/// statistics) does not depend on what was drawn for another.
#[derive(Clone, Debug)]
pub(super) struct Rng {
    state: u64,
}

// Stream labels for `Rng::derive`.
pub(super) const S_WORLD: u64 = 1;
pub(super) const S_SESSION: u64 = 2;
pub(super) const S_EVENTS: u64 = 3;
pub(super) const S_ADSTATS: u64 = 4;
pub(super) const S_FUNNELS: u64 = 5;
pub(super) const S_CAMPAIGNS: u64 = 6;
pub(super) const S_LOADER: u64 = 7;

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// An independent stream for `(stream, index)` under `seed`.
    pub(super) fn derive(seed: u64, stream: u64, index: u64) -> Rng {
        let a = mix64(seed ^ 0x6A09_E667_F3BC_C908);
        let b = mix64(a ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        Rng::new(mix64(b ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03)))
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state)
    }

    /// Uniform in `0..n` (0 when `n` is 0), by the multiply-shift method.
    pub(super) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..hi` (`lo` when the range is empty).
    pub(super) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo) as u64) as i64
    }

    /// Uniform in `[0, 1)` with 53 bits.
    pub(super) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Index drawn with the given integer weights (0 for an empty or all-zero list).
    pub(super) fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut r = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if r < u64::from(w) {
                return i;
            }
            r -= u64::from(w);
        }
        0
    }

    pub(super) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Appends `n` characters from `alphabet`.
    pub(super) fn push_chars(&mut self, out: &mut String, alphabet: &[u8], n: usize) {
        for _ in 0..n {
            out.push(char::from(*self.pick(alphabet)));
        }
    }

    /// `prefix` followed by `n` base-62 characters (both letter cases, so ids sort
    /// differently by bytes and by a linguistic collation).
    pub(super) fn id(&mut self, prefix: &str, n: usize) -> String {
        let mut s = String::with_capacity(prefix.len() + n);
        s.push_str(prefix);
        self.push_chars(&mut s, BASE62, n);
        s
    }

    /// `n` decimal digits, the first one not zero.
    pub(super) fn digits(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        self.push_chars(&mut s, &DIGITS[1..], 1);
        self.push_chars(&mut s, DIGITS, n.saturating_sub(1));
        s
    }

    /// A version-4 UUID in its text form, from this stream.
    pub(super) fn uuid(&mut self, out: &mut String, upper: bool) {
        let hi = self.next_u64();
        let lo = self.next_u64();
        let hi = (hi & !0xF000) | 0x4000; // version 4
        let lo = (lo & !(0xC << 60)) | (0x8 << 60); // RFC 4122 variant
        let digits: &[u8] = if upper { b"0123456789ABCDEF" } else { HEX };
        // 32 hex digits, most significant first, dashes after digits 8, 12, 16, 20.
        for i in 0..32 {
            if matches!(i, 8 | 12 | 16 | 20) {
                out.push('-');
            }
            let word = if i < 16 { hi } else { lo };
            let nibble = (word >> (60 - 4 * (i % 16))) & 0xF;
            out.push(char::from(digits[nibble as usize]));
        }
    }
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
pub(super) const DIGITS: &[u8] = b"0123456789";
pub(super) const UPPER_ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
pub(super) const HEX: &[u8] = b"0123456789abcdef";
