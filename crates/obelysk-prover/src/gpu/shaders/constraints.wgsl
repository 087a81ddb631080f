// Constraint quotients of one constraint-framework component on the evaluation subdomain
// (prepended with field.wgsl). The row program between the two markers is generated from the
// component's symbolic constraints (`gpu/constraints.rs`); as written here it adds no constraint.
// Per row r, as Stwo's framework evaluates a component in SubDomain mode:
//     out[r] = (Σ_j C_j(r) · w_j) · denom_inv[r >> trace_log],
// where C_j is constraint j, w_j its random coefficient (the powers in reverse order), and mask
// offsets address the bit-reversed evaluation domain as Stwo's
// `offset_bit_reversed_circle_domain_index`.
// params: x = rows R = 2^eval_log, y = trace_log, z = eval_log, w = where denom_inv starts in consts.
// columns: the component's columns the constraints read, R words each (prefixes of the committed
// evaluations), in the generated program's slot order.
// consts: the program's constants (M31 words; QM31 values as 4 words), the coefficients w_j, then
// the denominator inverses.
// out: 4·R words, coordinate k of row r at k·R + r.

@group(0) @binding(0) var<uniform> params: vec4<u32>;
@group(0) @binding(1) var<storage, read> columns: array<u32>;
@group(0) @binding(2) var<storage, read> consts: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

fn bit_reverse(i: u32, log_size: u32) -> u32 {
    return select(0u, reverseBits(i) >> (32u - log_size), log_size > 0u);
}

// The evaluation row holding the trace row `offset` rows away from evaluation row r.
fn offset_row(r: u32, offset: i32) -> u32 {
    let eval_log = params.z;
    let half = 1u << (eval_log - 1u);
    // offset · 2^(eval_log − trace_log − 1), modulo half (two's complement wraps correctly).
    let step = bitcast<u32>(offset) << (eval_log - params.y - 1u);
    var i = bit_reverse(r, eval_log);
    if (i < half) {
        i = (i + step) & (half - 1u);
    } else {
        i = ((i - step) & (half - 1u)) + half;
    }
    return bit_reverse(i, eval_log);
}

fn col(slot: u32, row: u32) -> u32 {
    return columns[slot * params.x + row];
}

fn cst4(i: u32) -> vec4<u32> {
    return vec4<u32>(consts[i], consts[i + 1u], consts[i + 2u], consts[i + 3u]);
}

fn qm31_neg(a: vec4<u32>) -> vec4<u32> {
    return qm31_sub(vec4<u32>(0u, 0u, 0u, 0u), a);
}

// An M31 value as a QM31.
fn ext(v: u32) -> vec4<u32> {
    return vec4<u32>(v, 0u, 0u, 0u);
}

@compute @workgroup_size(256)
fn constraints(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat_index(gid, nwg);
    if (r >= params.x) { return; }
    var acc = vec4<u32>(0u, 0u, 0u, 0u);
    // BEGIN ROW PROGRAM
    // END ROW PROGRAM
    let v = qm31_mul_m31(acc, consts[params.w + (r >> params.y)]);
    let rows = params.x;
    out[r] = v.x;
    out[rows + r] = v.y;
    out[2u * rows + r] = v.z;
    out[3u * rows + r] = v.w;
}
