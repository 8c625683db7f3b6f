"""Agents: device-resident replay buffers, the DQN family and the policy-gradient family."""

from agents.replay import PrioritizedReplayBuffer, ReplayBatch, ReplayBuffer

__all__ = ["PrioritizedReplayBuffer", "ReplayBatch", "ReplayBuffer"]
