"""The passive-membrane fit that the command-line, config-security and storage-file tests
write as ``fit.toml`` beside its CSV data (two traces, 0.1 ms steps, mV)."""

import pandas as pd

_CONFIG = """
[model]
equations = '''
dv/dt = (gl*(El - v) + I)/C : volt
gl : siemens (constant)
C : farad (constant)
'''
param_init = { v = "-70*mV" }
constants = { El = "-70*mV" }

[data]
input = "input.csv"
input_variable = "I"
input_unit = "amp"
output = "output.csv"
output_variable = "v"
output_unit = "mV"
dt = "0.1*ms"

[fit]
n_samples = N_SAMPLES
n_rounds = N_ROUNDS
seed = 2
storage = "sqlite:///fit.db"
study = "passive"
OUTPUT_DIRfeedback = "text"

[bounds]
gl = ["1*nS", "50*nS"]
C = ["50*pF", "500*pF"]
"""


def passive_config(n_samples: int, n_rounds: int, output_dir: str | None = "out") -> str:
    """The TOML text; ``output_dir=None`` leaves the key out."""
    output = f'output_dir = "{output_dir}"\n' if output_dir is not None else ""
    return (_CONFIG.replace("N_SAMPLES", str(n_samples)).replace("N_ROUNDS", str(n_rounds))
            .replace("OUTPUT_DIR", output))


def write_project(folder, config: str, currents, v_mv):
    """``input.csv`` (amp), ``output.csv`` (mV) and ``fit.toml`` in ``folder``; returns it."""
    pd.DataFrame(currents).to_csv(folder / "input.csv")
    pd.DataFrame(v_mv).to_csv(folder / "output.csv")
    (folder / "fit.toml").write_text(config)
    return folder
