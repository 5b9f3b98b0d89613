// TEMP
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub reason: &'static str,
    pub field: String,
    pub message: String,
}
pub fn validate(_g: &str, _r: &str, _o: &serde_json::Value, _old: Option<&serde_json::Value>) -> Vec<FieldError> {
    vec![]
}
