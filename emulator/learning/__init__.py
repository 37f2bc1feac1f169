"""Learning: rewards, agents (PPO, Qflex), the many-seed trainer, rollouts and kept policies."""
