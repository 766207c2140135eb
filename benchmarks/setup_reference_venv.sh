#!/usr/bin/env bash
# Create a separate virtual environment holding the *reference* package
# brian2modelfitting (PyPI 0.4, 2020), so that benchmarks/reference_hh_fit.py
# can time its TraceFitter + NevergradOptimizer + MSEMetric fit.
#
# Usage: benchmarks/setup_reference_venv.sh [VENV_DIR]   (default /work/main/.refvenv)
#        PYTHON=python3.11 benchmarks/setup_reference_venv.sh ...   (interpreter override)
#
# Why these pins (everything else is left to pip's resolver):
#   brian2modelfitting==0.4   newest on PyPI; imports skopt + nevergrad at import
#                             time, no sbi/torch (so torch is NOT installed).
#   brian2==2.9.0             newest Brian supporting Python 3.11.
#   numpy==1.23.5             lower bound: brian2 2.9.0 needs numpy>=1.23.5.
#                             upper bound: nevergrad 0.3.0 uses np.float / np.int
#                             (removed in numpy 1.24 -> AttributeError in
#                             NevergradOptimizer.initialize), and
#                             brian2modelfitting.metric does `from numpy import NaN`
#                             (removed in numpy 2.0). 1.23.5 is the only release
#                             satisfying both (also satisfies Brian's numpy<2.4).
#   nevergrad==0.3.0          brian2modelfitting requires nevergrad>=0.2,<=0.3 and
#                             uses the old `nevergrad.instrumentation` API.
#   bayesian-optimization<2   nevergrad 0.3.0 does `from bayes_opt import
#                             UtilityFunction`, removed in 2.0 (given numpy==1.23.5
#                             the resolver would pick 1.x anyway; pinned explicitly
#                             so the reason is documented).
#   pandas                    used by the benchmark script to read the CSV traces
#                             (also a dependency of nevergrad 0.3.0).
#   matplotlib<3.9            what the tutorial's users have (they plot); Brian's
#                             `from brian2 import *` imports pylab when it is there,
#                             so both sides pay the same Brian import in
#                             benchmarks/whole_script.py. <3.9 still supports numpy 1.23.
set -euo pipefail

VENV_DIR="${1:-$(cd "$(dirname "$0")/.." && pwd)/.refvenv}"
PYTHON="${PYTHON:-python3}"

pyver="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [[ "$pyver" != "3.11" ]]; then
    echo "error: $PYTHON is Python $pyver, need 3.11 (set PYTHON=...)" >&2
    exit 1
fi

"$PYTHON" -m venv "$VENV_DIR"
PIP=("$VENV_DIR/bin/python" -m pip)

"${PIP[@]}" install --upgrade pip

"${PIP[@]}" install \
    "brian2==2.9.0" \
    "numpy==1.23.5" \
    "nevergrad==0.3.0" \
    "bayesian-optimization<2" \
    "brian2modelfitting==0.4" \
    "pandas" \
    "matplotlib<3.9"

# Smoke test: the imports and one tiny optimizer ask/tell cycle (this is where
# the numpy>=1.24 incompatibility of nevergrad 0.3.0 would show up).
"$VENV_DIR/bin/python" - <<'EOF'
import warnings
warnings.simplefilter("ignore")
from brian2modelfitting import TraceFitter, NevergradOptimizer, MSEMetric
import brian2, brian2modelfitting, nevergrad, numpy
opt = NevergradOptimizer()
opt.initialize(["a", "b"], popsize=4, a=[0, 1], b=[1, 2])
params = opt.ask(4)
opt.tell(params, [float(i) for i in range(4)])
opt.recommend()
print("reference venv OK: brian2 %s, brian2modelfitting %s, nevergrad %s, numpy %s"
      % (brian2.__version__, brian2modelfitting.__version__,
         nevergrad.__version__, numpy.__version__))
EOF
