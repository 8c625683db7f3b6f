"""What every RL experiment script shares: CLI with presets, run directory, env and agent
construction, evaluation, atomic checkpoints and exact resume.

An experiment script defines an :class:`Algorithm` (its name, its argument dataclass, its
presets and how to build the agent) and calls :func:`main`. The agent follows the interface of
:mod:`agents.loop`.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import sys
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import tyro

from agents.loop import LoopConfig, LoopResult, run_training
from envs import AtariConfig, TensorVecEnv, evaluate, is_atari_id, make_env
from experiments.common import cli, one_line_errors, rebuild, resolve_device
from foundations.checks import choose
from foundations.interrupts import StopRequests
from foundations.runlog import RunLogger, Tags, load_checkpoint, save_checkpoint
from foundations.seeding import get_rng_state, seed_everything, set_rng_state

CHECKPOINT_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class RunArgs:
    """Options every experiment has; subclasses add ``agent: <AgentConfig>``."""

    env_id: str = "CartPole-v1"
    """Gymnasium id, e.g. CartPole-v1 or ALE/Breakout-v5."""
    preset: str = "cartpole"
    """hyperparameter preset (see --help of the experiment); other flags override its values."""
    seed: int = 1
    """seeds Python, NumPy, torch, the agent and the envs (env i gets seed + i)."""
    device: str = "auto"
    """auto (CUDA when available), cpu, cuda, cuda:1..."""
    runs_dir: str = "runs"
    """parent directory of run directories."""
    resume: str | None = None
    """checkpoint.pt of a run to continue exactly (its saved configuration is used)."""
    save_replay: bool = True
    """save the replay with each checkpoint, for agents that have one (needed for an exact resume)."""
    backend: str = "auto"
    """env backend: auto, ale (C++ vector env, Atari) or gymnasium."""
    vectorization: str = "same-step"
    """how the gymnasium backend runs its envs: same-step (envs.sync.SameStepVectorEnv: Gymnasium's
    SyncVectorEnv semantics, a third of its overhead), sync (Gymnasium's SyncVectorEnv) or async
    (a process per env)."""
    progress: bool = True
    """show a progress bar."""
    threads: int = 0
    """torch threads for this run (0: torch's default, one per core; a sweep gives each run its share)."""
    loop: LoopConfig = dataclasses.field(default_factory=LoopConfig)
    atari: AtariConfig = dataclasses.field(default_factory=AtariConfig)


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """How an experiment builds its agent.

    Attributes:
      name: experiment name (run directory, checkpoint check).
      presets: named agent configurations.
      build: ``build(config, env, device, seed) -> agent``.
      eval_policy: ``eval_policy(agent, config, rng) -> (obs -> actions)``.
      notes: per preset, one line: its purpose and source (shown by ``--help``).
      run_settings: per preset, run options it brings besides the agent's values (dotted names
        such as ``"atari.noop_max"``: a benchmark's protocol); flags override them too.
    """

    name: str
    presets: dict[str, Any]
    build: Callable[[Any, TensorVecEnv, torch.device, int], Any]
    eval_policy: Callable[[Any, Any, np.random.Generator], Callable[[torch.Tensor], torch.Tensor]]
    notes: dict[str, str] = dataclasses.field(default_factory=dict)
    run_settings: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if set(self.notes) != set(self.presets):
            raise ValueError(f"{self.name}: preset notes {sorted(self.notes)} do not match presets {sorted(self.presets)}")

    def preset(self, name: str) -> Any:
        return choose("preset", name, self.presets)

    def presets_help(self) -> str:
        """The presets, one line each, for ``--help``."""
        lines = [f"  {name}: {note}" for name, note in self.notes.items()]
        return "presets (--preset NAME; --preset list shows their values side by side):\n" + "\n".join(lines)

    def presets_table(self) -> str:
        """Every preset's values side by side: a row per field, a column per preset."""
        names = list(self.presets)
        rows = [["field", *names]]
        for f in dataclasses.fields(next(iter(self.presets.values()))):
            rows.append([f.name, *(repr(getattr(self.presets[n], f.name)) for n in names)])
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
        return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def policy_mode(agent: Any, config: Any, rng: np.random.Generator) -> Callable[[torch.Tensor], torch.Tensor]:
    """Evaluation policy of the policy-gradient agents: the mode of the policy (argmax / Gaussian
    mean); a recurrent agent's keeps its own core state across steps."""
    if getattr(agent, "recurrent", False):
        return agent.evaluator()
    return lambda obs: agent.act(obs, deterministic=True)


def preset_base(defaults: Any, algo: Algorithm, name: str) -> Any:
    """``defaults`` with preset ``name``: its agent configuration and the run settings it brings."""
    base = dataclasses.replace(defaults, preset=name, agent=algo.preset(name))
    for dotted, value in algo.run_settings.get(name, {}).items():
        base = _set(base, dotted, value)
    return base


def parse_args(argv: Sequence[str] | None, defaults: Any, algo: Algorithm, description: str) -> Any:
    """Parse the command line over ``defaults``, with the ``--preset`` given (if any) applied first."""
    argv = list(sys.argv[1:] if argv is None else argv)
    name = defaults.preset
    for i, a in enumerate(argv):
        if a == "--preset" and i + 1 < len(argv):
            name = argv[i + 1]
        elif a.startswith("--preset="):
            name = a.split("=", 1)[1]
    if name == "list":
        print(algo.presets_table())
        raise SystemExit(0)
    cores = [a.split("=", 1)[0] for a in argv if a == "--core" or a.startswith(("--core-", "--core=", "--bptt"))]
    if cores and "core" not in {f.name for f in dataclasses.fields(algo.preset(name))}:
        raise ValueError(f"{cores[0]}: {algo.name} has no recurrent path; memory cores run with ppo, ppo_atari and "
                         "a2c (python -m experiments.ppo --core lstm ...)")
    base = preset_base(defaults, algo, name)
    if algo.notes:
        description = f"{description.rstrip()}\n\n{algo.presets_help()}"
    return cli(type(defaults), args=argv, default=base, description=description, config=(tyro.conf.OmitArgPrefixes,))


#: Options that may differ from the saved run's on ``--resume``: they change how the run is
#: carried out, not what it computes. Every other flag given with ``--resume`` must match.
RESUME_CHANGEABLE = ("resume", "device", "progress", "save_replay", "threads", "agent.compile")


def _given(args: Any, base: Any, prefix: str = "") -> dict[str, Any]:
    """``{"agent.learning_rate": value}`` for each (nested) field where ``args`` differs from ``base``."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(args):
        a, b = getattr(args, f.name), getattr(base, f.name)
        if dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b):
            out.update(_given(a, b, f"{prefix}{f.name}."))
        elif a != b:
            out[f"{prefix}{f.name}"] = a
    return out


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _set(obj: Any, dotted: str, value: Any) -> Any:
    head, _, rest = dotted.partition(".")
    if not rest:
        return dataclasses.replace(obj, **{head: value})
    return dataclasses.replace(obj, **{head: _set(getattr(obj, head), rest, value)})


def flag_of(args: Any, dotted: str) -> str:
    """The command-line flag of the (nested) option ``dotted`` of ``args``: the name its
    ``tyro.conf.arg`` marker gives it (``agent.core.size`` -> ``--core-size``), else the field's
    own name (``agent.learning_rate`` -> ``--learning-rate``; the parse omits prefixes)."""
    parent, _, name = dotted.rpartition(".")
    try:
        owner = _get(args, parent) if parent else args
        hint = typing.get_type_hints(type(owner), include_extras=True).get(name)
    except (AttributeError, NameError, TypeError):  # no such option here, or an annotation that does not evaluate
        hint = None
    for meta in getattr(hint, "__metadata__", ()):
        if isinstance(getattr(meta, "name", None), str):
            return "--" + meta.name
    return "--" + name.replace("_", "-")


def given_flags(args: Any, argv: Sequence[str], prefix: str = "") -> dict[str, Any]:
    """``{"agent.learning_rate": value}`` for each (nested) option whose flag (:func:`flag_of`)
    appears in ``argv`` (``--name``, ``--name=...`` or ``--no-name``)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(args):
        value = getattr(args, f.name)
        if dataclasses.is_dataclass(value):
            out.update(given_flags(value, argv, f"{prefix}{f.name}."))
            continue
        flag = flag_of(args, f.name)  # args is the field's owner at this depth
        if any(a == flag or a.startswith(flag + "=") or a == "--no-" + flag[2:] for a in argv):
            out[f"{prefix}{f.name}"] = value
    return out


def resume_args(args: Any, algo: Algorithm, saved: dict[str, Any], given: dict[str, Any] | None = None) -> Any:
    """The saved run's arguments, with the changeable options given on this command line
    (:data:`RESUME_CHANGEABLE`); ``ValueError`` naming every other given flag that differs.

    ``given``: the options given (:func:`given_flags`); by default, those that differ from
    the preset's defaults."""
    if given is None:
        base = preset_base(type(args)(), algo, args.preset)
        given = _given(args, base)
    restored = rebuild(args, saved)
    conflicts = [f"{flag_of(restored, name)} {value!r} (saved: {_get(restored, name)!r})"
                 for name, value in given.items()
                 if name not in RESUME_CHANGEABLE and value != _get(restored, name)]
    if conflicts:
        allowed = ", ".join(flag_of(restored, n) for n in RESUME_CHANGEABLE[1:])
        raise ValueError(f"--resume continues a run with its saved settings, and these flags differ from them: "
                         f"{'; '.join(conflicts)}. Drop them or start a new run (flags that may change on "
                         f"resume: {allowed})")
    for name in RESUME_CHANGEABLE:
        if name in given:
            restored = _set(restored, name, given[name])
    return dataclasses.replace(restored, resume=args.resume)


def train(args: Any, algo: Algorithm, stop_step: int | None = None,
          given: dict[str, Any] | None = None) -> tuple[LoopResult, Path]:
    """Run (or resume) one experiment; returns the loop result and the run directory.

    Resuming a run that already reached its ``total_steps`` does nothing and returns its saved
    result (``LoopResult.already_finished``). ``given``: the options named on the command line
    (see :func:`resume_args`).
    """
    checkpoint_in: dict[str, Any] | None = None
    if args.resume is not None:
        checkpoint_in = load_checkpoint(args.resume)
        if checkpoint_in.get("format") != CHECKPOINT_FORMAT or checkpoint_in.get("experiment") != algo.name:
            raise ValueError(f"{args.resume} is not a {algo.name} checkpoint (format {CHECKPOINT_FORMAT})")
        args = resume_args(args, algo, checkpoint_in["args"], given)
        loop = checkpoint_in["loop"]
        if int(loop["step"]) >= args.agent.total_steps:
            evaluations = [(int(s), float(r)) for s, r in loop["evaluations"].tolist()]
            return LoopResult(int(loop["step"]), evaluations, already_finished=True), Path(args.resume).parent
    if args.threads < 0:
        raise ValueError(f"--threads must be >= 0 (0: torch's default), got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    atari = is_atari_id(args.env_id)
    seed_everything(args.seed)
    env = make_env(args.env_id, args.agent.num_envs, seed=args.seed, device=device, backend=args.backend,
                   vectorization=args.vectorization, atari=args.atari if atari else None)
    try:
        agent = algo.build(args.agent, env, device, args.seed)
    except ValueError:
        env.close()
        raise
    replay = getattr(agent, "replay", None)

    run_dir, start = None, 0
    if checkpoint_in is not None:
        run_dir = Path(args.resume).parent
        start = int(checkpoint_in["loop"]["step"])
        agent.load_state_dict(checkpoint_in["agent"])
        replay_file = checkpoint_in.get("replay_file")
        if replay_file is not None and not (run_dir / replay_file).is_file():
            print(f"warning: the checkpoint's replay file {run_dir / replay_file} is missing; resuming with an "
                  "empty buffer (not exact: updates wait until it holds the warm-up's transitions again)",
                  file=sys.stderr)
        elif replay_file is not None:
            replay.load_state_dict(load_checkpoint(run_dir / replay_file, map_location=device)["replay"])
        elif replay is not None:
            print("warning: the checkpoint has no replay; resuming with an empty buffer (not exact)", file=sys.stderr)
        set_rng_state(checkpoint_in["rng"])
    logger = RunLogger(args.env_id, algo.name, args.seed, config=args, root=args.runs_dir,
                       total_steps=args.agent.total_steps, progress=args.progress, run_dir=run_dir, start_step=start,
                       metrics=(Tags.EPISODIC_RETURN, Tags.EVAL_RETURN))
    eval_envs = math.gcd(args.loop.eval_episodes, 8)

    def run_evaluation(step: int) -> torch.Tensor:
        rng = np.random.default_rng([args.seed, step])  # evaluation never touches the agent's generators
        policy = algo.eval_policy(agent, args.agent, rng)
        result = evaluate(policy, args.env_id, args.loop.eval_episodes, seed=args.seed + 100_000, device=device,
                          num_envs=eval_envs, atari=args.atari if atari else None)
        if getattr(policy, "trace", None):  # an NTM / DNC core: its weightings over one evaluation episode
            from experiments.memory_pictures import agent_memory_figure

            figure = agent_memory_figure(policy.trace, title=f"{args.env_id}, step {step:,}")
            logger.writer.add_figure("eval/memory", figure, step, close=True)
        return result.returns

    def write_checkpoint(loop_state: dict[str, Any]) -> None:
        step = int(loop_state["step"])
        state = {"format": CHECKPOINT_FORMAT, "experiment": algo.name, "args": dataclasses.asdict(args),
                 "loop": loop_state, "agent": agent.state_dict(), "rng": get_rng_state(), "replay_file": None}
        if replay is not None and args.save_replay:
            state["replay_file"] = f"replay-{step}.pt"
            save_checkpoint(logger.run_dir / state["replay_file"], {"replay": replay.state_dict()})
        save_checkpoint(logger.checkpoint_path(), state)
        for old in logger.run_dir.glob("replay-*.pt"):  # the checkpoint now points at the new one
            if old.name != state["replay_file"]:
                old.unlink(missing_ok=True)

    try:
        with StopRequests() as stop:  # Ctrl-C / SIGTERM: finish the step, checkpoint, return
            result = run_training(agent, env, logger, args.agent.total_steps, args.loop, evaluate=run_evaluation,
                                  checkpoint=write_checkpoint,
                                  resume=checkpoint_in["loop"] if checkpoint_in else None,
                                  stop_step=stop_step, stop=stop)
    finally:
        env.close()
        logger.close()
    return result, logger.run_dir


def main(algo: Algorithm, defaults: Any, description: str, argv: Sequence[str] | None = None) -> LoopResult:
    """Command-line entry point; prints the final evaluation and where the logs are."""
    with one_line_errors():
        argv = list(sys.argv[1:] if argv is None else argv)
        args = parse_args(argv, defaults, algo, description)
        result, run_dir = train(args, algo, given=given_flags(args, argv))
    if result.already_finished:
        print(f"{run_dir} already finished at step {result.step:,}; nothing to do")
    if result.interrupted is not None:
        checkpoint = Path(run_dir) / "checkpoint.pt"
        print(f"interrupted ({signal.Signals(result.interrupted).name}) at step {result.step:,}: checkpoint "
              f"{checkpoint}; continue with: python -m experiments.{algo.name} --resume {checkpoint}", file=sys.stderr)
        raise SystemExit(128 + result.interrupted)
    if result.evaluations:
        step, mean = result.evaluations[-1]
        print(f"final evaluation at step {step:,}: mean return {mean:.1f}")
    print(f"logs and checkpoint: {run_dir}")
    print(f"view them with:      tensorboard --logdir {Path(run_dir).parent}")
    return result
