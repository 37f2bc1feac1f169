"""Simulation: the physics backends (native MuJoCo threads or MJX), the batched tracking
environment, its Gymnasium wrapper and offscreen rendering."""
