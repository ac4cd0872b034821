# `hartlm chat` as a person uses it, through a pseudo-terminal: the prompt, a reply, a second
# turn that remembers the first, Ctrl-C stopping a long reply (not the program), /reset and
# /exit; then the same conversation from a pipe. Prints one JSON list of [check, ok, detail];
# run by `cargo xtask test-qemu` (xtask/src/servecheck.rs).
import json, os, pty, select, signal, subprocess, sys, time

argv = sys.argv[1:]  # the command that runs `hartlm chat -m MODEL ...`
results = []


def check(name, ok, detail=""):
    results.append([name, bool(ok), str(detail)[-400:]])


pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)

buf = b""


def read_until(marker, timeout=300):
    global buf
    end = time.time() + timeout
    while marker not in buf:
        left = end - time.time()
        if left <= 0:
            return False
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return False
            if not chunk:
                return False
            buf += chunk
    return True


def turn(text, marker=b"\n> "):
    global buf
    buf = b""
    os.write(fd, text.encode() + b"\r")
    ok = read_until(marker)
    return ok, buf.decode(errors="replace")


try:
    check("the REPL greets and prompts on a terminal", read_until(b"> "), buf[-200:])
    ok, out = turn("What is the capital of France? Answer in one word.")
    check("a reply streams back, then the prompt", ok and len(out.strip()) > 10, out)
    ok, out = turn("Repeat your last answer.")
    check("a second turn is answered", ok, out)
    buf = b""
    os.write(fd, b"Write a very long story about a cat who travels the world.\r")
    # The echoed line, then the first words of the reply: interrupt it while it streams.
    read_until(b"\n", 120)
    echoed = len(buf)
    end = time.time() + 120
    while len(buf) < echoed + 8 and time.time() < end:
        r, _, _ = select.select([fd], [], [], 1)
        if r:
            buf += os.read(fd, 4096)
    os.kill(pid, signal.SIGINT)
    stopped = read_until(b"(reply stopped)", 120) and read_until(b"> ", 60)
    check("Ctrl-C stops the reply and the prompt returns", stopped, buf[-300:])
    buf = b""
    os.write(fd, b"/reset\r")
    check("/reset clears the conversation", read_until(b"(conversation cleared)", 60), buf[-200:])
    os.write(fd, b"/exit\r")
    _, status = os.waitpid(pid, 0)
    check("/exit ends with status 0", os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status)
except Exception as e:
    check("the pseudo-terminal session ran", False, f"{type(e).__name__}: {e}")
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass

piped = subprocess.run(argv, input=b"Hello!\n/reset\nWhat is 2+2?\n", capture_output=True, timeout=600)
lines = [l for l in piped.stdout.decode(errors="replace").splitlines() if l.strip()]
check("from a pipe: two replies, no prompts, status 0",
      piped.returncode == 0 and len(lines) >= 2 and not any(l.startswith("> ") for l in lines),
      (piped.returncode, lines[:4], piped.stderr[-200:]))
print(json.dumps(results))
