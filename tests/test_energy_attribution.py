"""Attribution of energy to the run's own processes (frugal.meters.energy.attributed), against a
fake /proc tree, a fake RAPL tree and a stubbed NVML: exact shares, the model, hand-over."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fakes.pynvml_stub import StubGpu, StubNvml
from fakes.rapl_tree import set_energy, write_zone

from frugal.meters.energy import EnergyConfig, build_energy_meter
from frugal.meters.energy.attributed import AttributedMeter, CpuShare, ModelPart, SharedCounter
from frugal.meters.energy.nvml import NvmlBackend, ProcessShare
from frugal.meters.energy.power import PowerModel
from frugal.meters.energy.rapl import RaplBackend
from frugal.meters.energy.usage import CLK_TCK, RunUsage, machine_busy_s, pid_cpu_s

GB = 1e9


def write_proc_stat(proc: Path, busy_s: float, idle_s: float = 1000.0) -> None:
    """/proc/stat whose aggregate line holds `busy_s` of user time (plus a little system)."""
    user, system = round(busy_s * CLK_TCK) - 10, 10
    proc.mkdir(parents=True, exist_ok=True)
    (proc / "stat").write_text(
        f"cpu  {user} 0 {system} {round(idle_s * CLK_TCK)} 0 0 0 0 0 0\ncpu0 1 2 3 4\n"
    )


def write_pid(proc: Path, pid: int, cpu_s: float, rss_bytes: int = 0) -> None:
    """/proc/<pid>/stat and statm: `cpu_s` split between user and system time."""
    ticks = round(cpu_s * CLK_TCK)
    fields = ["S", "1"] + ["0"] * 9 + [str(ticks - ticks // 4), str(ticks // 4)] + ["0"] * 30
    (proc / str(pid)).mkdir(parents=True, exist_ok=True)
    (proc / str(pid) / "stat").write_text(f"{pid} (python (rank) x) {' '.join(fields)}\n")
    pages = rss_bytes // 4096
    (proc / str(pid) / "statm").write_text(f"{pages * 2} {pages} 0 0 0 0 0\n")


def usage_of(proc: Path, pid: int, children: list[int] | None = None) -> RunUsage:
    return RunUsage(
        pid=pid, proc_root=proc, list_children=lambda p: (children or []) if p == pid else []
    )


class Clock:
    def __init__(self) -> None:
        self.now_s = 10.0

    def __call__(self) -> float:
        return self.now_s


def test_proc_readers_parse_names_with_spaces_and_parentheses(tmp_path: Path) -> None:
    write_proc_stat(tmp_path, busy_s=12.5)
    write_pid(tmp_path, 41, cpu_s=3.0)
    assert machine_busy_s(tmp_path) == pytest.approx(12.5)
    assert pid_cpu_s(41, tmp_path) == pytest.approx(3.0)
    assert pid_cpu_s(42, tmp_path) is None  # gone: unknown, never 0


def test_rapl_delta_split_exactly_between_two_processes(tmp_path: Path) -> None:
    proc, rapl = tmp_path / "proc", tmp_path / "rapl"
    write_zone(rapl, "intel-rapl:0", "package-0", 5_000_000)
    write_proc_stat(proc, busy_s=100.0)
    write_pid(proc, 101, cpu_s=10.0)
    write_pid(proc, 202, cpu_s=20.0)
    clock = Clock()
    meters = {
        pid: SharedCounter(RaplBackend(rapl), CpuShare(usage_of(proc, pid), proc), 0.5, clock)
        for pid in (101, 202)
    }
    for meter in meters.values():
        meter.start()
    # In one second: the package used 100 J; the machine was busy 8 CPU-s, of which the first
    # process 3 s, the second 1 s (the other 4 s: someone else's).
    set_energy(rapl, "intel-rapl:0", 105_000_000)
    write_proc_stat(proc, busy_s=108.0)
    write_pid(proc, 101, cpu_s=13.0)
    write_pid(proc, 202, cpu_s=21.0)
    clock.now_s += 1.0
    first_j, machine_j = meters[101].read(machine=True)
    second_j, _ = meters[202].read(machine=False)
    assert first_j == pytest.approx(100.0 * 3 / 8)
    assert second_j == pytest.approx(100.0 * 1 / 8)
    assert machine_j == pytest.approx(100.0)  # the machine's own figure, beside it


def test_share_within_a_window_extrapolates_then_settles(tmp_path: Path) -> None:
    proc, rapl = tmp_path / "proc", tmp_path / "rapl"
    write_zone(rapl, "intel-rapl:0", "package-0", 0)
    write_proc_stat(proc, busy_s=0.0)
    write_pid(proc, 7, cpu_s=0.0)
    clock = Clock()
    part = SharedCounter(RaplBackend(rapl), CpuShare(usage_of(proc, 7), proc), 0.5, clock)
    meter = AttributedMeter([part])
    meter.start()
    set_energy(rapl, "intel-rapl:0", 10_000_000)  # 10 J, first window not over yet
    clock.now_s += 0.1
    assert meter.read_j() == pytest.approx(10.0)  # share unknown yet: all of it (an upper bound)
    set_energy(rapl, "intel-rapl:0", 40_000_000)
    write_proc_stat(proc, busy_s=4.0)
    write_pid(proc, 7, cpu_s=1.0)  # a quarter of the machine's work
    clock.now_s += 1.0
    # the window settles at 40 J x 1/4 = 10 J: the figure never goes back below what was read
    assert meter.read_j() == pytest.approx(10.0)
    set_energy(rapl, "intel-rapl:0", 80_000_000)
    clock.now_s += 0.1  # within the next window: extrapolated at the last share
    assert meter.read_j() == pytest.approx(20.0)


def test_gpu_shared_with_another_process_charged_by_utilisation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub = StubNvml([StubGpu("A100", energy_mj=0, processes=[(500, 60), (999, 20)])])
    monkeypatch.setitem(sys.modules, "pynvml", stub.module())
    backend = NvmlBackend([0])
    clock = Clock()
    part = SharedCounter(backend, ProcessShare(backend, lambda: {500}), 0.5, clock)
    part.start()
    stub.gpus[0].energy_mj += 80_000  # 80 J on the device; the run did 60 of 80 % of its work
    clock.now_s += 1.0
    run_j, machine_j = part.read(machine=True)
    assert run_j == pytest.approx(60.0)
    assert machine_j == pytest.approx(80.0)
    assert part.method == "nvml×gpu-share"
    stub.gpus[0].processes = [(500, 50)]  # alone on the device now: all of it
    stub.gpus[0].energy_mj += 10_000
    clock.now_s += 1.0
    assert part.read(machine=False)[0] == pytest.approx(70.0)


def test_model_charges_cpu_time_and_resident_memory(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    write_proc_stat(proc, busy_s=50.0)
    write_pid(proc, 11, cpu_s=5.0, rss_bytes=2 * 4096 * 250_000)  # 2.048 GB resident
    write_pid(proc, 12, cpu_s=1.0)  # a data-loader worker
    clock = Clock()
    power = PowerModel(cpu_watts_per_core=10.0, ram_watts_per_gb=0.5, cpu_source="test")
    part = ModelPart(usage_of(proc, 11, children=[12]), lambda: power, proc, clock)
    meter = AttributedMeter([part], pue=1.5)
    meter.start()
    write_pid(proc, 11, cpu_s=7.0, rss_bytes=2 * 4096 * 250_000)
    write_pid(proc, 12, cpu_s=2.0)  # the worker works too: the run's
    write_proc_stat(proc, busy_s=60.0)
    clock.now_s += 4.0
    ram_j = 2.048 * 0.5 * 4.0
    assert meter.read_j() == pytest.approx(1.5 * (3.0 * 10.0 + ram_j))
    assert meter.measured is False and meter.uncertainty == pytest.approx(0.4)
    machine_j = meter.read_machine_j()
    assert machine_j is not None and machine_j >= 1.5 * 10.0 * 10.0  # 10 busy CPU-s on the machine


def test_other_ranks_are_left_out_of_the_tree(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    for pid, cpu_s in ((1, 1.0), (2, 5.0), (3, 2.0), (4, 7.0)):
        write_pid(proc, pid, cpu_s)
    tree = {1: [2, 3, 4], 2: [4]}  # 2 is another rank; 4 its worker; 3 our worker
    usage = RunUsage(pid=1, proc_root=proc, list_children=lambda p: tree.get(p, []))
    assert usage.cpu_s() == pytest.approx(1.0 + 5.0 + 2.0 + 7.0)
    usage.exclude([1, 2])  # the ranks' pids, gathered through the strategy
    assert usage.cpu_s() == pytest.approx(1.0 + 5.0 + 2.0 + 7.0)  # never decreases ...
    write_pid(proc, 3, 3.0)
    write_pid(proc, 2, 9.0)
    assert usage.cpu_s() == pytest.approx(1.0 + 5.0 + 3.0 + 7.0)  # ... and no longer follows 2


def test_a_counter_that_fails_hands_over_to_the_model(tmp_path: Path) -> None:
    proc, rapl = tmp_path / "proc", tmp_path / "rapl"
    write_zone(rapl, "intel-rapl:0", "package-0", 0)
    write_proc_stat(proc, busy_s=0.0)
    write_pid(proc, 7, cpu_s=0.0)
    clock = Clock()
    usage = usage_of(proc, 7)
    power = PowerModel(cpu_watts_per_core=4.0, ram_watts_per_gb=0.0, cpu_source="test")
    meter = AttributedMeter(
        [SharedCounter(RaplBackend(rapl), CpuShare(usage, proc), 0.5, clock)],
        fallback=lambda: ModelPart(usage, lambda: power, proc, clock),
    )
    meter.start()
    set_energy(rapl, "intel-rapl:0", 30_000_000)
    write_proc_stat(proc, busy_s=2.0)
    write_pid(proc, 7, cpu_s=2.0)
    clock.now_s += 1.0
    assert meter.read_j() == pytest.approx(30.0)
    (rapl / "intel-rapl:0" / "energy_uj").write_text("garbage\n")
    counted_j = meter.read_j()
    assert counted_j == pytest.approx(30.0)  # kept, the model counting on from here
    write_pid(proc, 7, cpu_s=3.0)
    clock.now_s += 1.0
    assert meter.read_j() == pytest.approx(30.0 + 4.0)
    assert meter.method == "model:cpu-time+rss" and meter.switches


def test_auto_without_counters_is_the_model_read_on_the_spot() -> None:
    meter = build_energy_meter(EnergyConfig(backend="auto", rapl_root="/nonexistent"))
    assert isinstance(meter, AttributedMeter)
    assert meter.poll_interval_s is None  # a per-step counter: no polling allowance
    assert meter.method == "model:cpu-time+rss"


def test_auto_with_rapl_charges_its_share(tmp_path: Path) -> None:
    write_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    meter = build_energy_meter(EnergyConfig(backend="auto", rapl_root=str(tmp_path)))
    assert isinstance(meter, AttributedMeter)
    assert meter.method == "rapl×cpu-share" and meter.measured


def test_a_descendant_started_as_another_rank_is_left_out(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    for pid, cpu_s in ((1, 1.0), (2, 5.0), (3, 2.0), (4, 7.0)):
        write_pid(proc, pid, cpu_s)
    (proc / "1" / "environ").write_bytes(b"HOME=/root\0")  # rank 0 as the user started it
    (proc / "2" / "environ").write_bytes(b"HOME=/root\0LOCAL_RANK=1\0")  # Lightning's rank 1
    (proc / "4" / "environ").write_bytes(b"LOCAL_RANK=1\0HOME=/root\0")  # rank 1's worker
    (proc / "3" / "environ").write_bytes(b"HOME=/root\0")  # rank 0's worker (forked)
    usage = RunUsage(pid=1, proc_root=proc, list_children=lambda p: [2, 3, 4] if p == 1 else [])
    assert usage.cpu_s() == pytest.approx(1.0 + 2.0)


@pytest.mark.parametrize(
    ("reported", "tdp_w"),
    [
        ("Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz", 150.0),
        ("AMD EPYC 7203 8-Core Processor", 120.0),
        ("Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz", 65.0),
        ("AMD EPYC", None),  # not a row of the database: codecarbon's default applies
    ],
)
def test_cpu_power_from_codecarbons_database_by_exact_name(reported: str, tdp_w: float | None):
    from frugal.meters.energy.power import _tdp_of

    assert _tdp_of(reported) == tdp_w
