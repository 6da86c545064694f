//! CPython's `random.Random` (MT19937) for integer seeds: `seed`, `getrandbits`,
//! `_randbelow` and Python 3.11's `shuffle` — what `random.seed(233); random.shuffle(goals)`
//! needs to order WebShop's goals bit for bit. Checked against CPython 3.11's output.

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// CPython's Mersenne Twister state.
pub struct Random {
    mt: [u32; N],
    index: usize,
}

impl Random {
    /// `random.seed(n)` for a non-negative integer `n`: `init_by_array` with the 32-bit
    /// words of `n`, least significant first (one word for 0).
    pub fn seed(n: u64) -> Self {
        let lo = n as u32;
        let hi = (n >> 32) as u32;
        if hi == 0 {
            Random::init_by_array(&[lo])
        } else {
            Random::init_by_array(&[lo, hi])
        }
    }

    fn init_genrand(s: u32) -> Self {
        let mut mt = [0u32; N];
        mt[0] = s;
        for i in 1..N {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        Random { mt, index: N }
    }

    fn init_by_array(key: &[u32]) -> Self {
        let mut r = Random::init_genrand(19_650_218);
        let mt = &mut r.mt;
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key.len()) {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
        r
    }

    /// `genrand_uint32`: the next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            for k in 0..N {
                let y = (self.mt[k] & UPPER_MASK) | (self.mt[(k + 1) % N] & LOWER_MASK);
                let mag = if y & 1 == 1 { MATRIX_A } else { 0 };
                self.mt[k] = self.mt[(k + M) % N] ^ (y >> 1) ^ mag;
            }
            self.index = 0;
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `getrandbits(k)` for `k <= 64`: 32-bit words, least significant first, the last
    /// one shifted down to the bits still wanted.
    pub fn getrandbits(&mut self, k: u32) -> u64 {
        debug_assert!(k <= 64);
        if k == 0 {
            return 0;
        }
        if k <= 32 {
            return u64::from(self.next_u32() >> (32 - k));
        }
        let low = u64::from(self.next_u32());
        let high = u64::from(self.next_u32() >> (64 - k));
        low | (high << 32)
    }

    /// `_randbelow_with_getrandbits(n)`: rejection sampling on `n.bit_length()` bits.
    pub fn randbelow(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let k = 64 - n.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r;
            }
        }
    }

    /// Python 3.11's `shuffle`: `for i in reversed(range(1, len(x))): j =
    /// _randbelow(i + 1); swap`.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.randbelow(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpython_getrandbits() {
        // random.seed(233); [random.getrandbits(32) for _ in range(3)]
        let mut r = Random::seed(233);
        let got: Vec<u64> = (0..3).map(|_| r.getrandbits(32)).collect();
        assert_eq!(got, [2931216007, 3446561803, 2698614761]);
        // random.seed(0); [random.getrandbits(32) for _ in range(2)]
        let mut r = Random::seed(0);
        assert_eq!(r.next_u32(), 3626764237);
        assert_eq!(r.next_u32(), 1654615998);
        // random.seed(2**40 + 5): a two-word key.
        let mut r = Random::seed((1 << 40) + 5);
        assert_eq!(r.getrandbits(32), 2166296868);
        assert_eq!(r.getrandbits(32), 2220160828);
        // random.seed(233); [random.getrandbits(40) for _ in range(2)]
        let mut r = Random::seed(233);
        assert_eq!(r.getrandbits(40), 883399511687);
        assert_eq!(r.getrandbits(40), 191677175785);
        assert_eq!(r.getrandbits(0), 0);
    }

    #[test]
    fn cpython_shuffle_small() {
        // random.seed(233); x = list(range(20)); random.shuffle(x)
        let mut x: Vec<usize> = (0..20).collect();
        Random::seed(233).shuffle(&mut x);
        assert_eq!(
            x,
            [17, 18, 9, 2, 8, 19, 11, 10, 12, 0, 3, 4, 14, 13, 1, 6, 15, 7, 16, 5]
        );
        let mut x: Vec<usize> = (0..5).collect();
        Random::seed(7).shuffle(&mut x);
        assert_eq!(x, [4, 0, 3, 1, 2]);
        let mut x: Vec<usize> = (0..3).collect();
        Random::seed(233).shuffle(&mut x);
        assert_eq!(x, [1, 0, 2]);
        let mut empty: Vec<u8> = Vec::new();
        Random::seed(233).shuffle(&mut empty);
        let mut one = [9];
        Random::seed(233).shuffle(&mut one);
        assert_eq!(one, [9]);
    }

    #[test]
    fn cpython_shuffle_of_webshops_12087_goals() {
        // random.seed(233); x = list(range(12087)); random.shuffle(x)
        // print(x[:10], x[-10:], sum(i * v for i, v in enumerate(x)) % (2**61 - 1))
        let mut x: Vec<u64> = (0..12087).collect();
        Random::seed(233).shuffle(&mut x);
        assert_eq!(
            x[..10],
            [8655, 10304, 6940, 2750, 3667, 2144, 3577, 9548, 8911, 10662]
        );
        assert_eq!(
            x[x.len() - 10..],
            [1676, 1364, 3348, 9024, 7931, 3781, 8604, 2856, 10294, 11181]
        );
        let checksum = x
            .iter()
            .enumerate()
            .fold(0u128, |acc, (i, &v)| acc + i as u128 * u128::from(v))
            % ((1u128 << 61) - 1);
        assert_eq!(checksum, 441427049334);
    }
}
