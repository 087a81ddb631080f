// M31 (p = 2^31 - 1) and QM31 arithmetic on 32-bit limbs only (WGSL has no u64 and no mul-hi).
// A library: prepended to the kernels that use it. Inputs and outputs are canonical (< p).

const P: u32 = 0x7fffffffu;

// Reduces any u32 to [0, p): x = hi * 2^31 + lo ≡ hi + lo.
fn m31_reduce(x: u32) -> u32 {
    let y = (x & P) + (x >> 31u);
    return select(y, y - P, y >= P);
}

fn m31_add(a: u32, b: u32) -> u32 {
    let s = a + b;
    return select(s, s - P, s >= P);
}

fn m31_sub(a: u32, b: u32) -> u32 {
    return select(a - b, a + P - b, a < b);
}

fn m31_neg(a: u32) -> u32 {
    return m31_sub(0u, a);
}

// m31_mul comes from m31_mul_u32.wgsl or m31_mul_u64.wgsl (SHADER_INT64 adapters).

// CM31 = M31[i]/(i^2 + 1) as (real, imaginary).
fn cm31_add(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    return vec2<u32>(m31_add(a.x, b.x), m31_add(a.y, b.y));
}

fn cm31_mul(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    return vec2<u32>(
        m31_sub(m31_mul(a.x, b.x), m31_mul(a.y, b.y)),
        m31_add(m31_mul(a.x, b.y), m31_mul(a.y, b.x)),
    );
}

// QM31 = CM31[u]/(u^2 - (2 + i)), laid out as Stwo's to_m31_array: (a.x + a.y·i) + (a.z + a.w·i)·u.
fn qm31_mul(a: vec4<u32>, b: vec4<u32>) -> vec4<u32> {
    let a0 = a.xy;
    let a1 = a.zw;
    let b0 = b.xy;
    let b1 = b.zw;
    let r = vec2<u32>(2u, 1u);
    let c0 = cm31_add(cm31_mul(a0, b0), cm31_mul(r, cm31_mul(a1, b1)));
    let c1 = cm31_add(cm31_mul(a0, b1), cm31_mul(a1, b0));
    return vec4<u32>(c0, c1);
}

fn qm31_add(a: vec4<u32>, b: vec4<u32>) -> vec4<u32> {
    return vec4<u32>(m31_add(a.x, b.x), m31_add(a.y, b.y), m31_add(a.z, b.z), m31_add(a.w, b.w));
}

fn qm31_sub(a: vec4<u32>, b: vec4<u32>) -> vec4<u32> {
    return vec4<u32>(m31_sub(a.x, b.x), m31_sub(a.y, b.y), m31_sub(a.z, b.z), m31_sub(a.w, b.w));
}

fn qm31_mul_m31(a: vec4<u32>, v: u32) -> vec4<u32> {
    return vec4<u32>(m31_mul(a.x, v), m31_mul(a.y, v), m31_mul(a.z, v), m31_mul(a.w, v));
}

// Index of this invocation in a 1-D problem dispatched as a 2-D grid of 256-wide workgroups.
fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}
