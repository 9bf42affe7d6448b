"""The inference measurement (`frugal.runs.inference`): on its own with a simulated clock and meter,
and inside tiny real runs."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import compose_cfg
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from frugal.core.errors import ConfigError
from frugal.report.cli import main as report_main
from frugal.runs.inference import InferenceSettings, measure_inference, percentile
from frugal.runs.preflight import check_config


class Clock:
    """Simulated seconds: time passes only when the model computes."""

    def __init__(self) -> None:
        self.s = 0.0

    def __call__(self) -> float:
        return self.s


class SlowLinear(nn.Module):
    """A model whose forward takes `seconds_per_sample` per input on `clock`."""

    def __init__(self, clock: Clock, seconds_per_sample: float, features: int = 8):
        super().__init__()
        self.linear = nn.Linear(features, 3)
        self.clock = clock
        self.seconds_per_sample = seconds_per_sample
        self.calls: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.clock.s += self.seconds_per_sample * len(x)
        self.calls.append(len(x))
        return self.linear(x)


class PowerMeter:
    """A meter at constant power: energy grows with (simulated or real) time, like a real one
    does with the work done. `poll_interval_s` None: a counter; else polled."""

    method = "fake:power"

    def __init__(
        self,
        power_w: float,
        clock: Any = time.perf_counter,
        poll_interval_s: float | None = None,
        measured: bool = True,
        uncertainty: float | None = 0.05,
    ):
        self.power_w = power_w
        self.clock = clock
        self.poll_interval_s = poll_interval_s
        self.measured = measured
        self.uncertainty = uncertainty
        self.lost = False
        self.started_s: float | None = None
        self.stopped_j: float | None = None

    def start(self) -> None:
        self.started_s = self.clock()

    def read_j(self) -> float | None:
        if self.stopped_j is not None:
            return self.stopped_j
        if self.started_s is None:
            return None
        return self.power_w * (self.clock() - self.started_s)

    def stop(self) -> None:
        self.stopped_j = self.read_j()

    def read_machine_j(self) -> float | None:
        return None  # no machine figure: unknown


class Data:
    """A data module with only a test set."""

    def __init__(self, n: int = 100, features: int = 8):
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, features, generator=generator)
        self.y = torch.randint(0, 3, (n,), generator=generator)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.x, self.y), batch_size=32)


def settings(**inference: Any) -> Any:
    return OmegaConf.create({"inference": inference})


def test_energy_latency_and_throughput_from_a_counter() -> None:
    clock = Clock()
    model = SlowLinear(clock, seconds_per_sample=1e-4)
    meter = PowerMeter(power_w=20.0, clock=clock)
    meter.start()
    record = measure_inference(
        model, Data(), meter, settings(serving_batch=64, latency_samples=50), clock=clock
    )
    assert record is not None
    # 20 W × 1e-4 s per prediction = 2 mJ per prediction = 2 J per 1,000
    assert record["energy_j_per_1k"] == pytest.approx(2.0)
    assert record["throughput_per_s"] == pytest.approx(1e4)
    assert record["latency_ms_p50"] == pytest.approx(0.1)
    assert record["latency_ms_p95"] == pytest.approx(0.1)
    assert record["serving_batch"] == 64
    assert record["predictions"] % 64 == 0
    assert record["window_s"] >= 0.5  # a counter: COUNTER_WINDOW_S
    assert record["energy_j"] == pytest.approx(record["window_s"] * 20.0)
    assert (record["energy_method"], record["energy_measured"]) == ("fake:power", True)
    assert record["uncertainty"] == 0.05
    assert record["device"] == "cpu"
    assert record["latency_samples"] == 50
    assert model.training  # the model's mode is restored
    # warm-up and latency calls are batch 1; the serving calls are full batches
    assert set(model.calls) == {1, 64}


def test_a_polled_meter_gets_a_lead_in_and_two_intervals() -> None:
    clock = Clock()
    model = SlowLinear(clock, seconds_per_sample=1e-3)
    meter = PowerMeter(power_w=5.0, clock=clock, poll_interval_s=1.5, measured=False)
    meter.start()
    record = measure_inference(
        model, Data(), meter, settings(serving_batch=100, latency_samples=10), clock=clock
    )
    assert record is not None
    assert record["window_s"] >= 3.0  # two polling intervals
    assert record["energy_j_per_1k"] == pytest.approx(5.0)  # 5 W × 1 ms × 1000
    assert record["energy_measured"] is False
    served = sum(n for n in model.calls if n == 100)
    # the lead-in of one interval came before the window: it served more than the window
    assert served * 1e-3 >= record["window_s"] + 1.5


def test_no_meter_or_a_meter_that_counts_nothing_is_unknown_not_zero() -> None:
    clock = Clock()
    record = measure_inference(
        SlowLinear(clock, 1e-4), Data(), None, settings(latency_samples=5), clock=clock
    )
    assert record is not None
    assert record["energy_j_per_1k"] is None and record["energy_j"] is None
    assert record["energy_method"] == "unavailable" and record["uncertainty"] is None
    assert record["throughput_per_s"] > 0
    idle = PowerMeter(power_w=0.0, clock=clock)
    idle.start()
    record = measure_inference(
        SlowLinear(clock, 1e-4), Data(), idle, settings(latency_samples=5), clock=clock
    )
    assert record is not None and record["energy_j_per_1k"] is None
    assert "unknown" in record["note"]


def test_test_set_smaller_than_a_serving_batch_is_repeated_to_fill_it() -> None:
    clock = Clock()
    model = SlowLinear(clock, 1e-4)
    record = measure_inference(
        model, Data(n=10), None, settings(serving_batch=256, latency_samples=5), clock=clock
    )
    assert record is not None and record["test_samples"] == 10
    assert 256 in model.calls and record["predictions"] % 256 == 0


def test_disabled_and_stopped_measurements_are_null() -> None:
    clock = Clock()
    assert measure_inference(SlowLinear(clock, 1e-4), Data(), None, settings(enabled=False)) is None
    assert (
        measure_inference(
            SlowLinear(clock, 1e-4), Data(), None, settings(), should_stop=lambda: True
        )
        is None
    )


def test_dynamic_int8_is_measured_apart_with_its_accuracy() -> None:
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    record = measure_inference(
        model, Data(), None, settings(latency_samples=5, quantize="dynamic_int8", window_s=0.01)
    )
    assert record is not None
    int8 = record["int8"]
    assert int8["quantized_layers"] == 2 and 0.0 <= int8["test_acc"] <= 1.0
    assert int8["latency_ms_p50"] > 0 and int8["throughput_per_s"] > 0
    assert type(model[0]) is nn.Linear  # the original model is untouched


def test_settings_default_when_the_node_is_absent_and_off_when_null() -> None:
    assert InferenceSettings.from_config(OmegaConf.create({})) == InferenceSettings()
    assert not InferenceSettings.from_config(OmegaConf.create({"inference": None})).enabled
    assert InferenceSettings.from_config(settings(serving_batch=8)).serving_batch == 8


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([1.0], 95, 1.0), ([1.0, 2.0, 3.0, 4.0], 50, 2.5), ([*range(101)], 95, 95.0)],
)
def test_percentile(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)


# ---- inside a run ------------------------------------------------------------------------------


def test_a_tiny_run_records_inference_without_energy(run_train) -> None:
    result, _ = run_train("inference.enabled=true")
    inference = result["inference"]
    assert inference["latency_ms_p50"] > 0 and inference["latency_ms_p95"] > 0
    assert inference["latency_ms_p95"] >= inference["latency_ms_p50"]
    assert inference["throughput_per_s"] > 0
    assert inference["energy_j_per_1k"] is None  # energy.backend=none: unknown, never 0
    assert inference["energy_method"] == "unavailable"
    assert inference["serving_batch"] == 256 and inference["latency_samples"] == 200


def test_a_run_with_a_meter_records_joules_per_1k_apart_from_the_budget(
    run_train, tmp_path: Path
) -> None:
    meter = PowerMeter(power_w=50.0)
    result, _ = run_train(
        "inference.enabled=true", "inference.latency_samples=20", energy_meter=meter
    )
    inference = result["inference"]
    # Constant power: joules per prediction = power / throughput (same window, same clock).
    expected = 50.0 / inference["throughput_per_s"] * 1000
    assert inference["energy_j_per_1k"] == pytest.approx(expected, rel=0.02)
    assert inference["energy_j"] == pytest.approx(50.0 * inference["window_s"], rel=0.02)
    assert inference["energy_method"] == "fake:power" and inference["uncertainty"] == 0.05
    # training's figure was booked before the test and the inference measurement
    assert result["spent"]["energy_j"] < meter.stopped_j - inference["energy_j"]
    # frugal-report reads the real field: lifetime = training + 1M predictions
    assert report_main([str(tmp_path), "-o", str(tmp_path / "report"), "--no-plots"]) == 0
    with (tmp_path / "report" / "runs.csv").open() as file:
        row = next(csv.DictReader(file))
    lifetime = result["spent"]["energy_j"] + 1000 * inference["energy_j_per_1k"]
    assert float(row["lifetime_energy_j"]) == pytest.approx(lifetime)
    assert "### Lifetime energy" in (tmp_path / "report" / "report.md").read_text()


def test_inference_enabled_false_records_null(run_train) -> None:
    result, _ = run_train("inference.enabled=false")
    assert result["inference"] is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("inference.serving_batch=0", "inference.serving_batch=0: out of range"),
        ("inference.quantize=int4", "inference.quantize='int4': not an accepted value"),
        ("inference.window_s=-1", "inference.window_s=-1: out of range"),
        ("+inference.speed=1", "inference.speed=1: unknown key"),
    ],
)
def test_bad_inference_settings_are_rejected_before_work(tmp_path, override, message) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        check_config(compose_cfg(tmp_path, override))
