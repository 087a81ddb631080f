// Circle FFT butterfly layers over M31 with precomputed twiddles (prepended with field.wgsl).
// One dispatch per layer, mirroring Stwo's CPU `fft_layer_loop`: butterfly k of layer i has
// h = k >> i, l = k mod 2^i, idx0 = h·2^(i+1) + l, idx1 = idx0 + 2^i and twiddle twiddles[offset + h].
// params.x = n/2 (butterflies), params.y = layer i, params.z = twiddle offset, params.w = 1 for inverse.

@group(0) @binding(0) var<uniform> params: vec4<u32>;
@group(0) @binding(1) var<storage, read_write> data: array<u32>;
@group(0) @binding(2) var<storage, read> twiddles: array<u32>;

@compute @workgroup_size(256)
fn fft_layer(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = flat_index(gid, nwg);
    if (k >= params.x) { return; }
    let i = params.y;
    let h = k >> i;
    let l = k & ((1u << i) - 1u);
    let idx0 = (h << (i + 1u)) + l;
    let idx1 = idx0 + (1u << i);
    let t = twiddles[params.z + h];
    let v0 = data[idx0];
    let v1 = data[idx1];
    if (params.w == 0u) {
        // butterfly: (v0 + v1·t, v0 - v1·t)
        let tmp = m31_mul(v1, t);
        data[idx0] = m31_add(v0, tmp);
        data[idx1] = m31_sub(v0, tmp);
    } else {
        // ibutterfly: (v0 + v1, (v0 - v1)·t)
        data[idx0] = m31_add(v0, v1);
        data[idx1] = m31_mul(m31_sub(v0, v1), t);
    }
}

// data[k] *= params.z for k < params.x (the 1/n of the inverse FFT).
@compute @workgroup_size(256)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = flat_index(gid, nwg);
    if (k >= params.x) { return; }
    data[k] = m31_mul(data[k], params.z);
}
