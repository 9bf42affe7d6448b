"""A corpus of malformed command lines across every config group, each pointed at the directory
of one earlier, real run: every one exits with status 2 and one stderr line naming the key,
without a traceback, and leaves the earlier run's files byte for byte as they were.

Checked in-process (`frugal.train.main` with its Hydra job replaced by a tripwire: an accepted
input fails the test instead of training); a handful also as real subprocesses.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import run_main

import frugal.train

TINY = [
    "data=synthetic",
    "model=mlp_tiny",
    "trainer.max_steps=5",
    "trainer.check_val_every_n_epoch=1",
    "trainer.enable_progress_bar=false",
    "energy.backend=none",
    "logger=none",
]
NO_RAPL = not Path("/sys/class/powercap").exists()
HAS_SLURM = all(shutil.which(program) for program in ("srun", "sbatch"))

# (command line, split at spaces; the key its one line must name). <run>: the earlier run;
# <files>: a folder of malformed data files and checkpoints made for the corpus.
CASES: list[tuple[str, str]] = [
    # top-level keys
    ("seed=-1", "seed"),
    ("seed=1.5", "seed"),
    ("seed=abc", "seed"),
    ("seed=true", "seed"),
    ("seed=[1,2]", "seed"),
    ("threads=0", "threads"),
    ("threads=-1", "threads"),
    ("threads=two", "threads"),
    ("threads=1.5", "threads"),
    ("test_on=worst", "test_on"),
    ("test_on=1", "test_on"),
    ("objectives=[nosuch]", "objectives"),
    ("objectives=[]", "objectives"),
    ("objectives=[test/acc,bogus_j]", "objectives"),
    ("progress=fancy", "progress"),
    ("progress_refresh_rate=-5", "progress_refresh_rate"),
    ("ckpt_path=5", "ckpt_path"),
    ("foo=bar", "foo"),
    ("+foo=bar", "foo"),
    ("+seed=3", "seed"),
    ("~nosuch", "nosuch"),
    ("seed=${nosuch}", "seed"),
    ("trainer.max_steps=${seed}", "trainer.max_steps"),
    ("--bogus-flag", "--bogus-flag"),
    ("seed=0,1", "seed"),
    # what Hydra's override parser rejects
    ("model=ｃｎｎ", "model"),
    ("model=cn\u200bn", "model"),
    ("seed=1\u00a0", "seed"),
    ("model=[cnn", "model"),
    ("seed=${", "seed"),
    ("trainer.max_steps='5", "trainer.max_steps"),
    # group options that do not exist
    ("model=nonexistent", "model"),
    ("data=nonexistent", "data"),
    ("optimizer=nonexistent", "optimizer"),
    ("scheduler=nonexistent", "scheduler"),
    ("trainer=nonexistent", "trainer"),
    ("logger=nonexistent", "logger"),
    ("callbacks=nonexistent", "callbacks"),
    ("budget=nonexistent", "budget"),
    ("compress=zip", "compress"),
    ("sparsity=magic", "sparsity"),
    ("experiment=nope", "experiment"),
    ("hparams_search=nope", "hparams_search"),
    ("paths=nope", "paths"),
    ("debug=nope", "debug"),
    ("hydra/launcher=nope", "hydra/launcher"),
    # trainer
    ("trainer.max_steps=abc", "trainer.max_steps"),
    ("trainer.max_steps=0", "trainer.max_steps"),
    ("trainer.max_steps=-5", "trainer.max_steps"),
    ("trainer.max_steps=1.5", "trainer.max_steps"),
    ("trainer.max_epochs=0", "trainer.max_epochs"),
    ("trainer.devices=0", "trainer.devices"),
    ("trainer.devices=-2", "trainer.devices"),
    ("trainer.devices=abc", "trainer.devices"),
    ("trainer.accelerator=tpu9", "trainer.accelerator"),
    ("trainer.check_val_every_n_epoch=0", "trainer.check_val_every_n_epoch"),
    ("trainer.log_every_n_steps=0", "trainer.log_every_n_steps"),
    ("trainer.strategy=bogus", "trainer.strategy"),
    ("trainer.precision=8", "trainer.precision"),
    ("+trainer.num_nodes=0", "trainer.num_nodes"),
    ("+trainer.accumulate_grad_batches=0", "trainer.accumulate_grad_batches"),
    ("+trainer.gradient_clip_val=-1", "trainer.gradient_clip_val"),
    ("+trainer.limit_train_batches=1.5", "trainer.limit_train_batches"),
    ("+trainer.val_check_interval=0", "trainer.val_check_interval"),
    ("+trainer.foo=1", "trainer.foo"),
    ("trainer.foo=1", "trainer.foo"),
    ("+trainer.callbacks=[]", "trainer.callbacks"),
    ("trainer.enable_progress_bar=maybe", "trainer.enable_progress_bar"),
    ("+trainer.barebones=true", "trainer.barebones"),
    ("budget.data=1k +trainer.min_steps=5", "trainer.min_steps"),
    ("+trainer.enable_checkpointing=false", "trainer.enable_checkpointing"),
    ("trainer.num_sanity_val_steps=-2", "trainer.num_sanity_val_steps"),
    ("trainer._target_=nosuch.Trainer", "trainer._target_"),
    # data and data.source
    ("data.batch_size=0", "data.batch_size"),
    ("data.batch_size=-1", "data.batch_size"),
    ("data.batch_size=abc", "data.batch_size"),
    ("data.batch_size=1.5", "data.batch_size"),
    ("data.source.val_size=0", "data.source.val_size"),
    ("data.source.val_size=5000", "data.source.val_size"),
    ("data.source.seed=-1", "data.source.seed"),
    ("+data.source.bogus=1", "data.source.bogus"),
    ("data.source._target_=nosuch.module.fn", "data.source._target_"),
    ("+data.foo=1", "data.foo"),
    ("data.source=null", "data.source"),
    ("data=digits data.source.test_size=0", "data.source.test_size"),
    ("data=digits data.source.val_size=1000 data.source.test_size=900", "data.source.test_size"),
    ("data=synthetic data.source.num_classes=1", "data.source.num_classes"),
    ("data=synthetic data.source.features=0", "data.source.features"),
    ("data=synthetic data.source.num_samples=2", "data.source.num_samples"),
    ("data=synthetic +data.source.bogus=1", "data.source.bogus"),
    ("data=files", "data.source.path"),
    ("data=files data.source.path=<files>/ok.csv data.source.val_fraction=2", "val_fraction"),
    ("data=files data.source.path=<files>/ok.csv data.source.test_fraction=0", "test_fraction"),
    (
        "data=files data.source.path=<files>/ok.csv data.source.val_fraction=0.5 "
        "data.source.test_fraction=0.5",
        "data.source.test_fraction",
    ),
    # data files (frugal.data.files reads and checks them)
    ("data=files data.source.path=<files>/missing.csv", "data.source.path"),
    ("data=files data.source.path=<files>", "data.source.path"),
    ("data=files data.source.path=<files>/empty.csv", "data.source.path"),
    ("data=files data.source.path=<files>/table.txt", "data.source.path"),
    ("data=files data.source.path=<files>/words.csv", "data.source.path"),
    ("data=files data.source.path=<files>/nan.csv", "data.source.path"),
    ("data=files data.source.path=<files>/one_class.csv", "data.source.path"),
    ("data=files data.source.path=<files>/no_y.npz", "data.source.path"),
    # model
    ("model.kwargs.depth=0", "model.kwargs.depth"),
    ("model.kwargs.channels=0", "model.kwargs.channels"),
    ("model.kwargs.channels=abc", "model.kwargs.channels"),
    ("model.kwargs.width_mult=-1", "model.kwargs.width_mult"),
    ("model.kwargs.width_mult=0", "model.kwargs.width_mult"),
    ("model.kwargs.width_mult=auto", "model.kwargs.width_mult"),
    ("+model.kwargs.bogus=1", "model.kwargs.bogus"),
    ("model=mlp model.kwargs.hidden=0", "model.kwargs.hidden"),
    ("model=mlp model.kwargs.depth=-1", "model.kwargs.depth"),
    ("model=gru model.kwargs.hidden=0", "model.kwargs.hidden"),
    ("model=gru model.kwargs.bidirectional=maybe", "model.kwargs.bidirectional"),
    ("model=sparse_cnn model.kwargs.density=0", "model.kwargs.density"),
    ("model=sparse_cnn model.kwargs.density=1.5", "model.kwargs.density"),
    ("model=sparse_cnn model.kwargs.distribution=gaussian", "model.kwargs.distribution"),
    ("model=lowrank_cnn model.kwargs.rank_ratio=0", "model.kwargs.rank_ratio"),
    ("model=lowrank_cnn model.kwargs.rank_ratio=2", "model.kwargs.rank_ratio"),
    ("model=logreg +model.kwargs.hidden=5", "model.kwargs.hidden"),
    ("+model.kwargs.input_shape=[4]", "model.kwargs.input_shape"),
    ("model.kwargs=5", "model.kwargs"),
    ("model.name=resnet9000", "model.name"),
    ("+model._target_=mypkg.Net", "model._target_"),
    ("model=own", "model._target_"),
    ("model=own model._target_=nosuch.Net", "model._target_"),
    ("model=own model._target_=collections.OrderedDict", "model._target_"),
    ("data=own", "data._target_"),
    ("data=own data._target_=nosuch.Data", "data._target_"),
    ("data=digits model=cnn", "model"),
    ("data=mnist1d model=cnn2d", "model"),
    ("data=synthetic model=cnn2d", "model"),
    ("data=digits model=cnn2d model.kwargs.depth=0", "model.kwargs.depth"),
    ("data=digits model=cnn2d model.kwargs.channels=-4", "model.kwargs.channels"),
    # optimizer
    ("optimizer.lr=-1", "optimizer.lr"),
    ("optimizer.lr=0", "optimizer.lr"),
    ("optimizer.lr=abc", "optimizer.lr"),
    ("optimizer.lr=nan", "optimizer.lr"),
    ("optimizer.lr=inf", "optimizer.lr"),
    ("optimizer.weight_decay=-0.1", "optimizer.weight_decay"),
    ("+optimizer.betas=[0.9]", "optimizer.betas"),
    ("optimizer=sgd optimizer.momentum=-1", "optimizer.momentum"),
    ("optimizer=sgd +optimizer.nesterov=true optimizer.momentum=0", "optimizer.nesterov"),
    ("+optimizer.bogus=1", "optimizer.bogus"),
    ("optimizer._partial_=false", "optimizer._partial_"),
    ("optimizer._target_=torch.optim.Nope", "optimizer._target_"),
    # scheduler
    ("scheduler=budget_linear scheduler.final_ratio=2", "scheduler.final_ratio"),
    ("scheduler=budget_linear scheduler.shape=zigzag", "scheduler.shape"),
    ("scheduler=budget_wsd scheduler.cooldown_fraction=0", "scheduler.cooldown_fraction"),
    ("scheduler=budget_wsd scheduler.warmup_steps=-1", "scheduler.warmup_steps"),
    ("scheduler=step scheduler.step_size=0", "scheduler.step_size"),
    ("scheduler=step scheduler.gamma=-1", "scheduler.gamma"),
    ("scheduler=cosine scheduler.T_max=0", "scheduler.T_max"),
    ("scheduler=cosine +scheduler.bogus=1", "scheduler.bogus"),
    # sparse training
    ("sparsity=gmp sparsity.final_sparsity=2", "sparsity.final_sparsity"),
    ("sparsity=gmp sparsity.final_sparsity=0", "sparsity.final_sparsity"),
    ("sparsity=gmp sparsity.update_every=0", "sparsity.update_every"),
    ("sparsity=gmp sparsity.scope=everywhere", "sparsity.scope"),
    ("sparsity=gmp sparsity.initial_sparsity=0.95", "sparsity.initial_sparsity"),
    ("sparsity=gmp sparsity.start_step=10 sparsity.end_step=5", "sparsity.end_step"),
    ("sparsity=rigl sparsity.density=0", "sparsity.density"),
    ("sparsity=rigl sparsity.density=1.5", "sparsity.density"),
    ("sparsity=rigl sparsity.mode=magic", "sparsity.mode"),
    ("sparsity=rigl sparsity.drop_fraction=2", "sparsity.drop_fraction"),
    ("sparsity=set sparsity.end_fraction=0", "sparsity.end_fraction"),
    ("sparsity=rigl +sparsity.bogus=1", "sparsity.bogus"),
    # compression
    ("compress=svd", "compress"),
    ("compress=prune", "compress"),
    ("compress=svd compress.rank_ratio=0", "compress.rank_ratio"),
    ("compress=svd compress.rank_ratio=1.5", "compress.rank_ratio"),
    ("compress=prune compress.sparsity=1", "compress.sparsity"),
    ("compress=prune compress.scope=everywhere", "compress.scope"),
    ("compress=svd compress.method=zip", "compress.method"),
    ("compress=svd +compress.bogus=1", "compress.bogus"),
    # checkpoints (frugal.runs.checkpoint reads and checks them)
    ("ckpt_path=<files>/missing.ckpt", "ckpt_path"),
    ("ckpt_path=<files>/empty.ckpt", "ckpt_path"),
    ("ckpt_path=<files>/text.ckpt", "ckpt_path"),
    ("compress=svd ckpt_path=<files>/text.ckpt", "ckpt_path"),
    ("ckpt_path=<files>", "ckpt_path"),
    ("ckpt_path=<files>/truncated.ckpt", "ckpt_path"),
    ("ckpt_path=<run>/checkpoints/last.ckpt model=cnn", "ckpt_path"),
    ("ckpt_path=<run>/checkpoints/last.ckpt data=mnist1d", "ckpt_path"),
    ("ckpt_path=<run>/checkpoints/last.ckpt budget.data=1k", "ckpt_path"),
    ("resume=<files>/nosuch", "resume"),
    # energy
    ("energy.backend=abacus", "energy.backend"),
    ("budget.energy=1kJ energy.backend=none", "energy.backend"),
    ("energy.country_iso_code=usa", "energy.country_iso_code"),
    ("energy.measure_power_secs=0", "energy.measure_power_secs"),
    ("energy.carbon_intensity_g_per_kwh=-5", "energy.carbon_intensity_g_per_kwh"),
    ("energy.gpu_indices=[-1]", "energy.gpu_indices"),
    ("energy.codecarbon_tracking_mode=everything", "energy.codecarbon_tracking_mode"),
    ("+energy.bogus=1", "energy.bogus"),
    ("energy.rapl_root=''", "energy.rapl_root"),
    pytest.param(
        "energy.backend=rapl",
        "energy.backend",
        marks=pytest.mark.skipif(not NO_RAPL, reason="this machine has RAPL"),
    ),
    # budget
    ("budget.energy=-5J", "budget.energy"),
    ("budget.energy=5GB", "budget.energy"),
    ("budget.compute=lots", "budget.compute"),
    ("budget.memory=0", "budget.memory"),
    ("budget.oops=5", "budget.oops"),
    ("+budget.oops=5", "budget.oops"),
    ("budget.on_exceed=explode", "budget.on_exceed"),
    ("budget.plan=maybe", "budget.plan"),
    ("budget.estimate_margin=1.5", "budget.estimate_margin"),
    ("budget.warmup_steps=0", "budget.warmup_steps"),
    ("budget.data=1.5", "budget.data"),
    ("budget.time=-1s", "budget.time"),
    ("budget.carbon=5J", "budget.carbon"),
    # callbacks and logger
    ("callbacks.model_checkpoint.save_top_k=-2", "callbacks.model_checkpoint.save_top_k"),
    ("callbacks.model_checkpoint.mode=median", "callbacks.model_checkpoint.mode"),
    ("callbacks.model_checkpoint.monitor=val/nosuch", "callbacks.model_checkpoint.monitor"),
    ("+callbacks.model_checkpoint.bogus=1", "callbacks.model_checkpoint.bogus"),
    ("callbacks.lr_monitor.logging_interval=hour", "callbacks.lr_monitor.logging_interval"),
    ("+callbacks.mine._target_=nosuch.Callback", "callbacks.mine._target_"),
    ("+callbacks.oops=1", "callbacks.oops"),
    ("logger=csv +logger.csv.bogus=1", "logger.csv.bogus"),
    ("logger=csv logger.csv.save_dir=5", "logger.csv.save_dir"),
    ("logger=csv logger.csv._target_=nosuch.Logger", "logger.csv._target_"),
    ("+logger.mine=5", "logger.mine"),
    # paths and Hydra's own settings
    ("paths.cache_dir=[a]", "paths.cache_dir"),
    ("+paths.bogus=1", "paths.bogus"),
    ("hydra.run.dir=<files>/text.ckpt/run", "hydra.run.dir"),
    ("hydra.job.chdir=abc", "hydra.job.chdir"),
    ("hydra.foo=1", "hydra.foo"),
    ("hydra.run.dir=${nosuch}", "hydra.run.dir"),
    # sweeps: every element is checked
    ("-m seed=0,-1", "seed"),
    ("-m model=mlp_tiny,nonexistent", "model"),
    ("-m budget.compute=1GFLOP,-2", "budget.compute"),
    ("-m optimizer.lr=0.1,-0.1", "optimizer.lr"),
    ("-m trainer.max_steps=range(-2,2)", "trainer.max_steps"),
    ("-m model.kwargs.width_mult=choice(1,-1)", "model.kwargs.width_mult"),
    ("-m experiment=pareto_cnn model.kwargs.width_mult=interval(-1.0,2.0)", "width_mult"),
    # found by a second, hidden-style corpus (each crashed, trained, or touched another run)
    ("seed=99999999999999999999999", "seed"),
    ("=5", "=5"),
    ("trainer.devices=[0]", "trainer.devices"),
    ("+trainer.val_check_interval=100000", "trainer.val_check_interval"),
    ("+trainer.limit_train_batches=0", "trainer.limit_train_batches"),
    ("+trainer.limit_train_batches=0.001", "trainer.limit_train_batches"),
    ("+trainer.max_time=abc", "trainer.max_time"),
    ("+trainer.max_time=00:00:-5:00", "trainer.max_time"),
    ("data=mnist1d +data.source.template_len=abc", "data.source.template_len"),
    ("data.source._target_=os.system", "data.source._target_"),
    ("data=files data.source.path=<files>/huge_label.csv", "data.source.path"),
    ("data=files data.source.path=<files>/x_test_shape.npz", "data.source.path"),
    ("scheduler=budget_wsd scheduler.warmup_steps=1000 trainer.max_steps=5", "warmup_steps"),
    ("+callbacks.es._target_=lightning.pytorch.callbacks.EarlyStopping", "callbacks.es.monitor"),
    (
        "+callbacks.es._target_=lightning.pytorch.callbacks.EarlyStopping "
        "+callbacks.es.monitor=val/loss +callbacks.es.mode=sideways",
        "callbacks.es.mode",
    ),
    # (the key here is the file's name: "ckpt_path" alone is in the run directory's line too)
    ("ckpt_path=<files>/loose.ckpt data=synthetic model=mlp_tiny data.source.features=8", "loose"),
    (
        "compress=svd ckpt_path=<files>/loose.ckpt data=synthetic model=mlp_tiny "
        "data.source.features=8",
        "loose.ckpt",
    ),
    ("ckpt_path=<files>/other_run/checkpoints/last.ckpt", "hydra.run.dir"),
    ("resume=<files>/other_run", "hydra.run.dir"),
    ("hydra.run.dir=<run>/checkpoints", "hydra.run.dir"),
    ("hydra.run.dir=<run>/.hydra", "hydra.run.dir"),
    ("hydra.run.dir=<run>/sub/dir", "hydra.run.dir"),
    ("hydra.run.dir=", "hydra.run.dir"),
    ("hydra.output_subdir=<run>/.hydra", "hydra.output_subdir"),
    ("hydra.output_subdir=../elsewhere", "hydra.output_subdir"),
    ("paths.output_dir=<files>", "paths.output_dir"),
    ("--config-dir <files>/nosuch", "--config-dir"),
    ("-m seed=glob(*)", "seed"),
    ("-m model=glob(zzz*)", "model"),
    ("-m seed=range(0,3,0)", "seed"),
    ("-m seed=0,1 hydra.sweep.subdir=x", "hydra.sweep.subdir"),
    ("-m hparams_search=pareto_optuna hydra.sweeper.n_trials=-1", "hydra.sweeper.n_trials"),
    ("-m hydra.sweep.dir=<run> seed=0,1", "hydra.sweep.dir"),
    ("+trainer.profiler=nosuch", "trainer.profiler"),
    ("trainer.check_val_every_n_epoch=null +trainer.val_check_interval=0.5", "check_val_every"),
    # issue 19: tracebacks and late rejections, and every size checked against the machine
    # before anything is allocated (tests/test_bounds.py has the rest)
    (f"budget.energy={'9' * 5000}", "budget.energy"),
    (f"seed={'9' * 5000}", "seed"),
    (f"budget.energy={'9' * 4000}", "budget.energy"),
    ("paths.cache_dir=<files>/text.ckpt", "paths.cache_dir"),
    ("paths.cache_dir=<files>/text.ckpt/cache", "paths.cache_dir"),
    ("threads=1000000", "threads"),
    ("data=synthetic data.source.features=100000000", "data.source.features"),
    ("data=synthetic data.source.num_classes=1000000000", "data.source.num_classes"),
    ("data=synthetic data.source.num_samples=100000000000", "data.source.num_samples"),
    ("data=mnist1d +data.source.num_samples=10000000000", "data.source.num_samples"),
    ("data=mnist1d +data.source.padding=[36,100000000000]", "data.source.padding"),
    ("data=files data.source.path=<files>/huge.npz", "data.source.path"),
    ("data=files data.source.path=<files>/not_npy.npz", "data.source.path"),
    ("data=files data.source.path=<files>/ok.csv data.source.test_path=<files>/huge.npz", "test"),
    ("-m hydra/sweeper=halving hydra.sweeper.eta=1 sweep_budget.data=10k", "hydra.sweeper.eta"),
    ("-m hydra/sweeper=halving hydra.sweeper.eta=1", "hydra.sweeper.eta"),
    ("-m hydra/sweeper=halving hydra.sweeper.warm_start=2 sweep_budget.data=10k", "warm_start"),
    pytest.param(
        "-m hydra/launcher=slurm",
        "hydra/launcher",
        marks=pytest.mark.skipif(HAS_SLURM, reason="this machine has srun and sbatch"),
    ),
    ("+callbacks.x._target_=os.system", "callbacks.x._target_"),
    ("+callbacks.x._target_=os.system +callbacks.x.command=id", "callbacks.x._target_"),
    ("+callbacks.x._target_=lightning.pytorch.loggers.CSVLogger", "callbacks.x._target_"),
    ("logger=csv logger.csv._target_=os.system", "logger.csv._target_"),
    ("+logger.x._target_=lightning.pytorch.callbacks.EarlyStopping", "logger.x._target_"),
    ("model.kwargs.width_mult=100000", "model.kwargs.width_mult"),
    ("model.kwargs.channels=100000000", "model.kwargs.channels"),
    ("model=mlp model.kwargs.hidden=1000000000", "model.kwargs.hidden"),
    ("model=mlp model.kwargs.depth=100000000", "model.kwargs.depth"),
    ("data=synthetic model=mlp_tiny data.source.features=10000000", "data.source.features"),
    ("inference.serving_batch=1000000000", "inference.serving_batch"),
    ("trainer=ddp trainer.devices=100000", "trainer.devices"),
    ("sparsity=structured trainer=ddp trainer.devices=2", "sparsity"),
    ("sparsity=structured trainer.num_nodes=2", "sparsity"),
    ("ckpt_path=", "ckpt_path"),
    ("resume=", "resume"),
    ("init_from=", "init_from"),
    ("data=files data.source.path=''", "data.source.path"),
    ("data=files data.source.path=<files>/ok.csv data.source.test_path=", "test_path"),
    ("collective_timeout_s=1e300", "collective_timeout_s"),
    ("+trainer.max_time=9999999999:00:00:00", "trainer.max_time"),
    ("+trainer.max_time={days:100000000000}", "trainer.max_time"),
]


def argv_of(case: str, run: Path, files: Path) -> list[str]:
    argv = case.replace("<files>", str(files)).replace("<run>", str(run)).split(" ")
    flags = [arg for arg in argv if arg in ("-m", "--multirun")]  # Hydra's flags come first
    argv = [arg for arg in argv if arg not in flags]
    return [*flags, f"hydra.run.dir={run}", f"hydra.sweep.dir={run}", *argv]


@pytest.fixture(scope="module")
def earlier_run(finished_run: Path) -> Path:
    """One real, tiny run (the session's, conftest): the directory every bad input is pointed
    at."""
    run = finished_run
    for name in ("result.json", "checkpoints/last.ckpt", ".hydra/config.yaml"):
        assert (run / name).is_file(), name
    return run


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, earlier_run: Path) -> Path:
    """Malformed data files and checkpoints, and one good CSV."""
    folder = tmp_path_factory.mktemp("files")
    last = (earlier_run / "checkpoints" / "last.ckpt").read_bytes()
    (folder / "truncated.ckpt").write_bytes(last[: len(last) // 2])
    rows = [f"{i % 7 * 0.5},{i % 5},{i % 3}" for i in range(60)]
    (folder / "ok.csv").write_text("a,b,label\n" + "\n".join(rows) + "\n")
    (folder / "empty.csv").write_text("")
    (folder / "table.txt").write_text("1,2,0\n3,4,1\n")
    (folder / "words.csv").write_text("a,b,label\nx,y,0\nz,w,1\n")
    (folder / "nan.csv").write_text("a,b,label\n" + "\n".join([*rows, "nan,1,0"]) + "\n")
    (folder / "one_class.csv").write_text("a,b,label\n" + "1,2,0\n" * 30)
    np.savez(folder / "no_y.npz", x=np.zeros((10, 3)))
    (folder / "huge_label.csv").write_text("a,b,label\n" + "\n".join([*rows, "1,2,1e23"]) + "\n")
    x, y = np.zeros((10, 3)), np.arange(10) % 2
    np.savez(folder / "x_test_shape.npz", x=x, y=y, x_test=np.zeros((4, 5)), y_test=y[:4])
    (folder / "loose.ckpt").write_bytes(last)  # a checkpoint outside any run directory
    shutil.copytree(earlier_run, folder / "other_run")  # another run, to resume elsewhere
    (folder / "empty.ckpt").write_bytes(b"")
    (folder / "text.ckpt").write_text("not a checkpoint\n")
    header = io.BytesIO()  # a header declaring a (10**12, 10) float64 array (80 TB), no data
    shape = {"descr": "<f8", "fortran_order": False, "shape": (10**12, 10)}
    np.lib.format.write_array_header_1_0(header, shape)
    labels = io.BytesIO()
    np.save(labels, np.arange(10) % 2)
    with zipfile.ZipFile(folder / "huge.npz", "w") as archive:
        archive.writestr("x.npy", header.getvalue())
        archive.writestr("y.npy", labels.getvalue())
    with zipfile.ZipFile(folder / "not_npy.npz", "w") as archive:
        archive.writestr("x", b"raw bytes, not a .npy array")
        archive.writestr("y.npy", labels.getvalue())
    return folder


def snapshot(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def run_in_process(argv: list[str], monkeypatch, capsys) -> tuple[int, str]:
    """`frugal-train argv` in this process; an accepted input fails instead of training."""

    def accepted() -> None:
        raise AssertionError(f"accepted: {argv}")

    monkeypatch.setattr(frugal.train, "_hydra_main", accepted)
    monkeypatch.setattr(sys, "argv", ["frugal-train", *argv])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        frugal.train.main()
    return exited.value.code, capsys.readouterr().err


@pytest.mark.parametrize(("case", "key"), CASES)
def test_bad_input_is_one_line_exit_2_and_touches_nothing(
    case, key, earlier_run, files, monkeypatch, capsys, tmp_path
):
    monkeypatch.chdir(tmp_path)
    before = snapshot(earlier_run)
    code, err = run_in_process(argv_of(case, earlier_run, files), monkeypatch, capsys)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("frugal-train: ") and key in lines[0], lines[0]
    assert "Traceback" not in err
    assert snapshot(earlier_run) == before
    assert not any(tmp_path.iterdir())  # nothing written where the command ran either


def test_the_corpus_covers_every_group():
    keys = {getattr(c, "values", c)[1].split(".")[0].lstrip("+~-") for c in CASES}
    groups = {
        "seed", "threads", "test_on", "objectives", "data", "model", "optimizer", "scheduler",
        "trainer", "callbacks", "logger", "paths", "budget", "energy", "compress", "sparsity",
        "hydra", "ckpt_path",
    }  # fmt: skip
    assert groups <= keys
    assert len(CASES) >= 120


# Every case is also in CASES (checked in this process). By default one also runs as a real
# process (the data shape check, the most a bad command line costs; test_cli runs another),
# the others with `make test-slow`.
@pytest.mark.parametrize(
    ("case", "key"),
    [
        pytest.param("model=nonexistent", "model", marks=pytest.mark.slow),
        pytest.param("seed=1.5", "seed", marks=pytest.mark.slow),
        pytest.param("budget.energy=5GB", "budget.energy", marks=pytest.mark.slow),
        ("data=digits model=cnn", "model"),
        pytest.param("model.kwargs.depth=0", "model.kwargs.depth", marks=pytest.mark.slow),
    ],
)
def test_as_a_user_runs_it(case, key, earlier_run, files, tmp_path):
    before = snapshot(earlier_run)
    cmd = [sys.executable, "-m", "frugal.train", *argv_of(case, earlier_run, files)]
    env = {**os.environ, "FRUGAL_DEBUG": ""}
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    elapsed_s = time.perf_counter() - start
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and key in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert snapshot(earlier_run) == before
    assert elapsed_s < 10  # ~0.5 s on an idle machine: nothing heavy is imported


def test_a_new_run_into_an_earlier_runs_directory_is_refused(earlier_run, tmp_path):
    before = snapshot(earlier_run)
    done = run_main([f"hydra.run.dir={earlier_run}", *TINY], cwd=tmp_path)
    lines = done.err.strip().splitlines()
    assert done.code == 2 and len(lines) == 1, done.err
    assert "hydra.run.dir" in lines[0] and "another run's outputs" in lines[0]
    assert snapshot(earlier_run) == before
