//! A local stand-in for the GitHub REST API: releases (drafts included), assets on a separate
//! upload host, git refs and issues, token checks, a request log, and injectable faults.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};
use std::io::BufReader;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::http::{Request, read_request, write_response};

pub const TOKEN: &str = "test-token-hartlm";

#[derive(Clone, Debug)]
pub struct Release {
    pub id: u64,
    pub tag_name: String,
    pub target_commitish: String,
    pub name: String,
    pub body: String,
    pub draft: bool,
    pub prerelease: bool,
    pub assets: Vec<Asset>,
}

#[derive(Clone, Debug)]
pub struct Asset {
    pub id: u64,
    pub name: String,
    /// `uploaded`, or `starter` for an upload that never finished.
    pub state: String,
    pub size: u64,
    pub digest: String,
    pub content: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    pub open: bool,
    pub comments: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    Api,
    Uploads,
}

#[derive(Clone, Debug)]
pub struct Logged {
    pub host: Host,
    pub method: String,
    pub path: String,
    /// 0 when the connection was dropped instead of answered.
    pub status: u16,
}

/// A fault applied to the next request it matches, once (except `OutageAfterUploads`).
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer the next upload with 502 and store nothing.
    BadGatewayOnUpload,
    /// Read part of the next upload's body, keep it as a `starter` asset, drop the connection.
    DropMidUpload,
    /// Accept the next upload but store only its first half (size and digest say so).
    TruncateUpload,
    /// Store the next upload intact but report a wrong digest for it from then on.
    ForgeDigest,
    /// Create the next release, then answer 502 as if the request had failed.
    CreateReleaseThenBadGateway,
    /// After this many more complete uploads, drop the next upload midway and every later
    /// connection, as if the machine running `publish` lost its network, until `restore`.
    OutageAfterUploads(usize),
}

#[derive(Default)]
pub struct State {
    pub releases: Vec<Release>,
    /// `tags/nightly` → commit sha.
    pub refs: BTreeMap<String, String>,
    pub issues: Vec<Issue>,
    pub log: Vec<Logged>,
    faults: VecDeque<Fault>,
    outage: bool,
    next_id: u64,
}

impl State {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

/// The running double. Dropping it stops both listeners.
pub struct GitHubDouble {
    pub owner: String,
    pub repo: String,
    api: SocketAddr,
    uploads: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

struct Ctx {
    prefix: String,
    api: SocketAddr,
    uploads: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl GitHubDouble {
    /// Starts the API and upload hosts for `owner/repo` on random 127.0.0.1 ports.
    pub fn start(owner: &str, repo: &str) -> std::io::Result<Self> {
        let api_l = TcpListener::bind("127.0.0.1:0")?;
        let up_l = TcpListener::bind("127.0.0.1:0")?;
        let (api, uploads) = (api_l.local_addr()?, up_l.local_addr()?);
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let ctx =
            Arc::new(Ctx { prefix: format!("/repos/{owner}/{repo}"), api, uploads, state: state.clone() });
        let threads = [(api_l, Host::Api), (up_l, Host::Uploads)]
            .into_iter()
            .map(|(listener, host)| {
                let (ctx, stop) = (ctx.clone(), stop.clone());
                std::thread::spawn(move || serve(listener, host, ctx, stop))
            })
            .collect();
        Ok(Self { owner: owner.into(), repo: repo.into(), api, uploads, state, stop, threads })
    }

    pub fn api_url(&self) -> String {
        format!("http://{}", self.api)
    }

    pub fn upload_url(&self) -> String {
        format!("http://{}", self.uploads)
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn inject(&self, fault: Fault) {
        self.state().faults.push_back(fault);
    }

    /// Ends an outage and forgets faults not yet triggered.
    pub fn restore(&self) {
        let mut s = self.state();
        s.outage = false;
        s.faults.clear();
    }

    pub fn releases(&self) -> Vec<Release> {
        self.state().releases.clone()
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state().log.clone()
    }

    pub fn clear_log(&self) {
        self.state().log.clear();
    }

    /// Requests that changed (or tried to change) something.
    pub fn writes(&self) -> Vec<Logged> {
        self.log().into_iter().filter(|l| l.method != "GET").collect()
    }
}

impl Drop for GitHubDouble {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for addr in [self.api, self.uploads] {
            let _ = TcpStream::connect(addr);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn serve(listener: TcpListener, host: Host, ctx: Arc<Ctx>, stop: Arc<AtomicBool>) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let (ctx, host) = (ctx.clone(), host.clone());
        std::thread::spawn(move || {
            let _ = handle(stream, host, &ctx);
        });
    }
}

fn handle(stream: TcpStream, host: Host, ctx: &Ctx) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    if ctx.lock().outage {
        ctx.log(host, "?", "?", 0);
        return Ok(());
    }
    // Faults that cut an upload short must act before its body is read.
    let drop_mid = std::cell::Cell::new(false);
    let req = read_request(&mut reader, |method, _path| {
        if host != Host::Uploads || method != "POST" {
            return None;
        }
        let mut s = ctx.lock();
        let drop = match s.faults.front() {
            Some(Fault::DropMidUpload) => true,
            Some(Fault::OutageAfterUploads(0)) => {
                s.outage = true;
                true
            }
            _ => false,
        };
        if drop {
            s.faults.pop_front();
            drop_mid.set(true);
        }
        drop.then_some(1024)
    })?;
    if drop_mid.get() {
        let _ = upload(ctx, &req, "starter");
        ctx.log(host, &req.method, &req.path, 0);
        return Ok(());
    }
    let credentials = req.header("authorization");
    let authorized =
        credentials.is_some_and(|a| a == format!("Bearer {TOKEN}") || a == format!("token {TOKEN}"));
    // As on github.com for a public repository: reads need no credentials, wrong ones are refused.
    let anonymous_read = credentials.is_none() && req.method == "GET" && host == Host::Api;
    let (status, body) = if !authorized && !anonymous_read {
        (401, error("Bad credentials").to_string().into_bytes())
    } else if let Some(download) = ctx.download(&req) {
        download
    } else {
        let (status, body) = match host {
            Host::Api => api(ctx, &req),
            Host::Uploads => upload(ctx, &req, "uploaded"),
        };
        (status, body.to_string().into_bytes())
    };
    ctx.log(host, &req.method, &req.path, status);
    write_response(&mut out, status, &body)
}

/// The latest release as github.com defines it: the newest that is neither a draft nor a
/// prerelease.
fn latest(releases: &[Release]) -> Option<&Release> {
    releases.iter().filter(|r| !r.draft && !r.prerelease).max_by_key(|r| r.id)
}

impl Ctx {
    /// `GET /{owner}/{repo}/releases/download/{tag}/{name}` and `.../releases/latest/download/{name}`
    /// on the API host (github.com's asset URLs; no credentials): the asset's bytes.
    fn download(&self, req: &Request) -> Option<(u16, Vec<u8>)> {
        if req.method == "GET" && req.header("accept") == Some("application/octet-stream") {
            let id: u64 =
                req.path.strip_prefix(&format!("{}/releases/assets/", self.prefix))?.parse().ok()?;
            let s = self.lock();
            let asset = s.releases.iter().flat_map(|r| &r.assets).find(|a| a.id == id);
            return Some(asset.map_or((404, b"Not Found".to_vec()), |a| (200, a.content.clone())));
        }
        let site = self.prefix.strip_prefix("/repos")?;
        let rest = req.path.strip_prefix(site)?.strip_prefix("/releases/")?;
        if req.method != "GET" {
            return None;
        }
        let s = self.lock();
        let (release, name) = match rest.split_once('/')? {
            ("latest", rest) => (latest(&s.releases), rest.strip_prefix("download/")?),
            ("download", rest) => {
                let (tag, name) = rest.split_once('/')?;
                (s.releases.iter().find(|r| r.tag_name == tag && !r.draft), name)
            }
            _ => return None,
        };
        let asset = release.and_then(|r| r.assets.iter().find(|a| a.name == name && a.state == "uploaded"));
        Some(match asset {
            Some(a) => (200, a.content.clone()),
            None => (404, b"Not Found".to_vec()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn log(&self, host: Host, method: &str, path: &str, status: u16) {
        self.lock().log.push(Logged { host, method: method.into(), path: path.into(), status });
    }

    fn release_json(&self, r: &Release) -> Value {
        let api = format!("http://{}{}", self.api, self.prefix);
        json!({
            "url": format!("{api}/releases/{}", r.id),
            "html_url": format!("http://{}{}/releases/tag/{}", self.api, self.prefix, r.tag_name),
            "assets_url": format!("{api}/releases/{}/assets", r.id),
            "upload_url": format!("http://{}{}/releases/{}/assets{{?name,label}}", self.uploads, self.prefix, r.id),
            "tarball_url": null,
            "zipball_url": null,
            "id": r.id,
            "node_id": format!("RE_{}", r.id),
            "tag_name": r.tag_name,
            "target_commitish": r.target_commitish,
            "name": r.name,
            "body": r.body,
            "draft": r.draft,
            "prerelease": r.prerelease,
            "created_at": "2026-01-01T00:00:00Z",
            "published_at": if r.draft { Value::Null } else { json!("2026-01-01T00:00:00Z") },
            "author": null,
            "assets": r.assets.iter().map(|a| self.asset_json(a, &r.tag_name)).collect::<Vec<_>>(),
        })
    }

    fn asset_json(&self, a: &Asset, tag: &str) -> Value {
        json!({
            "url": format!("http://{}{}/releases/assets/{}", self.api, self.prefix, a.id),
            "browser_download_url": format!(
                "http://{}{}/releases/download/{}/{}",
                self.api,
                self.prefix.trim_start_matches("/repos"),
                tag,
                a.name
            ),
            "id": a.id,
            "node_id": format!("RA_{}", a.id),
            "name": a.name,
            "label": null,
            "state": a.state,
            "content_type": "application/octet-stream",
            "size": a.size,
            "digest": a.digest,
            "download_count": 0,
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "uploader": null,
        })
    }
}

fn error(message: &str) -> Value {
    json!({ "message": message, "documentation_url": "https://docs.github.com/rest" })
}

fn already_exists(resource: &str, field: &str) -> Value {
    json!({
        "message": "Validation Failed",
        "errors": [{ "resource": resource, "code": "already_exists", "field": field }],
        "documentation_url": "https://docs.github.com/rest",
    })
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn body_json(req: &Request) -> Value {
    serde_json::from_slice(&req.body).unwrap_or(Value::Null)
}

/// POST {prefix}/releases/{id}/assets?name=… on the upload host.
fn upload(ctx: &Ctx, req: &Request, state_name: &str) -> (u16, Value) {
    let rest = req.path.strip_prefix(&ctx.prefix).unwrap_or("");
    let id = rest
        .strip_prefix("/releases/")
        .and_then(|r| r.strip_suffix("/assets"))
        .and_then(|i| i.parse::<u64>().ok());
    let (Some(id), Some(name), "POST") = (id, req.query("name"), req.method.as_str()) else {
        return (404, error("Not Found"));
    };
    let mut s = ctx.lock();
    let fault = match s.faults.front() {
        Some(Fault::OutageAfterUploads(n)) if state_name == "uploaded" => {
            let n = *n;
            s.faults[0] = Fault::OutageAfterUploads(n.saturating_sub(1));
            None
        }
        Some(Fault::BadGatewayOnUpload | Fault::TruncateUpload | Fault::ForgeDigest)
            if state_name == "uploaded" =>
        {
            s.faults.pop_front()
        }
        _ => None,
    };
    if matches!(fault, Some(Fault::BadGatewayOnUpload)) {
        return (502, error("Bad Gateway"));
    }
    let asset_id = s.id();
    let Some(release) = s.releases.iter_mut().find(|r| r.id == id) else {
        return (404, error("Not Found"));
    };
    if release.assets.iter().any(|a| a.name == name) {
        return (422, already_exists("ReleaseAsset", "name"));
    }
    let mut content = req.body.clone();
    if matches!(fault, Some(Fault::TruncateUpload)) {
        content.truncate(content.len() / 2);
    }
    let digest = if matches!(fault, Some(Fault::ForgeDigest)) {
        sha256_digest(b"forged")
    } else {
        sha256_digest(&content)
    };
    let asset = Asset {
        id: asset_id,
        name: name.into(),
        state: state_name.into(),
        size: content.len() as u64,
        digest,
        content,
    };
    release.assets.push(asset.clone());
    let tag = release.tag_name.clone();
    drop(s);
    (201, ctx.asset_json(&asset, &tag))
}

fn api(ctx: &Ctx, req: &Request) -> (u16, Value) {
    let Some(rest) = req.path.strip_prefix(&ctx.prefix) else {
        return (404, error("Not Found"));
    };
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let b = body_json(req);
    let mut s = ctx.lock();
    match (req.method.as_str(), parts.as_slice()) {
        ("GET", ["releases"]) => {
            let per_page: usize = req.query("per_page").and_then(|p| p.parse().ok()).unwrap_or(30);
            let page: usize = req.query("page").and_then(|p| p.parse().ok()).unwrap_or(1);
            let mut all: Vec<&Release> = s.releases.iter().collect();
            all.sort_by_key(|r| std::cmp::Reverse(r.id));
            let list: Vec<Value> = all
                .into_iter()
                .skip(per_page * page.saturating_sub(1))
                .take(per_page)
                .map(|r| ctx.release_json(r))
                .collect();
            (200, Value::Array(list))
        }
        ("GET", ["releases", "latest"]) => match latest(&s.releases) {
            Some(r) => (200, ctx.release_json(r)),
            None => (404, error("Not Found")),
        },
        ("GET", ["releases", "tags", tag]) => {
            match s.releases.iter().find(|r| r.tag_name == *tag && !r.draft) {
                Some(r) => (200, ctx.release_json(r)),
                None => (404, error("Not Found")),
            }
        }
        ("POST", ["releases"]) => {
            let tag = b["tag_name"].as_str().unwrap_or("").to_string();
            if tag.is_empty() {
                return (422, error("tag_name is missing"));
            }
            let draft = b["draft"].as_bool().unwrap_or(false);
            if !draft && s.releases.iter().any(|r| r.tag_name == tag && !r.draft) {
                return (422, already_exists("Release", "tag_name"));
            }
            let id = s.id();
            let release = Release {
                id,
                tag_name: tag,
                target_commitish: b["target_commitish"].as_str().unwrap_or("main").into(),
                name: b["name"].as_str().unwrap_or("").into(),
                body: b["body"].as_str().unwrap_or("").into(),
                draft,
                prerelease: b["prerelease"].as_bool().unwrap_or(false),
                assets: vec![],
            };
            s.releases.push(release.clone());
            if matches!(s.faults.front(), Some(Fault::CreateReleaseThenBadGateway)) {
                s.faults.pop_front();
                return (502, error("Bad Gateway"));
            }
            (201, ctx.release_json(&release))
        }
        (method, ["releases", id]) if id.parse::<u64>().is_ok() => {
            let id: u64 = id.parse().unwrap_or(0);
            let Some(i) = s.releases.iter().position(|r| r.id == id) else {
                return (404, error("Not Found"));
            };
            match method {
                "GET" => (200, ctx.release_json(&s.releases[i])),
                "DELETE" => {
                    s.releases.remove(i);
                    (204, Value::Null)
                }
                "PATCH" => {
                    let tag = b["tag_name"].as_str().map(String::from);
                    let draft = b["draft"].as_bool();
                    let r = &s.releases[i];
                    let tag_after = tag.clone().unwrap_or_else(|| r.tag_name.clone());
                    if !draft.unwrap_or(r.draft)
                        && s.releases.iter().any(|o| o.id != id && o.tag_name == tag_after && !o.draft)
                    {
                        return (422, already_exists("Release", "tag_name"));
                    }
                    let r = &mut s.releases[i];
                    r.tag_name = tag_after;
                    r.draft = draft.unwrap_or(r.draft);
                    if let Some(p) = b["prerelease"].as_bool() {
                        r.prerelease = p;
                    }
                    for (field, value) in [
                        ("target_commitish", &mut r.target_commitish),
                        ("name", &mut r.name),
                        ("body", &mut r.body),
                    ] {
                        if let Some(v) = b[field].as_str() {
                            *value = v.into();
                        }
                    }
                    let r = r.clone();
                    (200, ctx.release_json(&r))
                }
                _ => (404, error("Not Found")),
            }
        }
        ("GET", ["releases", id, "assets"]) => match s.releases.iter().find(|r| id.parse() == Ok(r.id)) {
            Some(r) => (200, Value::Array(r.assets.iter().map(|a| ctx.asset_json(a, &r.tag_name)).collect())),
            None => (404, error("Not Found")),
        },
        (method @ ("GET" | "DELETE" | "PATCH"), ["releases", "assets", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let Some(r) = s.releases.iter().position(|r| r.assets.iter().any(|a| a.id == id)) else {
                return (404, error("Not Found"));
            };
            let i = s.releases[r].assets.iter().position(|a| a.id == id).unwrap_or(0);
            match method {
                "GET" => (200, ctx.asset_json(&s.releases[r].assets[i], &s.releases[r].tag_name)),
                "PATCH" => {
                    let Some(name) = b["name"].as_str() else {
                        return (422, error("name is missing"));
                    };
                    if s.releases[r].assets.iter().any(|a| a.name == name && a.id != id) {
                        return (422, already_exists("ReleaseAsset", "name"));
                    }
                    s.releases[r].assets[i].name = name.into();
                    (200, ctx.asset_json(&s.releases[r].assets[i], &s.releases[r].tag_name))
                }
                _ => {
                    s.releases[r].assets.remove(i);
                    (204, Value::Null)
                }
            }
        }
        ("GET", ["git", "ref", kind, name @ ..]) => {
            let key = format!("{kind}/{}", name.join("/"));
            match s.refs.get(&key) {
                Some(sha) => (200, ref_json(ctx, &key, sha)),
                None => (404, error("Not Found")),
            }
        }
        ("POST", ["git", "refs"]) => {
            let key = b["ref"].as_str().unwrap_or("").trim_start_matches("refs/").to_string();
            let Some(sha) = b["sha"].as_str().map(String::from) else {
                return (422, error("sha is missing"));
            };
            if s.refs.contains_key(&key) {
                return (422, error("Reference already exists"));
            }
            s.refs.insert(key.clone(), sha.clone());
            (201, ref_json(ctx, &key, &sha))
        }
        ("PATCH", ["git", "refs", kind, name @ ..]) => {
            let key = format!("{kind}/{}", name.join("/"));
            let Some(sha) = b["sha"].as_str().map(String::from) else {
                return (422, error("sha is missing"));
            };
            if !s.refs.contains_key(&key) {
                return (422, error("Reference does not exist"));
            }
            s.refs.insert(key.clone(), sha.clone());
            (200, ref_json(ctx, &key, &sha))
        }
        ("GET", ["issues"]) => {
            let label = req.query("labels");
            let want_open = req.query("state").unwrap_or("open");
            let list: Vec<Value> = s
                .issues
                .iter()
                .filter(|i| label.is_none_or(|l| i.labels.iter().any(|x| x == l)))
                .filter(|i| want_open == "all" || (want_open == "open") == i.open)
                .map(|i| issue_json(ctx, i))
                .collect();
            (200, Value::Array(list))
        }
        ("POST", ["issues"]) => {
            let number = s.id();
            let issue = Issue {
                number,
                title: b["title"].as_str().unwrap_or("").into(),
                body: b["body"].as_str().unwrap_or("").into(),
                labels: b["labels"]
                    .as_array()
                    .map(|l| l.iter().filter_map(|x| x.as_str().map(String::from)).collect())
                    .unwrap_or_default(),
                open: true,
                comments: vec![],
            };
            s.issues.push(issue.clone());
            (201, issue_json(ctx, &issue))
        }
        (method, ["issues", n, tail @ ..]) => {
            let Some(issue) = s.issues.iter_mut().find(|i| n.parse() == Ok(i.number)) else {
                return (404, error("Not Found"));
            };
            match (method, tail) {
                ("GET", []) => {}
                ("PATCH", []) => {
                    if let Some(t) = b["title"].as_str() {
                        issue.title = t.into();
                    }
                    if let Some(t) = b["body"].as_str() {
                        issue.body = t.into();
                    }
                    if let Some(st) = b["state"].as_str() {
                        issue.open = st == "open";
                    }
                }
                ("POST", ["comments"]) => issue.comments.push(b["body"].as_str().unwrap_or("").into()),
                _ => return (404, error("Not Found")),
            }
            let issue = issue.clone();
            (if method == "POST" { 201 } else { 200 }, issue_json(ctx, &issue))
        }
        _ => (404, error("Not Found")),
    }
}

fn ref_json(ctx: &Ctx, key: &str, sha: &str) -> Value {
    json!({
        "ref": format!("refs/{key}"),
        "node_id": format!("REF_{key}"),
        "url": format!("http://{}{}/git/refs/{key}", ctx.api, ctx.prefix),
        "object": {
            "type": "commit",
            "sha": sha,
            "url": format!("http://{}{}/git/commits/{sha}", ctx.api, ctx.prefix),
        },
    })
}

fn issue_json(ctx: &Ctx, i: &Issue) -> Value {
    let url = format!("http://{}{}/issues/{}", ctx.api, ctx.prefix, i.number);
    json!({
        "id": i.number,
        "node_id": format!("I_{}", i.number),
        "number": i.number,
        "url": url,
        "html_url": url,
        "title": i.title,
        "body": i.body,
        "state": if i.open { "open" } else { "closed" },
        "labels": i.labels.iter().map(|l| json!({ "name": l })).collect::<Vec<_>>(),
        "comments": i.comments.len(),
    })
}
