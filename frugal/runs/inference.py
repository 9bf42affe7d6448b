"""The inference cost of a trained model: what serving it costs, measured after the test.

`measure_inference(module, datamodule, energy_meter, cfg)` runs the tested model (eval mode,
`torch.inference_mode`) on test-set inputs and returns `result.json`'s `inference` section:

- **energy per 1,000 predictions** at the serving batch (`inference.serving_batch`): joules the
  run's own energy meter counted over a window of serving batches ÷ predictions × 1000. The
  meter is the one that metered training, still running. A polled meter (codecarbon, NVML
  power) answers between its samples by extrapolating the last interval's power, so the window
  lasts at least two polling intervals and is preceded by one interval of the same load (the
  lead-in): the power it extrapolates with is then the serving load's, and at least one real
  sample falls inside the window. A per-step counter (RAPL, NVML energy) needs no lead-in;
  its window lasts `COUNTER_WINDOW_S`. No meter, or a meter that cannot say: null, never 0
  (with no meter the window only times throughput: `NO_METER_WINDOW_S`).
- **latency at batch 1**: p50 and p95 over `inference.latency_samples` single-sample forwards,
  after `inference.warmup` untimed ones (on a GPU, synchronised around each call).
- **throughput** at the serving batch: predictions ÷ seconds of the energy window.

What is timed is the model's forward pass only: inputs are loaded into memory (on the model's
device) before any clock starts, as a server would hold a request batch; data loading, the
loss and the metrics are not part of serving. The figures are for this machine and its thread
count (`threads`), on the device the model trained on.

With `inference.quantize=dynamic_int8` torch's dynamic int8 quantisation of the `nn.Linear`
layers (weights int8, activations quantised on the fly; CPU only) is measured the same way on
a copy of the model and recorded under `inference.int8`, with its own test accuracy: a
quantised model is a different model, and its saving means something only beside its accuracy.

The default cost is small: on the default job (MNIST-1D, 1,000 test samples, codecarbon polled
every 1 s) about 3 s of serving (1 s lead-in + 2 s window) and a fraction of a second of
latency samples. `inference.enabled=false` turns the measurement off (`inference: null`).
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn

from frugal.meters.base import EnergyMeter

log = logging.getLogger("frugal")

QUANTIZE_MODES = ("dynamic_int8",)
COUNTER_WINDOW_S = 0.5  # energy window for a per-step counter
NO_METER_WINDOW_S = 0.2  # no meter: the window times throughput only
POLLED_WINDOW_INTERVALS = 2  # a polled meter: the window lasts this many polling intervals
MIN_WINDOW_BATCHES = 2  # however fast the model: at least this many batches in the window
MAX_TEST_SAMPLES = 65_536  # test inputs held in memory for the measurement, at most


@dataclass(frozen=True)
class InferenceSettings:
    """The `inference:` node of the config (conf/train.yaml); see the schema for the ranges."""

    enabled: bool = True
    serving_batch: int = 256
    latency_samples: int = 200
    warmup: int = 5
    window_s: float | None = None  # null: 2 polling intervals of a polled meter, else 0.5 s
    quantize: str | None = None  # null | dynamic_int8

    @classmethod
    def from_config(cls, cfg: Any) -> InferenceSettings:
        """From the whole run config: its `inference` node; `inference: null` is off; no
        node at all (a config saved before the node existed) gives the defaults."""
        if cfg is None or "inference" not in cfg:
            return cls()
        node = cfg["inference"]
        if node is None:
            return cls(enabled=False)
        if not isinstance(node, Mapping):  # a DictConfig is a Mapping too
            raise TypeError(f"inference: expected a group of keys, got {node!r}")
        known = {f.name for f in fields(cls)}
        return cls(**{k: node[k] for k in node if k in known})


def measure_inference(
    module: nn.Module,
    datamodule: Any,
    energy_meter: EnergyMeter | None,
    cfg: Any,
    *,
    device: torch.device | str | None = None,
    should_stop: Callable[[], bool] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any] | None:
    """Measure the inference cost of `module` (a FrugalModule: its `backbone` is served; any
    other module: itself) on `datamodule`'s test set. Returns the `inference` section, or None
    when `inference.enabled` is false, there are no test inputs, or `should_stop()` turned true
    (a stop signal: the run ends without waiting for a measurement).

    `device`: where to serve (default: where the model's parameters are); the model is moved
    there for the measurement and back after. `clock`: seconds, for timing (tests).
    """
    settings = InferenceSettings.from_config(cfg)
    if not settings.enabled:
        return None
    model = getattr(module, "backbone", module)
    home = _device_of(model)
    device = torch.device(device) if device is not None else home
    inputs = load_test_inputs(datamodule, settings, device)
    if inputs is None:
        log.warning("inference: no test inputs; not measured")
        return None
    stop = should_stop or (lambda: False)
    was_training = model.training
    model.to(device).eval()
    try:
        record = _measure(model, inputs, energy_meter, settings, device, stop, clock)
        if record is not None and settings.quantize == "dynamic_int8":
            record["int8"] = _measure_int8(model, datamodule, energy_meter, settings, stop, clock)
    finally:
        model.train(was_training)
        model.to(home)
    return record


def load_test_inputs(
    datamodule: Any, settings: InferenceSettings, device: torch.device
) -> Tensor | None:
    """The test set's inputs in order, on `device`: enough for a serving batch and the latency
    samples, the whole test set when it is small (at most `MAX_TEST_SAMPLES`)."""
    limit = max(settings.serving_batch, settings.latency_samples, MAX_TEST_SAMPLES)
    chunks, held = [], 0
    for x, _ in _test_batches(datamodule):
        chunks.append(x)
        held += len(x)
        if held >= limit:
            break
    if not held:
        return None
    return torch.cat(chunks)[:limit].to(device)


def percentile(values: list[float], q: float) -> float:
    """The `q`-th percentile (0–100), linear between order statistics (numpy's default)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# ---- the measurement ---------------------------------------------------------------------------


def _measure(
    model: nn.Module,
    inputs: Tensor,
    meter: EnergyMeter | None,
    settings: InferenceSettings,
    device: torch.device,
    stop: Callable[[], bool],
    clock: Callable[[], float],
) -> dict[str, Any] | None:
    sync = _synchronizer(device)
    with torch.inference_mode():
        latencies = _latencies(model, inputs, settings, sync, stop, clock)
        if latencies is None:
            return None
        served = _serve(model, inputs, meter, settings, sync, stop, clock)
    if served is None:
        return None
    predictions, seconds, energy_j, note = served
    record: dict[str, Any] = {
        "energy_j_per_1k": None if energy_j is None else energy_j / predictions * 1000,
        "latency_ms_p50": 1000 * percentile(latencies, 50),
        "latency_ms_p95": 1000 * percentile(latencies, 95),
        "throughput_per_s": predictions / seconds if seconds > 0 else None,
        "serving_batch": settings.serving_batch,
        "predictions": predictions,
        "window_s": seconds,
        "energy_j": energy_j,
        "latency_samples": len(latencies),
        **_meter_fields(meter, energy_j),
        "device": _device_name(device),
        "threads": torch.get_num_threads() if device.type == "cpu" else None,
        "test_samples": len(inputs),
    }
    if note:
        record["note"] = note
    return record


def _latencies(
    model: nn.Module,
    inputs: Tensor,
    settings: InferenceSettings,
    sync: Callable[[], None],
    stop: Callable[[], bool],
    clock: Callable[[], float],
) -> list[float] | None:
    """Seconds of each batch-1 forward, after `settings.warmup` untimed ones."""
    for i in range(settings.warmup):
        model(inputs[i % len(inputs)].unsqueeze(0))
    latencies = []
    for i in range(settings.latency_samples):
        if stop():
            return None
        x = inputs[i % len(inputs)].unsqueeze(0)
        sync()
        began = clock()
        model(x)
        sync()
        latencies.append(clock() - began)
    return latencies


def _serve(
    model: nn.Module,
    inputs: Tensor,
    meter: EnergyMeter | None,
    settings: InferenceSettings,
    sync: Callable[[], None],
    stop: Callable[[], bool],
    clock: Callable[[], float],
) -> tuple[int, float, float | None, str | None] | None:
    """Serving batches over the energy window: (predictions, seconds, joules or None, note)."""
    batches = _serving_batches(inputs, settings.serving_batch)
    poll_s = meter.poll_interval_s if meter is not None else None
    window_s = settings.window_s
    if window_s is None and meter is None:
        window_s = NO_METER_WINDOW_S
    elif window_s is None:
        window_s = POLLED_WINDOW_INTERVALS * poll_s if poll_s else COUNTER_WINDOW_S
    # Warm-up, and for a polled meter a lead-in of one polling interval at the serving load.
    lead_in_s = poll_s or 0.0
    began = clock()
    for n in itertools.count():
        if stop():
            return None
        model(next(batches))
        sync()
        if n >= 1 and clock() - began >= lead_in_s:
            break
    start_j = _read(meter)
    began = clock()
    predictions, n = 0, 0
    while n < MIN_WINDOW_BATCHES or clock() - began < window_s:
        if stop():
            return None
        batch = next(batches)
        model(batch)
        predictions += len(batch)
        n += 1
        sync()
    seconds = clock() - began
    end_j = _read(meter)
    note = None
    energy_j = None if start_j is None or end_j is None else end_j - start_j
    if energy_j is not None and energy_j <= 0:
        # Work was done: a meter that counted nothing did not see it (an estimate with no
        # power sample yet, a counter too coarse). Unknown, never 0.
        note = f"the meter counted {energy_j:g} J over {seconds:.2f} s of serving: unknown"
        energy_j = None
    return predictions, seconds, energy_j, note


def _serving_batches(inputs: Tensor, batch: int) -> Iterator[Tensor]:
    """Full batches of `batch` test inputs, cycling through the test set; a test set smaller
    than one batch is repeated to fill it (the serving batch is what is measured)."""
    if len(inputs) < batch:
        inputs = inputs.repeat(math.ceil(batch / len(inputs)), *([1] * (inputs.dim() - 1)))
    starts = range(0, len(inputs) - batch + 1, batch)
    chunks = [inputs[s : s + batch] for s in starts]
    while True:
        yield from chunks


def _measure_int8(
    model: nn.Module,
    datamodule: Any,
    meter: EnergyMeter | None,
    settings: InferenceSettings,
    stop: Callable[[], bool],
    clock: Callable[[], float],
) -> dict[str, Any] | None:
    """The same measurement on a dynamically int8-quantised copy (Linear layers, CPU)."""
    cpu = torch.device("cpu")
    linears = sum(isinstance(m, nn.Linear) for m in model.modules())
    if not linears:
        return {"note": "no nn.Linear layer to quantise: not measured"}
    from torch.ao.quantization import quantize_dynamic

    copied = copy.deepcopy(model).to(cpu).eval()
    with warnings.catch_warnings():
        # torch deprecates its eager quantisation for torchao's; it still works, and this is
        # the quantisation torch itself ships (README, "Inference cost").
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*", category=UserWarning)
        quantized = quantize_dynamic(copied, {nn.Linear}, dtype=torch.qint8)
    inputs = load_test_inputs(datamodule, settings, cpu)
    assert inputs is not None  # the fp32 measurement had some
    record = _measure(quantized, inputs, meter, settings, cpu, stop, clock)
    if record is None:
        return None
    record["quantized_layers"] = linears
    record["test_acc"] = _accuracy(quantized, datamodule, cpu)
    return record


def _accuracy(model: nn.Module, datamodule: Any, device: torch.device) -> float | None:
    correct = total = 0
    with torch.inference_mode():
        for x, y in _test_batches(datamodule):
            predicted = model(x.to(device)).argmax(1)
            correct += int((predicted == y.to(device)).sum())
            total += len(y)
    return correct / total if total else None


# ---- helpers -----------------------------------------------------------------------------------


def _test_batches(datamodule: Any) -> Iterator[tuple[Tensor, Tensor]]:
    for batch in datamodule.test_dataloader():
        x, y = batch[0], batch[1]  # FrugalModule's batches are (inputs, labels)
        yield x, y


def _read(meter: EnergyMeter | None) -> float | None:
    if meter is None:
        return None
    try:
        return meter.read_j()
    except Exception as err:  # a meter fault makes the figure unknown, not the run fail
        log.warning("inference: energy meter read failed (%s); energy unknown", err)
        return None


def _meter_fields(meter: EnergyMeter | None, energy_j: float | None) -> dict[str, Any]:
    if meter is None:
        return {"energy_method": "unavailable", "energy_measured": False, "uncertainty": None}
    return {
        "energy_method": meter.method,
        "energy_measured": bool(meter.measured),
        "uncertainty": meter.uncertainty if energy_j is not None else None,
    }


def _device_of(model: nn.Module) -> torch.device:
    tensor = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def _synchronizer(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None
