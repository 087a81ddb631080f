//! Collecting evidence on this machine through Linux configfs-tsm
//! (`/sys/kernel/config/tsm/report`, Linux 6.7 and later): the one interface TDX and SEV-SNP guests
//! share. The caller chooses the 64 report-data bytes (for a worker:
//! [`crate::report_data_binding`] of its key and a fresh nonce); the kernel asks the TEE for a quote
//! (TDX) or an attestation report (SEV-SNP) carrying them.
//!
//! The protocol: create an entry directory, write `inblob`, read `generation`, read `outblob` (and
//! `auxblob`, the SEV-SNP certificate table when the host provides one), read `generation` again;
//! a different generation means another writer used the entry in between, and the result is
//! discarded. The entry is removed afterwards, on every path.
//!
//! [`Collected::into_evidence`] turns the raw blobs into [`Evidence`]: a TDX quote needs the
//! collateral from the operator's PCCS (this crate never touches the network); an SEV-SNP report
//! needs its VCEK, taken from the certificate table when the host provides it.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use crate::{Evidence, TeeError, TeeType};

/// Where configfs-tsm reports are made.
pub const CONFIGFS_TSM_REPORT: &str = "/sys/kernel/config/tsm/report";

/// The VCEK's GUID in an SEV-SNP certificate table (GHCB specification).
const VCEK_GUID: [u8; 16] =
    [0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd];

/// Largest blob read from configfs (a TDX quote with its certification data is a few KB).
const MAX_BLOB: u64 = 1 << 20;

/// Raw evidence read from configfs-tsm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected {
    /// The TEE that produced it (from the entry's `provider`).
    pub tee: TeeType,
    /// The quote (TDX) or attestation report (SEV-SNP).
    pub outblob: Vec<u8>,
    /// The SEV-SNP certificate table, when the host supplied one.
    pub auxblob: Option<Vec<u8>>,
}

/// Why no evidence could be collected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CollectError {
    /// No configfs-tsm here.
    #[error(
        "no TEE attestation interface: {0} does not exist (TDX and SEV-SNP guests on Linux 6.7 or later have it; \
         mount configfs if it is missing); on a development network register with `--tee none`"
    )]
    NoInterface(PathBuf),
    /// A configfs file could not be used.
    #[error("{path}: {reason}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A provider this crate does not verify.
    #[error("configfs-tsm provider {0:?} is not supported (tdx_guest and sev_guest are)")]
    UnknownProvider(String),
    /// Another writer changed the entry while it was read.
    #[error("the report entry changed while it was read (generation {before} then {after}); try again")]
    Raced {
        /// Generation after writing `inblob`.
        before: String,
        /// Generation after reading `outblob`.
        after: String,
    },
    /// A TDX quote without collateral cannot be verified.
    #[error(
        "a TDX quote is verified against Intel's collateral: fetch it for this platform from your PCCS \
         (the JSON dcap-qvl reads) and pass it with --collateral"
    )]
    NeedsCollateral,
    /// An SEV-SNP report without a VCEK cannot be verified.
    #[error(
        "the host supplied no VCEK in the SEV-SNP certificate table: fetch it from AMD KDS and pass it with --vcek"
    )]
    NeedsVcek,
    /// The blobs do not form evidence.
    #[error(transparent)]
    Evidence(#[from] TeeError),
}

fn io(path: &Path, e: std::io::Error) -> CollectError {
    CollectError::Io { path: path.to_owned(), reason: e.to_string() }
}

fn read_limited(path: &Path) -> Result<Vec<u8>, CollectError> {
    use std::io::Read as _;
    let mut out = Vec::new();
    std::fs::File::open(path).and_then(|f| f.take(MAX_BLOB + 1).read_to_end(&mut out)).map_err(|e| io(path, e))?;
    if out.len() as u64 > MAX_BLOB {
        return Err(CollectError::Io { path: path.to_owned(), reason: format!("more than {MAX_BLOB} bytes") });
    }
    Ok(out)
}

/// Removes the entry directory when dropped.
struct Entry(PathBuf);

impl Drop for Entry {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Asks the TEE behind configfs-tsm at `root` (normally [`CONFIGFS_TSM_REPORT`]) for evidence
/// carrying `report_data`, in a fresh entry removed afterwards. A `root` that is itself a report
/// entry (it has a `provider` file) is used as it is and kept.
pub fn collect_configfs(root: &Path, report_data: &[u8; 64]) -> Result<Collected, CollectError> {
    if !root.is_dir() {
        return Err(CollectError::NoInterface(root.to_owned()));
    }
    if root.join("provider").exists() {
        return collect_entry(root, report_data);
    }
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let path = root.join(format!("sage-{}-{nanos:x}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir(&path).map_err(|e| io(&path, e))?;
    let entry = Entry(path);
    collect_entry(&entry.0, report_data)
}

/// The configfs-tsm protocol on one report entry.
fn collect_entry(entry: &Path, report_data: &[u8; 64]) -> Result<Collected, CollectError> {
    let file = |name: &str| entry.join(name);
    std::fs::write(file("inblob"), report_data).map_err(|e| io(&file("inblob"), e))?;
    let generation = || std::fs::read_to_string(file("generation")).map(|g| g.trim().to_owned()).unwrap_or_default();
    let before = generation();
    let provider = std::fs::read_to_string(file("provider")).map_err(|e| io(&file("provider"), e))?;
    let tee = match provider.trim() {
        "tdx_guest" => TeeType::Tdx,
        "sev_guest" => TeeType::SevSnp,
        other => return Err(CollectError::UnknownProvider(other.to_owned())),
    };
    let outblob = read_limited(&file("outblob"))?;
    let auxblob = match file("auxblob") {
        p if p.exists() => Some(read_limited(&p)?).filter(|b| !b.is_empty()),
        _ => None,
    };
    let after = generation();
    if before != after {
        return Err(CollectError::Raced { before, after });
    }
    Ok(Collected { tee, outblob, auxblob })
}

impl Collected {
    /// The evidence to verify: a TDX quote with `collateral_json` (required), an SEV-SNP report
    /// with `vcek_der` or else the VCEK from the certificate table.
    pub fn into_evidence(
        self,
        collateral_json: Option<&str>,
        vcek_der: Option<Vec<u8>>,
    ) -> Result<Evidence, CollectError> {
        match self.tee {
            TeeType::Tdx => {
                let json = collateral_json.ok_or(CollectError::NeedsCollateral)?;
                Ok(Evidence::dcap(self.outblob, json)?)
            }
            TeeType::SevSnp => {
                let vcek = match vcek_der {
                    Some(v) => v,
                    None => self.auxblob.as_deref().and_then(vcek_from_cert_table).ok_or(CollectError::NeedsVcek)?,
                };
                Ok(Evidence::SevSnp { report: self.outblob, vcek_der: vcek })
            }
            other => Err(CollectError::UnknownProvider(format!("{other:?}"))),
        }
    }
}

/// The VCEK in an SEV-SNP certificate table: entries of (GUID, offset, length), little-endian
/// `u32`s, offsets from the table's start, ended by an all-zero entry. The GUID is matched in its
/// RFC byte order and in the mixed-endian order some hosts write.
pub fn vcek_from_cert_table(table: &[u8]) -> Option<Vec<u8>> {
    let mixed = {
        let mut g = VCEK_GUID;
        g[..4].reverse();
        g[4..6].reverse();
        g[6..8].reverse();
        g
    };
    for entry in table.chunks_exact(24) {
        let guid: [u8; 16] = entry[..16].try_into().ok()?;
        if guid == [0; 16] {
            return None;
        }
        if guid == VCEK_GUID || guid == mixed {
            let offset = u32::from_le_bytes(entry[16..20].try_into().ok()?) as usize;
            let length = u32::from_le_bytes(entry[20..24].try_into().ok()?) as usize;
            return table.get(offset..offset.checked_add(length)?).map(<[u8]>::to_vec);
        }
    }
    None
}

/// An SEV-SNP certificate table (GHCB layout) holding only `vcek`: what a host that supplies
/// certificates puts in `auxblob`. For tools and tests that stage evidence.
pub fn vcek_cert_table(vcek: &[u8]) -> Vec<u8> {
    let mut table = VCEK_GUID.to_vec();
    table.extend_from_slice(&48u32.to_le_bytes());
    table.extend_from_slice(&u32::try_from(vcek.len()).unwrap_or(u32::MAX).to_le_bytes());
    table.extend_from_slice(&[0; 24]);
    table.extend_from_slice(vcek);
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[([u8; 16], &[u8])]) -> Vec<u8> {
        let header = 24 * (entries.len() + 1);
        let mut head = Vec::new();
        let mut body = Vec::new();
        for (guid, data) in entries {
            head.extend_from_slice(guid);
            head.extend_from_slice(&((header + body.len()) as u32).to_le_bytes());
            head.extend_from_slice(&(data.len() as u32).to_le_bytes());
            body.extend_from_slice(data);
        }
        head.extend_from_slice(&[0; 24]);
        head.extend(body);
        head
    }

    #[test]
    fn the_vcek_is_found_by_guid_in_either_byte_order_and_bad_tables_yield_none() {
        let ark = [0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52, 0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae];
        let t = table(&[(ark, b"ark-der"), (VCEK_GUID, b"vcek-der")]);
        assert_eq!(vcek_from_cert_table(&t).as_deref(), Some(&b"vcek-der"[..]));
        let mut mixed = VCEK_GUID;
        mixed[..4].reverse();
        mixed[4..6].reverse();
        mixed[6..8].reverse();
        assert_eq!(vcek_from_cert_table(&table(&[(mixed, b"v2")])).as_deref(), Some(&b"v2"[..]));
        assert_eq!(vcek_from_cert_table(&table(&[(ark, b"ark-der")])), None, "no VCEK entry");
        // An entry pointing past the table's end.
        let mut t = table(&[(VCEK_GUID, b"vcek-der")]);
        t.truncate(t.len() - 3);
        assert_eq!(vcek_from_cert_table(&t), None);
        assert_eq!(vcek_from_cert_table(&[]), None);
        assert_eq!(vcek_from_cert_table(&vcek_cert_table(b"staged")).as_deref(), Some(&b"staged"[..]));
    }
}

/// Evidence collected on this machine, verified, and bound to a worker.
#[derive(Debug, Clone)]
pub struct Attested {
    /// What the TEE produced.
    pub evidence: Evidence,
    /// Its verification.
    pub attestation: crate::VerifiedAttestation,
    /// The fresh nonce bound into the report data.
    pub nonce: [u8; 32],
    /// What the chain records of it (see [`onchain_digests`]).
    pub measurement_hash: starknet_types_core::felt::Felt,
    /// What the chain records of it (see [`onchain_digests`]).
    pub quote_hash: starknet_types_core::felt::Felt,
}

/// Why a worker could not attest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// Nothing to verify.
    #[error(transparent)]
    Collect(#[from] CollectError),
    /// The evidence does not verify.
    #[error(transparent)]
    Verify(TeeError),
    /// It verifies, but its report data is not this worker's binding (a replayed or foreign quote).
    #[error("the {tee:?} evidence verifies but its report data is not the binding of this worker's key and nonce")]
    NotBound {
        /// The TEE.
        tee: TeeType,
    },
    /// Another TEE than the one asked for.
    #[error("asked for {wanted:?} evidence, but this machine's TEE is {found:?}")]
    WrongTee {
        /// Asked for.
        wanted: TeeType,
        /// Found.
        found: TeeType,
    },
}

/// Collects evidence through configfs-tsm at `root` whose report data binds `worker_key` and
/// `nonce` ([`crate::report_data_binding`]), verifies it at `now_secs`, and checks the binding;
/// `wanted` (if any) must be the TEE found.
pub fn attest_worker(
    root: &Path,
    worker_key: starknet_types_core::felt::Felt,
    nonce: [u8; 32],
    wanted: Option<TeeType>,
    collateral_json: Option<&str>,
    vcek_der: Option<Vec<u8>>,
    now_secs: u64,
) -> Result<Attested, AttestError> {
    let binding = crate::report_data_binding(worker_key, &nonce);
    let collected = collect_configfs(root, &binding)?;
    if let Some(wanted) = wanted
        && wanted != collected.tee
    {
        return Err(AttestError::WrongTee { wanted, found: collected.tee });
    }
    let evidence = collected.into_evidence(collateral_json, vcek_der)?;
    let attestation = crate::verify_evidence(&evidence, now_secs).map_err(AttestError::Verify)?;
    if attestation.report_data() != binding {
        return Err(AttestError::NotBound { tee: attestation.tee() });
    }
    let (measurement_hash, quote_hash) = onchain_digests(&evidence, &attestation);
    Ok(Attested { evidence, attestation, nonce, measurement_hash, quote_hash })
}

/// What `register_worker` records of verified evidence: sha256 of the measurement and of the
/// quote or report, each with its top five bits cleared (a felt below 2^251).
pub fn onchain_digests(
    evidence: &Evidence,
    attestation: &crate::VerifiedAttestation,
) -> (starknet_types_core::felt::Felt, starknet_types_core::felt::Felt) {
    use sha2::{Digest, Sha256};
    let felt = |bytes: &[u8]| {
        let mut h: [u8; 32] = Sha256::digest(bytes).into();
        h[0] &= 0x07;
        starknet_types_core::felt::Felt::from_bytes_be(&h)
    };
    let quote: &[u8] = match evidence {
        Evidence::Dcap { quote, .. } => quote,
        Evidence::SevSnp { report, .. } => report,
        Evidence::None => &[],
    };
    (felt(attestation.measurement()), felt(quote))
}
