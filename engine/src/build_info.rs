//! What engine/build.rs derived from variants/tiers.toml for this build: the tier id, its kernel
//! families, every tier's families, and the families as the compiler saw them (`cfg` read-backs).

include!(concat!(env!("OUT_DIR"), "/tier_gen.rs"));

/// The kernel families variants/tiers.toml gives tier `id` of this architecture, if it has one.
pub fn kernels_of(id: &str) -> Option<&'static [&'static str]> {
    TIER_KERNELS.iter().find(|(t, _)| *t == id).map(|&(_, k)| k)
}
