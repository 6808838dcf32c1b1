//! `crash-test --php --redis`: a redis-server of the harness's own on a loopback port, the PHP
//! workers' pool (`apcdb.file=redis://...`). It runs with the append-only file fsynced at every
//! write, so that killing it with SIGKILL (which the harness does between rounds) and starting it
//! again from that file must give back every acknowledged write.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    /// More `redis-server` arguments, after the harness's own (a later one wins): for tests of
    /// the harness itself, e.g. `--appendonly no` makes a restart lose everything.
    extra: Vec<String>,
}

impl RedisServer {
    pub fn start(dir: &Path, extra: &str) -> Result<RedisServer, String> {
        let which = Command::new("redis-server").arg("--version").output();
        if !which.is_ok_and(|o| o.status.success()) {
            return Err(
                "--redis needs `redis-server` (Debian's redis-server package; make setup)".into(),
            );
        }
        let dir = dir.join("redis");
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("finding a free loopback port: {e}"))?
            .port();
        let mut s = RedisServer {
            child: None,
            port,
            dir,
            extra: extra.split_whitespace().map(String::from).collect(),
        };
        s.spawn()?;
        Ok(s)
    }

    /// The pool's URL, as `apcdb.file`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .args(["--daemonize", "no", "--protected-mode", "yes"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("log"))
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting redis-server: {e}"))?;
        self.child = Some(child);
        // Loading a long append-only file takes a while; the server answers LOADING meanwhile.
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            match self.query(&["PING"]) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= until => {
                    return Err(format!(
                        "redis-server on port {} did not come up: {e} (its log: {})",
                        self.port,
                        self.dir.join("log").display()
                    ))
                }
                Err(_) => {}
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(format!(
                    "redis-server exited at start ({status}); its log: {}",
                    self.dir.join("log").display()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn query(&self, args: &[&str]) -> Result<redis::Value, String> {
        let client = redis::Client::open(self.url()).map_err(|e| e.to_string())?;
        let mut con = client
            .get_connection_with_timeout(Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        con.set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut con).map_err(|e| e.to_string())
    }

    /// SIGKILLs the server (nothing gets to run at its exit) and starts it again on its files.
    pub fn kill_and_restart(&mut self) -> Result<(), String> {
        self.kill();
        self.spawn()
    }

    /// Every key gone (a fresh pool), durably.
    pub fn flush(&self) -> Result<(), String> {
        self.query(&["FLUSHALL"])
            .map(|_| ())
            .map_err(|e| format!("FLUSHALL on the harness's redis-server: {e}"))
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
