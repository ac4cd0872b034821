//! What hartlm's tests share and the released code never contains: `github`, a local GitHub REST
//! server modelling what `publish` and `sync` rely on (127.0.0.1, random ports, fault injection);
//! `oracle`, the fixtures' llama.cpp reference logits and their tolerances; `npy`, their reader.

pub mod github;
mod http;
pub mod npy;
pub mod oracle;
