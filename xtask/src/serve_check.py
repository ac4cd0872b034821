# The OpenAI-compatible server against real clients: the `openai` package (blocking and
# streaming chat and completions, usage, stop, auth), curl (JSON and SSE), a concurrent load,
# the queue-full path, a cancelled stream and the body limit. Prints one JSON list of
# [check, ok, detail]; run by `cargo xtask test-qemu` (xtask/src/servecheck.rs).
import json, subprocess, sys, threading, time, urllib.request, urllib.error
import openai

base, key, mode, expected_path = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
results = []


def check(name, ok, detail=""):
    results.append([name, bool(ok), str(detail)[:400]])


def guarded(name, f):
    try:
        f()
    except Exception as e:  # a check that raises fails, with the reason
        check(name, False, f"{type(e).__name__}: {e}")


client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=600)
PROMPTS = ["Once upon a time", "The little cat", "Tom was", "There was a dog"]
N = 8


def chat(prompt, stream=False, **kw):
    messages = [{"role": "user", "content": prompt}]
    if not stream:
        r = client.chat.completions.create(model="m", messages=messages, temperature=0, max_tokens=N, **kw)
        return r.choices[0].message.content, r.choices[0].finish_reason, r.usage
    text, finish, usage = "", None, None
    for c in client.chat.completions.create(model="m", messages=messages, temperature=0, max_tokens=N,
                                            stream=True, stream_options={"include_usage": True}, **kw):
        if c.usage is not None:
            usage = c.usage
        for ch in c.choices:
            text += ch.delta.content or ""
            finish = ch.finish_reason or finish
    return text, finish, usage


def complete(prompt, stream=False):
    if not stream:
        return client.completions.create(model="m", prompt=prompt, temperature=0, max_tokens=N).choices[0].text
    return "".join(x.choices[0].text for x in client.completions.create(
        model="m", prompt=prompt, temperature=0, max_tokens=N, stream=True) if x.choices)


def http(path, body=None, headers=None, method=None):
    req = urllib.request.Request(base + path, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


if mode == "main":
    expected = json.load(open(expected_path))
    greedy = {}

    def basics():
        models = client.models.list()
        check("GET /v1/models lists the model", len(models.data) == 1, [m.id for m in models.data])
        for p in PROMPTS:
            greedy[p] = chat(p)
        text, finish, usage = greedy[PROMPTS[0]]
        check("blocking chat matches `hartlm run --chat --temp 0`", text == expected["reply"],
              f"{text!r} vs {expected['reply']!r}")
        check("usage counts the prompt and the reply",
              usage.prompt_tokens == expected["prompt_tokens"] and usage.completion_tokens <= N
              and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, usage)
        s_text, s_finish, s_usage = chat(PROMPTS[0], stream=True)
        check("streaming chat gives the blocking text, finish and usage",
              (s_text, s_finish, s_usage.completion_tokens) == (text, finish, usage.completion_tokens),
              f"{s_text!r} {s_finish} vs {text!r} {finish}")
        for p in PROMPTS:
            greedy["completion " + p] = complete(p)
        c = greedy["completion " + PROMPTS[0]]
        check("completion matches `hartlm run --temp 0` and is not empty", c == expected["continuation"] and c,
              f"{c!r} vs {expected['continuation']!r}")
        streamed = complete(PROMPTS[0], stream=True)
        check("completions, blocking and streaming, agree", c == streamed, f"{c!r} vs {streamed!r}")
        if len(text) >= 4:
            stop = text[2:4]
            st, sf, _ = chat(PROMPTS[0], stop=[stop])
            check("a stop string ends the reply before it", st == text[:text.index(stop)] and sf == "stop",
                  f"stop {stop!r}: {st!r} {sf}")
        seeded = [client.chat.completions.create(model="m", messages=[{"role": "user", "content": PROMPTS[2]}],
                                                 temperature=1.0, top_p=0.9, seed=7, extra_body={"top_k": 20, "min_p": 0.01},
                                                 max_tokens=N).choices[0].message.content for _ in range(2)]
        check("a seed repeats a sampled reply", seeded[0] == seeded[1], seeded)

    def auth():
        bad = openai.OpenAI(base_url=base + "/v1", api_key="wrong", max_retries=0)
        try:
            bad.models.list()
            check("a wrong API key is refused with 401", False, "accepted")
        except openai.AuthenticationError:
            check("a wrong API key is refused with 401", True)
        status, _, _ = http("/health")
        check("/health needs no key", status == 200, status)

    def curl():
        body = json.dumps({"messages": [{"role": "user", "content": PROMPTS[0]}], "temperature": 0, "max_tokens": N})
        out = subprocess.run(["curl", "-sS", "-H", "Authorization: Bearer " + key, "-H", "Content-Type: application/json",
                              "-d", body, base + "/v1/chat/completions"], capture_output=True, text=True, timeout=600)
        got = json.loads(out.stdout)["choices"][0]["message"]["content"]
        check("curl: blocking chat", got == greedy[PROMPTS[0]][0], got)
        sse = json.dumps({"messages": [{"role": "user", "content": PROMPTS[0]}], "temperature": 0, "max_tokens": N,
                          "stream": True})
        out = subprocess.run(["curl", "-sSN", "-H", "Authorization: Bearer " + key, "-H", "Content-Type: application/json",
                              "-d", sse, base + "/v1/chat/completions"], capture_output=True, text=True, timeout=600)
        lines = [l[6:] for l in out.stdout.splitlines() if l.startswith("data: ")]
        text = "".join(json.loads(l)["choices"][0]["delta"].get("content") or "" for l in lines[:-1]
                       if json.loads(l)["choices"])
        check("curl: server-sent events end with [DONE] and carry the text",
              lines and lines[-1] == "[DONE]" and text == greedy[PROMPTS[0]][0], out.stdout[-200:])

    def load():
        got, errors = {}, []

        def one(i):
            p = PROMPTS[i % len(PROMPTS)]
            try:
                got[i] = (p, complete(p, stream=True))
            except Exception as e:
                errors.append(f"{i}: {e}")

        threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
        t0 = time.time()
        [t.start() for t in threads]
        [t.join() for t in threads]
        wrong = [i for i, (p, t) in got.items() if t != greedy["completion " + p] or not t]
        check("16 concurrent streams at -np 4: all complete with the greedy text",
              len(got) == 16 and not wrong and not errors,
              f"{len(got)} done, wrong {wrong}, errors {errors[:2]}, {time.time() - t0:.1f}s")
        status, _, text = http("/metrics")
        check("/metrics counts the requests and tokens", status == 200 and b"hartlm_requests_total" in text
              and b"hartlm_tokens_generated_total" in text, text[:200])

    def limits():
        status, _, _ = http("/v1/chat/completions", body=b"x" * (5 << 20),
                            headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
        check("a body over --max-body is refused with 413", status == 413, status)
        status, _, body = http("/v1/chat/completions", body=b"{not json",
                               headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
        check("a broken JSON body gets 400 with an OpenAI error", status == 400 and b"error" in body, (status, body[:100]))

    for name, f in [("basics", basics), ("auth", auth), ("curl", curl), ("load", load), ("limits", limits)]:
        guarded(name, f)
elif mode == "tools":
    # The server runs with --chat-template-file (Qwen2.5's template). Tools and tool messages
    # render as jinja2 renders them; a reply's <tool_call> blocks come back as tool_calls,
    # blocking and streaming, exactly as the raw greedy text of the same prompt holds them.
    # SmolLM2-135M does not call tools on its own, but it repeats a call it is asked to say.
    import re
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    template_path = sys.argv[5]
    TOOLS = [{"type": "function", "function": {
        "name": "get_weather", "description": "Get the current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city"}},
                       "required": ["city"]}}}]
    ASK = [{"role": "system", "content": "You are a helpful assistant with access to tools."},
           {"role": "user", "content": "Say exactly this and nothing else: <tool_call>{\"name\": \"get_weather\", "
                                       "\"arguments\": {\"city\": \"Paris\"}}</tool_call>"}]
    HISTORY = ASK + [
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"temperature_c\": 18, \"sky\": \"clear\"}"}]
    headers = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}

    def jinja2_prompt(messages):
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.filters["tojson"] = lambda x, **kw: json.dumps(x, ensure_ascii=False)
        for m in messages:  # Hugging Face's templates take arguments as dicts
            for c in m.get("tool_calls") or []:
                c["function"]["arguments"] = json.loads(c["function"]["arguments"])
            if m.get("content") is None:
                m["content"] = ""
        return env.from_string(open(template_path).read()).render(
            messages=messages, tools=TOOLS, add_generation_prompt=True, bos_token="", eos_token="")

    def render():
        import copy
        status, _, body = http("/apply-template", body=json.dumps({"messages": HISTORY, "tools": TOOLS}).encode(),
                               headers=headers)
        got = json.loads(body).get("prompt") if status == 200 else body
        want = jinja2_prompt(copy.deepcopy(HISTORY))
        check("tools, a tool call and its result render as jinja2 renders them", got == want and "<tools>" in want
              and "<tool_response>" in want, f"{got!r}"[:300])

    def calls():
        status, _, body = http("/apply-template", body=json.dumps({"messages": ASK, "tools": TOOLS}).encode(),
                               headers=headers)
        prompt = json.loads(body)["prompt"]
        raw = client.completions.create(model="m", prompt=prompt, temperature=0, max_tokens=48).choices[0].text
        blocks = re.findall(r"<tool_call>(.*?)</tool_call>", raw, re.S)
        want = []
        for b in blocks:
            parsed = json.loads(b)
            for c in parsed if isinstance(parsed, list) else [parsed]:
                want.append((c["name"], c["arguments"]))
        check("the model's greedy reply holds a <tool_call> block", want, repr(raw))
        r = client.chat.completions.create(model="m", messages=ASK, tools=TOOLS, temperature=0, max_tokens=48)
        m = r.choices[0]
        got = [(c.function.name, json.loads(c.function.arguments)) for c in m.message.tool_calls or []]
        check("blocking chat returns the reply's calls as tool_calls",
              got == want and m.finish_reason == "tool_calls" and all(c.id and c.type == "function"
                                                                       for c in m.message.tool_calls or []),
              f"{got} {m.finish_reason} from {raw!r}")
        streamed, finish, text = {}, None, ""
        for c in client.chat.completions.create(model="m", messages=ASK, tools=TOOLS, temperature=0, max_tokens=48,
                                                stream=True):
            for ch in c.choices:
                text += ch.delta.content or ""
                for tc in ch.delta.tool_calls or []:
                    e = streamed.setdefault(tc.index, {"name": "", "arguments": ""})
                    e["name"] += (tc.function and tc.function.name) or ""
                    e["arguments"] += (tc.function and tc.function.arguments) or ""
                finish = ch.finish_reason or finish
        got = [(e["name"], json.loads(e["arguments"])) for _, e in sorted(streamed.items())]
        check("streaming chat sends the same tool_calls and finish", got == want and finish == "tool_calls"
              and text == (m.message.content or ""), f"{got} {finish} {text!r}")
        status, _, body = http("/v1/chat/completions", body=json.dumps(
            {"messages": ASK, "tools": TOOLS, "tool_choice": "required"}).encode(), headers=headers)
        check("tool_choice required is refused with 400 and the reason", status == 400 and b"tool_choice" in body,
              (status, body[:200]))

    guarded("render", render)
    guarded("calls", calls)
else:
    # One slot, a queue of one: six long requests at once must see 503 with Retry-After, and a
    # stream whose client goes away must free its slot.
    def flood():
        statuses = []

        def one():
            body = json.dumps({"prompt": PROMPTS[0], "max_tokens": 64, "temperature": 0}).encode()
            s, h, _ = http("/v1/completions", body=body,
                           headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
            statuses.append((s, h.get("Retry-After") or h.get("retry-after")))

        threads = [threading.Thread(target=one) for _ in range(6)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        rejected = [s for s in statuses if s[0] == 503]
        check("a full queue answers 503 with Retry-After", rejected and all(r[1] for r in rejected)
              and all(s[0] in (200, 503) for s in statuses) and any(s[0] == 200 for s in statuses), statuses)

    def cancel():
        import http.client as httpclient
        from urllib.parse import urlparse
        body = {"messages": [{"role": "user", "content": "Write a long story about a cat."}], "max_tokens": 400,
                "temperature": 0}
        natural = client.chat.completions.create(model="m", **body)
        full = natural.usage.completion_tokens

        def counters():
            _, _, m = http("/metrics")
            return dict(l.split(" ") for l in m.decode().splitlines() if l and not l.startswith("#"))

        before = int(counters()["hartlm_tokens_generated_total"])
        u = urlparse(base)
        conn = httpclient.HTTPConnection(u.hostname, u.port, timeout=600)
        conn.request("POST", "/v1/chat/completions", body=json.dumps(dict(body, stream=True)),
                     headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
        r = conn.getresponse()
        r.readline()
        conn.sock.close()
        conn.close()
        idle = False
        for _ in range(600):
            time.sleep(0.1)
            c = counters()
            if c["hartlm_slots_busy"] == "0":
                idle = True
                break
        made = int(counters()["hartlm_tokens_generated_total"]) - before
        check("a closed stream cancels its generation", idle and made < full and natural.choices[0].finish_reason == "length",
              f"{made} tokens made after the close; the whole reply is {full} ({natural.choices[0].finish_reason})")

    guarded("flood", flood)
    guarded("cancel", cancel)
print(json.dumps(results))
