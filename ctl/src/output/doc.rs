//! An ordered document tree: a response shaped as etcdctl's JSON shapes it
//! (field names, order, omitted zero values), rendered by `json` and `yaml`.

/// One value of a response document.
#[derive(Debug, Clone, PartialEq)]
pub enum Doc {
    Obj(Vec<(&'static str, Doc)>),
    Arr(Vec<Doc>),
    Str(String),
    /// Raw bytes (keys, values): base64 in JSON, readable in YAML.
    Bytes(Vec<u8>),
    Int(i64),
    Uint(u64),
    Bool(bool),
    Null,
}

/// Builds an object field by field. The `*_nz` methods follow Go's
/// `omitempty`: zero values, empty strings and empty lists are left out.
#[derive(Default)]
pub struct Obj(Vec<(&'static str, Doc)>);

impl Obj {
    pub fn new() -> Obj {
        Obj(Vec::new())
    }

    /// A field that is always present.
    pub fn field(mut self, name: &'static str, value: Doc) -> Obj {
        self.0.push((name, value));
        self
    }

    pub fn int_nz(self, name: &'static str, value: i64) -> Obj {
        if value == 0 { self } else { self.field(name, Doc::Int(value)) }
    }

    pub fn uint_nz(self, name: &'static str, value: u64) -> Obj {
        if value == 0 { self } else { self.field(name, Doc::Uint(value)) }
    }

    pub fn bool_nz(self, name: &'static str, value: bool) -> Obj {
        if value { self.field(name, Doc::Bool(true)) } else { self }
    }

    pub fn str_nz(self, name: &'static str, value: &str) -> Obj {
        if value.is_empty() { self } else { self.field(name, Doc::Str(value.to_string())) }
    }

    pub fn bytes_nz(self, name: &'static str, value: &[u8]) -> Obj {
        if value.is_empty() { self } else { self.field(name, Doc::Bytes(value.to_vec())) }
    }

    pub fn some(self, name: &'static str, value: Option<Doc>) -> Obj {
        match value {
            Some(v) => self.field(name, v),
            None => self,
        }
    }

    pub fn list_nz(self, name: &'static str, items: Vec<Doc>) -> Obj {
        if items.is_empty() { self } else { self.field(name, Doc::Arr(items)) }
    }

    /// Appends every field of another object (Go's embedded structs).
    pub fn embed(mut self, other: Option<Doc>) -> Obj {
        if let Some(Doc::Obj(fields)) = other {
            self.0.extend(fields);
        }
        self
    }

    pub fn build(self) -> Doc {
        Doc::Obj(self.0)
    }
}
