"""Each runtime's own bare greedy loop: the baselines edgebench's overhead is measured against.

    python bare_loops.py FRAMEWORK ARTIFACT IDS_JSON NEW_TOKENS THREADS REPETITIONS WARMUP

Prints one JSON line: the median decode tok/s and TTFT ms over the repetitions, with the
definitions of METRICS.md (decode = (N-1)/(tN-t1), TTFT = t1-t0), and nothing of edgebench's:
only the runtime's package, ``time`` and ``json``.
"""

import json
import statistics
import sys
import time

clock = time.perf_counter_ns


def llama_cpp(path, ids, n_new, threads):
    import llama_cpp

    llm = llama_cpp.Llama(model_path=path, n_ctx=512, n_batch=512, n_threads=threads,
                          n_threads_batch=threads, n_gpu_layers=0, seed=0, verbose=False)

    def once():
        llm.reset()
        stamps = []
        gen = llm.generate(ids, temp=0.0, top_k=1, repeat_penalty=1.0)
        t0 = clock()
        for _tok in gen:
            stamps.append(clock())
            if len(stamps) >= n_new:
                break
        gen.close()
        return t0, stamps
    return once


def ort_genai(path, ids, n_new, threads):
    import onnxruntime_genai as og

    config = og.Config(path)
    config.clear_providers()
    config.overlay(json.dumps({"model": {"decoder": {"session_options": {
        "intra_op_num_threads": threads}}}}))
    model = og.Model(config)

    def once():
        params = og.GeneratorParams(model)
        total = len(ids) + n_new
        params.set_search_options(do_sample=False, max_length=max(total, 512), min_length=total)
        gen = og.Generator(model, params)
        stamps = []
        t0 = clock()
        gen.append_tokens(ids)
        while len(stamps) < n_new:
            gen.generate_next_token()
            gen.get_next_tokens()
            stamps.append(clock())
        return t0, stamps
    return once


def openvino(path, ids, n_new, threads):
    import numpy as np
    import openvino as ov
    import openvino_genai as ovg

    # GenAI's own latency-oriented scheduler (no prefill chunking), prefix caching off as
    # edgebench runs it: else repetitions reuse the prompt's KV cache
    scheduler = ovg.SchedulerConfig()
    scheduler.max_num_batched_tokens = 2**64 - 1
    scheduler.enable_prefix_caching = False
    pipe = ovg.LLMPipeline(path, "CPU", INFERENCE_NUM_THREADS=threads, scheduler_config=scheduler)
    cfg = ovg.GenerationConfig()
    cfg.max_new_tokens, cfg.do_sample, cfg.ignore_eos = n_new, False, True
    inputs = ov.Tensor(np.array([ids], dtype=np.int64))

    def once():
        stamps = []

        class Stamp(ovg.StreamerBase):
            def write(self, token):
                stamps.append(clock())
                return ovg.StreamingStatus.RUNNING

            def end(self):
                pass

        t0 = clock()
        pipe.generate(inputs, cfg, Stamp())
        return t0, stamps
    return once


def mlx(path, ids, n_new, threads):
    import mlx.core as mx
    import mlx_lm
    from mlx_lm.generate import generate_step
    from mlx_lm.sample_utils import make_sampler

    mx.set_default_device(mx.cpu)
    stream = mx.new_thread_local_stream(mx.cpu)
    model, _ = mlx_lm.load(path)
    # as edgebench does on the CPU for a quantized model (see its mlx runner): quantization
    # scales/biases and norm weights in float32, weight matrices as stored
    for _, module in model.named_modules():
        if "scales" in module:
            keys = ("scales", "biases")
        elif type(module).__name__.endswith("Norm"):
            keys = ("weight", "bias")
        else:
            continue
        for k in keys:
            v = module.get(k)
            if isinstance(v, mx.array) and mx.issubdtype(v.dtype, mx.floating):
                setattr(module, k, v.astype(mx.float32))
    mx.eval(model.parameters())
    sampler = make_sampler(temp=0.0)
    prompt = mx.array(ids)

    def once():
        stamps = []
        t0 = clock()
        for _tok, _ in generate_step(prompt, model, max_tokens=n_new, sampler=sampler,
                                     stream=stream):
            stamps.append(clock())
        mx.synchronize(stream)  # the queued step past the last token, outside the clock
        return t0, stamps
    return once


LOOPS = {"llama-cpp": llama_cpp, "ort-genai": ort_genai, "openvino": openvino, "mlx": mlx}

if __name__ == "__main__":
    fw, path, ids_file, n_new, threads, reps, warmup = sys.argv[1:8]
    n_new, threads, reps, warmup = int(n_new), int(threads), int(reps), int(warmup)
    once = LOOPS[fw](path, json.load(open(ids_file)), n_new, threads)
    decode, ttft = [], []
    for rep in range(warmup + reps):
        t0, stamps = once()
        if rep >= warmup:
            decode.append((n_new - 1) * 1e9 / (stamps[-1] - stamps[0]))
            ttft.append((stamps[0] - t0) / 1e6)
    print(json.dumps({"decode_tok_s": statistics.median(decode),
                      "ttft_ms": statistics.median(ttft)}))
