"""The supervised experiment scripts end to end: regression, image classifiers, optimizers, char LM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from experiments import char_lm, cifar10, mnist, optimizers, regression
from foundations.data import write_cifar_batch, write_idx
from foundations.runlog import load_checkpoint


def _scalars(run_dir: Path) -> set[str]:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return set(events.Tags()["scalars"])


def test_regression_gradient_descent_meets_the_closed_form(tmp_path: Path) -> None:
    r = regression.main(["--root", str(tmp_path), "--steps", "300"])
    assert r["max_abs_diff"] < 1e-4
    assert r["logistic_train_accuracy"] == 1.0  # separable data: every training point right
    assert r["logistic_test_accuracy"] > 0.95 and r["angle_degrees"] < 10
    assert {"linear/train_loss", "logistic/test_accuracy"} <= _scalars(r["run_dir"])


def test_closed_form_ridge_matches_the_penalised_optimum() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 3, generator=g, dtype=torch.float64)
    y = torch.randn(50, generator=g, dtype=torch.float64)
    w, b = regression.closed_form(x, y, l2=0.5)
    theta = torch.cat([w, b[None]]).requires_grad_(True)
    loss = ((x @ theta[:3] + theta[3] - y) ** 2).mean() + 0.5 * theta[:3].pow(2).sum()
    (grad,) = torch.autograd.grad(loss, theta)
    assert grad.abs().max() < 1e-12  # stationary point of the ridge objective


def test_mnist_script_on_generated_glyphs(tmp_path: Path) -> None:
    r = mnist.main(["--dataset", "glyphs", "--train-subset", "3000", "--val-size", "500", "--epochs", "3",
                    "--batch-size", "32", "--root", str(tmp_path), "--no-progress"])  # fmt: skip
    assert r["test"]["accuracy"] > 0.5  # chance is 0.1
    assert {"train/loss", "eval/loss", "eval/accuracy", "test/accuracy"} <= _scalars(r["run_dir"])
    best = load_checkpoint(Path(r["run_dir"]) / "best.pt")
    assert best["epoch"] == r["history"].best_epoch


def _fake_mnist(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    (root / "mnist").mkdir(parents=True)
    for prefix, count in (("train", n), ("t10k", n // 4)):
        write_idx(root / "mnist" / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (count, 28, 28), dtype=np.uint8))
        write_idx(root / "mnist" / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, count).astype(np.uint8))


def test_mnist_script_reads_idx_files_with_every_regulariser(tmp_path: Path) -> None:
    _fake_mnist(tmp_path / "data", 200)
    r = mnist.main(["--data-dir", str(tmp_path / "data"), "--no-verify", "--no-download", "--model", "mlp",
                    "--dropout", "0.2", "--batch-norm", "--augment", "--weight-decay", "1e-4", "--early-stopping", "1",
                    "--val-size", "50", "--epochs", "3", "--root", str(tmp_path), "--no-progress"])  # fmt: skip
    assert len(r["history"].train_loss) >= 1 and 0.0 <= r["test"]["accuracy"] <= 1.0


def test_cifar10_script_reads_pickles(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_cifar_batch(folder / name, rng.integers(0, 256, (20, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, 20))
    r = cifar10.main(["--data-dir", str(tmp_path / "data"), "--no-verify", "--no-download", "--val-size", "20",
                      "--epochs", "1", "--batch-size", "16", "--root", str(tmp_path), "--no-progress"])  # fmt: skip
    assert r["history"].steps == 5  # 80 training images / 16
    assert r["model"][0].input_shape == (3, 32, 32)


def test_missing_data_offline_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        mnist.main(["--data-dir", str(tmp_path), "--no-download", "--root", str(tmp_path), "--no-progress"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "MNIST files not found" in err and "Put train-images-idx3-ubyte.gz there" in err
    assert "download=True" not in err and "or run without --no-download on a machine with network access" in err


def test_optimizers_script_draws_every_trajectory(tmp_path: Path) -> None:
    out = optimizers.main(["--steps", "150", "--root", str(tmp_path)])
    assert out["png"].is_file() and out["png"].stat().st_size > 20_000
    for surface in optimizers.SURFACES:
        for name, (path, values) in out["results"][surface.name].items():
            assert path.shape == (151, 2)
            assert values[-1] < values[0], (surface.name, name)
    events = EventAccumulator(str(out["run_dir"]))
    events.Reload()
    assert "trajectories" in events.Tags()["images"]
    assert "rosenbrock/adam" in events.Tags()["scalars"]


def test_optimizer_surfaces_have_their_published_minima() -> None:
    assert optimizers.rosenbrock(torch.tensor([1.0, 1.0])).item() == 0.0
    assert optimizers.beale(torch.tensor([3.0, 0.5])).item() == 0.0


@pytest.mark.slow
def test_char_lm_script_beats_unigram_and_checkpoints(tmp_path: Path) -> None:
    text = tmp_path / "corpus.txt"
    text.write_text(("the cat sat on the mat. the dog ate the log. " * 400), encoding="utf-8")
    r = char_lm.main(["--text-file", str(text), "--steps", "150", "--eval-every", "75", "--seq-len", "32",
                      "--batch-size", "16", "--hidden-size", "64", "--num-layers", "1", "--prompt", "the ",
                      "--root", str(tmp_path), "--no-progress"])  # fmt: skip
    assert r["val_loss"] < 0.5 * r["unigram_loss"]
    saved = load_checkpoint(Path(r["run_dir"]) / "checkpoint.pt")
    assert saved["step"] == 150 and saved["vocab"] == "".join(r["vocab"].chars)
    assert {"train/loss", "eval/loss", "eval/bits_per_char", "eval/unigram_loss"} <= _scalars(r["run_dir"])


def test_char_lm_bad_prompt_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        char_lm.main(["--prompt", "Zebra!", "--steps", "1", "--root", str(tmp_path), "--no-progress"])
    assert "not in the vocabulary" in capsys.readouterr().err
