# Independent closed-loop load client for cross-checking `fuze stack <stack> serving` (no fuze
# code; not used by fuze or its tests): the method of `vllm bench serve`
# (aiohttp streaming; TTFT = first non-empty chunk, ITL = gaps between later chunks,
# output throughput = output tokens / benchmark duration), percentiles numpy-linear (type 7).
# usage: serving_client.py ollama|llamacpp PORT MODEL CONCURRENCY REQUESTS INPUT_TOKENS OUTPUT_TOKENS [WARMUP_PER_STREAM [RECORDS.jsonl]]
# (prompt words calibrated from the server's prompt token counts on three warm-up requests; then
# WARMUP_PER_STREAM × CONCURRENCY unrecorded requests CONCURRENCY at a time, as fuze's
# SERVING_WARMUP does, default 0). Each request opens its own connection, as `vllm bench serve`
# does (a session per request): llama-server closes kept-alive connections, which a pooled
# client sees as "Server disconnected". RECORDS.jsonl, when given, gets one line per measured
# request (wall-clock start, TTFT, every ITL, e2e in ms) so that a run sharing the server with
# another client can be compared over the time both were measuring.
# REQUEST_RATE=R in the environment makes the measured phase an open loop, as `vllm bench serve
# --request-rate R --max-concurrency CONCURRENCY`: arrivals with exponential gaps of mean 1/R
# (seeded by SEED, default 0), each waiting for a free stream when CONCURRENCY are in flight.
# Random arrivals do not lock into a phase with another client's, as two closed loops of
# equal-length requests do.
import asyncio, json, os, random, sys, time
import aiohttp
import numpy as np

kind, port, model = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conc, nreq, in_target, out_tok = map(int, sys.argv[4:8])
warmup_per_stream = int(sys.argv[8]) if len(sys.argv) > 8 else 0
records_path = sys.argv[9] if len(sys.argv) > 9 else None
in_words = 64
words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon".split()


def prompt(i):
    # A unique head (no prefix cache helps), then the words in a fixed cycle: every prompt of
    # in_words words has the same token count, so the calibration holds for all of them (random
    # words made the counts vary by several tokens around the target).
    return "[loadgen %d %f] " % (i, time.time()) + " ".join(words[k % len(words)] for k in range(in_words))


async def one(session, i):
    if kind == "ollama":
        url = "http://127.0.0.1:%d/api/generate" % port
        body = {"model": model, "prompt": prompt(i), "stream": True, "raw": True,
                "options": {"num_predict": out_tok, "temperature": 0, "num_ctx": 2048}}
    else:
        url = "http://127.0.0.1:%d/completion" % port
        body = {"prompt": prompt(i), "n_predict": out_tok, "stream": True, "cache_prompt": False,
                "ignore_eos": True, "temperature": 0}
    wall = time.time()
    st = time.perf_counter()
    ttft, last, itl, tokens, ptoks = None, st, [], 0, None
    async with session.post(url, json=body) as r:
        if r.status != 200:
            return None
        async for line in r.content:
            line = line.strip()
            if kind != "ollama":
                if not line.startswith(b"data: "):
                    continue
                line = line[6:]
            if not line:
                continue
            now = time.perf_counter()
            obj = json.loads(line)
            text = obj.get("response") if kind == "ollama" else obj.get("content")
            if text:
                tokens += 1
                if ttft is None:
                    ttft = now - st
                else:
                    itl.append(now - last)
                last = now
            if obj.get("done") or obj.get("stop"):
                ptoks = obj.get("prompt_eval_count") if kind == "ollama" else obj.get("timings", {}).get("prompt_n")
                break
    return dict(wall_start=wall, start=st, end=last, ttft=ttft, itl=itl, tokens=tokens, e2e=last - st, prompt_tokens=ptoks)


async def main():
    conn = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=3600)) as s:
        global in_words
        # Warm-up and calibration: the server's prompt token count at two word counts gives the
        # line tokens = head + per_word × words (the head is the unique prefix); a third request
        # at the words that line asks for checks it.
        counts = []
        for k, words_now in enumerate((in_words, 2 * in_words)):
            in_words = words_now
            w = await one(s, -1 - k)
            if w and w["prompt_tokens"]:
                counts.append((words_now, w["prompt_tokens"]))
        if len(counts) == 2 and counts[1][1] != counts[0][1]:
            per_word = (counts[1][1] - counts[0][1]) / (counts[1][0] - counts[0][0])
            head = counts[0][1] - per_word * counts[0][0]
            in_words = max(1, round((in_target - head) / per_word))
        await one(s, -3)
        async def record(i, out):
            try:
                r = await one(s, i)
            except aiohttp.ClientError as e:  # a failed request, as fuze counts one
                print("request failed: %r" % e, file=sys.stderr)
                return
            if r:
                out.append(r)

        async def closed_loop(first, n, out):
            queue = list(range(first, first + n))

            async def worker():
                while queue:
                    await record(queue.pop(0), out)

            await asyncio.gather(*(worker() for _ in range(conc)))

        async def open_loop(n, rate, out):
            gaps = random.Random(int(os.environ.get("SEED", "0")))
            free = asyncio.Semaphore(conc)

            async def send(i):
                async with free:
                    await record(i, out)

            tasks = []
            for i in range(n):
                tasks.append(asyncio.create_task(send(i)))
                await asyncio.sleep(gaps.expovariate(rate))
            await asyncio.gather(*tasks)

        await closed_loop(nreq, warmup_per_stream * conc, [])
        out = []
        t0 = time.perf_counter()
        rate = float(os.environ.get("REQUEST_RATE", "0"))
        if rate > 0:
            await open_loop(nreq, rate, out)
        else:
            await closed_loop(0, nreq, out)
        dur = max(r["end"] for r in out) - t0
    toks = sum(r["tokens"] for r in out)
    if records_path:
        with open(records_path, "w") as f:
            for r in out:
                f.write(json.dumps(dict(start_unix_s=r["wall_start"], ttft_ms=r["ttft"] * 1000, itl_ms=[g * 1000 for g in r["itl"]],
                                        e2e_ms=r["e2e"] * 1000, output_tokens=r["tokens"], prompt_tokens=r["prompt_tokens"])) + "\n")
    q = lambda xs, p: float(np.percentile(np.array(xs) * 1000, p))
    ttft = [r["ttft"] for r in out]
    itl = [g for r in out for g in r["itl"]]
    e2e = [r["e2e"] for r in out]
    pt = [r["prompt_tokens"] for r in out if r["prompt_tokens"]]
    print("loadgen %s %s concurrency=%d warmup_per_stream=%d completed=%d/%d prompt_tokens_mean=%.1f output_tokens=%d duration_s=%.3f "
          "request_rate=%.3f output_tps=%.2f ttft_ms p50=%.3f p90=%.3f p99=%.3f itl_ms p50=%.3f p90=%.3f p99=%.3f "
          "e2e_ms p50=%.3f p99=%.3f itl_n=%d" % (
              kind, model, conc, warmup_per_stream, len(out), nreq, float(np.mean(pt)) if pt else -1, toks, dur, len(out) / dur, toks / dur,
              q(ttft, 50), q(ttft, 90), q(ttft, 99), q(itl, 50), q(itl, 90), q(itl, 99), q(e2e, 50), q(e2e, 99), len(itl)))


asyncio.run(main())
