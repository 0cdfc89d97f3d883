//! One vectorized pass that tells which of the door's checks a text needs at all.

/// Bytes looked at together: one SSE2 register.
const LANES: usize = 16;
/// Four steps make a group.
const GROUP: usize = 4 * LANES;

/// What the pass found: with at most `MAX_DEPTH` brackets a text cannot be too deep; without a
/// backslash it has no escape; with no digit followed by `e`/`E` and at most 300 digits it has
/// no number out of range. Most messages need nothing more.
pub(super) struct Summary {
    pub opens: usize,
    pub digits: usize,
    pub backslash: bool,
    pub exponent: bool,
}

impl Summary {
    pub fn of(bytes: &[u8]) -> Summary {
        let mut lanes = Lanes::default();
        let (mut opens, mut digits) = (0usize, 0usize);
        let mut i = 0;
        // A group of four steps at a time while 65 bytes are left (the last is only the one
        // after), the counts drained before any lane can pass 255; then one step at a time;
        // then the rest, padded with zeros (which count as nothing).
        while bytes.len() > i + GROUP {
            for _ in 0..((bytes.len() - i - 1) / GROUP).min(63) {
                let group: &[u8; GROUP + 1] = bytes[i..=i + GROUP].try_into().expect("GROUP + 1");
                for k in 0..4 {
                    lanes.step(window(group, k * LANES));
                }
                i += GROUP;
            }
            lanes.drain_counts(&mut opens, &mut digits);
        }
        while bytes.len() > i + LANES {
            lanes.step(window(bytes, i));
            i += LANES;
        }
        let mut last = [0u8; LANES + 1];
        let rest = &bytes[i.min(bytes.len())..];
        last[..rest.len()].copy_from_slice(rest);
        lanes.step(window(&last, 0));
        lanes.drain_counts(&mut opens, &mut digits);
        Summary {
            opens,
            digits,
            backslash: lanes.backslash.iter().any(|&f| f != 0),
            exponent: lanes.exponent.iter().any(|&f| f != 0),
        }
    }
}

/// The `LANES` bytes at `i` and the `LANES` bytes one further, loaded separately.
#[inline(always)]
fn window(bytes: &[u8], i: usize) -> (&[u8; LANES], &[u8; LANES]) {
    let cur = bytes[i..i + LANES].try_into().expect("LANES bytes");
    let next = bytes[i + 1..i + 1 + LANES].try_into().expect("LANES bytes");
    (cur, next)
}

/// Per lane: `[`/`{` and digits seen, whether a backslash, and whether a digit followed by `e`
/// or `E` was seen. Written lane by lane so that the compiler keeps each in one register.
#[derive(Default)]
struct Lanes {
    opens: [u8; LANES],
    digits: [u8; LANES],
    backslash: [u8; LANES],
    exponent: [u8; LANES],
}

impl Lanes {
    /// One step: `cur` and the same bytes shifted by one, `next`.
    #[inline(always)]
    fn step(&mut self, (cur, next): (&[u8; LANES], &[u8; LANES])) {
        let mask = |c: bool| 0u8.wrapping_sub(u8::from(c));
        for l in 0..LANES {
            let (b, n) = (cur[l], next[l]);
            let digit = b.wrapping_sub(b'0') < 10;
            // `[` is `{` less 0x20, and no other byte is either once 0x20 is set.
            self.opens[l] = self.opens[l].wrapping_sub(mask(b | 0x20 == b'{'));
            self.digits[l] = self.digits[l].wrapping_sub(mask(digit));
            self.backslash[l] |= mask(b == b'\\');
            self.exponent[l] |= mask(digit & (n | 0x20 == b'e'));
        }
    }

    fn drain_counts(&mut self, opens: &mut usize, digits: &mut usize) {
        *opens += self.opens.iter().map(|&c| c as usize).sum::<usize>();
        *digits += self.digits.iter().map(|&c| c as usize).sum::<usize>();
        (self.opens, self.digits) = ([0; LANES], [0; LANES]);
    }
}
