//! Just enough JSON for `dump`/`load` and `stats --json`: flat objects whose values are strings or
//! unsigned integers, one object per line.

use std::collections::BTreeMap;

#[derive(Debug, PartialEq, Eq, Clone)]
pub enum Value {
    Str(String),
    Num(u64),
}

/// Writes `{"a":"x","b":1}` with keys in the order given.
pub fn object(fields: &[(&str, Value)]) -> String {
    let mut out = String::from("{");
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        quote(name, &mut out);
        out.push(':');
        match value {
            Value::Str(s) => quote(s, &mut out),
            Value::Num(n) => out.push_str(&n.to_string()),
        }
    }
    out.push('}');
    out
}

fn quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Parses one flat object. Nested objects, arrays, floats, booleans and null are refused: the
/// formats this tool reads never contain them.
pub fn parse_object(text: &str) -> Result<BTreeMap<String, Value>, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let mut map = BTreeMap::new();
    p.ws();
    p.expect(b'{')?;
    p.ws();
    if p.peek() == Some(b'}') {
        p.i += 1;
    } else {
        loop {
            p.ws();
            let name = p.string()?;
            p.ws();
            p.expect(b':')?;
            p.ws();
            let value = match p.peek() {
                Some(b'"') => Value::Str(p.string()?),
                Some(b'0'..=b'9') => Value::Num(p.number()?),
                _ => return Err(format!("unsupported value for \"{name}\" at byte {}", p.i)),
            };
            map.insert(name, value);
            p.ws();
            match p.next() {
                Some(b',') => continue,
                Some(b'}') => break,
                _ => return Err(format!("expected ',' or '}}' at byte {}", p.i)),
            }
        }
    }
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("trailing text after the object at byte {}", p.i));
    }
    Ok(map)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn next(&mut self) -> Option<u8> {
        let c = self.peek();
        self.i += 1;
        c
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }
    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.next() == Some(c) {
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", c as char, self.i - 1))
        }
    }
    fn number(&mut self) -> Result<u64, String> {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        let digits = std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default();
        digits
            .parse()
            .map_err(|_| format!("number '{digits}' out of range"))
    }
    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out: Vec<u8> = Vec::new();
        loop {
            match self.next() {
                None => return Err("unterminated string".into()),
                Some(b'"') => break,
                Some(b'\\') => {
                    let c = match self.next() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'u') => {
                            let hex = self.s.get(self.i..self.i + 4).ok_or("short \\u escape")?;
                            self.i += 4;
                            let code = std::str::from_utf8(hex)
                                .ok()
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .ok_or("bad \\u escape")?;
                            char::from_u32(code)
                                .ok_or("\\u escape is not a character (surrogates unsupported)")?
                        }
                        _ => return Err(format!("bad escape at byte {}", self.i - 1)),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                Some(c) => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| "string is not UTF-8".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let line = object(&[
            ("key", Value::Str("a\"b\\c\n\u{1}é".into())),
            ("n", Value::Num(18446744073709551615)),
        ]);
        let map = parse_object(&line).unwrap();
        assert_eq!(map["key"], Value::Str("a\"b\\c\n\u{1}é".into()));
        assert_eq!(map["n"], Value::Num(u64::MAX));
    }

    #[test]
    fn whitespace_and_empty() {
        assert!(parse_object(" { } ").unwrap().is_empty());
        let m = parse_object("{ \"a\" : 1 , \"b\":\"x\\u0041\" }").unwrap();
        assert_eq!(m["b"], Value::Str("xA".into()));
    }

    #[test]
    fn refuses_what_it_does_not_handle() {
        for bad in [
            "{\"a\":[1]}",
            "{\"a\":1",
            "{\"a\":1} x",
            "{\"a\":-1}",
            "{\"a\":true}",
            "{a:1}",
        ] {
            assert!(parse_object(bad).is_err(), "{bad}");
        }
    }
}
