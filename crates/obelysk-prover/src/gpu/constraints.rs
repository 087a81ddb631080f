//! Constraint evaluation for any constraint-framework AIR on the device: the component's
//! constraints are traced symbolically (Stwo's `ExprEvaluator`) and compiled into the row program
//! of `shaders/constraints.wgsl`.
//!
//! The generated WGSL depends only on the AIR's structure: every constant (a job's inputs and
//! outputs, a QM31 parameter) and every random coefficient lives in the constant buffer, so one
//! compiled pipeline serves every proof of the same circuit. Base-field values stay 32-bit words
//! and are promoted to QM31 only where they meet an extension value; identical subexpressions are
//! computed once per row.
//!
//! What is not compiled (an inverse, a logup relation, a parameter that is not an intermediate)
//! is an [`GpuError::Unsupported`]: the component is then evaluated by the SIMD evaluator.

use std::collections::HashMap;
use std::fmt::Write;

use stwo::core::fields::m31::BaseField;
use stwo::core::fields::qm31::SecureField;
use stwo::core::poly::circle::CanonicCoset;
use stwo::core::utils::bit_reverse;
use stwo_constraint_framework::expr::assignment::ExprVariables;
use stwo_constraint_framework::expr::{BaseExpr, ColumnExpr, ExprEvaluator, ExtExpr};
use stwo_constraint_framework::preprocessed_columns::PreProcessedColumnId;
use stwo_constraint_framework::{EvalAtRow, FrameworkEval, PREPROCESSED_TRACE_IDX};

use super::GpuError;

/// Where the row program goes in `shaders/constraints.wgsl`.
pub(super) const BODY_MARKER: &str = "    // BEGIN ROW PROGRAM\n";

/// A component's constraints as a row program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowProgram {
    /// WGSL statements that add every constraint, times its coefficient, into `acc`.
    pub body: String,
    /// The columns the program reads, by slot: (interaction, index within the interaction), in
    /// the order the framework hands a component its columns.
    pub slots: Vec<(usize, usize)>,
    /// Constants (M31 words) followed by the coefficients (four words per constraint).
    pub consts: Vec<u32>,
    /// Number of constraints.
    pub n_constraints: usize,
}

/// Traces `eval` and compiles its constraints; `powers` are the accumulator's coefficient powers
/// for this component (`powers[n-1-j]` weights constraint `j`, as the framework does).
pub(crate) fn compile<E: FrameworkEval>(eval: &E, powers: &[SecureField]) -> Result<RowProgram, GpuError> {
    // A component whose evaluation does something the tracer does not support must not take the
    // proof down: it is evaluated on the CPU instead.
    let traced = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| eval.evaluate(Tracer::default())))
        .map_err(|_| unsupported("the component's evaluation cannot be traced"))?;
    if traced.relations {
        return Err(unsupported("logup relations"));
    }
    let n = traced.inner.constraints.len();
    if n != powers.len() {
        return Err(unsupported(format!("{n} traced constraints, {} coefficients", powers.len())));
    }
    let mut c = Compiler::new(&traced);
    let values = traced.inner.constraints.iter().map(|e| c.ext(e)).collect::<Result<Vec<_>, _>>()?;
    let first_power = c.consts.len();
    for (j, value) in values.iter().enumerate() {
        let w = format!("cst4({}u)", first_power + 4 * j);
        match value {
            Val::Base(v) => writeln!(c.body, "    acc = qm31_add(acc, qm31_mul_m31({w}, {v}));"),
            Val::Ext(v) => writeln!(c.body, "    acc = qm31_add(acc, qm31_mul({w}, {v}));"),
        }
        .map_err(|e| unsupported(e.to_string()))?;
    }
    let mut consts = std::mem::take(&mut c.consts);
    for j in 0..n {
        consts.extend(powers[n - 1 - j].to_m31_array().map(|v| v.0));
    }
    let mut body = std::mem::take(&mut c.rows_prelude);
    body.push_str(&c.body);
    Ok(RowProgram { body, slots: c.slots, consts, n_constraints: n })
}

/// The denominator inverses of a component on its SubDomain evaluation domain, exactly as the
/// framework computes them (bit-reversed, one per trace-domain coset of the evaluation domain).
pub(crate) fn denominator_inverses(trace_log: u32, eval_log: u32, log_expansion: u32) -> Vec<BaseField> {
    let trace_domain = CanonicCoset::new(trace_log);
    let eval_domain = CanonicCoset::new(eval_log + log_expansion).circle_domain().split(log_expansion).0;
    let mut denom_inv: Vec<BaseField> = (0..1usize << (eval_log - trace_log))
        .map(|i| stwo::core::constraints::coset_vanishing(trace_domain.coset(), eval_domain.at(i)).inverse())
        .collect();
    bit_reverse(&mut denom_inv);
    denom_inv
}

/// The full kernel source for a row program body.
pub(super) fn kernel_source(template: &str, body: &str) -> String {
    template.replacen(BODY_MARKER, &format!("{BODY_MARKER}{body}"), 1)
}

fn unsupported(what: impl std::fmt::Display) -> GpuError {
    GpuError::Unsupported(format!("constraints on the device: {what}"))
}

/// Records which component column every traced mask reads; the rest is Stwo's `ExprEvaluator`.
#[derive(Default)]
struct Tracer {
    inner: ExprEvaluator,
    per_interaction: Vec<usize>,
    /// (interaction, index within the interaction) of each mask, by the evaluator's mask counter.
    columns: Vec<(usize, usize)>,
    relations: bool,
}

impl EvalAtRow for Tracer {
    type F = BaseExpr;
    type EF = ExtExpr;

    fn next_interaction_mask<const N: usize>(&mut self, interaction: usize, offsets: [isize; N]) -> [BaseExpr; N] {
        if self.per_interaction.len() <= interaction {
            self.per_interaction.resize(interaction + 1, 0);
        }
        // The evaluator numbers masks across interactions; keep each one's place in its own.
        debug_assert_eq!(self.columns.len(), self.inner.cur_var_index);
        self.columns.push((interaction, self.per_interaction[interaction]));
        self.per_interaction[interaction] += 1;
        self.inner.next_interaction_mask(interaction, offsets)
    }

    fn get_preprocessed_column(&mut self, _column: PreProcessedColumnId) -> BaseExpr {
        // As the framework's own evaluators: the next column of the preprocessed interaction.
        let [value] = self.next_interaction_mask(PREPROCESSED_TRACE_IDX, [0]);
        value
    }

    fn add_constraint<G>(&mut self, constraint: G)
    where
        ExtExpr: std::ops::Mul<G, Output = ExtExpr> + From<G>,
    {
        self.inner.add_constraint(constraint);
    }

    fn combine_ef(values: [BaseExpr; 4]) -> ExtExpr {
        ExprEvaluator::combine_ef(values)
    }

    fn add_intermediate(&mut self, value: BaseExpr) -> BaseExpr {
        self.inner.add_intermediate(value)
    }

    fn add_extension_intermediate(&mut self, value: ExtExpr) -> ExtExpr {
        self.inner.add_extension_intermediate(value)
    }

    fn write_logup_frac(&mut self, _fraction: stwo::core::Fraction<ExtExpr, ExtExpr>) {
        self.relations = true;
    }

    #[allow(clippy::ptr_arg, reason = "the trait's signature (a private alias of Vec<usize>)")]
    fn finalize_logup_batched(&mut self, _batching: &Vec<usize>) {
        self.relations = true;
    }

    fn finalize_logup(&mut self) {
        self.relations = true;
    }

    fn finalize_logup_in_pairs(&mut self) {
        self.relations = true;
    }
}

/// A compiled value: the WGSL name of a `u32` (M31) or a `vec4<u32>` (QM31).
#[derive(Debug, Clone)]
enum Val {
    Base(String),
    Ext(String),
}

struct Compiler<'a> {
    traced: &'a Tracer,
    /// `let` statements computing the offset rows, first in the program.
    rows_prelude: String,
    body: String,
    next: usize,
    memo: HashMap<String, Val>,
    slots: Vec<(usize, usize)>,
    slot_of: HashMap<(usize, usize), usize>,
    offset_rows: HashMap<isize, String>,
    consts: Vec<u32>,
    /// Compiled intermediates by name (and whether one is being compiled: a cycle is an error).
    intermediates: HashMap<String, Option<Val>>,
}

/// `(interaction, mask counter, offset)` of a traced column (read through the public assignment
/// API: the fields are private).
fn column_key(column: &ColumnExpr) -> Result<(usize, usize, isize), GpuError> {
    ExprVariables::col(column.clone())
        .random_assignment(0)
        .0
        .into_keys()
        .next()
        .ok_or_else(|| unsupported("a column without a key"))
}

impl<'a> Compiler<'a> {
    fn new(traced: &'a Tracer) -> Self {
        Self {
            traced,
            rows_prelude: String::new(),
            body: String::new(),
            next: 0,
            memo: HashMap::new(),
            slots: Vec::new(),
            slot_of: HashMap::new(),
            offset_rows: HashMap::new(),
            consts: Vec::new(),
            intermediates: HashMap::new(),
        }
    }

    /// Emits `let tN = <code>;` once per distinct `code` and returns the name.
    fn emit(&mut self, code: String, ext: bool) -> Val {
        if let Some(v) = self.memo.get(&code) {
            return v.clone();
        }
        let name = format!("t{}", self.next);
        self.next += 1;
        let _ = writeln!(self.body, "    let {name} = {code};");
        let v = if ext { Val::Ext(name) } else { Val::Base(name) };
        self.memo.insert(code, v.clone());
        v
    }

    fn row(&mut self, offset: isize) -> Result<String, GpuError> {
        if offset == 0 {
            return Ok("r".into());
        }
        if let Some(name) = self.offset_rows.get(&offset) {
            return Ok(name.clone());
        }
        let off = i32::try_from(offset).map_err(|_| unsupported(format!("mask offset {offset}")))?;
        let name = format!("r_{}{}", if off < 0 { "m" } else { "p" }, off.unsigned_abs());
        let _ = writeln!(self.rows_prelude, "    let {name} = offset_row(r, {off}i);");
        self.offset_rows.insert(offset, name.clone());
        Ok(name)
    }

    fn constant(&mut self, words: &[u32]) -> usize {
        let at = self.consts.len();
        self.consts.extend_from_slice(words);
        at
    }

    fn base(&mut self, e: &BaseExpr) -> Result<String, GpuError> {
        Ok(match e {
            BaseExpr::Col(column) => {
                let (interaction, mask, offset) = column_key(column)?;
                let &(traced_interaction, index) =
                    self.traced.columns.get(mask).ok_or_else(|| unsupported(format!("mask {mask} was not traced")))?;
                if traced_interaction != interaction {
                    return Err(unsupported(format!("mask {mask} changed interaction")));
                }
                let next_slot = self.slots.len();
                let slot = *self.slot_of.entry((interaction, index)).or_insert(next_slot);
                if slot == next_slot {
                    self.slots.push((interaction, index));
                }
                let row = self.row(offset)?;
                self.named(format!("col({slot}u, {row})"), false)
            }
            BaseExpr::Const(v) => {
                let at = self.constant(&[v.0]);
                self.named(format!("consts[{at}u]"), false)
            }
            BaseExpr::Param(name) => match self.intermediate(name)? {
                Val::Base(v) => v,
                Val::Ext(_) => {
                    return Err(unsupported(format!("{name} is an extension value where a base one is used")));
                }
            },
            BaseExpr::Add(a, b) => self.base_op("m31_add", a, b)?,
            BaseExpr::Sub(a, b) => self.base_op("m31_sub", a, b)?,
            BaseExpr::Mul(a, b) => self.base_op("m31_mul", a, b)?,
            BaseExpr::Neg(a) => {
                let a = self.base(a)?;
                self.named(format!("m31_neg({a})"), false)
            }
            BaseExpr::Inv(_) => return Err(unsupported("an inverse")),
        })
    }

    fn named(&mut self, code: String, ext: bool) -> String {
        match self.emit(code, ext) {
            Val::Base(n) | Val::Ext(n) => n,
        }
    }

    fn base_op(&mut self, op: &str, a: &BaseExpr, b: &BaseExpr) -> Result<String, GpuError> {
        let (a, b) = (self.base(a)?, self.base(b)?);
        Ok(self.named(format!("{op}({a}, {b})"), false))
    }

    fn intermediate(&mut self, name: &str) -> Result<Val, GpuError> {
        match self.intermediates.get(name) {
            Some(Some(v)) => return Ok(v.clone()),
            Some(None) => return Err(unsupported(format!("intermediate {name} refers to itself"))),
            None => {}
        }
        self.intermediates.insert(name.to_owned(), None);
        let v = if let Some(e) = self.traced.inner.intermediates.get(name) {
            Val::Base(self.base(e)?)
        } else if let Some(e) = self.traced.inner.ext_intermediates.get(name) {
            self.ext(e)?
        } else {
            return Err(unsupported(format!("parameter {name:?}")));
        };
        self.intermediates.insert(name.to_owned(), Some(v.clone()));
        Ok(v)
    }

    fn ext(&mut self, e: &ExtExpr) -> Result<Val, GpuError> {
        let is_zero = |b: &BaseExpr| matches!(b, BaseExpr::Const(v) if v.0 == 0);
        let is_const = |b: &BaseExpr| matches!(b, BaseExpr::Const(_));
        Ok(match e {
            // A QM31 constant (`From<SecureField>`): four pool words whatever their values, so the
            // kernel text never depends on a job's numbers.
            ExtExpr::SecureCol([a, b, c, d]) if is_const(a) && is_const(b) && is_const(c) && is_const(d) => {
                let words = [a, b, c, d].map(|p| match **p {
                    BaseExpr::Const(v) => v.0,
                    _ => 0,
                });
                let at = self.constant(&words);
                self.emit(format!("cst4({at}u)"), true)
            }
            // A base expression embedded in QM31 (`From<BaseExpr>`) stays a base value.
            ExtExpr::SecureCol([a, b, c, d]) if is_zero(b) && is_zero(c) && is_zero(d) => Val::Base(self.base(a)?),
            ExtExpr::SecureCol([a, b, c, d]) => {
                let parts = [self.base(a)?, self.base(b)?, self.base(c)?, self.base(d)?];
                self.emit(format!("vec4<u32>({}, {}, {}, {})", parts[0], parts[1], parts[2], parts[3]), true)
            }
            ExtExpr::Const(v) => {
                let at = self.constant(&v.to_m31_array().map(|m| m.0));
                self.emit(format!("cst4({at}u)"), true)
            }
            ExtExpr::Param(name) => self.intermediate(name)?,
            ExtExpr::Add(a, b) => {
                let (a, b) = (self.ext(a)?, self.ext(b)?);
                self.ext_op(a, b, "m31_add", "qm31_add")
            }
            ExtExpr::Sub(a, b) => {
                let (a, b) = (self.ext(a)?, self.ext(b)?);
                self.ext_op(a, b, "m31_sub", "qm31_sub")
            }
            ExtExpr::Mul(a, b) => match (self.ext(a)?, self.ext(b)?) {
                (Val::Base(a), Val::Base(b)) => self.emit(format!("m31_mul({a}, {b})"), false),
                (Val::Ext(a), Val::Base(b)) | (Val::Base(b), Val::Ext(a)) => {
                    self.emit(format!("qm31_mul_m31({a}, {b})"), true)
                }
                (Val::Ext(a), Val::Ext(b)) => self.emit(format!("qm31_mul({a}, {b})"), true),
            },
            ExtExpr::Neg(a) => match self.ext(a)? {
                Val::Base(a) => self.emit(format!("m31_neg({a})"), false),
                Val::Ext(a) => self.emit(format!("qm31_neg({a})"), true),
            },
        })
    }

    /// `a op b` for an additive `op`: in M31 when both are base values, else in QM31.
    fn ext_op(&mut self, a: Val, b: Val, base_op: &str, ext_op: &str) -> Val {
        let lift = |v: Val| match v {
            Val::Base(n) => format!("ext({n})"),
            Val::Ext(n) => n,
        };
        match (a, b) {
            (Val::Base(a), Val::Base(b)) => self.emit(format!("{base_op}({a}, {b})"), false),
            (a, b) => {
                let (a, b) = (lift(a), lift(b));
                self.emit(format!("{ext_op}({a}, {b})"), true)
            }
        }
    }
}

/// The host columns a program reads, in slot order: `(tree, index in the tree)`.
pub(crate) fn slot_columns(
    slots: &[(usize, usize)],
    preprocessed: &[usize],
    locations: &[stwo::core::pcs::TreeSubspan],
) -> Result<Vec<(usize, usize)>, GpuError> {
    slots
        .iter()
        .map(|&(interaction, index)| {
            if interaction == PREPROCESSED_TRACE_IDX {
                let column = preprocessed
                    .get(index)
                    .ok_or_else(|| unsupported(format!("preprocessed column {index} of {}", preprocessed.len())))?;
                Ok((PREPROCESSED_TRACE_IDX, *column))
            } else {
                let span = locations
                    .get(interaction)
                    .ok_or_else(|| unsupported(format!("interaction {interaction} has no columns")))?;
                if span.col_start + index >= span.col_end {
                    return Err(unsupported(format!("column {index} of interaction {interaction}")));
                }
                Ok((span.tree_index, span.col_start + index))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use stwo::core::air::Component;
    use stwo::core::fields::FieldExpOps;
    use stwo::core::fields::m31::M31;
    use stwo_constraint_framework::FrameworkComponent;

    use super::*;

    fn qm31(seed: u32) -> SecureField {
        SecureField::from_m31_array(std::array::from_fn(|k| M31::from(seed.wrapping_mul(2_654_435_761) ^ k as u32)))
    }

    fn powers(n: usize, seed: u32) -> Vec<SecureField> {
        (0..n).map(|k| qm31(seed + k as u32)).collect()
    }

    /// Compiles a component for two jobs of the same circuit structure; the kernel must be valid
    /// WGSL in both multiplier variants and its text must not depend on the jobs' values.
    fn check<E: FrameworkEval>(a: &FrameworkComponent<E>, b: &FrameworkComponent<E>) -> RowProgram {
        let n = a.n_constraints();
        let pa = compile(&**a, &powers(n, 1)).unwrap();
        let pb = compile(&**b, &powers(n, 2)).unwrap();
        assert_eq!(pa.n_constraints, n);
        assert_eq!(pa.body, pb.body, "the kernel text depends on job values");
        assert_eq!(pa.slots, pb.slots);
        assert_ne!(pa.consts, pb.consts);
        assert!(!pa.slots.is_empty());
        // Every slot names a column the component owns.
        slot_columns(&pa.slots, a.preprocessed_column_indices(), a.trace_locations()).unwrap();
        for int64 in [false, true] {
            let source = super::super::constraint_kernel_source(&pa.body, int64);
            super::super::validate_source("constraints (test)", &source, int64).unwrap();
        }
        // Coefficients: constraint j is weighted by powers[n-1-j], four words each, at the end.
        let p = powers(n, 1);
        let tail = &pa.consts[pa.consts.len() - 4 * n..];
        assert_eq!(&tail[..4], &p[n - 1].to_m31_array().map(|v| v.0));
        assert_eq!(&tail[4 * (n - 1)..], &p[0].to_m31_array().map(|v| v.0));
        pa
    }

    #[test]
    fn every_project_air_compiles_to_a_valid_structure_only_kernel() {
        let matmul =
            check(&crate::matmul::component(6, qm31(5), qm31(6)), &crate::matmul::component(6, qm31(7), qm31(8)));
        // is_first, c and the interaction column's four coordinates; g read at offsets 0 and −1.
        assert_eq!(matmul.slots.len(), 6, "{matmul:?}");
        assert!(matmul.body.contains("offset_row(r, -1i)"), "{}", matmul.body);
        // QM31 parameters that happen to be zero or to lie in M31 give the same kernel text.
        let m31 = |v: u32| SecureField::from(BaseField::from(v));
        let same = check(&crate::matmul::component(6, qm31(5), qm31(6)), &crate::matmul::component(6, m31(0), m31(3)));
        assert_eq!(same.body, matmul.body);

        // Both VM job types prove on one machine AIR.
        use crate::vm_jump::Ending;
        let vm = |ending: Ending, s: u32| {
            let challenges = crate::vm_jump::test_challenges(s);
            crate::vm_jump::component(6, ending, [s; 4], [s + 1; 4], challenges, qm31(s + 20))
        };
        // A run that ends at a fixed instruction (vm) and one that halts within a budget (vm-jump).
        check(&vm(Ending::LastPc(9), 1), &vm(Ending::LastPc(12), 2));
        let machine = check(&vm(Ending::HaltBy(40), 1), &vm(Ending::HaltBy(41), 2));
        assert!(machine.body.contains("offset_row(r, 1i)"), "{}", machine.body);
        assert!(machine.body.contains("offset_row(r, -1i)"), "{}", machine.body);
        // Shared subexpressions are computed once: `after` (used twice per register) appears once.
        let lines = machine.body.lines().count();
        // 499 lines when measured (58 main columns, the lookup compresses two 23-field tuples).
        assert!(lines < 560, "{lines} lines: common subexpressions were not shared");
    }

    struct InverseEval;

    impl FrameworkEval for InverseEval {
        fn log_size(&self) -> u32 {
            4
        }
        fn max_constraint_log_degree_bound(&self) -> u32 {
            5
        }
        fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
            let x = eval.next_trace_mask();
            eval.add_constraint(x.clone() * x.inverse() - E::F::from(BaseField::from(1u32)));
            eval
        }
    }

    struct RelationEval;

    impl FrameworkEval for RelationEval {
        fn log_size(&self) -> u32 {
            4
        }
        fn max_constraint_log_degree_bound(&self) -> u32 {
            5
        }
        fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
            let x = eval.next_trace_mask();
            eval.add_constraint(x);
            eval.finalize_logup_in_pairs();
            eval
        }
    }

    #[test]
    fn what_the_kernel_cannot_express_is_a_typed_refusal() {
        let unsupported = |r: Result<RowProgram, GpuError>| match r {
            Err(GpuError::Unsupported(why)) => why,
            other => panic!("expected Unsupported, got {other:?}"),
        };
        assert!(unsupported(compile(&InverseEval, &powers(1, 1))).contains("inverse"));
        assert!(unsupported(compile(&RelationEval, &powers(1, 1))).contains("logup"));
        // The coefficient count must match the constraint count.
        assert!(unsupported(compile(&RelationEval, &powers(3, 1))).contains("logup"));
        let vm = crate::vm_jump::component(
            5,
            crate::vm_jump::Ending::HaltBy(9),
            [0; 4],
            [0; 4],
            crate::vm_jump::test_challenges(0),
            qm31(0),
        );
        assert!(unsupported(compile(&*vm, &powers(2, 1))).contains("coefficients"));
        // A column outside the component is refused, not read.
        assert!(slot_columns(&[(1, 99)], &[], vm.trace_locations()).is_err());
        assert!(slot_columns(&[(0, 3)], &[0, 1], vm.trace_locations()).is_err());
    }
}
