//! `wolfpack ctl update|delete` and `ctl get`, the daemon's side: a parsed request
//! (`crate::admin::AdminRequest`) turned into a database update for GUM, and a local read of
//! the replicated database.

use crate::core::db::{Database, Op, Path, Update, Value};

/// `update PATH VALUE` (`value`: `Some`) or `delete PATH` (`None`) as an encoded update.
pub fn encode(path: &Path, value: Option<&Value>) -> Result<Vec<u8>, String> {
    let op = match value {
        Some(value) => Op::Put {
            path: path.clone(),
            value: value.clone(),
        },
        None => Op::Delete { path: path.clone() },
    };
    Update { ops: vec![op] }
        .encode()
        .map_err(|error| format!("update refused: {error}"))
}

/// The entries at and under a path, one per line (`PATH TYPE VERSION VALUE`), or as JSON.
pub fn render_get(database: &Database, path: &Path, json: bool) -> String {
    let entries: Vec<(String, &Value, u64)> = database
        .list(path)
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
        return format!(
            "{{\"sequence\":{},\"entries\":[{}]}}\n",
            database.sequence(),
            items.join(",")
        );
    }
    let mut text = String::new();
    for (path, value, version) in entries {
        text.push_str(&format!("{path} {} {version} {value}\n", value.type_name()));
    }
    text
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
    fn an_update_is_one_put_or_delete_and_get_lists_the_subtree() {
        let path = Path::parse("properties/a").expect("path");
        let put = encode(&path, Some(&Value::U64(7))).expect("encodes");
        let update = Update::decode(&put).expect("decodes");
        assert_eq!(
            update.ops,
            vec![Op::Put {
                path: path.clone(),
                value: Value::U64(7)
            }]
        );
        let mut database = Database::default();
        database.apply(1, &update).expect("applies");
        let text = render_get(&database, &Path::parse("properties").expect("path"), false);
        assert_eq!(text, "properties/a u64 1 7\n");
        let delete = Update::decode(&encode(&path, None).expect("encodes")).expect("decodes");
        assert_eq!(delete.ops, vec![Op::Delete { path }]);
    }
}
