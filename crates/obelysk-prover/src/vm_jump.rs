//! Job type `vm-jump`: the Obelysk VM with data-dependent control flow (program counter +
//! a LogUp lookup into the program).
//!
//! Same registers and arithmetic as [`crate::vm`], plus `Jnz` (`if r[src1] != 0 { pc = imm }`),
//! `Jmp` (`pc = imm`) and `Halt`. Execution starts at `pc = 0` and must reach `Halt` within the
//! job's step budget; the trace has `2^k > budget` (and `≥` the program length) rows and repeats
//! the `Halt` row until the end.
//!
//! # AIR (one component, no preprocessed columns)
//! Every column is the prover's; nothing the verifier checks is the size of the trace or the
//! budget, so a validator's cost is Stwo's (logarithmic in the rows) plus one pass over the
//! program. Both VM job types are proven on this machine (a [`crate::vm`] run is its own program
//! table and carries no table columns; it ends on the program's last instruction, not at `Halt`).
//! - main, the execution: registers `r_k`, `pc`, a copy of the fields of the instruction executed on
//!   this row (one-hot selectors `add, sub, mul, addi, mov, loadi, jnz, jmp, halt`, `imm`, one-hot
//!   `dst_k, a_k, b_k`), `src1, src2, res`, `inv, nz` (is-zero gadget on `src1`),
//!   `taken = jnz·nz`, and `first`, which marks the row where the run starts;
//! - main, the program table: `idx`, the fields of instruction `idx`, and its multiplicity `m`
//!   (how many steps executed it); rows past the program are padding with `idx = −1`, all fields
//!   zero, an index no run reaches; then the step counter `c` and `d` (see below);
//! - interaction: `S` (QM31), the running sum of `1/(z − e_t) + (β − m_t)/(z − p_t) + γ·first_t`
//!   where `e_t` and `p_t` compress the executed tuple `(pc, fields…)` and the table tuple
//!   `(idx, fields…)` with powers of `α`; `z, α, β, γ` are drawn after the main trace and the
//!   statement are committed.
//!
//! Constraints: the arithmetic of [`crate::vm`]; `nz = src1·inv`, `src1·(1 − nz) = 0`,
//! `taken = jnz·nz`; `first` is boolean; on every row whose successor is not a `first` row
//! `pc' = pc + 1 + (taken + jmp)(imm − pc − 1) − halt` and `r_k' = r_k + dst_k(res − r_k)`;
//! on a `first` row `pc = 0` and `r = inputs`; on the row before it (the run's last) `halt = 1`
//! (a straight-line run: `pc = len − 1`) and the registers after its instruction are the
//! outputs; and `(S_t − S_{t−1} − γ·first_t + c)(z − e_t)(z − p_t) = (z − p_t) + (β − m_t)(z − e_t)`
//! on every row, cyclically, with `c = (β·T + γ)/rows` and `T = Σ 1/(z − p)` over the program
//! table **computed by the verifier from the job's program** (the program's instructions at their
//! indices plus the padding rows as one term: linear in the program, nothing of the trace's size).
//! The column closes only if the fractions sum to `β·T + γ`, which (the challenges being drawn
//! after the commitment) means, except with negligible probability: the table rows are exactly
//! the program's, the executed tuples are a sub-multiset of them with multiplicities `m` (so every
//! step runs a real instruction at its real index), and exactly one row is `first`.
//!
//! A straight-line run (34 columns: 4 + 1 + 22 + 6 + 1) has no table columns and the constraint
//! `(S_t − S_{t−1} − γ·first_t + c)(z − e_t) = 1` with `c = (T + pad/(z − p_last) + γ)/rows`: its
//! executed tuples must be exactly the program's, the last one repeated over the `pad` rows left.
//! A branching run has 60 columns.
//!
//! # What the statement promises
//! Starting at `pc = 0` with the input registers, the program reaches `Halt` within the job's
//! step budget, and the registers then are the outputs. The budget is a constraint, not only the
//! honest prover's check: a branching run carries a step counter `c` (`c = 0` on the `first` row,
//! `c' = c + 1` on every other transition) and `d`, and `(1 − (c − budget)·d)(1 − halt) = 0`
//! forces `Halt` on the one row where `c = budget` (the budget is below the row count, and `Halt`
//! is absorbing). The trace has `2^k` rows, `k` from the job's budget and program length and the
//! config's minimum, never from the proof.

use std::borrow::Cow;

use num_traits::{One, Zero};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use stwo::core::air::Component;
use stwo::core::channel::Channel;
use stwo::core::fields::FieldExpOps;
use stwo::core::fields::m31::{BaseField, P};
use stwo::core::fields::qm31::SecureField;
use stwo::core::pcs::CommitmentSchemeVerifier;
use stwo::core::verifier::verify as stark_verify;
use stwo::prover::ComponentProver;
use stwo::prover::backend::simd::m31::N_LANES;
use stwo::prover::backend::simd::qm31::PackedSecureField;
use stwo::prover::prove as stark_prove;
use stwo_constraint_framework::{
    EvalAtRow, FrameworkComponent, FrameworkEval, INTERACTION_TRACE_IDX, ORIGINAL_TRACE_IDX, TraceLocationAllocator,
};
use tracing::info_span;

use crate::Cheat;
use crate::config::ProofConfig;
use crate::error::{JobError, ProveError, VerifyError};
use crate::stark::{
    Chan, MC, PinKey, Proof, StarkBackend, base_eval, guarded, min_log_rows, on_backend, pinned_root, prepared_circuit,
    secure_evals, tree_root,
};
use crate::statement::{Commitment, JobId, JobType, Statement, WorkerAddress};
use crate::vm::{Instruction, N_REGISTERS, Opcode, Program, VmJob, output_commitment, step};

/// Largest step budget.
pub const MAX_STEPS: u32 = 1 << 22;

/// Selector columns: the six arithmetic ones of [`crate::vm`], then `jnz, jmp, halt`.
const N_SEL: usize = 9;
const JNZ: usize = 6;
const JMP: usize = 7;
const HALT: usize = 8;
/// Instruction fields in a tuple after the index: selectors, imm, dst, a, b.
const N_FIELDS: usize = N_SEL + 1 + 3 * N_REGISTERS;

/// A branching VM job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmJumpJob {
    /// The program.
    pub program: Program,
    /// Initial registers.
    pub inputs: [u32; N_REGISTERS],
    /// Step budget: the program must execute `Halt` within this many steps.
    pub max_steps: u32,
}

fn selector(op: Opcode) -> Option<usize> {
    match op {
        Opcode::Jnz => Some(JNZ),
        Opcode::Jmp => Some(JMP),
        Opcode::Halt => Some(HALT),
        other => other.selector(),
    }
}

/// The instruction's tuple fields (selectors, imm, dst, a, b).
fn fields(ins: &Instruction) -> [BaseField; N_FIELDS] {
    let mut f = [BaseField::zero(); N_FIELDS];
    let one = BaseField::one();
    if let Some(s) = selector(ins.op) {
        f[s] = one;
        if !ins.op.is_control_flow() {
            f[N_SEL + 1 + usize::from(ins.dst)] = one;
        }
    }
    f[N_SEL] = BaseField::from_u32_unchecked(ins.imm);
    f[N_SEL + 1 + N_REGISTERS + usize::from(ins.src1)] = one;
    f[N_SEL + 1 + 2 * N_REGISTERS + usize::from(ins.src2)] = one;
    f
}

impl VmJumpJob {
    /// Checks program, targets, budget and inputs.
    pub fn validate(&self) -> Result<(), JobError> {
        self.program.validate()?;
        let len = self.program.instructions.len();
        for (index, ins) in self.program.instructions.iter().enumerate() {
            if matches!(ins.op, Opcode::Jnz | Opcode::Jmp) && ins.imm as usize >= len {
                return Err(JobError::JumpTarget { index, target: ins.imm });
            }
        }
        if self.max_steps == 0 || self.max_steps > MAX_STEPS {
            return Err(JobError::DidNotHalt { max_steps: self.max_steps });
        }
        if let Some(&value) = self.inputs.iter().find(|&&v| v >= P) {
            return Err(JobError::NotCanonical { value, context: "vm input register" });
        }
        Ok(())
    }

    /// Input commitment: program commitment, step budget, input registers.
    pub fn input_commitment(&self) -> Result<Commitment, JobError> {
        self.validate()?;
        let mut h = blake3::Hasher::new_derive_key("sage obelysk-prover vm-jump input v1");
        h.update(&self.program.commitment().0);
        h.update(&self.max_steps.to_le_bytes());
        for v in self.inputs {
            h.update(&v.to_le_bytes());
        }
        Ok(Commitment(*h.finalize().as_bytes()))
    }

    /// Runs natively; returns the final registers and the number of steps until `Halt`.
    pub fn execute(&self) -> Result<([u32; N_REGISTERS], u32), JobError> {
        self.validate()?;
        let mut r = self.inputs.map(BaseField::from_u32_unchecked);
        let mut pc = 0usize;
        for steps in 0..=self.max_steps {
            let ins = self.program.instructions[pc];
            if ins.op == Opcode::Halt {
                return Ok((r.map(|v| v.0), steps));
            }
            let (x, _, res) = step(&r, &ins);
            pc = next_pc(pc, &ins, x);
            if !ins.op.is_control_flow() && ins.op != Opcode::Nop {
                r[usize::from(ins.dst)] = res;
            }
            if pc >= self.program.instructions.len() {
                return Err(JobError::DidNotHalt { max_steps: self.max_steps });
            }
        }
        Err(JobError::DidNotHalt { max_steps: self.max_steps })
    }

    pub(crate) fn sizes(&self) -> Vec<u32> {
        vec![N_REGISTERS as u32, self.program.instructions.len() as u32, self.max_steps]
    }
}

fn next_pc(pc: usize, ins: &Instruction, src1: BaseField) -> usize {
    match ins.op {
        Opcode::Jmp => ins.imm as usize,
        Opcode::Jnz if src1 != BaseField::zero() => ins.imm as usize,
        Opcode::Halt => pc,
        _ => pc + 1,
    }
}

/// Main-trace columns. The execution: registers, `pc`, the executed instruction's fields,
/// `src1, src2, res, inv, nz, taken`, `first`. The program table: `idx`, the fields, `m`.
const PC: usize = N_REGISTERS;
const EXEC_FIELDS: usize = PC + 1;
const FIRST: usize = EXEC_FIELDS + N_FIELDS + 6;
const IDX: usize = FIRST + 1;
const TABLE_FIELDS: usize = IDX + 1;
const MULT: usize = TABLE_FIELDS + N_FIELDS;
/// A branching run also counts its steps: `c` (0 on the `first` row, +1 a row) and `d` with
/// `d·(c − budget) = 1` except on the row `budget` steps in, which must halt.
const STEP: usize = MULT + 1;
const STEP_INV: usize = STEP + 1;
const N_MAIN: usize = STEP_INV + 1;
/// `idx` of the table's padding rows: `−1`, an index no execution reaches (it starts at 0 and
/// moves only to `pc + 1 ≤ len`, to a jump target `< len`, or stays).
const PAD_IDX: u32 = P - 1;

/// How a run ends on the trace's last row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// At `Halt`, where the machine then stays (branching programs).
    Halt,
    /// At the table's last instruction (straight-line programs: every instruction once, in
    /// order; a `Halt` appended to fill the rows is that last instruction).
    LastInstruction,
}

/// A machine run to prove: the program, the input registers, the step budget and how the run
/// ends. Both VM job types are proven as one.
pub(crate) struct Run<'a> {
    pub program: &'a Program,
    pub inputs: [u32; N_REGISTERS],
    pub max_steps: u32,
    pub end: End,
}

impl Run<'_> {
    /// log2 of the trace rows: room for the program table and for the budget's steps plus the
    /// final `Halt` row (a straight-line run's steps are its table).
    pub fn log_rows(&self, config: &ProofConfig) -> u32 {
        let len = self.program.instructions.len();
        let rows = match self.end {
            End::Halt => (self.max_steps as usize + 1).max(len),
            End::LastInstruction => len,
        };
        rows.next_power_of_two().ilog2().max(min_log_rows(config))
    }

    /// Main-trace columns: a straight-line run is its own program table (every instruction once,
    /// in order), so only a branching run carries the table columns.
    fn n_main(&self) -> usize {
        match self.end {
            End::Halt => N_MAIN,
            End::LastInstruction => IDX,
        }
    }

    /// What the AIR checks of the run's end.
    fn ending(&self) -> Ending {
        match self.end {
            End::Halt => Ending::HaltBy(self.max_steps),
            End::LastInstruction => Ending::LastPc(self.program.instructions.len() as u32 - 1),
        }
    }
}

/// What the AIR checks of a run's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The run is at `Halt` on the row this many steps after `first` (and, `Halt` being
    /// absorbing, on every later row, the last included).
    HaltBy(u32),
    /// The last row runs this instruction (a straight-line run).
    LastPc(u32),
}

/// `1/(c − budget)` for the step counts `c = 0..rows`, and 0 where `c = budget`.
fn step_inverses(rows: usize, budget: u32) -> Vec<BaseField> {
    let budget = BaseField::from_u32_unchecked(budget);
    let differences: Vec<BaseField> = (0..rows)
        .map(|c| BaseField::from_u32_unchecked(c as u32) - budget)
        .map(|d| if d.is_zero() { BaseField::one() } else { d })
        .collect();
    let mut inverses = BaseField::batch_inverse(&differences);
    if let Some(at) = inverses.get_mut(budget.0 as usize) {
        *at = BaseField::zero();
    }
    inverses
}

/// Main trace in natural order (columns) and the final registers.
struct Execution {
    cols: Vec<Vec<BaseField>>,
    outputs: [u32; N_REGISTERS],
}

fn execute_trace(run: &Run<'_>, log_size: u32) -> Result<Execution, JobError> {
    let rows = 1usize << log_size;
    let program = &run.program.instructions;
    let mut cols: Vec<Vec<BaseField>> = (0..run.n_main()).map(|_| Vec::with_capacity(rows)).collect();
    let mut mult = vec![0u32; program.len()];
    let mut r = run.inputs.map(BaseField::from_u32_unchecked);
    let mut pc = 0usize;
    let mut halted_at = None;
    let b = |v: bool| if v { BaseField::one() } else { BaseField::zero() };
    for t in 0..rows {
        let ins = program[pc];
        if ins.op == Opcode::Halt && halted_at.is_none() {
            halted_at = Some(t);
        }
        mult[pc] += 1;
        let (x, y, res) = step(&r, &ins);
        let nz = x != BaseField::zero();
        let inv = if nz { x.inverse() } else { BaseField::zero() };
        let row = r.into_iter().chain([BaseField::from_u32_unchecked(pc as u32)]).chain(fields(&ins)).chain([
            x,
            y,
            res,
            inv,
            b(nz),
            b(ins.op == Opcode::Jnz && nz),
            b(t == 0),
        ]);
        for (col, v) in cols.iter_mut().zip(row) {
            col.push(v);
        }
        if !ins.op.is_control_flow() && ins.op != Opcode::Nop {
            r[usize::from(ins.dst)] = res;
        }
        if t + 1 == rows {
            break;
        }
        pc = next_pc(pc, &ins, x);
        if pc >= program.len() {
            return Err(JobError::DidNotHalt { max_steps: run.max_steps });
        }
    }
    let ended = match run.ending() {
        Ending::HaltBy(budget) => halted_at.is_some_and(|t| t <= budget as usize),
        Ending::LastPc(last) => pc == last as usize,
    };
    if !ended {
        return Err(JobError::DidNotHalt { max_steps: run.max_steps });
    }
    if run.end == End::LastInstruction {
        return Ok(Execution { cols, outputs: r.map(|v| v.0) });
    }
    let zero = [BaseField::zero(); N_FIELDS];
    let table = program
        .iter()
        .zip(&mult)
        .enumerate()
        .map(|(t, (ins, &m))| (t as u32, fields(ins), m))
        .chain(std::iter::repeat((PAD_IDX, zero, 0)))
        .take(rows);
    for (idx, g, m) in table {
        let row = [BaseField::from_u32_unchecked(idx)].into_iter().chain(g).chain([BaseField::from_u32_unchecked(m)]);
        for (col, v) in cols[IDX..].iter_mut().zip(row) {
            col.push(v);
        }
    }
    cols[STEP] = (0..rows as u32).map(BaseField::from_u32_unchecked).collect();
    cols[STEP_INV] = step_inverses(rows, run.max_steps);
    Ok(Execution { cols, outputs: r.map(|v| v.0) })
}

/// `Σ_k α^k v_k` with `v_0` the index.
fn compress(alpha_pows: &[SecureField], values: impl IntoIterator<Item = BaseField>) -> SecureField {
    alpha_pows.iter().zip(values).fold(SecureField::zero(), |acc, (a, v)| acc + *a * v)
}

fn alpha_powers(alpha: SecureField) -> Vec<SecureField> {
    let mut p = Vec::with_capacity(1 + N_FIELDS);
    let mut acc = SecureField::one();
    for _ in 0..=N_FIELDS {
        p.push(acc);
        acc *= alpha;
    }
    p
}

/// The lookup's random challenges, drawn after the main trace and the statement are committed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Challenges {
    /// LogUp point.
    z: SecureField,
    /// Tuple compression.
    alpha: SecureField,
    /// Weight of the table's own term (binds the table to the program).
    beta: SecureField,
    /// Weight of the `first` count.
    gamma: SecureField,
}

impl Challenges {
    fn draw(channel: &mut Chan) -> Self {
        let [z, alpha, beta, gamma] = std::array::from_fn(|_| channel.draw_secure_felt());
        Self { z, alpha, beta, gamma }
    }
}

/// The inverses of `values` (none zero), batched, on SIMD lanes and both cores.
fn inverses(values: &[SecureField]) -> Vec<SecureField> {
    let packed: Vec<PackedSecureField> = values
        .chunks(N_LANES)
        .map(|chunk| {
            let mut lanes = [SecureField::one(); N_LANES];
            lanes[..chunk.len()].copy_from_slice(chunk);
            PackedSecureField::from_array(lanes)
        })
        .collect();
    let mut out: Vec<SecureField> =
        PackedSecureField::batch_inverse(&packed).iter().flat_map(|p| p.to_array()).collect();
    out.truncate(values.len());
    out
}

/// `Σ_t 1/(z − p_t)` over each instruction's tuple `(t, fields…)`, and the last term on its own:
/// what the verifier computes from the job, linear in the program (one batched inversion on
/// SIMD lanes and both cores), nothing of the trace's size.
fn program_sum(program: &Program, z: SecureField, alpha_pows: &[SecureField]) -> (SecureField, SecureField) {
    // An instruction's one-hot fields (selector, dst, a, b) contribute the sum of their powers of
    // α, which depends only on (opcode, dst, src1, src2): 640 sums, computed once.
    let onehot: Vec<SecureField> = (0..10 * 64u16)
        .map(|key| {
            let [op, dst, src1, src2] = [key / 64, (key / 16) % 4, (key / 4) % 4, key % 4].map(|v| v as u8);
            let op = Opcode::from_code(op).expect("ten opcodes");
            fields(&Instruction::new(op, dst, src1, src2, 0))
                .iter()
                .zip(&alpha_pows[1..])
                .filter(|(v, _)| !v.is_zero())
                .map(|(_, a)| *a)
                .sum()
        })
        .collect();
    let denominator = |t: usize, ins: &Instruction| {
        let key = usize::from(ins.op.code()) * 64
            + usize::from(ins.dst) * 16
            + usize::from(ins.src1) * 4
            + usize::from(ins.src2);
        z - alpha_pows[0] * BaseField::from_u32_unchecked(t as u32)
            - alpha_pows[1 + N_SEL] * BaseField::from_u32_unchecked(ins.imm)
            - onehot[key]
    };
    let denominators: Vec<SecureField> =
        program.instructions.par_iter().enumerate().map(|(t, ins)| denominator(t, ins)).collect();
    let inverses = inverses(&denominators);
    let sum = inverses.par_iter().copied().sum::<SecureField>();
    let last = *inverses.last().expect("a program has an instruction");
    (sum, last)
}

/// What the interaction column's fractions must sum to, spread evenly over the rows so the
/// column closes cyclically. With `T = Σ_t 1/(z − p_t)` over the program: a branching run's table
/// (the program, then padding rows) gives `β·(T + pad/(z − p_pad)) + γ`; a straight-line run,
/// whose executed tuples are exactly the program's with the last one repeating to fill the rows,
/// gives `T + pad/(z − p_last) + γ`. The `γ` is the one `first` row.
fn row_shift(run: &Run<'_>, log_size: u32, ch: &Challenges) -> SecureField {
    let rows = 1usize << log_size;
    let (program, last) = program_sum(run.program, ch.z, &alpha_powers(ch.alpha));
    let padding = BaseField::from_u32_unchecked((rows - run.program.instructions.len()) as u32);
    let total = match run.end {
        End::Halt => ch.beta * (program + (ch.z - BaseField::from_u32_unchecked(PAD_IDX)).inverse() * padding),
        End::LastInstruction => program + last * padding,
    } + ch.gamma;
    total * BaseField::from_u32_unchecked(rows as u32).inverse()
}

/// The VM AIR (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct VmJumpEval {
    log_size: u32,
    inputs: [u32; N_REGISTERS],
    outputs: [u32; N_REGISTERS],
    ending: Ending,
    challenges: Challenges,
    alpha_pows: Vec<SecureField>,
    shift: SecureField,
}

impl FrameworkEval for VmJumpEval {
    fn log_size(&self) -> u32 {
        self.log_size
    }

    fn max_constraint_log_degree_bound(&self) -> u32 {
        self.log_size + 1
    }

    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let regs: Vec<[E::F; 2]> =
            (0..N_REGISTERS).map(|_| eval.next_interaction_mask(ORIGINAL_TRACE_IDX, [0, 1])).collect();
        let [pc, pc_next] = eval.next_interaction_mask(ORIGINAL_TRACE_IDX, [0, 1]);
        let f: Vec<E::F> = (0..N_FIELDS).map(|_| eval.next_trace_mask()).collect();
        let src1 = eval.next_trace_mask();
        let src2 = eval.next_trace_mask();
        let res = eval.next_trace_mask();
        let inv = eval.next_trace_mask();
        let nz = eval.next_trace_mask();
        let taken = eval.next_trace_mask();
        let [first, first_next] = eval.next_interaction_mask(ORIGINAL_TRACE_IDX, [0, 1]);
        // A straight-line run is its own table; a branching one carries it.
        let branching = match self.ending {
            Ending::HaltBy(budget) => Some(budget),
            Ending::LastPc(_) => None,
        };
        let table = branching.map(|_| {
            let idx = eval.next_trace_mask();
            let g: Vec<E::F> = (0..N_FIELDS).map(|_| eval.next_trace_mask()).collect();
            (idx, g, eval.next_trace_mask())
        });
        let steps = branching.map(|budget| {
            let [c, c_next] = eval.next_interaction_mask(ORIGINAL_TRACE_IDX, [0, 1]);
            (c, c_next, eval.next_trace_mask(), budget)
        });
        let [s_prev, s] = eval.next_extension_interaction_mask(INTERACTION_TRACE_IDX, [-1, 0]);

        let sel = &f[..N_SEL];
        let imm = f[N_SEL].clone();
        let dst = &f[N_SEL + 1..N_SEL + 1 + N_REGISTERS];
        let sa = &f[N_SEL + 1 + N_REGISTERS..N_SEL + 1 + 2 * N_REGISTERS];
        let sb = &f[N_SEL + 1 + 2 * N_REGISTERS..];
        let one = E::F::from(BaseField::one());

        let dot = |onehot: &[E::F]| {
            let mut acc = E::F::zero();
            for (s, r) in onehot.iter().zip(&regs) {
                acc += s.clone() * r[0].clone();
            }
            acc
        };
        eval.add_constraint(src1.clone() - dot(sa));
        eval.add_constraint(src2.clone() - dot(sb));
        let computed = sel[0].clone() * (src1.clone() + src2.clone())
            + sel[1].clone() * (src1.clone() - src2.clone())
            + sel[2].clone() * src1.clone() * src2.clone()
            + sel[3].clone() * (src1.clone() + imm.clone())
            + sel[4].clone() * src1.clone()
            + sel[5].clone() * imm.clone();
        eval.add_constraint(res.clone() - computed);

        // Is-zero gadget on src1, and the branch decision.
        eval.add_constraint(nz.clone() - src1.clone() * inv);
        eval.add_constraint(src1 * (one.clone() - nz.clone()));
        eval.add_constraint(taken.clone() - sel[JNZ].clone() * nz);

        // `first` marks where the run starts; the row before it (cyclically) is the last step.
        eval.add_constraint(first.clone() * (one.clone() - first.clone()));
        let not_last = one.clone() - first_next.clone();
        let jump = taken + sel[JMP].clone();
        let expected_pc = pc.clone() + one.clone() + jump * (imm - pc.clone() - one.clone()) - sel[HALT].clone();
        eval.add_constraint(not_last.clone() * (pc_next - expected_pc));
        for k in 0..N_REGISTERS {
            let [cur, next] = regs[k].clone();
            let after = cur.clone() + dst[k].clone() * (res.clone() - cur.clone());
            eval.add_constraint(not_last.clone() * (next - after.clone()));
            eval.add_constraint(first.clone() * (cur - E::F::from(BaseField::from_u32_unchecked(self.inputs[k]))));
            // The registers after the last row's instruction (`Halt` changes none).
            eval.add_constraint(
                first_next.clone() * (after - E::F::from(BaseField::from_u32_unchecked(self.outputs[k]))),
            );
        }
        eval.add_constraint(first.clone() * pc.clone());
        match self.ending {
            Ending::HaltBy(_) => eval.add_constraint(first_next * (one.clone() - sel[HALT].clone())),
            Ending::LastPc(last) => {
                eval.add_constraint(first_next * (pc.clone() - E::F::from(BaseField::from_u32_unchecked(last))))
            }
        }
        // The step budget: `c` counts the steps from `first`; on the row where `c = budget` (the
        // only one: `c` runs through 0..rows and the budget is below `rows`) the run is at `Halt`.
        if let Some((c, c_next, d, budget)) = steps {
            eval.add_constraint(first.clone() * c.clone());
            eval.add_constraint(not_last.clone() * (c_next - c.clone() - one.clone()));
            let at_budget = one.clone() - (c - E::F::from(BaseField::from_u32_unchecked(budget))) * d;
            eval.add_constraint(at_budget * (one - sel[HALT].clone()));
        }

        // LogUp: +1/(z − e) for the executed tuple (pc, fields), (β − m)/(z − p) for the table
        // row (idx, fields) if there is one, γ·first; the shift makes the column close cyclically
        // exactly when the fractions sum to what the verifier computed from the program.
        let mut e = E::EF::from(pc);
        for (k, v) in f.iter().enumerate() {
            e += E::EF::from(v.clone()) * self.alpha_pows[k + 1];
        }
        let z = E::EF::from(self.challenges.z);
        let ze = z.clone() - e;
        let delta = s - s_prev - E::EF::from(first) * self.challenges.gamma + E::EF::from(self.shift);
        match table {
            Some((idx, g, m)) => {
                let mut p = E::EF::from(idx);
                for (k, v) in g.into_iter().enumerate() {
                    p += E::EF::from(v) * self.alpha_pows[k + 1];
                }
                let zp = z - p;
                let weight = E::EF::from(self.challenges.beta) - E::EF::from(m);
                eval.add_constraint(delta * ze.clone() * zp.clone() - zp - weight * ze);
            }
            None => eval.add_constraint(delta * ze - E::EF::from(SecureField::one())),
        }
        eval
    }
}

pub(crate) fn component(
    log_size: u32,
    ending: Ending,
    inputs: [u32; N_REGISTERS],
    outputs: [u32; N_REGISTERS],
    challenges: Challenges,
    shift: SecureField,
) -> FrameworkComponent<VmJumpEval> {
    FrameworkComponent::new(
        &mut TraceLocationAllocator::default(),
        VmJumpEval { log_size, ending, inputs, outputs, challenges, alpha_pows: alpha_powers(challenges.alpha), shift },
        SecureField::zero(),
    )
}

/// Challenges for tests of the component's shape (the GPU kernel compiler).
#[cfg(all(test, feature = "gpu"))]
pub(crate) fn test_challenges(seed: u32) -> Challenges {
    let q = |v: u32| SecureField::from_m31_array(std::array::from_fn(|i| BaseField::from(v + i as u32)));
    Challenges { z: q(seed), alpha: q(seed + 4), beta: q(seed + 8), gamma: q(seed + 12) }
}

/// Twiddles and the (empty) preprocessed tree for a trace size: the circuit has no
/// program-dependent preprocessed columns, so one entry serves every program of that size.
fn pin_key(config: &ProofConfig, log_size: u32) -> PinKey {
    let mut circuit = b"obelysk vm machine".to_vec();
    circuit.extend_from_slice(&log_size.to_le_bytes());
    PinKey { job_type: JobType::VmJump, circuit, config: *config }
}

/// A cheating prover's change to its trace (tests only).
fn tamper(exec: &mut Execution, cheat: Cheat, budget: u32) {
    let cols = &mut exec.cols;
    let has_table = cols.len() > IDX;
    let rows = cols[PC].len();
    match cheat {
        // The step counter's inverses for the real budget, after a run past it.
        Cheat::OverBudget if has_table => cols[STEP_INV] = step_inverses(rows, budget),
        // No `first` row: a cycle of `Halt` rows with registers of the prover's choosing.
        Cheat::NoFirst => {
            let halt_pc = cols[PC][rows - 1];
            let claimed = [BaseField::from_u32_unchecked(7); N_REGISTERS];
            let (x, y, res) = step(&claimed, &Instruction::HALT);
            let nz = if x.is_zero() { BaseField::zero() } else { BaseField::one() };
            let inv = if x.is_zero() { BaseField::zero() } else { x.inverse() };
            let row: Vec<BaseField> = claimed
                .into_iter()
                .chain([halt_pc])
                .chain(fields(&Instruction::HALT))
                .chain([x, y, res, inv, nz, BaseField::zero(), BaseField::zero()])
                .collect();
            for (col, v) in cols.iter_mut().zip(row) {
                col.fill(v);
            }
            cols[MULT].fill(BaseField::zero());
            cols[MULT][halt_pc.0 as usize] = BaseField::from_u32_unchecked(rows as u32);
            exec.outputs = claimed.map(|v| v.0);
        }
        Cheat::ForgedPc => cols[PC][2] += BaseField::one(),
        // A table row claims one more execution than happened.
        Cheat::WrongMultiplicity if has_table => cols[MULT][0] += BaseField::one(),
        // A straight-line run is its own table: instruction 1 runs twice and instruction 2 never.
        Cheat::WrongMultiplicity => {
            for col in &mut cols[..FIRST] {
                col[2] = col[1];
            }
        }
        Cheat::SkippedRow => {
            // Leave out row 1 (an instruction never executed) and repeat the final row; a
            // branching run's multiplicities are recounted so its lookup would still balance.
            for col in &mut cols[..IDX] {
                col.remove(1);
                col.push(*col.last().expect("rows"));
            }
            if has_table {
                let mut mult = vec![BaseField::zero(); cols[MULT].len()];
                for pc in &cols[PC] {
                    mult[pc.0 as usize] += BaseField::one();
                }
                cols[MULT] = mult;
            }
        }
        _ => {}
    }
}

/// A VM job of either type, as the machine proves it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum VmSpec<'a> {
    /// A straight-line job ([`crate::vm`]).
    Straight(&'a VmJob),
    /// A branching job.
    Branching(&'a VmJumpJob),
}

impl<'a> VmSpec<'a> {
    fn job_type(self) -> JobType {
        match self {
            VmSpec::Straight(_) => JobType::Vm,
            VmSpec::Branching(_) => JobType::VmJump,
        }
    }

    fn sizes(self) -> Vec<u32> {
        match self {
            VmSpec::Straight(job) => job.sizes(),
            VmSpec::Branching(job) => job.sizes(),
        }
    }

    fn input_commitment(self) -> Result<Commitment, JobError> {
        match self {
            VmSpec::Straight(job) => job.input_commitment(),
            VmSpec::Branching(job) => job.input_commitment(),
        }
    }

    /// The program the machine runs (a straight-line one may get a `Halt` appended), the inputs,
    /// the budget and how the run ends.
    fn machine(self, config: &ProofConfig) -> (Cow<'a, Program>, [u32; N_REGISTERS], u32, End) {
        match self {
            VmSpec::Straight(job) => (
                Cow::Owned(crate::vm::machine_program(&job.program, config)),
                job.inputs,
                job.program.instructions.len() as u32,
                End::LastInstruction,
            ),
            VmSpec::Branching(job) => (Cow::Borrowed(&job.program), job.inputs, job.max_steps, End::Halt),
        }
    }
}

/// Proves a VM job; returns the statement, the proof and the output registers.
pub(crate) fn prove<B: StarkBackend>(
    spec: VmSpec<'_>,
    job_id: JobId,
    worker: WorkerAddress,
    config: &ProofConfig,
    version: u16,
    cheat: Cheat,
) -> Result<(Statement, Proof, [u32; N_REGISTERS]), ProveError>
where
    FrameworkComponent<VmJumpEval>: ComponentProver<B>,
{
    let pcs = config.to_pcs()?;
    let input_commitment = spec.input_commitment()?;
    let (program, inputs, max_steps, end) = spec.machine(config);
    let run = &Run { program: &program, inputs, max_steps, end };
    let mut log_size = run.log_rows(config);
    // Cheating provers: one proves another program (one instruction changed) as this one; one
    // runs past the budget (as far as the trace holds); one proves on a trace half the size.
    let forged;
    let run = match cheat {
        Cheat::ForgedTable => {
            let mut program = run.program.clone();
            program.instructions[0] = Instruction::loadi(1, 2);
            forged = program;
            &Run { program: &forged, ..*run }
        }
        Cheat::ShortTrace => {
            log_size -= 1;
            run
        }
        _ => run,
    };
    let mut exec = info_span!("execute", log_rows = log_size).in_scope(|| {
        let unbounded = Run { max_steps: (1 << log_size) - 1, ..*run };
        execute_trace(if cheat == Cheat::OverBudget { &unbounded } else { run }, log_size)
    })?;
    tamper(&mut exec, cheat, run.max_steps);
    let circuit = prepared_circuit::<B>(pin_key(config, log_size), log_size, pcs, Vec::new);
    let channel = &mut Chan::default();
    pcs.mix_into(channel);
    let mut cs = circuit.scheme(pcs, channel);
    info_span!("commit_main").in_scope(|| {
        let mut tb = cs.tree_builder();
        tb.extend_evals(on_backend::<B>(exec.cols.iter().map(|c| base_eval(log_size, c.clone())).collect()));
        tb.commit(channel);
    });
    let statement = Statement {
        job_type: spec.job_type(),
        job_id,
        worker,
        sizes: spec.sizes(),
        input_commitment,
        output_commitment: output_commitment(&exec.outputs),
    };
    statement.mix_into(version, channel);
    let ch = Challenges::draw(channel);
    let shift = row_shift(run, log_size, &ch);
    let s = info_span!("interaction_trace").in_scope(|| {
        let pows = alpha_powers(ch.alpha);
        let rows = 1usize << log_size;
        // One fraction per row for the executed tuple, and one for the table row if any.
        let tuples = if exec.cols.len() > IDX { [PC, IDX].as_slice() } else { [PC].as_slice() };
        let mut denominators = Vec::with_capacity(tuples.len() * rows);
        for t in 0..rows {
            for &start in tuples {
                denominators.push(ch.z - compress(&pows, (0..=N_FIELDS).map(|k| exec.cols[start + k][t])));
            }
        }
        let inverses = inverses(&denominators);
        let mut acc = SecureField::zero();
        let mut out = Vec::with_capacity(rows);
        for (t, inv) in inverses.chunks_exact(tuples.len()).enumerate() {
            acc += inv[0] + ch.gamma * exec.cols[FIRST][t] - shift;
            if let Some(table) = inv.get(1) {
                acc += *table * (ch.beta - exec.cols[MULT][t]);
            }
            out.push(acc);
        }
        out
    });
    info_span!("commit_interaction").in_scope(|| {
        let mut tb = cs.tree_builder();
        tb.extend_evals(on_backend::<B>(secure_evals(log_size, s)));
        tb.commit(channel);
    });
    let comp = component(log_size, run.ending(), run.inputs, exec.outputs, ch, shift);
    let proof = info_span!("stark_prove", log_rows = log_size).in_scope(|| {
        guarded(|| stark_prove::<B, MC>(&[&comp], channel, cs))
            .map_err(ProveError::Panicked)?
            .map_err(|e| ProveError::ConstraintsNotSatisfied(e.to_string()))
    })?;
    Ok((statement, proof, exec.outputs))
}

/// Verifies a proof of `run`; the caller compared the statement's identity fields with the job.
pub(crate) fn verify(
    spec: VmSpec<'_>,
    statement: &Statement,
    public_output: &[u32],
    proof: Proof,
    config: &ProofConfig,
    version: u16,
) -> Result<(), VerifyError> {
    let pcs = config.to_pcs()?;
    let (program, inputs, max_steps, end) = spec.machine(config);
    let run = &Run { program: &program, inputs, max_steps, end };
    let outputs: [u32; N_REGISTERS] = public_output
        .try_into()
        .map_err(|_| VerifyError::Malformed(format!("{} output registers", public_output.len())))?;
    if outputs.iter().any(|&v| v >= P) {
        return Err(VerifyError::Malformed("non-canonical output register".into()));
    }
    if output_commitment(&outputs) != statement.output_commitment {
        return Err(VerifyError::OutputMismatch);
    }
    if proof.commitments.len() != 4 {
        return Err(VerifyError::Malformed(format!("{} commitments, expected 4", proof.commitments.len())));
    }
    // No preprocessed columns: the first tree is the empty one.
    let log_size = run.log_rows(config);
    let empty = pinned_root(pin_key(config, min_log_rows(config)), || tree_root(min_log_rows(config), pcs, Vec::new()));
    if proof.commitments[0] != empty {
        return Err(VerifyError::CircuitMismatch);
    }
    let channel = &mut Chan::default();
    pcs.mix_into(channel);
    let mut vcs = CommitmentSchemeVerifier::<MC>::new(pcs);
    let zero = Challenges {
        z: SecureField::zero(),
        alpha: SecureField::zero(),
        beta: SecureField::zero(),
        gamma: SecureField::zero(),
    };
    let sizes =
        component(log_size, run.ending(), run.inputs, outputs, zero, SecureField::zero()).trace_log_degree_bounds();
    vcs.commit(proof.commitments[0], &sizes[0], channel);
    vcs.commit(proof.commitments[1], &sizes[1], channel);
    statement.mix_into(version, channel);
    let ch = Challenges::draw(channel);
    let shift =
        info_span!("table_sum", len = run.program.instructions.len()).in_scope(|| row_shift(run, log_size, &ch));
    let comp = component(log_size, run.ending(), run.inputs, outputs, ch, shift);
    vcs.commit(proof.commitments[2], &sizes[2], channel);
    guarded(move || stark_verify::<MC>(&[&comp], channel, &mut vcs, proof))
        .map_err(|p| VerifyError::Malformed(format!("verifier panicked: {p}")))?
        .map_err(|e| VerifyError::Stark(e.to_string()))
}
