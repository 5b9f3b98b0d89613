// TEMP
pub fn apply_defaults(_g: &str, _r: &str, _o: &mut serde_json::Value) {}
