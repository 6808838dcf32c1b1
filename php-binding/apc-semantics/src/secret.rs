//! A password kept in a file (`apcdb.redis_password_file`, `apcdb dump/load --password-file`),
//! read the same way by the extension and the tool.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;

/// The password in `path`, without its line end. On failure, why, as the end of a sentence that
/// starts with the setting's name: refused when every user may read the file (a password every
/// local user can read protects nothing), when it is empty, or when it cannot be read.
pub fn read_password_file(path: &str) -> Result<String, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("cannot be read: {e}"))?;
    // The mode of the file opened, not of the path (which could be replaced in between).
    let mode = f
        .metadata()
        .map_err(|e| format!("cannot be read: {e}"))?
        .permissions()
        .mode();
    if mode & 0o004 != 0 {
        return Err(format!(
            "is readable by every user (mode {:o}): not used; make it readable by the pool's user \
             only (chmod o-r)",
            mode & 0o7777
        ));
    }
    let mut pw = String::new();
    // A password is short: a larger file is a mistake, not a password.
    f.take(4096)
        .read_to_string(&mut pw)
        .map_err(|e| format!("cannot be read: {e}"))?;
    let pw = pw.trim_end_matches(['\n', '\r']);
    if pw.is_empty() {
        return Err("is empty".to_string());
    }
    Ok(pw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_password_file_every_user_can_read_is_refused() {
        let dir = std::env::temp_dir().join(format!("apcdb-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("pw");
        std::fs::write(&p, "s3cret\n").unwrap();
        let path = p.to_str().unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(read_password_file(path).unwrap(), "s3cret");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read_password_file(path)
            .unwrap_err()
            .starts_with("is readable by every user (mode 644)"));
        std::fs::write(&p, "\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_password_file(path).unwrap_err(), "is empty");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
