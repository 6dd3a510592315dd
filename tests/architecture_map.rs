//! ARCHITECTURE.md is the code map: every file and folder it names must exist. Named are
//! backticked paths (`src/...`, `disklayout/...`, `tests/...`, `benches/...`, `tools/...`,
//! `testbed/...`, with `*` in the last part matching any file), the same paths in the map's
//! drawing, and bare names (`mod.rs`, `gum/`, `resource_lease/binding.rs`) inside a section
//! about a folder (`### \`src/node/\``), which must lie somewhere under that folder; a bare
//! name in a section about no folder must lie somewhere in the repository.
use std::path::{Path, PathBuf};

/// The top folders a path in the map starts with.
const ROOTS: [&str; 6] = [
    "src/",
    "disklayout/",
    "tests/",
    "benches/",
    "tools/",
    "testbed/",
];
/// Extensions that make a backticked word a file name.
const EXTENSIONS: [&str; 7] = [".rs", ".md", ".sh", ".toml", ".json", ".csv", ".svg"];

/// One name the map gives and where: (line number, name, the section's folder if any).
#[derive(Debug)]
struct Mention {
    line: usize,
    name: String,
    folder: Option<String>,
}

fn is_rooted(word: &str) -> bool {
    ROOTS.iter().any(|root| word.starts_with(root)) || ROOTS.contains(&format!("{word}/").as_str())
}

/// A bare file or folder name: no spaces, no `::`, an extension or a trailing `/`.
fn is_bare_name(word: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '*');
    !word.is_empty()
        && !word.starts_with('/')
        && !word.starts_with('.')
        && word.chars().all(allowed)
        && (EXTENSIONS.iter().any(|ext| word.ends_with(ext))
            || (word.ends_with('/') && word.len() > 1))
}

/// The backticked spans of a line.
fn spans(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).collect()
}

/// Every name the map gives, with the folder of the section it stands in.
fn mentions(text: &str) -> Vec<Mention> {
    let mut found = Vec::new();
    let mut folder: Option<String> = None;
    let mut in_drawing = false;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.starts_with("```") {
            in_drawing = !in_drawing;
            continue;
        }
        if in_drawing {
            for word in line.split(|c: char| c.is_whitespace() || c == '(' || c == ')') {
                // `src/core::Node`: the path is what stands before the item.
                let word = word.split("::").next().unwrap_or("");
                if is_rooted(word) {
                    found.push(Mention {
                        line: number,
                        name: word.to_string(),
                        folder: None,
                    });
                }
            }
            continue;
        }
        if line.starts_with('#') {
            // A section about a folder (`src/node/`) or about files in one (`src/node/x.rs`).
            folder = spans(line)
                .first()
                .filter(|word| is_rooted(word))
                .map(|word| match word.ends_with('/') {
                    true => word.trim_end_matches('/').to_string(),
                    false => Path::new(word)
                        .parent()
                        .map(|parent| parent.display().to_string())
                        .unwrap_or_default(),
                });
        }
        for span in spans(line) {
            // `FORMAT.md §3`, `src/x.rs:12`: the name is the first word, without a line number.
            let word = span.split_whitespace().next().unwrap_or("");
            let word = word.split(':').next().unwrap_or("");
            if is_rooted(word) {
                found.push(Mention {
                    line: number,
                    name: word.to_string(),
                    folder: None,
                });
            } else if span == word && is_bare_name(word) {
                found.push(Mention {
                    line: number,
                    name: word.to_string(),
                    folder: folder.clone(),
                });
            }
        }
    }
    found
}

/// Every file and folder under `dir` (relative to `root`, `/`-separated), skipping `target`
/// and hidden folders.
fn walk(root: &Path, dir: &Path, into: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if let Ok(relative) = path.strip_prefix(root) {
            let mut text = relative.display().to_string();
            if path.is_dir() {
                text.push('/');
                into.push(text);
                walk(root, &path, into);
            } else {
                into.push(text);
            }
        }
    }
}

/// `pattern` with `*` in its last part matching any run of characters there.
fn matches(pattern: &str, path: &str) -> bool {
    let Some((prefix, suffix)) = pattern.split_once('*') else {
        return pattern == path;
    };
    path.len() >= prefix.len() + suffix.len()
        && path.starts_with(prefix)
        && path.ends_with(suffix)
        && !path[prefix.len()..path.len() - suffix.len()].contains('/')
}

/// The mentions that name nothing in `files` (the repository's files and folders, relative,
/// folders ending in `/`).
fn missing(mentions: &[Mention], files: &[String]) -> Vec<String> {
    let exists = |name: &str| {
        let file = name.trim_end_matches('/');
        files
            .iter()
            .any(|path| matches(file, path.trim_end_matches('/')))
    };
    let under = |folder: &str, name: &str| {
        let file = name.trim_end_matches('/');
        files.iter().any(|path| {
            let path = path.trim_end_matches('/');
            path.strip_prefix(folder)
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|rest| matches(file, rest) || rest.ends_with(&format!("/{file}")))
        })
    };
    mentions
        .iter()
        .filter(|mention| {
            let name = mention.name.as_str();
            match (&mention.folder, is_rooted(name)) {
                (_, true) => !exists(name),
                (Some(folder), false) => !under(folder, name),
                (None, false) => !files.iter().any(|path| {
                    let path = path.trim_end_matches('/');
                    let file = name.trim_end_matches('/');
                    path == file || path.ends_with(&format!("/{file}"))
                }),
            }
        })
        .map(|mention| match &mention.folder {
            Some(folder) => format!(
                "ARCHITECTURE.md:{}: `{}` (in the section about {folder}/)",
                mention.line, mention.name
            ),
            None => format!("ARCHITECTURE.md:{}: `{}`", mention.line, mention.name),
        })
        .collect()
}

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_file_the_map_names_exists() {
    let root = repository();
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    let mentions = mentions(&text);
    assert!(
        mentions.len() > 100,
        "the map names only {} files: is the parser broken?",
        mentions.len()
    );
    let missing = missing(&mentions, &files);
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names files that do not exist:\n{}",
        missing.join("\n")
    );
}

#[test]
fn a_missing_file_is_reported() {
    let files: Vec<String> = [
        "src/",
        "src/node/",
        "src/node/daemon.rs",
        "src/node/daemon/",
        "src/node/daemon/groups.rs",
        "src/node/event_ring.rs",
        "src/core/",
        "src/core/gum/",
        "src/core/gum/member.rs",
        "tests/",
        "tests/sim_seeds.rs",
    ]
    .iter()
    .map(|path| path.to_string())
    .collect();
    let text = "\
# Map
```
 ├─ src/node    the daemon
 ├─ src/gone    not here
```
### `src/node/`
`daemon.rs`, `daemon/groups.rs`, `groups.rs`, `daemon/`, `gone.rs`, `Node::step`, `ctl events`
and `src/node/event_*.rs`, `tests/sim_*.rs`, `tests/node_*.rs`, `src/node/daemon.rs:12`.
### `src/core/` — the protocol
- `gum/`: `member.rs`, `locker.rs`
## Tests
`member.rs`, `nowhere.rs`
";
    let missing = missing(&mentions(text), &files);
    let names: Vec<&str> = missing
        .iter()
        .filter_map(|line| line.split('`').nth(1))
        .collect();
    assert_eq!(
        names,
        [
            "src/gone",
            "gone.rs",
            "tests/node_*.rs",
            "locker.rs",
            "nowhere.rs"
        ],
        "{missing:?}"
    );
}
