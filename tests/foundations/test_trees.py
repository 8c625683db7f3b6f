"""CART from scratch against scikit-learn (a dev-only reference), hand-checked cases and bad input.

scikit-learn breaks ties between splits of equal gain by a random order of the features drawn
per node, ours by the order of a permutation from ``random_state`` (the identity by default).
Where a dataset has such ties the two can build different, equally good trees; the tests then
check that ours is one of the trees scikit-learn builds (some ``random_state`` of it gives the
same held-out predictions and importances), and on data without ties that the trees are equal
with scikit-learn's first seed.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from foundations.trees import DecisionTreeClassifier, DecisionTreeRegressor

sklearn = pytest.importorskip("sklearn")
from sklearn import datasets  # noqa: E402
from sklearn import tree as sk  # noqa: E402

SEEDS = range(200)


def _split(n: int) -> tuple[np.ndarray, np.ndarray]:
    train = np.arange(n) % 4 != 0
    return train, ~train


def _same(ours, theirs, x_test: np.ndarray) -> bool:
    a, b = ours.predict(x_test).numpy(), theirs.predict(x_test)
    same = np.array_equal(a, b) if a.dtype.kind in "iu" else np.allclose(a, b, rtol=0, atol=1e-9)
    return same and np.abs(ours.feature_importances_.numpy() - theirs.feature_importances_).max() < 1e-6


def _one_of_sklearns(ours_class, theirs_class, x, y, weights=None, seeds=SEEDS, **settings) -> int | None:
    """The first scikit-learn seed whose tree equals ours on held-out data, or None."""
    train, test = _split(len(y))
    w = None if weights is None else weights[train]
    ours = ours_class(**settings).fit(x[train], y[train], sample_weight=w)
    for seed in seeds:
        theirs = theirs_class(random_state=seed, **settings).fit(x[train], y[train], sample_weight=w)
        if _same(ours, theirs, x[test]):
            return seed
    return None


@pytest.mark.parametrize("criterion", ["gini", "entropy"])
@pytest.mark.parametrize("max_depth", [2, 3, 4, None])
@pytest.mark.parametrize("min_samples_leaf", [1, 5])
def test_iris_trees_are_scikit_learns(criterion, max_depth, min_samples_leaf):
    x, y = datasets.load_iris(return_X_y=True)
    seed = _one_of_sklearns(DecisionTreeClassifier, sk.DecisionTreeClassifier, x, y, criterion=criterion,
                            max_depth=max_depth, min_samples_leaf=min_samples_leaf)
    assert seed is not None


@pytest.mark.parametrize(("criterion", "max_depth", "min_samples_leaf"), [
    ("gini", 2, 1), ("gini", 3, 1), ("gini", 3, 5), ("entropy", 3, 5), ("entropy", 4, 1), ("entropy", None, 1),
])
def test_breast_cancer_trees_are_scikit_learns(criterion, max_depth, min_samples_leaf):
    x, y = datasets.load_breast_cancer(return_X_y=True)
    seed = _one_of_sklearns(DecisionTreeClassifier, sk.DecisionTreeClassifier, x, y, criterion=criterion,
                            max_depth=max_depth, min_samples_leaf=min_samples_leaf)
    assert seed is not None


@pytest.mark.parametrize("criterion", ["gini", "entropy"])
@pytest.mark.parametrize("min_samples_leaf", [20, 40])
def test_generated_three_class_trees_equal_scikit_learns_node_for_node(criterion, min_samples_leaf):
    """Continuous features, three classes: the matching scikit-learn tree has our every node's
    impurity, threshold and class fractions (ties remain near pure nodes, where several features
    cut off the same few samples)."""
    x, y = datasets.make_classification(1200, 10, n_informative=6, n_classes=3, random_state=0)
    seed = _one_of_sklearns(DecisionTreeClassifier, sk.DecisionTreeClassifier, x, y, criterion=criterion,
                            min_samples_leaf=min_samples_leaf)
    assert seed is not None
    train, test = _split(len(y))
    ours = DecisionTreeClassifier(criterion=criterion, min_samples_leaf=min_samples_leaf).fit(x[train], y[train])
    theirs = sk.DecisionTreeClassifier(criterion=criterion, min_samples_leaf=min_samples_leaf,
                                       random_state=seed).fit(x[train], y[train])
    np.testing.assert_allclose(ours.impurity.numpy(), theirs.tree_.impurity, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.threshold.numpy(), np.where(theirs.tree_.feature < 0, -2.0, theirs.tree_.threshold))
    np.testing.assert_allclose(ours.predict_proba(x[test]).numpy(), theirs.predict_proba(x[test]), atol=1e-12)


@pytest.mark.parametrize("min_samples_leaf", [5, 20])
def test_regression_trees_are_equal(min_samples_leaf):
    x, y = datasets.make_regression(600, 8, noise=5.0, random_state=0)
    train, test = _split(len(y))
    ours = DecisionTreeRegressor(min_samples_leaf=min_samples_leaf).fit(x[train], y[train])
    theirs = sk.DecisionTreeRegressor(min_samples_leaf=min_samples_leaf, random_state=0).fit(x[train], y[train])
    assert _same(ours, theirs, x[test])
    np.testing.assert_allclose(ours.impurity.numpy(), theirs.tree_.impurity, rtol=1e-9)
    assert ours.get_depth() == theirs.get_depth() and ours.get_n_leaves() == theirs.get_n_leaves()


def test_duplicate_values_ties_and_sample_weights():
    """Features rounded to one decimal (many equal values within a feature, splits tied across
    features) with random sample weights, for both kinds of tree."""
    rng = np.random.default_rng(0)
    x, y = datasets.make_classification(800, 6, n_informative=4, random_state=1)
    x = np.round(x, 1)
    w = rng.uniform(0.2, 3.0, len(y))
    assert _one_of_sklearns(DecisionTreeClassifier, sk.DecisionTreeClassifier, x, y, weights=w, max_depth=4) is not None
    assert _one_of_sklearns(DecisionTreeClassifier, sk.DecisionTreeClassifier, x, y, weights=w,
                            min_samples_leaf=10, criterion="entropy") is not None
    xr, yr = datasets.make_regression(800, 6, noise=10.0, random_state=2)
    xr = np.round(xr, 1)
    assert _one_of_sklearns(DecisionTreeRegressor, sk.DecisionTreeRegressor, xr, yr, weights=w, max_depth=5) is not None


def test_best_first_growth_under_max_leaf_nodes():
    x, y = datasets.make_classification(1000, 8, n_informative=5, random_state=3)
    for leaves in (2, 5, 12):
        seed = _one_of_sklearns(DecisionTreeClassifier, sk.DecisionTreeClassifier, x, y, max_leaf_nodes=leaves)
        assert seed is not None, leaves
        assert DecisionTreeClassifier(max_leaf_nodes=leaves).fit(x, y).get_n_leaves() == leaves


def test_pruning_path_and_pruned_trees_match():
    x, y = datasets.load_breast_cancer(return_X_y=True)
    ours = DecisionTreeClassifier(criterion="entropy").cost_complexity_pruning_path(x, y)
    matched = False
    for seed in SEEDS:
        theirs = sk.DecisionTreeClassifier(criterion="entropy", random_state=seed).cost_complexity_pruning_path(x, y)
        if len(theirs.ccp_alphas) == len(ours.ccp_alphas) and np.allclose(theirs.ccp_alphas, ours.ccp_alphas.numpy(),
                                                                          rtol=0, atol=1e-9):
            np.testing.assert_allclose(ours.impurities.numpy(), theirs.impurities, rtol=0, atol=1e-9)
            matched = True
            break
    assert matched
    assert ours.ccp_alphas[0] == 0 and bool((ours.ccp_alphas.diff() >= 0).all())
    # the path's last subtree is the root alone: its impurity is the root's
    root = DecisionTreeClassifier(criterion="entropy").fit(x, y).impurity[0]
    assert float(ours.impurities[-1]) == pytest.approx(float(root), abs=1e-12)
    # regression, no ties: exact with scikit-learn's first seed, and pruning at an alpha of the path
    xr, yr = datasets.make_regression(400, 5, noise=5.0, random_state=0)
    path = DecisionTreeRegressor(min_samples_leaf=5).cost_complexity_pruning_path(xr, yr)
    ref = sk.DecisionTreeRegressor(min_samples_leaf=5, random_state=0).cost_complexity_pruning_path(xr, yr)
    np.testing.assert_allclose(path.ccp_alphas.numpy(), ref.ccp_alphas, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(path.impurities.numpy(), ref.impurities, rtol=1e-9, atol=1e-9)
    a = path.ccp_alphas
    for k in (len(a) // 2, len(a) - 3):  # between two alphas of the path: no rounding at the boundary
        alpha = float(a[k] + a[k + 1]) / 2
        ours_pruned = DecisionTreeRegressor(min_samples_leaf=5, ccp_alpha=alpha).fit(xr, yr)
        theirs_pruned = sk.DecisionTreeRegressor(min_samples_leaf=5, ccp_alpha=alpha, random_state=0).fit(xr, yr)
        assert ours_pruned.get_n_leaves() == theirs_pruned.get_n_leaves()
        assert _same(ours_pruned, theirs_pruned, xr)


# ------------------------------------------------------------------------------ by hand
def test_xor_needs_depth_two_and_a_pure_node_stops():
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]).repeat(5, 1)
    y = torch.tensor([0, 1, 1, 0]).repeat(5)
    stump = DecisionTreeClassifier(max_depth=1).fit(x, y)
    assert (stump.predict(x) == y).float().mean() == 0.5  # one test cannot separate XOR
    tree = DecisionTreeClassifier().fit(x, y)
    assert tree.get_depth() == 2 and tree.get_n_leaves() == 4 and torch.equal(tree.predict(x), y)
    assert torch.equal(tree.threshold[0], torch.tensor(0.5, dtype=torch.float64))  # halfway between 0 and 1
    assert all(float(tree.impurity[i]) == 0.0 for i in range(tree.node_count) if tree.children_left[i] == -1)
    pure = DecisionTreeClassifier().fit(torch.randn(30, 3), torch.full((30,), 7))
    assert pure.node_count == 1 and pure.predict(torch.randn(4, 3)).tolist() == [7] * 4


def test_min_samples_leaf_holds_in_every_leaf_and_paths_end_in_leaves():
    x, y = datasets.make_classification(500, 5, random_state=4)
    for leaf in (1, 7, 33):
        tree = DecisionTreeClassifier(min_samples_leaf=leaf).fit(x, y)
        leaves = tree.children_left == -1
        assert int(tree.n_node_samples[leaves].min()) >= leaf
        assert torch.equal(torch.bincount(tree.apply(x), minlength=tree.node_count)[leaves], tree.n_node_samples[leaves])
    path = tree.decision_path(x[:10])
    assert path[:, 0].all() and torch.equal(path[torch.arange(10), tree.apply(x[:10])], torch.ones(10, dtype=torch.bool))
    assert (path.sum(1) - 1 <= tree.get_depth()).all()


def test_text_picture_and_state_dict(tmp_path):
    x, y = datasets.load_iris(return_X_y=True)
    tree = DecisionTreeClassifier(max_depth=2).fit(x, y)
    names = ["sepal length", "sepal width", "petal length", "petal width"]
    text = tree.export_text(feature_names=names, class_names=["setosa", "versicolor", "virginica"])
    assert text.splitlines()[0] == "|--- petal length <= 2.45"
    assert "|   |--- class: setosa" in text and text.count("class:") == tree.get_n_leaves()
    figure = tree.plot(feature_names=names, class_names=["setosa", "versicolor", "virginica"])
    figure.savefig(tmp_path / "tree.png")
    assert (tmp_path / "tree.png").stat().st_size > 5_000
    buffer = io.BytesIO()
    torch.save(tree.state_dict(), buffer)
    buffer.seek(0)
    loaded = DecisionTreeClassifier().load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(loaded.predict(x), tree.predict(x)) and loaded.export_text() == tree.export_text()
    reg = DecisionTreeRegressor(max_depth=2).fit(x[:, :3], x[:, 3])
    again = DecisionTreeRegressor().load_state_dict(reg.state_dict())
    assert torch.equal(again.predict(x[:, :3]), reg.predict(x[:, :3])) and "value:" in reg.export_text()


@pytest.mark.parametrize(("make", "message"), [
    (lambda: DecisionTreeClassifier(max_depth=0), "max_depth must be an integer >= 1 or None, got 0"),
    (lambda: DecisionTreeClassifier(min_samples_leaf=0), "min_samples_leaf must be an integer >= 1"),
    (lambda: DecisionTreeClassifier(criterion="mse"), "criterion must be 'gini' or 'entropy'"),
    (lambda: DecisionTreeClassifier(ccp_alpha=-1.0), "ccp_alpha must be >= 0"),
    (lambda: DecisionTreeClassifier().fit(torch.tensor([[0.0], [float("nan")]]), torch.tensor([0, 1])),
     "features must be finite, got nan at sample 1, feature 0"),
    (lambda: DecisionTreeClassifier().fit(torch.tensor([[0.0], [float("inf")]]), torch.tensor([0, 1])),
     "features must be finite, got inf"),
    (lambda: DecisionTreeClassifier().fit(torch.zeros(4, 2), torch.tensor([0.5, 1.0, 0.0, 1.0])),
     "a classifier's target must be integer classes, got dtype torch.float32"),
    (lambda: DecisionTreeClassifier().fit(torch.zeros(4, 2), torch.zeros(4, 2, dtype=torch.long)),
     r"target must have shape \[4\]"),
    (lambda: DecisionTreeRegressor().fit(torch.zeros(4, 2), torch.zeros(3)), r"target must have shape \[4\]"),
    (lambda: DecisionTreeClassifier().predict(torch.zeros(2, 2)), "not fitted yet; call fit"),
    (lambda: DecisionTreeClassifier().fit(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1])).predict(torch.zeros(2, 3)),
     "fitted on 2 features, got 3"),
    (lambda: DecisionTreeClassifier().fit(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]), sample_weight=-torch.ones(4)),
     "sample_weight must be finite and >= 0"),
])
def test_bad_input_is_one_clear_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()
