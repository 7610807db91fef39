"""lm-eval's ``LM`` over any edgebench runner: every lm-eval task on every runtime.

Importing this module registers the model ``edgebench`` with lm-eval; ``model_args`` name the
model and the runtime, e.g. ``model=gemma-3-270m,framework=llama-cpp,precision=q8_0,threads=2``.
lm-eval (0.4.x) has no plugin discovery for its own CLI, so run tasks through :func:`evaluate`,
``edgebench lm-eval``, or ``python -m edgebench.harness.lm_eval_adapter run --model edgebench
...`` (lm-eval's CLI with this module imported first).

Token IDs come from the model's own tokenizer (its source, as for the benchmark prompt); each
scored sequence starts with the model's BOS once, as llama.cpp does. Generation is greedy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from edgebench.errors import ConfigError, RunnerUnavailable

try:
    from lm_eval.api.model import LM
    from lm_eval.api.registry import register_model
except ImportError as e:  # becomes a one-line message with the install hint in the CLI
    raise RunnerUnavailable(f"lm-eval is not installed ({e})", extra="lm-eval") from e


class _Tokenizer:
    """The model's tokenizer from its source: a GGUF file (llama.cpp, vocabulary only) or a
    checkpoint folder (``tokenizer.json``). ``bos`` is what the tokenizer puts first ([] if
    nothing); ``prefix`` conditions the first token when there is no context (BOS, else EOS)."""

    def __init__(self, source: Path) -> None:
        if source.is_dir():
            from tokenizers import Tokenizer

            from edgebench.models.hf_config import read_hf_config

            tok = Tokenizer.from_file(str(source / "tokenizer.json"))
            self.encode = lambda text: tok.encode(text, add_special_tokens=False).ids
            self.decode = lambda ids: tok.decode(list(ids))
            self.bos = tok.encode("").ids
            eos = read_hf_config(source).get("eos_token_id")
            self.eos = eos[0] if isinstance(eos, list) else eos
        else:
            from edgebench.harness.prompt import quiet_stderr
            from edgebench.harness.runners.llama_cpp import _import

            with quiet_stderr():
                vocab = _import().Llama(model_path=str(source), vocab_only=True, verbose=False)
            self._vocab = vocab  # kept open: decode needs it
            self.encode = lambda text: vocab.tokenize(text.encode(), add_bos=False, special=False)
            self.decode = lambda ids: vocab.detokenize(list(ids)).decode(errors="replace")
            self.bos = vocab.tokenize(b"", add_bos=True, special=False)
            self.eos = vocab.token_eos()
        self.prefix = self.bos[0] if self.bos else self.eos


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def _artifact(model: str, framework: str, precision: str | None, cache: Path):
    """(artifact path, tokenizer source) as ``edgebench run`` would use them: the model's own
    artifact of that format and precision, else one prepared into the cache."""
    from edgebench import api
    from edgebench.harness import prepare as prep
    from edgebench.harness import registry
    from edgebench.models.registry import resolve_model

    fmt = registry.framework(framework).artifact_format
    resolved = resolve_model(model, cache)
    if precision is None:
        own = [a.precision for a in resolved.artifacts if a.format == fmt]
        if not own:
            raise ConfigError(f"model {resolved.name} has no {fmt} artifact of its own: "
                              f"give precision=... in model_args")
        precision = own[0]
    art = resolved.artifact(fmt, precision)
    if art is not None:
        path = art.path
    else:
        (manifest,) = api.prepare(model, [f"{fmt}:{precision}"], cache)
        path = prep.artifact_path(manifest, cache)
    return path, prep.source_of(resolved).path


@register_model("edgebench")
class EdgebenchLM(LM):
    """An lm-eval model backed by an edgebench runner.

    Args:
        model: registered model name or path (GGUF file, folder of them, or HF checkpoint).
        framework: edgebench runtime, e.g. ``llama-cpp``.
        precision: artifact precision (default: the model's own artifact for that runtime);
            prepared into the cache when absent, like ``edgebench run`` does.
        device: runtime device, e.g. ``cpu``.
        threads: CPU threads (default: all cores).
        max_length: longest scored sequence in tokens (rolling windows, truncation).
        max_gen_toks: default new tokens for ``generate_until`` when a task gives none.
        cache_dir: edgebench cache (default: ``$EDGEBENCH_CACHE``, else the user cache dir).
    """

    def __init__(self, model: str = "gemma-3-270m", framework: str = "llama-cpp",
                 precision: str | None = None, device: str = "cpu", threads: int | None = None,
                 max_length: int = 512, max_gen_toks: int = 256,
                 cache_dir: str | None = None) -> None:
        super().__init__()  # requests run one at a time: lm-eval's batch sizes do not apply
        from edgebench.harness.registry import load_runner
        from edgebench.locations import cache_dir as default_cache

        artifact, source = _artifact(str(model), framework, precision, default_cache(cache_dir))
        self.max_length, self.max_gen_toks = int(max_length), int(max_gen_toks)
        self.tok = _Tokenizer(source)
        self.runner = load_runner(framework)
        self.runner.load(artifact, device, int(threads or os.cpu_count() or 1), {},
                         context_tokens=self.max_length)

    @classmethod
    def create_from_arg_string(cls, arg_string: str, additional_config: dict | None = None):
        """From lm-eval's ``model_args`` (``key=value,...``); an unknown key is a ConfigError."""
        from lm_eval.utils import simple_parse_args_string

        return cls.create_from_arg_obj(simple_parse_args_string(arg_string), additional_config)

    @classmethod
    def create_from_arg_obj(cls, arg_dict: dict, additional_config: dict | None = None):
        """From ``model_args`` as a dict. lm-eval's own ``additional_config`` (batch size, and
        a device that defaults to ``cuda:0`` on its CLI) is ignored: the device is a model arg."""
        import inspect

        known = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        if unknown := sorted(set(arg_dict) - set(known)):
            raise ConfigError(f"unknown edgebench model_args {unknown}; known: {', '.join(known)}")
        return cls(**arg_dict)

    def score(self, context: list[int], continuation: list[int]) -> tuple[float, bool]:
        """Log-probability of ``continuation`` after ``context`` (token IDs) and whether every
        continuation token is the argmax; the sequence is cut from the left to fit."""
        ids = (context + continuation)[-(self.max_length + 1):]
        n = min(len(continuation), len(ids) - 1)
        if n <= 0:
            return 0.0, True
        logits = np.asarray(self.runner.logits(ids[:-1]))[-n:]
        target = np.asarray(ids[-n:])
        logp = _log_softmax(logits)[np.arange(n), target]
        return float(logp.sum()), bool((logits.argmax(axis=-1) == target).all())

    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        # trailing spaces belong to the continuation, and the pair is tokenized as a whole so
        # that token boundaries are those of the joined text (as lm-eval's HFLM does)
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        ctx = self.tok.encode(context)
        whole = self.tok.encode(context + continuation)
        head = self.tok.bos + ctx or [self.tok.prefix]
        return head, whole[len(ctx):]

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        out = []
        for req in requests:
            result = self.score(*self._encode_pair(*req.args))
            self.cache_hook.add_partial("loglikelihood", req.args, result)
            out.append(result)
        return out

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

        out = []
        for req in requests:
            (text,) = req.args
            windows = get_rolling_token_windows(
                token_list=self.tok.encode(text), prefix_token=self.tok.prefix,
                max_seq_len=self.max_length, context_len=1)
            total = sum(self.score(*make_disjoint_window(w))[0] for w in windows)
            self.cache_hook.add_partial("loglikelihood_rolling", (text,), total)
            out.append(total)
        return out

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        out = []
        for req in requests:
            context, kwargs = req.args
            kwargs = dict(kwargs or {})
            until = kwargs.get("until") or [self.tok.decode([self.tok.eos])]
            until = [until] if isinstance(until, str) else list(until)
            n_new = int(kwargs.get("max_gen_toks", self.max_gen_toks))
            ids = self.tok.bos + self.tok.encode(context)
            ids = ids[-max(self.max_length - n_new, 1):]
            new = list(self.runner.generate(ids, n_new).token_ids)
            if self.tok.eos in new:  # the runner always makes n_new tokens; EOS ends the text
                new = new[:new.index(self.tok.eos)]
            text = self.tok.decode(new)
            for stop in until:
                if stop:
                    text = text.split(stop)[0]
            self.cache_hook.add_partial("generate_until", req.args, text)
            out.append(text)
        return out

    def close(self) -> None:
        """Release the model and the tokenizer (lm-eval itself never closes a model)."""
        self.runner.close()
        if hasattr(self.tok, "_vocab"):
            self.tok._vocab.close()


def evaluate(model_args: str, tasks: list[str], include_path: str | None = None,
             limit: int | None = None, **kwargs: Any) -> dict:
    """Run lm-eval ``tasks`` on ``--model edgebench`` with ``model_args``; lm-eval's results.

    ``include_path`` adds a folder of task YAML files; ``limit`` caps documents per task;
    other keywords go to ``lm_eval.simple_evaluate`` (e.g. ``num_fewshot``).
    """
    import lm_eval
    from lm_eval.tasks import TaskManager

    tasks = list(tasks)
    # indexing lm-eval's thousands of built-in YAML files takes 10-20 s: skip it when the
    # include path holds every task asked for
    manager = TaskManager(include_path=include_path, include_defaults=False) \
        if include_path else None
    if manager is None or _missing(manager, tasks):
        manager = TaskManager(include_path=include_path)
    if missing := _missing(manager, tasks):
        from edgebench.harness.registry import suggest

        raise ConfigError("unknown lm-eval task(s) " + ", ".join(
            f"{t!r}{suggest(t, manager.all_tasks)}" for t in missing))
    kwargs.setdefault("bootstrap_iters", 1000)
    lm = EdgebenchLM.create_from_arg_string(model_args)
    try:  # built here rather than by name, so that it is closed when the tasks are done
        return lm_eval.simple_evaluate(model=lm, model_args=model_args, tasks=tasks,
                                       limit=limit, task_manager=manager, **kwargs)
    finally:
        lm.close()


def _missing(manager, tasks: list[str]) -> list[str]:
    return [t for t in tasks if not manager.match_tasks([t])]


def results_frame(results: dict):
    """One row per task and metric of :func:`evaluate`'s results: value and standard error."""
    import pandas as pd

    rows = []
    for task, metrics in results["results"].items():
        n = results.get("n-samples", {}).get(task, {}).get("effective")
        for key, value in metrics.items():
            name, sep, filt = key.partition(",")
            if not sep or name.endswith("_stderr") or not isinstance(value, (int, float)):
                continue  # "alias", "name", "sample_len": not metrics
            stderr = metrics.get(f"{name}_stderr,{filt}")
            rows.append({"task": task, "metric": name, "filter": filt, "value": float(value),
                         "stderr": float(stderr) if isinstance(stderr, (int, float)) else None,
                         "samples": n})
    return pd.DataFrame(rows)


if __name__ == "__main__":  # lm-eval's own CLI, with the model registered
    from lm_eval.__main__ import cli_evaluate

    cli_evaluate()
