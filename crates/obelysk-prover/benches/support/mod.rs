//! Code shared by the benchmark binaries.

use obelysk_prover::vm::{Instruction, Opcode, Program};

/// A deterministic pseudo-random straight-line VM program of `steps` instructions mixing every
/// opcode (an unrolled hash-like loop).
pub fn vm_program(steps: usize) -> Program {
    let mut x = 0x9e37_79b9_u32;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let ops = [Opcode::Add, Opcode::Sub, Opcode::Mul, Opcode::AddI, Opcode::Mov, Opcode::LoadI];
    Program::new(
        (0..steps)
            .map(|_| {
                let op = ops[(next() % 6) as usize];
                let r = next();
                Instruction::new(
                    op,
                    (r & 3) as u8,
                    ((r >> 2) & 3) as u8,
                    ((r >> 4) & 3) as u8,
                    next() >> 1 & 0x3fff_ffff,
                )
            })
            .collect(),
    )
}
