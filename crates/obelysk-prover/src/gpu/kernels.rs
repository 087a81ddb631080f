//! Host side of the kernels: buffer plumbing and the layer loops.

use std::collections::HashMap;

use stwo::core::fields::m31::BaseField;
use stwo::core::poly::circle::{CanonicCoset, CircleDomain};
use stwo::core::vcs::blake2_hash::Blake2sHash;
use stwo::prover::backend::Column;
use stwo::prover::backend::CpuBackend;
use stwo::prover::backend::simd::column::BaseColumn;
use stwo::prover::poly::twiddles::TwiddleTree;

use super::context::{GpuColumn, GpuContext, GpuError};

/// FFT twiddles of one domain and direction, resident on the device ([`GpuContext::fft_twiddles`]).
#[derive(Debug)]
pub struct GpuTwiddles {
    buffer: GpuColumn,
    offsets: Vec<u32>,
    log_size: u32,
    inverse: bool,
}

impl GpuTwiddles {
    /// log2 of the size of the domain these twiddles serve.
    pub fn log_size(&self) -> u32 {
        self.log_size
    }
}

/// Words of one streaming Blake2s state on the device (see `blake2s.wgsl`).
const STATE_WORDS: usize = 26;
/// Words of one Blake2s hash.
const HASH_WORDS: usize = 8;

fn checked_len(len: usize) -> Result<u32, GpuError> {
    u32::try_from(len).map_err(|_| GpuError::Unsupported(format!("{len} elements exceed u32 indexing")))
}

/// Records copies of the first `rows` words of each column, one after another, into `packed`.
fn pack_prefixes(encoder: &mut wgpu::CommandEncoder, columns: &[&GpuColumn], rows: usize, packed: &GpuColumn) {
    for (k, column) in columns.iter().enumerate() {
        encoder.copy_buffer_to_buffer(&column.buffer, 0, &packed.buffer, (k * rows * 4) as u64, (rows * 4) as u64);
    }
}

#[derive(Clone, Copy)]
enum BinOp {
    Add,
    Sub,
    Mul,
}

impl GpuContext {
    fn m31_binop(&self, op: BinOp, a: &GpuColumn, b: &GpuColumn) -> Result<GpuColumn, GpuError> {
        self.guarded("m31 element-wise", || {
            if a.len != b.len {
                return Err(GpuError::Unsupported(format!("operand lengths differ: {} and {}", a.len, b.len)));
            }
            let n = checked_len(a.len)?;
            let out = self.zeroed(a.len);
            let pipeline = match op {
                BinOp::Add => &self.pipelines.m31_add,
                BinOp::Sub => &self.pipelines.m31_sub,
                BinOp::Mul => &self.pipelines.m31_mul,
            };
            let params = self.params([n, 0, 0, 0]);
            let mut encoder = self.encoder();
            self.record(
                &mut encoder,
                pipeline,
                &[(0, &params), (1, &a.buffer), (2, &b.buffer), (3, &out.buffer)],
                a.len,
            );
            self.submit(encoder);
            Ok(out)
        })
    }

    /// Element-wise M31 sum.
    pub fn m31_add(&self, a: &GpuColumn, b: &GpuColumn) -> Result<GpuColumn, GpuError> {
        self.m31_binop(BinOp::Add, a, b)
    }

    /// Element-wise M31 difference.
    pub fn m31_sub(&self, a: &GpuColumn, b: &GpuColumn) -> Result<GpuColumn, GpuError> {
        self.m31_binop(BinOp::Sub, a, b)
    }

    /// Element-wise M31 product.
    pub fn m31_mul(&self, a: &GpuColumn, b: &GpuColumn) -> Result<GpuColumn, GpuError> {
        self.m31_binop(BinOp::Mul, a, b)
    }

    /// Uploads M31 values (canonical, `< 2^31 - 1`).
    pub fn upload_m31(&self, values: &[BaseField]) -> GpuColumn {
        self.upload(&values.iter().map(|v| v.0).collect::<Vec<_>>())
    }

    /// Uploads, multiplies and reads back (convenience for tests and examples).
    pub fn m31_mul_slices(&self, a: &[u32], b: &[u32]) -> Result<Vec<u32>, GpuError> {
        let (a, b) = (self.upload(a), self.upload(b));
        self.download(&self.m31_mul(&a, &b)?)
    }

    /// Element-wise QM31 product; each value is 4 consecutive words in Stwo's `to_m31_array` order.
    pub fn qm31_mul(&self, a: &GpuColumn, b: &GpuColumn) -> Result<GpuColumn, GpuError> {
        self.guarded("qm31_mul", || {
            if a.len != b.len || !a.len.is_multiple_of(4) {
                return Err(GpuError::Unsupported(format!("QM31 operands of {} and {} words", a.len, b.len)));
            }
            let n = checked_len(a.len / 4)?;
            let out = self.zeroed(a.len);
            let params = self.params([n, 0, 0, 0]);
            let mut encoder = self.encoder();
            self.record(
                &mut encoder,
                &self.pipelines.qm31_mul,
                &[(0, &params), (1, &a.buffer), (2, &b.buffer), (3, &out.buffer)],
                a.len / 4,
            );
            self.submit(encoder);
            Ok(out)
        })
    }

    /// In-place bit-reversal permutation (length a power of two), as [`stwo::core::utils::bit_reverse`].
    pub fn bit_reverse(&self, column: &GpuColumn) -> Result<(), GpuError> {
        self.guarded("bit_reverse", || {
            let n = column.len;
            if !n.is_power_of_two() {
                return Err(GpuError::Unsupported(format!("bit reversal of {n} elements (not a power of two)")));
            }
            if n == 1 {
                return Ok(());
            }
            let params = self.params([checked_len(n)?, n.ilog2(), 0, 0]);
            let mut encoder = self.encoder();
            self.record(&mut encoder, &self.pipelines.bit_reverse, &[(0, &params), (1, &column.buffer)], n);
            self.submit(encoder);
            Ok(())
        })
    }

    /// Twiddles of every FFT layer for `domain`, concatenated (layer 0 = circle layer first), with
    /// each layer's offset. Taken from Stwo's CPU twiddle tree exactly as `CpuBackend` slices it.
    fn layer_twiddles(domain: CircleDomain, tree: &[BaseField]) -> Result<(Vec<u32>, Vec<u32>), GpuError> {
        let log_size = domain.log_size();
        let line_log = log_size - 1;
        if tree.len() < 1 << line_log {
            return Err(GpuError::Unsupported(format!("twiddle tree too small for a domain of size 2^{log_size}")));
        }
        // stwo::core::poly::utils::domain_line_twiddles_from_tree: line layer j (FFT layer j + 1)
        // has 2^(line_log - 1 - j) twiddles.
        let line: Vec<&[BaseField]> = (0..line_log)
            .map(|i| {
                let len = 1usize << i;
                &tree[tree.len() - len * 2..tree.len() - len]
            })
            .rev()
            .collect();
        // Circle layer from the first line layer: [x, y] -> [y, -y, -x, x].
        let mut all: Vec<u32> = line[0].chunks_exact(2).flat_map(|c| [c[1].0, (-c[1]).0, (-c[0]).0, c[0].0]).collect();
        let mut offsets = vec![0u32];
        for layer in &line {
            offsets.push(checked_len(all.len())?);
            all.extend(layer.iter().map(|t| t.0));
        }
        Ok((all, offsets))
    }

    /// Uploads the twiddles of every FFT layer of `domain` once, for any number of
    /// [`Self::evaluate_with`] / [`Self::interpolate_with`] calls on that domain.
    pub fn fft_twiddles(
        &self,
        domain: CircleDomain,
        twiddles: &TwiddleTree<CpuBackend>,
        inverse: bool,
    ) -> Result<GpuTwiddles, GpuError> {
        let tree = if inverse { &twiddles.itwiddles } else { &twiddles.twiddles };
        self.fft_twiddles_from_tree(domain, tree, inverse)
    }

    /// [`Self::fft_twiddles`] from one direction of a twiddle tree in Stwo's layout (`tree` holds
    /// the forward twiddles when `inverse` is false, the inverse ones otherwise).
    pub fn fft_twiddles_from_tree(
        &self,
        domain: CircleDomain,
        tree: &[BaseField],
        inverse: bool,
    ) -> Result<GpuTwiddles, GpuError> {
        self.guarded("fft_twiddles", || {
            let log_size = domain.log_size();
            if log_size < 3 {
                return Err(GpuError::Unsupported(format!("GPU FFT needs a domain of size >= 8 (got 2^{log_size})")));
            }
            let (words, offsets) = Self::layer_twiddles(domain, tree)?;
            Ok(GpuTwiddles { buffer: self.upload(&words), offsets, log_size, inverse })
        })
    }

    /// Evaluates device-resident coefficients (CPU order, at most the domain size of `twiddles`)
    /// into a new device column, zero-padding on the device; nothing crosses the bus.
    pub fn evaluate_column(&self, coeffs: &GpuColumn, twiddles: &GpuTwiddles) -> Result<GpuColumn, GpuError> {
        let n = 1usize << twiddles.log_size;
        if coeffs.len > n || coeffs.len == 0 {
            return Err(GpuError::Unsupported(format!("{} coefficients on a domain of {n}", coeffs.len)));
        }
        let column = self.guarded("evaluate", || {
            let column = self.zeroed(n);
            let mut encoder = self.encoder();
            encoder.copy_buffer_to_buffer(&coeffs.buffer, 0, &column.buffer, 0, (coeffs.len * 4) as u64);
            self.submit(encoder);
            Ok(column)
        })?;
        self.evaluate_with(&column, twiddles)?;
        Ok(column)
    }

    /// Builds a whole lifted Blake2s Merkle tree over device columns and reads every layer back
    /// (leaves first, straight into Stwo's hash type), as Stwo's `build_leaves` then
    /// `build_next_layer` until the root.
    pub fn merkle_layers_resident(
        &self,
        columns: &[&GpuColumn],
        lifting_log_size: u32,
    ) -> Result<Vec<Vec<Blake2sHash>>, GpuError> {
        let read = |layer: &GpuColumn| -> Result<Vec<Blake2sHash>, GpuError> {
            let mut hashes = vec![Blake2sHash::default(); layer.len / HASH_WORDS];
            self.download_into(layer, bytemuck::cast_slice_mut(&mut hashes))?;
            Ok(hashes)
        };
        let mut layer = self.build_leaves_resident(columns, lifting_log_size)?;
        let mut layers = vec![read(&layer)?];
        while layer.len > HASH_WORDS {
            layer = self.build_next_layer(&layer)?;
            layers.push(read(&layer)?);
        }
        Ok(layers)
    }

    fn fft_layers(&self, column: &GpuColumn, twiddles: &GpuTwiddles) -> Result<(), GpuError> {
        self.guarded("fft", || {
            let log_size = twiddles.log_size;
            if column.len != 1 << log_size {
                return Err(GpuError::Unsupported(format!(
                    "column of {} values on a domain of size 2^{log_size}",
                    column.len
                )));
            }
            let inverse = twiddles.inverse;
            let half = checked_len(column.len / 2)?;
            let mut layers: Vec<u32> = (0..log_size).collect();
            if !inverse {
                // evaluate: line layers from the top down, then the circle layer.
                layers.reverse();
            }
            let mut encoder = self.encoder();
            for layer in layers {
                let params = self.params([half, layer, twiddles.offsets[layer as usize], u32::from(inverse)]);
                self.record(
                    &mut encoder,
                    &self.pipelines.fft_layer,
                    &[(0, &params), (1, &column.buffer), (2, &twiddles.buffer.buffer)],
                    column.len / 2,
                );
            }
            if inverse {
                let inv = BaseField::from(checked_len(column.len)?).inverse();
                let params = self.params([checked_len(column.len)?, 0, inv.0, 0]);
                self.record(&mut encoder, &self.pipelines.scale, &[(0, &params), (1, &column.buffer)], column.len);
            }
            self.submit(encoder);
            Ok(())
        })
    }

    /// [`Self::evaluate`] with twiddles already on the device (from [`Self::fft_twiddles`] with
    /// `inverse = false`).
    pub fn evaluate_with(&self, column: &GpuColumn, twiddles: &GpuTwiddles) -> Result<(), GpuError> {
        if twiddles.inverse {
            return Err(GpuError::Unsupported("evaluate needs forward twiddles".into()));
        }
        self.fft_layers(column, twiddles)
    }

    /// [`Self::interpolate`] with inverse twiddles already on the device.
    pub fn interpolate_with(&self, column: &GpuColumn, twiddles: &GpuTwiddles) -> Result<(), GpuError> {
        if !twiddles.inverse {
            return Err(GpuError::Unsupported("interpolate needs inverse twiddles".into()));
        }
        self.fft_layers(column, twiddles)
    }

    /// In place: coefficients (padded to the domain size) → evaluations on `domain` in bit-reversed
    /// order, as `CpuBackend::evaluate` with the same twiddle tree. Domains of size ≥ 8.
    pub fn evaluate(
        &self,
        column: &GpuColumn,
        domain: CircleDomain,
        twiddles: &TwiddleTree<CpuBackend>,
    ) -> Result<(), GpuError> {
        self.evaluate_with(column, &self.fft_twiddles(domain, twiddles, false)?)
    }

    /// In place: bit-reversed evaluations on `domain` → coefficients, as `CpuBackend::interpolate`.
    pub fn interpolate(
        &self,
        column: &GpuColumn,
        domain: CircleDomain,
        twiddles: &TwiddleTree<CpuBackend>,
    ) -> Result<(), GpuError> {
        self.interpolate_with(column, &self.fft_twiddles(domain, twiddles, true)?)
    }

    /// Lifted Merkle leaves exactly as Stwo's `MerkleOpsLifted<Blake2sMerkleHasher>::build_leaves`
    /// (columns in increasing order of length, each a power of two ≥ 2): 8 words (32 bytes) per
    /// leaf, `2^lifting_log_size` leaves. Uploads the columns; see [`Self::build_leaves_resident`].
    pub fn build_leaves(&self, columns: &[&[BaseField]], lifting_log_size: u32) -> Result<GpuColumn, GpuError> {
        let uploaded: Vec<GpuColumn> = columns.iter().map(|c| self.upload_m31(c)).collect();
        self.build_leaves_resident(&uploaded.iter().collect::<Vec<_>>(), lifting_log_size)
    }

    /// [`Self::build_leaves`] over columns already on the device (no host transfer: each group of
    /// equal-length columns is packed with device-to-device copies). When the streaming states of
    /// all leaves (26 words each) exceed the device's storage-binding limit, the leaves are built
    /// in chunks that fit.
    pub fn build_leaves_resident(&self, columns: &[&GpuColumn], lifting_log_size: u32) -> Result<GpuColumn, GpuError> {
        let limit_words = self.device.limits().max_storage_buffer_binding_size as usize / 4;
        let chunk_states = if limit_words >= STATE_WORDS { 1usize << (limit_words / STATE_WORDS).ilog2() } else { 1 };
        self.build_leaves_chunked(columns, lifting_log_size, chunk_states)
    }

    /// [`Self::build_leaves_resident`] with at most `chunk_states` streaming states per stage and
    /// chunk (a power of two; chunking is exercised by the tests with small values).
    pub(crate) fn build_leaves_chunked(
        &self,
        columns: &[&GpuColumn],
        lifting_log_size: u32,
        chunk_states: usize,
    ) -> Result<GpuColumn, GpuError> {
        self.guarded("merkle leaves", || {
            if columns.is_empty() {
                let states = self.zeroed(STATE_WORDS);
                let out = self.zeroed(HASH_WORDS);
                let p = self.params([1, 0, 0, 0]);
                let mut encoder = self.encoder();
                self.record(&mut encoder, &self.pipelines.leaf_init, &[(0, &p), (1, &states.buffer)], 1);
                self.record(
                    &mut encoder,
                    &self.pipelines.leaf_finalize,
                    &[(0, &p), (1, &states.buffer), (3, &out.buffer)],
                    1,
                );
                self.submit(encoder);
                return Ok(out);
            }
            for pair in columns.windows(2) {
                if pair[0].len > pair[1].len {
                    return Err(GpuError::Unsupported("columns must be in increasing order of length".into()));
                }
            }
            if columns.iter().any(|c| c.len < 2 || !c.len.is_power_of_two()) {
                return Err(GpuError::Unsupported("column lengths must be powers of two >= 2".into()));
            }
            if !chunk_states.is_power_of_two() || chunk_states < 2 {
                return Err(GpuError::Unsupported(format!("leaf chunks of {chunk_states} states")));
            }
            let max_log = columns[columns.len() - 1].len.ilog2();
            if lifting_log_size < max_log {
                return Err(GpuError::Unsupported(format!(
                    "lifting log size {lifting_log_size} < largest column 2^{max_log}"
                )));
            }
            // Stages: (log size, packed input of the group's columns, number of columns).
            let mut encoder = self.encoder();
            let mut stages: Vec<(u32, Option<GpuColumn>, usize, usize)> = Vec::new();
            let mut start = 0;
            while start < columns.len() {
                let log_size = columns[start].len.ilog2();
                let end = start + columns[start..].iter().take_while(|c| c.len.ilog2() == log_size).count();
                let n = 1usize << log_size;
                let packed = if end - start == 1 {
                    None
                } else {
                    let packed = self.try_zeroed(n * (end - start))?;
                    pack_prefixes(&mut encoder, &columns[start..end], n, &packed);
                    Some(packed)
                };
                stages.push((log_size, packed, start, end - start));
                start = end;
            }
            let n_leaves = 1usize << lifting_log_size;
            let out = self.try_zeroed(n_leaves * HASH_WORDS)?;
            let chunk = chunk_states.min(n_leaves);
            // Stage indices of the leaves [s, s + chunk): [2·(s >> (r + 1)), + max(chunk >> r, 2)).
            let range = |s: usize, log_size: u32| {
                let r = lifting_log_size - log_size;
                (2 * (s >> (r + 1)), (chunk >> r).max(2).min(1 << log_size))
            };
            for s in (0..n_leaves).step_by(chunk) {
                let mut states = self.try_zeroed(2 * STATE_WORDS)?;
                let p = self.params([2, 0, 0, 0]);
                self.record(&mut encoder, &self.pipelines.leaf_init, &[(0, &p), (1, &states.buffer)], 2);
                let (mut prev_log, mut prev_base) = (1u32, 0usize);
                for (log_size, packed, first, count) in &stages {
                    let (base, len) = range(s, *log_size);
                    if *log_size > prev_log {
                        states =
                            self.expand_states(&mut encoder, &states, len, *log_size - prev_log, base, prev_base)?;
                    }
                    let input = packed.as_ref().map_or(&columns[*first].buffer, |p| &p.buffer);
                    let p = self.params([
                        checked_len(len)?,
                        checked_len(*count)?,
                        checked_len(base)?,
                        checked_len(1 << log_size)?,
                    ]);
                    self.record(
                        &mut encoder,
                        &self.pipelines.leaf_absorb,
                        &[(0, &p), (1, &states.buffer), (2, input)],
                        len,
                    );
                    (prev_log, prev_base) = (*log_size, base);
                }
                let (base, len) = range(s, lifting_log_size);
                if lifting_log_size > prev_log {
                    states =
                        self.expand_states(&mut encoder, &states, len, lifting_log_size - prev_log, base, prev_base)?;
                }
                let hashes = self.try_zeroed(len * HASH_WORDS)?;
                let p = self.params([checked_len(len)?, 0, 0, 0]);
                self.record(
                    &mut encoder,
                    &self.pipelines.leaf_finalize,
                    &[(0, &p), (1, &states.buffer), (3, &hashes.buffer)],
                    len,
                );
                encoder.copy_buffer_to_buffer(
                    &hashes.buffer,
                    0,
                    &out.buffer,
                    (base * HASH_WORDS * 4) as u64,
                    (len * HASH_WORDS * 4) as u64,
                );
                // One submission per chunk keeps the chunk's temporaries short-lived.
                self.submit(std::mem::replace(&mut encoder, self.encoder()));
            }
            self.submit(encoder);
            drop(stages);
            Ok(out)
        })
    }

    /// Commits trace columns as Stwo's `CommitmentTreeProver::new` does, entirely on the device:
    /// each column (bit-reversed evaluations on its canonic domain, length ≥ 8) is interpolated,
    /// evaluated on the domain `log_blowup_factor` times larger, and the lifted Blake2s Merkle tree
    /// of the extended evaluations is built (columns sorted by length, lifting to the largest).
    /// Returns the root and the device-resident extended evaluations (in the given column order).
    /// `twiddles` must cover the largest extended domain.
    pub fn commit_columns(
        &self,
        columns: &[&[BaseField]],
        log_blowup_factor: u32,
        twiddles: &TwiddleTree<CpuBackend>,
    ) -> Result<([u8; 32], Vec<GpuColumn>), GpuError> {
        self.guarded("commit", || {
            let mut extended = Vec::with_capacity(columns.len());
            // Twiddles are uploaded once per (domain size, direction).
            let mut cache: HashMap<(u32, bool), GpuTwiddles> = HashMap::new();
            for column in columns {
                if !column.len().is_power_of_two() {
                    return Err(GpuError::Unsupported(format!("a trace column of {} rows", column.len())));
                }
                let log_size = column.len().ilog2();
                for key in [(log_size, true), (log_size + log_blowup_factor, false)] {
                    if let std::collections::hash_map::Entry::Vacant(slot) = cache.entry(key) {
                        slot.insert(self.fft_twiddles(CanonicCoset::new(key.0).circle_domain(), twiddles, key.1)?);
                    }
                }
            }
            for column in columns {
                let log_size = column.len().ilog2();
                let evals = self.upload_m31(column);
                self.interpolate_with(&evals, &cache[&(log_size, true)])?;
                let ext = self.zeroed(1 << (log_size + log_blowup_factor));
                let mut encoder = self.encoder();
                encoder.copy_buffer_to_buffer(&evals.buffer, 0, &ext.buffer, 0, (column.len() * 4) as u64);
                self.submit(encoder);
                self.evaluate_with(&ext, &cache[&(log_size + log_blowup_factor, false)])?;
                extended.push(ext);
            }
            let mut sorted: Vec<&GpuColumn> = extended.iter().collect();
            sorted.sort_by_key(|c| c.len);
            let lifting_log_size = sorted.last().map_or(0, |c| c.len.ilog2());
            let root = self.merkle_root(self.build_leaves_resident(&sorted, lifting_log_size)?)?;
            Ok((root, extended))
        })
    }

    /// DEEP-quotient partial numerators of one sample batch, as Stwo's `accumulate_numerators`:
    /// row `r` (of the first `rows` of each column) gets `Σ_j c_j·columns[j][r] − sum_b`, in QM31.
    /// `c` and `sum_b` are QM31 values as 4 words each (`to_m31_array` order). Returns the four
    /// coordinate columns, read back, and their device copies (for [`Self::quotient_combine`]).
    #[allow(clippy::type_complexity, reason = "the same four columns on both sides")]
    pub fn quotient_numerators(
        &self,
        columns: &[&GpuColumn],
        rows: usize,
        c: &[[u32; 4]],
        sum_b: [u32; 4],
    ) -> Result<([BaseColumn; 4], [GpuColumn; 4]), GpuError> {
        self.guarded("quotient numerators", || {
            if columns.len() != c.len() || columns.is_empty() {
                return Err(GpuError::Unsupported(format!("{} columns, {} coefficients", columns.len(), c.len())));
            }
            if columns.iter().any(|col| col.len < rows) {
                return Err(GpuError::Unsupported(format!("a column shorter than the {rows}-row subdomain")));
            }
            let total = checked_len(columns.len() * rows)?;
            let packed = self.try_zeroed(total as usize)?;
            let mut encoder = self.encoder();
            pack_prefixes(&mut encoder, columns, rows, &packed);
            let mut words: Vec<u32> = c.iter().flatten().copied().collect();
            words.extend(sum_b);
            let coeffs = self.upload(&words);
            let out = self.try_zeroed(4 * rows)?;
            let p = self.params([checked_len(rows)?, checked_len(columns.len())?, 0, 0]);
            self.record(
                &mut encoder,
                &self.pipelines.quotient_numerators,
                &[(0, &p), (1, &packed.buffer), (2, &coeffs.buffer), (3, &out.buffer)],
                rows,
            );
            let device = self.split_coordinates(&mut encoder, &out, rows);
            self.submit(encoder);
            Ok((self.download_coordinates(&out)?, device))
        })
    }

    /// Copies the four coordinate columns of `out` (`4·rows` words) into four device columns.
    fn split_coordinates(&self, encoder: &mut wgpu::CommandEncoder, out: &GpuColumn, rows: usize) -> [GpuColumn; 4] {
        let columns: [GpuColumn; 4] = std::array::from_fn(|_| self.zeroed(rows));
        for (c, column) in columns.iter().enumerate() {
            encoder.copy_buffer_to_buffer(&out.buffer, (c * rows * 4) as u64, &column.buffer, 0, (rows * 4) as u64);
        }
        columns
    }

    /// Proof-of-work search as Stwo's `GrindOps` for the Blake2s channel: the smallest nonce
    /// `hi·2^32 + low` (`low < 2^low_bits`, `hi` from 0 up) such that the first word of
    /// Blake2s(`prefixed_digest` ‖ nonce) has at least `pow_bits` trailing zeros. `None` after
    /// `max_hi` values of `hi` without a solution.
    pub fn grind(
        &self,
        prefixed_digest: [u32; 8],
        pow_bits: u32,
        low_bits: u32,
        max_hi: u32,
    ) -> Result<Option<u64>, GpuError> {
        if pow_bits > 32 || low_bits > 30 {
            return Err(GpuError::Unsupported(format!("grinding {pow_bits} bits over 2^{low_bits} nonces")));
        }
        let digest = self.try_upload(&prefixed_digest)?;
        for hi in 0..max_hi {
            let best = self.guarded("grind", || {
                let best = self.upload(&[u32::MAX]);
                let p = self.params([pow_bits, hi, 1 << low_bits, 0]);
                let mut encoder = self.encoder();
                self.record(
                    &mut encoder,
                    &self.pipelines.grind,
                    &[(0, &p), (1, &digest.buffer), (2, &best.buffer)],
                    1 << low_bits,
                );
                self.submit(encoder);
                self.download_inner(&best)
            })?;
            if best[0] != u32::MAX {
                return Ok(Some((u64::from(hi) << 32) | u64::from(best[0])));
            }
        }
        Ok(None)
    }

    /// FRI folds on the device: `folds` successive folds of a QM31 column (4 coordinate columns
    /// of `len` words each, concatenated), fold `k` with `twiddles[k]` (one inverse twiddle per
    /// output pair) and challenge `alphas[k]`. Returns the folded column (4 coordinate columns).
    pub fn fri_fold(
        &self,
        src: &[u32],
        twiddles: &[&GpuColumn],
        alphas: &[[u32; 4]],
    ) -> Result<[BaseColumn; 4], GpuError> {
        self.guarded("fri fold", || {
            let len = src.len() / 4;
            if !src.len().is_multiple_of(4)
                || !len.is_power_of_two()
                || twiddles.len() != alphas.len()
                || len >> twiddles.len() == 0
            {
                return Err(GpuError::Unsupported(format!(
                    "{} folds of a QM31 column of {} words",
                    twiddles.len(),
                    src.len()
                )));
            }
            let mut current = self.try_upload(src)?;
            let mut encoder = self.encoder();
            let mut m = len;
            let mut keep = Vec::new();
            for (tw, alpha) in twiddles.iter().zip(alphas) {
                m /= 2;
                if tw.len < m {
                    return Err(GpuError::Unsupported(format!("{} twiddles for {m} pairs", tw.len)));
                }
                let out = self.try_zeroed(4 * m)?;
                let p = self.params([checked_len(m)?, 0, 0, 0]);
                let a = self.params(*alpha);
                self.record(
                    &mut encoder,
                    &self.pipelines.fri_fold,
                    &[(0, &p), (1, &current.buffer), (2, &tw.buffer), (3, &out.buffer), (4, &a)],
                    m,
                );
                keep.push(std::mem::replace(&mut current, out));
            }
            self.submit(encoder);
            drop(keep);
            self.download_coordinates(&current)
        })
    }

    /// The DEEP-quotient combination on the evaluation subdomain (see `quotient_combine.wgsl`):
    /// `points` holds the subdomain's x then y coordinates in bit-reversed order (2·`rows` words),
    /// `accs` 16 words per accumulation, `partials` the accumulations' numerator columns in order
    /// (four coordinates each; packed on the device at the offsets `accs` names). Returns the four
    /// coordinate columns of the quotient on the subdomain, on the device.
    pub fn quotient_combine(
        &self,
        points: &GpuColumn,
        rows: usize,
        accs: &[u32],
        partials: &[&GpuColumn],
    ) -> Result<[GpuColumn; 4], GpuError> {
        self.guarded("quotient combine", || {
            if points.len != 2 * rows || accs.is_empty() || !accs.len().is_multiple_of(16) || partials.is_empty() {
                return Err(GpuError::Unsupported(format!(
                    "{} point words for {rows} rows, {} accumulation words, {} numerator columns",
                    points.len,
                    accs.len(),
                    partials.len()
                )));
            }
            let accs_buffer = self.try_upload(accs)?;
            let packed = self.try_zeroed(checked_len(partials.iter().map(|c| c.len).sum())? as usize)?;
            let out = self.try_zeroed(4 * rows)?;
            let p = self.params([checked_len(rows)?, checked_len(accs.len() / 16)?, 0, 0]);
            let mut encoder = self.encoder();
            let mut offset = 0;
            for column in partials {
                encoder.copy_buffer_to_buffer(&column.buffer, 0, &packed.buffer, offset, (column.len * 4) as u64);
                offset += (column.len * 4) as u64;
            }
            self.record(
                &mut encoder,
                &self.pipelines.quotient_combine,
                &[(0, &p), (1, &points.buffer), (2, &accs_buffer.buffer), (3, &out.buffer), (4, &packed.buffer)],
                rows,
            );
            let columns = self.split_coordinates(&mut encoder, &out, rows);
            self.submit(encoder);
            Ok(columns)
        })
    }

    /// A component's constraint contributions on the evaluation subdomain with a compiled
    /// constraint kernel (see `constraints.wgsl`): `columns` are the program's slots, each the
    /// first `rows` values of its committed evaluation; `consts` the program's constants and
    /// coefficients followed by the denominator inverses. Returns the four coordinate columns.
    pub(crate) fn evaluate_constraints(
        &self,
        pipeline: &wgpu::ComputePipeline,
        columns: &[&GpuColumn],
        rows: usize,
        trace_log: u32,
        consts: &[u32],
        denominators_at: usize,
    ) -> Result<[BaseColumn; 4], GpuError> {
        self.guarded("constraints", || {
            if !rows.is_power_of_two() || rows.ilog2() <= trace_log || columns.iter().any(|c| c.len < rows) {
                return Err(GpuError::Unsupported(format!("constraints on {rows} rows of a 2^{trace_log} trace")));
            }
            let eval_log = rows.ilog2();
            if consts.len() < denominators_at + (rows >> trace_log) {
                return Err(GpuError::Unsupported(format!("{} constant words", consts.len())));
            }
            // The kernel indexes `slot · rows + row` and `3 · rows + r` in u32. A program may read
            // no column (constant constraints): bind one word.
            checked_len(4 * rows)?;
            let words = (checked_len(columns.len() * rows)? as usize).max(1);
            let limit = self.device.limits().max_storage_buffer_binding_size;
            if (words as u64) * 4 > limit || (4 * rows as u64) * 4 > limit {
                return Err(GpuError::Unsupported(format!(
                    "{} constraint columns of {rows} rows exceed the device's {limit}-byte binding limit",
                    columns.len()
                )));
            }
            let packed = self.try_zeroed(words)?;
            let mut encoder = self.encoder();
            pack_prefixes(&mut encoder, columns, rows, &packed);
            let consts = self.upload(consts);
            let out = self.try_zeroed(4 * rows)?;
            let p = self.params([checked_len(rows)?, trace_log, eval_log, checked_len(denominators_at)?]);
            self.record(
                &mut encoder,
                pipeline,
                &[(0, &p), (1, &packed.buffer), (2, &consts.buffer), (3, &out.buffer)],
                rows,
            );
            self.submit(encoder);
            self.download_coordinates(&out)
        })
    }

    /// Reads a column of four coordinate columns (a `SecureColumnByCoords`, `4·n` words) back as
    /// four SIMD columns.
    fn download_coordinates(&self, column: &GpuColumn) -> Result<[BaseColumn; 4], GpuError> {
        let n = column.len / 4;
        let words = self.download_inner(column)?;
        Ok(std::array::from_fn(|k| {
            let mut c = BaseColumn::zeros(n);
            bytemuck::cast_slice_mut::<BaseField, u32>(c.as_mut_slice()).copy_from_slice(&words[k * n..(k + 1) * n]);
            c
        }))
    }

    /// Expands `states` (a chunk of a stage starting at global state `in_base`) into `len` states
    /// of a stage `log_ratio` times larger, starting at global state `out_base`.
    fn expand_states(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        states: &GpuColumn,
        len: usize,
        log_ratio: u32,
        out_base: usize,
        in_base: usize,
    ) -> Result<GpuColumn, GpuError> {
        let out = self.try_zeroed(len * STATE_WORDS)?;
        let p = self.params([checked_len(len)?, log_ratio, checked_len(out_base)?, checked_len(in_base)?]);
        self.record(encoder, &self.pipelines.leaf_expand, &[(0, &p), (2, &states.buffer), (3, &out.buffer)], len);
        Ok(out)
    }

    /// One Merkle layer: node `i` = Blake2s(`prev[2i]` ‖ `prev[2i + 1]`), as Stwo's `build_next_layer`.
    pub fn build_next_layer(&self, prev: &GpuColumn) -> Result<GpuColumn, GpuError> {
        self.guarded("merkle layer", || {
            let nodes = prev.len / HASH_WORDS;
            if !prev.len.is_multiple_of(HASH_WORDS) || nodes < 2 || !nodes.is_power_of_two() {
                return Err(GpuError::Unsupported(format!("a Merkle layer of {} words", prev.len)));
            }
            let out = self.zeroed(nodes / 2 * HASH_WORDS);
            let p = self.params([checked_len(nodes / 2)?, 0, 0, 0]);
            let mut encoder = self.encoder();
            self.record(
                &mut encoder,
                &self.pipelines.next_layer,
                &[(0, &p), (2, &prev.buffer), (3, &out.buffer)],
                nodes / 2,
            );
            self.submit(encoder);
            Ok(out)
        })
    }

    /// Hashes layers on the device down to the root and reads back only the root (32 bytes).
    pub fn merkle_root(&self, leaves: GpuColumn) -> Result<[u8; 32], GpuError> {
        let mut layer = leaves;
        while layer.len > HASH_WORDS {
            layer = self.build_next_layer(&layer)?;
        }
        let words = self.download(&layer)?;
        let mut root = [0u8; 32];
        root.copy_from_slice(bytemuck::cast_slice(&words));
        Ok(root)
    }
}
