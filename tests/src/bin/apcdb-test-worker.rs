//! A child process for the multi-process and crash tests. It prints one line per acknowledged
//! operation (after the call returned Ok), so the parent knows exactly what must survive.
//!
//! usage: apcdb-test-worker PATH DURABILITY MODE ARGS...
//!   write PREFIX COUNT   put PREFIX<i> = value(i) for i in 0..COUNT, print "ack i"
//!   write-wait PREFIX COUNT  as write, then print "done" and keep the store open until stdin
//!                        closes
//!   inc KEY COUNT        increment the counter KEY COUNT times, print "ack <new value>"
//!   hold                 take the write lock (inside update), print "locked", sleep forever
//!   read PREFIX COUNT    check PREFIX<i> == value(i) for all i, print "ok"

use apcdb::{Durability, Store, Update};
use std::io::Write;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let durability = match args[2].as_str() {
        "sync" => Durability::Sync,
        "periodic" => Durability::Periodic(Duration::from_millis(20)),
        _ => Durability::None,
    };
    let store = Store::open(&args[1], apcdb_tests::options().durability(durability))
        .unwrap_or_else(|e| {
            eprintln!("open: {e}");
            std::process::exit(2)
        });
    let mut out = std::io::stdout().lock();
    match args[3].as_str() {
        "write" | "write-wait" => {
            let count: u64 = args[5].parse().unwrap();
            for i in 0..count {
                store
                    .put(format!("{}{i}", args[4]).as_bytes(), &apcdb_tests::value(i))
                    .unwrap();
                writeln!(out, "ack {i}").unwrap();
                out.flush().unwrap();
            }
            if args[3] == "write-wait" {
                writeln!(out, "done").unwrap();
                out.flush().unwrap();
                let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            }
        }
        "inc" => {
            for _ in 0..args[5].parse::<u64>().unwrap() {
                let n = store
                    .update(args[4].as_bytes(), |cur| {
                        let n = cur
                            .map_or(0, |e| u64::from_le_bytes(e.value[..8].try_into().unwrap()))
                            + 1;
                        (
                            Update::Put {
                                value: n.to_le_bytes().to_vec(),
                                expires_at_ms: 0,
                            },
                            n,
                        )
                    })
                    .unwrap();
                writeln!(out, "ack {n}").unwrap();
                out.flush().unwrap();
            }
        }
        "hold" => {
            store
                .update(b"held", |_| {
                    writeln!(out, "locked").unwrap();
                    out.flush().unwrap();
                    std::thread::sleep(Duration::from_secs(3600));
                    (Update::Keep, ())
                })
                .unwrap();
        }
        "read" => {
            for i in 0..args[5].parse::<u64>().unwrap() {
                let got = store.get(format!("{}{i}", args[4]).as_bytes()).unwrap();
                assert_eq!(got, Some(apcdb_tests::value(i)), "{}{i}", args[4]);
            }
            writeln!(out, "ok").unwrap();
        }
        m => panic!("unknown mode {m}"),
    }
}
