// M31 multiplication on 32-bit limbs only (any adapter; WGSL has no mul-hi).

// 31x31-bit product from 16-bit halves: a·b = hh·2^32 + mid·2^16 + ll, with 2^32 ≡ 2 and 2^31 ≡ 1.
fn m31_mul(a: u32, b: u32) -> u32 {
    let a_lo = a & 0xffffu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xffffu;
    let b_hi = b >> 16u;
    let ll = a_lo * b_lo;              // < 2^32
    let hh = a_hi * b_hi;              // < 2^30
    let mid = a_hi * b_lo + a_lo * b_hi; // < 2^32
    let low = m31_add(m31_reduce(ll), m31_reduce(hh << 1u));
    // mid·2^16 = (mid >> 15)·2^31 + (mid & 0x7fff)·2^16.
    let mid_r = m31_add(m31_reduce(mid >> 15u), m31_reduce((mid & 0x7fffu) << 16u));
    return m31_add(low, mid_r);
}
