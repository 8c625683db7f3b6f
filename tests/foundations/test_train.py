"""The supervised loop: closed-form agreement, separable data, early stopping, checkpoints, logs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from foundations import optim
from foundations.batches import Augment, Labelled
from foundations.encoders import MnistCNN
from foundations.runlog import RunLogger, load_checkpoint
from foundations.synthetic import glyphs, linear_data, separable_data
from foundations.train import accuracy, evaluate, fit


class _Squeeze(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.squeeze(-1)


def test_gradient_descent_recovers_the_closed_form_least_squares_solution() -> None:
    data, _, _ = linear_data(200, 5, noise=0.3, seed=0)
    design = torch.cat([data.x, torch.ones(200, 1, dtype=torch.float64)], dim=1)
    closed = torch.linalg.lstsq(design, data.y[:, None]).solution.squeeze(1)  # [w..., b]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 1), _Squeeze()).double()
    history = fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), data, epochs=400,
                  batch_size=200, task="regression")  # fmt: skip
    found = torch.cat([model[0].weight.detach().squeeze(0), model[0].bias.detach()])
    torch.testing.assert_close(found, closed, atol=1e-4, rtol=0)
    assert history.steps == 400 and history.train_loss[-1] < history.train_loss[0]


def test_logistic_regression_separates_separable_data() -> None:
    train, w_true = separable_data(2000, 10, margin=0.3, seed=1)
    test, _ = separable_data(1000, 10, margin=0.3, seed=2)
    test = Labelled(test.x, ((test.x @ w_true) > 0).long())  # same hyperplane as training
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 1), _Squeeze())
    bce = nn.BCEWithLogitsLoss()
    history = fit(model, lambda out, y: bce(out, y.float()), optim.Adam(model.parameters(), lr=0.05),
                  train, test, epochs=30, batch_size=100, generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert history.val[-1]["accuracy"] >= 0.99
    cosine = torch.nn.functional.cosine_similarity(model[0].weight.detach()[0], w_true, dim=0)
    assert cosine > 0.95  # the learned normal points along the true one


def test_accuracy_for_multiclass_and_binary_outputs() -> None:
    assert accuracy(torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]]), torch.tensor([0, 1, 1])).item() == pytest.approx(2 / 3)
    assert accuracy(torch.tensor([0.5, -1.0, 2.0, -0.1]), torch.tensor([1, 0, 0, 0])).item() == 0.75
    assert accuracy(torch.tensor([[0.5], [-1.0]]), torch.tensor([1, 1])).item() == 0.5


def _classification(n: int = 400, seed: int = 0) -> Labelled:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    return Labelled(x, (x[:, 0] + 0.5 * x[:, 1] > 0).long() + (x[:, 2] > 1).long())


def test_early_stopping_keeps_and_restores_the_best_epoch(tmp_path: Path) -> None:
    # Few noisy training points, a big net and a high learning rate: validation loss turns up.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, generator=g)
    train = Labelled(x, torch.randint(0, 3, (40,), generator=g))
    val = _classification(300, seed=5)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 256), nn.ReLU(), nn.Linear(256, 3))
    ckpt = tmp_path / "best.pt"
    history = fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-2), train, val,
                  epochs=200, batch_size=8, early_stopping=3, checkpoint=ckpt,
                  generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert history.stopped_early and len(history.val) < 200
    assert len(history.val) == history.best_epoch + 1 + 3
    losses = [m["loss"] for m in history.val]
    assert history.best_value == min(losses) == history.best["loss"]
    saved = load_checkpoint(ckpt)
    assert saved["epoch"] == history.best_epoch and set(saved) >= {"model", "optimizer", "metrics", "step"}
    for name, tensor in model.state_dict().items():  # restore_best put the best weights back
        assert torch.equal(tensor, saved["model"][name])
    assert evaluate(model, nn.CrossEntropyLoss(), val)["loss"] == pytest.approx(history.best_value, rel=1e-6)


def test_checkpoint_without_validation_follows_the_last_epoch(tmp_path: Path) -> None:
    model = nn.Linear(6, 3)
    history = fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), _classification(),
                  epochs=2, checkpoint=tmp_path / "last.pt")  # fmt: skip
    saved = load_checkpoint(tmp_path / "last.pt")
    assert saved["epoch"] == 1 and saved["step"] == history.steps == 8
    assert saved["metrics"]["train_loss"] == history.train_loss[-1]
    assert torch.equal(saved["model"]["weight"], model.weight.detach())


def test_monitor_accuracy_and_min_delta() -> None:
    train, val = _classification(400, 0), _classification(200, 1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 3))
    history = fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-2), train, val,
                  epochs=15, batch_size=32, monitor="accuracy", early_stopping=2, min_delta=0.5)  # fmt: skip
    # Nothing improves accuracy by 0.5 after the first epoch: stop after epochs 0, 1, 2.
    assert history.stopped_early and len(history.val) == 3 and history.best_epoch == 0


def test_seeded_fit_repeats_exactly_with_augmentation_and_batch_norm() -> None:
    data = glyphs(300, seed=0)

    def run() -> list[float]:
        torch.manual_seed(0)
        enc = MnistCNN(batch_norm=True, dropout=0.2)
        model = nn.Sequential(enc, nn.Linear(enc.out_features, 10))
        h = fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.05, momentum=0.9), data,
                data, epochs=2, batch_size=64, augment=Augment(crop_padding=2),
                generator=torch.Generator().manual_seed(0))  # fmt: skip
        return [*h.train_loss, h.val[-1]["loss"]]

    assert run() == run()


def test_evaluate_uses_eval_mode_and_does_not_depend_on_batch_size() -> None:
    data = _classification(250)
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.Dropout(0.5), nn.Linear(16, 3))
    model.train()
    a = evaluate(model, nn.CrossEntropyLoss(), data, batch_size=7)
    b = evaluate(model, nn.CrossEntropyLoss(), data, batch_size=250)
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-5) and a["accuracy"] == b["accuracy"]
    assert model.training  # mode restored


def test_logs_train_and_eval_scalars(tmp_path: Path) -> None:
    train, val = _classification(320, 0), _classification(100, 1)
    model = nn.Linear(6, 3)
    with RunLogger("toy", "fit", 0, {"lr": 0.1}, root=tmp_path, progress=False, metrics=("eval/accuracy",)) as log:
        fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), train, val, epochs=3,
            batch_size=32, logger=log, log_every=5)  # fmt: skip
    events = EventAccumulator(str(log.run_dir))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "eval/loss", "eval/accuracy", "charts/learning_rate"} <= tags
    assert [e.step for e in events.Scalars("eval/accuracy")] == [10, 20, 30]
    assert len(events.Scalars("train/loss")) == 6


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(early_stopping=2), "early_stopping needs val_data"),
        (dict(task="regression", monitor="accuracy"), "monitor='accuracy' needs task='classification'"),
        (dict(task="ranking"), "unknown task 'ranking'"),
        (dict(epochs=0), "epochs must be an integer >= 1, got 0"),
        (dict(clip_grad_norm=0.0), "clip_grad_norm must be > 0"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict, match: str) -> None:
    model = nn.Linear(6, 3)
    with pytest.raises(ValueError, match=match):
        fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), _classification(), **kwargs)


def test_unreduced_loss_and_divergence_are_reported() -> None:
    model = nn.Linear(6, 3)
    with pytest.raises(ValueError, match="must return a scalar"):
        fit(model, nn.CrossEntropyLoss(reduction="none"), optim.SGD(model.parameters(), lr=0.1), _classification())
    data, _, _ = linear_data(64, 3, seed=0)
    reg = nn.Sequential(nn.Linear(3, 1), _Squeeze()).double()
    with pytest.raises(FloatingPointError, match="training loss became"):
        fit(reg, nn.MSELoss(), optim.SGD(reg.parameters(), lr=50.0), data, epochs=50, batch_size=8,
            task="regression", log_every=8)  # fmt: skip


@pytest.mark.slow
def test_cnn_reaches_97_percent_on_the_glyph_task_within_five_epochs() -> None:
    torch.manual_seed(0)
    train, val = glyphs(12_000, seed=1).split(2_000, torch.Generator().manual_seed(0))
    test = glyphs(4_000, seed=2)
    enc = MnistCNN()
    model = nn.Sequential(enc, nn.Linear(enc.out_features, 10))
    fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-3), train, val, epochs=5,
        batch_size=64, generator=torch.Generator().manual_seed(0))  # fmt: skip
    result = evaluate(model, nn.CrossEntropyLoss(), test)
    assert result["accuracy"] >= 0.97, result


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fit_on_cuda_moves_cpu_data_once_and_learns() -> None:
    train, val = _classification(400, 0), _classification(200, 1)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 3)).cuda()
    history = fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-2), train, val, epochs=20)
    assert history.best["accuracy"] > 0.9
