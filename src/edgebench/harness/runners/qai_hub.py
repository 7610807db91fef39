"""Qualcomm AI Hub (``qai-hub``): compile, optionally quantize, and profile edgebench's QNN
artifact on a real Snapdragon device in Qualcomm's cloud, through the ``qai_hub`` client.

AI Hub is remote: this runner has no local model and no token timeline. It implements the
harness's :class:`~edgebench.harness.runner.RemoteProfile` hook: submit the jobs, wait with
progress, download the profile, and map it (``harness.qai_hub_profile``) into the row's columns,
``measurement = "estimated"``. ``load``/``generate``/``logits`` raise ``RunFailed``.

What is submitted: the static-shape QDQ ONNX model of ``edgebench prepare MODEL --target
qnn:<precision>`` (``model.onnx`` + ``model.onnx.data``, staged as an ONNX model folder),
compiled for ``target_runtime`` (``qnn_context_binary`` by default, or
``precompiled_qnn_onnx``). Suite option ``quantize`` (``w8a8``, ``w8a16``, ``w4a16``, ``w4a8``)
lets AI Hub quantize the ``fp32`` artifact first, calibrated on chunks of edgebench's corpus.

Device: ``--device snapdragon`` profiles on :data:`DEFAULT_DEVICE`; suite option ``hub_device``
names any device AI Hub offers (``qai-hub list-devices``) or a chipset attribute
(``chipset:qualcomm-snapdragon-8-elite``). The token is the client's own configuration:
``qai-hub configure --api_token TOKEN`` writes ``~/.qai_hub/client.ini``
(``QAIHUB_CLIENT_INI`` names another file). Without one, or without network, rows are
``unavailable`` with that hint, never a number.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError, DeviceUnavailable, RunFailed, RunnerUnavailable
from edgebench.harness import qai_hub_profile as mapping
from edgebench.harness.runner import LoadInfo, RunnerInfo, TokenTimeline

EXTRA = "qai-hub"
#: What ``--device snapdragon`` profiles on (its chipset: Snapdragon 8 Elite).
DEFAULT_DEVICE = "Samsung Galaxy S25 (Family)"
DEVICES = {"snapdragon": DEFAULT_DEVICE}
TARGET_RUNTIMES = ("qnn_context_binary", "precompiled_qnn_onnx")
#: AI Hub quantize options: (weights, activations) as ``qai_hub.QuantizeDtype`` names.
QUANTIZE = {"w8a8": ("INT8", "INT8"), "w8a16": ("INT8", "INT16"), "w4a16": ("INT4", "INT16"),
            "w4a8": ("INT4", "INT8")}
#: What AI Hub compiles (``qai_hub.client._determine_model_type``).
HUB_FORMATS = ("ONNX (.onnx, or a folder of one .onnx + one .data)", "TorchScript (.pt)",
               "torch.export (.pt2)", "TFLite (.tflite)", "QNN context binary (.bin)",
               "QNN DLC (.dlc)", "AIMET ONNX (.aimet)")
CALIBRATION_SAMPLES = 8
MAX_CALIBRATION_SAMPLES = 10_000
#: Options whose value is text passed on (a device name, a version, client options).
TEXT_OPTIONS = ("hub_device", "qairt_version", "compile_options", "profile_options")
TOKEN_HINT = ("no Qualcomm AI Hub API token is configured: get one at "
              "https://aihub.qualcomm.com (Account -> Settings) and run "
              "`qai-hub configure --api_token YOUR_TOKEN` (writes ~/.qai_hub/client.ini; "
              "QAIHUB_CLIENT_INI names another file)")


def _client_module():
    try:
        import qai_hub
    except ImportError as e:
        raise RunnerUnavailable(f"qai-hub is not installed ({e})", extra=EXTRA) from None
    return qai_hub


def _config_or_raise(hub) -> Any:
    """The client's configuration (token), read without network.

    Raises:
        RunnerUnavailable: no configuration file, or one without a token (with the hint).
    """
    from qai_hub import api_utils

    path = api_utils.get_config_path()
    try:
        config = api_utils.load_default_api_config()
    except FileNotFoundError:
        raise RunnerUnavailable(f"{TOKEN_HINT}; {path} does not exist") from None
    except Exception as e:  # noqa: BLE001 - the client's APIException for missing fields
        raise RunnerUnavailable(f"{TOKEN_HINT}; {path}: {e}") from None
    if not getattr(config, "api_token", ""):
        raise RunnerUnavailable(f"{TOKEN_HINT}; {path} has an empty api_token")
    return config


def hub_device(name: str, options: dict[str, Any]):
    """The ``qai_hub.Device`` for the device axis and the ``hub_device`` option."""
    hub = _client_module()
    asked = options.get("hub_device") or DEVICES.get(name, name)
    if str(asked).startswith("chipset:"):
        return hub.Device(attributes=str(asked))
    return hub.Device(str(asked))


def check_device(client, device) -> Any:
    """The device AI Hub selects for ``device``.

    Raises:
        DeviceUnavailable: AI Hub has no such device (the message lists those it offers).
    """
    found = client.get_devices(device.name, device.os, device.attributes)
    if found:
        return found[-1]
    offered = sorted({d.name for d in client.get_devices()})
    asked = device.name or device.attributes
    raise DeviceUnavailable(f"Qualcomm AI Hub has no device {asked!r}; it offers: "
                            f"{', '.join(offered) or 'none'}")


def sequence_length(artifact: Path) -> int | None:
    """The static sequence length N of a qnn artifact (its ``qnn.json``), None if unknown."""
    import json

    facts = Path(artifact) / "qnn.json"
    try:
        return int(json.loads(facts.read_text())["n_ctx"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def stage_onnx(artifact: Path, into: Path) -> Path:
    """A folder holding only the artifact's ``.onnx`` and its ``.data`` (what AI Hub takes as an
    ONNX model folder; the artifact's tokenizer and manifest are left out).

    Raises:
        ConfigError: not an ONNX artifact (the message says which formats AI Hub compiles).
    """
    artifact = Path(artifact)
    if artifact.is_file() and artifact.suffix in (".onnx", ".bin", ".dlc", ".pt", ".pt2",
                                                  ".tflite"):
        return artifact
    onnx = sorted(artifact.glob("*.onnx")) if artifact.is_dir() else []
    if len(onnx) != 1:
        raise ConfigError(f"{artifact} is not a model AI Hub can compile: it takes "
                          f"{'; '.join(HUB_FORMATS)} (prepare one with `edgebench prepare "
                          "MODEL --target qnn:w8a16`)")
    dst = into / "model"
    dst.mkdir()
    for f in [onnx[0], *sorted(artifact.glob(onnx[0].name + ".data"))]:
        try:
            (dst / f.name).hardlink_to(f)
        except OSError:
            shutil.copy2(f, dst / f.name)
    return dst


def check_options(options: dict[str, Any], precision: str) -> dict[str, Any]:
    """The run's suite options checked without the client or a token: ``target_runtime`` one
    of :data:`TARGET_RUNTIMES`, ``quantize`` one of :data:`QUANTIZE` on the fp32 artifact only,
    ``calibration_samples`` a positive integer, the others text. Returns the options.

    Raises:
        ConfigError: a bad value (the option named): a suite's mistake, never AI Hub's.
    """
    opts = dict(options)
    runtime = opts.get("target_runtime", TARGET_RUNTIMES[0])
    if runtime not in TARGET_RUNTIMES:
        raise ConfigError(f"qai-hub option target_runtime {runtime!r}: one of "
                          f"{', '.join(TARGET_RUNTIMES)}")
    quantize = opts.get("quantize")
    if quantize is not None and (quantize not in QUANTIZE or precision != "fp32"):
        raise ConfigError(f"qai-hub option quantize {quantize!r}: one of "
                          f"{', '.join(QUANTIZE)}, on the fp32 artifact only "
                          f"(this run's precision is {precision})")
    count = opts.get("calibration_samples")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)
                              or not 0 < count <= MAX_CALIBRATION_SAMPLES):
        raise ConfigError(f"qai-hub option calibration_samples {count!r:.40}: a positive "
                          f"integer of at most {MAX_CALIBRATION_SAMPLES:,}")
    for name in TEXT_OPTIONS:
        value = opts.get(name)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"qai-hub option {name} {value!r:.40}: expected text")
    return opts


class QaiHubRunner:
    """Qualcomm AI Hub: remote compile + profile of a QNN artifact (a RemoteProfile runner)."""

    LOGITS_METHOD = "none: Qualcomm AI Hub profiles graphs; logits are not returned here"
    REMOTE = ("qai-hub profiles graphs on Qualcomm AI Hub: it has no local model to load, "
              "generate with or score (the harness calls its profile())")

    def load(self, artifact: Path, device: str, threads: int, options: dict[str, Any],
             context_tokens: int, logits_only: bool = False) -> LoadInfo:
        raise RunFailed(self.REMOTE)

    def tokenize(self, text: str) -> list[int]:
        raise RunFailed(self.REMOTE)

    def generate(self, prompt_ids: list[int], max_new_tokens: int,
                 prefix_ids: Any = ()) -> TokenTimeline:
        raise RunFailed(self.REMOTE)

    def logits(self, token_ids: list[int]) -> Any:
        raise RunFailed(self.REMOTE)

    def close(self) -> None:
        pass

    def probe(self) -> RunnerInfo:
        hub = _client_module()
        _config_or_raise(hub)
        return RunnerInfo(framework="qai-hub", version=hub.__version__,
                          devices=tuple(DEVICES),
                          details={"note": f"remote: snapdragon -> {DEFAULT_DEVICE}"})

    def profile(self, run: Any) -> dict[str, Any]:
        """Compile (and quantize) ``run``'s artifact on AI Hub, profile it on the device and
        return the row's columns (``qai_hub_profile.columns``).

        Raises:
            RunnerUnavailable: no token, or AI Hub cannot be reached.
            DeviceUnavailable: AI Hub has no such device.
            ConfigError: an artifact AI Hub cannot compile, or a bad option.
        """
        opts = check_options(run.options, run.precision)  # a suite's mistake, token or not
        hub = _client_module()
        _config_or_raise(hub)
        n = sequence_length(run.artifact.path)
        if n is not None and run.prompt_tokens != n:
            raise ConfigError(f"the qnn artifact is a static graph of N = {n} tokens: its "
                              f"latency is the TTFT of an {n}-token prompt, so a qai-hub run "
                              f"needs --prompt-tokens {n} (this one asks {run.prompt_tokens})")
        runtime = opts.get("target_runtime", TARGET_RUNTIMES[0])
        quantize = opts.get("quantize")
        qairt = opts.get("qairt_version")
        compile_opts = " ".join(x for x in (f"--target_runtime {runtime}",
                                            f"--qairt_version {qairt}" if qairt else "",
                                            opts.get("compile_options", "")) if x)
        profile_opts = " ".join(x for x in (f"--qairt_version {qairt}" if qairt else "",
                                            opts.get("profile_options", "")) if x)
        settings = {"target_runtime": runtime, "compile_options": compile_opts,
                    "profile_options": profile_opts, "quantize": quantize,
                    "hub_device": opts.get("hub_device") or DEVICES.get(run.device, run.device)}
        try:
            return self._submit(hub, run, settings, opts)
        except (ConfigError, RunnerUnavailable, RunFailed):
            raise
        except Exception as e:  # noqa: BLE001 - the client's own errors, named
            if _is_network(e):
                defaults = ", ".join(f"{k} -> {v}" for k, v in DEVICES.items())
                raise RunnerUnavailable(f"Qualcomm AI Hub cannot be reached ({_one_line(e)}); "
                                        f"devices configured here: {defaults}") from None
            if "authentication" in str(e).lower():
                raise RunnerUnavailable(f"Qualcomm AI Hub refused the token ({_one_line(e)}): "
                                        f"{TOKEN_HINT}") from None
            raise RunFailed(f"Qualcomm AI Hub: {type(e).__name__}: {_one_line(e)}") from None

    def _submit(self, hub, run, settings: dict, opts: dict) -> dict[str, Any]:
        client = hub.Client()
        asked = hub_device(run.device, opts)
        device = check_device(client, asked)
        jobs: list[Any] = []
        facts = dict(device_name=device.name, device_os=device.os,
                     chipset=next((a for a in device.attributes if a.startswith("chipset:")),
                                  None),
                     qairt_version=opts.get("qairt_version") or _default_qairt(client),
                     client_version=hub.__version__, settings=settings)
        with tempfile.TemporaryDirectory(prefix="edgebench-aihub-") as tmp:
            model: Any = stage_onnx(run.artifact.path, Path(tmp))
            if settings["quantize"]:
                w, a = QUANTIZE[settings["quantize"]]
                job = client.submit_quantize_job(
                    str(model), _calibration(run.artifact.path, opts),
                    weights_dtype=getattr(hub.QuantizeDtype, w),
                    activations_dtype=getattr(hub.QuantizeDtype, a),
                    name=f"edgebench {run.model} quantize {settings['quantize']}")
                jobs.append(job)
                failed = _wait(job, jobs, facts)
                if failed:
                    return failed
                model = job.get_target_model()
            job = client.submit_compile_job(
                model if not isinstance(model, Path) else str(model), device=asked,
                name=f"edgebench {run.model} {run.precision}",
                options=settings["compile_options"])
            jobs.append(job)
        failed = _wait(job, jobs, facts)
        if failed:
            return failed
        job = client.submit_inference_job(job.get_target_model(), device=asked, profile=True,
                                          name=f"edgebench {run.model} {run.precision}",
                                          options=settings["profile_options"])
        jobs.append(job)
        failed = _wait(job, jobs, facts)
        if failed:
            return failed
        profile = job.download_profile()
        ran = getattr(client.get_job(job.job_id), "device", None)  # the device AI Hub picked
        if ran is not None and ran.name:
            facts.update(device_name=ran.name, device_os=ran.os or facts["device_os"])
        try:
            return mapping.columns({"graph": profile}, _facts(jobs, facts), run.prompt_tokens)
        except ConfigError as e:  # the service's profile, not the suite: the run failed
            raise RunFailed(f"{mapping.SERVICE} returned a profile edgebench cannot use "
                            f"(job {job.job_id}): {e}") from None


def _facts(jobs: list, facts: dict, failure: str | None = None) -> mapping.JobFacts:
    return mapping.JobFacts(job_ids=tuple(j.job_id for j in jobs), failure=failure, **facts)


def _wait(job, jobs: list, facts: dict) -> dict[str, Any] | None:
    """Wait for ``job`` with progress on stderr; the failure row's columns if it failed."""
    print(f"Qualcomm AI Hub {job.job_type} job {job.job_id}: {job.url}", file=sys.stderr)
    status = job.wait()
    if status.success:
        return None
    return mapping.columns({}, _facts(jobs, facts, f"{job.job_type} job {job.job_id}: "
                                                   f"{status.message or status.code}"))


def _default_qairt(client) -> str | None:
    """The QAIRT version AI Hub uses by default (its framework tagged ``default``)."""
    try:
        for fw in client.get_frameworks():
            if fw.name.upper() == "QAIRT" and "default" in fw.api_tags:
                return fw.full_version or fw.api_version
    except Exception:  # noqa: BLE001 - the version is a label, never a reason to fail
        return None
    return None


def _calibration(artifact: Path, opts: dict) -> dict[str, list]:
    """Calibration inputs for an AI Hub quantize job: chunks of edgebench's corpus, tokenized
    with the artifact's own tokenizer, at the artifact's static length."""
    import json

    import numpy as np

    from edgebench.harness.prepare import qnn as recipe

    facts = json.loads((Path(artifact) / recipe.FACTS).read_text())
    n = int(facts["n_ctx"])
    count = int(opts.get("calibration_samples", CALIBRATION_SAMPLES))
    chunks = recipe.calibration_chunks(Path(artifact), n, count)
    return {"input_ids": [np.asarray([c], dtype=np.int32) for c in chunks]}


def _is_network(e: BaseException) -> bool:
    """Whether ``e`` (or the error the client raised it from) is a connection failure."""
    try:
        import requests
    except ImportError:
        return False
    seen = 0
    while e is not None and seen < 8:
        if isinstance(e, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
            return True
        e, seen = e.__cause__ or e.__context__, seen + 1
    return False


def _one_line(e: BaseException) -> str:
    """The client's message without its box-drawing frame, on one line."""
    text = " ".join(str(e).replace("|", " ").replace("│", " ").split())
    return "".join(c for c in text if c not in "┌┐└┘─")
