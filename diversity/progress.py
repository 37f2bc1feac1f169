"""Progress of a run: a small callback interface, a silent one and a rich display.

The pipeline calls :class:`Progress` methods; the CLI and notebooks pass :class:`RichProgress`
(a live bar on a terminal or in Jupyter, plain log lines when output is redirected, e.g. in CI).
"""

from __future__ import annotations

import time

__all__ = ["Progress", "RichProgress"]


class Progress:
    """Silent progress: subclass and override what you need."""

    def start(self, *, n_seeds: int, n_done: int, total_steps: int, store: str) -> None:
        """Before training: seeds in the store, already completed, env steps still to run."""

    def update(
        self,
        *,
        steps: int,
        steps_per_s: float,
        joint_angle_error_deg: float,
        episode_length_s: float = float("nan"),
    ) -> None:
        """After each training iteration of a block: env steps done in it (all its seeds), the
        training joint-angle error and the mean length of the episodes that ended (NaN: none)."""

    def resumed(self, steps: int) -> None:
        """A block restarted from a checkpoint: ``steps`` env steps (all its seeds) were done
        before this run (they count as done, not into this run's speed or ETA)."""

    def seeds_done(self, seeds: list[int], joint_angle_error_deg: list[float]) -> None:
        """Seeds written to the store, with their rollout mean joint-angle error (deg)."""

    def message(self, text: str) -> None:
        """A one-line note (resume, checkpoint, interruption)."""

    def close(self) -> None:
        """The run ended (finished, failed or interrupted)."""


class RichProgress(Progress):
    """Seeds done, env steps/s, current mean tracking error, ETA."""

    def __init__(self, console=None, log_every_s: float = 30.0):
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal or self.console.is_jupyter
        self.log_every_s = log_every_s
        self._bar = None

    def start(self, *, n_seeds, n_done, total_steps, store):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.n_seeds, self.n_done, self.total = n_seeds, n_done, max(total_steps, 1)
        self.done_steps, self.rate, self.err, self.episode = 0, 0.0, float("nan"), float("nan")
        self.resumed_steps = 0  # done before this run (from checkpoints)
        self.t0 = self._last_log = time.perf_counter()
        self._print(f"{store}: {n_seeds} seeds, {n_done} already completed, {total_steps:,} env steps to run")
        if self.live:
            self._bar = Progress(
                TextColumn("seeds {task.fields[done]}/{task.fields[n]}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TextColumn("{task.fields[rate]:>8,.0f} steps/s"),
                TextColumn("joint err {task.fields[err]:5.2f} deg"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self._bar.start()
            self._task = self._bar.add_task(
                "train", total=self.total, done=n_done, n=n_seeds, rate=0.0, err=float("nan")
            )

    def update(self, *, steps, steps_per_s, joint_angle_error_deg, episode_length_s=float("nan")):
        self.done_steps += steps
        self.rate, self.err, self.episode = steps_per_s, joint_angle_error_deg, episode_length_s
        if self._bar is not None:
            self._bar.update(self._task, advance=steps, rate=steps_per_s, err=joint_angle_error_deg)
        elif time.perf_counter() - self._last_log >= self.log_every_s:
            self._log()

    def resumed(self, steps):
        self.done_steps += steps
        self.resumed_steps += steps
        if self._bar is not None:
            self._bar.update(self._task, advance=steps)

    def _log(self):
        self._last_log = now = time.perf_counter()
        frac = min(self.done_steps / self.total, 1.0)
        new = self.done_steps - self.resumed_steps  # this run's steps set the pace
        left = max(self.total - self.done_steps, 0)
        eta = (now - self.t0) * left / new if new > 0 else float("nan")
        # how long episodes last is what a balance task's learning shows first (falls end them)
        episode = f"  episode {self.episode:.2f} s" if self.episode == self.episode else ""
        self._print(
            f"seeds {self.n_done}/{self.n_seeds}  {100 * frac:3.0f}%  {self.rate:,.0f} steps/s  "
            f"joint err {self.err:.2f} deg{episode}  elapsed {now - self.t0:.0f} s  ETA {eta:.0f} s"
        )

    def seeds_done(self, seeds, joint_angle_error_deg):
        self.n_done += len(seeds)
        if self._bar is not None:
            self._bar.update(self._task, done=self.n_done)
        errs = ", ".join(f"{s}: {e:.2f}" for s, e in zip(seeds, joint_angle_error_deg, strict=True))
        line = f"wrote seeds {errs} (rollout joint-angle error, deg)"
        self._print(line)
        if self._bar is None:
            self._log()

    def message(self, text):
        self._print(text)

    def _print(self, text: str) -> None:
        # plain text (paths and seed lists are not markup), one line however narrow the log
        console = self._bar.console if self._bar is not None else self.console
        console.print(text, highlight=False, markup=False, soft_wrap=True)

    def close(self):
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
