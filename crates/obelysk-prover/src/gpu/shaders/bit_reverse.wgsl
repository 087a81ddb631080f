// In-place bit-reversal permutation of a power-of-two column (prepended with field.wgsl).
// params.x = n, params.y = log2(n) >= 1. Each pair (i, rev(i)) is swapped by the invocation with i < rev(i).

@group(0) @binding(0) var<uniform> params: vec4<u32>;
@group(0) @binding(1) var<storage, read_write> data: array<u32>;

@compute @workgroup_size(256)
fn bit_reverse(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= params.x) { return; }
    let j = reverseBits(i) >> (32u - params.y);
    if (i < j) {
        let t = data[i];
        data[i] = data[j];
        data[j] = t;
    }
}
