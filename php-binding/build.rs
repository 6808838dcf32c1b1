//! Compiles the one C file of the extension (`src/serializer_ctx.c`) against the headers of the
//! PHP that ext-php-rs builds for (`PHP_CONFIG`, default `php-config`).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=src/serializer_ctx.c");
    println!("cargo:rerun-if-env-changed=PHP_CONFIG");
    let php_config = std::env::var("PHP_CONFIG").unwrap_or_else(|_| "php-config".into());
    let out = Command::new(&php_config)
        .arg("--includes")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {php_config} --includes: {e}"));
    assert!(
        out.status.success(),
        "{php_config} --includes failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let includes = String::from_utf8(out.stdout).expect("php-config output is UTF-8");
    let mut build = cc::Build::new();
    build.file("src/serializer_ctx.c");
    for flag in includes.split_whitespace() {
        build.flag(flag);
    }
    build.compile("apcdb_serializer_ctx");
}
