//! The engine's layering, read from its sources: element types depend on nothing else in the
//! engine, kernels only on types (and the build's facts), so nothing below `tensor` can reach up.

use std::path::Path;

/// Every `crate::<module>` a file's non-test code names.
fn crate_modules(src: &str) -> Vec<String> {
    let code = src.split("#[cfg(test)]\nmod tests").next().unwrap_or(src);
    let code: String =
        code.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    code.match_indices("crate::")
        .map(|(i, _)| {
            code[i + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>()
        })
        .collect()
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

fn check(dir: &str, allowed: &[&str]) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let paths = if dir.ends_with(".rs") { vec![src.join(dir)] } else { files(&src.join(dir)) };
    assert!(!paths.is_empty(), "{dir}: no sources");
    for p in paths {
        for m in crate_modules(&std::fs::read_to_string(&p).unwrap()) {
            assert!(
                allowed.contains(&m.as_str()),
                "{} names crate::{m}; it may only use {allowed:?}",
                p.display()
            );
        }
    }
}

#[test]
fn types_depend_on_nothing_else_in_the_engine() {
    check("types", &["types"]);
}

#[test]
fn kernels_depend_only_on_types_and_the_build_facts() {
    check("kernels", &["kernels", "types", "build_info", "testdata"]);
    check("testdata.rs", &["types"]);
    check("build_info.rs", &[]);
}

#[test]
fn the_check_sees_a_reference_upward() {
    assert_eq!(
        crate_modules("use crate::tensor::Weight;\nfn f() { crate::types::x() }"),
        ["tensor", "types"]
    );
    assert!(crate_modules("// crate::tensor\n#[cfg(test)]\nmod tests { use crate::selftest; }").is_empty());
}
