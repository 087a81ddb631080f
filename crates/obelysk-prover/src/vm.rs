//! Job type `vm`: the Obelysk VM, a small register machine whose programs are data.
//!
//! # Machine
//! [`N_REGISTERS`] registers `r0..r3` holding M31 values (`p = 2^31 − 1`; all arithmetic is mod `p`).
//! A program is a list of [`Instruction`]s executed once each, in order (straight-line: loops are
//! unrolled by the compiler of the program; `Jnz`/`Jmp`/`Halt` are rejected here and proven by
//! [`crate::vm_jump`] instead, whose trace also carries the program table: 60 columns a row
//! against 34). The job's inputs
//! are the initial register values, its output the final register values.
//!
//! | opcode | effect |
//! |---|---|
//! | `Nop` | nothing |
//! | `Add d, a, b` | `r[d] = r[a] + r[b]` |
//! | `Sub d, a, b` | `r[d] = r[a] − r[b]` |
//! | `Mul d, a, b` | `r[d] = r[a] · r[b]` |
//! | `AddI d, a, imm` | `r[d] = r[a] + imm` |
//! | `Mov d, a` | `r[d] = r[a]` |
//! | `LoadI d, imm` | `r[d] = imm` |
//!
//! Encoding (what the program commitment hashes): 8 bytes per instruction, `opcode, dst, src1, src2`
//! as bytes then `imm` as `u32` LE; the commitment is blake3 (derive-key
//! `"sage obelysk-prover vm program v1"`) of the length (`u32` LE) and the encoded instructions.
//!
//! # Proof
//! A straight-line program is proven on the machine of [`crate::vm_jump`]: each instruction runs
//! once, in order, and the last row runs the program's last instruction (a program shorter than
//! the trace gets a `Halt` appended, which fills the rows left). Such a run is its own program
//! table: its executed tuples must be exactly the program's (the last one repeated to fill the
//! rows), so the trace needs no table columns. The verifier's work does not grow with the trace
//! beyond Stwo's logarithmic part: it hashes the program and sums one lookup fraction per
//! instruction (see [`crate::vm_jump`]), and commits to nothing the size of the program.
//!
//! Input commitment: blake3 (derive-key `"sage obelysk-prover vm input v1"`) of the program
//! commitment and the input registers; output commitment: blake3 (derive-key
//! `"sage obelysk-prover vm output v1"`) of the output registers, which travel in the envelope.

use num_traits::Zero;
use serde::{Deserialize, Serialize};
use stwo::core::fields::m31::{BaseField, P};

use crate::config::ProofConfig;
use crate::error::JobError;
use crate::stark::min_log_rows;
use crate::statement::Commitment;

/// Number of registers.
pub const N_REGISTERS: usize = 4;
/// Longest program (rows of the trace).
pub const MAX_PROGRAM_LEN: usize = 1 << 22;

/// Operation of an instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Opcode {
    /// No effect.
    Nop,
    /// `r[dst] = r[src1] + r[src2]`.
    Add,
    /// `r[dst] = r[src1] − r[src2]`.
    Sub,
    /// `r[dst] = r[src1] · r[src2]`.
    Mul,
    /// `r[dst] = r[src1] + imm`.
    AddI,
    /// `r[dst] = r[src1]`.
    Mov,
    /// `r[dst] = imm`.
    LoadI,
    /// `if r[src1] != 0 { pc = imm }` (branching VM, [`crate::vm_jump`], only).
    Jnz,
    /// `pc = imm` (branching VM only).
    Jmp,
    /// Stop; the machine stays here (branching VM only).
    Halt,
}

impl Opcode {
    pub(crate) const fn code(self) -> u8 {
        match self {
            Opcode::Nop => 0,
            Opcode::Add => 1,
            Opcode::Sub => 2,
            Opcode::Mul => 3,
            Opcode::AddI => 4,
            Opcode::Mov => 5,
            Opcode::LoadI => 6,
            Opcode::Jnz => 7,
            Opcode::Jmp => 8,
            Opcode::Halt => 9,
        }
    }

    /// The opcode of an encoding byte ([`Program::encode`]), if there is one.
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Opcode::Nop,
            1 => Opcode::Add,
            2 => Opcode::Sub,
            3 => Opcode::Mul,
            4 => Opcode::AddI,
            5 => Opcode::Mov,
            6 => Opcode::LoadI,
            7 => Opcode::Jnz,
            8 => Opcode::Jmp,
            9 => Opcode::Halt,
            _ => return None,
        })
    }

    /// Whether the instruction changes the program counter (not allowed in straight-line programs).
    pub const fn is_control_flow(self) -> bool {
        matches!(self, Opcode::Jnz | Opcode::Jmp | Opcode::Halt)
    }

    /// Index of the selector column, `None` for `Nop` (and control flow, rejected earlier).
    pub(crate) const fn selector(self) -> Option<usize> {
        match self {
            Opcode::Nop | Opcode::Jnz | Opcode::Jmp | Opcode::Halt => None,
            Opcode::Add => Some(0),
            Opcode::Sub => Some(1),
            Opcode::Mul => Some(2),
            Opcode::AddI => Some(3),
            Opcode::Mov => Some(4),
            Opcode::LoadI => Some(5),
        }
    }
}

/// One instruction. Unused fields (e.g. `src2` of `AddI`) must still name a valid register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Instruction {
    /// Operation.
    pub op: Opcode,
    /// Destination register.
    pub dst: u8,
    /// First source register.
    pub src1: u8,
    /// Second source register.
    pub src2: u8,
    /// Immediate (a canonical M31 value).
    pub imm: u32,
}

impl Instruction {
    /// `Nop`.
    pub const NOP: Instruction = Instruction::new(Opcode::Nop, 0, 0, 0, 0);

    /// A new instruction.
    pub const fn new(op: Opcode, dst: u8, src1: u8, src2: u8, imm: u32) -> Self {
        Self { op, dst, src1, src2, imm }
    }
    /// `r[dst] = r[a] + r[b]`.
    pub const fn add(dst: u8, a: u8, b: u8) -> Self {
        Self::new(Opcode::Add, dst, a, b, 0)
    }
    /// `r[dst] = r[a] − r[b]`.
    pub const fn sub(dst: u8, a: u8, b: u8) -> Self {
        Self::new(Opcode::Sub, dst, a, b, 0)
    }
    /// `r[dst] = r[a] · r[b]`.
    pub const fn mul(dst: u8, a: u8, b: u8) -> Self {
        Self::new(Opcode::Mul, dst, a, b, 0)
    }
    /// `r[dst] = r[a] + imm`.
    pub const fn addi(dst: u8, a: u8, imm: u32) -> Self {
        Self::new(Opcode::AddI, dst, a, 0, imm)
    }
    /// `r[dst] = r[a]`.
    pub const fn mov(dst: u8, a: u8) -> Self {
        Self::new(Opcode::Mov, dst, a, 0, 0)
    }
    /// `r[dst] = imm`.
    pub const fn loadi(dst: u8, imm: u32) -> Self {
        Self::new(Opcode::LoadI, dst, 0, 0, imm)
    }
    /// `if r[cond] != 0 { pc = target }`.
    pub const fn jnz(cond: u8, target: u32) -> Self {
        Self::new(Opcode::Jnz, 0, cond, 0, target)
    }
    /// `pc = target`.
    pub const fn jmp(target: u32) -> Self {
        Self::new(Opcode::Jmp, 0, 0, 0, target)
    }
    /// Stop.
    pub const HALT: Instruction = Instruction::new(Opcode::Halt, 0, 0, 0, 0);
}

/// A program: the instructions, executed in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Program {
    /// The instructions.
    pub instructions: Vec<Instruction>,
}

impl Program {
    /// A program from its instructions.
    pub fn new(instructions: Vec<Instruction>) -> Self {
        Self { instructions }
    }

    /// Checks length, registers and immediates.
    pub fn validate(&self) -> Result<(), JobError> {
        let len = self.instructions.len();
        if len == 0 || len > MAX_PROGRAM_LEN {
            return Err(JobError::ProgramLength { len, max: MAX_PROGRAM_LEN });
        }
        for (index, ins) in self.instructions.iter().enumerate() {
            for register in [ins.dst, ins.src1, ins.src2] {
                if usize::from(register) >= N_REGISTERS {
                    return Err(JobError::Register { index, register, n_registers: N_REGISTERS });
                }
            }
            if ins.imm >= P {
                return Err(JobError::NotCanonical { value: ins.imm, context: "vm immediate" });
            }
        }
        Ok(())
    }

    /// The 8-byte-per-instruction encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 * self.instructions.len());
        for ins in &self.instructions {
            out.extend_from_slice(&[ins.op.code(), ins.dst, ins.src1, ins.src2]);
            out.extend_from_slice(&ins.imm.to_le_bytes());
        }
        out
    }

    /// The program of an [`encode`](Self::encode)d byte string, checked like
    /// [`validate`](Self::validate) (length, opcodes, registers, canonical immediates).
    pub fn decode(bytes: &[u8]) -> Result<Self, JobError> {
        if !bytes.len().is_multiple_of(8) {
            return Err(JobError::ProgramEncoding {
                reason: format!("{} bytes is not a whole number of 8-byte instructions", bytes.len()),
            });
        }
        let len = bytes.len() / 8;
        if len == 0 || len > MAX_PROGRAM_LEN {
            return Err(JobError::ProgramLength { len, max: MAX_PROGRAM_LEN });
        }
        let mut instructions = Vec::with_capacity(len);
        for (index, word) in bytes.chunks_exact(8).enumerate() {
            let op = Opcode::from_code(word[0]).ok_or_else(|| JobError::ProgramEncoding {
                reason: format!("instruction {index} has no opcode {}", word[0]),
            })?;
            let imm = u32::from_le_bytes([word[4], word[5], word[6], word[7]]);
            instructions.push(Instruction::new(op, word[1], word[2], word[3], imm));
        }
        let program = Self { instructions };
        program.validate()?;
        Ok(program)
    }

    /// A program from its text form, one instruction per line (`#` starts a comment):
    /// `add r2 r0 r1`, `sub`, `mul` (dst, a, b); `addi r2 r2 5` (dst, a, imm); `mov r1 r0`;
    /// `loadi r0 0x10`; `jnz r0 4` (jump to instruction 4 if r0 ≠ 0); `jmp 0`; `nop`; `halt`.
    /// Immediates are decimal or `0x`-hex; the result is checked like [`validate`](Self::validate).
    pub fn parse(text: &str) -> Result<Self, JobError> {
        let mut instructions = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let code = line.split('#').next().unwrap_or_default();
            let words: Vec<&str> = code.split([' ', '\t', ',']).filter(|w| !w.is_empty()).collect();
            let Some((&name, args)) = words.split_first() else { continue };
            let bad = |reason: String| JobError::ProgramEncoding { reason: format!("line {}: {reason}", number + 1) };
            let reg = |w: &str| -> Result<u8, JobError> {
                w.strip_prefix('r')
                    .and_then(|n| n.parse::<u8>().ok())
                    .ok_or_else(|| bad(format!("{w:?} is not a register (r0..r{})", N_REGISTERS - 1)))
            };
            let imm = |w: &str| -> Result<u32, JobError> {
                match w.strip_prefix("0x") {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => w.parse::<u32>().ok(),
                }
                .ok_or_else(|| bad(format!("{w:?} is not a number")))
            };
            let want = |n: usize| {
                if args.len() == n {
                    Ok(())
                } else {
                    Err(bad(format!("{name} takes {n} operands, got {}", args.len())))
                }
            };
            let ins = match name.to_ascii_lowercase().as_str() {
                "nop" => want(0).map(|()| Instruction::NOP)?,
                "halt" => want(0).map(|()| Instruction::HALT)?,
                "add" | "sub" | "mul" => {
                    want(3)?;
                    let (d, a, b) = (reg(args[0])?, reg(args[1])?, reg(args[2])?);
                    match name.to_ascii_lowercase().as_str() {
                        "add" => Instruction::add(d, a, b),
                        "sub" => Instruction::sub(d, a, b),
                        _ => Instruction::mul(d, a, b),
                    }
                }
                "addi" => want(3).and_then(|()| Ok(Instruction::addi(reg(args[0])?, reg(args[1])?, imm(args[2])?)))?,
                "mov" => want(2).and_then(|()| Ok(Instruction::mov(reg(args[0])?, reg(args[1])?)))?,
                "loadi" => want(2).and_then(|()| Ok(Instruction::loadi(reg(args[0])?, imm(args[1])?)))?,
                "jnz" => want(2).and_then(|()| Ok(Instruction::jnz(reg(args[0])?, imm(args[1])?)))?,
                "jmp" => want(1).and_then(|()| Ok(Instruction::jmp(imm(args[0])?)))?,
                other => return Err(bad(format!("unknown instruction {other:?}"))),
            };
            instructions.push(ins);
        }
        let program = Self { instructions };
        program.validate()?;
        Ok(program)
    }

    /// The program commitment (see the module docs).
    pub fn commitment(&self) -> Commitment {
        let mut h = blake3::Hasher::new_derive_key("sage obelysk-prover vm program v1");
        h.update(&(self.instructions.len() as u32).to_le_bytes());
        h.update(&self.encode());
        Commitment(*h.finalize().as_bytes())
    }

    /// Runs the program natively as a straight-line program (control flow acts as `Nop`).
    pub fn run(&self, inputs: [u32; N_REGISTERS]) -> [u32; N_REGISTERS] {
        let mut r = inputs.map(BaseField::from_u32_unchecked);
        for ins in &self.instructions {
            let (_, _, res) = step(&r, ins);
            if ins.op != Opcode::Nop {
                r[usize::from(ins.dst)] = res;
            }
        }
        r.map(|v| v.0)
    }
}

pub(crate) fn step(r: &[BaseField; N_REGISTERS], ins: &Instruction) -> (BaseField, BaseField, BaseField) {
    let x = r[usize::from(ins.src1) % N_REGISTERS];
    let y = r[usize::from(ins.src2) % N_REGISTERS];
    let imm = BaseField::from_u32_unchecked(ins.imm);
    let res = match ins.op {
        Opcode::Nop | Opcode::Jnz | Opcode::Jmp | Opcode::Halt => BaseField::zero(),
        Opcode::Add => x + y,
        Opcode::Sub => x - y,
        Opcode::Mul => x * y,
        Opcode::AddI => x + imm,
        Opcode::Mov => x,
        Opcode::LoadI => imm,
    };
    (x, y, res)
}

/// A VM job: a program and its input registers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmJob {
    /// The program.
    pub program: Program,
    /// Initial register values (canonical M31).
    pub inputs: [u32; N_REGISTERS],
}

impl VmJob {
    /// Checks the program (straight-line: no control flow) and inputs.
    pub fn validate(&self) -> Result<(), JobError> {
        self.program.validate()?;
        if let Some(index) = self.program.instructions.iter().position(|i| i.op.is_control_flow()) {
            return Err(JobError::ControlFlow { index });
        }
        if let Some(&value) = self.inputs.iter().find(|&&v| v >= P) {
            return Err(JobError::NotCanonical { value, context: "vm input register" });
        }
        Ok(())
    }

    /// Input commitment (program commitment and input registers).
    pub fn input_commitment(&self) -> Result<Commitment, JobError> {
        self.validate()?;
        let mut h = blake3::Hasher::new_derive_key("sage obelysk-prover vm input v1");
        h.update(&self.program.commitment().0);
        for v in self.inputs {
            h.update(&v.to_le_bytes());
        }
        Ok(Commitment(*h.finalize().as_bytes()))
    }

    /// Runs the job natively.
    pub fn execute(&self) -> Result<[u32; N_REGISTERS], JobError> {
        self.validate()?;
        Ok(self.program.run(self.inputs))
    }

    pub(crate) fn sizes(&self) -> Vec<u32> {
        vec![N_REGISTERS as u32, self.program.instructions.len() as u32]
    }
}

/// Output commitment of final registers.
pub fn output_commitment(outputs: &[u32]) -> Commitment {
    let mut h = blake3::Hasher::new_derive_key("sage obelysk-prover vm output v1");
    h.update(&(outputs.len() as u32).to_le_bytes());
    for v in outputs {
        h.update(&v.to_le_bytes());
    }
    Commitment(*h.finalize().as_bytes())
}

/// How a straight-line program runs on the machine of [`crate::vm_jump`]: every instruction once,
/// in order, ending on the table's last instruction. A program shorter than the trace gets a
/// `Halt` appended, which fills the remaining rows; one whose length is the trace's own needs none.
pub(crate) fn machine_program(program: &Program, config: &ProofConfig) -> Program {
    let len = program.instructions.len();
    let rows = 1usize << len.next_power_of_two().ilog2().max(min_log_rows(config));
    let mut instructions = Vec::with_capacity(len + 1);
    instructions.extend_from_slice(&program.instructions);
    if len < rows {
        instructions.push(Instruction::HALT);
    }
    Program { instructions }
}
