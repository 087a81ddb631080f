// Element-wise M31 / QM31 kernels (prepended with field.wgsl).
// params.x = number of elements (M31) or of QM31 values (4 words each).

@group(0) @binding(0) var<uniform> params: vec4<u32>;
@group(0) @binding(1) var<storage, read> lhs: array<u32>;
@group(0) @binding(2) var<storage, read> rhs: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(256)
fn m31_add_kernel(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= params.x) { return; }
    out[i] = m31_add(lhs[i], rhs[i]);
}

@compute @workgroup_size(256)
fn m31_sub_kernel(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= params.x) { return; }
    out[i] = m31_sub(lhs[i], rhs[i]);
}

@compute @workgroup_size(256)
fn m31_mul_kernel(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= params.x) { return; }
    out[i] = m31_mul(lhs[i], rhs[i]);
}

@compute @workgroup_size(256)
fn qm31_mul_kernel(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= params.x) { return; }
    let k = 4u * i;
    let a = vec4<u32>(lhs[k], lhs[k + 1u], lhs[k + 2u], lhs[k + 3u]);
    let b = vec4<u32>(rhs[k], rhs[k + 1u], rhs[k + 2u], rhs[k + 3u]);
    let c = qm31_mul(a, b);
    out[k] = c.x;
    out[k + 1u] = c.y;
    out[k + 2u] = c.z;
    out[k + 3u] = c.w;
}
