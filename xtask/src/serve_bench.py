# Aggregate generation throughput of `hartlm serve`: CLIENTS threads, each sending REQUESTS
# streaming chat requests one after another (64 tokens each, greedy, ignore_eos-like prompts
# that ask for long answers). Prints {"tokens": N, "seconds": S}; run by
# `cargo xtask bench --serve` (xtask/src/servebench.rs).
import json, sys, threading, time
import openai

base, clients, requests = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
client = openai.OpenAI(base_url=base + "/v1", api_key="none", max_retries=0, timeout=3600)
PROMPTS = ["Write a long story about a cat.", "Explain how rain forms, in detail.",
           "Describe a walk through a city at night.", "List many uses of a paperclip."]
tokens = []


def worker(i):
    for r in range(requests):
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": PROMPTS[(i + r) % len(PROMPTS)]}],
            temperature=0, max_tokens=64, stream=True, stream_options={"include_usage": True})
        for c in stream:
            if c.usage is not None:
                tokens.append(c.usage.completion_tokens)


threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
t0 = time.time()
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps({"tokens": sum(tokens), "seconds": time.time() - t0, "requests": len(tokens)}))
