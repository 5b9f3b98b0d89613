//! JSON stored in values, parsed with its object keys in document order (so
//! YAML output keeps the order the writer chose).

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

#[derive(Debug, Clone, PartialEq)]
pub enum JsonValue {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<JsonValue>),
    Object(Vec<(String, JsonValue)>),
}

impl JsonValue {
    /// The value if `bytes` are one JSON object or array (scalars such as
    /// `123` or `"x"` stay plain text).
    pub fn parse_structured(bytes: &[u8]) -> Option<JsonValue> {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace())?;
        if *first != b'{' && *first != b'[' {
            return None;
        }
        serde_json::from_slice(bytes).ok()
    }
}

impl<'de> Deserialize<'de> for JsonValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<JsonValue, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = JsonValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<JsonValue, E> {
        Ok(JsonValue::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<JsonValue, E> {
        Ok(JsonValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<JsonValue, E> {
        Ok(JsonValue::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<JsonValue, E> {
        Ok(JsonValue::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<JsonValue, E> {
        // JSON cannot hold NaN or infinities, so this always succeeds.
        Ok(serde_json::Number::from_f64(v).map_or(JsonValue::Null, JsonValue::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<JsonValue, E> {
        Ok(JsonValue::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<JsonValue, E> {
        Ok(JsonValue::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(JsonValue::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonValue, A::Error> {
        let mut fields = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, JsonValue>()? {
            fields.push((key, value));
        }
        Ok(JsonValue::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_key_order_and_only_takes_structures() {
        let v = JsonValue::parse_structured(br#" {"z":1,"a":[true,null,"s",1.5]}"#);
        let expected = JsonValue::Object(vec![
            ("z".into(), JsonValue::Number(1.into())),
            (
                "a".into(),
                JsonValue::Array(vec![
                    JsonValue::Bool(true),
                    JsonValue::Null,
                    JsonValue::String("s".into()),
                    JsonValue::Number(serde_json::Number::from_f64(1.5).expect("finite")),
                ]),
            ),
        ]);
        assert_eq!(v, Some(expected));
        assert_eq!(JsonValue::parse_structured(b"123"), None);
        assert_eq!(JsonValue::parse_structured(b"{not json"), None);
    }
}
