import atexit
import os
import shutil
import tempfile
import warnings

import pytest

# MJX on CPU: keep XLA from grabbing every core for each compile, and keep the tests' numbers
# independent of thread scheduling.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
# One XLA compilation cache for the session and the CLI processes its tests start (they inherit
# the environment): the same programs, built by other trainers or other processes, compile once
# (~15 % off the training tests). A fresh directory each session: nothing carries between runs.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="jax-cache-")
    atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], True)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
warnings.filterwarnings("ignore", message="Attaching a spec with an empty prefix")


@pytest.fixture(scope="session")
def elbow():
    from emulator.models import load_model

    return load_model("elbow")


@pytest.fixture(scope="session")
def myolegs():
    from emulator.models import load_model

    return load_model("myolegs")


def stiffened(model_name: str, stiffness: float = 2000.0, damping: float = 50.0):
    """The model with stiff joint springs holding its standing pose: a statue that stands."""
    from emulator.models import load_model

    base = load_model(model_name)
    ref = {j.name: base.standing_qpos[j.qpos_index] for j in base.joints}

    def edit(spec):
        for j in spec.joints:
            if j.name in ref:
                j.stiffness = [stiffness, 0, 0]
                j.springref = ref[j.name]
                j.damping = [damping, 0, 0]

    return load_model(model_name, edit=edit)


DATASETS = __import__("pathlib").Path(__file__).resolve().parents[1] / "datasets"
FALISSE = DATASETS / "walking-falisse2019"


def build_script():
    """``scripts/build_datasets.py`` (what made the shipped files) as a module."""
    import importlib.util

    path = DATASETS.parent / "scripts" / "build_datasets.py"
    spec = importlib.util.spec_from_file_location("build_datasets", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def myofullbody():
    from emulator.models import load_model

    return load_model("myofullbody")


# A tiny 4-seed elbow run (4 envs x 32 steps x 3 iterations per seed, small networks, a 1 s
# rollout), shared by the store, render and analysis tests.
def _tiny_run():
    from diversity.config import RunConfig

    return RunConfig(
        seeds=(0, 1, 2, 3),
        steps=4 * 32 * 3,
        n_envs=4,
        cycles=0.5,
        block_size=2,
        checkpoint_every=1,
        train={"ppo": {"hidden": [32, 32]}},
    )


TINY_RUN = _tiny_run()


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    """The tiny run's store (read-only: copy it before changing anything)."""
    from diversity.pipeline import run

    out = tmp_path_factory.mktemp("run") / "tiny.zarr"
    report = run(TINY_RUN, out)
    assert report.trained == [0, 1, 2, 3] and report.completed == [0, 1, 2, 3]
    return out


@pytest.fixture(scope="session")
def legs_store(tmp_path_factory):
    """Two myolegs seeds, barely trained (seconds), one motion cycle each: for the export and
    OpenSim-trial tests, where what matters is the files and the plumbing."""
    from diversity.config import RunConfig
    from diversity.pipeline import run

    cfg = RunConfig(model="myolegs", seeds=(0, 1), steps=4 * 32, n_envs=4, cycles=1.0, block_size=2,
                    checkpoint_every=0, train={"ppo": {"hidden": [32, 32]}})  # fmt: skip
    out = tmp_path_factory.mktemp("legs") / "legs.zarr"
    run(cfg, out)
    return out
