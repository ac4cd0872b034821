//! Carries out a publish `Plan` against the GitHub REST API with octocrab: idempotent uploads
//! verified by size and digest, retries that never create duplicates, undraft only at the end.
//! `Client` lends the same connection and retry rules to other callers.

use bytes::Bytes;
use octocrab::Octocrab;
use octocrab::params::repos::Reference;
use octocrab::repos::releases::MakeLatest;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use crate::publish::{
    self, AssetAction, Kind, LocalAsset, Plan, ReleaseAction, RemoteAsset, RemoteRelease, TagAction, Target,
};

pub const GITHUB_API: &str = "https://api.github.com";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op}: {detail}")]
    Api { op: String, detail: String },
    #[error("{0}")]
    Verify(String),
    #[error("{0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Transient failures (5xx, 429, dropped connections, timeouts) are retried this many times in
/// all, waiting `base_delay`, then twice that, and so on.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    pub attempts: u32,
    pub base_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { attempts: 5, base_delay: Duration::from_secs(2) }
    }
}

pub struct Config {
    /// `owner/name`.
    pub repo: String,
    pub api_url: String,
    /// Where assets are uploaded; derived from `api_url` for github.com and GitHub Enterprise.
    pub upload_url: Option<String>,
    /// Without a token only reads are possible (enough for `--dry-run` on a public repository).
    pub token: Option<String>,
    pub retry: Retry,
}

/// Refuses a base URL the token would cross the network in clear over: only `https://`, or
/// `http://` to this machine's loopback (the test double), carry credentials.
pub fn check_secure(what: &str, url: &str) -> Result<()> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Ok(());
    }
    if let Some(rest) = lower.strip_prefix("http://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = match authority.rsplit_once('@') {
            Some((_, h)) => h,
            None => authority,
        };
        let host = if host.starts_with('[') {
            host.split_once(']').map_or(host, |(h, _)| &h[1..])
        } else {
            host.split(':').next().unwrap_or(host)
        };
        let loopback =
            host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if loopback {
            return Ok(());
        }
    }
    Err(Error::Config(format!(
        "{what} {url:?} is not https://; the token would travel in clear text (only loopback may use http://)"
    )))
}

/// The upload host belonging to an API base: octocrab only sends credentials to the hosts it
/// was configured with, so the upload host must be named explicitly.
pub fn upload_base(api_url: &str) -> Option<String> {
    let api = api_url.trim_end_matches('/');
    if api == GITHUB_API {
        return Some("https://uploads.github.com".into());
    }
    api.strip_suffix("/api/v3").map(|host| format!("{host}/api/uploads"))
}

/// What `execute` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub uploaded: usize,
    pub replaced: usize,
    pub deleted: usize,
    pub kept: usize,
    pub published: bool,
}

/// A local file and its record.
pub struct LocalFile {
    pub asset: LocalAsset,
    pub path: PathBuf,
}

impl LocalFile {
    /// Hashes the file at `path`; the asset is named after the file.
    pub fn read(path: &std::path::Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.into(), source })?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::Config(format!("{} has no UTF-8 file name", path.display())))?;
        Ok(LocalFile {
            asset: LocalAsset {
                name: name.into(),
                size: bytes.len() as u64,
                sha256: crate::sums::sha256_hex(&bytes),
            },
            path: path.into(),
        })
    }
}

/// Blocking front of `Api`: owns the single-threaded runtime octocrab needs.
pub struct Publisher {
    rt: tokio::runtime::Runtime,
    api: Api,
}

struct Api {
    crab: Octocrab,
    owner: String,
    name: String,
    retry: Retry,
    progress: Box<dyn Fn(&str) + Send + Sync>,
}

impl Publisher {
    pub fn new(config: &Config, progress: Box<dyn Fn(&str) + Send + Sync>) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Config(format!("cannot start the async runtime: {e}")))?;
        // octocrab spawns its request buffer onto the runtime it is built in.
        let api = {
            let _guard = rt.enter();
            Api::new(config, progress)?
        };
        Ok(Publisher { rt, api })
    }

    /// Every release of the repository, drafts included.
    pub fn releases(&self) -> Result<Vec<RemoteRelease>> {
        self.rt.block_on(self.api.releases())
    }

    /// Reads the remote state and plans. Only reads.
    pub fn plan(&self, target: &Target, local: &[LocalAsset]) -> Result<Plan> {
        self.rt.block_on(self.api.plan(target, local))
    }

    /// Carries out `plan`, then verifies every asset on the server before publishing.
    pub fn execute(&self, plan: &Plan, files: &[LocalFile]) -> Result<Outcome> {
        self.rt.block_on(self.api.execute(plan, files))
    }

    /// Appends `line` to the text asset `name` of the published release `tag` (creating the
    /// asset if absent). The longer file is uploaded as `<name>.new` and verified before the
    /// old one is deleted and the new one renamed, so a failure never loses the history.
    /// `scratch` is a local directory for the file. Returns how many lines the asset holds.
    pub fn append_line(&self, tag: &str, name: &str, line: &str, scratch: &std::path::Path) -> Result<usize> {
        self.rt.block_on(self.api.append_line(tag, name, line, scratch))
    }
}

/// Blocking JSON calls on one repository's REST routes, for callers other than publishing (sync's
/// issue lives in xtask): reads and idempotent writes are retried like publishing's own.
pub struct Client {
    rt: tokio::runtime::Runtime,
    api: Api,
}

impl Client {
    pub fn new(config: &Config) -> Result<Self> {
        let Publisher { rt, api } = Publisher::new(config, Box::new(|m| eprintln!("github: {m}")))?;
        Ok(Client { rt, api })
    }

    /// `/repos/{owner}/{name}{tail}`.
    pub fn repo_route(&self, tail: &str) -> String {
        format!("/repos/{}/{}{tail}", self.api.owner, self.api.name)
    }

    /// GET, retried; `op` names the call in errors and progress.
    pub fn get(&self, op: &str, route: &str, query: &[(&str, &str)]) -> Result<serde_json::Value> {
        self.rt.block_on(self.api.retried(op, || self.api.crab.get(route, Some(&query))))
    }

    /// PATCH (idempotent), retried.
    pub fn patch(&self, op: &str, route: &str, body: &serde_json::Value) -> Result<serde_json::Value> {
        self.rt.block_on(self.api.retried(op, || self.api.crab.patch(route, Some(body))))
    }

    /// POST, sent once: a retry after a lost answer could create a second object.
    pub fn post(&self, op: &str, route: &str, body: &serde_json::Value) -> Result<serde_json::Value> {
        self.rt.block_on(self.api.crab.post(route, Some(body))).map_err(|e| api(op, &e))
    }
}

impl Api {
    fn new(config: &Config, progress: Box<dyn Fn(&str) + Send + Sync>) -> Result<Self> {
        let (owner, name) = config
            .repo
            .split_once('/')
            .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
            .ok_or_else(|| Error::Config(format!("repository {:?} is not `owner/name`", config.repo)))?;
        let upload = match &config.upload_url {
            Some(u) => u.clone(),
            None => upload_base(&config.api_url).ok_or_else(|| {
                Error::Config(format!(
                    "cannot derive the upload host from API base {}; pass --upload-url",
                    config.api_url
                ))
            })?,
        };
        check_secure("API base", &config.api_url)?;
        check_secure("upload base", &upload)?;
        let bad = |what: &str, url: &str| Error::Config(format!("{what} {url:?} is not a valid URL"));
        let mut builder = Octocrab::builder()
            .base_uri(config.api_url.as_str())
            .map_err(|_| bad("API base", &config.api_url))?
            .upload_uri(upload.as_str())
            .map_err(|_| bad("upload base", &upload))?
            .set_connect_timeout(Some(Duration::from_secs(20)))
            .set_read_timeout(Some(Duration::from_secs(300)));
        if let Some(token) = &config.token {
            builder = builder.personal_token(token.clone());
        }
        let crab =
            builder.build().map_err(|e| Error::Config(format!("cannot start the HTTP client: {e}")))?;
        Ok(Api { crab, owner: owner.into(), name: name.into(), retry: config.retry, progress })
    }

    fn say(&self, msg: &str) {
        (self.progress)(msg);
    }

    fn repo(&self) -> octocrab::repos::RepoHandler<'_> {
        self.crab.repos(&self.owner, &self.name)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.retry.base_delay * 2u32.saturating_pow(attempt.saturating_sub(1))
    }

    /// Runs an idempotent request, retrying transient failures.
    async fn retried<T, F, Fut>(&self, op: &str, mut f: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = octocrab::Result<T>>,
    {
        let mut attempt = 1;
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) if is_transient(&e) && attempt < self.retry.attempts => {
                    self.say(&format!("{op}: {} (retrying)", describe(&e)));
                    tokio::time::sleep(self.backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(api(op, &e)),
            }
        }
    }

    /// Only a listing shows drafts: GitHub's by-tag lookup never returns them.
    async fn releases(&self) -> Result<Vec<RemoteRelease>> {
        let mut all = Vec::new();
        for page in 1u32.. {
            let op = format!("listing releases of {}/{} (page {page})", self.owner, self.name);
            let got = self
                .retried(&op, || async {
                    self.repo().releases().list().per_page(100).page(page).send().await
                })
                .await?;
            let n = got.items.len();
            all.extend(got.items.iter().map(remote_release));
            if n < 100 {
                break;
            }
        }
        Ok(all)
    }

    async fn assets(&self, release_id: u64) -> Result<Vec<RemoteAsset>> {
        let mut all = Vec::new();
        for page in 1u32.. {
            let op = format!("listing assets of release {release_id}");
            let got = self
                .retried(&op, || async {
                    self.repo().releases().assets(release_id).per_page(100).page(page).send().await
                })
                .await?;
            let n = got.items.len();
            all.extend(got.items.iter().map(remote_asset));
            if n < 100 {
                break;
            }
        }
        Ok(all)
    }

    /// The commit a tag points at, or `None` when the tag does not exist.
    async fn tag_commit(&self, tag: &str) -> Result<Option<String>> {
        let reference = Reference::Tag(tag.into());
        let op = format!("reading tag {tag}");
        match self.retried(&op, || async { self.repo().get_ref(&reference).await }).await {
            Ok(r) => Ok(match r.object {
                octocrab::models::repos::Object::Commit { sha, .. }
                | octocrab::models::repos::Object::Tag { sha, .. } => Some(sha),
                _ => None,
            }),
            Err(Error::Api { detail, .. }) if detail.starts_with("404") => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn plan(&self, target: &Target, local: &[LocalAsset]) -> Result<Plan> {
        let releases = self.releases().await?;
        let tag = match target.kind {
            Kind::Nightly => self.tag_commit(&target.tag).await?,
            Kind::Tagged => None,
        };
        Ok(publish::plan(target, local, &releases, tag.as_deref()))
    }

    async fn execute(&self, plan: &Plan, files: &[LocalFile]) -> Result<Outcome> {
        let target = &plan.target;
        let mut outcome = Outcome::default();
        let release_id = match plan.release {
            ReleaseAction::Reuse { id, .. } => id,
            ReleaseAction::Create => self.create_release(target).await?,
        };
        for old in &plan.delete {
            self.say(&format!("deleting {} (not part of this build)", old.name));
            self.delete_asset(old.id).await?;
            outcome.deleted += 1;
        }
        for (name, action) in &plan.assets {
            let file = files
                .iter()
                .find(|f| &f.asset.name == name)
                .ok_or_else(|| Error::Config(format!("the plan names {name}, which is not a local file")))?;
            match action {
                AssetAction::Keep => outcome.kept += 1,
                AssetAction::Upload => {
                    self.upload(release_id, file).await?;
                    outcome.uploaded += 1;
                }
                AssetAction::Replace { id, problem } => {
                    self.say(&format!("replacing {name}: {problem}"));
                    self.delete_asset(*id).await?;
                    self.upload(release_id, file).await?;
                    outcome.replaced += 1;
                }
            }
        }
        self.verify(release_id, files).await?;
        match &plan.tag {
            TagAction::Unchanged => {}
            TagAction::Create => {
                let op = format!("creating tag {}", target.tag);
                let reference = Reference::Tag(target.tag.clone());
                self.retried(&op, || async {
                    self.repo().create_ref(&reference, target.commit.clone()).await
                })
                .await?;
            }
            TagAction::Move { .. } => {
                let op = format!("moving tag {}", target.tag);
                let reference = Reference::Tag(target.tag.clone());
                self.retried(&op, || async {
                    self.repo().update_ref(&reference, target.commit.clone()).force(true).send().await
                })
                .await?;
            }
        }
        if plan.set_commit || plan.publish {
            let nightly = target.kind == Kind::Nightly;
            let op = format!("publishing release {}", target.tag);
            self.retried(&op, || async {
                let latest = if nightly { MakeLatest::False } else { MakeLatest::True };
                let repo = self.repo();
                let releases = repo.releases();
                let mut update = releases.update(release_id).target_commitish(&target.commit);
                if plan.publish {
                    update = update.draft(false).prerelease(nightly).make_latest(latest);
                }
                update.send().await
            })
            .await?;
            outcome.published = plan.publish;
        }
        Ok(outcome)
    }

    /// Creates the draft. A failed create may still have created it, so before trying again
    /// look for it: retrying blindly would leave duplicate drafts.
    async fn create_release(&self, target: &Target) -> Result<u64> {
        let nightly = target.kind == Kind::Nightly;
        let name = if nightly { "nightly".to_string() } else { format!("hartlm {}", target.tag) };
        let body = format!("Built from {}.", target.commit);
        let mut attempt = 1;
        loop {
            self.say(&format!("creating draft release {}", target.tag));
            let created = self
                .repo()
                .releases()
                .create(&target.tag)
                .target_commitish(&target.commit)
                .name(&name)
                .body(&body)
                .draft(true)
                .prerelease(nightly)
                .send()
                .await;
            let e = match created {
                Ok(r) => return Ok(r.id.into_inner()),
                Err(e) => e,
            };
            if !is_transient(&e) || attempt >= self.retry.attempts {
                return Err(api(&format!("creating release {}", target.tag), &e));
            }
            self.say(&format!(
                "creating release {}: {} (checking whether it exists)",
                target.tag,
                describe(&e)
            ));
            tokio::time::sleep(self.backoff(attempt)).await;
            attempt += 1;
            if let (Some(r), _) = publish::choose_release(&self.releases().await?, &target.tag) {
                return Ok(r.id);
            }
        }
    }

    async fn delete_asset(&self, id: u64) -> Result<()> {
        match self
            .retried(&format!("deleting asset {id}"), || async {
                self.repo().release_assets().delete(id).await
            })
            .await
        {
            // Gone already: a retried delete whose first attempt went through.
            Err(Error::Api { detail, .. }) if detail.starts_with("404") => Ok(()),
            other => other,
        }
    }

    /// An asset's bytes (the API's asset route with `Accept: application/octet-stream`, which
    /// github.com answers with a redirect to its storage).
    async fn download_asset(&self, id: u64) -> Result<Vec<u8>> {
        let route = format!("/repos/{}/{}/releases/assets/{id}", self.owner, self.name);
        self.retried(&format!("downloading asset {id}"), || async {
            let uri: http::Uri = route.parse().map_err(|_| octocrab::Error::Other {
                source: format!("bad route {route}").into(),
                backtrace: std::backtrace::Backtrace::capture(),
            })?;
            let request = http::Request::builder()
                .method(http::Method::GET)
                .uri(uri)
                .header(http::header::ACCEPT, "application/octet-stream");
            let request = self.crab.build_request(request, None::<&()>)?;
            let response = self.crab.execute(request).await?;
            let response = self.crab.follow_location_to_data(response).await?;
            let body = http_body_util::BodyExt::collect(response.into_body()).await?;
            Ok(body.to_bytes().to_vec())
        })
        .await
    }

    async fn rename_asset(&self, id: u64, name: &str) -> Result<()> {
        let route = format!("/repos/{}/{}/releases/assets/{id}", self.owner, self.name);
        let body = serde_json::json!({ "name": name });
        let _: serde_json::Value = self
            .retried(&format!("renaming asset {id} to {name}"), || self.crab.patch(&route, Some(&body)))
            .await?;
        Ok(())
    }

    async fn append_line(
        &self,
        tag: &str,
        name: &str,
        line: &str,
        scratch: &std::path::Path,
    ) -> Result<usize> {
        let release =
            self.releases().await?.into_iter().find(|r| r.tag == tag && !r.draft).ok_or_else(|| {
                Error::Config(format!("there is no published release {tag} to append {name} to"))
            })?;
        let staged = format!("{name}.new");
        // A run that failed between deleting the old file and renaming the new one left the
        // history only as `.new`: it is the base then.
        let base = release
            .assets
            .iter()
            .find(|a| a.name == *name)
            .or_else(|| release.assets.iter().find(|a| a.name == staged));
        let mut text = match base {
            Some(a) => String::from_utf8(self.download_asset(a.id).await?)
                .map_err(|_| Error::Verify(format!("{} of release {tag} is not UTF-8 text", a.name)))?,
            None => String::new(),
        };
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(line.trim_end_matches('\n'));
        text.push('\n');
        let path = scratch.join(&staged);
        std::fs::write(&path, &text).map_err(|source| Error::Io { path: path.clone(), source })?;
        // A `.new` left by an earlier failed run is stale: this one replaces it.
        if let Some(stale) = release.assets.iter().find(|a| a.name == staged) {
            self.delete_asset(stale.id).await?;
        }
        let uploaded = self.upload(release.id, &LocalFile::read(&path)?).await?;
        if let Some(old) = self.find_asset(release.id, name).await? {
            self.delete_asset(old.id).await?;
        }
        self.rename_asset(uploaded.id, name).await?;
        self.say(&format!("{name} of release {tag} now holds {} lines", text.lines().count()));
        Ok(text.lines().count())
    }

    async fn find_asset(&self, release_id: u64, name: &str) -> Result<Option<RemoteAsset>> {
        Ok(self.assets(release_id).await?.into_iter().find(|a| a.name == name))
    }

    /// Uploads one file until the server holds a verified copy. After any failure it looks at
    /// what the server kept under that name (GitHub keeps partial uploads and refuses a second
    /// asset of the same name) and keeps it if verified, else deletes it before trying again.
    async fn upload(&self, release_id: u64, file: &LocalFile) -> Result<RemoteAsset> {
        let local = &file.asset;
        let name = &local.name;
        let bytes = Bytes::from(
            std::fs::read(&file.path).map_err(|source| Error::Io { path: file.path.clone(), source })?,
        );
        let mut last = String::new();
        for attempt in 1..=self.retry.attempts {
            if attempt > 1 {
                tokio::time::sleep(self.backoff(attempt - 1)).await;
            }
            self.say(&format!("uploading {name} ({:.1} MB)", local.size as f64 / 1e6));
            let failure =
                match self.repo().releases().upload_asset(release_id, name, bytes.clone()).send().await {
                    Ok(a) => {
                        let got = remote_asset(&a);
                        match publish::asset_problem(local, &got) {
                            None => return Ok(got),
                            Some(problem) => {
                                self.say(&format!("{name} arrived wrong ({problem}); deleting it"));
                                self.delete_asset(got.id).await?;
                                last = problem;
                                continue;
                            }
                        }
                    }
                    Err(e) => e,
                };
            let detail = describe(&failure);
            if !is_transient(&failure) && !is_already_exists(&failure) {
                return Err(Error::Api { op: format!("uploading {name}"), detail });
            }
            self.say(&format!("uploading {name}: {detail}; checking what the server kept"));
            last = detail;
            if let Some(kept) = self.find_asset(release_id, name).await? {
                match publish::asset_problem(local, &kept) {
                    None => return Ok(kept),
                    Some(problem) => {
                        self.say(&format!("deleting the server's copy of {name}: {problem}"));
                        self.delete_asset(kept.id).await?;
                    }
                }
            }
        }
        Err(Error::Verify(format!(
            "{name}: no verified upload after {} attempts ({last})",
            self.retry.attempts
        )))
    }

    /// Every local file is on the server exactly once, complete, with the right digest.
    async fn verify(&self, release_id: u64, files: &[LocalFile]) -> Result<()> {
        let remote = self.assets(release_id).await?;
        for f in files {
            let copies: Vec<&RemoteAsset> = remote.iter().filter(|r| r.name == f.asset.name).collect();
            let problem = match copies.as_slice() {
                [] => "missing".to_string(),
                [one] => match publish::asset_problem(&f.asset, one) {
                    None => continue,
                    Some(p) => p,
                },
                _ => format!("{} copies", copies.len()),
            };
            return Err(Error::Verify(format!(
                "{}: not verified on the server ({problem}); the release stays a draft, run publish again",
                f.asset.name
            )));
        }
        self.say(&format!("verified {} assets (size and sha256)", files.len()));
        Ok(())
    }
}

fn remote_release(r: &octocrab::models::repos::Release) -> RemoteRelease {
    RemoteRelease {
        id: r.id.into_inner(),
        tag: r.tag_name.clone(),
        draft: r.draft,
        prerelease: r.prerelease,
        target_commitish: r.target_commitish.clone(),
        assets: r.assets.iter().map(remote_asset).collect(),
    }
}

fn remote_asset(a: &octocrab::models::repos::Asset) -> RemoteAsset {
    RemoteAsset {
        id: a.id.into_inner(),
        name: a.name.clone(),
        size: u64::try_from(a.size).unwrap_or(0),
        digest: a.digest.clone(),
        state: a.state.clone(),
    }
}

fn status(e: &octocrab::Error) -> Option<u16> {
    match e {
        octocrab::Error::GitHub { source, .. } => Some(source.status_code.as_u16()),
        _ => None,
    }
}

/// Worth retrying: server errors, rate limits, and failures below HTTP (reset, timeout).
fn is_transient(e: &octocrab::Error) -> bool {
    match status(e) {
        Some(s) => s >= 500 || s == 429,
        None => matches!(e, octocrab::Error::Hyper { .. } | octocrab::Error::Service { .. }),
    }
}

fn is_already_exists(e: &octocrab::Error) -> bool {
    match e {
        octocrab::Error::GitHub { source, .. } => {
            source.status_code.as_u16() == 422
                && source.errors.iter().flatten().any(|x| x["code"] == "already_exists")
        }
        _ => false,
    }
}

/// One line: the HTTP status and GitHub's message, or the transport error with its causes.
fn describe(e: &octocrab::Error) -> String {
    if let octocrab::Error::GitHub { source, .. } = e {
        return format!("{} {}", source.status_code.as_u16(), source.message);
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !text.contains(&c_text) {
            text = format!("{text}: {c_text}");
        }
        cause = c.source();
    }
    text
}

fn api(op: &str, e: &octocrab::Error) -> Error {
    let mut detail = describe(e);
    if status(e) == Some(401) {
        detail.push_str(" (set GITHUB_TOKEN to a token with `contents: write` on the repository)");
    }
    Error::Api { op: op.into(), detail }
}

#[cfg(test)]
mod secure_tests {
    use super::*;

    #[test]
    fn tokens_travel_over_https_or_loopback_only() {
        for ok in [
            "https://api.github.com",
            "HTTPS://ghe.example/api/v3",
            "http://127.0.0.1:8080",
            "http://localhost/api",
            "http://[::1]:99/x",
            "http://127.8.9.1",
        ] {
            assert!(check_secure("API base", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://api.github.com",
            "http://127.0.0.1.evil.example/",
            "http://localhost.evil/",
            "http://user@10.0.0.1",
            "ftp://x",
            "api.github.com",
            "http://evil@127.0.0.1@evil.example",
        ] {
            let e = check_secure("API base", bad).unwrap_err().to_string();
            assert!(e.contains("clear text"), "{bad}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_hosts_follow_the_api_base() {
        assert_eq!(upload_base("https://api.github.com/").as_deref(), Some("https://uploads.github.com"));
        assert_eq!(
            upload_base("https://ghe.example.com/api/v3").as_deref(),
            Some("https://ghe.example.com/api/uploads")
        );
        assert_eq!(upload_base("http://127.0.0.1:8080"), None);
    }
}
