//! Opening the store's files safely: no symlinks, only our own files, never readable or writable
//! by others, no second hard link, in a directory others cannot change.
//! One vhost's cache must not be readable or plantable by another (SPEC.md, "File security").

use crate::error::{Error, Result};
use crate::io::{FileKind, StorageIo};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The three files of a store named `path`: the data file is `path` itself, the journal and the
/// lock file are `path` with [`Paths::JOURNAL_SUFFIX`] and [`Paths::LOCK_SUFFIX`] appended. Tools
/// that copy, move or remove a store's files take the names from here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    /// The data file (superblocks, index, entries): durable state.
    pub data: PathBuf,
    /// The redo journal: durable state (writes after the last checkpoint).
    pub journal: PathBuf,
    /// The lock file: shared state of the processes using the store, rebuilt by the first
    /// opener; nothing durable.
    pub lock: PathBuf,
}

impl Paths {
    /// Appended to the store's path to name its journal.
    pub const JOURNAL_SUFFIX: &'static str = ".journal";
    /// Appended to the store's path to name its lock file.
    pub const LOCK_SUFFIX: &'static str = ".lock";

    /// The files of the store at `path`.
    pub fn new(path: impl AsRef<Path>) -> Paths {
        let path = path.as_ref();
        let with = |suffix: &str| {
            let mut s = path.as_os_str().to_owned();
            s.push(suffix);
            PathBuf::from(s)
        };
        Paths {
            data: path.to_path_buf(),
            journal: with(Paths::JOURNAL_SUFFIX),
            lock: with(Paths::LOCK_SUFFIX),
        }
    }

    /// The files that hold durable state (data, journal): what a copy or backup must take.
    pub fn durable(&self) -> [&Path; 2] {
        [&self.data, &self.journal]
    }

    /// All three files (data, journal, lock).
    pub fn all(&self) -> [&Path; 3] {
        [&self.data, &self.journal, &self.lock]
    }
}

/// Opens (and, if allowed, creates with mode 0600) a regular file that must be ours.
/// Returns the file and whether this call created it (its directory entry is then made durable
/// through `io`).
pub fn open_checked(io: &dyn StorageIo, path: &Path, create: bool) -> Result<(File, bool)> {
    // Before anything is created in it: a directory others may change is refused.
    check_directory(path)?;
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
        sync_parent_dir(io, path)?;
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

/// Opens an existing store file read-only for inspection (`apcdb check`, salvage): never through
/// a symlink, and only a regular file. Ownership and mode are not required here (an operator may
/// inspect another user's store as root); `check` reports them instead.
pub fn open_for_inspection(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| open_error(path, e))?;
    let md = file.metadata().map_err(|e| Error::io(path, "fstat", e))?;
    if !md.file_type().is_file() {
        return Err(Error::Permission {
            path: path.into(),
            detail: "not a regular file".into(),
        });
    }
    Ok(file)
}

/// Opens an existing store file for a read-only handle (`Options::read_only`, SPEC.md §6.8):
/// `O_RDONLY`, never through a symlink, a regular file only. Ownership is not required (reading
/// needs only read permission), but the directory must not let a user other than us, root or the
/// file's owner plant files in it (the checks of `check_directory`, widened to that owner).
pub fn open_read_only(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| open_error(path, e))?;
    let md = file.metadata().map_err(|e| Error::io(path, "fstat", e))?;
    if !md.file_type().is_file() {
        return Err(Error::Permission {
            path: path.into(),
            detail: "not a regular file".into(),
        });
    }
    check_directory_for(path, Some(md.uid()))?;
    Ok(file)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The directory holding the store must not let anyone but us (or root) delete, rename or plant
/// files in it: it belongs to us or to root, and if group or others may write it, it is sticky
/// (like /tmp), so they can remove or rename only their own files (SPEC.md §1.1).
pub fn check_directory(path: &Path) -> Result<()> {
    check_directory_for(path, None)
}

/// `check_directory`, also accepting a directory owned by `file_owner` (a reader of another
/// user's store).
fn check_directory_for(path: &Path, file_owner: Option<u32>) -> Result<()> {
    let dir = parent_dir(path);
    let md = match std::fs::metadata(dir) {
        Ok(md) => md,
        // No directory: opening the file fails and says so, naming the file.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, "stat directory", e)),
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if md.uid() != euid && md.uid() != 0 && Some(md.uid()) != file_owner {
        return Err(Error::Permission {
            path: dir.into(),
            detail: format!(
                "the directory holding the store is owned by uid {}, not by this process's uid \
                 {euid} or root, so its owner could replace the store's files; keep the store in a \
                 directory of your own",
                md.uid()
            ),
        });
    }
    let mode = md.mode();
    if mode & 0o022 != 0 && mode & libc::S_ISVTX == 0 {
        return Err(Error::Permission {
            path: dir.into(),
            detail: format!(
                "mode {:o} lets group or others delete, rename or create files in the directory \
                 holding the store, so they could replace its files; fix: chmod go-w {} (or make \
                 it sticky: chmod +t)",
                mode & 0o7777,
                dir.display()
            ),
        });
    }
    Ok(())
}

/// The checks a shared hosting setup needs: the file is a regular file owned by the effective
/// user, neither group nor others may read or write it, and no other name links to it.
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
    if md.mode() & 0o077 != 0 {
        return Err(Error::Permission {
            path: path.into(),
            detail: format!(
                "mode {:o} lets group or others read or write it (expected 0600); fix: chmod 600 {}",
                md.mode() & 0o7777,
                path.display()
            ),
        });
    }
    if md.nlink() != 1 {
        // Another name for the same file (made by whoever could write a directory it is in)
        // would survive our renames and deletes and expose or alter the store.
        return Err(Error::Permission {
            path: path.into(),
            detail: format!(
                "it has {} hard links (expected 1): another name reaches the same file; remove \
                 the other link or copy the file",
                md.nlink()
            ),
        });
    }
    Ok(())
}

/// A new file's directory entry must be durable before anything refers to the file.
pub fn sync_parent_dir(io: &dyn StorageIo, path: &Path) -> Result<()> {
    let dir = parent_dir(path);
    let d = File::open(dir).map_err(|e| Error::io(dir, "open directory", e))?;
    io.sync_dir(&d)
        .map_err(|e| Error::io(dir, "fsync directory", e))
}

/// Reserves real blocks for `[0, len)` so that later stores through the mapping cannot hit a
/// hole on a full disk (which would be SIGBUS). Fails with [`Error::Full`] instead.
pub fn allocate(
    io: &dyn StorageIo,
    kind: FileKind,
    path: &Path,
    file: &File,
    len: u64,
) -> Result<()> {
    if let Err(e) = io.allocate(kind, file, len) {
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

/// Whether `path` still names the file open as `file` (same device and inode).
pub fn same_file(path: &Path, file: &File) -> Result<bool> {
    let open = file.metadata().map_err(|e| Error::io(path, "fstat", e))?;
    match std::fs::symlink_metadata(path) {
        Ok(now) => Ok(now.dev() == open.dev() && now.ino() == open.ino()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(path, "stat", e)),
    }
}

pub fn file_len(path: &Path, file: &File) -> Result<u64> {
    Ok(file
        .metadata()
        .map_err(|e| Error::io(path, "fstat", e))?
        .len())
}
