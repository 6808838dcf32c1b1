//! Writing commands started as root on another user's store run as that user, so that no file of
//! the store ever ends up owned by root (which would lock its owner out: the engine refuses files
//! that are not the process's own, SPEC.md §1.1).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// When this process runs as root and the store at `path` (or, for a store not made yet, the
/// directory that will hold it) belongs to another user, becomes that user for good: the
/// supplementary groups are dropped, then the group and the user are set to the files' (real,
/// effective and saved, so nothing can switch back). Returns the uid and gid switched to.
pub fn become_owner(path: &Path) -> Result<Option<(u32, u32)>, String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let md = match std::fs::symlink_metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?
        }
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let (uid, gid) = (md.uid(), md.gid());
    if uid == 0 {
        return Ok(None);
    }
    let fail = |what: &str| {
        format!(
            "cannot switch to the store's owner (uid {uid}, gid {gid}) with {what}: {} \
             (nothing was changed)",
            std::io::Error::last_os_error()
        )
    };
    // SAFETY: plain system calls on this process's credentials; the group list is empty, so no
    // pointer is read. Groups first: once the uid is no longer 0 they cannot be changed.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(fail("setgroups"));
        }
        if libc::setresgid(gid, gid, gid) != 0 {
            return Err(fail("setresgid"));
        }
        if libc::setresuid(uid, uid, uid) != 0 {
            return Err(fail("setresuid"));
        }
    }
    Ok(Some((uid, gid)))
}
