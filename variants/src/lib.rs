//! hartlm's ISA tiers: the compiled-in tier table, CPU feature parsing, and tier selection.
//! Everything here is pure (plain data in, plain data out) except `probe`, which reads the CPU.

pub mod calibration;
pub mod cluster;
pub mod cpu;
pub mod entry;
pub mod feature_names;
pub mod labels;
pub mod libcheck;
pub mod placement;
pub mod probe;
pub mod report;
pub mod select;
pub mod tier;

pub use cpu::{CpuFeatures, FeatureSet};
pub use select::{Eligibility, SelectError, evaluate, plan_load};
pub use tier::{Arch, Tier, TierId, tiers};
