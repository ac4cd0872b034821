//! Test doubles shared by hartlm's tests. `github` is a local GitHub REST server modelling what
//! `publish` and `sync` rely on, with fault injection; it runs on 127.0.0.1 on random ports.

pub mod github;
mod http;
