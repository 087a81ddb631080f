#!/usr/bin/env bash
# GPU check for obelysk-prover (issue 6): release build, the GPU differential tests (every kernel
# bit-identical to Stwo's CPU code; whole proofs byte-identical to the SIMD backend's), then the
# CPU-vs-GPU kernel table and the whole-proof table per phase.
#
#   scripts/gpu-check.sh                      # any Vulkan adapter (a real GPU, or lavapipe)
#   SAGE_GPU_EXPECT_ADAPTER=NVIDIA scripts/gpu-check.sh   # fail unless the tests ran on it
#   GPU_BENCH_LOGS=16,18,20 scripts/gpu-check.sh          # benchmark sizes (log2; default 16,18)
#   GPU_CHECK_NATIVE=0 scripts/gpu-check.sh   # do not build with -C target-cpu=native
#
# Needs the Vulkan loader (libvulkan1) and a Vulkan driver; with no GPU, Mesa's lavapipe
# (apt-get install -y mesa-vulkan-drivers libvulkan1) runs everything, and the times then only
# show correctness. Budget: under 8 minutes from a clean checkout on a 16-core machine.
set -euo pipefail

cd "$(dirname "$0")/.."
start=$(date +%s)

if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
    echo "gpu-check: the Vulkan loader (libvulkan.so.1) is missing: apt-get install -y libvulkan1 (+ a driver)" >&2
    exit 1
fi
if [[ -z "${XDG_RUNTIME_DIR:-}" || ! -d "${XDG_RUNTIME_DIR}" ]]; then
    XDG_RUNTIME_DIR=$(mktemp -d)
    chmod 0700 "$XDG_RUNTIME_DIR"
    export XDG_RUNTIME_DIR
fi
if [[ "${GPU_CHECK_NATIVE:-1}" != 0 ]]; then
    # Stwo's SIMD backend (the CPU side of the comparison) uses AVX2/AVX-512 when compiled for them.
    export RUSTFLAGS="${RUSTFLAGS:-} -C target-cpu=native"
fi
export RUST_BACKTRACE=1

echo "== build (release, --features gpu)"
cargo build --release -p obelysk-prover --features gpu --lib --tests --benches --quiet

echo "== GPU differential tests (one at a time)"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --release -p obelysk-prover --features gpu -E 'test(/gpu::/)' --test-threads 1
else
    cargo test --release -p obelysk-prover --features gpu --lib gpu:: -- --test-threads=1
fi

echo "== kernel benchmark (CPU = Stwo SIMD / scalar, GPU = wgpu)"
cargo bench -p obelysk-prover --features gpu --bench gpu_kernels --quiet

echo "== whole-proof benchmark, per phase (SIMD backend vs GPU backend; GPU_PROVE_NS=256,512,1024[,2048], GPU_PROVE_VM=16,18,20)"
cargo bench -p obelysk-prover --features gpu --bench gpu_prove --quiet

echo "== gpu-check done in $(( $(date +%s) - start )) s"
