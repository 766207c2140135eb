"""Inference on the Hodgkin-Huxley model, simple interface (the manual's example), with modelfit.

Only the import line differs from the manual; the numbers of simulations
and rounds are smaller by default so that it runs in about a minute.
Usage:

    python examples/hh_inference.py [DATA_DIR] [--samples N] [--rounds R] [--out DIR]

DATA_DIR holds input_traces_hh.csv and output_traces_hh.csv (default: the
dataset bundled with modelfit; ../shared/data has the tutorial's own files).
The plots are written to DIR (default output/hh_inference).
"""

import argparse
import os
import sys

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("data_dir", nargs="?", default=None)
parser.add_argument("--samples", type=int, default=500, help="simulations per round "
                    "(the manual: 5000)")
parser.add_argument("--rounds", type=int, default=2, help="rounds of inference (the manual: 3)")
parser.add_argument("--epochs", type=int, default=50, help="cap on training epochs per round "
                    "(0: train until converged, as the manual)")
parser.add_argument("--out", default=os.path.join("output", "hh_inference"))
args = parser.parse_args()
out_dir = os.path.abspath(args.out)
os.makedirs(out_dir, exist_ok=True)
if args.data_dir is None:
    from modelfit_core.tools.datasets import DATA_DIR
    args.data_dir = str(DATA_DIR)
os.chdir(args.data_dir)  # the example reads the CSV files from the working directory

import matplotlib  # noqa: E402
matplotlib.use("Agg")  # write files; no window

# --- the manual's example ------------------------------------------------------
from brian2 import *  # noqa: E402,F401,F403
from modelfit_core import *  # noqa: E402,F401,F403
import pandas as pd  # noqa: E402

df_inp_traces = pd.read_csv('input_traces_hh.csv')
df_out_traces = pd.read_csv('output_traces_hh.csv')
inp_traces = df_inp_traces.to_numpy()
inp_traces = inp_traces[[0, 1], 1:]
out_traces = df_out_traces.to_numpy()
out_traces = out_traces[[0, 1], 1:]

area = 20_000*um**2
El = -65*mV
EK = -90*mV
ENa = 50*mV
VT = -63*mV
dt = 0.01*ms
eqs = '''
dv/dt = (gl*(El-v) - g_na*(m*m*m)*h*(v-ENa) - g_kd*(n*n*n*n)*(v-EK) + I)/Cm : volt
dm/dt = 0.32*(mV**-1)*(13.*mV-v+VT)/
        (exp((13.*mV-v+VT)/(4.*mV))-1.)/ms*(1-m)-0.28*(mV**-1)*(v-VT-40.*mV)/
        (exp((v-VT-40.*mV)/(5.*mV))-1.)/ms*m : 1
dn/dt = 0.032*(mV**-1)*(15.*mV-v+VT)/
        (exp((15.*mV-v+VT)/(5.*mV))-1.)/ms*(1.-n)-.5*exp((10.*mV-v+VT)/(40.*mV))/ms*n : 1
dh/dt = 0.128*exp((17.*mV-v+VT)/(18.*mV))/ms*(1.-h)-4./(1+exp((40.*mV-v+VT)/(5.*mV)))/ms*h : 1

# free parameters
g_na : siemens (constant)
g_kd : siemens (constant)
gl   : siemens (constant)
Cm   : farad (constant)
'''

t = arange(0, out_traces.shape[1]*dt/ms, dt/ms)
stim_start, stim_end = t[where(inp_traces[0, :] != 0)[0][[0, -1]]]

list_of_features = [
    lambda x: max(x[(t > stim_start) & (t < stim_end)]),  # max active potential
    lambda x: mean(x[(t > stim_start) & (t < stim_end)]),  # mean active potential
    lambda x: std(x[(t > stim_start) & (t < stim_end)]),  # std active potential
    lambda x: mean(x[(t > .25 * stim_start) & (t < .75 * stim_start)]),  # resting
]

inferencer = Inferencer(dt=dt, model=eqs,
                        input={'I': inp_traces*amp},
                        output={'v': out_traces*mV},
                        features={'v': list_of_features},
                        method='exponential_euler',
                        threshold='m > 0.5',
                        refractory='m > 0.5',
                        param_init={'v': 'VT'})

train_kwargs = {'max_num_epochs': args.epochs} if args.epochs else {}
posterior = inferencer.infer(n_samples=args.samples,
                             n_rounds=args.rounds,
                             inference_method='SNPE',
                             density_estimator_model='mdn',
                             train_kwargs=train_kwargs,
                             gl=[1e-09*siemens, 1e-07*siemens],
                             g_na=[2e-06*siemens, 2e-04*siemens],
                             g_kd=[6e-07*siemens, 6e-05*siemens],
                             Cm=[0.1*uF*cm**-2*area, 2*uF*cm**-2*area])

samples = inferencer.sample((5_000, ))

limits = {'gl': [1e-9*siemens, 1e-07*siemens],
          'g_na': [2e-06*siemens, 2e-04*siemens],
          'g_kd': [6e-07*siemens, 6e-05*siemens],
          'Cm': [0.1*uF*cm**-2*area, 2*uF*cm**-2*area]}

labels = {'gl': r'$\overline{g}_{l}$',
          'g_na': r'$\overline{g}_{Na}$',
          'g_kd': r'$\overline{g}_{K}$',
          'Cm': r'$C_{m}$'}

fig, ax = inferencer.pairplot(limits=limits,
                              labels=labels,
                              ticks=limits,
                              figsize=(6, 6))
fig.savefig(os.path.join(out_dir, 'pairplot.png'))

condition = inferencer.sample((1, ))
fig, ax = inferencer.conditional_pairplot(condition=condition,
                                          limits=limits,
                                          labels=labels,
                                          ticks=limits,
                                          figsize=(6, 6))
fig.savefig(os.path.join(out_dir, 'conditional_pairplot.png'))

inf_traces = inferencer.generate_traces(output_var='v')

nrows = 2
ncols = out_traces.shape[0]
fig, axs = subplots(nrows, ncols, sharex=True,
                    gridspec_kw={'height_ratios': [3, 1]}, figsize=(9, 3))
for idx in range(ncols):
    axs[0, idx].plot(t, out_traces[idx, :].T, 'C3-', lw=3, label='recordings')
    axs[0, idx].plot(t, inf_traces[idx, :].T/mV, 'k--', lw=2, label='sampled traces')
    axs[1, idx].plot(t, inp_traces[idx, :].T/nA, lw=3, c='k', label='stimuli')
    axs[1, idx].set_xlabel('$t$, ms')
    if idx == 0:
        axs[0, idx].set_ylabel('$V$, mV')
        axs[1, idx].set_ylabel('$I$, nA')
handles, labels = [(h + l) for h, l in zip(axs[0, idx].get_legend_handles_labels(),
                                           axs[1, idx].get_legend_handles_labels())]
fig.legend(handles, labels)
tight_layout()
fig.savefig(os.path.join(out_dir, 'traces.png'))

# --- beyond the example: a summary -------------------------------------------------
corr = inferencer.conditional_corrcoeff(condition=condition, limits=limits)
print("posterior median:", {name: Quantity(value, dim=inferencer.space.dims[k])
                            for k, (name, value) in enumerate(zip(inferencer.param_names,
                                                                  median(samples, axis=0)))})
print("conditional correlations:\n", corr.round(2))
print("plots written to", out_dir)
sys.exit(0)
