//! `sage-worker`: the worker operator's binary. See `sage-worker --help` and docs/OPERATORS.md.

use std::{
    io::{IsTerminal, Write},
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use sage_wallet::{Derivation, KeystoreOptions, Mnemonic, ScryptParams, Wallet, WalletSummary};
use zeroize::Zeroizing;

/// Sage worker: run a verifiable GPU worker on Starknet.
///
/// Secrets never come from the command line: the keystore password is read from
/// --password-file, the SAGE_KEYSTORE_PASSWORD environment variable, or an interactive prompt.
#[derive(Parser)]
#[command(name = "sage-worker", version, about, long_about)]
struct Cli {
    /// Keystore file (Web3 Secret Storage v3, readable by starkli).
    #[arg(long, global = true, env = "SAGE_KEYSTORE", default_value_os_t = default_keystore())]
    keystore: PathBuf,
    /// Read the keystore password from this file (first line) instead of prompting.
    #[arg(long, global = true, env = "SAGE_PASSWORD_FILE")]
    password_file: Option<PathBuf>,
    /// Machine-readable output on stdout.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum DerivationArg {
    /// Braavos: m/44'/9004'/0'/0/i (default).
    Braavos,
    /// Argent X: via the Ethereum key m/44'/60'/0'/0/0.
    ArgentX,
    /// EIP-2645 (Ledger, legacy Argent X).
    Eip2645,
}

impl From<DerivationArg> for Derivation {
    fn from(d: DerivationArg) -> Self {
        match d {
            DerivationArg::Braavos => Derivation::Braavos,
            DerivationArg::ArgentX => Derivation::ArgentX,
            DerivationArg::Eip2645 => Derivation::Eip2645,
        }
    }
}

#[derive(clap::Args)]
struct KeyArgs {
    /// How the Stark key is derived from the mnemonic.
    #[arg(long, value_enum, default_value = "braavos")]
    derivation: DerivationArg,
    /// Account index on the derivation path.
    #[arg(long, default_value_t = 0)]
    account_index: u32,
    /// File holding an optional BIP-39 passphrase (not the keystore password).
    #[arg(long)]
    bip39_passphrase_file: Option<PathBuf>,
    /// scrypt cost log2(N) for the keystore (default 18: ~256 MiB, about a second; starkli uses 13).
    #[arg(long, default_value_t = ScryptParams::DEFAULT.log_n, value_parser = clap::value_parser!(u8).range(10..=22))]
    scrypt_log_n: u8,
    /// Replace an existing keystore.
    #[arg(long)]
    force: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a 24-word mnemonic, derive the Stark and ElGamal keys, write the keystore.
    ///
    /// The mnemonic is shown once on the terminal (stderr) unless --mnemonic-out is given, in
    /// which case it is written to that file (mode 0600) and not shown.
    CreateWallet {
        #[command(flatten)]
        keys: KeyArgs,
        /// Write the mnemonic to this new file instead of showing it.
        #[arg(long)]
        mnemonic_out: Option<PathBuf>,
    },
    /// Restore a wallet from a mnemonic kept in a file.
    ImportWallet {
        #[command(flatten)]
        keys: KeyArgs,
        /// File holding the mnemonic (12–24 words).
        #[arg(long)]
        mnemonic_file: PathBuf,
    },
    /// Print the wallet's account address and public keys.
    Address,
}

fn default_keystore() -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".sage").join("worker").join("keystore.json")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn read_secret_file(path: &Path, what: &str) -> Result<Zeroizing<String>> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {what} from {}", path.display()))?,
    );
    Ok(Zeroizing::new(text.lines().next().unwrap_or_default().to_owned()))
}

/// The keystore password: --password-file, SAGE_KEYSTORE_PASSWORD, or a prompt (twice when
/// creating).
fn password(cli: &Cli, confirm: bool) -> Result<Zeroizing<String>> {
    let pw = if let Some(file) = &cli.password_file {
        read_secret_file(file, "the keystore password")?
    } else if let Ok(pw) = std::env::var("SAGE_KEYSTORE_PASSWORD") {
        Zeroizing::new(pw)
    } else if std::io::stdin().is_terminal() {
        let pw = Zeroizing::new(rpassword::prompt_password("Keystore password: ")?);
        if confirm {
            let again = Zeroizing::new(rpassword::prompt_password("Repeat password: ")?);
            if *again != *pw {
                bail!("the passwords do not match");
            }
        }
        pw
    } else {
        bail!("no keystore password: use --password-file, SAGE_KEYSTORE_PASSWORD, or run on a terminal");
    };
    if pw.is_empty() {
        bail!("the keystore password is empty");
    }
    Ok(pw)
}

fn print_summary(cli: &Cli, summary: &WalletSummary, verb: &str) -> Result<()> {
    if cli.json {
        println!("{}", serde_json::to_string_pretty(summary)?);
    } else {
        println!("{verb}");
        println!("  address            {}", summary.address);
        println!("  public key         {}", summary.public_key);
        println!("  ElGamal public key ({}, {})", summary.elgamal_public_key[0], summary.elgamal_public_key[1]);
        if let Some(d) = &summary.derivation {
            println!("  derivation         {d}, account index {}", summary.account_index);
        }
        if let Some(k) = &summary.keystore {
            println!("  keystore           {k}");
        }
    }
    Ok(())
}

fn save(cli: &Cli, keys: &KeyArgs, mnemonic: &Mnemonic) -> Result<Wallet> {
    if cli.keystore.exists() && !keys.force {
        bail!("{} already exists (use --force to replace it)", cli.keystore.display());
    }
    let passphrase = match &keys.bip39_passphrase_file {
        Some(p) => read_secret_file(p, "the BIP-39 passphrase")?,
        None => Zeroizing::new(String::new()),
    };
    let wallet = Wallet::from_mnemonic(mnemonic, &passphrase, keys.derivation.into(), keys.account_index)
        .context("deriving keys from the mnemonic")?;
    let password = password(cli, true)?;
    let options = KeystoreOptions {
        scrypt: ScryptParams { log_n: keys.scrypt_log_n, ..ScryptParams::DEFAULT },
        force: keys.force,
    };
    wallet.save(&cli.keystore, &password, options).with_context(|| format!("writing {}", cli.keystore.display()))?;
    Ok(wallet)
}

fn write_new_private(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::CreateWallet { keys, mnemonic_out } => {
            let mnemonic = Mnemonic::generate().context("reading OS randomness")?;
            let wallet = save(&cli, keys, &mnemonic)?;
            match mnemonic_out {
                Some(path) => {
                    write_new_private(path, &mnemonic.phrase())?;
                    eprintln!("mnemonic written to {} (mode 0600): keep it offline", path.display());
                }
                None => {
                    eprintln!("\nYour 24-word mnemonic (shown once; write it down, it restores every key):\n");
                    eprintln!("  {}\n", mnemonic.phrase().as_str());
                }
            }
            print_summary(&cli, &wallet.summary(Some(&cli.keystore)), "wallet created")
        }
        Command::ImportWallet { keys, mnemonic_file } => {
            let phrase = Zeroizing::new(
                std::fs::read_to_string(mnemonic_file)
                    .with_context(|| format!("reading the mnemonic from {}", mnemonic_file.display()))?,
            );
            let mnemonic = Mnemonic::parse(&phrase).context("invalid mnemonic")?;
            let wallet = save(&cli, keys, &mnemonic)?;
            print_summary(&cli, &wallet.summary(Some(&cli.keystore)), "wallet imported")
        }
        Command::Address => {
            let password = password(&cli, false)?;
            let wallet = Wallet::open(&cli.keystore, &password)
                .with_context(|| format!("opening keystore {}", cli.keystore.display()))?;
            print_summary(&cli, &wallet.summary(Some(&cli.keystore)), "wallet")
        }
    }
}
