//! `apcdb dump --from redis://` and `apcdb load --to redis://` against a real redis-server
//! (Debian's package, installed by `make setup`) started on a loopback port by each test.

mod common;

use apcdb::{Options, Store};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const FAR: u64 = 4_000_000_000_000;

/// A redis-server of its own, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        Server::start_with(&[])
    }

    /// With more redis-server arguments (e.g. a TLS port beside the plain one).
    fn start_with(extra: &[String]) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (make setup installs it)");
        let s = Server {
            child,
            port,
            _dir: dir,
        };
        let t = Instant::now();
        while s.con_try().is_none() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn con_try(&self) -> Option<redis::Connection> {
        let mut c = redis::Client::open(self.url())
            .ok()?
            .get_connection()
            .ok()?;
        redis::cmd("PING").query::<String>(&mut c).ok()?;
        Some(c)
    }

    fn cmd<T: redis::FromRedisValue>(&self, args: &[&[u8]]) -> T {
        let mut c = self.con_try().unwrap();
        let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut c).unwrap()
    }

    fn keys(&self) -> Vec<Vec<u8>> {
        let mut k: Vec<Vec<u8>> = self.cmd(&[b"KEYS", b"*"]);
        k.sort();
        k
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn apcdb(args: &[&str], stdin: &[u8]) -> Output {
    common::apcdb_with_stdin(args, stdin)
}

fn ok(o: &Output) -> &Output {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

fn sample_file(path: &Path) -> Vec<(Vec<u8>, Vec<u8>, u64)> {
    let data = vec![
        (b"plain".to_vec(), b"\x05value".to_vec(), 0),
        (vec![0, 255, b'\n', b'"', b'*'], vec![0, 1, 2, 254, 255], 0),
        (b"empty".to_vec(), vec![], 0),
        (
            b"big".to_vec(),
            (0..200_000u32).map(|i| (i * 7) as u8).collect(),
            0,
        ),
        (b"expiring".to_vec(), b"soon".to_vec(), FAR),
    ];
    let store = Store::open(path, Options::default()).unwrap();
    for (k, v, e) in &data {
        store.put_with_expiry(k, v, *e).unwrap();
    }
    data
}

#[test]
fn a_file_dump_loads_into_a_pool_and_dumps_back_identically() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let data = sample_file(&a);
    let file_dump = ok(&apcdb(&["dump", a.to_str().unwrap()], b""))
        .stdout
        .clone();

    let url = server.url();
    let out = ok(&apcdb(
        &["load", "--to", &url, "--prefix", "p*:"],
        &file_dump,
    ))
    .stderr
    .clone();
    assert!(String::from_utf8_lossy(&out).contains("loaded 5 entries"));
    // The value bytes unchanged under the prefix, with the same absolute expiry.
    for (k, v, e) in &data {
        let name = [b"p*:".as_slice(), k].concat();
        let got: Vec<u8> = server.cmd(&[b"GET", &name]);
        assert_eq!(&got, v);
        let exp: i64 = server.cmd(&[b"PEXPIRETIME", &name]);
        assert_eq!(exp, if *e == 0 { -1 } else { *e as i64 });
    }
    // Beside the pool: another pool's key, a key whose name the glob of an unescaped prefix
    // would match, an apc_entry lock, a list under the prefix. None is dumped.
    server.cmd::<()>(&[b"SET", b"q:other", b"x"]);
    server.cmd::<()>(&[b"SET", b"pX:glob", b"x"]);
    server.cmd::<()>(&[b"SET", b"p*:\0apcdb:lock:plain", b"token"]);
    server.cmd::<()>(&[b"RPUSH", b"p*:list", b"1"]);
    let remote_dump = ok(&apcdb(&["dump", "--from", &url, "--prefix", "p*:"], b""))
        .stdout
        .clone();
    assert_eq!(
        remote_dump, file_dump,
        "the same data dumps to the same bytes"
    );

    ok(&apcdb(&["load", b.to_str().unwrap()], &remote_dump));
    let store = Store::open(&b, Options::default()).unwrap();
    for (k, v, e) in &data {
        let got = store.get_entry(k).unwrap().expect("loaded key");
        assert_eq!((&got.value, got.expires_at_ms), (v, *e));
    }
}

#[test]
fn bad_input_or_a_reserved_key_changes_nothing_on_the_server() {
    let server = Server::start();
    let url = server.url();
    let good = r#"{"key":"YQ==","value":"AQ==","expires_at_ms":0}"#;
    for (input, err) in [
        (format!("{good}\n{{\"key\":\"Yg==\"}}\n"), "line 2"),
        (format!("{good}\nnot json\n"), "line 2"),
        // "\0apcdb:x": the extension's lock names.
        (
            format!("{good}\n{{\"key\":\"AGFwY2RiOng=\",\"value\":\"\"}}\n"),
            "reserved",
        ),
    ] {
        let o = apcdb(&["load", "--to", &url], input.as_bytes());
        assert_eq!(o.status.code(), Some(2));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(err),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(server.keys().is_empty());
    }
    // Already expired: skipped; the default prefix is the extension's.
    let input = format!("{good}\n{{\"key\":\"Yg==\",\"value\":\"\",\"expires_at_ms\":5}}\n");
    let o = ok(&apcdb(&["load", "--to", &url], input.as_bytes()))
        .stderr
        .clone();
    assert!(String::from_utf8_lossy(&o).contains("1 already expired"));
    assert_eq!(server.keys(), vec![b"apcdb:a".to_vec()]);
}

#[test]
fn an_acl_user_with_a_password_file() {
    let server = Server::start();
    server.cmd::<()>(&[
        b"ACL", b"SETUSER", b"pool", b"on", b">pw", b"~s:*", b"+@all",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "pw\n").unwrap();
    let url = format!("redis://pool@127.0.0.1:{}/0", server.port);
    let line = br#"{"key":"YQ==","value":"AQ==","expires_at_ms":0}"#;
    let pwf = pw.to_str().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = apcdb(
        &[
            "load",
            "--to",
            &url,
            "--prefix",
            "s:",
            "--password-file",
            pwf,
        ],
        line,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("readable by every user"));
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    ok(&apcdb(
        &[
            "load",
            "--to",
            &url,
            "--prefix",
            "s:",
            "--password-file",
            pwf,
        ],
        line,
    ));
    let d = ok(&apcdb(
        &[
            "dump",
            "--from",
            &url,
            "--prefix",
            "s:",
            "--password-file",
            pwf,
        ],
        b"",
    ))
    .stdout
    .clone();
    assert_eq!(d, [line.as_slice(), b"\n"].concat());
    // The user may not write outside its prefix, and without the password it cannot log in.
    let o = apcdb(
        &[
            "load",
            "--to",
            &url,
            "--prefix",
            "t:",
            "--password-file",
            pwf,
        ],
        line,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("NoPerm"));
    let o = apcdb(&["dump", "--from", &url, "--prefix", "s:"], b"");
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn usage_file_or_url() {
    for args in [
        &["dump"][..],
        &["dump", "x.db", "--from", "redis://127.0.0.1:1/0"],
        &["load"],
        &["load", "x.db", "--to", "redis://127.0.0.1:1/0"],
    ] {
        assert_eq!(apcdb(args, b"").status.code(), Some(2), "{args:?}");
    }
    // Nobody listening: a clear error, exit 2.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = apcdb(
        &["dump", "--from", &format!("redis://127.0.0.1:{port}/0")],
        b"",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot connect to the Redis server"));
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn openssl(args: &[&str], dir: &Path) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `--ca-file` with a `rediss://` URL: dump and load over TLS, the server's certificate checked
/// against a throwaway CA made here; another CA's certificate is refused.
#[test]
fn over_tls_with_a_ca_file() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("ext.cnf"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    for ca in ["ca", "other"] {
        let subj = format!("/CN=apcdb-test-{ca}");
        let (key, pem) = (format!("{ca}.key"), format!("{ca}.pem"));
        openssl(
            &[
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", &subj,
                "-keyout", &key, "-out", &pem,
            ],
            d,
        );
    }
    openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
        d,
    );
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.pem",
        ],
        d,
    );
    let tls = free_port();
    let path = |f: &str| d.join(f).to_str().unwrap().to_string();
    let server = Server::start_with(&[
        "--tls-port".into(),
        tls.to_string(),
        "--tls-cert-file".into(),
        path("server.pem"),
        "--tls-key-file".into(),
        path("server.key"),
        "--tls-ca-cert-file".into(),
        path("ca.pem"),
        "--tls-auth-clients".into(),
        "no".into(),
    ]);
    let url = format!("rediss://127.0.0.1:{tls}/0");
    let line = b"{\"key\":\"dA==\",\"value\":\"dg==\",\"expires_at_ms\":0}\n";
    let ca = path("ca.pem");
    ok(&apcdb(&["load", "--to", &url, "--ca-file", &ca], line));
    // Through the plain port: it is on the server.
    let got: Vec<u8> = server.cmd(&[b"GET", b"apcdb:t"]);
    assert_eq!(got, b"v");
    let out = ok(&apcdb(&["dump", "--from", &url, "--ca-file", &ca], b""))
        .stdout
        .clone();
    assert_eq!(out, line);
    let other = path("other.pem");
    let o = apcdb(&["dump", "--from", &url, "--ca-file", &other], b"");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("UnknownIssuer"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
