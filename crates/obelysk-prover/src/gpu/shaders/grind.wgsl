// Proof-of-work grinding (prepended with field.wgsl and blake2s_core.wgsl), as Stwo's
// `GrindOps` for the Blake2s channel: nonce = hi·2^32 + low is good when the first word of
// Blake2s(prefixed digest ‖ nonce as 8 little-endian bytes) has at least `pow_bits` trailing zeros.
// Each invocation tries one `low`; the smallest good one wins (atomicMin), so the result is the
// smallest nonce of this `hi`, exactly the one the CPU search returns.
// params.x = pow_bits, params.y = hi, params.z = number of `low` values tried.

@group(0) @binding(0) var<uniform> params: vec4<u32>;
@group(0) @binding(1) var<storage, read> digest: array<u32>;
@group(0) @binding(2) var<storage, read_write> best: array<atomic<u32>>;

@compute @workgroup_size(256)
fn grind(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let low = flat_index(gid, nwg);
    if (low >= params.z) { return; }
    var h: array<u32, 8>;
    var m: array<u32, 16>;
    for (var k = 0u; k < 8u; k++) {
        h[k] = IV[k];
        m[k] = digest[k];
    }
    h[0] = IV[0] ^ 0x01010020u;
    m[8] = low;
    m[9] = params.y;
    for (var k = 10u; k < 16u; k++) {
        m[k] = 0u;
    }
    compress(&h, &m, 40u, true);
    if (countTrailingZeros(h[0]) >= params.x) {
        atomicMin(&best[0], low);
    }
}
