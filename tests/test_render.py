"""Offscreen filmstrips and videos: frames that show the motion, an MP4 that opens."""

import numpy as np
import pytest
from typer.testing import CliRunner

from diversity.cli import app
from emulator.simulation.render import Renderer, RenderError


def _renderer(model, **kw):
    try:
        return Renderer(model, **kw)
    except RenderError as e:  # no OSMesa/EGL on this machine: say so (CI installs libosmesa6)
        pytest.skip(str(e))


def test_frames_of_a_moving_full_body_differ(myofullbody):
    from emulator.motion.sources import load_demo

    walk = load_demo("walk", myofullbody)
    r = _renderer(myofullbody, width=160, height=160)
    a = r.frame(walk.qpos[0]).astype(float)
    b = r.frame(walk.qpos[walk.n_frames // 2]).astype(float)
    red = np.tile([1.0, 0.0, 0.0, 1.0], (myofullbody.n_muscles, 1))
    c = r.frame(walk.qpos[0], red).astype(float)
    r.close()
    assert a.shape == (160, 160, 3)
    assert a.std() > 10 and b.std() > 10  # not blank
    assert np.abs(a - b).mean() > 1.0  # the pose changed
    assert (c[..., 0] - c[..., 1]).mean() > (a[..., 0] - a[..., 1]).mean()  # muscles coloured red


def test_cli_render_writes_a_filmstrip_and_an_mp4(tmp_path, elbow, store):
    import imageio.v2 as imageio
    import matplotlib.image as mpimg

    _renderer(elbow, width=32, height=32).close()
    res = CliRunner().invoke(app, ["render", str(store), "--seed", "1", "--out", str(tmp_path / "r"), "--frames", "4",
                                   "--width", "96", "--height", "96"])  # fmt: skip
    assert res.exit_code == 0, res.output
    strip = mpimg.imread(tmp_path / "r" / "filmstrip_seed1.png")
    assert strip.ndim == 3 and strip.std() > 0.05
    assert (tmp_path / "r" / "filmstrip_seed1.pdf").stat().st_size > 1000
    reader = imageio.get_reader(tmp_path / "r" / "rollout_seed1.mp4")
    frames = [f for f in reader]
    reader.close()
    assert len(frames) > 10 and frames[0].shape[:2] == (96, 192)  # rollout beside reference
    assert np.abs(frames[0].astype(float) - frames[len(frames) // 2]).mean() > 0.5  # the arm moved
    res = CliRunner().invoke(app, ["render", str(store), "--seed", "7", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "no seed 7" in res.output
