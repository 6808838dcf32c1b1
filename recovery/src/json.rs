//! The JSON this tool writes and reads, through serde_json: the dump/load line, and objects whose
//! keys keep the order the code lists them in (so `stats --json` reads like `stats`).

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde::{Deserialize, Serialize as DeriveSerialize};

/// One line of `apcdb dump`: `{"key":"<base64>","value":"<base64>","expires_at_ms":N}`. The field
/// order here is the byte layout of a dump; dumps made by earlier versions must still load and
/// dump back to the same bytes (tests/data/dump-0.1.0.jsonl).
#[derive(DeriveSerialize)]
pub struct DumpLine {
    pub key: String,
    pub value: String,
    pub expires_at_ms: u64,
}

/// A line `apcdb load` accepts: fields beyond these are ignored, a missing expiry means never.
#[derive(Deserialize)]
pub struct LoadLine {
    pub key: String,
    pub value: String,
    #[serde(default)]
    pub expires_at_ms: u64,
}

/// An object serialized with its fields in the order given.
pub struct Ordered(pub Vec<(&'static str, serde_json::Value)>);

impl Serialize for Ordered {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Ordered {
    /// One line of compact JSON, newline-terminated.
    pub fn line(&self) -> String {
        // Serializing strings, numbers and arrays of them into a String cannot fail.
        serde_json::to_string(self).expect("JSON of plain values") + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dump_line_layout() {
        let l = DumpLine {
            key: "a+/=".into(),
            value: String::new(),
            expires_at_ms: u64::MAX,
        };
        assert_eq!(
            serde_json::to_string(&l).unwrap(),
            r#"{"key":"a+/=","value":"","expires_at_ms":18446744073709551615}"#
        );
    }

    #[test]
    fn ordered_keeps_the_order() {
        let o = Ordered(vec![
            ("z", json!(1)),
            ("a", json!("x\"y")),
            ("m", json!([])),
        ]);
        assert_eq!(o.line(), "{\"z\":1,\"a\":\"x\\\"y\",\"m\":[]}\n");
    }

    #[test]
    fn load_line_rules() {
        let l: LoadLine = serde_json::from_str(r#"{"key":"YQ==","value":"","other":[1]}"#).unwrap();
        assert_eq!((l.key.as_str(), l.expires_at_ms), ("YQ==", 0));
        for bad in [
            r#"{"key":"YQ==","value":"","expires_at_ms":-1}"#,
            r#"{"key":"YQ==","value":1}"#,
            r#"{"value":""}"#,
            r#"{"key":"YQ==","value":""} x"#,
        ] {
            assert!(serde_json::from_str::<LoadLine>(bad).is_err(), "{bad}");
        }
    }
}
