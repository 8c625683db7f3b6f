"""Linear and logistic regression on generated data: closed form against gradient descent.

    python -m experiments.regression
    python -m experiments.regression --features 20 --noise 1.0 --l2 0.1 --optimizer adam --lr 0.05

Linear regression: the least-squares (or ridge, ``--l2``) solution by the normal equations,
then the same model trained by full-batch gradient descent with a from-scratch optimizer; the
script prints both and the largest coefficient difference (it shrinks to ~1e-6 with enough
steps). Logistic regression: a linearly separable two-class problem, trained by mini-batch
gradient descent; prints train/test accuracy and the angle to the true separating hyperplane.
TensorBoard: ``linear/train_loss``, ``logistic/train_loss``, ``logistic/test_accuracy``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from experiments.common import parse_and_run
from foundations import optim
from foundations.batches import Labelled
from foundations.checks import positive_int
from foundations.runlog import RunLogger
from foundations.seeding import seed_everything
from foundations.synthetic import linear_data, separable_data
from foundations.train import evaluate, fit


@dataclasses.dataclass(frozen=True)
class RegressionArgs:
    """Options of the regression experiment."""

    samples: int = 500
    features: int = 5
    noise: float = 0.5
    """std of the Gaussian noise on linear-regression targets."""
    l2: float = 0.0
    """ridge penalty ``l2 * |w|^2`` (not on the bias), in both the closed form and the loss."""
    optimizer: Literal["sgd", "adam", "rmsprop", "adagrad"] = "sgd"
    lr: float = 0.1
    steps: int = 500
    """full-batch gradient steps for linear regression."""
    margin: float = 0.2
    """half-gap between the logistic-regression classes."""
    logistic_epochs: int = 20
    batch_size: int = 64
    seed: int = 1
    root: str = "runs"
    progress: bool = False

    def __post_init__(self) -> None:
        positive_int("samples", self.samples)
        positive_int("features", self.features)
        positive_int("steps", self.steps)
        if self.l2 < 0:
            raise ValueError(f"l2 must be >= 0, got {self.l2}")


def closed_form(x: Tensor, y: Tensor, l2: float = 0.0) -> tuple[Tensor, Tensor]:
    """Minimiser of ``mean((x w + b - y)^2) + l2 |w|^2``: returns ``w [features]`` and ``b []``.

    Solves the normal equations ``(X^T X / n + l2 P) theta = X^T y / n`` for ``theta = [w; b]``
    with ``X = [x, 1]`` and ``P`` the identity without the bias entry (the bias is not penalised).
    """
    n, d = x.shape
    design = torch.cat([x, torch.ones(n, 1, dtype=x.dtype, device=x.device)], dim=1)
    gram = design.T @ design / n
    penalty = torch.eye(d + 1, dtype=x.dtype, device=x.device)
    penalty[d, d] = 0.0
    theta = torch.linalg.solve(gram + l2 * penalty, design.T @ y / n)
    return theta[:d], theta[d]


class _Linear(nn.Module):
    """``x [batch, features] -> [batch]``."""

    def __init__(self, features: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.linear = nn.Linear(features, 1, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).squeeze(-1)


def _optimizer(args: RegressionArgs, params: Any) -> torch.optim.Optimizer:
    cls = {"sgd": optim.SGD, "adam": optim.Adam, "rmsprop": optim.RMSProp, "adagrad": optim.AdaGrad}[args.optimizer]
    return cls(params, lr=args.lr)


def run(args: RegressionArgs) -> dict[str, Any]:
    """Both experiments; returns the closed-form and fitted coefficients and the accuracies."""
    seed_everything(args.seed)
    data, w_true, b_true = linear_data(args.samples, args.features, args.noise, seed=args.seed)
    w_cf, b_cf = closed_form(data.x, data.y, args.l2)
    model = _Linear(args.features, torch.float64)
    mse = nn.MSELoss()

    def ridge_loss(out: Tensor, y: Tensor) -> Tensor:
        return mse(out, y) + args.l2 * model.linear.weight.pow(2).sum()

    with RunLogger("generated", "regression", args.seed, args, root=args.root, progress=args.progress,
                   metrics=("logistic/test_accuracy",)) as logger:  # fmt: skip
        opt = _optimizer(args, model.parameters())
        for step in range(args.steps):  # full batch: one step per pass
            loss = ridge_loss(model(data.x), data.y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % 10 == 0 or step == args.steps - 1:
                logger.log_scalar("linear/train_loss", loss.item(), step)
        w_gd = model.linear.weight.detach().squeeze(0)
        b_gd = model.linear.bias.detach().squeeze(0)
        max_diff = float(torch.cat([w_gd - w_cf, (b_gd - b_cf)[None]]).abs().max())

        train, w_sep = separable_data(args.samples, args.features, args.margin, seed=args.seed)
        test_x = torch.randn(2000, args.features, generator=torch.Generator().manual_seed(args.seed + 1))
        test = Labelled(test_x, (test_x @ w_sep > 0).long())
        clf = _Linear(args.features, torch.float32)
        bce = nn.BCEWithLogitsLoss()
        history = fit(clf, lambda out, y: bce(out, y.float()), _optimizer(args, clf.parameters()), train, test,
                      args.logistic_epochs, args.batch_size, generator=torch.Generator().manual_seed(args.seed),
                      restore_best=False)  # fmt: skip
        for epoch, metrics in enumerate(history.val):
            logger.log_scalar("logistic/train_loss", history.train_loss[epoch], epoch)
            logger.log_scalar("logistic/test_accuracy", metrics["accuracy"], epoch)
        train_acc = evaluate(clf, lambda out, y: bce(out, y.float()), train)["accuracy"]
        normal = clf.linear.weight.detach().squeeze(0)
        angle = math.degrees(math.acos(float(torch.clamp(normal @ w_sep / normal.norm(), -1.0, 1.0))))
    return {
        "run_dir": logger.run_dir,
        "true": (w_true, b_true),
        "closed_form": (w_cf, b_cf),
        "gradient_descent": (w_gd, b_gd),
        "max_abs_diff": max_diff,
        "logistic_train_accuracy": train_acc,
        "logistic_test_accuracy": history.val[-1]["accuracy"],
        "angle_degrees": angle,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command-line entry point; prints both solutions and the logistic-regression accuracies."""
    _, r = parse_and_run(RegressionArgs, run, argv, __doc__)
    fmt = lambda t: " ".join(f"{v:+.5f}" for v in t.tolist())  # noqa: E731
    print("linear regression        w                                          b")
    for name in ("true", "closed_form", "gradient_descent"):
        w, b = r[name]
        print(f"  {name:<20} {fmt(w)}   {b.item():+.5f}")
    print(f"  max |closed form - gradient descent| = {r['max_abs_diff']:.2e}")
    print(f"logistic regression: train accuracy {r['logistic_train_accuracy']:.4f}, "
          f"test accuracy {r['logistic_test_accuracy']:.4f}, "
          f"angle to the true hyperplane {r['angle_degrees']:.1f} degrees")  # fmt: skip
    print(f"logs: {r['run_dir']}")
    return r


if __name__ == "__main__":
    main()
