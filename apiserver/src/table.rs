// TEMP
use serde_json::Value;
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: &'static str,
    pub kind: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: u8,
}
static COLS: &[Column] = &[Column { name: "Name", kind: "string", format: "name", description: "", priority: 0 }];
pub fn columns(_g: &str, _r: &str) -> &'static [Column] {
    COLS
}
pub fn cells(_g: &str, _r: &str, o: &Value, _now: std::time::SystemTime) -> Vec<Value> {
    vec![o["metadata"]["name"].clone()]
}
