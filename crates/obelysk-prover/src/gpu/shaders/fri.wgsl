// One FRI fold (prepended with field.wgsl), as Stwo's `fold_line` / `fold_circle_into_line`:
// for each output i, with (f0, f1) = (src[2i], src[2i + 1]) and t_i the inverse twiddle of the pair,
//     ibutterfly: (f0, f1) ← (f0 + f1, (f0 − f1)·t_i);   dst[i] = f0 + α·f1.
// Values are QM31 stored as 4 coordinate columns (a SecureColumnByCoords): coordinate c of element
// j of a column of length L is at c·L + j.
// params.x = number of outputs m (inputs: 2m). alpha: the folding challenge (to_m31_array order).

@group(0) @binding(0) var<uniform> params: vec4<u32>;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read> twiddles: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<u32>;
@group(0) @binding(4) var<uniform> alpha: vec4<u32>;

@compute @workgroup_size(256)
fn fri_fold(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let m = params.x;
    if (i >= m) { return; }
    let n = 2u * m;
    let f0 = vec4<u32>(src[2u * i], src[n + 2u * i], src[2u * n + 2u * i], src[3u * n + 2u * i]);
    let f1 = vec4<u32>(src[2u * i + 1u], src[n + 2u * i + 1u], src[2u * n + 2u * i + 1u], src[3u * n + 2u * i + 1u]);
    let sum = qm31_add(f0, f1);
    let diff = qm31_mul_m31(qm31_sub(f0, f1), twiddles[i]);
    let r = qm31_add(sum, qm31_mul(alpha, diff));
    dst[i] = r.x;
    dst[m + i] = r.y;
    dst[2u * m + i] = r.z;
    dst[3u * m + i] = r.w;
}
