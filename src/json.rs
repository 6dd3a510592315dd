//! A minimal JSON writer for `--json` output (ctl answers, disk dumps); the dependency set has no serde, and output-only
//! JSON needs only values, escaping and nesting.
use std::fmt::Write;

/// A JSON value.
pub enum Json {
    Bool(bool),
    Number(u64),
    Text(String),
    Array(Vec<Json>),
    Object(Vec<(&'static str, Json)>),
}

impl Json {
    pub fn text(text: impl Into<String>) -> Json {
        Json::Text(text.into())
    }

    /// Renders the value as compact JSON text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out);
        out
    }

    fn render_into(&self, out: &mut String) {
        match self {
            Json::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
            Json::Number(value) => {
                let _ = write!(out, "{value}");
            }
            Json::Text(text) => escape_into(text, out),
            Json::Array(items) => {
                out.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    item.render_into(out);
                }
                out.push(']');
            }
            Json::Object(fields) => {
                out.push('{');
                for (index, (key, value)) in fields.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    escape_into(key, out);
                    out.push(':');
                    value.render_into(out);
                }
                out.push('}');
            }
        }
    }
}

/// The numbers of the array `"name":[1,2,...]` in compact JSON this binary wrote itself (the
/// demo, testbed and benchmarks read `ctl status --json` without a JSON parser). Missing or
/// malformed arrays give an empty list.
pub fn number_array<T: std::str::FromStr>(json: &str, name: &str) -> Vec<T> {
    let key = format!("\"{name}\":[");
    let Some(start) = json.find(&key).map(|at| at + key.len()) else {
        return Vec::new();
    };
    let Some(length) = json[start..].find(']') else {
        return Vec::new();
    };
    json[start..start + length]
        .split(',')
        .filter_map(|number| number.trim().parse().ok())
        .collect()
}

/// `text` as a JSON string literal, quotes included.
pub fn quoted(text: &str) -> String {
    let mut out = String::new();
    escape_into(text, &mut out);
    out
}

fn escape_into(text: &str, out: &mut String) {
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            control if (control as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", control as u32);
            }
            other => out.push(other),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_number_arrays_of_compact_json() {
        let json = r#"{"members":[1,2,3],"groups_online_here":[],"epoch":4}"#;
        assert_eq!(number_array::<u8>(json, "members"), vec![1, 2, 3]);
        assert!(number_array::<u8>(json, "groups_online_here").is_empty());
        assert!(number_array::<u8>(json, "absent").is_empty());
        assert!(number_array::<u8>(r#"{"members":[1,2"#, "members").is_empty());
    }

    #[test]
    fn renders_nested_values_with_escapes() {
        let value = Json::Object(vec![
            ("name", Json::text("a\"b\\c\n\u{1}")),
            (
                "list",
                Json::Array(vec![Json::Number(1), Json::Bool(false)]),
            ),
        ]);
        assert_eq!(
            value.render(),
            r#"{"name":"a\"b\\c\n\u0001","list":[1,false]}"#
        );
    }
}
