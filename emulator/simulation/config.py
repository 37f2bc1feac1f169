"""Settings of the tracking environment (:class:`EnvConfig`), kept apart from the environment
so that configs load, validate and compare without building one."""

from __future__ import annotations

import math
from dataclasses import dataclass

ACTION_SPACES = ("excitation", "muscle_length", "muscle_length_residual")
SERVO_RATES = ("control", "physics")


@dataclass(frozen=True)
class EnvConfig:
    """Tracking-environment settings.

    Attributes:
        control_dt: seconds between policy actions; the physics takes
            ``round(control_dt / physics_dt)`` steps per action (100 Hz by default).
        physics_dt: the physics step (s); None keeps the model's own (``model.timestep``:
            0.002 s, 500 Hz, for the myo-sim models). A longer step makes every control step
            cheaper in proportion (KINESIS runs MyoLegs at 150 Hz: ``1/150``) but changes the
            dynamics: policies trained at one step do not transfer to another, so a
            continuation cannot change it. The physics backend must be built with it
            (``make_physics(..., timestep=config.physics_dt)``).
        future_frames: reference frames (in control steps ahead) shown to the policy.
        termination_distance_m: end an episode when the tracked bodies (root included) are
            farther than this from their reference positions (models with a moving root),
            reduced over bodies by ``termination_body``.
        termination_body: ``"max"`` (any body too far; a swing foot can end an episode) or
            ``"mean"`` (the bodies on average, as KINESIS's 0.15 m test).
        termination_joint_deg: end an episode when the mean joint-angle error exceeds this
            (every model; with a fixed base the only test, since bodies cannot drift far).
        train_termination_distance_m: ends *training* episodes instead of
            ``termination_distance_m`` (None: the same). Looser, a curriculum: the policy trains
            on drifted states it must recover from. Only ``Trainer.make_env`` reads it: rollouts,
            their scores and the gym env keep ``termination_distance_m``. A continuation may change it.
        termination_xcom_m: end an episode when the root's extrapolated horizontal error (Δ's
            ``root_xcom``: position error + velocity error x sqrt(h/g)) exceeds this (m; None:
            no such test). A sideways drift that will end in a fall fails here while the body
            is still close to its path. Models with a free root only.
        train_termination_xcom_m: ``termination_xcom_m`` for *training* episodes only (None:
            the same), as ``train_termination_distance_m``; a continuation may change it.
        push_speed_mps: pushes during *training* episodes (0: none), a curriculum for balance:
            at a random control step the whole body's horizontal velocity changes by this much
            (m/s, a random direction), as a shove at the centre of mass would, and the policy
            must recover. Models with a free root only. Like ``train_termination_distance_m``
            only ``Trainer`` applies it (rollouts and scores never push) and a continuation may
            change it.
        push_interval_s: mean time between two pushes of one environment (s; each control
            step pushes with probability ``control_dt / push_interval_s``).
        reset_kick_mps: shoves at the start of *training* episodes (0: none): at the first
            step after every reset the whole body's horizontal velocity changes by a random
            vector, uniform within a disc of this radius (m/s). A reset puts the body in the
            reference's state, which is not on the policies' own walk (at early single stance
            their root moves 0.1-0.15 m/s faster sideways and forward than the reference's;
            docs/walking.md, session 17), and a few cm/s sideways decide a fall: this trains
            the recovery from such starts. Training only, free roots; a continuation may change it.
        reset_walked: the share of *training* resets (0: none, up to 1) that restart an
            episode in a state the same seed's policy walked to, not in the reference's state:
            the training loop pools, per seed, states its environments reached after walking
            ``reset_walked_after_s`` since a reference start (a walked restart carries its
            state's walked time on, so chains of restarts reach states long walks meet) and
            restarts that share of ended episodes there. The reference's states are off the
            policies' own walk (docs/walking.md, session 17) and long walks drift in ways short
            episodes rarely see. Training only (rollouts start where asked); not with
            ``start_focus``, whose failure counts are per reference start frame; a continuation
            may change it.
        reset_walked_after_s: how long (s) a state's lineage must have walked since its
            reference start before the pool takes it.
        root_assist_hz: an assisting hand on the root during *training* (0: none), a curriculum
            for balance (Yu, Turk and Liu 2018's virtual assistant force): at every control step
            the root's horizontal velocity is nudged towards the reference's as a critically
            damped spring of this natural frequency would pull it (``w = 2 pi f``: the change is
            ``-control_dt (w^2 e_pos + 2 w e_vel)`` for the root's horizontal position and
            velocity errors), so the learner walks long enough to meet the states of a long
            walk; it fades linearly to nothing over the first ``root_assist_anneal`` of the
            run's iterations and is never applied outside ``Trainer`` (rollouts, scores and the
            gym env walk unaided). At most ``1 / (4 pi control_dt)`` (2.4 Hz at 30 Hz), beyond
            which the explicit nudge overshoots. Models with a free root only; a continuation may
            change it.
        root_assist_anneal: fraction of a run's iterations (0, 1] over which the assist fades
            from full strength to none.
        start_focus: share of *training* resets drawn toward the reference frames whose
            episodes fail most (0: every start frame equally likely, as reference state
            initialisation is): the rest are uniform, this share in proportion to the recent
            failure rate (terminations per control step lived) of the episodes that started at
            each frame, per seed (``focused_start_probs``; ``Trainer`` keeps the statistics,
            decayed by ``START_FOCUS_DECAY`` per iteration, and starts them afresh after a
            resume). A curriculum on the phases a policy falls from; like pushes only
            ``Trainer`` applies it (rollouts start where asked) and a continuation may change it.
        max_episode_s: truncate episodes after this long (None: the motion's length for
            non-cyclic motions, unlimited for cycles).
        reset_activation: every muscle's activation at a reset (0: passive muscles, the body
            sags at the first step; a small tone such as 0.05 starts it loaded).
        observe_previous_action: append the policy's last action ``[muscle]`` to the
            observation (at a reset: ``reset_activation``).
        observe_foot_contact: append each foot's ground reaction force ``[foot, 3]`` (left,
            right; world x, y, z) in body weights to the observation (0 in swing): which foot
            carries the body and how much. Models with feet on a floor only.
        action_space: what the policy's action ``[muscle]`` in [0, 1] means. ``"excitation"``:
            the excitations themselves. ``"muscle_length"``: target musculotendon lengths
            across each muscle's length range (``actuator_lengthrange``), turned into
            excitations by a PD law on the length error at every control step,
            ``e = clip(length_kp * (L - L*) / range + length_kd * dL/dt / range, 0, 1)``
            (a muscle longer than its target, or lengthening, is excited; KINESIS's recipe).
            The store records the excitations either way.
            ``"muscle_length_residual"``: the same PD law around the reference's own
            musculotendon lengths ``length_lead`` control steps ahead; the action moves the
            target by ``(2 a - 1) * length_residual`` of the length range (0.5: the reference),
            so an untrained policy is already a servo to the reference and learns corrections.
        length_kp / length_kd: the length action spaces' PD gains (per length range, per range/s).
        length_lead: control steps ahead of the present at which ``"muscle_length_residual"``
            reads the reference lengths (the muscles' activation lag makes 2-3 steps track best).
        length_residual: the largest target change of ``"muscle_length_residual"``, as a
            fraction of each muscle's length range.
        action_basis: a synergy basis (None: one action per muscle). Each synergy names the
            muscles it drives and their weights (>= 0; muscles not named weigh 0), as
            ``((muscle, weight), ...)`` pairs or, from TOML, ``[[env.action_basis]]`` tables;
            the policy then acts on ``k`` synergies (``u [k]`` in [0, 1]) and the env turns
            them into the per-muscle action its ``action_space`` reads: ``clip(u @ W, 0, 1)``
            as excitations (SAR's synergies), ``clip(0.5 + (u - 0.5) @ W, 0, 1)`` for the
            length spaces (0.5 stays the reference). The store records every muscle's
            excitation either way. ``diversity synergies STORE --k K`` writes one from a run's
            activations.
        servo_rate: where the length action spaces' PD law runs. ``"control"``: once per
            control step, its excitations held over the physics substeps. ``"physics"``: at
            every physics step, on the lengths and velocities sensed at the step before, the
            residual's reference target moving linearly between control frames within the
            step; the store's excitation is the substeps' mean. One physics call per substep;
            it keeps the servo fast under a slow policy (docs/walking.md).
        balance_reflex: a foot-placement reflex in the servo (0: none; needs
            ``"muscle_length_residual"`` and a free root with feet): the swing leg's reference
            muscle lengths shift so that its foot would land ``balance_reflex`` metres further
            per metre of the root's extrapolated horizontal error (Δ's ``root_xcom`` as a
            vector), through the ``balance_reflex_joints`` and the muscles' moment arms at the
            reference pose (SIMBICON's feedback in muscle lengths;
            :mod:`emulator.simulation.servo`). Part of the controller, in training and in every
            rollout alike; a continuation may change it.
        balance_reflex_joints: the joints the reflex moves, as base names each leg has with
            ``_l`` / ``_r`` (``hip_adduction``: sideways steps; add ``hip_flexion`` for
            longer or shorter ones).
    """

    control_dt: float = 0.01
    physics_dt: float | None = None
    future_frames: tuple[int, ...] = (1, 5)
    termination_distance_m: float = 0.3
    termination_body: str = "max"
    termination_joint_deg: float = 60.0
    train_termination_distance_m: float | None = None
    termination_xcom_m: float | None = None
    train_termination_xcom_m: float | None = None
    push_speed_mps: float = 0.0
    push_interval_s: float = 2.0
    reset_kick_mps: float = 0.0
    reset_walked: float = 0.0
    reset_walked_after_s: float = 1.0
    start_focus: float = 0.0
    root_assist_hz: float = 0.0
    root_assist_anneal: float = 0.5
    max_episode_s: float | None = 10.0
    reset_activation: float = 0.0
    observe_previous_action: bool = False
    observe_foot_contact: bool = False
    action_space: str = "excitation"
    length_kp: float = 5.0
    length_kd: float = 0.5
    length_lead: int = 3
    length_residual: float = 0.25
    servo_rate: str = "control"
    action_basis: tuple[tuple[tuple[str, float], ...], ...] | None = None
    balance_reflex: float = 0.0
    balance_reflex_joints: tuple[str, ...] = ("hip_adduction",)

    def __post_init__(self):
        joints = self.balance_reflex_joints
        joints = (joints,) if isinstance(joints, str) else tuple(str(j) for j in joints)
        object.__setattr__(self, "balance_reflex_joints", joints)
        if not self.balance_reflex >= 0 or not self.balance_reflex_joints:
            raise ValueError(
                f"balance_reflex must be >= 0 with at least one joint, got {self.balance_reflex}, "
                f"{self.balance_reflex_joints}"
            )
        if self.balance_reflex > 0 and self.action_space != "muscle_length_residual":
            raise ValueError(
                "balance_reflex shifts the servo's reference lengths: it needs action_space "
                f"'muscle_length_residual', got {self.action_space!r}"
            )
        if self.action_basis is not None:
            object.__setattr__(self, "action_basis", _basis_pairs(self.action_basis))
        if self.servo_rate not in SERVO_RATES:
            raise ValueError(f"servo_rate must be one of {SERVO_RATES}, got {self.servo_rate!r}")
        if self.action_space not in ACTION_SPACES:
            raise ValueError(f"action_space must be one of {ACTION_SPACES}, got {self.action_space!r}")
        if self.termination_body not in ("max", "mean"):
            raise ValueError(f"termination_body must be 'max' or 'mean', got {self.termination_body!r}")
        distances = {
            "termination_distance_m": self.termination_distance_m,
            "train_termination_distance_m": self.train_termination_distance_m,
            "termination_xcom_m": self.termination_xcom_m,
            "train_termination_xcom_m": self.train_termination_xcom_m,
        }
        if any(d is not None and d <= 0 for d in distances.values()):
            raise ValueError(f"termination distances must be > 0 m, got {distances}")
        if not 0.0 <= self.reset_walked <= 1.0 or not self.reset_walked_after_s >= 0:
            raise ValueError(
                f"reset_walked must be within [0, 1] and reset_walked_after_s >= 0 s, "
                f"got {self.reset_walked}, {self.reset_walked_after_s}"
            )
        if self.reset_walked > 0 and self.start_focus > 0:
            raise ValueError(
                "reset_walked and start_focus cannot be combined: the start-frame curriculum "
                "counts failures per reference start frame, walked restarts have none"
            )
        if not self.reset_kick_mps >= 0:
            raise ValueError(f"reset_kick_mps must be >= 0 m/s, got {self.reset_kick_mps}")
        if self.push_speed_mps < 0 or self.push_interval_s <= 0:
            raise ValueError(
                f"push_speed_mps must be >= 0 m/s and push_interval_s > 0 s, "
                f"got {self.push_speed_mps}, {self.push_interval_s}"
            )
        if self.root_assist_hz < 0 or not 0.0 < self.root_assist_anneal <= 1.0:
            raise ValueError(
                f"root_assist_hz must be >= 0 and root_assist_anneal within (0, 1], "
                f"got {self.root_assist_hz}, {self.root_assist_anneal}"
            )
        if 4 * math.pi * self.root_assist_hz * self.control_dt > 1:
            # the damping term changes the velocity by 2 w control_dt of its error per step:
            # beyond 1/2 the explicit nudge overshoots instead of damping
            raise ValueError(
                f"root_assist_hz must be at most 1 / (4 pi control_dt) = "
                f"{1 / (4 * math.pi * self.control_dt):.2f} Hz at control_dt {self.control_dt} s, "
                f"got {self.root_assist_hz}"
            )
        if not 0.0 <= self.start_focus <= 1.0:
            raise ValueError(f"start_focus must be within [0, 1], got {self.start_focus}")
        if not 0.0 <= self.reset_activation <= 1.0:
            raise ValueError(f"reset_activation must be within [0, 1], got {self.reset_activation}")
        if self.control_dt <= 0:
            raise ValueError(f"control_dt must be > 0 s, got {self.control_dt}")
        if self.physics_dt is not None and not 0 < self.physics_dt <= self.control_dt:
            raise ValueError(
                f"physics_dt must be > 0 s and at most control_dt ({self.control_dt} s), got {self.physics_dt}"
            )
        if self.length_lead < 0 or self.length_residual <= 0:
            raise ValueError(
                f"length_lead must be >= 0 and length_residual > 0, got {self.length_lead}, {self.length_residual}"
            )
        if any(int(k) < 1 for k in self.future_frames):
            raise ValueError(f"future_frames must be >= 1 control steps ahead, got {self.future_frames}")


def _basis_pairs(basis) -> tuple[tuple[tuple[str, float], ...], ...]:
    """``action_basis`` as hashable ``((muscle, weight), ...)`` per synergy, sorted by muscle,
    from pairs (lists after a JSON round trip) or ``{muscle: weight}`` tables; weights checked."""
    if isinstance(basis, (str, bytes)) or not hasattr(basis, "__len__") or len(basis) == 0:
        raise ValueError(f"action_basis must be a non-empty list of synergies, got {basis!r}")
    out = []
    for i, synergy in enumerate(basis):
        items = synergy.items() if isinstance(synergy, dict) else synergy
        try:
            pairs = tuple((str(name), float(w)) for name, w in items)
        except (TypeError, ValueError):
            raise ValueError(f"action_basis[{i}] must map muscle names to weights, got {synergy!r}") from None
        names = [n for n, _ in pairs]
        if len(set(names)) != len(names):
            raise ValueError(
                f"action_basis[{i}] names a muscle twice: {sorted(n for n in names if names.count(n) > 1)}"
            )
        bad = [(n, w) for n, w in pairs if not (w >= 0 and w < float("inf"))]
        if bad:
            raise ValueError(f"action_basis[{i}]: weights must be finite and >= 0, got {bad[:3]}")
        if not any(w > 0 for _, w in pairs):
            raise ValueError(f"action_basis[{i}] drives no muscle (every weight is 0)")
        out.append(tuple(sorted(pairs)))  # by muscle name: the order a file lists them in is no setting
    return tuple(out)
