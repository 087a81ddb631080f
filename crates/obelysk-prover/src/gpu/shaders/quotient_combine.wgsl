// DEEP-quotient combination (prepended with field.wgsl), as Stwo's `compute_quotients_and_combine`
// before its final extension: for each row r of the evaluation subdomain, at the domain point
// q = (x, y) of row r (bit-reversed order),
//     out[r] = Σ_k (partial_k[lift_k(r)] − a_k·y) · 1/d_k(q),
//     d_k(q) = (Re(p_k.x) − x)·Im(p_k.y) − (Re(p_k.y) − y)·Im(p_k.x)   (in CM31),
// where p_k is the sample point of accumulation k, a_k its first linear term and
// lift_k(r) = ((r >> (log_ratio_k + 1)) << 1) + (r & 1).
// params.x = rows S, params.y = accumulations.
// points: x of row r at r, y at S + r.
// accs: 16 words per accumulation: Re(p.x), Im(p.x), Re(p.y), Im(p.y) (2 words each),
//       a (4 words), log_ratio, length, offset into `partials`, 0.
// partials: accumulation k at its offset, as 4 coordinate columns of its length.
// out: 4·S words, coordinate c of row r at c·S + r.

@group(0) @binding(0) var<uniform> params: vec4<u32>;
@group(0) @binding(1) var<storage, read> points: array<u32>;
@group(0) @binding(2) var<storage, read> accs: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;
@group(0) @binding(4) var<storage, read> partials: array<u32>;

fn m31_inv(a: u32) -> u32 {
    // a^(p - 2), square and multiply over the bits of p - 2 = 0x7ffffffd.
    var r = 1u;
    var b = a;
    var e = 0x7ffffffdu;
    loop {
        if ((e & 1u) == 1u) {
            r = m31_mul(r, b);
        }
        e = e >> 1u;
        if (e == 0u) {
            break;
        }
        b = m31_mul(b, b);
    }
    return r;
}

fn cm31_sub(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    return vec2<u32>(m31_sub(a.x, b.x), m31_sub(a.y, b.y));
}

// 1/(a + bi) = (a − bi)/(a² + b²).
fn cm31_inv(a: vec2<u32>) -> vec2<u32> {
    let n = m31_inv(m31_add(m31_mul(a.x, a.x), m31_mul(a.y, a.y)));
    return vec2<u32>(m31_mul(a.x, n), m31_mul(m31_neg(a.y), n));
}

fn qm31_mul_cm31(a: vec4<u32>, c: vec2<u32>) -> vec4<u32> {
    return vec4<u32>(cm31_mul(a.xy, c), cm31_mul(a.zw, c));
}

@compute @workgroup_size(256)
fn quotient_combine(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = flat_index(gid, nwg);
    let rows = params.x;
    if (row >= rows) { return; }
    let x = points[row];
    let y = points[rows + row];
    var acc = vec4<u32>(0u, 0u, 0u, 0u);
    for (var k = 0u; k < params.y; k = k + 1u) {
        let m = 16u * k;
        let prx = vec2<u32>(accs[m], accs[m + 1u]);
        let pix = vec2<u32>(accs[m + 2u], accs[m + 3u]);
        let pry = vec2<u32>(accs[m + 4u], accs[m + 5u]);
        let piy = vec2<u32>(accs[m + 6u], accs[m + 7u]);
        let d = cm31_sub(
            cm31_mul(vec2<u32>(m31_sub(prx.x, x), prx.y), piy),
            cm31_mul(vec2<u32>(m31_sub(pry.x, y), pry.y), pix),
        );
        let a = vec4<u32>(accs[m + 8u], accs[m + 9u], accs[m + 10u], accs[m + 11u]);
        let log_ratio = accs[m + 12u];
        let len = accs[m + 13u];
        let off = accs[m + 14u];
        let idx = ((row >> (log_ratio + 1u)) << 1u) + (row & 1u);
        let partial = vec4<u32>(
            partials[off + idx],
            partials[off + len + idx],
            partials[off + 2u * len + idx],
            partials[off + 3u * len + idx],
        );
        let numerator = qm31_sub(partial, qm31_mul_m31(a, y));
        acc = qm31_add(acc, qm31_mul_cm31(numerator, cm31_inv(d)));
    }
    out[row] = acc.x;
    out[rows + row] = acc.y;
    out[2u * rows + row] = acc.z;
    out[3u * rows + row] = acc.w;
}
