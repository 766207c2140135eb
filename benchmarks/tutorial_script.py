"""The manual's TraceFitter tutorial as a whole script, timed phase by phase.

Run by ``benchmarks/whole_script.py`` in a fresh process, with either package:

    python benchmarks/tutorial_script.py --package modelfit  --data-dir DIR
    .refvenv/bin/python benchmarks/tutorial_script.py --package reference --data-dir DIR

The body is the tutorial as a user writes it (``from brian2 import *`` and the
package's star import, the CSV files read with pandas, NevergradOptimizer,
MSEMetric, 10 rounds of 100 samples, ``generate_traces``); the only
differences are the import line and, for brian2modelfitting 0.4, its older
``input_var``/``output_var`` form. Timestamps are taken between the phases
and printed as one JSON line on stdout at the very end.
"""

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--package", choices=["modelfit", "reference"], required=True)
parser.add_argument("--data-dir", required=True)
parser.add_argument("--n-samples", type=int, default=100)
parser.add_argument("--n-rounds", type=int, default=10)
parser.add_argument("--cython-cache-dir", default=None)
parser.add_argument("--optimizer", choices=["nevergrad", "pymoo", "default"],
                    default="nevergrad",
                    help="the tutorial's NevergradOptimizer(), or (modelfit only) "
                         "PymooOptimizer('DE'), or the default: fit() without optimizer= "
                         "(for this MSE fit the gradient optimizer, docs/optimizers.md)")
parser.add_argument("--import-optimizer-first", action="store_true",
                    help="import nevergrad with the package (brian2modelfitting always does; "
                         "modelfit otherwise imports it in the first round)")
args = parser.parse_args()
marks = {"started": 0.0}


def mark(name):
    marks[name] = time.perf_counter() - STARTED


from brian2 import *  # noqa: E402,F401,F403

mark("brian")
if args.package == "modelfit":
    from modelfit_core import *  # noqa: E402,F401,F403
else:
    from brian2modelfitting import *  # noqa: E402,F401,F403
if args.import_optimizer_first:
    import nevergrad  # noqa: E402,F401
mark("package")
if args.cython_cache_dir:
    prefs.codegen.runtime.cython.cache_dir = os.path.abspath(args.cython_cache_dir)  # noqa: F405

import pandas as pd  # noqa: E402

inp_trace = pd.read_csv(os.path.join(args.data_dir, "input_traces_hh.csv"),
                        index_col=0).to_numpy()
out_trace = pd.read_csv(os.path.join(args.data_dir, "output_traces_hh.csv"),
                        index_col=0).to_numpy()

area = 20000*umetre**2  # noqa: F405
Cm = 1*ufarad*cm**-2 * area  # noqa: F405
El = -65*mV  # noqa: F405
EK = -90*mV  # noqa: F405
ENa = 50*mV  # noqa: F405
VT = -63*mV  # noqa: F405

model = '''
dv/dt = (gl*(El-v) - g_na*(m*m*m)*h*(v-ENa) - g_kd*(n*n*n*n)*(v-EK) + I)/Cm : volt
dm/dt = 0.32*(mV**-1)*(13.*mV-v+VT)/
(exp((13.*mV-v+VT)/(4.*mV))-1.)/ms*(1-m)-0.28*(mV**-1)*(v-VT-40.*mV)/
(exp((v-VT-40.*mV)/(5.*mV))-1.)/ms*m : 1
dn/dt = 0.032*(mV**-1)*(15.*mV-v+VT)/
(exp((15.*mV-v+VT)/(5.*mV))-1.)/ms*(1.-n)-.5*exp((10.*mV-v+VT)/(40.*mV))/ms*n : 1
dh/dt = 0.128*exp((17.*mV-v+VT)/(18.*mV))/ms*(1.-h)-4./(1+exp((40.*mV-v+VT)/(5.*mV)))/ms*h : 1
g_na : siemens (constant)
g_kd : siemens (constant)
gl : siemens (constant)
'''
mark("data")

opt = {"nevergrad": NevergradOptimizer, "default": lambda: None,  # noqa: F405
       "pymoo": lambda: PymooOptimizer("DE")}[args.optimizer]()  # noqa: F405
metric = MSEMetric()  # noqa: F405
if "input_var" in inspect.signature(TraceFitter.__init__).parameters and \
        inspect.signature(TraceFitter.__init__).parameters["input_var"].default is \
        inspect.Parameter.empty:  # brian2modelfitting <= 0.4
    io = dict(input_var="I", output_var="v", input=inp_trace*amp, output=out_trace*mV)  # noqa: F405
else:
    io = dict(input={"I": inp_trace*amp}, output={"v": out_trace*mV})  # noqa: F405
fitter = TraceFitter(model=model, dt=0.01*ms, n_samples=args.n_samples,  # noqa: F405
                     method="exponential_euler", param_init={"v": -65*mV}, **io)  # noqa: F405
mark("construction")
bounds = dict(gl=[2*psiemens, 200*nsiemens], g_na=[200*nsiemens, 0.4*msiemens],  # noqa: F405
              g_kd=[200*nsiemens, 200*usiemens])  # noqa: F405
quiet = dict(callback=lambda *a, **k: False)
res, error = fitter.fit(n_rounds=1, optimizer=opt, metric=metric, **quiet, **bounds)
mark("first_round")
res, error = fitter.fit(n_rounds=args.n_rounds - 1, optimizer=opt, metric=metric, **quiet,
                        **bounds)
mark("later_rounds")
traces = fitter.generate_traces()
mark("generate")
sys.stdout.flush()
print(json.dumps({"package": args.package, "marks": marks,
                  "error": float(error), "n_rounds": args.n_rounds}), flush=True)
