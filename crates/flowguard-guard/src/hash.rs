//! A fast keyed hasher for the guard's caches and buckets, whose keys are short (a pointer, a
//! method, a server and a tool name, a token digest) and hashed on every request. SipHash, the
//! standard library's, spent more on them than the rules did. This is a folded multiply (as in
//! foldhash and wyhash) under two random 64-bit seeds per map: a caller who does not know the
//! seeds cannot aim keys at one bucket. Not a cryptographic hash; nothing relies on it for more
//! than spreading keys.

use std::hash::{BuildHasher, Hasher};

const MUL: u64 = 0x9E37_79B9_7F4A_7C15;

/// Builds [`Fast`] hashers under seeds drawn once from the standard library's random keys.
#[derive(Clone, Debug)]
pub struct Keyed {
    seed: u64,
    fold: u64,
}

impl Default for Keyed {
    fn default() -> Self {
        let r = std::collections::hash_map::RandomState::new();
        Keyed {
            seed: r.hash_one(0x5EED_u64),
            fold: r.hash_one(0xF01D_u64) | 1,
        }
    }
}

impl BuildHasher for Keyed {
    type Hasher = Fast;
    fn build_hasher(&self) -> Fast {
        Fast {
            state: self.seed,
            fold: self.fold,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Fast {
    state: u64,
    fold: u64,
}

#[inline]
fn folded(a: u64, b: u64) -> u64 {
    let m = (a as u128).wrapping_mul(b as u128);
    (m as u64) ^ ((m >> 64) as u64)
}

impl Fast {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.state = folded(self.state ^ word, MUL ^ self.fold);
    }
}

impl Hasher for Fast {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.mix(u64::from_le_bytes(c.try_into().expect("eight bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(last));
        }
        // The length ends every write, so ("ab", "c") and ("a", "bc") differ.
        self.mix(bytes.len() as u64);
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        folded(self.state, self.fold.rotate_left(29) | 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::Hash;

    fn h<T: Hash>(k: &Keyed, v: T) -> u64 {
        k.hash_one(v)
    }

    #[test]
    fn spreads_similar_keys_and_separates_boundaries() {
        let k = Keyed::default();
        let mut seen = HashSet::new();
        for i in 0..100_000u64 {
            assert!(seen.insert(h(&k, ("tools/call", "echo", format!("tool-{i}")))));
        }
        assert_ne!(h(&k, ("ab", "c")), h(&k, ("a", "bc")));
        assert_ne!(h(&k, ""), h(&k, "\0"));
        // The low bits (what a table indexes by) spread too.
        let buckets: HashSet<u64> = (0..4096u64).map(|i| h(&k, i) & 0xfff).collect();
        assert!(
            buckets.len() > 2400,
            "{} of 4096 buckets used",
            buckets.len()
        );
    }

    #[test]
    fn seeds_differ_per_builder() {
        let (a, b) = (Keyed::default(), Keyed::default());
        assert_ne!(h(&a, "same key"), h(&b, "same key"));
        assert_eq!(h(&a, "same key"), h(&a, "same key"));
    }
}
