"""Memory is measured per run: the same job reports the same peak first in a fresh process or
after other runs in it (as inside a multirun)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils._python_dispatch import _get_current_dispatch_mode

from frugal.meters.memory import PeakMemoryMeter
from frugal.module import FrugalModule

FLOAT_BYTES = 4


def train_steps(
    meter: PeakMemoryMeter, steps: int = 5, model: nn.Module | None = None
) -> list[int]:
    torch.manual_seed(0)
    model = model or nn.Sequential(nn.Linear(40, 100), nn.ReLU(), nn.Linear(100, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.randn(1000, 40), torch.randint(0, 10, (1000,))
    meter.start()
    reads = []
    for step in range(steps):
        batch = slice(100 * step, 100 * (step + 1))
        loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        reads.append(meter.read_bytes())
    return reads


def test_counts_parameters_gradients_optimizer_state_and_data():
    reads = train_steps(PeakMemoryMeter(torch.device("cpu")))
    params = (40 * 100 + 100 + 100 * 10 + 10) * FLOAT_BYTES
    data = 1000 * 40 * FLOAT_BYTES + 1000 * 8
    assert reads[-1] >= data + 4 * params  # weights, gradients, Adam's two moments
    assert reads[-1] < data + 4 * params + 2**20  # plus activations of a 100-sample batch
    assert reads == sorted(reads)  # a peak never goes down


def test_same_job_same_peak_in_a_warm_process():
    """Exactly equal: the count does not depend on what the process allocated before."""
    first = train_steps(PeakMemoryMeter(torch.device("cpu")))
    _ballast = [torch.zeros(2**20) for _ in range(4)]  # other work between the jobs
    second = train_steps(PeakMemoryMeter(torch.device("cpu")))
    assert first == second


def test_counting_stops_after_the_sample():
    meter = PeakMemoryMeter(torch.device("cpu"), sample_steps=2)
    reads = train_steps(meter, steps=4)
    assert _get_current_dispatch_mode() is None
    assert reads[1:] == [reads[1]] * 3


def test_a_run_ended_inside_its_sample_does_not_leak_into_the_next():
    train_steps(PeakMemoryMeter(torch.device("cpu"), sample_steps=10), steps=2)
    reads = train_steps(PeakMemoryMeter(torch.device("cpu"), sample_steps=2), steps=2)
    assert _get_current_dispatch_mode() is None
    assert reads == train_steps(PeakMemoryMeter(torch.device("cpu"), sample_steps=2), steps=2)


def test_the_first_validation_forward_is_sampled_too():
    """Evaluation batches are larger than training ones: their activations can set the peak."""
    module = FrugalModule(
        nn.Sequential(nn.Linear(40, 100), nn.ReLU(), nn.Linear(100, 10)),
        optimizer=torch.optim.Adam,
        num_classes=10,
    )
    meter = PeakMemoryMeter(torch.device("cpu"), sample_steps=2)
    trained = train_steps(meter, steps=3, model=module)[-1]
    with torch.inference_mode():
        module(torch.randn(5000, 40))  # activations: 5000 × 100 floats, 2 MB
    peak = meter.read_bytes()
    assert peak > trained + 5000 * 100 * FLOAT_BYTES
    assert _get_current_dispatch_mode() is None
    with torch.inference_mode():
        module(torch.randn(10000, 40))  # only the first validation forward is sampled
    assert meter.read_bytes() == peak
    meter.stop()


def test_same_run_same_figure_alone_or_after_others(run_train, tmp_path):
    """The same tiny frugal run twice in one process (the second as a multirun's later job
    would be): the same `spent.memory_bytes`."""
    first, _ = run_train(out=tmp_path / "a")
    second, _ = run_train(out=tmp_path / "b")
    assert first["spent"]["memory_bytes"] == second["spent"]["memory_bytes"] > 0
