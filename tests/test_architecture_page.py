"""docs/architecture.md stays true: every ``module.name`` it writes in backticks exists, and the
layering it states holds for every import in the packages."""

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "architecture.md"
RANK = {"foundations": 0, "envs": 1, "memory_nets": 1, "agents": 2, "experiments": 3, "benchmarks": 4}
REFERENCE = re.compile(r"`((?:foundations|envs|memory_nets|agents|experiments|benchmarks)(?:\.[A-Za-z_]\w*)+)`")


def _resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ModuleNotFoundError(dotted)


def test_every_code_reference_on_the_page_resolves():
    refs = sorted(set(REFERENCE.findall(PAGE.read_text())))
    assert len(refs) > 40  # the page names the code it describes
    missing = []
    for ref in refs:
        try:
            _resolve(ref)
        except (ModuleNotFoundError, AttributeError) as e:
            missing.append(f"{ref} ({e})")
    assert not missing, missing


def test_a_wrong_reference_would_be_caught():
    with pytest.raises(AttributeError):
        _resolve("agents.targets.no_such_target")


#: a string that names a module (or an attribute of one, ``module:attr`` as Gymnasium's entry points
#: and importlib take them): an import that happens at run time
DOTTED = re.compile(r"([A-Za-z_]\w*)(?:\.[A-Za-z_]\w*)+(?::[A-Za-z_]\w*)?|([A-Za-z_]\w*):[A-Za-z_]\w*")


def _imports(path: Path) -> list[str]:
    """Top-level packages ``path`` imports: import statements, and strings that name a module
    (entry points such as ``"memory_nets.rl_tasks:MemoryTaskEnv"``, ``importlib`` targets)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module.split(".")[0])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = DOTTED.fullmatch(node.value.strip())
            if match:
                names.append(match.group(1) or match.group(2))
    return names


def test_lower_layers_never_import_higher_ones():
    upward = []
    for package, rank in RANK.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for imported in _imports(path):
                if imported in RANK and imported != package and RANK[imported] >= rank:
                    upward.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert not upward, upward


def _experiment_imports(path: Path) -> set[str]:
    """The ``experiments.X`` modules ``path`` imports (``from experiments import X`` included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "experiments":
                names |= {alias.name for alias in node.names}
            elif node.module.startswith("experiments."):
                names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names |= {a.name.split(".")[1] for a in node.names if a.name.startswith("experiments.")}
    return names


def test_rl_experiment_scripts_import_no_sibling_script():
    """Every script that runs an agent through the driver wires its own config: it imports the
    driver and the shared helpers, never another experiment script (``dqn_atari`` not ``dqn``)."""
    scripts = [p for p in sorted((ROOT / "experiments").glob("*.py")) if "driver.Algorithm(" in p.read_text()]
    assert {p.stem for p in scripts} >= {"dqn", "dqn_atari", "pqn", "ppo", "ppo_atari", "a2c", "reinforce"}
    siblings = {p.stem: _experiment_imports(p) - {"driver", "common"} for p in scripts}
    assert not any(siblings.values()), siblings


def test_a_registration_string_counts_as_an_import(tmp_path):
    module = tmp_path / "pomdp.py"
    module.write_text('import gymnasium as gym\n"""Docs that mention memory_nets.rl_tasks in a sentence."""\n'
                      'gym.register("X-v0", entry_point="memory_nets.rl_tasks:MemoryTaskEnv")\n'
                      'importlib.import_module("agents.dqn")\n')
    assert sorted(_imports(module)) == ["agents", "gymnasium", "memory_nets"]


def test_the_readme_links_the_page_not_a_file_outside_the_repository():
    readme = (ROOT / "README.md").read_text()
    assert "docs/architecture.md" in readme and "../shared" not in readme
