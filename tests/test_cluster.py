"""Beyond one machine: sweeps through Hydra's submitit launcher, pre-emption and requeue, and the
accounting of a multi-node run (README, "Running on a cluster").

There is no SLURM here: `hydra/launcher=submitit_local` runs each job as its own process tree
under submitit's local controller — the same submission, signal handling and requeue path a
SLURM job takes, with `scontrol requeue` replaced by the controller starting the job again. The
SLURM preset is checked through the sbatch script submitit would submit. Two "nodes" are two
processes on this machine with the environment a launcher sets (gloo).

Run this file as a script (`python tests/test_cluster.py node ...`) to start one such node.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_trained, train_argv, wait_until
from omegaconf import OmegaConf

from frugal.runs import cluster

needs_submitit = pytest.mark.skipif(
    importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None,
    reason="Hydra's submitit launcher is not installed: pip install 'frugal[sweep]'",
)
TESTS = Path(__file__).resolve().parent
QUIET = ["logger=none", "trainer.enable_progress_bar=false", "threads=1"]


def sweep(sweep_dir: Path, *overrides: str) -> list[str]:
    return [
        "-m",
        "hydra/launcher=submitit_local",
        f"hydra.sweep.dir={sweep_dir}",
        *QUIET,
        *overrides,
    ]


def job_log(sweep_dir: Path) -> str:
    """Everything the sweep's submitit tasks wrote (stdout and stderr, every segment)."""
    return "".join(
        p.read_text(errors="replace")
        for p in sorted(sweep_dir.glob(".submitit/*/*"))
        if p.suffix in (".out", ".err")
    )


def task_process(proc: subprocess.Popen, timeout_s: float = 30):
    """The process running the submitit job (`python -m submitit.core._submit`)."""
    import psutil

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for child in psutil.Process(proc.pid).children(recursive=True):
            try:
                if "submitit.core._submit" in " ".join(child.cmdline()):
                    return child
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.1)
    raise AssertionError("no submitit task process found")


# ---- presets and the command line --------------------------------------------------------------
@needs_submitit
def test_slurm_preset_submits_one_task_per_device_requeueable(tmp_path, monkeypatch):
    # What `frugal-train -m hydra/launcher=slurm_gpu trainer=ddp trainer.num_nodes=2` would
    # hand to sbatch: the launcher plugin's own parameter mapping, submitit's own script.
    import submitit
    from hydra import compose, initialize_config_dir
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    from frugal.train import CONF_DIR

    bin_dir = tmp_path / "bin"  # submitit looks for srun before it writes a script
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    overrides = [
        "hydra/launcher=slurm_gpu",
        "trainer=ddp",
        "trainer.num_nodes=2",
        "hydra.launcher.partition=gpu",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert params.pop("_target_").endswith("SlurmLauncher")
    executor = submitit.AutoExecutor(
        cluster="slurm",
        folder=params.pop("submitit_folder"),
        slurm_max_num_timeout=params.pop("max_num_timeout"),
    )
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    script = executor._executor._make_submission_file_text("python -m submitit.core._submit", "u")
    flags = set(re.findall(r"^#SBATCH (\S+)$", script, re.M))
    assert {
        "--nodes=2",
        "--ntasks-per-node=2",  # one task per device: trainer=ddp runs 2 per node
        "--gpus-per-node=2",
        "--signal=USR2@120",  # the pre-emption signal, 2 min before the time limit
        "--time=60",
        "--requeue",
        "--partition=gpu",
    } <= flags, script
    assert executor._executor.max_num_timeout == 3  # requeues after a time limit


@needs_submitit
def test_launcher_choices_and_overrides_pass_the_command_line_check(tmp_path, monkeypatch):
    import torch

    from frugal.command_line import check_command_line
    from frugal.core.errors import ConfigError
    from frugal.train import CONF_DIR

    # A login node has SLURM's programs (the check looks them up; none is run here); without
    # them hydra/launcher=slurm is refused (tests/test_config_corpus.py).
    for program in ("srun", "sbatch"):
        (tmp_path / program).write_text("#!/bin/sh\nexit 1\n")
        (tmp_path / program).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    for argv in (
        ["-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5", "model=cnn,mlp"],
        ["-m", "hydra/launcher=slurm", "hydra.launcher.partition=cpu", "trainer.num_nodes=2"],
        ["-m", "hydra/launcher=submitit_slurm", "hydra.launcher.max_num_timeout=2"],
        ["-m", "hydra/launcher=slurm_gpu", "trainer=gpu", "hydra.launcher.mem_gb=32"],
    ):
        check_command_line(argv, CONF_DIR)
    with pytest.raises(ConfigError, match=r"^hydra.launcher.bogus='1': unknown key"):
        check_command_line(["-m", "hydra/launcher=slurm", "hydra.launcher.bogus=1"], CONF_DIR)
    # GPUs are the compute node's: a login node without any may submit GPU jobs to SLURM
    # (each job checks its own machine when it starts), not run them itself.
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"^trainer.accelerator='gpu': no CUDA GPU"):
            check_command_line(["-m", "hydra/launcher=submitit_local", "trainer=gpu"], CONF_DIR)


# ---- a sweep through submitit ------------------------------------------------------------------
@needs_submitit
# slow: README's own submitit_local command (run by test_readme) covers the default run
@pytest.mark.slow
def test_sweep_runs_each_job_in_its_own_process_and_the_report_reads_it(tmp_path):
    from frugal.report.cli import main as report

    sweep_dir = tmp_path / "sweep"
    jobs = ("model=cnn,mlp", "trainer.max_steps=300", "budget.energy=200J")
    done = run_trained(*sweep(sweep_dir, *jobs), cwd=tmp_path, timeout_s=600)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = [json.loads((sweep_dir / str(n) / "job.json").read_text()) for n in (0, 1)]
    # Two submitit jobs: each its own controller process (its pid is the job id) and task.
    assert all(job["executor"] == "local" for job in jobs)
    assert len({job["job_id"] for job in jobs}) == 2
    for n, model in enumerate(("cnn", "mlp")):
        result = json.loads((sweep_dir / str(n) / "result.json").read_text())
        assert result["model"]["name"] == model
        assert result["status"] in ("completed", "budget_exhausted")
        assert result["steps"] <= 300 and result["spent"]["energy_j"] <= 200
    assert report([str(sweep_dir), "-o", str(tmp_path / "report")]) == 0
    runs = (tmp_path / "report" / "runs.csv").read_text().splitlines()
    assert len(runs) == 3  # a header and both jobs


# ---- pre-emption ---------------------------------------------------------------------------------
@pytest.mark.slow  # ~20 s; the signal path itself is covered by test_ddp and test_hard_kill
@needs_submitit
def test_preemption_signal_requeues_the_job_which_ends_within_its_budget(tmp_path):
    # submitit's pre-emption / time-limit signal (SIGUSR2) delivered to the running job: the
    # run stops at an agreed step with a checkpoint and its ledger, submitit requeues the job,
    # and the requeued job resumes the same run: one budget across both segments.
    sweep_dir, run = tmp_path / "sweep", tmp_path / "sweep" / "0"
    budget = ["budget.data=64k", "budget.energy=400J", "budget.time=120s"]
    proc = subprocess.Popen(
        train_argv(
            *sweep(
                sweep_dir, "data=synthetic", "model=mlp_tiny", "trainer.max_steps=100000", *budget
            )
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        wait_until((run / "ledger.json").exists, proc, 180, "training began")
        task = task_process(proc)
        time.sleep(0.5)
        before = json.loads((run / "ledger.json").read_text())["spent"]
        task.send_signal(signal.SIGUSR2)
        code = proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    log = job_log(sweep_dir)
    assert code == 0, (proc.stderr.read() if proc.stderr else "")[-3000:] + log[-3000:]
    stopped = re.search(r"interrupted: SIGUSR2 received; stopped at step (\d+)", log)
    assert stopped, log[-3000:]
    assert "Requeued job" in log and "resuming its run from" in log
    result = json.loads((run / "result.json").read_text())
    spent, steps = result["spent"], result["steps"]
    assert result["status"] == "budget_exhausted" and result["stopped_by"] == "data"
    assert int(stopped[1]) < steps  # the second segment went on from where the first stopped
    assert json.loads((run / "ledger.json").read_text())["segments"] == 2
    # Both segments booked exactly once: 32 samples a step, every step, one budget.
    assert spent["data_samples"] == 32 * steps
    assert 64000 - 32 < spent["data_samples"] <= 64000
    assert before["energy_j"] < spent["energy_j"] <= 400
    assert before["time_s"] < spent["time_s"] <= 120
    curve_steps = [int(line.split(",")[0]) for line in (run / "curve.csv").read_text().split()[1:]]
    assert curve_steps == sorted(set(curve_steps))  # one curve, never restarted


@pytest.mark.slow
@needs_submitit
def test_sigterm_checkpoints_and_stops_the_job_without_requeue(tmp_path):
    # SIGTERM is also what scancel and submitit's controller send to cancel: the run stops
    # resumably (checkpoint, ledger, status interrupted) and is not requeued.
    sweep_dir, run = tmp_path / "sweep", tmp_path / "sweep" / "0"
    proc = subprocess.Popen(
        train_argv(*sweep(sweep_dir, "data=synthetic", "model=mlp_tiny", "budget.data=64k")),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        wait_until((run / "ledger.json").exists, proc, 180, "training began")
        task_process(proc).send_signal(signal.SIGTERM)
        code = proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code != 0  # the job produced no result: the sweep says so
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "interrupted" and "SIGTERM" in result["message"]
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert "Requeued job" not in job_log(sweep_dir)


# ---- requeue detection (no training) -------------------------------------------------------------
def _run_dir(tmp_path: Path, job_id: str | None) -> Path:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    if job_id is not None:
        noted = {"executor": "local", "job_id": job_id, "folder": str(tmp_path / ".submitit/%j")}
        (run / cluster.JOB_FILE).write_text(json.dumps(noted))
    return run


def _submitit_env(monkeypatch, tmp_path: Path, job_id: str) -> None:
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "local")
    monkeypatch.setenv("SUBMITIT_LOCAL_JOB_ID", job_id)
    monkeypatch.setenv("SUBMITIT_FOLDER", str(tmp_path / ".submitit/%j"))


@needs_submitit
@needs_submitit
@pytest.mark.parametrize(
    ("noted", "running", "given", "resumes"),
    [
        ("41", "41", None, True),  # the same job, requeued: resumes its run
        ("41", "42", None, False),  # another job's run directory: left to the run-dir check
        (None, "41", None, False),  # nothing says which job wrote it
        ("41", "41", "elsewhere.ckpt", False),  # the command line named a checkpoint: as given
        ("41", None, None, False),  # not a submitit job
    ],
)
def test_a_requeued_job_resumes_only_its_own_run(
    tmp_path, monkeypatch, noted, running, given, resumes
):
    run = _run_dir(tmp_path, noted)
    if running is not None:
        _submitit_env(monkeypatch, tmp_path, running)
    else:
        monkeypatch.delenv("SUBMITIT_EXECUTOR", raising=False)
    cfg = OmegaConf.create({"paths": {"output_dir": str(run)}, "ckpt_path": given, "resume": None})
    out = cluster.resume_requeued(cfg)
    expected = str(run / "checkpoints" / "last.ckpt") if resumes else given
    assert out.ckpt_path == expected


def test_note_job_records_the_job_only_under_submitit(tmp_path, monkeypatch):
    monkeypatch.delenv("SUBMITIT_EXECUTOR", raising=False)
    cluster.note_job(tmp_path)
    assert not (tmp_path / cluster.JOB_FILE).exists()
    _submitit_env(monkeypatch, tmp_path, "77")
    cluster.note_job(tmp_path)
    assert cluster.noted_job(tmp_path) == cluster.job_identity()
    assert cluster.job_identity()["job_id"] == "77"


def test_only_preemption_signals_requeue(monkeypatch):
    monkeypatch.delenv("SUBMITIT_PREEMPT_SIGNAL", raising=False)
    assert cluster.requeue_signals() == {signal.SIGUSR1, signal.SIGUSR2}
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "local")
    for signum in (signal.SIGTERM, signal.SIGINT, None):  # cancel, Ctrl-C: no requeue
        assert cluster.requeue(signum) is False
    monkeypatch.delenv("SUBMITIT_EXECUTOR")
    assert cluster.requeue(signal.SIGUSR2) is False  # not a submitit job


def test_under_slurm_lightning_keeps_its_ranks_but_not_its_auto_requeue(monkeypatch):
    # Lightning's SLURM environment would requeue on SIGUSR1 at once, before frugal's agreed
    # stop and ledger: frugal turns that off and keeps the rest (ranks, nodes, master address).
    import lightning as L

    slurm = {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "job", "SLURM_NODEID": "0"}
    slurm |= {"SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_JOB_ID": "7"}
    for name, value in slurm.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SLURM_NODELIST", "localhost")
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        **cluster.trainer_plugins(),
    )
    environment = trainer._accelerator_connector.cluster_environment
    assert type(environment).__name__ == "SLURMEnvironment" and environment.auto_requeue is False
    monkeypatch.delenv("SLURM_NTASKS")
    assert cluster.trainer_plugins() == {}


# ---- two nodes -----------------------------------------------------------------------------------
NODE_JOULES_PER_STEP = (1.0, 10.0)  # what each node's own meter sees per step: unequal on purpose


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_nodes_book_energy_once_per_node_and_samples_once_per_rank(tmp_path):
    # 2 nodes x 1 rank, started as a launcher starts them (one process per node, the same
    # configuration, MASTER_ADDR/MASTER_PORT/NODE_RANK/WORLD_SIZE/LOCAL_RANK), gloo. Each node's
    # local rank 0 has its own meter; node 0's counts 1 J a step, node 1's 10 J. Booking them
    # once each gives 11 J a step; counting a node twice, or only rank 0, gives something else.
    port = free_port()
    procs = []
    for node in (0, 1):
        env = {
            **os.environ,
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "NODE_RANK": str(node),
            "WORLD_SIZE": "2",
            "LOCAL_RANK": "0",
            "PYTHONHASHSEED": "0",
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, str(Path(__file__)), "node", str(node), str(tmp_path)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=tmp_path,
            )
        )
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err[-3000:]
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    result = json.loads((tmp_path / "result.json").read_text())
    spent, steps = result["spent"], result["steps"]
    assert [o["node"] for o in outputs] == [0, 1] and {o["steps"] for o in outputs} == {steps}
    # Energy: each node's meter read once, the nodes summed.
    metered = [o["metered_j"] for o in outputs]
    assert metered == [j * steps for j in NODE_JOULES_PER_STEP]
    assert spent["energy_j"] == pytest.approx(sum(metered))
    assert result["stopped_by"] == "energy" and spent["energy_j"] <= 600
    # Samples and FLOPs: every rank's own, summed: 2 ranks x 32 samples a step.
    assert spent["data_samples"] == 2 * 32 * steps
    per_sample = result["model"]["train_flop_per_sample"]
    assert spent["compute_flop"] == pytest.approx(2 * 32 * steps * per_sample)


def node_main(node: int, out_dir: str) -> None:
    """One node of the two-node test: this configuration, a meter of its own."""
    sys.path.insert(0, str(TESTS))
    from conftest import compose_cfg
    from fakes.meters import FakeEnergyMeter, Work

    from frugal.pipeline import train

    cfg = compose_cfg(
        Path(out_dir),
        "trainer=ddp",
        "trainer.devices=1",
        "trainer.num_nodes=2",
        "trainer.max_steps=1000",
        "budget.energy=600J",
    )
    meter = FakeEnergyMeter()
    work = Work(meter, joules_per_step=NODE_JOULES_PER_STEP[node])
    _, objects = train(cfg, energy_meter=meter, callbacks=[work])
    steps = objects["trainer"].global_step
    print(json.dumps({"node": node, "metered_j": meter.energy_j, "steps": steps}))


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "node":
    node_main(int(sys.argv[2]), sys.argv[3])
