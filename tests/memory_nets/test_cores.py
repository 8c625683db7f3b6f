"""NTM and DNC cores: interface, batching, gradients, numerical safety, bad input."""

import pytest
import torch

from memory_nets import DNC, NTM, DNCConfig, NTMConfig
from memory_nets.baseline import LSTMBaseline

SMALL = dict(controller_size=16, memory_slots=8, word_size=4)


def _models(**extra):
    torch.manual_seed(0)
    return [
        NTM(5, 3, read_heads=2, write_heads=1, **SMALL, **extra),
        NTM(5, 3, controller="feedforward", **SMALL, **extra),
        DNC(5, 3, read_heads=2, **SMALL, **extra),
        DNC(5, 3, read_heads=2, write_heads=2, controller="feedforward", **SMALL, **extra),
    ]


@pytest.mark.parametrize("index", range(4))
def test_sequence_forward_equals_step_loop(index):
    model = _models()[index]
    x = torch.randn(7, 3, 5)
    y, final = model(x)
    assert y.shape == (7, 3, 3)
    state = model.initial_state(3)
    for t in range(7):
        y_t, state = model(x[t], state)
        torch.testing.assert_close(y_t, y[t])
    for a, b in zip(state, final, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("index", range(4))
def test_batch_elements_are_independent(index):
    """One batch of 4 gives each sequence the output it gets alone (no mixing across the batch)."""
    model = _models()[index]
    x = torch.randn(6, 4, 5)
    y, _ = model(x)
    for i in range(4):
        alone, _ = model(x[:, i : i + 1])
        torch.testing.assert_close(alone[:, 0], y[:, i], atol=1e-5, rtol=1e-5)


def test_batch_first_matches_time_major():
    torch.manual_seed(0)
    a = DNC(5, 3, **SMALL)
    b = DNC(5, 3, batch_first=True, **SMALL)
    b.load_state_dict(a.state_dict())
    x = torch.randn(6, 2, 5)
    torch.testing.assert_close(b(x.transpose(0, 1))[0], a(x)[0].transpose(0, 1))


@pytest.mark.parametrize("index", range(4))
def test_gradcheck_one_step_in_double(index):
    model = _models()[index].double()
    state = model.initial_state(2)
    # move off the initial state so every path (links, usage, shifts) is exercised
    with torch.no_grad():
        _, state = model(torch.randn(3, 2, 5, dtype=torch.float64), state)
    x = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    memory = state.memory.clone().requires_grad_(True)

    def step(x, memory):
        y, new = model(x, state._replace(memory=memory))
        return y, new.memory, new.reads

    assert torch.autograd.gradcheck(step, (x, memory), eps=1e-6, atol=1e-5)


def test_states_detach_and_have_documented_shapes():
    ntm, _, dnc, _ = _models()
    _, s = ntm(torch.randn(2, 3, 5))
    assert s.memory.shape == (3, 8, 4) and s.weights.shape == (3, 3, 8) and s.reads.shape == (3, 2, 4)
    assert s.read_weights.shape == (3, 2, 8) and s.write_weights.shape == (3, 1, 8)
    assert s.memory.grad_fn is not None and s.detach().memory.grad_fn is None
    _, d = dnc(torch.randn(2, 3, 5))
    assert d.link.shape == (3, 1, 8, 8) and d.usage.shape == (3, 8) and d.read_weights.shape == (3, 2, 8)
    assert all(t.grad_fn is None for t in d.detach())


def test_memory_initialisation_options():
    torch.manual_seed(0)
    const = NTM(5, 3, **SMALL)
    assert torch.equal(const.initial_state(2).memory, torch.full((2, 8, 4), 1e-6))
    learned = NTM(5, 3, memory_init="learned", **SMALL)
    y, _ = learned(torch.randn(4, 2, 5))
    y.sum().backward()
    assert learned.memory_bias.grad is not None and learned.memory_bias.grad.abs().sum() > 0
    rand = DNC(5, 3, memory_init="random", **SMALL)
    a, b = rand.initial_state(2).memory, rand.initial_state(2).memory
    assert not torch.equal(a, b) and 0.3 < a.std().item() < 0.7
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(rand.initial_state(2, g1).memory, rand.initial_state(2, g2).memory)


@pytest.mark.parametrize("cls", [NTM, DNC])
def test_the_layer_normalised_controller_is_the_ln_lstm_written_out(cls):
    """``layer_norm=True``: one controller step equals the LN-LSTM written by hand (each gate's
    pre-activation normalised over its units, then its gain and shift; the cell normalised before
    its tanh); the forget gate's shift starts at 1; gradients reach the new parameters; the
    feedforward controller refuses the option."""
    torch.manual_seed(0)
    core = cls(5, 3, layer_norm=True, **SMALL)
    with torch.no_grad():
        core.gate_gain.uniform_(0.5, 1.5)
        core.cell_norm.weight.uniform_(0.5, 1.5)
        core.cell_norm.bias.uniform_(-0.1, 0.1)
    assert torch.equal(core.gate_shift[1], torch.ones(16))
    b, size = 2, 16
    x, reads, h, c = torch.randn(b, 5), torch.randn(b, core.config.read_heads, core.config.word_size), \
        torch.randn(b, size), torch.randn(b, size)
    out, h_new, c_new = core.controller_step(core.project_input(x), reads, h, c)
    pre = x @ core.w_x.t() + core.bias + torch.cat([reads.flatten(1), h], 1) @ core.w_r.t()
    gates = []
    for k in range(4):
        z = pre[:, k * size:(k + 1) * size]
        z = (z - z.mean(1, keepdim=True)) / torch.sqrt(z.var(1, unbiased=False, keepdim=True) + 1e-5)
        gates.append(z * core.gate_gain[k] + core.gate_shift[k])
    i, f, o, g = torch.sigmoid(gates[0]), torch.sigmoid(gates[1]), torch.sigmoid(gates[2]), torch.tanh(gates[3])
    c_ref = f * c + i * g
    cn = (c_ref - c_ref.mean(1, keepdim=True)) / torch.sqrt(c_ref.var(1, unbiased=False, keepdim=True) + 1e-5)
    h_ref = o * torch.tanh(cn * core.cell_norm.weight + core.cell_norm.bias)
    torch.testing.assert_close(c_new, c_ref)
    torch.testing.assert_close(h_new, h_ref)
    torch.testing.assert_close(out, h_ref.clamp(-core.config.clip, core.config.clip))
    y, _ = core(torch.randn(4, b, 5))
    y.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in (core.gate_gain, core.gate_shift))
    with pytest.raises(ValueError, match="layer_norm normalises the LSTM controller"):
        cls(5, 3, controller="feedforward", layer_norm=True, **SMALL)


@pytest.mark.slow
@pytest.mark.parametrize("cls", [NTM, DNC])
def test_no_nan_over_1000_training_steps_with_extreme_inputs(cls):
    torch.manual_seed(0)
    model = cls(5, 3, read_heads=2, **SMALL)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for i in range(1000):
        scale = [1e-6, 1.0, 1e3, 1e5][i % 4]
        x = torch.randn(4, 2, 5, generator=gen) * scale
        y, state = model(x)
        assert torch.isfinite(y).all(), f"non-finite output at step {i} (input scale {scale})"
        assert all(torch.isfinite(t).all() for t in state), f"non-finite state at step {i}"
        loss = torch.nn.functional.binary_cross_entropy_with_logits(y, torch.rand(4, 2, 3, generator=gen).round())
        opt.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None), f"step {i}"
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()


@pytest.mark.parametrize("cls", [NTM, DNC])
def test_finite_with_random_extreme_parameters(cls):
    """Parameters scaled up to 1e3 (key strengths and sharpening exponents in the thousands, on
    the flat constant memory of step 0): outputs, states and gradients stay finite."""
    gen = torch.Generator().manual_seed(1)
    for scale in (1.0, 10.0, 100.0, 1000.0):
        torch.manual_seed(0)
        model = cls(5, 3, read_heads=2, **SMALL)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(scale * torch.rand(p.shape, generator=gen) * 2)
        y, state = model(torch.randn(6, 3, 5, generator=gen) * scale)
        assert torch.isfinite(y).all() and all(torch.isfinite(t).all() for t in state), (cls.__name__, scale)
        y.square().mean().backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters()), (cls.__name__, scale)


def test_bad_input_names_the_expected_shape():
    ntm, _, dnc, _ = _models()
    with pytest.raises(ValueError, match=r"\[time, batch, 5\]"):
        ntm(torch.randn(4, 2, 7))
    with pytest.raises(ValueError, match=r"\[batch, 5\]"):
        dnc(torch.randn(2, 6))
    with pytest.raises(ValueError, match=r"step .*or a sequence"):
        ntm(torch.randn(5))
    state = dnc.initial_state(3)
    with pytest.raises(ValueError, match=r"batch size 6 but the state has 3.*time, batch"):
        dnc(torch.randn(3, 6, 5), state)  # batch-major sequence given to a time-major core
    with pytest.raises(ValueError, match=r"\[time, batch, 5\]"):
        LSTMBaseline(5, 3)(torch.randn(2, 3))


def test_bad_options_are_rejected_with_the_allowed_values():
    with pytest.raises(ValueError, match=r"unknown option.*memory_size.*known"):
        NTM(5, 3, memory_size=8)
    with pytest.raises(ValueError, match="unknown controller 'gru'"):
        DNC(5, 3, controller="gru")
    with pytest.raises(ValueError, match="memory_init"):
        NTM(5, 3, memory_init="zeros")
    with pytest.raises(ValueError, match="read_heads must be an integer >= 1"):
        DNC(5, 3, read_heads=0)
    with pytest.raises(ValueError, match="shift_range"):
        NTM(5, 3, memory_slots=4, shift_range=2)
    with pytest.raises(ValueError, match="either config= or keyword"):
        NTM(5, 3, config=NTMConfig(), memory_slots=8)
    with pytest.raises(ValueError, match="config must be a DNCConfig"):
        DNC(5, 3, config=NTMConfig())
    assert DNC(5, 3, config=DNCConfig(memory_slots=8)).config.memory_slots == 8
    with pytest.raises(ValueError, match=r"bypass_dropout must be in \[0, 1\), got 1.0"):
        DNC(5, 3, bypass_dropout=1.0)


@pytest.mark.parametrize("index", range(4))
def test_bypass_dropout_drops_only_the_controllers_direct_path(index):
    """Bypass dropout (ADNC) is off in evaluation (outputs equal those of the same weights without
    it) and in training zeroes the controller's columns of the output layer's input only: the
    state (memory, reads, addressing) is the one without dropout, and with the controller's
    output-layer weights zeroed the dropout changes nothing."""
    torch.manual_seed(0)
    plain = _models()[index]
    torch.manual_seed(0)
    dropped = _models(bypass_dropout=0.5)[index]
    x = torch.randn(6, 3, 5)
    dropped.eval()
    torch.testing.assert_close(dropped(x)[0], plain(x)[0])
    dropped.train()
    torch.manual_seed(1)
    y_train, state_train = dropped(x)
    y_plain, state_plain = plain(x)
    assert not torch.allclose(y_train, y_plain)
    for a, b in zip(state_train, state_plain, strict=True):
        torch.testing.assert_close(a, b)
    c = plain.config.controller_size
    with torch.no_grad():
        for m in (plain, dropped):
            m.output.weight[:, :c] = 0.0
    torch.testing.assert_close(dropped(x)[0], plain(x)[0])


@pytest.mark.slow
@pytest.mark.parametrize("cls", [NTM, DNC])
def test_compiled_step_matches_eager(cls):
    torch.manual_seed(0)
    eager = cls(5, 3, **SMALL)
    compiled = cls(5, 3, **SMALL)
    compiled.load_state_dict(eager.state_dict())
    compiled.compile_step()
    x = torch.randn(5, 2, 5)
    y_eager, y_compiled = eager(x)[0], compiled(x)[0]
    torch.testing.assert_close(y_compiled, y_eager, atol=1e-5, rtol=1e-5)
    y_eager.square().sum().backward()
    y_compiled.square().sum().backward()
    for a, b in zip(eager.parameters(), compiled.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, atol=1e-5, rtol=1e-4)


def test_dnc_runs_the_link_math_of_addressing(monkeypatch):
    """The DNC's default forward calls ``addressing.update_link`` and ``directional_weightings``:
    a researcher's change to either changes the output."""
    from memory_nets import addressing

    torch.manual_seed(0)
    dnc = DNC(5, 3, read_heads=2, **SMALL)
    x = torch.randn(6, 2, 5)
    before = dnc(x)[0]
    original = addressing.update_link
    monkeypatch.setattr(addressing, "update_link", lambda *args: 0.5 * original(*args))  # links that fade
    assert not torch.allclose(dnc(x)[0], before)
    monkeypatch.setattr(addressing, "update_link", original)
    torch.testing.assert_close(dnc(x)[0], before, rtol=0, atol=0)
    forward_only = addressing.directional_weightings
    monkeypatch.setattr(addressing, "directional_weightings",
                        lambda link, w: (forward_only(link, w)[0], torch.zeros_like(forward_only(link, w)[1])))
    assert not torch.allclose(dnc(x)[0], before)


@pytest.mark.gpu
@pytest.mark.parametrize("cls", [NTM, DNC])
def test_cuda_matches_cpu(cls):
    torch.manual_seed(0)
    cpu = cls(5, 3, read_heads=2, **SMALL)
    gpu = cls(5, 3, read_heads=2, device="cuda", **SMALL)
    gpu.load_state_dict(cpu.state_dict())
    x = torch.randn(6, 4, 5)
    y_cpu, _ = cpu(x)
    y_gpu, s = gpu(x.cuda())
    assert s.memory.device.type == "cuda"
    torch.testing.assert_close(y_gpu.cpu(), y_cpu, atol=1e-4, rtol=1e-4)
    y_gpu.sum().backward()
    assert all(p.grad is not None and p.grad.device.type == "cuda" for p in gpu.parameters())
