//! `path`: a directory that must exist and be writable (state, uploads, index folders).
//!
//! Writability is proven, not guessed from permission bits: the probe creates and deletes a
//! small file. With `create = true` the check carries a fixer that creates the directory.

use super::BuildContext;
use crate::health::{CheckContext, Fixer, OutageClass, Outcome, Probe, fixer_fn};
use crate::{Error, Result};
use async_trait::async_trait;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The parameters of a `path` check.
///
/// ```toml
/// [[checks]]
/// name = "uploads"
/// kind = "path"
/// path = "data/uploads"
/// create = true
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The directory; relative to the configuration file.
    pub path: PathBuf,
    /// Offer a fixer (`runward doctor --fix`) that creates the directory with mode 0700.
    #[serde(default)]
    pub create: bool,
}

/// Checks that a directory exists and is writable.
#[derive(Debug, Clone)]
pub struct PathProbe {
    path: PathBuf,
    create: bool,
}

impl PathProbe {
    /// A probe for the directory `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        PathProbe {
            path: path.into(),
            create: false,
        }
    }

    /// Whether [`PathProbe::fixer`] offers to create the directory.
    pub fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    /// Builds the probe from a check table.
    pub fn from_params(params: Params, ctx: &BuildContext) -> Result<Self> {
        if params.path.as_os_str().is_empty() {
            return Err(Error::config(
                "`path` is empty: name the directory to check",
            ));
        }
        Ok(PathProbe::new(ctx.resolve(&params.path)).create(params.create))
    }

    /// The repair that creates the directory (and its parents) with mode 0700, when `create`
    /// is set.
    pub fn fixer(&self) -> Option<Arc<dyn Fixer>> {
        if !self.create {
            return None;
        }
        let path = self.path.clone();
        Some(fixer_fn(
            format!("create directory {}", path.display()),
            move || {
                create_private_dir(&path)?;
                Ok(format!("created directory {}", path.display()))
            },
        ))
    }
}

fn create_private_dir(path: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(path)
        .map_err(|e| Error::io(format!("cannot create directory {}", path.display()), e))
}

/// Checks the directory on the calling thread.
pub(super) fn inspect(path: &Path, create: bool) -> Outcome {
    let hint_missing = if create {
        format!("run `runward doctor --fix` to create {}", path.display())
    } else {
        format!("create the directory {}", path.display())
    };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Outcome::outage(
                OutageClass::Misconfigured,
                format!("{} does not exist", path.display()),
            )
            .with_remediation(hint_missing);
        }
        Err(err) => return Outcome::fail(format!("cannot inspect {}: {err}", path.display())),
    };
    if !meta.is_dir() {
        return Outcome::outage(
            OutageClass::Misconfigured,
            format!("{} exists but is not a directory", path.display()),
        )
        .with_remediation(format!(
            "move the file away from {} and create a directory there",
            path.display()
        ));
    }
    let probe_file = path.join(format!(
        ".runward-write-probe-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe_file)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"ok"));
    match written {
        Ok(()) => {
            if let Err(err) = std::fs::remove_file(&probe_file) {
                return Outcome::warn(format!(
                    "{} is writable, but the probe file could not be removed: {err}",
                    path.display()
                ));
            }
            Outcome::pass()
        }
        Err(err) => {
            let _ = std::fs::remove_file(&probe_file);
            Outcome::fail(format!("{} is not writable: {err}", path.display())).with_remediation(
                format!("give the service's user write access to {}", path.display()),
            )
        }
    }
}

#[async_trait]
impl Probe for PathProbe {
    async fn check(&self, ctx: &CheckContext) -> Outcome {
        let path = self.path.clone();
        let create = self.create;
        let what = format!("checking {}", self.path.display());
        super::blocking_check(ctx, &what, move || inspect(&path, create)).await
    }

    fn is_local(&self) -> bool {
        true
    }

    fn component_type(&self) -> &str {
        "system"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Status;
    use std::time::Duration;

    fn ctx() -> CheckContext {
        CheckContext::new("path", Duration::from_secs(2))
    }

    #[tokio::test]
    async fn writable_directory_passes_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let outcome = PathProbe::new(dir.path()).check(&ctx()).await;
        assert_eq!(outcome.status, Status::Pass, "{outcome:?}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn missing_directory_fails_and_the_fixer_creates_it_private() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("state/nested");
        let probe = PathProbe::new(&target).create(true);
        let outcome = probe.check(&ctx()).await;
        assert_eq!(outcome.status, Status::Fail);
        assert!(outcome.remediation.unwrap().contains("doctor --fix"));
        let fixer = probe.fixer().expect("create = true gives a fixer");
        assert_eq!(
            fixer.describe(),
            format!("create directory {}", target.display())
        );
        fixer.fix().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&target).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        assert_eq!(probe.check(&ctx()).await.status, Status::Pass);
        assert!(PathProbe::new(&target).fixer().is_none());
    }

    #[tokio::test]
    async fn a_file_is_not_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let outcome = PathProbe::new(&file).check(&ctx()).await;
        assert_eq!(outcome.status, Status::Fail);
        assert!(outcome.output.unwrap().contains("not a directory"));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn read_only_directory_fails_unless_root() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
        let outcome = PathProbe::new(&ro).check(&ctx()).await;
        // root bypasses permission bits; everyone else must see the failure.
        if rustix::process::geteuid().is_root() {
            assert_eq!(outcome.status, Status::Pass);
        } else {
            assert_eq!(outcome.status, Status::Fail);
            assert!(outcome.output.unwrap().contains("not writable"));
        }
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
}
