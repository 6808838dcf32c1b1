//! The values crash-test writes carry their own identity and are self-checking, so a verifier can
//! tell which write it is looking at and whether any byte of it is torn or stale:
//!
//! `v1|<key>|<incarnation>|<seq>|<filler length>|` followed by the text `<incarnation>.<seq>;`
//! repeated to the filler length. A PHP worker builds the same bytes with `str_repeat`, so both kinds
//! of worker share one verifier. The empty value is also written; it has no identity.

/// Which write produced a value: the worker incarnation (unique per run) and its operation number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WriteId {
    pub inc: u64,
    pub seq: u64,
}

impl std::fmt::Display for WriteId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.inc, self.seq)
    }
}

pub fn make(key: &str, id: WriteId, filler_len: usize) -> Vec<u8> {
    let mut v = format!("v1|{key}|{}|{}|{filler_len}|", id.inc, id.seq).into_bytes();
    let pattern = format!("{}.{};", id.inc, id.seq);
    v.reserve(filler_len);
    let mut left = filler_len;
    while left > 0 {
        let n = left.min(pattern.len());
        v.extend_from_slice(&pattern.as_bytes()[..n]);
        left -= n;
    }
    v
}

/// What a stored value turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    Empty,
    Write(WriteId),
}

/// Parses and fully checks a value found under `key`; an error describes the damage.
pub fn parse(key: &str, bytes: &[u8]) -> Result<Parsed, String> {
    if bytes.is_empty() {
        return Ok(Parsed::Empty);
    }
    let describe = |what: &str| {
        format!(
            "{what} (value of {} bytes starting {:?})",
            bytes.len(),
            preview(bytes)
        )
    };
    let mut fields = bytes.splitn(6, |&b| b == b'|');
    let mut field = || fields.next().ok_or_else(|| describe("header cut short"));
    if field()? != b"v1" {
        return Err(describe("bad magic"));
    }
    if field()? != key.as_bytes() {
        return Err(describe("value belongs to another key"));
    }
    let mut num = |name: &str| -> Result<u64, String> {
        let f = field()?;
        std::str::from_utf8(f)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| describe(&format!("bad {name}")))
    };
    let id = WriteId {
        inc: num("incarnation")?,
        seq: num("sequence")?,
    };
    let filler_len = num("length")? as usize;
    let filler = fields.next().ok_or_else(|| describe("header cut short"))?;
    if filler.len() != filler_len {
        return Err(describe(&format!(
            "filler is {} bytes, header says {filler_len}",
            filler.len()
        )));
    }
    let pattern = format!("{}.{};", id.inc, id.seq);
    for (i, chunk) in filler.chunks(pattern.len()).enumerate() {
        if chunk != &pattern.as_bytes()[..chunk.len()] {
            return Err(describe(&format!(
                "torn: filler differs at byte {} (found {:?}, expected {:?})",
                i * pattern.len(),
                preview(chunk),
                &pattern[..chunk.len()]
            )));
        }
    }
    Ok(Parsed::Write(id))
}

fn preview(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(48)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_all_lengths() {
        let id = WriteId { inc: 12, seq: 345 };
        for len in [0, 1, 7, 8, 9, 1000] {
            let v = make("w1/3", id, len);
            assert_eq!(parse("w1/3", &v).unwrap(), Parsed::Write(id));
        }
        assert_eq!(parse("k", b"").unwrap(), Parsed::Empty);
    }

    #[test]
    fn detects_damage() {
        let id = WriteId { inc: 2, seq: 9 };
        let v = make("k", id, 5000);
        assert!(parse("other", &v).is_err());
        let mut torn = v.clone();
        torn[4000] = 0;
        assert!(parse("k", &torn).unwrap_err().contains("torn"));
        assert!(parse("k", &v[..v.len() - 1]).is_err());
        let mut mixed = v[..3000].to_vec();
        mixed.extend_from_slice(&make("k", WriteId { inc: 2, seq: 8 }, 5000)[3000..]);
        assert!(parse("k", &mixed).is_err());
    }
}
