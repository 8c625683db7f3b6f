"""Decision trees (CART, Breiman et al. 1984), written to be read, over torch tensors.

    tree = DecisionTreeClassifier(max_depth=3).fit(x, y)        # x [n, features] float, y [n] int
    tree.predict(x_new)                                          # [m] classes
    tree.predict_proba(x_new)                                    # [m, classes]
    print(tree.export_text(feature_names=["cart position", ...]))
    tree.plot(feature_names=..., class_names=...)                # a matplotlib figure of the tree
    path = tree.cost_complexity_pruning_path(x, y)               # alphas and leaf impurities
    DecisionTreeClassifier(ccp_alpha=path.ccp_alphas[-3]).fit(x, y)

A node splits its samples on one feature at one threshold (``x[:, f] <= t`` goes left) chosen to
reduce the weighted impurity most: Gini or entropy (in bits) of the class weights for
classification, the weighted variance of the target (squared error) for regression. The search
is vectorised: at each node every feature is sorted once, the class weights (or the target's
sums) are accumulated along the sorted order, and the impurity of every threshold of every
feature comes out of those cumulative sums at once.

The rules follow scikit-learn's ``DecisionTreeClassifier`` / ``Regressor`` (the tests compare
the two on held-out data): a threshold lies halfway between two consecutive distinct values
(values closer than 1e-7 count as equal); ``min_samples_leaf`` counts samples, not weights; a
node is a leaf when it is pure, too deep, too small (``min_samples_split``, twice
``min_samples_leaf``) or when its best split reduces the impurity, weighted by the node's share
of all the weight, by less than ``min_impurity_decrease``; with ``max_leaf_nodes`` the tree grows
best first (the node whose split reduces the impurity most is split next), else depth first.
Ties: among splits of equal gain the first wins, features in the order of a permutation drawn
from ``random_state`` (the identity when it is ``None``) and thresholds in increasing order.
scikit-learn draws its own permutation, so on data with equal-gain splits the two can pick
different (equally good) trees. Features are compared in float32, as scikit-learn stores them.

Minimal cost-complexity pruning (Breiman et al. 1984, ch. 3): ``R(t)`` is a node's impurity times
its share of the weight, ``R(T_t)`` the same summed over the leaves below it; the weakest link is
the internal node with the smallest ``(R(t) - R(T_t)) / (leaves(T_t) - 1)``; pruning it (making
it a leaf) and repeating gives the nested sequence of subtrees and the alphas at which each
becomes optimal (``cost_complexity_pruning_path``); ``ccp_alpha`` keeps pruning while the weakest
link's alpha is at most ``ccp_alpha``.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor

__all__ = ["DecisionTreeClassifier", "DecisionTreeRegressor", "PruningPath"]

LEAF = -1
FEATURE_THRESHOLD = 1e-7  # values closer than this are one value (scikit-learn's FEATURE_THRESHOLD)
EPSILON = torch.finfo(torch.float64).eps


@dataclasses.dataclass(frozen=True)
class PruningPath:
    """``ccp_alphas [k]``: the alphas at which the pruned subtrees become optimal (increasing,
    the first 0); ``impurities [k]``: the total leaf impurity ``sum R(leaf)`` of each subtree."""

    ccp_alphas: Tensor
    impurities: Tensor


@dataclasses.dataclass
class _Split:
    feature: int
    threshold: float
    position: int  # samples going left, in the node's sorted order of ``feature``
    improvement: float  # weighted impurity decrease (scikit-learn's ``impurity_improvement``)
    left_impurity: float
    right_impurity: float


class _Tree:
    """Shared growth, pruning, traversal and export; subclasses give the criterion and the leaf value."""

    criterion: str

    def __init__(self, *, max_depth: int | None = None, min_samples_split: int = 2, min_samples_leaf: int = 1,
                 max_leaf_nodes: int | None = None, min_impurity_decrease: float = 0.0, ccp_alpha: float = 0.0,
                 random_state: int | None = None) -> None:
        if max_depth is not None and (isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 1):
            raise ValueError(f"max_depth must be an integer >= 1 or None, got {max_depth!r}")
        if isinstance(min_samples_split, bool) or not isinstance(min_samples_split, int) or min_samples_split < 2:
            raise ValueError(f"min_samples_split must be an integer >= 2, got {min_samples_split!r}")
        if isinstance(min_samples_leaf, bool) or not isinstance(min_samples_leaf, int) or min_samples_leaf < 1:
            raise ValueError(f"min_samples_leaf must be an integer >= 1, got {min_samples_leaf!r}")
        if max_leaf_nodes is not None and (not isinstance(max_leaf_nodes, int) or max_leaf_nodes < 2):
            raise ValueError(f"max_leaf_nodes must be an integer >= 2 or None, got {max_leaf_nodes!r}")
        if not min_impurity_decrease >= 0:
            raise ValueError(f"min_impurity_decrease must be >= 0, got {min_impurity_decrease!r}")
        if not ccp_alpha >= 0:
            raise ValueError(f"ccp_alpha must be >= 0, got {ccp_alpha!r}")
        self.max_depth, self.min_samples_split, self.min_samples_leaf = max_depth, min_samples_split, min_samples_leaf
        self.max_leaf_nodes, self.min_impurity_decrease, self.ccp_alpha = max_leaf_nodes, min_impurity_decrease, ccp_alpha
        self.random_state = random_state
        self.n_features_in_: int | None = None
        # The fitted tree, one entry per node (node 0 is the root; depth-first numbering):
        self.children_left: Tensor | None = None  # [nodes] int64, LEAF (-1) at leaves
        self.children_right: Tensor | None = None
        self.feature: Tensor | None = None  # [nodes] int64 (-1 at leaves)
        self.threshold: Tensor | None = None  # [nodes] float64
        self.impurity: Tensor | None = None  # [nodes] float64
        self.n_node_samples: Tensor | None = None  # [nodes] int64
        self.weighted_n_node_samples: Tensor | None = None  # [nodes] float64
        self.value: Tensor | None = None  # [nodes, outputs] float64 (class fractions, or the mean target)

    # ----------------------------------------------------------------- what subclasses define
    def _targets(self, y: Tensor, n: int) -> Tensor:
        """``y`` checked and turned into per-sample statistics ``[n, k]`` that add up over samples."""
        raise NotImplementedError

    def _impurity(self, stats: Tensor, weight: Tensor) -> Tensor:
        """Impurity of nodes from their summed statistics ``[..., k]`` and weights ``[...]``."""
        raise NotImplementedError

    def _proxy(self, left: Tensor, right: Tensor, w_left: Tensor, w_right: Tensor) -> Tensor:
        """A quantity that orders splits as ``-(w_left * impurity_left + w_right * impurity_right)``."""
        return -(w_left * self._impurity(left, w_left) + w_right * self._impurity(right, w_right))

    def _leaf_value(self, stats: Tensor, weight: Tensor) -> Tensor:
        raise NotImplementedError

    # ------------------------------------------------------------------------------ fitting
    @staticmethod
    def _features(x: Any, n_features: int | None = None) -> Tensor:
        x = torch.as_tensor(x)
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"features must be a non-empty 2-d array [samples, features], got shape {list(x.shape)}")
        if not (x.is_floating_point() or x.dtype in (torch.int32, torch.int64, torch.int16, torch.int8, torch.uint8,
                                                      torch.bool)):
            raise ValueError(f"features must be numbers, got dtype {x.dtype}")
        x = x.detach().to("cpu", torch.float32)  # scikit-learn's trees compare float32 features too
        if not torch.isfinite(x).all():
            bad = (~torch.isfinite(x)).nonzero()[0].tolist()
            raise ValueError(f"features must be finite, got {x[bad[0], bad[1]].item()} at sample {bad[0]}, "
                             f"feature {bad[1]}")
        if n_features is not None and x.shape[1] != n_features:
            raise ValueError(f"the tree was fitted on {n_features} features, got {x.shape[1]}")
        return x

    def fit(self, x: Any, y: Any, sample_weight: Any = None) -> _Tree:
        """Grow the tree on ``x [n, features]`` and ``y [n]`` (``sample_weight [n]`` >= 0,
        default 1), then prune it at ``ccp_alpha``. Returns ``self``."""
        x = self._features(x)
        n = x.shape[0]
        stats = self._targets(torch.as_tensor(y), n)
        w = self._weights(sample_weight, n)
        self.n_features_in_ = x.shape[1]
        self._grow(x, stats * w[:, None], w)
        if self.ccp_alpha > 0:
            self._prune(self.ccp_alpha)
        return self

    @staticmethod
    def _weights(sample_weight: Any, n: int) -> Tensor:
        if sample_weight is None:
            return torch.ones(n, dtype=torch.float64)
        w = torch.as_tensor(sample_weight).detach().to("cpu", torch.float64)
        if w.shape != (n,):
            raise ValueError(f"sample_weight must have shape [{n}], got {list(w.shape)}")
        if not torch.isfinite(w).all() or (w < 0).any():
            raise ValueError("sample_weight must be finite and >= 0")
        if not w.sum() > 0:
            raise ValueError("sample_weight must not all be zero")
        return w

    def _best_split(self, x: Tensor, stats: Tensor, w: Tensor, order: Sequence[int]) -> _Split | None:
        """The best split of one node's samples ``x [n, d]`` (weighted statistics ``stats [n, k]``,
        weights ``w [n]``), all thresholds of all features at once; ``None`` when none is allowed."""
        n = x.shape[0]
        leaf = self.min_samples_leaf
        if n < 2 * leaf:
            return None
        features = torch.as_tensor(list(order), dtype=torch.long)
        xs, idx = torch.sort(x[:, features], dim=0, stable=True)  # [n, d] each feature in increasing order
        cum_stats = torch.cumsum(stats[idx], dim=0)  # [n, d, k]: statistics of the first i+1 samples
        cum_w = torch.cumsum(w[idx], dim=0)  # [n, d]
        total_stats, total_w = cum_stats[-1], cum_w[-1]
        # a split after sorted position i - 1 (i samples left), i = 1..n-1
        left, w_left = cum_stats[:-1], cum_w[:-1]  # [n-1, d, k], [n-1, d]
        right, w_right = total_stats - left, total_w - w_left
        i = torch.arange(1, n).unsqueeze(1)  # [n-1, 1] samples going left
        valid = (xs[1:].double() > xs[:-1].double() + FEATURE_THRESHOLD) & (i >= leaf) & (n - i >= leaf)
        if not valid.any():
            return None
        proxy = self._proxy(left, right, w_left, w_right)
        proxy = torch.where(valid, proxy, torch.tensor(-torch.inf, dtype=proxy.dtype))
        best = int(torch.argmax(proxy.T.reshape(-1)))  # feature-major: the first feature, then the first threshold
        j, pos = divmod(best, n - 1)
        pos += 1
        lo, hi = float(xs[pos - 1, j]), float(xs[pos, j])
        threshold = lo / 2.0 + hi / 2.0
        if threshold == hi or threshold in (float("inf"), float("-inf")):
            threshold = lo
        w_node = float(total_w[j])
        imp = float(self._impurity(total_stats[j], total_w[j]))
        imp_l = float(self._impurity(left[pos - 1, j], w_left[pos - 1, j]))
        imp_r = float(self._impurity(right[pos - 1, j], w_right[pos - 1, j]))
        wl, wr = float(w_left[pos - 1, j]), float(w_right[pos - 1, j])
        improvement = w_node / self._total_weight * (imp - wr / w_node * imp_r - wl / w_node * imp_l)
        return _Split(int(features[j]), threshold, pos, improvement, imp_l, imp_r)

    def _grow(self, x: Tensor, stats: Tensor, w: Tensor) -> None:
        """Grow from the root, depth first (node numbers in pre-order, left before right), or best
        first under ``max_leaf_nodes``."""
        self._total_weight = float(w.sum())
        d = x.shape[1]
        if self.random_state is None:
            order = list(range(d))
        else:
            order = torch.randperm(d, generator=torch.Generator().manual_seed(int(self.random_state))).tolist()
        nodes: list[dict[str, Any]] = []
        max_depth = self.max_depth if self.max_depth is not None else 2**31

        def make_node(samples: Tensor, depth: int, parent: int, is_left: bool) -> dict[str, Any]:
            s, ws = stats[samples].sum(0), w[samples].sum()
            node = {"samples": samples, "depth": depth, "impurity": float(self._impurity(s, ws)),
                    "n": int(samples.numel()), "w": float(ws), "value": self._leaf_value(s, ws), "left": LEAF,
                    "right": LEAF, "feature": -1, "threshold": -2.0, "split": None}
            n = node["n"]
            leaf = (depth >= max_depth or n < self.min_samples_split or n < 2 * self.min_samples_leaf
                    or node["impurity"] <= EPSILON)
            if not leaf:
                split = self._best_split(x[samples], stats[samples], w[samples], order)
                if split is not None and split.improvement + EPSILON >= self.min_impurity_decrease:
                    node["split"] = split
            nodes.append(node)
            if parent >= 0:
                nodes[parent]["left" if is_left else "right"] = len(nodes) - 1
            return node

        def children(index: int) -> tuple[Tensor, Tensor]:
            node = nodes[index]
            split, samples = node["split"], node["samples"]
            node["feature"], node["threshold"] = split.feature, split.threshold
            goes_left = x[samples, split.feature].double() <= split.threshold
            return samples[goes_left], samples[~goes_left]

        everything = torch.arange(x.shape[0])
        if self.max_leaf_nodes is None:  # depth first: a stack, left child on top
            stack = [(everything, 0, -1, True)]
            while stack:
                samples, depth, parent, is_left = stack.pop()
                make_node(samples, depth, parent, is_left)
                index = len(nodes) - 1
                if nodes[index]["split"] is not None:
                    left, right = children(index)
                    stack.append((right, depth + 1, index, False))
                    stack.append((left, depth + 1, index, True))
        else:  # best first: the frontier ordered by how much each node's split would gain
            make_node(everything, 0, -1, True)
            frontier: list[tuple[float, int, int]] = []
            counter = 0

            def push(index: int) -> None:
                nonlocal counter
                if nodes[index]["split"] is not None:
                    heapq.heappush(frontier, (-nodes[index]["split"].improvement, counter, index))
                    counter += 1

            push(0)
            splits_left = self.max_leaf_nodes - 1
            while frontier and splits_left > 0:
                _, _, index = heapq.heappop(frontier)
                left, right = children(index)
                depth = nodes[index]["depth"] + 1
                make_node(left, depth, index, True)
                push(len(nodes) - 1)
                make_node(right, depth, index, False)
                push(len(nodes) - 1)
                splits_left -= 1
            for _, _, index in frontier:  # never split: leaves
                nodes[index]["split"] = None
        self._store(nodes)

    def _store(self, nodes: list[dict[str, Any]]) -> None:
        self.children_left = torch.tensor([nd["left"] for nd in nodes], dtype=torch.long)
        self.children_right = torch.tensor([nd["right"] for nd in nodes], dtype=torch.long)
        self.feature = torch.tensor([nd["feature"] if nd["left"] != LEAF else -1 for nd in nodes], dtype=torch.long)
        self.threshold = torch.tensor([nd["threshold"] if nd["left"] != LEAF else -2.0 for nd in nodes],
                                      dtype=torch.float64)
        self.impurity = torch.tensor([nd["impurity"] for nd in nodes], dtype=torch.float64)
        self.n_node_samples = torch.tensor([nd["n"] for nd in nodes], dtype=torch.long)
        self.weighted_n_node_samples = torch.tensor([nd["w"] for nd in nodes], dtype=torch.float64)
        self.value = torch.stack([nd["value"] for nd in nodes])

    # ------------------------------------------------------------------------------ pruning
    def _weakest_links(self, alpha_limit: float | None) -> tuple[list[float], list[float], list[bool]]:
        """Prune weakest links one at a time (the lowest node number wins a tie) until the root is
        a leaf or, with ``alpha_limit``, the next link's alpha exceeds it. Returns the alphas and
        the total leaf impurities along the way (0 and the whole tree's first) and which nodes
        are leaves of the last subtree."""
        left, right = self.children_left.tolist(), self.children_right.tolist()
        nodes = len(left)
        r_node = (self.weighted_n_node_samples * self.impurity / self.weighted_n_node_samples[0]).tolist()
        parent = [-1] * nodes
        for i in range(nodes):
            if left[i] != LEAF:
                parent[left[i]] = parent[right[i]] = i
        is_leaf = [left[i] == LEAF for i in range(nodes)]
        in_tree = [True] * nodes
        r_branch, n_leaves = [0.0] * nodes, [0] * nodes
        for i in range(nodes):
            if is_leaf[i]:
                r_branch[i] = r_node[i]
                j = i
                while parent[j] != -1:
                    r_branch[parent[j]] += r_node[i]
                    n_leaves[parent[j]] += 1
                    j = parent[j]
        alphas, impurities = [0.0], [r_branch[0]]
        while not is_leaf[0]:
            candidates = [i for i in range(nodes) if in_tree[i] and not is_leaf[i]]
            links = [(r_node[i] - r_branch[i]) / (n_leaves[i] - 1) for i in candidates]
            best = min(range(len(links)), key=lambda k: (links[k], k))
            alpha, node = links[best], candidates[best]
            if alpha_limit is not None and alpha_limit < alpha:
                break
            stack = [left[node], right[node]]
            while stack:  # everything below the pruned node leaves the subtree
                j = stack.pop()
                in_tree[j] = False
                if left[j] != LEAF:
                    stack += [left[j], right[j]]
            is_leaf[node] = True
            removed, diff = n_leaves[node] - 1, r_node[node] - r_branch[node]
            n_leaves[node], r_branch[node] = 0, r_node[node]
            j = parent[node]
            while j != -1:
                n_leaves[j] -= removed
                r_branch[j] += diff
                j = parent[j]
            alphas.append(alpha)
            impurities.append(r_branch[0])
        return alphas, impurities, [is_leaf[i] and in_tree[i] for i in range(nodes)]

    def _prune(self, alpha: float) -> None:
        """Keep the subtree of minimal cost complexity at ``alpha`` (renumbered depth first)."""
        _, _, leaf = self._weakest_links(alpha)
        left, right = self.children_left.tolist(), self.children_right.tolist()
        keep: list[int] = []
        stack = [0]
        while stack:
            i = stack.pop()
            keep.append(i)
            if not leaf[i] and left[i] != LEAF:
                stack += [right[i], left[i]]
        new = {old: k for k, old in enumerate(keep)}
        keep_t = torch.tensor(keep, dtype=torch.long)
        self.children_left = torch.tensor([new[left[i]] if not leaf[i] else LEAF for i in keep], dtype=torch.long)
        self.children_right = torch.tensor([new[right[i]] if not leaf[i] else LEAF for i in keep], dtype=torch.long)
        self.feature = torch.where(self.children_left == LEAF, -1, self.feature[keep_t])
        self.threshold = torch.where(self.children_left == LEAF, -2.0, self.threshold[keep_t])
        for name in ("impurity", "n_node_samples", "weighted_n_node_samples", "value"):
            setattr(self, name, getattr(self, name)[keep_t])

    def cost_complexity_pruning_path(self, x: Any, y: Any, sample_weight: Any = None) -> PruningPath:
        """Grow a tree with this one's settings (``ccp_alpha`` aside) on the data and return the
        pruning path: the effective alphas and total leaf impurities of its nested subtrees."""
        grown = self._copy_settings(ccp_alpha=0.0).fit(x, y, sample_weight)
        alphas, impurities, _ = grown._weakest_links(None)
        return PruningPath(torch.tensor(alphas, dtype=torch.float64), torch.tensor(impurities, dtype=torch.float64))

    def _copy_settings(self, **changes: Any) -> _Tree:
        settings = {k: getattr(self, k) for k in ("max_depth", "min_samples_split", "min_samples_leaf",
                                                   "max_leaf_nodes", "min_impurity_decrease", "ccp_alpha",
                                                   "random_state")}
        settings.update(self._criterion_settings())
        settings.update(changes)
        return type(self)(**settings)

    def _criterion_settings(self) -> dict[str, Any]:
        return {}

    # ---------------------------------------------------------------------------- traversal
    def _check_fitted(self) -> None:
        if self.children_left is None:
            raise ValueError(f"this {type(self).__name__} is not fitted yet; call fit(x, y) first")

    def apply(self, x: Any) -> Tensor:
        """The leaf each sample of ``x [n, features]`` lands in: ``[n]`` node ids."""
        self._check_fitted()
        x = self._features(x, self.n_features_in_).double()
        node = torch.zeros(x.shape[0], dtype=torch.long)
        active = self.children_left[node] != LEAF
        while active.any():  # every sample one level down per pass: at most depth passes
            f, t = self.feature[node], self.threshold[node]
            goes_left = x.gather(1, f.clamp(min=0)[:, None]).squeeze(1) <= t
            step = torch.where(goes_left, self.children_left[node], self.children_right[node])
            node = torch.where(active, step, node)
            active = self.children_left[node] != LEAF
        return node

    def decision_path(self, x: Any) -> Tensor:
        """``[n, nodes]`` bool: the nodes each sample passes through, root to leaf."""
        leaves = self.apply(x)
        parent = torch.full((self.node_count,), -1, dtype=torch.long)
        internal = self.children_left != LEAF
        parent[self.children_left[internal]] = internal.nonzero().squeeze(1)
        parent[self.children_right[internal]] = internal.nonzero().squeeze(1)
        path = torch.zeros(leaves.shape[0], self.node_count, dtype=torch.bool)
        node = leaves.clone()
        rows = torch.arange(leaves.shape[0])
        while (node >= 0).any():
            ok = node >= 0
            path[rows[ok], node[ok]] = True
            node = torch.where(ok, parent[node.clamp(min=0)], node)
        return path

    @property
    def node_count(self) -> int:
        self._check_fitted()
        return int(self.children_left.numel())

    def get_depth(self) -> int:
        """Edges on the longest root-to-leaf path."""
        self._check_fitted()
        depth = [0] * self.node_count
        left, right = self.children_left.tolist(), self.children_right.tolist()
        for i in range(self.node_count):  # parents come before their children (depth-first numbering)
            if left[i] != LEAF:
                depth[left[i]] = depth[right[i]] = depth[i] + 1
        return max(depth)

    def get_n_leaves(self) -> int:
        self._check_fitted()
        return int((self.children_left == LEAF).sum())

    @property
    def feature_importances_(self) -> Tensor:
        """``[features]``: each feature's total weighted impurity decrease, normalised to sum 1."""
        self._check_fitted()
        imp = torch.zeros(self.n_features_in_, dtype=torch.float64)
        wi = self.weighted_n_node_samples * self.impurity
        internal = (self.children_left != LEAF).nonzero().squeeze(1)
        gain = wi[internal] - wi[self.children_left[internal]] - wi[self.children_right[internal]]
        imp.index_add_(0, self.feature[internal], gain)
        imp /= self.weighted_n_node_samples[0]
        total = imp.sum()
        return imp / total if total > 0 else imp

    # ------------------------------------------------------------------------------- export
    def _describe_value(self, node: int, class_names: Sequence[str] | None, decimals: int) -> str:
        raise NotImplementedError

    def export_text(self, feature_names: Sequence[str] | None = None, class_names: Sequence[str] | None = None,
                    decimals: int = 2, show_weights: bool = False) -> str:
        """The rules as indented text, one line per test and per leaf (scikit-learn's layout)."""
        self._check_fitted()
        names = self._feature_names(feature_names)
        lines: list[str] = []

        def walk(node: int, depth: int) -> None:
            indent = "|   " * depth + "|--- "
            if self.children_left[node] == LEAF:
                lines.append(indent + self._describe_value(node, class_names, decimals)
                             + (f" (weight {float(self.weighted_n_node_samples[node]):.{decimals}f})"
                                if show_weights else ""))
                return
            name, t = names[int(self.feature[node])], float(self.threshold[node])
            lines.append(f"{indent}{name} <= {t:.{decimals}f}")
            walk(int(self.children_left[node]), depth + 1)
            lines.append(f"{indent}{name} >  {t:.{decimals}f}")
            walk(int(self.children_right[node]), depth + 1)

        walk(0, 0)
        return "\n".join(lines) + "\n"

    def _feature_names(self, feature_names: Sequence[str] | None) -> list[str]:
        if feature_names is None:
            return [f"feature_{i}" for i in range(self.n_features_in_)]
        if len(feature_names) != self.n_features_in_:
            raise ValueError(f"feature_names has {len(feature_names)} names for {self.n_features_in_} features")
        return list(feature_names)

    def plot(self, feature_names: Sequence[str] | None = None, class_names: Sequence[str] | None = None,
             ax: Any = None, fontsize: float = 8.0, decimals: int = 2) -> Any:
        """Draw the tree with matplotlib: each node's test, impurity, samples and value (the
        weighted class fractions and the majority class for a classifier), coloured by its
        majority class and how clearly it holds (classifier) or by its value (regressor).
        Returns the figure."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        self._check_fitted()
        names = self._feature_names(feature_names)
        left, right = self.children_left.tolist(), self.children_right.tolist()
        xpos: dict[int, float] = {}
        depth: dict[int, int] = {0: 0}
        next_leaf = [0.0]

        def place(node: int) -> float:  # leaves left to right, a parent over the middle of its children
            if left[node] == LEAF:
                xpos[node] = next_leaf[0]
                next_leaf[0] += 1.0
            else:
                depth[left[node]] = depth[right[node]] = depth[node] + 1
                xpos[node] = (place(left[node]) + place(right[node])) / 2
            return xpos[node]

        place(0)
        leaves, levels = next_leaf[0], max(depth.values()) + 1
        if ax is None:
            fig, ax = plt.subplots(figsize=(max(6.0, 2.2 * leaves), max(3.0, 1.7 * levels)))
        else:
            fig = ax.figure
        ax.set_axis_off()
        ax.set_xlim(-0.7, leaves - 0.3)
        ax.set_ylim(-levels + 0.3, 0.7)
        colours = self._colours()
        for node in range(self.node_count):
            x, y = xpos[node], -depth[node]
            if left[node] != LEAF:
                for child in (left[node], right[node]):
                    ax.plot([x, xpos[child]], [y, -depth[child]], color="0.5", lw=0.8, zorder=1)
            lines = []
            if left[node] != LEAF:
                lines.append(f"{names[int(self.feature[node])]} <= {float(self.threshold[node]):.{decimals}f}")
            lines += [f"{self.criterion} = {float(self.impurity[node]):.3f}",
                      f"samples = {int(self.n_node_samples[node])}",
                      *self._node_details(node, decimals),
                      self._describe_value(node, class_names, decimals)]
            ax.text(x, y, "\n".join(lines), ha="center", va="center", fontsize=fontsize, zorder=2,
                    bbox={"boxstyle": "round", "facecolor": colours[node], "edgecolor": "0.3"})
        fig.tight_layout()
        return fig

    def _colours(self) -> list[Any]:
        raise NotImplementedError

    def _node_details(self, node: int, decimals: int) -> list[str]:
        return []

    # ------------------------------------------------------------------------- state dicts
    _ARRAYS = ("children_left", "children_right", "feature", "threshold", "impurity", "n_node_samples",
               "weighted_n_node_samples", "value")

    def state_dict(self) -> dict[str, Any]:
        """Tensors and numbers only (``torch.load(..., weights_only=True)`` reads it back)."""
        self._check_fitted()
        state: dict[str, Any] = {name: getattr(self, name).clone() for name in self._ARRAYS}
        state["n_features_in"] = torch.tensor(self.n_features_in_)
        state.update(self._extra_state())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> _Tree:
        missing = [k for k in (*self._ARRAYS, "n_features_in") if k not in state]
        if missing:
            raise ValueError(f"not a {type(self).__name__} state dict: missing {', '.join(missing)}")
        for name in self._ARRAYS:
            setattr(self, name, state[name].clone())
        self.n_features_in_ = int(state["n_features_in"])
        self._load_extra_state(state)
        return self

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        pass


class DecisionTreeClassifier(_Tree):
    """CART for classes (module docstring). ``criterion``: ``"gini"`` or ``"entropy"`` (bits).

    After ``fit(x [n, features], y [n] integer classes)``: ``classes_`` (the sorted class
    labels), ``predict``, ``predict_proba``, ``apply``, ``decision_path``,
    ``feature_importances_``, ``export_text``, ``plot``, ``state_dict``.
    """

    def __init__(self, criterion: Literal["gini", "entropy"] = "gini", **kwargs: Any) -> None:
        if criterion not in ("gini", "entropy"):
            raise ValueError(f"criterion must be 'gini' or 'entropy', got {criterion!r}")
        super().__init__(**kwargs)
        self.criterion = criterion
        self.classes_: Tensor | None = None

    def _criterion_settings(self) -> dict[str, Any]:
        return {"criterion": self.criterion}

    def _targets(self, y: Tensor, n: int) -> Tensor:
        if y.shape != (n,):
            raise ValueError(f"a classifier's target must have shape [{n}] (one class per sample), got {list(y.shape)}")
        if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise ValueError(f"a classifier's target must be integer classes, got dtype {y.dtype} (use "
                             "DecisionTreeRegressor for real-valued targets)")
        self.classes_, codes = torch.unique(y.to("cpu", torch.long), return_inverse=True)
        return torch.nn.functional.one_hot(codes, len(self.classes_)).double()

    def _impurity(self, stats: Tensor, weight: Tensor) -> Tensor:
        p = stats / weight.unsqueeze(-1).clamp(min=1e-300)
        if self.criterion == "gini":
            return 1.0 - (p * p).sum(-1)
        return -(p * torch.log2(torch.where(p > 0, p, torch.ones_like(p)))).sum(-1)

    def _leaf_value(self, stats: Tensor, weight: Tensor) -> Tensor:
        return stats / weight

    def predict_proba(self, x: Any) -> Tensor:
        """``[n, classes]`` float64: the weighted class fractions of each sample's leaf."""
        return self.value[self.apply(x)].clone()

    def predict(self, x: Any) -> Tensor:
        """``[n]`` class labels: the leaf's majority class (the smallest label on a tie)."""
        return self.classes_[self.predict_proba(x).argmax(dim=1)]

    def _describe_value(self, node: int, class_names: Sequence[str] | None, decimals: int) -> str:
        k = int(self.value[node].argmax())
        return f"class: {class_names[k] if class_names is not None else int(self.classes_[k])}"

    def _node_details(self, node: int, decimals: int) -> list[str]:
        return ["value = [" + ", ".join(f"{float(v):.{decimals}f}" for v in self.value[node]) + "]"]

    def _colours(self) -> list[Any]:
        import matplotlib.pyplot as plt

        cmap = plt.get_cmap("tab10")
        out = []
        for fractions in self.value:
            k = int(fractions.argmax())
            top = sorted(fractions.tolist(), reverse=True)
            purity = top[0] - (top[1] if len(top) > 1 else 0.0)  # how clearly the node is its class
            r, g, b, _ = cmap(k % 10)
            out.append((1 - purity * 0.7 + purity * 0.7 * r, 1 - purity * 0.7 + purity * 0.7 * g,
                        1 - purity * 0.7 + purity * 0.7 * b))
        return out

    def _extra_state(self) -> dict[str, Any]:
        return {"classes": self.classes_.clone(), "criterion": self.criterion}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        if "classes" not in state:
            raise ValueError("not a DecisionTreeClassifier state dict: missing classes")
        self.classes_ = state["classes"].clone()
        self.criterion = state.get("criterion", self.criterion)


class DecisionTreeRegressor(_Tree):
    """CART for a real-valued target, squared error (module docstring): each leaf predicts the
    weighted mean target of its samples. ``fit(x [n, features], y [n])``; ``predict -> [n]``."""

    criterion = "squared_error"

    def __init__(self, criterion: Literal["squared_error"] = "squared_error", **kwargs: Any) -> None:
        if criterion != "squared_error":
            raise ValueError(f"criterion must be 'squared_error', got {criterion!r}")
        super().__init__(**kwargs)

    def _targets(self, y: Tensor, n: int) -> Tensor:
        if y.shape != (n,):
            raise ValueError(f"a regressor's target must have shape [{n}], got {list(y.shape)}")
        if y.dtype == torch.bool or y.is_complex():
            raise ValueError(f"a regressor's target must be real numbers, got dtype {y.dtype}")
        y = y.to("cpu", torch.float64)
        if not torch.isfinite(y).all():
            raise ValueError("the target must be finite")
        return torch.stack([torch.ones_like(y), y, y * y], dim=1)  # weight, sum y, sum y^2 (times w in fit)

    def _impurity(self, stats: Tensor, weight: Tensor) -> Tensor:
        w = weight.clamp(min=1e-300)
        mean = stats[..., 1] / w
        return stats[..., 2] / w - mean * mean

    def _proxy(self, left: Tensor, right: Tensor, w_left: Tensor, w_right: Tensor) -> Tensor:
        # -(w_l * var_l + w_r * var_r) = sum(w y^2) - (sum_l^2 / w_l + sum_r^2 / w_r): the first is a
        # constant of the node, so scikit-learn orders splits by the second (fewer rounding errors)
        return left[..., 1] ** 2 / w_left.clamp(min=1e-300) + right[..., 1] ** 2 / w_right.clamp(min=1e-300)

    def _leaf_value(self, stats: Tensor, weight: Tensor) -> Tensor:
        return (stats[1] / weight).reshape(1)

    def predict(self, x: Any) -> Tensor:
        """``[n]`` float64: the mean target of each sample's leaf."""
        return self.value[self.apply(x), 0].clone()

    def _describe_value(self, node: int, class_names: Sequence[str] | None, decimals: int) -> str:
        return f"value: {float(self.value[node, 0]):.{decimals}f}"

    def _colours(self) -> list[Any]:
        import matplotlib.pyplot as plt

        v = self.value[:, 0]
        lo, hi = float(v.min()), float(v.max())
        span = hi - lo if hi > lo else 1.0
        return [plt.get_cmap("Blues")(0.15 + 0.6 * (float(x) - lo) / span) for x in v]
