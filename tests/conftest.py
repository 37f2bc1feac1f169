import os
import warnings

import pytest

# MJX on CPU: keep XLA from grabbing every core for each compile, and keep the tests' numbers
# independent of thread scheduling.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
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


@pytest.fixture(scope="session")
def myofullbody():
    from emulator.models import load_model

    return load_model("myofullbody")
