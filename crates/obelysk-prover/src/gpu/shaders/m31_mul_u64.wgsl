// M31 multiplication with one 64-bit product (adapters with SHADER_INT64).
// a·b < 2^62 = hi·2^31 + lo with hi < 2^31 - 2 and lo ≤ p; 2^31 ≡ 1, so a·b ≡ hi + lo.

fn m31_mul(a: u32, b: u32) -> u32 {
    let prod = u64(a) * u64(b);
    let lo = u32(prod & 0x7ffffffflu);
    let hi = u32(prod >> 31u);
    return m31_add(m31_reduce(lo), hi);
}
