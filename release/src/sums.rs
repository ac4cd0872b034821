//! SHA-256 digests and the `SHA256SUMS` file in the format `sha256sum -c` reads.
//! Lines are sorted by file name so the file is reproducible.

use sha2::{Digest, Sha256};

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `<hex>  <name>` lines (two spaces: text mode, as sha256sum writes), sorted by name.
pub fn sha256sums(files: &[(String, String)]) -> String {
    let mut lines: Vec<&(String, String)> = files.iter().collect();
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    lines.iter().map(|(name, hex)| format!("{hex}  {name}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest_and_format() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let s = sha256sums(&[("b.tar.gz".into(), "22".into()), ("a.tar.gz".into(), "11".into())]);
        assert_eq!(s, "11  a.tar.gz\n22  b.tar.gz\n");
    }
}
