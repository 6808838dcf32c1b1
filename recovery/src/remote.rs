//! `apcdb dump --from redis://...` and `apcdb load --to redis://...`: one pool of the PHP
//! extension's Redis backend (SPEC §10, "Redis backend") in the same JSON lines as a file's dump.
//! The pool's entry `k` is the Redis string `PREFIX` + `k` holding the value bytes unchanged (the
//! extension's value encoding), with its absolute expiry, so a dump moves between a file and a
//! server in either direction.

use crate::args::RedisPool;
use crate::clock;
use crate::transfer::{self, Loaded};
use std::io::{BufRead, Write};
use std::time::Duration;

/// Key names under a pool's prefix beginning with these bytes are the extension's own (its
/// `apc_entry` locks): never dumped, never loaded.
const RESERVED: &[u8] = b"\0apcdb:";

/// How long to wait for the server: generous, an operator's tool on a possibly busy server.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Keys per `SCAN` step and per pipeline of writes.
const BATCH: usize = 1000;

pub struct Pool {
    url: String,
    prefix: Vec<u8>,
    password_file: Option<String>,
    ca_file: Option<String>,
}

impl Pool {
    pub fn new(url: &str, p: &RedisPool) -> Pool {
        Pool {
            url: url.to_string(),
            prefix: p.prefix.clone().into_bytes(),
            password_file: p.password_file.clone(),
            ca_file: p.ca_file.clone(),
        }
    }

    fn connect(&self) -> Result<redis::Connection, String> {
        use redis::IntoConnectionInfo;
        let info = self
            .url
            .as_str()
            .into_connection_info()
            .map_err(|e| format!("invalid Redis URL: {e}"))?;
        let mut settings = info.redis_settings().clone().set_skip_set_lib_name();
        if let Some(f) = &self.password_file {
            settings = settings.set_password(
                apcdb_php_semantics::secret::read_password_file(f)
                    .map_err(|why| format!("--password-file {f:?} {why}"))?,
            );
        }
        if settings.username().is_some() && settings.password().is_none() {
            // As the extension: a named user logs in as itself, never as the default user.
            settings = settings.set_password("");
        }
        let info = info.set_redis_settings(settings);
        let client = match &self.ca_file {
            None => redis::Client::open(info).map_err(|e| format!("invalid Redis URL: {e}"))?,
            Some(f) => {
                let pem =
                    std::fs::read(f).map_err(|e| format!("--ca-file {f:?} cannot be read: {e}"))?;
                let certs = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                };
                redis::Client::build_with_tls(info, certs)
                    .map_err(|e| format!("--ca-file {f:?} is not usable: {e}"))?
            }
        };
        let con = client
            .get_connection_with_timeout(TIMEOUT)
            .map_err(|e| format!("cannot connect to the Redis server: {e}"))?;
        con.set_read_timeout(Some(TIMEOUT))
            .and_then(|()| con.set_write_timeout(Some(TIMEOUT)))
            .map_err(|e| format!("cannot set the Redis timeout: {e}"))?;
        Ok(con)
    }

    fn name(&self, key: &[u8]) -> Vec<u8> {
        let mut k = self.prefix.clone();
        k.extend_from_slice(key);
        k
    }
}

/// `pattern` with Redis glob characters escaped, so that it matches only itself.
fn glob_escape(pattern: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pattern.len() + 1);
    for &b in pattern {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// Writes every live entry of the pool, sorted by key like a file's dump (the same data dumps to
/// the same bytes from either); returns how many.
pub fn dump(pool: &Pool, out: &mut impl Write) -> Result<u64, String> {
    let mut con = pool.connect()?;
    let failed = |e: redis::RedisError| format!("the Redis server failed: {e}");
    let mut pattern = glob_escape(&pool.prefix);
    pattern.push(b'*');
    let mut entries: Vec<(Vec<u8>, Vec<u8>, u64)> = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, names): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(BATCH)
            .arg("TYPE")
            .arg("string")
            .query(&mut con)
            .map_err(failed)?;
        let names: Vec<Vec<u8>> = names
            .into_iter()
            .filter(|n| !n[pool.prefix.len()..].starts_with(RESERVED))
            .collect();
        if !names.is_empty() {
            let mut p = redis::pipe();
            for n in &names {
                p.cmd("GET").arg(n).cmd("PEXPIRETIME").arg(n);
            }
            let replies: Vec<(Option<Vec<u8>>, i64)> = p.query(&mut con).map_err(failed)?;
            for (n, (v, exp)) in names.iter().zip(replies) {
                // Gone since the scan listed it: not dumped.
                if let Some(v) = v {
                    let key = n[pool.prefix.len()..].to_vec();
                    entries.push((key, v, u64::try_from(exp).unwrap_or(0)));
                }
            }
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    // SCAN may list a key twice (the server resized its table meanwhile).
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.dedup_by(|a, b| a.0 == b.0);
    for (k, v, exp) in &entries {
        transfer::write_line(out, k, v, *exp)?;
    }
    out.flush().map_err(|e| format!("writing the dump: {e}"))?;
    Ok(entries.len() as u64)
}

/// Stores every line's entry into the pool (overwriting keys that exist), with its absolute
/// expiry. The whole input is parsed and checked before the first write, so a bad line changes
/// nothing; a server that fails in the middle leaves the lines before it stored (the error says
/// how many).
pub fn load(pool: &Pool, input: impl BufRead) -> Result<Loaded, String> {
    let entries = transfer::parse(input)?;
    if let Some((line, ..)) = entries.iter().find(|(_, k, ..)| k.starts_with(RESERVED)) {
        return Err(format!(
            "line {line}: keys beginning with \"\\0apcdb:\" are reserved on a Redis server \
             (the extension's apc_entry locks)"
        ));
    }
    let mut con = pool.connect()?;
    let now = clock::unix_ms();
    let mut loaded = Loaded {
        stored: 0,
        expired: 0,
    };
    let live: Vec<_> = entries
        .iter()
        .filter(|(_, _, _, exp)| {
            let gone = *exp != 0 && *exp <= now;
            loaded.expired += u64::from(gone);
            !gone
        })
        .collect();
    for batch in live.chunks(BATCH) {
        let mut p = redis::pipe();
        for (_, k, v, exp) in batch {
            let set = p.cmd("SET").arg(pool.name(k)).arg(v.as_slice());
            if *exp != 0 {
                set.arg("PXAT").arg(*exp);
            }
            set.ignore();
        }
        p.query::<()>(&mut con).map_err(|e| {
            format!(
                "the Redis server failed after {} entries were stored: {e}",
                loaded.stored
            )
        })?;
        loaded.stored += batch.len() as u64;
    }
    Ok(loaded)
}
