//! Build facts for `q2z --version`: the commit and the build date (`unknown` outside a git
//! checkout; `SOURCE_DATE_EPOCH` is honoured for reproducible builds).

use std::process::Command;

fn run(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    let commit =
        run("git", &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let date = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(epoch) => run("date", &["-u", "-d", &format!("@{epoch}"), "+%Y-%m-%d"]),
        Err(_) => run("date", &["-u", "+%Y-%m-%d"]),
    }
    .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=Q2Z_COMMIT={commit}");
    println!("cargo:rustc-env=Q2Z_BUILD_DATE={date}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
}
