//! Tests of the board runner kit (ci/runner/*.sh), run for real with bash in a throwaway root:
//! installing with `--dry-run` (building the runner through stub git and go that record what
//! they were asked), registering against a stub curl, and starting the built stub runner.
//!
//! Stubs rather than a real clone and build: neither github.com nor the Go module proxy is
//! reachable where `cargo xtask test` runs, and the point here is the script's logic (pinned
//! commit, verification, flags, what lands where). The hosted CI's `runner-kit` job builds the
//! real runner for riscv64 with the same script and runs it under qemu-user.

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};

    const TOKEN: &str = "github_pat_SECRET_hartlm_kit_test";
    const PINNED: &str = "c934667526f602e5732e7072fcd53b36cf044e37";

    /// git: `init` makes the directory, `fetch` records its arguments, `rev-parse` answers
    /// `$STUB_GIT_HEAD` or the pinned commit.
    const GIT: &str = r#"#!/bin/sh
if [ "$1" = -C ]; then dir="$2"; shift 2; fi
case "$1" in
    init) mkdir -p "$dir/$3" ;;
    fetch) printf '%s\n' "$@" >> "$STUB_LOG/git.argv" ;;
    checkout) ;;
    rev-parse) echo "${STUB_GIT_HEAD:-c934667526f602e5732e7072fcd53b36cf044e37}" ;;
esac
"#;

    /// go: `version` says 1.22; `build -o OUT` records the environment and writes a runner
    /// whose `run --help` offers `--jitconfig`.
    const GO: &str = r#"#!/bin/sh
case "$1" in
    version) echo "go version go1.22.2 linux/amd64" ;;
    build)
        env | grep -E '^(GOTOOLCHAIN|GOFLAGS|GOARCH|CGO_ENABLED)=' | sort > "$STUB_LOG/go.env"
        printf '%s\n' "$@" > "$STUB_LOG/go.argv"
        while [ "$1" != -o ]; do shift; done
        printf '#!/bin/sh\n[ "$2" = --help ] && echo "  --jitconfig string"\necho "github-act-runner $*"\n' > "$2"
        chmod +x "$2" ;;
esac
"#;

    fn kit() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../ci/runner")
    }

    fn write_exec(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    /// A root holding a stub hartlm release whose labels carry shell syntax, and stub commands
    /// (curl records its argv and stdin; ps-visible arguments are what argv holds).
    struct Root {
        dir: tempfile::TempDir,
    }

    impl Root {
        fn new() -> Root {
            let dir = tempfile::tempdir().unwrap();
            let r = Root { dir };
            write_exec(
                &r.path().join("release/bin/hartlm"),
                "#!/bin/sh\necho 'riscv64,rvv,$(touch PWNED_LABELS),x60;`touch PWNED2`'\n",
            );
            write_exec(&r.path().join("stubs/git"), GIT);
            write_exec(&r.path().join("stubs/go"), GO);
            write_exec(
                &r.path().join("stubs/curl"),
                &format!(
                    "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{0}/curl.argv'\ncat > '{0}/curl.stdin'\n\
                     echo '{{\"encoded_jit_config\": \"JIT-ONE-JOB\"}}'\n",
                    r.path().display()
                ),
            );
            r
        }

        fn path(&self) -> &Path {
            self.dir.path()
        }

        fn bash(&self, script: &str, args: &[&str], stdin: &str) -> std::process::Output {
            let path = format!(
                "{}:{}",
                self.path().join("stubs").display(),
                std::env::var("PATH").unwrap_or_default()
            );
            let mut child = Command::new("bash")
                .arg(kit().join(script))
                .args(args)
                .current_dir(self.path())
                .env("PATH", path)
                .env("HARTLM_RUNNER_ROOT", self.path().join("root"))
                .env("STUB_LOG", self.path())
                .env(
                    "HARTLM_RUNNER_BIN",
                    self.path().join("root/usr/local/lib/hartlm-runner/github-act-runner"),
                )
                .env_remove("RUNTIME_DIRECTORY")
                .env_remove("STATE_DIRECTORY")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
            child.wait_with_output().unwrap()
        }

        fn install(&self, name: &str) -> std::process::Output {
            let release = self.path().join("release");
            let args =
                ["--dry-run", "--repo", "hart/hartlm", "--hartlm", release.to_str().unwrap(), "--name", name];
            self.bash("install.sh", &args, &format!("{TOKEN}\n"))
        }
    }

    const NAME: &str = "board $(touch PWNED_NAME) 'q' \"d\" `touch PWNED3`\\n";

    #[test]
    fn install_keeps_the_token_from_the_job_user_and_quotes_what_it_writes() {
        let r = Root::new();
        let out = r.install(NAME);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let conf = r.path().join("root/etc/hartlm-runner");
        assert_eq!(mode(&conf), 0o700, "only root may enter the configuration");
        assert_eq!(mode(&conf.join("token")), 0o600, "the token is root's alone");
        assert_eq!(mode(&conf.join("runner.env")), 0o600);
        assert_eq!(std::fs::read_to_string(conf.join("token")).unwrap().trim(), TOKEN);
        // Sourcing the generated file yields exactly the values given, and runs nothing.
        let probe = format!(
            ". '{}'; printf '%s\\n%s\\n%s' \"$REPO\" \"$NAME_PREFIX\" \"$LABELS\"",
            conf.join("runner.env").display()
        );
        let got = Command::new("bash").arg("-c").arg(&probe).current_dir(r.path()).output().unwrap();
        let text = String::from_utf8(got.stdout).unwrap();
        let want = format!("hart/hartlm\n{NAME}\nriscv64,rvv,$(touch PWNED_LABELS),x60;`touch PWNED2`");
        assert_eq!(text, want);
        for f in ["PWNED_NAME", "PWNED_LABELS", "PWNED2", "PWNED3"] {
            assert!(!r.path().join(f).exists(), "{f}: a generated file executed its values");
        }
        let unit =
            std::fs::read_to_string(r.path().join("root/etc/systemd/system/hartlm-runner.service")).unwrap();
        assert!(unit.contains("ExecStartPre=+/usr/local/lib/hartlm-runner/register.sh"), "{unit}");
        assert!(unit.contains("User=hartlm-runner"));
        // The runner was built from the pinned commit, with the module's toolchain, read-only
        // modules and no cgo, into the root.
        let fetched = std::fs::read_to_string(r.path().join("git.argv")).unwrap();
        assert!(fetched.contains("https://github.com/ChristopherHX/github-act-runner.git"), "{fetched}");
        assert!(fetched.lines().any(|l| l == PINNED), "{fetched}");
        let env = std::fs::read_to_string(r.path().join("go.env")).unwrap();
        assert_eq!(env, "CGO_ENABLED=0\nGOFLAGS=-mod=readonly\nGOTOOLCHAIN=go1.24.3\n");
        assert!(r.path().join("root/usr/local/lib/hartlm-runner/github-act-runner").is_file());
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.contains("dry run: apt-get install") && said.contains("dry run: systemctl enable"),
            "{said}"
        );
    }

    /// A checkout whose commit is not the pinned one is never built.
    #[test]
    fn the_runner_is_built_only_from_the_pinned_commit() {
        let r = Root::new();
        let out_bin = r.path().join("out/github-act-runner");
        let run = |head: Option<&str>, args: &[&str]| {
            let mut c = Command::new("bash");
            c.arg(kit().join("build-runner.sh")).args(args).current_dir(r.path()).env("STUB_LOG", r.path());
            c.env("PATH", format!("{}:{}", r.path().join("stubs").display(), std::env::var("PATH").unwrap()));
            if let Some(h) = head {
                c.env("STUB_GIT_HEAD", h);
            }
            c.output().unwrap()
        };
        let out = run(Some(&"0".repeat(40)), &[out_bin.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("refusing to build"), "{err}");
        assert!(!out_bin.exists() && !r.path().join("go.argv").exists());
        // Cross-building for the board: GOARCH reaches go, the binary lands where asked.
        let out = run(None, &["out/github-act-runner", "riscv64"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let env = std::fs::read_to_string(r.path().join("go.env")).unwrap();
        assert!(env.contains("GOARCH=riscv64"), "{env}");
        assert!(out_bin.is_file());
    }

    #[test]
    fn registration_keeps_the_token_off_every_command_line() {
        let r = Root::new();
        assert!(r.install("board").status.success());
        let out = r.bash("register.sh", &[], "");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let argv = std::fs::read_to_string(r.path().join("curl.argv")).unwrap();
        assert!(!argv.contains(TOKEN), "the token is on curl's command line:\n{argv}");
        assert!(
            argv.contains("--config")
                && argv.contains("/repos/hart/hartlm/actions/runners/generate-jitconfig")
        );
        let stdin = std::fs::read_to_string(r.path().join("curl.stdin")).unwrap();
        assert!(stdin.contains(&format!("header = \"Authorization: Bearer {TOKEN}\"")), "{stdin}");
        let jit = r.path().join("root/run/hartlm-runner/jitconfig");
        assert_eq!(std::fs::read_to_string(&jit).unwrap(), "JIT-ONE-JOB");
        assert_eq!(mode(&jit), 0o600);
        // The job side: the one-job configuration is consumed, and the token is nowhere in it.
        let out = r.bash("run-once.sh", &[], "");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && said.contains("run --jitconfig JIT-ONE-JOB"), "{said}");
        assert!(!said.contains(TOKEN));
        assert!(!jit.exists(), "the one-job configuration is removed before the job runs");
        let script = std::fs::read_to_string(kit().join("run-once.sh")).unwrap();
        assert!(
            !script.contains("/token") && !script.contains("CONF_DIR"),
            "run-once.sh (the job user's side) never touches the token"
        );
    }

    #[test]
    fn a_dry_run_needs_a_throwaway_root() {
        let out = Command::new("bash")
            .arg(kit().join("install.sh"))
            .args(["--dry-run", "--repo", "a/b", "--hartlm", "/nonexistent"])
            .env_remove("HARTLM_RUNNER_ROOT")
            .output()
            .unwrap();
        assert!(!out.status.success());
    }
}
