//! `hartlm serve` against real clients on loopback: the packaged launcher (natively, or a riscv64
//! one under qemu) serves a model, and `serve_check.py` drives it with the `openai` package and
//! curl: chat and completions, streaming or not, usage, stop, auth, 16 concurrent streams at
//! `-np 4`, then a one-slot server's full queue (503) and a cancelled stream, then tool calls
//! through a `--chat-template-file`. `chat_check.py`
//! drives `hartlm chat` through a pseudo-terminal and a pipe.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::prereq;

const SCRIPT: &str = include_str!("serve_check.py");
const CHAT_SCRIPT: &str = include_str!("chat_check.py");

/// A running server, stopped (SIGINT, then SIGKILL) when dropped.
pub struct Server {
    child: Child,
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGINT: the server's graceful shutdown (under qemu the signal reaches the guest).
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` (a launcher, or qemu running one) with `serve` arguments and waits for its
/// "listening on http://..." line.
pub fn start(mut cmd: Command, args: &[&str]) -> Result<Server> {
    cmd.args(["serve", "--port", "0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
    let stderr = child.stderr.take().context("server stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let _ = tx.send(Ok(rest.split_whitespace().next().unwrap_or("").to_string()));
            } else if line.starts_with("hartlm: ") {
                let _ = tx.send(Err(line));
            }
        }
    });
    let server = |url: String| Server { child, url };
    match rx.recv_timeout(Duration::from_secs(300)) {
        Ok(Ok(url)) => Ok(server(url)),
        Ok(Err(line)) => bail!("the server failed to start: {line}"),
        Err(_) => bail!("the server did not start within 300 s"),
    }
}

/// What `hartlm run --temp 0 -n 8` gives for the check's prompt: the chat reply (`--chat`), its
/// prompt tokens, and the plain continuation.
fn expected(launch: &dyn Fn() -> Result<Command>, model: &Path) -> Result<serde_json::Value> {
    let prompt = "Once upon a time";
    let run = |chat: bool| -> Result<(String, String)> {
        let mut cmd = launch()?;
        cmd.args(["run", "-m"]).arg(model).args(["-p", prompt, "--temp", "0", "-n", "8"]);
        if chat {
            cmd.arg("--chat");
        }
        let out = cmd.output().context("running hartlm run")?;
        Ok((
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    };
    let (stdout, stderr) = run(true)?;
    let reply = stdout
        .strip_prefix(&format!("{prompt}\n"))
        .and_then(|r| r.strip_suffix('\n'))
        .with_context(|| format!("unexpected `hartlm run --chat` output {stdout:?} ({stderr})"))?;
    let prompt_tokens: usize = stderr
        .split("prompt: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no prompt token count in {stderr:?}"))?;
    let (stdout, stderr) = run(false)?;
    let continuation = stdout
        .strip_prefix(prompt)
        .and_then(|r| r.strip_suffix('\n'))
        .with_context(|| format!("unexpected `hartlm run` output {stdout:?} ({stderr})"))?;
    Ok(serde_json::json!({"reply": reply, "prompt_tokens": prompt_tokens, "continuation": continuation}))
}

/// Runs the script against `url` in `mode` (with `extra` arguments); its `[name, ok, detail]`
/// rows.
fn script(
    url: &str,
    key: &str,
    mode: &str,
    expected: &Path,
    extra: &[&str],
) -> Result<Vec<(String, bool, String)>> {
    let out = Command::new("python3")
        .args(["-c", SCRIPT, url, key, mode])
        .arg(expected)
        .args(extra)
        .output()
        .context("running serve_check.py")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<(String, bool, String)> = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .with_context(|| {
            format!(
                "serve_check.py gave no result ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    Ok(rows)
}

/// The `openai` client the checks (and `bench --serve`) drive the server with, in the venv.
pub fn ensure_python(sh: &xshell::Shell) -> Result<()> {
    if prereq::python_has(sh, "openai") {
        return Ok(());
    }
    prereq::pip_install(sh, &["openai"])
}

/// Every server check of one launcher: `launch()` makes the command that runs it (natively or
/// under qemu), `model` is what it serves. With `tool_template`, a chat template whose tool-call
/// syntax the model writes, the tool-call checks run too.
pub fn run_all(
    sh: &xshell::Shell,
    launch: &dyn Fn() -> Result<Command>,
    model: &Path,
    tool_template: Option<&Path>,
    scratch: &Path,
) -> Result<Vec<(String, bool, String)>> {
    ensure_python(sh)?;
    std::fs::create_dir_all(scratch)?;
    let key = format!("k{:x}", std::process::id() as u64 * 2654435761);
    let key_file = scratch.join("api-key");
    std::fs::write(&key_file, format!("{key}\n"))?;
    let expected_file = scratch.join("expected.json");
    std::fs::write(&expected_file, expected(launch, model)?.to_string())?;
    let key_arg = key_file.to_str().context("scratch path")?;
    let model_arg = model.to_str().context("model path")?;
    let mut rows = Vec::new();
    {
        let server =
            start(launch()?, &["-m", model_arg, "-np", "4", "--queue", "32", "--api-key-file", key_arg])?;
        rows.extend(script(&server.url, &key, "main", &expected_file, &[])?);
    }
    {
        let one = ["-m", model_arg, "-np", "1", "--queue", "1", "-c", "2048", "--api-key-file", key_arg];
        let server = start(launch()?, &one)?;
        rows.extend(script(&server.url, &key, "queue", &expected_file, &[])?);
    }
    if let Some(template) = tool_template {
        let template_arg = template.to_str().context("template path")?;
        let args =
            ["-m", model_arg, "-np", "2", "--chat-template-file", template_arg, "--api-key-file", key_arg];
        let server = start(launch()?, &args)?;
        rows.extend(script(&server.url, &key, "tools", &expected_file, &[template_arg])?);
    }
    Ok(rows)
}

/// The chat REPL through a pseudo-terminal and a pipe (`chat_check.py`), run natively by
/// `launcher` on `model`.
pub fn chat_checks(launcher: &Path, model: &Path) -> Result<Vec<(String, bool, String)>> {
    let out = Command::new("python3")
        .args(["-c", CHAT_SCRIPT])
        .arg(launcher)
        .args(["chat", "-m"])
        .arg(model)
        .args(["--temp", "0", "-n", "1000"])
        .env_remove("HARTLM_TIER")
        .env_remove("HARTLM_LIB_DIR")
        .output()
        .context("running chat_check.py")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or("")).with_context(|| {
        format!("chat_check.py gave no result ({}): {}", out.status, String::from_utf8_lossy(&out.stderr))
    })
}
