//! Whether a tier library file is the one the release shipped for that tier, decided from its
//! bytes before anything loads it: ELF header and architecture, the tier tag section, size and sha256.

use std::collections::BTreeMap;

use crate::Arch;

/// What the release manifest (`manifest.json` beside `bin/` and `lib/`) says of one library.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub tier: String,
    pub size: u64,
    pub sha256: String,
}

/// The manifest's libraries by file name. Only the fields checked here are read; the schema
/// version must be one this launcher knows.
pub fn parse_manifest(text: &str) -> Result<BTreeMap<String, Expected>, String> {
    #[derive(serde::Deserialize)]
    struct Tier {
        id: String,
        file: String,
        sha256: String,
        size: u64,
    }
    #[derive(serde::Deserialize)]
    struct Manifest {
        schema_version: u32,
        tiers: Vec<Tier>,
    }
    let m: Manifest =
        serde_json::from_str(text).map_err(|e| format!("manifest.json is not a hartlm manifest ({e})"))?;
    if m.schema_version != 1 {
        return Err(format!("manifest.json has schema version {}, this launcher reads 1", m.schema_version));
    }
    let mut out = BTreeMap::new();
    for t in m.tiers {
        // `file` is `lib/<name>`: only the name is looked up, never a path the manifest chose.
        let name = t.file.rsplit('/').next().unwrap_or(&t.file).to_string();
        out.insert(name, Expected { tier: t.id, size: t.size, sha256: t.sha256.to_ascii_lowercase() });
    }
    Ok(out)
}

fn elf_machine(arch: Arch) -> (u16, &'static str) {
    match arch {
        Arch::Riscv64 => (243, "riscv64"),
        Arch::X86_64 => (62, "x86-64"),
    }
}

fn machine_name(m: u16) -> String {
    match m {
        243 => "riscv64".into(),
        62 => "x86-64".into(),
        183 => "aarch64".into(),
        3 => "x86 (32-bit)".into(),
        40 => "arm".into(),
        other => format!("machine {other}"),
    }
}

/// The tier id in `elf`'s [`hartlm_abi::TIER_SECTION`], after checking that it is a 64-bit
/// little-endian shared object for `arch` whose section table lies within the file (a truncated
/// library fails here, since the table is at its end).
pub fn tier_tag(elf: &[u8], arch: Arch) -> Result<String, String> {
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| elf.get(o..o + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap_or([0; 4])));
    let u64_at = |o: usize| elf.get(o..o + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" {
        return Err(format!("not an ELF file ({} bytes)", elf.len()));
    }
    if elf[4] != 2 || elf[5] != 1 {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let (want, want_name) = elf_machine(arch);
    let machine = u16_at(18).unwrap_or(0);
    if machine != want {
        return Err(format!("built for {}, not {want_name}", machine_name(machine)));
    }
    if u16_at(16) != Some(3) {
        return Err("not a shared library (ELF type is not DYN)".into());
    }
    let truncated = || "truncated: its section table lies past the end of the file".to_string();
    let shoff = u64_at(0x28).and_then(|v| usize::try_from(v).ok()).ok_or_else(truncated)?;
    let shentsize = usize::from(u16_at(0x3a).unwrap_or(0));
    let shnum = usize::from(u16_at(0x3c).unwrap_or(0));
    let shstrndx = usize::from(u16_at(0x3e).unwrap_or(0));
    if shentsize < 64 || shnum == 0 || shstrndx >= shnum {
        return Err("malformed section table".into());
    }
    let table_end = shnum.checked_mul(shentsize).and_then(|n| n.checked_add(shoff)).ok_or_else(truncated)?;
    if table_end > elf.len() {
        return Err(truncated());
    }
    // (offset, size) of section i's bytes, within the file.
    let section = |i: usize| -> Result<(usize, usize, u32), String> {
        let h = shoff + i * shentsize;
        let name = u32_at(h).unwrap_or(0);
        let offset = u64_at(h + 0x18).and_then(|v| usize::try_from(v).ok());
        let size = u64_at(h + 0x20).and_then(|v| usize::try_from(v).ok());
        match (offset, size) {
            (Some(o), Some(s)) if o.checked_add(s).is_some_and(|e| e <= elf.len()) => Ok((o, s, name)),
            _ => Err(truncated()),
        }
    };
    let (names_at, names_len, _) = section(shstrndx)?;
    let names = &elf[names_at..names_at + names_len];
    let wanted = hartlm_abi::TIER_SECTION.as_bytes();
    for i in 0..shnum {
        let (offset, size, name) = section(i)?;
        let name = names.get(name as usize..).unwrap_or(&[]);
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        if name == wanted {
            let tag = &elf[offset..offset + size];
            return tag
                .strip_prefix(hartlm_abi::TIER_TAG_PREFIX.as_bytes())
                .and_then(|id| std::str::from_utf8(id).ok())
                .map(str::to_string)
                .ok_or_else(|| format!("its {} section is malformed", hartlm_abi::TIER_SECTION));
        }
    }
    Err(format!(
        "it has no {} section (not a hartlm engine library, or an old one)",
        hartlm_abi::TIER_SECTION
    ))
}

/// Checks a library file's bytes, read whole, before it is loaded as tier `tier`: against the
/// manifest entry when there is one (size, then sha256), then its own tier tag.
pub fn verify(
    bytes: &[u8],
    tier: &str,
    arch: Arch,
    expected: Option<&Expected>,
    sha256: impl FnOnce(&[u8]) -> String,
) -> Result<(), String> {
    if let Some(e) = expected {
        if e.tier != tier {
            return Err(format!("manifest.json lists this file for tier {}, not {tier}", e.tier));
        }
        if bytes.len() as u64 != e.size {
            return Err(format!(
                "{} bytes where manifest.json says {} (damaged or replaced)",
                bytes.len(),
                e.size
            ));
        }
        let sum = sha256(bytes);
        if sum != e.sha256 {
            return Err(format!("sha256 {sum} does not match manifest.json (damaged or replaced)"));
        }
    }
    let id = tier_tag(bytes, arch)?;
    if id != tier {
        return Err(format!(
            "it is the library of tier {}, not {tier}",
            hartlm_abi::text::escape_controls(&id)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal 64-bit DYN ELF for `machine`: a null section, the name table, and one section
    /// named `name` holding `body`.
    fn elf(machine: u16, name: &str, body: &[u8]) -> Vec<u8> {
        let names = format!("\0.shstrtab\0{name}\0");
        let mut f = vec![0u8; 64];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[16..18].copy_from_slice(&3u16.to_le_bytes());
        f[18..20].copy_from_slice(&machine.to_le_bytes());
        let names_at = f.len();
        f.extend(names.as_bytes());
        let body_at = f.len();
        f.extend(body);
        let shoff = f.len();
        let header = |name: u32, offset: usize, size: usize| {
            let mut h = vec![0u8; 64];
            h[..4].copy_from_slice(&name.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&(offset as u64).to_le_bytes());
            h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
            h
        };
        f.extend(header(0, 0, 0));
        f.extend(header(1, names_at, names.len()));
        f.extend(header(11, body_at, body.len()));
        f[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        f[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        f[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        f[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        f
    }

    fn sum(b: &[u8]) -> String {
        format!("len{}", b.len())
    }

    #[test]
    fn the_tag_names_the_tier_and_the_machine_must_match() {
        let lib = elf(62, ".hartlm_tier", b"hartlm-tier:x86-64-v3");
        assert_eq!(tier_tag(&lib, Arch::X86_64).unwrap(), "x86-64-v3");
        assert_eq!(tier_tag(&lib, Arch::Riscv64).unwrap_err(), "built for x86-64, not riscv64");
        assert_eq!(verify(&lib, "x86-64-v3", Arch::X86_64, None, sum), Ok(()));
        assert_eq!(
            verify(&lib, "x86-64-v2", Arch::X86_64, None, sum).unwrap_err(),
            "it is the library of tier x86-64-v3, not x86-64-v2"
        );
        let arm = elf(183, ".hartlm_tier", b"hartlm-tier:x");
        assert_eq!(tier_tag(&arm, Arch::X86_64).unwrap_err(), "built for aarch64, not x86-64");
        let untagged = elf(62, ".text", b"code");
        assert!(tier_tag(&untagged, Arch::X86_64).unwrap_err().contains("no .hartlm_tier section"));
        let bad = elf(62, ".hartlm_tier", b"other");
        assert!(tier_tag(&bad, Arch::X86_64).unwrap_err().contains("malformed"));
    }

    #[test]
    fn every_truncation_is_refused_without_panicking() {
        let lib = elf(62, ".hartlm_tier", b"hartlm-tier:x86-64-v3");
        for len in 0..lib.len() {
            assert!(tier_tag(&lib[..len], Arch::X86_64).is_err(), "{len}");
        }
        let mut wild = lib.clone();
        wild[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(tier_tag(&wild, Arch::X86_64).unwrap_err().contains("truncated"));
        let mut wild = lib;
        let last = wild.len() - 64;
        wild[last + 0x18..last + 0x20].copy_from_slice(&(u64::MAX - 2).to_le_bytes());
        assert!(tier_tag(&wild, Arch::X86_64).unwrap_err().contains("truncated"));
        assert!(
            tier_tag(b"\x7fELF this is not a shared object", Arch::X86_64)
                .unwrap_err()
                .contains("not an ELF")
        );
    }

    #[test]
    fn the_manifest_decides_size_and_hash_first() {
        let lib = elf(62, ".hartlm_tier", b"hartlm-tier:x86-64-v3");
        let e = Expected { tier: "x86-64-v3".into(), size: lib.len() as u64, sha256: sum(&lib) };
        assert_eq!(verify(&lib, "x86-64-v3", Arch::X86_64, Some(&e), sum), Ok(()));
        let short = &lib[..lib.len() / 2];
        assert!(verify(short, "x86-64-v3", Arch::X86_64, Some(&e), sum).unwrap_err().contains("bytes where"));
        let other = Expected { sha256: "0".repeat(64), ..e.clone() };
        assert!(verify(&lib, "x86-64-v3", Arch::X86_64, Some(&other), sum).unwrap_err().contains("sha256"));
        let moved = Expected { tier: "x86-64".into(), ..e };
        assert!(
            verify(&lib, "x86-64-v3", Arch::X86_64, Some(&moved), sum)
                .unwrap_err()
                .contains("for tier x86-64")
        );
    }

    #[test]
    fn manifests_are_read_by_file_name_and_schema() {
        let text = r#"{"schema_version": 1, "name": "hartlm", "tiers": [
            {"id": "x86-64-v3", "rank": 3, "file": "lib/libhartlm-x86-64-v3.so", "sha256": "AB", "size": 7}]}"#;
        let m = parse_manifest(text).unwrap();
        assert_eq!(
            m["libhartlm-x86-64-v3.so"],
            Expected { tier: "x86-64-v3".into(), size: 7, sha256: "ab".into() }
        );
        assert!(
            parse_manifest(&text.replace("\"schema_version\": 1", "\"schema_version\": 9"))
                .unwrap_err()
                .contains("schema version 9")
        );
        assert!(parse_manifest("[]").is_err());
    }
}
