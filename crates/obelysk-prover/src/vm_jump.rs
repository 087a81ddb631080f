//! Job type `vm-jump`: the Obelysk VM with data-dependent control flow (program counter +
//! a LogUp lookup into the program).
//!
//! Same registers and arithmetic as [`crate::vm`], plus `Jnz` (`if r[src1] != 0 { pc = imm }`),
//! `Jmp` (`pc = imm`) and `Halt`. Execution starts at `pc = 0` and must reach `Halt` within the
//! job's step budget; the trace has `2^k ≥ max(budget, program length)` rows and repeats the
//! `Halt` row until the end.
//!
//! # AIR (one component)
//! - preprocessed (the program table, pinned per program, budget and config): `idx`, one-hot
//!   selectors `add, sub, mul, addi, mov, loadi, jnz, jmp, halt`, `imm`, one-hot `dst_k, a_k, b_k`,
//!   and `is_first`, `is_last`;
//! - main (the execution): registers `r_k`, `pc`, a copy of the instruction fields executed on
//!   this row, `src1, src2, res`, `inv, nz` (is-zero gadget on `src1`), `taken = jnz·nz`, and the
//!   multiplicity `m` of program row `t` (how many steps executed it);
//! - interaction: `S` (QM31), the LogUp running sum of `1/(z − e_t) − m_t/(z − p_t)` where `e_t` and
//!   `p_t` compress the executed and the program tuples `(pc/idx, fields…)` with powers of `α`;
//!   `z, α` are drawn after the main trace and the statement are committed.
//!
//! Constraints: the arithmetic of [`crate::vm`]; `nz = src1·inv`, `src1·(1 − nz) = 0`,
//! `taken = jnz·nz`; on every row but the last `pc' = pc + 1 + (taken + jmp)(imm − pc − 1) − halt`
//! and `r_k' = r_k + dst_k(res − r_k)`; `(S_t − S_{t−1})(z − e_t)(z − p_t) = (z − p_t) − m_t(z − e_t)`
//! on every row, cyclically, so the fractions sum to zero (the executed tuples are a
//! sub-multiset of the program); `pc = 0` and `r = inputs` on the first row; `halt = 1` and
//! `r = outputs` on the last row.

use num_traits::{One, Zero};
use serde::{Deserialize, Serialize};
use stwo::core::air::Component;
use stwo::core::channel::Channel;
use stwo::core::fields::FieldExpOps;
use stwo::core::fields::m31::{BaseField, P};
use stwo::core::fields::qm31::SecureField;
use stwo::core::pcs::CommitmentSchemeVerifier;
use stwo::core::verifier::verify as stark_verify;
use stwo::prover::ComponentProver;
use stwo::prover::prove as stark_prove;
use stwo_constraint_framework::preprocessed_columns::PreProcessedColumnId;
use stwo_constraint_framework::{
    EvalAtRow, FrameworkComponent, FrameworkEval, INTERACTION_TRACE_IDX, ORIGINAL_TRACE_IDX, TraceLocationAllocator,
};
use tracing::info_span;

use crate::config::ProofConfig;
use crate::error::{JobError, ProveError, VerifyError};
use crate::stark::{
    Chan, Eval, MC, PinKey, Proof, StarkBackend, base_eval, guarded, min_log_rows, on_backend, pinned_root,
    prepared_circuit, secure_evals, tree_root,
};
use crate::statement::{Commitment, JobId, JobType, Statement, WorkerAddress};
use crate::vm::{Instruction, N_REGISTERS, Opcode, Program, output_commitment, step};

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
        for steps in 0..self.max_steps {
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

    fn log_rows(&self, config: &ProofConfig) -> u32 {
        let rows = (self.max_steps as usize + 1).max(self.program.instructions.len());
        rows.next_power_of_two().ilog2().max(min_log_rows(config))
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

fn pp_names() -> Vec<String> {
    let mut v: Vec<String> = vec!["idx".into()];
    for s in ["add", "sub", "mul", "addi", "mov", "loadi", "jnz", "jmp", "halt", "imm"] {
        v.push(s.into());
    }
    for prefix in ["dst", "a", "b"] {
        for k in 0..N_REGISTERS {
            v.push(format!("{prefix}{k}"));
        }
    }
    v.push("is_first".into());
    v.push("is_last".into());
    v
}

fn preprocessed(program: &Program, log_size: u32) -> Vec<Eval> {
    let rows = 1usize << log_size;
    let mut cols = vec![vec![BaseField::zero(); rows]; 1 + N_FIELDS + 2];
    let padded = program.instructions.iter().copied().chain(std::iter::repeat(Instruction::NOP));
    for (t, ins) in padded.take(rows).enumerate() {
        cols[0][t] = BaseField::from_u32_unchecked(t as u32);
        for (k, v) in fields(&ins).into_iter().enumerate() {
            cols[1 + k][t] = v;
        }
    }
    cols[1 + N_FIELDS][0] = BaseField::one();
    cols[2 + N_FIELDS][rows - 1] = BaseField::one();
    cols.into_iter().map(|c| base_eval(log_size, c)).collect()
}

/// Number of main-trace columns: registers, pc, fields, src1, src2, res, inv, nz, taken, m.
const N_MAIN: usize = N_REGISTERS + 1 + N_FIELDS + 7;

/// Main trace in natural order (columns), final registers, and the tuples for the lookup.
struct Execution {
    cols: Vec<Vec<BaseField>>,
    outputs: [u32; N_REGISTERS],
}

fn execute_trace(job: &VmJumpJob, log_size: u32) -> Result<Execution, JobError> {
    let rows = 1usize << log_size;
    let program = &job.program;
    let mut cols: Vec<Vec<BaseField>> = (0..N_MAIN).map(|_| Vec::with_capacity(rows)).collect();
    let mut mult = vec![0u32; rows];
    let mut r = job.inputs.map(BaseField::from_u32_unchecked);
    let mut pc = 0usize;
    let mut halted_at = None;
    for t in 0..rows {
        let ins = program.instructions[pc];
        if ins.op == Opcode::Halt && halted_at.is_none() {
            halted_at = Some(t);
        }
        mult[pc] += 1;
        let (x, y, res) = step(&r, &ins);
        let mut c = 0;
        for v in r {
            cols[c].push(v);
            c += 1;
        }
        cols[c].push(BaseField::from_u32_unchecked(pc as u32));
        c += 1;
        for v in fields(&ins) {
            cols[c].push(v);
            c += 1;
        }
        let nz = x != BaseField::zero();
        let inv = if nz { x.inverse() } else { BaseField::zero() };
        let taken = ins.op == Opcode::Jnz && nz;
        let b = |v: bool| if v { BaseField::one() } else { BaseField::zero() };
        for v in [x, y, res, inv, b(nz), b(taken)] {
            cols[c].push(v);
            c += 1;
        }
        if !ins.op.is_control_flow() && ins.op != Opcode::Nop {
            r[usize::from(ins.dst)] = res;
        }
        pc = next_pc(pc, &ins, x);
        if pc >= program.instructions.len() {
            return Err(JobError::DidNotHalt { max_steps: job.max_steps });
        }
    }
    if halted_at.is_none_or(|t| t > job.max_steps as usize) {
        return Err(JobError::DidNotHalt { max_steps: job.max_steps });
    }
    cols[N_MAIN - 1] = mult.into_iter().map(BaseField::from_u32_unchecked).collect();
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

/// The branching VM AIR (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct VmJumpEval {
    log_size: u32,
    inputs: [u32; N_REGISTERS],
    outputs: [u32; N_REGISTERS],
    z: SecureField,
    alpha_pows: Vec<SecureField>,
}

impl FrameworkEval for VmJumpEval {
    fn log_size(&self) -> u32 {
        self.log_size
    }

    fn max_constraint_log_degree_bound(&self) -> u32 {
        self.log_size + 1
    }

    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let pp: Vec<E::F> = pp_names()
            .into_iter()
            .map(|name| {
                eval.get_preprocessed_column(PreProcessedColumnId {
                    id: format!("obelysk_vmjump_{name}_{}", self.log_size),
                })
            })
            .collect();
        let is_first = pp[1 + N_FIELDS].clone();
        let is_last = pp[2 + N_FIELDS].clone();

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
        let m = eval.next_trace_mask();
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

        let not_last = one.clone() - is_last.clone();
        let jump = taken + sel[JMP].clone();
        let expected_pc = pc.clone() + one.clone() + jump * (imm - pc.clone() - one.clone()) - sel[HALT].clone();
        eval.add_constraint(not_last.clone() * (pc_next - expected_pc));
        for k in 0..N_REGISTERS {
            let [cur, next] = regs[k].clone();
            let after = cur.clone() + dst[k].clone() * (res.clone() - cur.clone());
            eval.add_constraint(not_last.clone() * (next - after));
            eval.add_constraint(
                is_first.clone() * (cur.clone() - E::F::from(BaseField::from_u32_unchecked(self.inputs[k]))),
            );
            eval.add_constraint(is_last.clone() * (cur - E::F::from(BaseField::from_u32_unchecked(self.outputs[k]))));
        }
        eval.add_constraint(is_first * pc.clone());
        eval.add_constraint(is_last * (one - sel[HALT].clone()));

        // LogUp: executed tuple e (pc, fields) against program tuple p (idx, fields).
        let mut e = E::EF::from(pc);
        let mut p = E::EF::from(pp[0].clone());
        for k in 0..N_FIELDS {
            e += E::EF::from(f[k].clone()) * self.alpha_pows[k + 1];
            p += E::EF::from(pp[1 + k].clone()) * self.alpha_pows[k + 1];
        }
        let z = E::EF::from(self.z);
        let ze = z.clone() - e;
        let zp = z - p;
        eval.add_constraint((s - s_prev) * ze.clone() * zp.clone() - zp + ze * m);
        eval
    }
}

pub(crate) fn component(
    log_size: u32,
    inputs: [u32; N_REGISTERS],
    outputs: [u32; N_REGISTERS],
    z: SecureField,
    alpha: SecureField,
) -> FrameworkComponent<VmJumpEval> {
    FrameworkComponent::new(
        &mut TraceLocationAllocator::default(),
        VmJumpEval { log_size, inputs, outputs, z, alpha_pows: alpha_powers(alpha) },
        SecureField::zero(),
    )
}

fn pin_key(job: &VmJumpJob, config: &ProofConfig, log_size: u32) -> PinKey {
    let mut circuit = job.program.commitment().0.to_vec();
    circuit.extend_from_slice(&log_size.to_le_bytes());
    PinKey { job_type: JobType::VmJump, circuit, config: *config }
}

/// Proves a branching VM job; returns the statement, the proof and the output registers.
pub(crate) fn prove<B: StarkBackend>(
    job: &VmJumpJob,
    job_id: JobId,
    worker: WorkerAddress,
    config: &ProofConfig,
    version: u16,
) -> Result<(Statement, Proof, [u32; N_REGISTERS]), ProveError>
where
    FrameworkComponent<VmJumpEval>: ComponentProver<B>,
{
    let pcs = config.to_pcs()?;
    let input_commitment = job.input_commitment()?;
    let log_size = job.log_rows(config);
    let exec = info_span!("execute", log_rows = log_size).in_scope(|| execute_trace(job, log_size))?;
    let circuit = info_span!("prepare_program", log_rows = log_size).in_scope(|| {
        prepared_circuit::<B>(pin_key(job, config, log_size), log_size, pcs, || preprocessed(&job.program, log_size))
    });
    let channel = &mut Chan::default();
    pcs.mix_into(channel);
    let mut cs = circuit.scheme(pcs, channel);
    info_span!("commit_main").in_scope(|| {
        let mut tb = cs.tree_builder();
        tb.extend_evals(on_backend::<B>(exec.cols.iter().map(|c| base_eval(log_size, c.clone())).collect()));
        tb.commit(channel);
    });
    let statement = Statement {
        job_type: JobType::VmJump,
        job_id,
        worker,
        sizes: job.sizes(),
        input_commitment,
        output_commitment: output_commitment(&exec.outputs),
    };
    statement.mix_into(version, channel);
    let z = channel.draw_secure_felt();
    let alpha = channel.draw_secure_felt();
    let s = info_span!("interaction_trace").in_scope(|| {
        let pows = alpha_powers(alpha);
        let rows = 1usize << log_size;
        let mut acc = SecureField::zero();
        let mut out = Vec::with_capacity(rows);
        for t in 0..rows {
            let e = compress(&pows, (0..=N_FIELDS).map(|k| exec.cols[N_REGISTERS + k][t]));
            let ins = job.program.instructions.get(t).copied().unwrap_or(Instruction::NOP);
            let p = compress(&pows, std::iter::once(BaseField::from_u32_unchecked(t as u32)).chain(fields(&ins)));
            acc += (z - e).inverse() - (z - p).inverse() * exec.cols[N_MAIN - 1][t];
            out.push(acc);
        }
        out
    });
    info_span!("commit_interaction").in_scope(|| {
        let mut tb = cs.tree_builder();
        tb.extend_evals(on_backend::<B>(secure_evals(log_size, s)));
        tb.commit(channel);
    });
    let comp = component(log_size, job.inputs, exec.outputs, z, alpha);
    let proof = info_span!("stark_prove", log_rows = log_size).in_scope(|| {
        guarded(|| stark_prove::<B, MC>(&[&comp], channel, cs))
            .map_err(ProveError::Panicked)?
            .map_err(|e| ProveError::ConstraintsNotSatisfied(e.to_string()))
    })?;
    Ok((statement, proof, exec.outputs))
}

/// Verifies a branching VM proof; the caller compared the statement's identity fields.
pub(crate) fn verify(
    job: &VmJumpJob,
    statement: &Statement,
    public_output: &[u32],
    proof: Proof,
    config: &ProofConfig,
    version: u16,
) -> Result<(), VerifyError> {
    let pcs = config.to_pcs()?;
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
    let log_size = job.log_rows(config);
    let pinned =
        pinned_root(pin_key(job, config, log_size), || tree_root(log_size, pcs, preprocessed(&job.program, log_size)));
    if proof.commitments[0] != pinned {
        return Err(VerifyError::CircuitMismatch);
    }
    let channel = &mut Chan::default();
    pcs.mix_into(channel);
    let mut vcs = CommitmentSchemeVerifier::<MC>::new(pcs);
    let probe = component(log_size, job.inputs, outputs, SecureField::zero(), SecureField::zero());
    let sizes = probe.trace_log_degree_bounds();
    vcs.commit(proof.commitments[0], &sizes[0], channel);
    vcs.commit(proof.commitments[1], &sizes[1], channel);
    statement.mix_into(version, channel);
    let z = channel.draw_secure_felt();
    let alpha = channel.draw_secure_felt();
    let comp = component(log_size, job.inputs, outputs, z, alpha);
    vcs.commit(proof.commitments[2], &sizes[2], channel);
    guarded(move || stark_verify::<MC>(&[&comp], channel, &mut vcs, proof))
        .map_err(|p| VerifyError::Malformed(format!("verifier panicked: {p}")))?
        .map_err(|e| VerifyError::Stark(e.to_string()))
}
