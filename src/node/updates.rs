//! `wolfpack ctl update` and `ctl get`: the words of the admin request turned into a database
//! update for GUM, and a local read of the replicated database.
//!
//! `update PATH VALUE [--type text|u64|i64|bool|nodes]`, `delete PATH`; `get PATH` (the key
//! and every key under it).

use crate::core::db::{Database, Op, Path, Update, Value};

/// The encoded update the words describe (the request after its command: `update` or
/// `delete`), or a message naming what is wrong.
pub fn parse_update(command: &str, words: &[&str]) -> Result<Vec<u8>, String> {
    let words: Vec<&str> = words
        .iter()
        .copied()
        .filter(|word| *word != "--json")
        .collect();
    let op = match (command, words.as_slice()) {
        ("update", [path, value]) => Op::Put {
            path: parse_path(path)?,
            value: Value::Text((*value).to_string()),
        },
        ("update", [path, value, "--type", kind]) => Op::Put {
            path: parse_path(path)?,
            value: parse_value(value, kind)?,
        },
        ("delete", [path]) => Op::Delete {
            path: parse_path(path)?,
        },
        _ => {
            return Err(
                "usage: update PATH VALUE [--type text|u64|i64|bool|nodes] | delete PATH"
                    .to_string(),
            )
        }
    };
    Update { ops: vec![op] }
        .encode()
        .map_err(|error| format!("update refused: {error}"))
}

fn parse_path(text: &str) -> Result<Path, String> {
    Path::parse(text).map_err(|error| format!("bad path '{text}': {error}"))
}

fn parse_value(text: &str, kind: &str) -> Result<Value, String> {
    let value = match kind {
        "text" => Value::Text(text.to_string()),
        "u64" => Value::U64(
            text.parse()
                .map_err(|_| format!("--type u64: '{text}' is not an unsigned integer"))?,
        ),
        "i64" => Value::I64(
            text.parse()
                .map_err(|_| format!("--type i64: '{text}' is not an integer"))?,
        ),
        "bool" => Value::Bool(
            text.parse()
                .map_err(|_| format!("--type bool: '{text}' is not true or false"))?,
        ),
        "nodes" => {
            let mut ids = Vec::new();
            for part in text.split(',').filter(|part| !part.is_empty()) {
                let id: u8 = part
                    .parse()
                    .map_err(|_| format!("--type nodes: '{part}' is not a node id"))?;
                ids.push(id);
            }
            ids.sort_unstable();
            ids.dedup();
            Value::NodeList(ids)
        }
        other => return Err(format!("--type: unknown type '{other}'")),
    };
    value
        .validate()
        .map_err(|error| format!("bad value: {error}"))?;
    Ok(value)
}

/// The entries at and under a path, one per line (`PATH TYPE VERSION VALUE`), or as JSON.
pub fn render_get(database: &Database, words: &[&str], json: bool) -> Result<String, String> {
    let paths: Vec<&str> = words
        .iter()
        .copied()
        .filter(|word| *word != "--json")
        .collect();
    let [path] = paths.as_slice() else {
        return Err("usage: get PATH [--json]".to_string());
    };
    let path = parse_path(path)?;
    let entries: Vec<(String, &Value, u64)> = database
        .list(&path)
        .map(|(path, value, version)| (path.to_string(), value, version))
        .collect();
    if json {
        let items: Vec<String> = entries
            .iter()
            .map(|(path, value, version)| {
                format!(
                    "{{\"path\":{},\"type\":{},\"version\":{version},\"value\":{}}}",
                    crate::json::quoted(path),
                    crate::json::quoted(value.type_name()),
                    json_value(value)
                )
            })
            .collect();
        return Ok(format!(
            "{{\"sequence\":{},\"entries\":[{}]}}\n",
            database.sequence(),
            items.join(",")
        ));
    }
    let mut text = String::new();
    for (path, value, version) in entries {
        text.push_str(&format!("{path} {} {version} {value}\n", value.type_name()));
    }
    Ok(text)
}

/// A value as JSON: text as a string, numbers and booleans as such, node lists as arrays.
fn json_value(value: &Value) -> String {
    match value {
        Value::Text(text) => crate::json::quoted(text),
        Value::U64(number) => number.to_string(),
        Value::I64(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        Value::Bytes(_) => crate::json::quoted(&value.to_string()),
        Value::NodeList(ids) => {
            let ids: Vec<String> = ids.iter().map(u8::to_string).collect();
            format!("[{}]", ids.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_names_what_is_wrong() {
        assert!(parse_update("update", &["properties/a", "1"]).is_ok());
        assert!(parse_update("update", &["properties/a", "7", "--type", "u64"]).is_ok());
        assert!(parse_update("delete", &["properties/a"]).is_ok());
        let error = parse_update("update", &["properties/a", "x", "--type", "u64"]).unwrap_err();
        assert!(error.contains("--type u64"), "{error}");
        let error = parse_update("update", &["nowhere/a", "x"]).unwrap_err();
        assert!(error.contains("bad path"), "{error}");
        assert!(parse_update("update", &["a"])
            .unwrap_err()
            .starts_with("usage"));
    }
}
