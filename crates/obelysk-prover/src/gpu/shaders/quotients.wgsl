// DEEP-quotient partial numerators of one sample batch (prepended with field.wgsl), as Stwo's
// `accumulate_numerators`: for each row r of the subdomain,
//     acc[r] = Σ_j c_j · column_j[r] − Σ_j b_j        (c_j, b_j ∈ QM31, column values ∈ M31).
// params.x = rows S, params.y = columns k.
// columns: k·S words, column j at j·S (the subdomain prefix of each committed evaluation).
// coeffs: 4·k words (c_j in to_m31_array order), then 4 words: Σ b_j.
// out: 4·S words, coordinate c of row r at c·S + r (a SecureColumnByCoords).

@group(0) @binding(0) var<uniform> params: vec4<u32>;
@group(0) @binding(1) var<storage, read> columns: array<u32>;
@group(0) @binding(2) var<storage, read> coeffs: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

// qm31_add, qm31_sub and qm31_mul_m31 come from field.wgsl.

@compute @workgroup_size(256)
fn quotient_numerators(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = flat_index(gid, nwg);
    let rows = params.x;
    if (row >= rows) { return; }
    var acc = vec4<u32>(0u, 0u, 0u, 0u);
    for (var j = 0u; j < params.y; j = j + 1u) {
        let c = vec4<u32>(coeffs[4u * j], coeffs[4u * j + 1u], coeffs[4u * j + 2u], coeffs[4u * j + 3u]);
        acc = qm31_add(acc, qm31_mul_m31(c, columns[j * rows + row]));
    }
    let k = 4u * params.y;
    acc = qm31_sub(acc, vec4<u32>(coeffs[k], coeffs[k + 1u], coeffs[k + 2u], coeffs[k + 3u]));
    out[row] = acc.x;
    out[rows + row] = acc.y;
    out[2u * rows + row] = acc.z;
    out[3u * rows + row] = acc.w;
}
