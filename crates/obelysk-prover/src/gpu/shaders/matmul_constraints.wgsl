// The matmul AIR's constraints on the evaluation subdomain (prepended with field.wgsl), as
// Stwo's constraint framework evaluates `MatmulEval` (crate::matmul) in SubDomain mode:
//     C0 = g − (c + g_prev·δ·(1 − is_first)),   C1 = (g_prev − expected)·is_first,
//     out[r] = (C0·w0 + C1·w1) · denom_inv[r >> trace_log],
// where g is the interaction column (QM31, 4 coordinate columns), g_prev its value at the previous
// trace row (mask offset −1, mapped in the bit-reversed evaluation domain as Stwo's
// `offset_bit_reversed_circle_domain_index`), and w0, w1 the constraints' random coefficients.
// params.x = rows R = 2^eval_log, params.y = trace_log, params.z = eval_log.
// consts: δ, expected, w0, w1 (4 words each), then the denominator inverses.
// columns: is_first, c, then g's four coordinates, R words each (prefixes of the committed columns).
// out: 4·R words, coordinate k of row r at k·R + r.

@group(0) @binding(0) var<uniform> params: vec4<u32>;
@group(0) @binding(1) var<storage, read> columns: array<u32>;
@group(0) @binding(2) var<storage, read> consts: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

fn bit_reverse(i: u32, log_size: u32) -> u32 {
    return select(0u, reverseBits(i) >> (32u - log_size), log_size > 0u);
}

// Row of the previous trace row (offset −1) for evaluation row r.
fn prev_row(r: u32, trace_log: u32, eval_log: u32) -> u32 {
    let half = 1u << (eval_log - 1u);
    let step = 1u << (eval_log - trace_log - 1u);
    var i = bit_reverse(r, eval_log);
    if (i < half) {
        i = (i + half - step) & (half - 1u);
    } else {
        i = ((i - half + step) & (half - 1u)) + half;
    }
    return bit_reverse(i, eval_log);
}

fn qm31_at(base: u32, rows: u32, r: u32) -> vec4<u32> {
    return vec4<u32>(columns[base + r], columns[base + rows + r], columns[base + 2u * rows + r], columns[base + 3u * rows + r]);
}

fn consts_qm31(k: u32) -> vec4<u32> {
    return vec4<u32>(consts[4u * k], consts[4u * k + 1u], consts[4u * k + 2u], consts[4u * k + 3u]);
}

@compute @workgroup_size(256)
fn matmul_constraints(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat_index(gid, nwg);
    let rows = params.x;
    if (r >= rows) { return; }
    let trace_log = params.y;
    let eval_log = params.z;
    let is_first = columns[r];
    let c = columns[rows + r];
    let g = qm31_at(2u * rows, rows, r);
    let g_prev = qm31_at(2u * rows, rows, prev_row(r, trace_log, eval_log));
    let delta = consts_qm31(0u);
    let expected = consts_qm31(1u);
    let not_first = m31_sub(1u, is_first);
    let c0 = qm31_sub(g, qm31_add(vec4<u32>(c, 0u, 0u, 0u), qm31_mul_m31(qm31_mul(g_prev, delta), not_first)));
    let c1 = qm31_mul_m31(qm31_sub(g_prev, expected), is_first);
    let row = qm31_add(qm31_mul(c0, consts_qm31(2u)), qm31_mul(c1, consts_qm31(3u)));
    let d = consts[16u + (r >> trace_log)];
    let v = qm31_mul_m31(row, d);
    out[r] = v.x;
    out[rows + r] = v.y;
    out[2u * rows + r] = v.z;
    out[3u * rows + r] = v.w;
}
