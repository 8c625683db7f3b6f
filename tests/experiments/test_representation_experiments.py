"""Autoencoder, VAE, GAN, word2vec and explanation scripts end to end, with their pictures."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from experiments import a2c, autoencoder, dqn_atari, driver, explain, gan, ppo, vae, word2vec


def _tags(run_dir: Path) -> dict[str, list[str]]:
    events = EventAccumulator(str(run_dir), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    events.Reload()
    return events.Tags()


def _common(tmp_path: Path) -> list[str]:
    return ["--root", str(tmp_path), "--no-progress", "--device", "cpu"]


def test_autoencoder_script_learns_and_draws(tmp_path: Path) -> None:
    r = autoencoder.main(["--dataset", "glyphs", "--train-subset", "2000", "--epochs", "3", *_common(tmp_path)])
    assert r["eval_loss"][-1] < r["eval_loss"][0]
    tags = _tags(r["run_dir"])
    assert {"reconstructions", "latent"} <= set(tags["images"]) and "eval/loss" in tags["scalars"]
    assert (Path(r["run_dir"]) / "projector_config.pbtxt").is_file()


def test_vae_script_improves_the_elbo_and_draws(tmp_path: Path) -> None:
    r = vae.main(["--dataset", "glyphs", "--train-subset", "2000", "--epochs", "3", *_common(tmp_path)])
    assert r["eval_elbo"][-1] > r["eval_elbo"][0]
    tags = _tags(r["run_dir"])
    assert {"samples", "interpolations", "manifold"} <= set(tags["images"])
    assert {"eval/elbo", "eval/kl", "eval/reconstruction", "train/loss"} <= set(tags["scalars"])


def test_gan_script_on_images_and_on_the_ring(tmp_path: Path) -> None:
    r = gan.main(["--dataset", "glyphs", "--train-subset", "500", "--steps", "20", "--sample-every", "10",
                  "--width", "8", "--batch-size", "16", *_common(tmp_path)])  # fmt: skip
    tags = _tags(r["run_dir"])
    assert "samples" in tags["images"] and {"losses/d_loss", "charts/d_fake"} <= set(tags["scalars"])
    ring = gan.main(["--dataset", "ring", "--steps", "100", "--sample-every", "50", *_common(tmp_path)])
    assert len(ring["modes_covered"]) == 2 and "eval/modes_covered" in _tags(ring["run_dir"])["scalars"]


def test_word2vec_script_recovers_planted_groups(tmp_path: Path) -> None:
    r = word2vec.main(["--query", "g2_w0", *_common(tmp_path)])
    assert r["neighbour_precision"] >= 0.95
    assert all(w.startswith("g2_") for w, _ in r["neighbours"]["g2_w0"][:4])
    assert (Path(r["run_dir"]) / "projector_config.pbtxt").is_file()


def test_word2vec_unknown_query_fails_before_training(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        word2vec.main(["--query", "zebra", *_common(tmp_path)])
    assert "'zebra' is not in the vocabulary" in capsys.readouterr().err


def test_explain_script_image_and_tabular(tmp_path: Path) -> None:
    r = explain.main(["--parts", "image", "tabular", "--train-subset", "3000", "--epochs", "1", *_common(tmp_path)])
    tags = set(_tags(r["run_dir"])["images"])
    assert {"explain/image_maps", "explain/shap", "explain/permutation", "explain/pdp_1d", "explain/pdp_2d"} <= tags
    ranking = r["tabular"]["permutation"].argsort(descending=True).tolist()
    assert set(ranking[-2:]) == {4, 5}  # the two features the target ignores come last
    maps = r["image"]["maps"]
    assert maps["occlusion"].shape == maps["saliency"].shape == (8, 1, 28, 28)


def test_explain_tree_beside_the_mlp_and_its_global_surrogates(tmp_path: Path) -> None:
    r = explain.main(["--parts", "tree", "--surrogate-depths", "1", "3", "6", *_common(tmp_path)])
    tags = _tags(r["run_dir"])
    assert {"explain/tree", "explain/tree_vs_mlp", "explain/surrogate_fidelity"} <= set(tags["images"])
    t = r["tree"]
    importance = t["tree"].feature_importances_
    assert float(importance[4] + importance[5]) < 0.02  # the two features the target ignores
    assert t["tree"].get_depth() == 4 and "x0 <=" in t["rules"] and 0.5 < t["tree_r2"] < t["mlp_r2"]
    fidelity = [f for _, f, _ in t["fidelity"]]
    assert fidelity == sorted(fidelity) and fidelity[-1] > 0.7  # deeper surrogates mimic the MLP better


@pytest.mark.slow
def test_explain_script_on_a_dqn_atari_checkpoint(tmp_path: Path) -> None:
    argv = ["--runs-dir", str(tmp_path), "--no-progress", "--device", "cpu", "--preset", "drq_eps",
            "--total-steps", "200", "--learning-starts", "100", "--buffer-size", "500", "--eval-interval", "0",
            "--eval-episodes", "1", "--log-interval", "100", "--max-episode-frames", "300"]  # fmt: skip
    args = driver.parse_args(argv, dqn_atari.DEFAULTS, dqn_atari.ALGORITHM, "")
    _, run_dir = driver.train(args, dqn_atari.ALGORITHM)
    r = explain.main(["--parts", "dqn", "--dqn-checkpoint", str(run_dir / "checkpoint.pt"), "--dqn-frames", "3",
                      "--dqn-every", "5", *_common(tmp_path)])  # fmt: skip
    assert r["dqn"]["env_id"] == "ALE/Breakout-v5" and len(r["dqn"]["actions"]) == 3
    assert r["dqn"]["maps"]["saliency"].shape == (3, 4, 84, 84)
    assert "explain/dqn_maps" in _tags(r["run_dir"])["images"]


def _agent_checkpoint(tmp_path: Path, module, *extra: str) -> Path:
    argv = ["--runs-dir", str(tmp_path), "--no-progress", "--device", "cpu", "--env-id", "CartPolePositionOnly-v1",
            "--total-steps", "256", "--num-envs", "4", "--num-steps", "32", "--eval-interval", "0",
            "--eval-episodes", "1", *extra]  # fmt: skip
    args = driver.parse_args(argv, module.Args(), module.ALGORITHM, "")
    _, run_dir = driver.train(args, module.ALGORITHM)
    return run_dir / "checkpoint.pt"


def test_explain_attributes_a_memory_agents_action_to_its_past_observations(tmp_path: Path) -> None:
    """A GRU agent's greedy action owes something to earlier observations, nothing to those before
    its episode began; a feed-forward agent's owes everything to the current one."""
    gru = _agent_checkpoint(tmp_path / "gru", ppo, "--core", "gru", "--core-size", "16")
    flags = ["--parts", "agent", "--agent-frames", "5", "--agent-every", "6", "--agent-window", "5", *_common(tmp_path)]
    r = explain.main(["--agent-checkpoint", str(gru), *flags])["agent"]
    assert r["steps"] == [0, 6, 12, 18, 24] and r["attributions"].shape == (5, 5, 2) == r["saliency"].shape
    assert 0 < r["memory_share"] < 1
    crossed = 0
    for i, t in enumerate(r["steps"]):
        window = range(t - 4, t + 1)  # rows 0..4 hold steps t-4..t (before step 0: padding)
        began = max((s for s in window if s >= 0 and bool(r["starts"][s])), default=t - 4)  # the episode's first step
        for row, s in enumerate(window):
            if s < began:
                crossed += 1
                assert bool((r["attributions"][i, row] == 0).all()) and bool((r["saliency"][i, row] == 0).all())
        assert float(r["saliency"][i, window.index(began):].abs().sum()) > 0
    assert crossed > 0  # some windows reach back past an episode start
    flat = _agent_checkpoint(tmp_path / "flat", a2c)
    r = explain.main(["--agent-checkpoint", str(flat), *flags])
    assert r["agent"]["attributions"].shape == (5, 1, 2) and r["agent"]["memory_share"] == 0.0
    assert "explain/agent_memory" in _tags(r["run_dir"])["images"]


def test_explain_refuses_a_checkpoint_of_another_experiment(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from foundations.runlog import save_checkpoint

    save_checkpoint(tmp_path / "other.pt", {"experiment": "ppo", "args": {}})
    with pytest.raises(SystemExit):
        explain.main(["--parts", "dqn", "--dqn-checkpoint", str(tmp_path / "other.pt"), *_common(tmp_path)])
    assert "is not a dqn or dqn_atari checkpoint (experiment 'ppo')" in capsys.readouterr().err
    save_checkpoint(tmp_path / "dqn.pt", {"experiment": "dqn", "args": {}})
    with pytest.raises(SystemExit):
        explain.main(["--parts", "agent", "--agent-checkpoint", str(tmp_path / "dqn.pt"), *_common(tmp_path)])
    assert "is not a ppo or a2c checkpoint (experiment 'dqn'); DQN checkpoints go to --dqn-checkpoint" in \
        capsys.readouterr().err
