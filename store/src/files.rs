//! Opening the store's files safely: no symlinks, only our own files, never writable by others.
//! One vhost's cache must not be readable or plantable by another (SPEC.md, "File security").

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The three files of a store named `path`.
#[derive(Clone, Debug)]
pub struct Paths {
    pub data: PathBuf,
    pub journal: PathBuf,
    pub lock: PathBuf,
}

impl Paths {
    pub fn new(path: &Path) -> Paths {
        let with = |suffix: &str| {
            let mut s = path.as_os_str().to_owned();
            s.push(suffix);
            PathBuf::from(s)
        };
        Paths {
            data: path.to_path_buf(),
            journal: with(".journal"),
            lock: with(".lock"),
        }
    }
}

/// Opens (and, if allowed, creates with mode 0600) a regular file that must be ours.
/// Returns the file and whether this call created it.
pub fn open_checked(path: &Path, create: bool) -> Result<(File, bool)> {
    let mut opts = OpenOptions::new();
    opts.read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    let (file, created) = match opts.open(path) {
        Ok(f) => (f, false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            match opts.clone().create_new(true).open(path) {
                Ok(f) => (f, true),
                // Another process created it between our two calls: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    (opts.open(path).map_err(|e| open_error(path, e))?, false)
                }
                Err(e) => return Err(open_error(path, e)),
            }
        }
        Err(e) => return Err(open_error(path, e)),
    };
    check_owner_and_mode(path, &file)?;
    if created {
        sync_parent_dir(path)?;
    }
    Ok((file, created))
}

fn open_error(path: &Path, e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        return Error::Permission {
            path: path.into(),
            detail: "it is a symbolic link".into(),
        };
    }
    Error::io(path, "open", e)
}

/// The checks a shared hosting setup needs: the file is a regular file owned by the effective
/// user and neither group nor others may write it.
pub fn check_owner_and_mode(path: &Path, file: &File) -> Result<()> {
    let md = file.metadata().map_err(|e| Error::io(path, "fstat", e))?;
    if !md.file_type().is_file() {
        return Err(Error::Permission {
            path: path.into(),
            detail: "not a regular file".into(),
        });
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if md.uid() != euid {
        return Err(Error::Permission {
            path: path.into(),
            detail: format!(
                "owned by uid {}, but this process runs as uid {euid}",
                md.uid()
            ),
        });
    }
    if md.mode() & 0o022 != 0 {
        return Err(Error::Permission {
            path: path.into(),
            detail: format!(
                "mode {:o} lets group or others write it (expected 0600)",
                md.mode() & 0o7777
            ),
        });
    }
    Ok(())
}

/// A new file's directory entry must be durable before anything refers to the file.
pub fn sync_parent_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let d = File::open(dir).map_err(|e| Error::io(dir, "open directory", e))?;
    d.sync_all()
        .map_err(|e| Error::io(dir, "fsync directory", e))
}

/// Reserves real blocks for `[0, len)` so that later stores through the mapping cannot hit a
/// hole on a full disk (which would be SIGBUS). Fails with ENOSPC instead.
pub fn allocate(path: &Path, file: &File, len: u64) -> Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: fd is a valid open file for the duration of the call.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len as libc::off_t) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENOSPC) {
            return Err(Error::Full {
                path: path.into(),
                detail: format!("the disk has no room to grow the file to {len} bytes"),
            });
        }
        return Err(Error::io(path, "fallocate", e));
    }
    Ok(())
}

pub fn file_len(path: &Path, file: &File) -> Result<u64> {
    Ok(file
        .metadata()
        .map_err(|e| Error::io(path, "fstat", e))?
        .len())
}
