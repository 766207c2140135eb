"""The model of the user's report (seed 000): adaptive exponential integrate-and-fire
with ``(unless refractory)``, reset ``v=vre; w += wadd``, threshold ``v > 0*mV`` and
the refractory period ``tref`` among the fitted parameters, fitted to the HH
tutorial's traces with TraceFitter. It fits without any error.

    python examples/adex_refractory.py [DATA_DIR] [--rounds N] [--samples N]
"""

import argparse
import os

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("data_dir", nargs="?", default=None)
parser.add_argument("--rounds", type=int, default=5)
parser.add_argument("--samples", type=int, default=50)
args = parser.parse_args()
if args.data_dir is None:
    from modelfit_core.tools.datasets import DATA_DIR
    args.data_dir = str(DATA_DIR)
os.chdir(args.data_dir)

from modelfit_core import *
from brian2 import *
import pandas as pd
inp_trace = pd.read_csv('input_traces_hh.csv', index_col=0).to_numpy()
out_trace = pd.read_csv('output_traces_hh.csv', index_col=0).to_numpy()

model = '''dv/dt = (gL*(EL-v)+gL*DeltaT*exp((v-VT)/DeltaT) -w + I)/Cm : volt (unless refractory)
  dw/dt=(a*(v-EL)-w)/tauw : amp
  gL : siemens (constant)
  EL : volt (constant)
  DeltaT :  volt (constant)
  VT : volt (constant)
  a : siemens (constant)
  tauw : second (constant)
  wadd : ampere (constant)
  vre : volt (constant)
  Cm : farad (constant)
  tref : second (constant)
'''

opt = NevergradOptimizer()
metric = MSEMetric()
fitter = TraceFitter(model=model,
                     input={'I': inp_trace*amp},
                     output={'v': out_trace*mV},
                     dt=0.01*ms, n_samples=args.samples,
                     param_init={'v': -65*mV},
                     reset='v=vre; w += wadd',
                     threshold='v > 0*mV',
                     refractory='tref',
                     method='exponential_euler')

res, error = fitter.fit(n_rounds=args.rounds, optimizer=opt, metric=metric,
                        gL=[2*psiemens, 300*nsiemens],
                        EL=[-80*mV, -60*mV],
                        DeltaT=[0.5*mV, 5*mV],
                        VT=[-60*mV, -40*mV],
                        a=[0.1*nsiemens, 10*nsiemens],
                        tauw=[10*ms, 300*ms],
                        wadd=[1*pamp, 200*pamp],
                        vre=[-80*mV, -50*mV],
                        Cm=[10*pfarad, 500*pfarad],
                        tref=[0.1*ms, 5*ms])
traces = fitter.generate_traces()
diverged = len([row for row in fitter.results() if row['diverged']])
print("best:", res)
print("error:", error, "| diverged parameter sets:", diverged, "of", len(fitter.results()))
