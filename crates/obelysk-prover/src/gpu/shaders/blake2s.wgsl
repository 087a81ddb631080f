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

var<private> IV: array<u32, 8> = array<u32, 8>(
    0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au, 0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u
);

var<private> SIGMA: array<u32, 160> = array<u32, 160>(
    0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u, 9u, 10u, 11u, 12u, 13u, 14u, 15u,
    14u, 10u, 4u, 8u, 9u, 15u, 13u, 6u, 1u, 12u, 0u, 2u, 11u, 7u, 5u, 3u,
    11u, 8u, 12u, 0u, 5u, 2u, 15u, 13u, 10u, 14u, 3u, 6u, 7u, 1u, 9u, 4u,
    7u, 9u, 3u, 1u, 13u, 12u, 11u, 14u, 2u, 6u, 5u, 10u, 4u, 0u, 15u, 8u,
    9u, 0u, 5u, 7u, 2u, 4u, 10u, 15u, 14u, 1u, 11u, 12u, 6u, 8u, 3u, 13u,
    2u, 12u, 6u, 10u, 0u, 11u, 8u, 3u, 4u, 13u, 7u, 5u, 15u, 14u, 1u, 9u,
    12u, 5u, 1u, 15u, 14u, 13u, 4u, 10u, 0u, 7u, 6u, 3u, 9u, 2u, 8u, 11u,
    13u, 11u, 7u, 14u, 12u, 1u, 3u, 9u, 5u, 0u, 15u, 4u, 8u, 6u, 2u, 10u,
    6u, 15u, 14u, 9u, 11u, 3u, 0u, 8u, 12u, 2u, 13u, 7u, 1u, 4u, 10u, 5u,
    10u, 2u, 8u, 4u, 7u, 6u, 1u, 5u, 15u, 11u, 9u, 14u, 3u, 12u, 13u, 0u
);

fn rotr(x: u32, n: u32) -> u32 {
    return (x >> n) | (x << (32u - n));
}

fn g(v: ptr<function, array<u32, 16>>, a: u32, b: u32, c: u32, d: u32, x: u32, y: u32) {
    (*v)[a] = (*v)[a] + (*v)[b] + x;
    (*v)[d] = rotr((*v)[d] ^ (*v)[a], 16u);
    (*v)[c] = (*v)[c] + (*v)[d];
    (*v)[b] = rotr((*v)[b] ^ (*v)[c], 12u);
    (*v)[a] = (*v)[a] + (*v)[b] + y;
    (*v)[d] = rotr((*v)[d] ^ (*v)[a], 8u);
    (*v)[c] = (*v)[c] + (*v)[d];
    (*v)[b] = rotr((*v)[b] ^ (*v)[c], 7u);
}

// One Blake2s compression of block `m` into `h`; `t` is the byte count including this block.
fn compress(h: ptr<function, array<u32, 8>>, m: ptr<function, array<u32, 16>>, t: u32, last: bool) {
    var v: array<u32, 16>;
    for (var i = 0u; i < 8u; i++) {
        v[i] = (*h)[i];
        v[i + 8u] = IV[i];
    }
    v[12] ^= t;
    if (last) {
        v[14] = ~v[14];
    }
    for (var r = 0u; r < 10u; r++) {
        let s = r * 16u;
        g(&v, 0u, 4u, 8u, 12u, (*m)[SIGMA[s + 0u]], (*m)[SIGMA[s + 1u]]);
        g(&v, 1u, 5u, 9u, 13u, (*m)[SIGMA[s + 2u]], (*m)[SIGMA[s + 3u]]);
        g(&v, 2u, 6u, 10u, 14u, (*m)[SIGMA[s + 4u]], (*m)[SIGMA[s + 5u]]);
        g(&v, 3u, 7u, 11u, 15u, (*m)[SIGMA[s + 6u]], (*m)[SIGMA[s + 7u]]);
        g(&v, 0u, 5u, 10u, 15u, (*m)[SIGMA[s + 8u]], (*m)[SIGMA[s + 9u]]);
        g(&v, 1u, 6u, 11u, 12u, (*m)[SIGMA[s + 10u]], (*m)[SIGMA[s + 11u]]);
        g(&v, 2u, 7u, 8u, 13u, (*m)[SIGMA[s + 12u]], (*m)[SIGMA[s + 13u]]);
        g(&v, 3u, 4u, 9u, 14u, (*m)[SIGMA[s + 14u]], (*m)[SIGMA[s + 15u]]);
    }
    for (var i = 0u; i < 8u; i++) {
        (*h)[i] = (*h)[i] ^ v[i] ^ v[i + 8u];
    }
}

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

// Lifting: output state idx = input state ((idx >> (log_ratio + 1)) << 1) + (idx & 1).
// params.x = number of output states, params.y = log_ratio. Reads `input`, writes `output`.
@compute @workgroup_size(256)
fn leaf_expand(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= params.x) { return; }
    let src = (((i >> (params.y + 1u)) << 1u) + (i & 1u)) * STATE_WORDS;
    let dst = i * STATE_WORDS;
    for (var k = 0u; k < STATE_WORDS; k++) {
        output[dst + k] = input[src + k];
    }
}

// Absorbs one value of each of params.y columns (column-major in `input`, params.x rows) into
// the state of each row.
@compute @workgroup_size(256)
fn leaf_absorb(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let n = params.x;
    if (i >= n) { return; }
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
        m[len] = input[c * n + i];
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
