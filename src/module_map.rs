//! The module map as a test: every `crate::X` a top-level module's non-test code names must be an edge
//! ARCHITECTURE.md's folder table allows ("it may import"), so the table is the rule and a forbidden import
//! fails `cargo test` instead of drifting past review.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The table's rows: module → the modules it may import.
fn allowed(architecture: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut rules = BTreeMap::new();
    let mut in_table = false;
    for line in architecture.lines() {
        if line.starts_with("| folder |") {
            assert!(line.contains("it may import"), "ARCHITECTURE.md's folder table lost its `it may import` column");
            in_table = true;
            continue;
        }
        if !in_table || line.starts_with("|---") {
            continue;
        }
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(folder), Some(imports)) = (cells.get(1), cells.get(3)) else { continue };
        let names = |cell: &str| -> Vec<String> {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(|n| n.trim_end_matches('/').trim_end_matches(".rs").to_string())
                .collect()
        };
        // "everything" (the top of the tree) may import any module; the test knows them from the tree.
        let may: BTreeSet<String> = if imports.starts_with("everything") {
            ["*".to_string()].into()
        } else {
            names(imports).into_iter().collect()
        };
        for module in names(folder) {
            rules.insert(module, may.clone());
        }
    }
    rules
}

/// A file's text without its `#[cfg(test)]` items (test modules may reach anywhere, e.g. the settings
/// layer's `init_process`).
pub(crate) fn without_test_code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if !is_test_cfg(line) {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        // Skip further attributes, then the item: one line ending in `;`, or a braced block.
        let mut depth = 0i32;
        let mut opened = false;
        for item in lines.by_ref() {
            if item.trim_start().starts_with("#[") && !opened {
                continue;
            }
            depth += item.matches('{').count() as i32 - item.matches('}').count() as i32;
            opened |= item.contains('{');
            if (!opened && item.trim_end().ends_with(';')) || (opened && depth <= 0) {
                break;
            }
        }
    }
    out
}

/// `#[cfg(test)]`, or a cfg that needs `test` among others (`all(test, feature = "slow-tests")`).
fn is_test_cfg(line: &str) -> bool {
    let l = line.trim();
    l == "#[cfg(test)]" || (l.starts_with("#[cfg(all(") && l.contains("(test,"))
}

/// Files of `dir` that are test-only modules (declared under `#[cfg(test)]` by their parent).
pub(crate) fn test_only_files(root: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for file in rust_files(root) {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            if !is_test_cfg(line) {
                continue;
            }
            let Some(mut next) = lines.next() else { break };
            while next.trim_start().starts_with("#[") {
                match lines.next() {
                    Some(n) => next = n,
                    None => break,
                }
            }
            let next = next.trim();
            let Some(name) = next.strip_prefix("pub(crate) mod ").or_else(|| next.strip_prefix("mod ")) else {
                continue;
            };
            let Some(name) = name.strip_suffix(';') else { continue };
            let dir = if file.file_name().is_some_and(|n| n == "mod.rs" || n == "main.rs") {
                file.parent().unwrap().to_path_buf()
            } else {
                file.with_extension("")
            };
            out.insert(dir.join(format!("{name}.rs")));
            out.insert(dir.join(name));
        }
    }
    out
}

pub(crate) fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Every `crate::X` edge from non-test code: (from, to) → the first place it appears.
fn edges(src: &Path) -> BTreeMap<(String, String), String> {
    let tests = test_only_files(src);
    let mut out = BTreeMap::new();
    for file in rust_files(src) {
        if tests.iter().any(|t| file.starts_with(t)) {
            continue;
        }
        let rel = file.strip_prefix(src).unwrap();
        let from = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if from == "main" || from == "module_map" {
            continue;
        }
        let text = without_test_code(&std::fs::read_to_string(&file).unwrap());
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for (i, _) in code.match_indices("crate::") {
                let to: String = code[i + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !to.is_empty() && to != from {
                    out.entry((from.clone(), to)).or_insert_with(|| format!("src/{}:{}", rel.display(), n + 1));
                }
            }
        }
    }
    out
}

#[test]
fn every_import_between_modules_is_an_edge_architecture_md_allows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules = allowed(&std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap());
    assert!(rules.len() >= 10, "ARCHITECTURE.md's folder table was not read: {rules:?}");
    let mut problems = Vec::new();
    for ((from, to), at) in edges(&root.join("src")) {
        match rules.get(&from) {
            None => problems.push(format!("{at}: module `{from}` has no row in ARCHITECTURE.md's folder table")),
            Some(ok) if !ok.contains(&to) && !ok.contains("*") => {
                problems.push(format!("{at}: `{from}` imports `crate::{to}`, which ARCHITECTURE.md does not allow it"))
            }
            Some(_) => {}
        }
    }
    assert!(problems.is_empty(), "module map broken:\n{}", problems.join("\n"));
}

#[test]
fn the_rule_catches_a_forbidden_import() {
    // The same check over a made-up tree: `report` importing `ui` is refused, test modules are not read.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("report")).unwrap();
    std::fs::write(
        src.join("report/mod.rs"),
        "use crate::config::X;\nfn f() { crate::ui::diag!(\"x\"); }\n#[cfg(test)]\nmod tests {\n    use crate::cli::Y;\n}\n",
    )
    .unwrap();
    let found = edges(src);
    let keys: Vec<_> = found.keys().map(|(a, b)| format!("{a}->{b}")).collect();
    assert_eq!(keys, ["report->config", "report->ui"]);
    let rules = allowed("| folder | its job | it may import |\n|---|---|---|\n| `report/` | x | `config/` |\n");
    assert!(rules["report"].contains("config") && !rules["report"].contains("ui"));
}

#[test]
fn the_leaf_modules_import_nothing_of_the_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let leaves = ["cadence", "aws", "crash"];
    let bad: Vec<_> = edges(&root).into_iter().filter(|((from, _), _)| leaves.contains(&from.as_str())).collect();
    assert!(bad.is_empty(), "a leaf imports the crate: {bad:?}");
}
