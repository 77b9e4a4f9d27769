//! `lienthong keygen` and `lienthong audit …`: make the evidence log's signing key, check the whole log,
//! export one message's evidence as a bundle, and check a bundle offline (docs/evidence.md).

use clap::Subcommand;
use lienthong_bus::config::Config;
use lienthong_bus::evidence::{self, bundle};
use lienthong_bus::state::StateStore;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the whole evidence log: every record's hash and link, every signed head. Exit 0 when intact,
    /// 1 naming the first broken record.
    Verify {
        #[arg(long, short, env = "LIENTHONG_CONFIG")]
        config: PathBuf,
    },
    /// Write one message's evidence as a self-contained JSON bundle, checkable offline with `verify-bundle`.
    Export {
        #[arg(long, short, env = "LIENTHONG_CONFIG")]
        config: PathBuf,
        /// The message id.
        #[arg(long)]
        id: String,
        /// The message's sender (agency code): ids are chosen by agencies, so two may share one.
        #[arg(long)]
        from: Option<String>,
        /// The bundle file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a bundle offline (no config, no database). Exit 0 when valid, 1 naming the problem.
    VerifyBundle {
        /// The bundle file.
        file: PathBuf,
        /// PEM public key the bundle must be signed with (default: the key the bundle carries).
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("{msg}");
    ExitCode::FAILURE
}

/// `lienthong keygen --out FILE`.
pub fn keygen(out: &Path) -> ExitCode {
    match evidence::keygen(out) {
        Ok(public) => {
            eprintln!(
                "wrote a new Ed25519 private key to {}; its public key:",
                out.display()
            );
            print!("{public}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

pub async fn audit(command: AuditCommand) -> ExitCode {
    match command {
        AuditCommand::Verify { config } => verify(&config).await,
        AuditCommand::Export {
            config,
            id,
            from,
            out,
        } => export(&config, &id, from.as_deref(), &out).await,
        AuditCommand::VerifyBundle { file, public_key } => {
            verify_bundle(&file, public_key.as_deref())
        }
    }
}

/// The config, its evidence key and its state store.
async fn open(config: &Path) -> Result<(evidence::Signer, StateStore), ExitCode> {
    let c = Config::load(config).map_err(fail)?;
    let Some(e) = &c.evidence else {
        return Err(fail(format!(
            "{}: no [evidence] section: this bus keeps no evidence log",
            config.display()
        )));
    };
    let signer = evidence::Signer::load(&c.resolve(&e.signing_key))
        .map_err(|m| fail(format!("evidence.signing_key: {m}")))?;
    let state = StateStore::connect(&c.state_url(), &c.bus.namespace)
        .await
        .map_err(|e| fail(format!("state store: {e}")))?;
    Ok((signer, state))
}

async fn verify(config: &Path) -> ExitCode {
    let (signer, state) = match open(config).await {
        Ok(x) => x,
        Err(code) => return code,
    };
    match state.evidence_verify(signer.verifying_key()).await {
        Ok(Ok(intact)) => {
            println!(
                "{} records, chain intact, {} signatures valid",
                intact.records, intact.signatures
            );
            ExitCode::SUCCESS
        }
        Ok(Err(broken)) => fail(format!("evidence log broken at {broken}")),
        Err(e) => fail(format!("state store: {e}")),
    }
}

async fn export(config: &Path, id: &str, from: Option<&str>, out: &Path) -> ExitCode {
    let (signer, state) = match open(config).await {
        Ok(x) => x,
        Err(code) => return code,
    };
    let records = match state.evidence_of(id, from).await {
        Ok(r) => r,
        Err(e) => return fail(format!("state store: {e}")),
    };
    let mut senders: Vec<&str> = records.iter().map(|r| r.from.as_str()).collect();
    senders.dedup();
    senders.sort_unstable();
    senders.dedup();
    let sender = match senders.as_slice() {
        [] => {
            return fail(format!(
                "no evidence of message `{id}`{}",
                from.map(|f| format!(" from {f}")).unwrap_or_default()
            ));
        }
        [one] => one.to_string(),
        several => {
            return fail(format!(
                "id `{id}` names messages of several senders ({}); say whose with --from",
                several.join(", ")
            ));
        }
    };
    let bundle = match state.evidence_bundle(&sender, id, &signer.public_pem).await {
        Ok(Some(b)) => b,
        Ok(None) => return fail(format!("no evidence of message `{id}` from {sender}")),
        Err(e) => return fail(format!("state store: {e}")),
    };
    if let Err(e) = std::fs::write(out, bundle.to_bytes()) {
        return fail(format!("cannot write {}: {e}", out.display()));
    }
    println!(
        "wrote {} records of message {id} from {sender} to {}",
        bundle.records.len(),
        out.display()
    );
    ExitCode::SUCCESS
}

fn verify_bundle(file: &Path, public_key: Option<&Path>) -> ExitCode {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => return fail(format!("cannot read {}: {e}", file.display())),
    };
    let key = match public_key.map(std::fs::read_to_string).transpose() {
        Ok(k) => k,
        Err(e) => return fail(format!("cannot read the public key: {e}")),
    };
    match bundle::verify(&bytes, key.as_deref()) {
        Ok(n) => {
            println!(
                "{}: {n} records, each linked to a valid signed head",
                file.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("{}: {e}", file.display())),
    }
}
