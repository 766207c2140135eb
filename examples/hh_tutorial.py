"""The TraceFitter tutorial of the brian2modelfitting manual, run with modelfit.

Only the import line differs from the manual. Usage:

    python examples/hh_tutorial.py [DATA_DIR] [--rounds N]

DATA_DIR holds input_traces_hh.csv and output_traces_hh.csv (default: the
dataset bundled with modelfit; ../shared/data has the tutorial's own files).
"""

import argparse
import os
import sys

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("data_dir", nargs="?", default=None)
parser.add_argument("--rounds", type=int, default=10)
parser.add_argument("--samples", type=int, default=100)
args = parser.parse_args()
if args.data_dir is None:
    from modelfit_core.tools.datasets import DATA_DIR
    args.data_dir = str(DATA_DIR)
os.chdir(args.data_dir)  # the tutorial reads the CSV files from the working directory

# --- the tutorial, as in the manual ------------------------------------------
from brian2 import *
from modelfit_core import *

import pandas as pd
inp_trace = pd.read_csv('input_traces_hh.csv', index_col=0).to_numpy()
out_trace = pd.read_csv('output_traces_hh.csv', index_col=0).to_numpy()

area = 20000*umetre**2
Cm=1*ufarad*cm**-2 * area
El=-65*mV
EK=-90*mV
ENa=50*mV
VT=-63*mV

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

opt = NevergradOptimizer()
metric = MSEMetric()

fitter = TraceFitter(model=model,
                     input={'I': inp_trace*amp},
                     output={'v': out_trace*mV},
                     dt=0.01*ms, n_samples=args.samples, method='exponential_euler',
                     param_init={'v': -65*mV})

res, error = fitter.fit(n_rounds=args.rounds,
                        optimizer=opt,
                        metric=metric,
                        gl=[2*psiemens, 200*nsiemens],
                        g_na=[200*nsiemens, 0.4*msiemens],
                        g_kd=[200*nsiemens, 200*usiemens])

traces = fitter.generate_traces()

# --- beyond the tutorial's first page: the other documented calls ------------
print("best:", res, "error:", error)
print("traces:", traces.shape, "in", traces.dim)
print("results as list (first):", fitter.results(format='list')[0])
print("results as dict keys:", sorted(fitter.results(format='dict')))
print(fitter.results(format='dataframe', use_units=False).head())
states = fitter.generate(output_var=['v', 'h', 'n', 'm'], params=res, param_init={'v': -65*mV})
print("generated variables:", {k: v.shape for k, v in states.items()})
res2, error2 = fitter.fit(n_rounds=2, optimizer=opt, metric=metric,
                          gl=[2*psiemens, 200*nsiemens], g_na=[200*nsiemens, 0.4*msiemens],
                          g_kd=[200*nsiemens, 200*usiemens])
print("continued fit, error:", error2, "<=", error, ":", bool(error2 <= error))
res3, error3 = fitter.fit(n_rounds=2, restart=True, callback=None,
                          optimizer=NevergradOptimizer(), metric=MSEMetric(),
                          gl=[2*psiemens, 200*nsiemens], g_na=[200*nsiemens, 0.4*msiemens],
                          g_kd=[200*nsiemens, 200*usiemens])
print("restarted fit, 2 rounds, error:", error3)
sys.exit(0)
