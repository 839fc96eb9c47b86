//! Records the revision the harness is built from (`git rev-parse HEAD`, and whether the tree
//! had changes), so its JSON Lines name the code measured, wherever the binary runs. Rebuilt
//! when a commit, a checkout or a staging changes the repository, and when this package
//! changes; edits elsewhere that are neither committed nor staged may leave `dirty` stale.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok().filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        for f in ["HEAD", "index"] {
            println!("cargo:rerun-if-changed={dir}/{f}");
        }
        if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={dir}/{head}");
        }
    }
    println!("cargo:rerun-if-changed=src");
    let rev = git(&["rev-parse", "HEAD"]).unwrap_or_default();
    let dirty = match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(s) => (!s.is_empty()).to_string(),
        None => String::new(),
    };
    println!("cargo:rustc-env=CORELANE_PERF_GIT_REV={rev}");
    println!("cargo:rustc-env=CORELANE_PERF_GIT_DIRTY={dirty}");
}
