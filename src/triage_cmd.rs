//! `pushrace triage LOGFILE [--image DIR] [--variant V] [--out DIR] [--json]`.
//!
//! Exit status: 0 the failure was classified into a known family (whether or not the model
//! reproduced it; the output says), 1 no known family matches (the facts are printed), 2 bad
//! input (unreadable log, invalid OCI layout, unknown variant, unwritable --out).

use pushrace_scenarios::triage::{self, Input};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct TriageArgs {
    /// The CI log of the failing push (`-` for stdin).
    pub logfile: String,
    /// The image as an OCI image layout directory (oci-layout, index.json, blobs/): names the
    /// missing object exactly and builds the scenario from the real image.
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// The push variant to reproduce with (v0.17, v0.18, v2.0.4, v2.0.5, lease-held); default:
    /// from the nerdctl version in the log, else v2.0.5.
    #[arg(long)]
    pub variant: Option<String>,
    /// Where to write the scenario file (default: the current directory).
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Replace an existing scenario file in --out (a symlink there is replaced, not followed).
    #[arg(long)]
    pub force: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: TriageArgs) -> ExitCode {
    let bytes = match crate::read_bytes(&a.logfile, pushrace_models::limits::MAX_LOG_BYTES) {
        Ok(b) => b,
        Err(code) => return code,
    };
    // CI logs are not always UTF-8 (truncated multi-byte sequences): read what is there.
    let text = String::from_utf8_lossy(&bytes);
    let variant = match a.variant.as_deref().map(str::parse) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            eprintln!("pushrace: --variant: {e}");
            return ExitCode::from(2);
        }
    };
    let input = Input {
        log_name: &a.logfile,
        log_text: &text,
        image: a.image.as_deref(),
        variant,
        out_dir: &a.out,
        force: a.force,
    };
    let mut t = match triage::triage(&input) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("pushrace: {e}");
            return ExitCode::from(2);
        }
    };
    if a.json {
        t.run_lease_held();
        println!(
            "{}",
            serde_json::to_string_pretty(&t.to_json()).expect("JSON")
        );
    } else {
        // The schedule first, then the (possibly longer) lease-held exploration.
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "{}{}", t.header_text(), t.reproduction_text());
        let _ = out.flush();
        t.run_lease_held();
        let _ = write!(out, "{}", t.lease_held_text());
    }
    ExitCode::from(t.exit_code())
}
