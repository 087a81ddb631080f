//! Web3 Secret Storage v3 keystores that starkli (eth-keystore) reads and writes.
//!
//! The standard part holds the 32-byte big-endian Stark private key: scrypt → 32-byte derived
//! key `dk`; AES-128-CTR with `dk[0..16]` and a random 16-byte IV; `mac = keccak256(dk[16..32] ‖
//! ciphertext)`. The scrypt parameters travel in the file, so files with a stronger cost than
//! starkli's default stay readable by starkli.
//!
//! Sage adds one object, `"sage"`, which other tools ignore:
//!
//! ```json
//! "sage": {
//!   "version": 1,
//!   "derivation": "braavos",            // or "argent-x", "eip-2645", null for an imported key
//!   "account_index": 0,
//!   "public_key": "0x…",                // Stark public key
//!   "address": "0x…",                   // OpenZeppelin account address (salt = public key)
//!   "elgamal_public_key": ["0x…", "0x…"],
//!   "elgamal": { "cipher": "aes-128-ctr", "cipherparams": { "iv": "…" }, "ciphertext": "…", "mac": "…" }
//! }
//! ```
//!
//! `sage.elgamal` encrypts the 32-byte ElGamal secret exactly like the standard part, under the
//! same derived key `dk` but its own random IV and MAC, so opening the file runs scrypt once.
//! Changing the password re-encrypts both; it never changes a key.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use aes::Aes128;
use ctr::Ctr128BE;
use ctr::cipher::{KeyIvInit, StreamCipher};
use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};
use starknet_types_core::felt::Felt;
use zeroize::Zeroizing;

use crate::derive::Derivation;
use crate::error::{KeystoreError, RngError};
use sage_keys::StarkKey;

/// scrypt cost parameters (`N = 2^log_n`, memory `128 · r · N` bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScryptParams {
    /// `log2(N)`.
    pub log_n: u8,
    /// Block size.
    pub r: u32,
    /// Parallelism.
    pub p: u32,
}

impl ScryptParams {
    /// Sage's default: geth's "standard" cost, `N = 2^18, r = 8, p = 1` (256 MiB, about a second).
    pub const DEFAULT: Self = Self { log_n: 18, r: 8, p: 1 };
    /// starkli's (eth-keystore's) cost, `N = 2^13, r = 8, p = 1` (8 MiB): weaker, but
    /// interactive-fast.
    pub const STARKLI: Self = Self { log_n: 13, r: 8, p: 1 };
    /// Largest `log_n` accepted when reading a file (`2^22`, 4 GiB with `r = 8`), so a hostile
    /// file cannot demand unbounded memory.
    pub const MAX_LOG_N: u8 = 22;

    /// A cheap cost for tests only (`N = 2^log_n`, r = 8, p = 1). Never use for real keys.
    pub const fn insecure_for_tests(log_n: u8) -> Self {
        Self { log_n, r: 8, p: 1 }
    }

    fn to_scrypt(self) -> Result<scrypt::Params, KeystoreError> {
        if self.log_n == 0 || self.log_n > Self::MAX_LOG_N {
            return Err(KeystoreError::BadScryptParams("log_n must be in 1..=22"));
        }
        if !(1..=32).contains(&self.r) || !(1..=16).contains(&self.p) {
            return Err(KeystoreError::BadScryptParams("r must be in 1..=32 and p in 1..=16"));
        }
        // scrypt needs 128·r·N bytes: refuse more than 4 GiB, whatever a file asks for.
        if (128u64 * u64::from(self.r)) << self.log_n > 1u64 << 32 {
            return Err(KeystoreError::BadScryptParams("scrypt would need more than 4 GiB of memory"));
        }
        scrypt::Params::new(self.log_n, self.r, self.p)
            .map_err(|_| KeystoreError::BadScryptParams("rejected by scrypt"))
    }
}

impl Default for ScryptParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Options for writing a keystore.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeystoreOptions {
    /// scrypt cost.
    pub scrypt: ScryptParams,
    /// Replace an existing file.
    pub force: bool,
}

/// Non-secret facts about how the keys were made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalletMetadata {
    /// The Stark key's derivation scheme; `None` for an imported raw key.
    pub derivation: Option<Derivation>,
    /// The account index used on both paths.
    pub account_index: u32,
}

/// What a keystore holds once decrypted.
#[derive(Debug)]
pub struct DecryptedKeystore {
    /// The Stark account key.
    pub stark: StarkKey,
    /// The ElGamal key, present in keystores written by Sage.
    pub elgamal: Option<obelysk_elgamal::SecretKey>,
    /// Sage metadata, present in keystores written by Sage.
    pub metadata: Option<WalletMetadata>,
}

mod hexbytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s.trim_start_matches("0x")).map_err(serde::de::Error::custom)
    }
}

#[derive(Serialize, Deserialize)]
struct CipherParams {
    #[serde(with = "hexbytes")]
    iv: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct KdfParams {
    dklen: u32,
    n: u64,
    p: u32,
    r: u32,
    #[serde(with = "hexbytes")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct CryptoJson {
    cipher: String,
    cipherparams: CipherParams,
    #[serde(with = "hexbytes")]
    ciphertext: Vec<u8>,
    kdf: String,
    kdfparams: serde_json::Value,
    #[serde(with = "hexbytes")]
    mac: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct SealedJson {
    cipher: String,
    cipherparams: CipherParams,
    #[serde(with = "hexbytes")]
    ciphertext: Vec<u8>,
    #[serde(with = "hexbytes")]
    mac: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct SageSection {
    version: u32,
    derivation: Option<Derivation>,
    account_index: u32,
    public_key: Felt,
    address: Felt,
    elgamal_public_key: obelysk_elgamal::PublicKey,
    elgamal: SealedJson,
}

#[derive(Serialize, Deserialize)]
struct KeystoreJson {
    crypto: CryptoJson,
    id: String,
    version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sage: Option<SageSection>,
}

const CIPHER: &str = "aes-128-ctr";

fn random<const N: usize>() -> Result<[u8; N], RngError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(RngError)?;
    Ok(b)
}

fn uuid_v4() -> Result<String, RngError> {
    let mut b: [u8; 16] = random()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}

fn derive_key(password: &str, salt: &[u8], params: &scrypt::Params) -> Zeroizing<[u8; 32]> {
    let mut dk = Zeroizing::new([0u8; 32]);
    // A 32-byte output is always a valid scrypt output length.
    if scrypt::scrypt(password.as_bytes(), salt, params, dk.as_mut()).is_err() {
        unreachable!("32 is a valid scrypt output length");
    }
    dk
}

fn mac(dk: &[u8; 32], ciphertext: &[u8]) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update(&dk[16..32]);
    h.update(ciphertext);
    h.finalize().into()
}

fn ctr_apply(dk: &[u8; 32], iv: &[u8], buf: &mut [u8]) -> Result<(), KeystoreError> {
    let mut c = Ctr128BE::<Aes128>::new_from_slices(&dk[..16], iv)
        .map_err(|_| KeystoreError::Unsupported(format!("IV must be 16 bytes, got {}", iv.len())))?;
    c.apply_keystream(buf);
    Ok(())
}

fn seal(dk: &[u8; 32], secret: &[u8; 32]) -> Result<SealedJson, KeystoreError> {
    let iv: [u8; 16] = random()?;
    let mut ct = secret.to_vec();
    ctr_apply(dk, &iv, &mut ct)?;
    Ok(SealedJson {
        cipher: CIPHER.into(),
        cipherparams: CipherParams { iv: iv.to_vec() },
        mac: mac(dk, &ct).to_vec(),
        ciphertext: ct,
    })
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn open(dk: &[u8; 32], cipher: &str, iv: &[u8], ct: &[u8], tag: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeystoreError> {
    if cipher != CIPHER {
        return Err(KeystoreError::Unsupported(format!("cipher {cipher:?}")));
    }
    if !ct_eq(&mac(dk, ct), tag) {
        return Err(KeystoreError::WrongPassword);
    }
    let mut pt = Zeroizing::new(ct.to_vec());
    ctr_apply(dk, iv, &mut pt)?;
    Ok(pt)
}

/// Encrypts keys into keystore JSON.
pub fn encrypt(
    stark: &StarkKey,
    elgamal: Option<(&obelysk_elgamal::SecretKey, WalletMetadata)>,
    password: &str,
    params: ScryptParams,
) -> Result<String, KeystoreError> {
    let sp = params.to_scrypt()?;
    let salt: [u8; 32] = random()?;
    let dk = derive_key(password, &salt, &sp);
    let secret = Zeroizing::new(stark.expose_secret().to_bytes_be());
    let main = seal(&dk, &secret)?;
    let kdfparams = KdfParams { dklen: 32, n: 1u64 << params.log_n, p: params.p, r: params.r, salt: salt.to_vec() };
    let sage = match elgamal {
        None => None,
        Some((sk, meta)) => {
            let esecret = Zeroizing::new(sk.expose_scalar().to_be_bytes());
            Some(SageSection {
                version: 1,
                derivation: meta.derivation,
                account_index: meta.account_index,
                public_key: stark.public_key(),
                address: sage_keys::oz_account_address(stark.public_key(), stark.public_key()),
                elgamal_public_key: sk.public_key(),
                elgamal: seal(&dk, &esecret)?,
            })
        }
    };
    let json = KeystoreJson {
        crypto: CryptoJson {
            cipher: main.cipher,
            cipherparams: main.cipherparams,
            ciphertext: main.ciphertext,
            kdf: "scrypt".into(),
            kdfparams: serde_json::to_value(kdfparams).map_err(|e| KeystoreError::Malformed(e.to_string()))?,
            mac: main.mac,
        },
        id: uuid_v4()?,
        version: 3,
        sage,
    };
    serde_json::to_string_pretty(&json).map_err(|e| KeystoreError::Malformed(e.to_string()))
}

fn key32(bytes: &[u8], what: &'static str) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    let mut out = Zeroizing::new([0u8; 32]);
    if bytes.len() > 32 {
        return Err(KeystoreError::InvalidKey(what));
    }
    // Left-pad: some tools store keys without leading zero bytes.
    out[32 - bytes.len()..].copy_from_slice(bytes);
    Ok(out)
}

/// Decrypts keystore JSON. A wrong password is [`KeystoreError::WrongPassword`].
pub fn decrypt(json: &str, password: &str) -> Result<DecryptedKeystore, KeystoreError> {
    let ks: KeystoreJson = serde_json::from_str(json).map_err(|e| KeystoreError::Malformed(e.to_string()))?;
    if ks.version != 3 {
        return Err(KeystoreError::Unsupported(format!("keystore version {}", ks.version)));
    }
    if ks.crypto.kdf != "scrypt" {
        return Err(KeystoreError::Unsupported(format!("kdf {:?} (only scrypt)", ks.crypto.kdf)));
    }
    let kp: KdfParams =
        serde_json::from_value(ks.crypto.kdfparams).map_err(|e| KeystoreError::Malformed(format!("kdfparams: {e}")))?;
    if kp.dklen != 32 {
        return Err(KeystoreError::Unsupported(format!("dklen {}", kp.dklen)));
    }
    if !kp.n.is_power_of_two() || kp.n < 2 {
        return Err(KeystoreError::Unsupported(format!("scrypt n = {} is not a power of two", kp.n)));
    }
    let log_n = u8::try_from(kp.n.trailing_zeros()).map_err(|_| KeystoreError::Unsupported("scrypt n".into()))?;
    let sp = ScryptParams { log_n, r: kp.r, p: kp.p }
        .to_scrypt()
        .map_err(|_| KeystoreError::Unsupported(format!("scrypt n = {}, r = {}, p = {}", kp.n, kp.r, kp.p)))?;
    let dk = derive_key(password, &kp.salt, &sp);
    let secret = open(&dk, &ks.crypto.cipher, &ks.crypto.cipherparams.iv, &ks.crypto.ciphertext, &ks.crypto.mac)?;
    let secret = key32(&secret, "Stark key longer than 32 bytes")?;
    let stark = StarkKey::from_secret(Felt::from_bytes_be(&secret))
        .map_err(|_| KeystoreError::InvalidKey("Stark key not in [1, n)"))?;
    let (elgamal, metadata) = match ks.sage {
        None => (None, None),
        Some(s) => {
            let e = &s.elgamal;
            // The main MAC matched, so a mismatch here means the file was altered.
            let esecret = open(&dk, &e.cipher, &e.cipherparams.iv, &e.ciphertext, &e.mac).map_err(|err| match err {
                KeystoreError::WrongPassword => KeystoreError::Malformed("sage.elgamal MAC does not match".into()),
                other => other,
            })?;
            let esecret = key32(&esecret, "ElGamal key longer than 32 bytes")?;
            let sk = obelysk_elgamal::SecretKey::from_felt(&Felt::from_bytes_be(&esecret))
                .map_err(|_| KeystoreError::InvalidKey("ElGamal key not in [1, n)"))?;
            if sk.public_key() != s.elgamal_public_key {
                return Err(KeystoreError::InvalidKey("ElGamal key does not match sage.elgamal_public_key"));
            }
            if stark.public_key() != s.public_key {
                return Err(KeystoreError::InvalidKey("Stark key does not match sage.public_key"));
            }
            (Some(sk), Some(WalletMetadata { derivation: s.derivation, account_index: s.account_index }))
        }
    };
    Ok(DecryptedKeystore { stark, elgamal, metadata })
}

/// Writes `data` to `path` atomically with mode 0600: a temporary file in the same directory
/// is written and synced, then linked into place (refusing to replace an existing file unless
/// `force`; the check and the link are one atomic step) or renamed over it (`force`).
pub fn write_atomic(path: &Path, data: &[u8], force: bool) -> Result<(), KeystoreError> {
    let io = |source| KeystoreError::Io { path: path.to_path_buf(), source };
    if !force && path.exists() {
        return Err(KeystoreError::AlreadyExists(path.to_path_buf()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "keystore".into());
    let nonce: [u8; 6] = random()?;
    let tmp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), hex::encode(nonce)));
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let result = (|| -> Result<(), KeystoreError> {
        let mut f = opts.open(&tmp).map_err(io)?;
        f.write_all(data).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        if force {
            fs::rename(&tmp, path).map_err(io)?;
        } else {
            match fs::hard_link(&tmp, path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(KeystoreError::AlreadyExists(path.to_path_buf()));
                }
                // Filesystems without hard links: check-then-rename (not atomic against a racing writer).
                Err(_) => {
                    if path.exists() {
                        return Err(KeystoreError::AlreadyExists(path.to_path_buf()));
                    }
                    fs::rename(&tmp, path).map_err(io)?;
                }
            }
        }
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    let _ = fs::remove_file(&tmp);
    result
}

/// Reads and decrypts a keystore file.
pub fn read(path: &Path, password: &str) -> Result<DecryptedKeystore, KeystoreError> {
    let json = fs::read_to_string(path).map_err(|source| KeystoreError::Io { path: path.to_path_buf(), source })?;
    decrypt(&json, password)
}

/// Reads only the Stark key from any v3 keystore (e.g. one created by `starkli signer keystore`).
pub fn read_stark_key(path: &Path, password: &str) -> Result<StarkKey, KeystoreError> {
    read(path, password).map(|d| d.stark)
}
