//! GitHub Actions runner labels for a board, derived from its own `hartlm cpu --json` report, so
//! that jobs can target an architecture, RVV, a VLEN, an extension, a core type or the best tier.

use serde_json::Value;

/// CPU features worth a label, and the label each gets.
const FEATURE_LABELS: &[(&str, &str)] = &[
    ("v", "rvv"),
    ("zvfh", "zvfh"),
    ("zfa", "zfa"),
    ("zicond", "zicond"),
    ("zicbop", "zicbop"),
    ("xsmtvdot", "ime"),
    ("avx2", "avx2"),
    ("avx512f", "avx512"),
    ("avx512vnni", "avx512vnni"),
];

/// Labels for the cores hartlm would run on: the placement's cluster when the report has one
/// (on a K3, the X100 cores, not the A100 ones), else the whole machine. In order: architecture,
/// features, `vlen<N>`, the core name when the marchid is known, `tier-<best tier>`.
pub fn runner_labels(report: &Value) -> Result<Vec<String>, String> {
    let arch =
        report["arch"].as_str().ok_or("the report has no `arch`; is it `hartlm cpu --json` output?")?;
    let selected =
        report["selected"].as_str().ok_or("the report selects no tier: this machine cannot run hartlm")?;
    let placed = report["placement"]["cluster"].as_str();
    let cluster =
        report["clusters"].as_array().and_then(|cs| cs.iter().find(|c| c["name"].as_str() == placed));
    let source = cluster.unwrap_or(report);
    let has = |f: &str| {
        [&source["features"], &report["assumed"]]
            .iter()
            .any(|list| list.as_array().is_some_and(|l| l.iter().any(|x| x.as_str() == Some(f))))
    };
    let mut labels = vec![arch.to_string()];
    labels.extend(FEATURE_LABELS.iter().filter(|(f, _)| has(f)).map(|(_, l)| l.to_string()));
    if let Some(vlen) = source["vlen"].as_u64() {
        labels.push(format!("vlen{vlen}"));
    }
    if let Some(c) = cluster.filter(|c| !c["marchid"].is_null()) {
        labels.push(slug(c["name"].as_str().unwrap_or_default()));
    }
    labels.push(format!("tier-{selected}"));
    labels.retain(|l| !l.is_empty());
    labels.dedup();
    Ok(labels)
}

/// Lowercase letters, digits, `-` and `_`; anything else becomes `-`.
fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c.to_ascii_lowercase() } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(file: &str) -> Vec<String> {
        let path = format!("{}/tests/runner-labels/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        runner_labels(&serde_json::from_str(&text).unwrap()).unwrap()
    }

    #[test]
    fn spacemit_k1() {
        assert_eq!(
            labels("spacemit-k1.json"),
            ["riscv64", "rvv", "zvfh", "zicond", "ime", "vlen256", "x60", "tier-spacemit_ime"]
        );
    }

    #[test]
    fn spacemit_k3_labels_its_x100_cores_not_the_a100_ones() {
        assert_eq!(
            labels("spacemit-k3.json"),
            [
                "riscv64",
                "rvv",
                "zvfh",
                "zfa",
                "zicond",
                "zicbop",
                "vlen256",
                "x100",
                "tier-rv64gcv_zvfh_zfa_zicond_zicbop"
            ]
        );
    }

    #[test]
    fn qemu_has_no_core_name() {
        assert_eq!(
            labels("qemu-rva23u64.json"),
            ["riscv64", "rvv", "zfa", "zicond", "zicbop", "vlen128", "tier-rv64gcv"]
        );
    }

    #[test]
    fn x86_64_host() {
        assert_eq!(labels("x86-64-host.json"), ["x86_64", "avx2", "avx512", "avx512vnni", "tier-x86-64-v3"]);
    }

    #[test]
    fn reports_that_cannot_be_labelled_are_errors() {
        assert!(runner_labels(&serde_json::json!({"schema": 2})).unwrap_err().contains("hartlm cpu --json"));
        let none = serde_json::json!({"arch": "riscv64", "selected": null});
        assert!(runner_labels(&none).unwrap_err().contains("cannot run hartlm"));
    }
}
