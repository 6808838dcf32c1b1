//! APCu's INI settings, read as aliases of apcdb's in drop-in mode (`apcdb.apcu_compat=1`, APCu
//! not loaded), so that a php.ini written for APCu keeps working (SPEC §10 "INI").
//!
//! The rule for every alias: the `apcdb.*` setting wins when it is set; otherwise the `apc.*` one
//! when it is set; otherwise apcdb's default. A setting is "set" when php.ini or `-d` names it or
//! its value differs from its default (a server's per-pool/per-host value). Here a setting that is
//! not set is `None`.

/// The APCu settings apcdb registers in drop-in mode, with APCu 5.1's defaults (what `ini_get`
/// shows when php.ini does not name them).
pub const APCU_SETTINGS: &[(&str, &str)] = &[
    ("apc.enabled", "1"),
    ("apc.shm_size", "32M"),
    ("apc.entries_hint", "4096"),
    ("apc.ttl", "0"),
    ("apc.gc_ttl", "3600"),
    ("apc.use_request_time", "0"),
    ("apc.serializer", "php"),
    ("apc.enable_cli", "0"),
    ("apc.preload_path", ""),
];

/// Whether a setting counts as set: named in php.ini/`-d`, or holding another value than its
/// default.
pub fn is_set(named_in_config: bool, value: &str, default: &str) -> bool {
    named_in_config || value != default
}

/// Whether the cache is enabled. `own` is `apcdb.enabled`; APCu's `apc.enabled` and, in the CLI,
/// `apc.enable_cli` apply only when `own` is not set. Unlike APCu, the CLI is enabled unless
/// `apc.enable_cli` is set to off: apcdb's store outlives the process, so a CLI job that fills or
/// reads it is the normal case (a deliberate difference, SPEC §10).
pub fn enabled(
    own: Option<bool>,
    apc_enabled: Option<bool>,
    apc_enable_cli: Option<bool>,
    cli: bool,
) -> bool {
    if let Some(b) = own {
        return b;
    }
    let base = apc_enabled.unwrap_or(true);
    if cli {
        base && apc_enable_cli.unwrap_or(true)
    } else {
        base
    }
}

/// APCu's reading of `apc.shm_size`: a plain number (no K/M/G suffix) under 1 MiB is a number of
/// MiB (APCu's old syntax, "64" meaning 64M). `bytes` is the value with its suffix applied. (APCu
/// applies the rule after the suffix too, turning "512K" into 512G; apcdb does not.)
pub fn shm_size_bytes(bytes: u64, has_suffix: bool) -> u64 {
    if !has_suffix && bytes < 1 << 20 {
        bytes.saturating_mul(1 << 20)
    } else {
        bytes
    }
}

/// The index slots of a new store from `apc.entries_hint` (0 means "not sure": apcdb's default).
pub fn index_slots(entries_hint: i64) -> Option<u64> {
    (entries_hint > 0).then_some(entries_hint as u64)
}

/// How arrays and objects are serialized (`apcdb.serializer`, or APCu's `apc.serializer`).
/// Scalars always have their own tags; a stored value says which serializer wrote it, so a value
/// reads back whatever the setting is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Serializer {
    /// PHP's `serialize()` (APCu's `php`, also called `default`).
    Php,
    /// The igbinary extension's format (needs `extension=igbinary.so`).
    Igbinary,
}

impl Serializer {
    pub fn name(self) -> &'static str {
        match self {
            Serializer::Php => "php",
            Serializer::Igbinary => "igbinary",
        }
    }
}

/// The serializer a setting names; `Err` with the reason (and `php` is used) for a name apcdb
/// does not know, or `igbinary` while that extension is not loaded.
pub fn serializer(setting: &str, value: &str, igbinary_loaded: bool) -> Result<Serializer, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "php" | "default" => Ok(Serializer::Php),
        "igbinary" if igbinary_loaded => Ok(Serializer::Igbinary),
        "igbinary" => Err(format!(
            "{setting}=igbinary needs the igbinary extension, which is not loaded; using php"
        )),
        other => Err(format!(
            "{setting}=\"{other}\" is not one of php, igbinary; using php"
        )),
    }
}

/// The key a file of `apc.preload_path` is loaded under: its name without the `.data` ending
/// (APCu: everything before the last dot, for files whose last dot starts ".data"). `None` for a
/// file that is not loaded.
pub fn preload_key(file_name: &[u8]) -> Option<&[u8]> {
    let dot = file_name.iter().rposition(|&b| b == b'.')?;
    (&file_name[dot..] == b".data").then_some(&file_name[..dot])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_means_named_or_changed() {
        assert!(!is_set(false, "32M", "32M"));
        assert!(is_set(true, "32M", "32M"));
        assert!(is_set(false, "64M", "32M"));
    }

    #[test]
    fn own_setting_wins_then_apcu_then_default() {
        for cli in [false, true] {
            assert!(enabled(Some(true), Some(false), Some(false), cli));
            assert!(!enabled(Some(false), Some(true), Some(true), cli));
            assert!(!enabled(None, Some(false), Some(true), cli));
            assert!(enabled(None, None, None, cli));
        }
        assert!(enabled(None, Some(true), None, false));
    }

    #[test]
    fn cli_is_on_unless_enable_cli_says_off() {
        assert!(enabled(None, None, None, true));
        assert!(!enabled(None, None, Some(false), true));
        assert!(enabled(None, None, Some(true), true));
        // apc.enable_cli does not concern other SAPIs.
        assert!(enabled(None, None, Some(false), false));
    }

    #[test]
    fn shm_size_old_syntax_is_mib() {
        assert_eq!(shm_size_bytes(64, false), 64 << 20);
        assert_eq!(shm_size_bytes(32 << 20, false), 32 << 20);
        assert_eq!(shm_size_bytes(1 << 20, false), 1 << 20);
        assert_eq!(shm_size_bytes(u64::MAX / 2, false), u64::MAX / 2);
        // With a suffix the value is what it says.
        assert_eq!(shm_size_bytes(512 << 10, true), 512 << 10);
        assert_eq!(shm_size_bytes(64 << 20, true), 64 << 20);
    }

    #[test]
    fn entries_hint_zero_means_default() {
        assert_eq!(index_slots(0), None);
        assert_eq!(index_slots(-5), None);
        assert_eq!(index_slots(100_000), Some(100_000));
    }

    #[test]
    fn serializer_names() {
        for loaded in [false, true] {
            for n in ["php", "PHP", "default", ""] {
                assert_eq!(serializer("s", n, loaded), Ok(Serializer::Php));
            }
            assert!(serializer("s", "msgpack", loaded)
                .unwrap_err()
                .contains("msgpack"));
        }
        assert_eq!(serializer("s", "igbinary", true), Ok(Serializer::Igbinary));
        let e = serializer("apc.serializer", "igbinary", false).unwrap_err();
        assert!(
            e.contains("apc.serializer") && e.contains("not loaded"),
            "{e}"
        );
    }

    #[test]
    fn preload_keys() {
        assert_eq!(preload_key(b"config.data"), Some(&b"config"[..]));
        assert_eq!(preload_key(b"a.b.data"), Some(&b"a.b"[..]));
        assert_eq!(preload_key(b".data"), Some(&b""[..]));
        assert_eq!(preload_key(b"config.data.bak"), None);
        assert_eq!(preload_key(b"config"), None);
        assert_eq!(preload_key(b"configdata"), None);
    }

    #[test]
    fn every_setting_has_a_default() {
        assert_eq!(APCU_SETTINGS.len(), 9);
        assert!(APCU_SETTINGS.iter().all(|(n, _)| n.starts_with("apc.")));
    }
}
