//! splitmix64's finaliser: spreads a seed's bits over all 64, so that
//! counters seeded from it differ in every bit position (salts, request
//! ids, jitter). Not a cryptographic generator: callers seed it from one.

/// The step a splitmix64 sequence adds before mixing.
pub const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

pub const fn mix(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
