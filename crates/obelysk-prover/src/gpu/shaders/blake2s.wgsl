// Blake2s-256 (RFC 7693) for Stwo's lifted Blake2s Merkle commitment (prepended with field.wgsl).
//
// Leaves: Stwo's `Blake2sMerkleHasher` streams the little-endian bytes of each column value of a row
// into one Blake2s state (`update_leaf`); a 4-byte M31 is exactly one message word. Hashers are
// cloned when the columns grow (lifting), so the GPU keeps one streaming state per leaf:
//   [0..8) chaining value h, [8] bytes compressed so far (t), [9] buffered words, [10..26) buffer.
// Like the `blake2` crate, a full block is only compressed once more data arrives, and the last
// (possibly full, possibly empty) block is compressed with the final flag in `leaf_finalize`.
// Inner nodes: hash(left ‖ right) = one final compression of a 64-byte block with t = 64.

const STATE_WORDS: u32 = 26u;

// IV, SIGMA, g and compress come from blake2s_core.wgsl.

@group(0) @binding(0) var<uniform> params: vec4<u32>;
@group(0) @binding(1) var<storage, read_write> states: array<u32>;
@group(0) @binding(2) var<storage, read> input: array<u32>;
@group(0) @binding(3) var<storage, read_write> output: array<u32>;

// Fresh Blake2s-256 states (no key, 32-byte digest). params.x = number of states.
@compute @workgroup_size(256)
fn leaf_init(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= params.x) { return; }
    let base = i * STATE_WORDS;
    for (var k = 0u; k < 8u; k++) {
        states[base + k] = IV[k];
    }
    states[base] = IV[0] ^ 0x01010020u;
    for (var k = 8u; k < STATE_WORDS; k++) {
        states[base + k] = 0u;
    }
}

// Lifting: output state g = input state ((g >> (log_ratio + 1)) << 1) + (g & 1), in global state
// indices. params.x = number of output states, params.y = log_ratio, params.z = global index of
// the first output state, params.w = global index of the first input state (the arrays may hold
// one chunk of a larger stage). Reads `input`, writes `output`.
@compute @workgroup_size(256)
fn leaf_expand(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= params.x) { return; }
    let g = params.z + i;
    let src = ((((g >> (params.y + 1u)) << 1u) + (g & 1u)) - params.w) * STATE_WORDS;
    let dst = i * STATE_WORDS;
    for (var k = 0u; k < STATE_WORDS; k++) {
        output[dst + k] = input[src + k];
    }
}

// Absorbs one value of each of params.y columns (column-major in `input`, params.w rows each)
// into the state of each of params.x rows starting at global row params.z.
@compute @workgroup_size(256)
fn leaf_absorb(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let n = params.w;
    if (i >= params.x) { return; }
    let row = params.z + i;
    let base = i * STATE_WORDS;
    var h: array<u32, 8>;
    var m: array<u32, 16>;
    for (var k = 0u; k < 8u; k++) {
        h[k] = states[base + k];
    }
    var t = states[base + 8u];
    var len = states[base + 9u];
    for (var k = 0u; k < 16u; k++) {
        m[k] = states[base + 10u + k];
    }
    for (var c = 0u; c < params.y; c++) {
        if (len == 16u) {
            t += 64u;
            compress(&h, &m, t, false);
            len = 0u;
        }
        m[len] = input[c * n + row];
        len += 1u;
    }
    for (var k = 0u; k < 8u; k++) {
        states[base + k] = h[k];
    }
    states[base + 8u] = t;
    states[base + 9u] = len;
    for (var k = 0u; k < 16u; k++) {
        states[base + 10u + k] = m[k];
    }
}

// Final compression of each state; writes 8 words (32 bytes, little-endian) per leaf to `output`.
@compute @workgroup_size(256)
fn leaf_finalize(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= params.x) { return; }
    let base = i * STATE_WORDS;
    var h: array<u32, 8>;
    var m: array<u32, 16>;
    for (var k = 0u; k < 8u; k++) {
        h[k] = states[base + k];
    }
    let len = states[base + 9u];
    for (var k = 0u; k < 16u; k++) {
        m[k] = select(0u, states[base + 10u + k], k < len);
    }
    compress(&h, &m, states[base + 8u] + 4u * len, true);
    for (var k = 0u; k < 8u; k++) {
        output[i * 8u + k] = h[k];
    }
}

// One Merkle layer: output node i = Blake2s(input node 2i ‖ input node 2i+1). params.x = output nodes.
@compute @workgroup_size(256)
fn next_layer(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= params.x) { return; }
    var h: array<u32, 8>;
    var m: array<u32, 16>;
    for (var k = 0u; k < 8u; k++) {
        h[k] = IV[k];
    }
    h[0] = IV[0] ^ 0x01010020u;
    for (var k = 0u; k < 16u; k++) {
        m[k] = input[i * 16u + k];
    }
    compress(&h, &m, 64u, true);
    for (var k = 0u; k < 8u; k++) {
        output[i * 8u + k] = h[k];
    }
}
