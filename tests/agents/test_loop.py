import torch

from agents.loop import ActionLog


def test_action_log_dtype_follows_the_action_space_not_the_first_actions():
    small = ActionLog(num_actions=6)
    small.append(torch.tensor([5, 0]))
    assert small.state().dtype == torch.uint8
    large = ActionLog(num_actions=300)
    large.append(torch.tensor([1, 2]))  # small values first...
    large.append(torch.tensor([299, 280]))  # ...must not wrap later
    assert large.state()[1].tolist() == [299, 280]
    continuous = ActionLog(num_actions=0)
    continuous.append(torch.tensor([[0.25], [-1.5]]))
    assert continuous.state().dtype == torch.float32 and continuous.state()[0, 1, 0] == -1.5
    for _ in range(2000):  # grows past the initial 1024 rows
        small.append(torch.tensor([3, 4]))
    assert small.length == 2001 and small.state()[-1].tolist() == [3, 4]
