//! Each crate's modules import each other in one direction only: no module of the core
//! (core/src/) or of the C layer (src/) reaches itself through the modules it uses. A
//! module is a file of the crate's source or a directory of it (a
//! directory's files may use its mod.rs, which is their common part, and mod.rs may use
//! them); inside a directory, the files other than mod.rs import each other in one
//! direction too.
//!
//! The graph is read from the source: every `crate::a::b` and `super::x` path outside
//! comments, with names that lib.rs re-exports (`crate::Engine`) followed to their module.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// A file's module path: `shared`, `cluster` (cluster/mod.rs), `cluster::node`.
type Module = Vec<String>;

fn modules(src: &Path) -> BTreeMap<Module, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(src.to_path_buf(), Vec::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                let mut p: Module = prefix.clone();
                p.push(name);
                stack.push((path, p));
            } else if path.extension().is_some_and(|e| e == "rs") {
                let mut m: Module = prefix.clone();
                if name != "mod" && !(prefix.is_empty() && name == "lib") {
                    m.push(name);
                }
                out.insert(m, strip_comments(&fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out
}

/// The code without `//` comments (doc comments included: their links are not imports)
/// and without string literals' contents, which may hold `crate::` as text.
fn strip_comments(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut in_str = false;
        let mut prev = ' ';
        let mut kept = String::new();
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if !in_str && c == '/' && chars.get(i + 1) == Some(&'/') {
                break;
            }
            if c == '"' && prev != '\\' {
                in_str = !in_str;
            }
            if !in_str {
                kept.push(c);
            }
            prev = if prev == '\\' && c == '\\' { ' ' } else { c };
            i += 1;
        }
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path that starts with `root::` in `code`, as its segments after the root; a
/// `root::{a::b, C}` group gives one path per member.
fn paths(code: &str, root: &str) -> Vec<Vec<String>> {
    let needle = format!("{root}::");
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = code[at..].find(&needle) {
        let start = at + i;
        at = start + needle.len();
        if code[..start].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        let rest = &code[at..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for member in group[..end].split(',') {
                out.push(segments(member.trim()));
            }
        } else {
            out.push(segments(rest));
        }
    }
    out
}

fn segments(rest: &str) -> Vec<String> {
    let mut segs = Vec::new();
    let mut s = rest;
    loop {
        let end = s.find(|c: char| !is_ident(c)).unwrap_or(s.len());
        if end == 0 {
            break;
        }
        segs.push(s[..end].to_string());
        match s[end..].strip_prefix("::") {
            Some(more) if more.starts_with(is_ident) => s = more,
            _ => break,
        }
    }
    segs
}

/// The module a path names: its longest prefix that is a module, following lib.rs's
/// re-exports for names used at the crate root.
fn resolve(
    path: &[String],
    all: &BTreeMap<Module, String>,
    reexports: &BTreeMap<String, Module>,
) -> Module {
    if let Some(first) = path.first() {
        if !all.contains_key(&vec![first.clone()]) {
            if let Some(m) = reexports.get(first) {
                return m.clone();
            }
        }
    }
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|m| all.contains_key(m))
        .unwrap_or_default()
}

/// Name → module of every `pub use a::b::{X, Y}` of lib.rs.
fn reexports(lib: &str) -> BTreeMap<String, Module> {
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let rest = rest.trim_end_matches(';');
        let (module, names) = match rest.find("::{") {
            Some(i) => (&rest[..i], rest[i + 3..].trim_end_matches('}')),
            None => rest.rsplit_once("::").unwrap(),
        };
        let module: Module = module.split("::").map(String::from).collect();
        for name in names.split(',') {
            out.insert(name.trim().to_string(), module.clone());
        }
    }
    out
}

/// The source directories of the crates, from the repository's root.
const CORE: &str = "core/src";
const C_LAYER: &str = "src";

/// Each module's imports of other modules, in the crate whose source is `dir`.
fn graph(dir: &str) -> BTreeMap<Module, BTreeSet<Module>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let all = modules(&src);
    let reexports = reexports(&all[&Vec::new()]);
    let mut graph = BTreeMap::new();
    for (module, code) in &all {
        if module.is_empty() {
            continue;
        }
        let mut uses = BTreeSet::new();
        for path in paths(code, "crate") {
            uses.insert(resolve(&path, &all, &reexports));
        }
        // `super::` from a directory's file names its mod.rs or a sibling.
        let parent: Module = module[..module.len() - 1].to_vec();
        for path in paths(code, "super") {
            let full: Vec<String> = parent.iter().cloned().chain(path).collect();
            uses.insert(resolve(&full, &all, &reexports));
        }
        // A directory's mod.rs uses the files it declares and re-exports.
        for line in code.lines() {
            let line = line.trim();
            for prefix in ["pub(crate) use ", "pub use ", "use "] {
                if let Some(rest) = line.strip_prefix(prefix) {
                    let first = segments(rest);
                    if let Some(child) = first.first() {
                        let mut m = module.clone();
                        m.push(child.clone());
                        if all.contains_key(&m) {
                            uses.insert(m);
                        }
                    }
                }
            }
        }
        uses.retain(|u| !u.is_empty() && u != module);
        graph.insert(module.clone(), uses);
    }
    graph
}

/// A cycle of `edges`, if there is one.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let from = stack.iter().position(|s| s == n).unwrap();
                let mut cycle = stack[from..].to_vec();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, state, stack) {
                return Some(c);
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    edges
        .keys()
        .find_map(|n| visit(n, edges, &mut state, &mut Vec::new()))
}

fn name(m: &[String]) -> String {
    m.join("::")
}

/// The imports between the top-level modules of the crate whose source is `dir`.
fn top_level_edges(dir: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, uses) in graph(dir) {
        let e = edges.entry(from[0].clone()).or_default();
        e.extend(uses.iter().map(|u| u[0].clone()).filter(|u| *u != from[0]));
    }
    edges
}

#[test]
fn top_level_modules_import_each_other_in_one_direction() {
    let core = top_level_edges(CORE);
    assert!(core.contains_key("shared") && core["engine"].contains("shared"));
    assert_eq!(find_cycle(&core), None, "{CORE}: {core:#?}");
    let c_layer = top_level_edges(C_LAYER);
    assert!(c_layer["ttl"].contains("presences") && c_layer["guard"].contains("types"));
    assert_eq!(find_cycle(&c_layer), None, "{C_LAYER}: {c_layer:#?}");
}

#[test]
fn files_of_a_directory_import_each_other_in_one_direction() {
    let graph = graph(CORE);
    let dirs: BTreeSet<Module> = graph
        .keys()
        .filter(|m| m.len() > 1)
        .map(|m| m[..m.len() - 1].to_vec())
        .collect();
    assert!(dirs.contains(&vec!["cluster".to_string()]));
    for dir in dirs {
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, uses) in &graph {
            if from.len() == dir.len() + 1 && from.starts_with(&dir) {
                let siblings = uses
                    .iter()
                    .filter(|u| u.len() == dir.len() + 1 && u.starts_with(&dir))
                    .map(|u| name(u));
                edges.entry(name(from)).or_default().extend(siblings);
            }
        }
        assert_eq!(find_cycle(&edges), None, "{}: {edges:#?}", name(&dir));
    }
}

#[test]
fn the_reader_sees_imports_and_skips_comments() {
    let code = strip_comments("use crate::a::B; // crate::c\nlet s = \"crate::d\";\n");
    assert_eq!(paths(&code, "crate"), [["a", "B"]]);
    assert_eq!(
        paths("use crate::{x::Y, Z};", "crate"),
        [
            vec!["x".to_string(), "Y".to_string()],
            vec!["Z".to_string()]
        ]
    );
    let mut found = BTreeMap::new();
    found.insert("a".into(), BTreeSet::from(["b".to_string()]));
    found.insert("b".into(), BTreeSet::from(["a".to_string()]));
    assert!(find_cycle(&found).is_some());
    found.insert("b".into(), BTreeSet::new());
    assert_eq!(find_cycle(&found), None);
}
