"""A bare llama-cpp-python greedy loop: the baseline edgebench's overhead is measured against.

Prints one JSON line: per-repetition decode tok/s and TTFT ms with the same definitions as
METRICS.md (decode = (N-1)/(tN-t1), TTFT = t1-t0), and nothing of edgebench's.
"""

import json
import statistics
import sys
import time

import llama_cpp

path, ids_file, n_new, threads, reps, warmup = sys.argv[1:7]
n_new, threads, reps, warmup = int(n_new), int(threads), int(reps), int(warmup)
ids = json.load(open(ids_file))
llm = llama_cpp.Llama(model_path=path, n_ctx=512, n_batch=512, n_threads=threads,
                      n_threads_batch=threads, n_gpu_layers=0, seed=0, verbose=False)
decode, ttft = [], []
for rep in range(warmup + reps):
    llm.reset()
    stamps = []
    gen = llm.generate(ids, temp=0.0, top_k=1, repeat_penalty=1.0)
    t0 = time.perf_counter_ns()
    for _tok in gen:
        stamps.append(time.perf_counter_ns())
        if len(stamps) >= n_new:
            break
    gen.close()
    if rep >= warmup:
        decode.append((n_new - 1) * 1e9 / (stamps[-1] - stamps[0]))
        ttft.append((stamps[0] - t0) / 1e6)
print(json.dumps({"decode_tok_s": statistics.median(decode), "ttft_ms": statistics.median(ttft)}))
