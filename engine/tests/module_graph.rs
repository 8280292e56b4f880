//! The engine's modules form no cycle, at file level or at folder level, and
//! the folders are used in one direction: each uses only folders below it in
//! [`LAYERS`] (the order `engine/src/lib.rs` documents).
//!
//! The graph is read from the sources: every `crate::…`, `super::…` and
//! `self::…` path outside comments and `#[cfg(test)]` blocks is an edge from
//! its file to the deepest module file the path names. `mod x;` declarations
//! are not edges (a folder's `mod.rs` only declares and documents).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level folders (and files) of `engine/src`, bottom first.
const LAYERS: &[&str] = &[
    "error", "formats", "kernels", "family", "text", "memory", "model", "exec", "guard", "convert",
    "cli",
];

type Module = Vec<String>;

fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut m: Module = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if m.last().is_some_and(|l| l == "mod" || l == "lib") {
        m.pop();
    }
    m
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The source without comments, string literals and `#[cfg(test)]` items.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if text[i..].starts_with("//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if text[i..].starts_with("/*") {
            i += text[i..].find("*/").map_or(b.len() - i, |n| n + 2);
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if text[i..].starts_with("#[cfg(test)]") {
            // Skip the attribute and the item after it (to its matching brace,
            // or to a `;` for a one-line item).
            i += "#[cfg(test)]".len();
            while i < b.len() && b[i] != b'{' && b[i] != b';' {
                i += 1;
            }
            if i < b.len() && b[i] == b'{' {
                let mut depth = 0;
                while i < b.len() {
                    match b[i] {
                        b'{' => depth += 1,
                        b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            i += 1;
        } else {
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn ident_len(s: &str) -> usize {
    s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len())
}

/// Paths that follow `prefix::` in `code`, with `{…}` groups expanded to
/// their items' first segments.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = vec![];
    let needle = format!("{prefix}::");
    let mut from = 0;
    while let Some(at) = code[from..].find(&needle) {
        let start = from + at;
        from = start + needle.len();
        let before = code[..start].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut segs = vec![];
        let mut j = from;
        loop {
            let rest = &code[j..];
            if rest.starts_with('{') {
                // A group: each item's leading segments.
                let mut depth = 0;
                let mut end = j;
                for (k, c) in rest.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = j + k;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                for item in code[j + 1..end].split(',') {
                    let item = item.trim();
                    let mut s = segs.clone();
                    for seg in item.split("::") {
                        let n = ident_len(seg.trim());
                        if n == 0 || seg.trim() == "self" {
                            break;
                        }
                        s.push(seg.trim()[..n].to_string());
                    }
                    out.push(s);
                }
                break;
            }
            let n = ident_len(rest);
            if n == 0 {
                out.push(segs);
                break;
            }
            segs.push(rest[..n].to_string());
            j += n;
            if code[j..].starts_with("::") {
                j += 2;
            } else {
                out.push(segs);
                break;
            }
        }
    }
    out
}

struct Graph {
    /// Module → the modules it uses.
    edges: BTreeMap<Module, BTreeSet<Module>>,
}

fn read_graph() -> Graph {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    rust_files(&src, &mut files);
    files.retain(|f| !f.starts_with(src.join("bin")));
    let modules: BTreeSet<Module> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut edges = BTreeMap::new();
    for f in &files {
        let me = module_of(&src, f);
        let is_folder = f.ends_with("mod.rs") || f.ends_with("lib.rs");
        let code = code_only(&std::fs::read_to_string(f).unwrap());
        let mut targets: Vec<Module> = paths_after(&code, "crate");
        let base_self = me.clone();
        let mut base_super = me.clone();
        if !is_folder {
            base_super.pop();
        }
        base_super.pop();
        let here = if is_folder {
            me.clone()
        } else {
            me[..me.len() - 1].to_vec()
        };
        let _ = base_self;
        for p in paths_after(&code, "super") {
            targets.push(base_super.iter().cloned().chain(p).collect());
        }
        for p in paths_after(&code, "self") {
            targets.push(here.iter().cloned().chain(p).collect());
        }
        let mut used = BTreeSet::new();
        for t in targets {
            // The deepest module the path names.
            let mut m = t;
            while !m.is_empty() && !modules.contains(&m) {
                m.pop();
            }
            if m != me && !m.is_empty() {
                used.insert(m);
            }
        }
        edges.insert(me, used);
    }
    Graph { edges }
}

/// Strongly connected components with more than one member (Tarjan).
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct T<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on: BTreeSet<&'a Module>,
        out: Vec<Vec<Module>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a Module) {
        let i = t.index.len();
        t.index.insert(v, i);
        t.low.insert(v, i);
        t.stack.push(v);
        t.on.insert(v);
        let edges = t.edges;
        for w in edges.get(v).into_iter().flatten() {
            if !edges.contains_key(w) {
                continue;
            }
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut scc = vec![];
            loop {
                let w = t.stack.pop().unwrap();
                t.on.remove(w);
                scc.push(w.clone());
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                scc.sort();
                t.out.push(scc);
            }
        }
    }
    let mut t = T {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: vec![],
        on: BTreeSet::new(),
        out: vec![],
    };
    for v in edges.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

fn name(m: &Module) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

fn folder_edges(g: &Graph) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut f: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (from, tos) in &g.edges {
        let Some(a) = from.first() else { continue };
        let entry = f.entry(vec![a.clone()]).or_default();
        for to in tos {
            if let Some(b) = to.first() {
                if b != a {
                    entry.insert(vec![b.clone()]);
                }
            }
        }
    }
    f
}

#[test]
fn the_reader_sees_the_edges_it_should() {
    // A check that cannot fail is no check: the graph must hold edges that
    // are known to exist, or the parser has gone blind.
    let g = read_graph();
    let m = |s: &str| -> Module { s.split("::").map(String::from).collect() };
    assert!(g.edges.len() > 30, "only {} modules read", g.edges.len());
    assert!(g.edges[&m("exec::decoder")].contains(&m("kernels::matmul")));
    assert!(g.edges[&m("formats::gguf")].contains(&m("error")));
    let code =
        code_only("use crate::{a::b, c};\n// crate::d\n#[cfg(test)]\nmod t { use crate::e; }\n");
    assert_eq!(
        paths_after(&code, "crate"),
        vec![
            vec!["a".to_string(), "b".to_string()],
            vec!["c".to_string()]
        ]
    );
    let toy: BTreeMap<Module, BTreeSet<Module>> = [
        (m("a"), BTreeSet::from([m("b")])),
        (m("b"), BTreeSet::from([m("a")])),
    ]
    .into();
    assert_eq!(cycles(&toy).len(), 1);
}

#[test]
fn no_module_cycle_at_file_level() {
    let g = read_graph();
    let found = cycles(&g.edges);
    let text: Vec<String> = found
        .iter()
        .map(|c| c.iter().map(name).collect::<Vec<_>>().join(" ↔ "))
        .collect();
    assert!(found.is_empty(), "module cycles:\n{}", text.join("\n"));
}

#[test]
fn folders_are_used_bottom_up() {
    let g = read_graph();
    let rank = |m: &Module| {
        LAYERS
            .iter()
            .position(|l| m.first().is_some_and(|f| f == l))
    };
    let mut wrong = vec![];
    for (from, tos) in folder_edges(&g) {
        let Some(rf) = rank(&from) else {
            wrong.push(format!(
                "{}: not in LAYERS (add it in its place)",
                name(&from)
            ));
            continue;
        };
        for to in tos {
            match rank(&to) {
                Some(rt) if rt < rf => {}
                _ => wrong.push(format!("{} uses {}", name(&from), name(&to))),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "upward or unknown uses:\n{}",
        wrong.join("\n")
    );
}

/// Crates only the binaries may use: the library knows no terminal.
const TERMINAL_CRATES: &[(&str, &str)] = &[
    ("clap", "clap::"),
    ("indicatif", "indicatif::"),
    ("tracing-subscriber", "tracing_subscriber::"),
    ("rustyline", "rustyline::"),
];

#[test]
fn the_library_knows_no_terminal() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let cli_feature = manifest
        .lines()
        .find(|l| l.starts_with("cli = "))
        .expect("engine/Cargo.toml declares a `cli` feature");
    for (krate, _) in TERMINAL_CRATES {
        let dep = manifest
            .lines()
            .find(|l| l.starts_with(&format!("{krate} ")) || l.starts_with(&format!("{krate}.")))
            .unwrap_or_else(|| panic!("{krate} is not a dependency any more: drop it here"));
        assert!(
            dep.contains("optional = true"),
            "{krate} must be optional: {dep}"
        );
        assert!(
            cli_feature.contains(&format!("\"dep:{krate}\"")),
            "the cli feature must enable {krate}"
        );
    }
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    assert!(lib.contains("#[cfg(feature = \"cli\")]\npub mod cli;"));

    // Outside src/cli and src/bin no code names those crates.
    let src = root.join("src");
    let mut files = vec![];
    rust_files(&src, &mut files);
    let mut found = vec![];
    for f in files {
        if f.starts_with(src.join("cli")) || f.starts_with(src.join("bin")) {
            continue;
        }
        let code = code_only(&std::fs::read_to_string(&f).unwrap());
        for (_, path) in TERMINAL_CRATES {
            let attrs = ["#[arg(", "#[command(", "derive(Parser", "ValueEnum"];
            if code.contains(path) || attrs.iter().any(|a| code.contains(a)) {
                found.push(format!(
                    "{}: {path}",
                    f.strip_prefix(&root).unwrap().display()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "terminal crates in the library:\n{}",
        found.join("\n")
    );
}
