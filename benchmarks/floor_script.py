"""The tutorial's simulations with Brian 2 alone: the floor under any fitting package.

Run by ``benchmarks/whole_script.py`` in a fresh process beside the tutorial
script. It does what a fit of the tutorial cannot avoid: ``from brian2 import *``,
the CSV files read with pandas, one network of ``n_samples`` × traces
Hodgkin–Huxley neurons driven by the recorded currents (Brian's runtime device,
Cython), and ``n_rounds`` runs of it with new random conductances, each scored
by its mean squared error in numpy. No optimizer, no fitting package. The
marks are those of ``tutorial_script.py`` (the "package" phase is empty);
``simulated`` lists each run's seconds inside Brian's compiled code objects
(``Network.run(profile=True)``): the simulation itself, without the code
generation and bookkeeping ``Network.run`` repeats on every call.

    python benchmarks/floor_script.py --data-dir DIR [--cython-cache-dir DIR]
"""

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--data-dir", required=True)
parser.add_argument("--n-samples", type=int, default=100)
parser.add_argument("--n-rounds", type=int, default=10)
parser.add_argument("--cython-cache-dir", default=None)
args = parser.parse_args()
marks = {"started": 0.0}


def mark(name):
    marks[name] = time.perf_counter() - STARTED


from brian2 import *  # noqa: E402,F401,F403

mark("brian")
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
dt = 0.01*ms  # noqa: F405
n_traces, n_steps = inp_trace.shape
n_neurons = args.n_samples * n_traces
# neuron k simulates trace k % n_traces: input_current(t, k) reads that trace
input_current = TimedArray(np.tile(inp_trace, (args.n_samples, 1)).T * amp, dt=dt)  # noqa: F405
model = '''
dv/dt = (gl*(El-v) - g_na*(m*m*m)*h*(v-ENa) - g_kd*(n*n*n*n)*(v-EK) + I)/Cm : volt
dm/dt = 0.32*(mV**-1)*(13.*mV-v+VT)/
(exp((13.*mV-v+VT)/(4.*mV))-1.)/ms*(1-m)-0.28*(mV**-1)*(v-VT-40.*mV)/
(exp((v-VT-40.*mV)/(5.*mV))-1.)/ms*m : 1
dn/dt = 0.032*(mV**-1)*(15.*mV-v+VT)/
(exp((15.*mV-v+VT)/(5.*mV))-1.)/ms*(1.-n)-.5*exp((10.*mV-v+VT)/(40.*mV))/ms*n : 1
dh/dt = 0.128*exp((17.*mV-v+VT)/(18.*mV))/ms*(1.-h)-4./(1+exp((40.*mV-v+VT)/(5.*mV)))/ms*h : 1
I = input_current(t, i) : amp
g_na : siemens (constant)
g_kd : siemens (constant)
gl : siemens (constant)
'''
group = NeuronGroup(n_neurons, model, method="exponential_euler", dt=dt)  # noqa: F405
group.v = -65*mV  # noqa: F405
monitor = StateMonitor(group, "v", record=True, dt=dt)  # noqa: F405
network = Network(group, monitor)  # noqa: F405
network.store()
bounds = {"gl": (2e-12, 200e-9), "g_na": (200e-9, 0.4e-3), "g_kd": (200e-9, 200e-6)}
rng = np.random.default_rng(1)  # noqa: F405
target = np.tile(out_trace, (args.n_samples, 1)) * 1e-3  # noqa: F405
mark("construction")


simulated = []  # seconds in the compiled code objects, per round (Brian's profiling)


def one_round():
    network.restore()
    for name, (low, high) in bounds.items():
        setattr(group, name, rng.uniform(low, high, args.n_samples).repeat(n_traces) * siemens)  # noqa: F405
    network.run(n_steps * dt, profile=True)
    simulated.append(float(np.sum([float(seconds) for _, seconds in network.profiling_info])))  # noqa: F405
    errors = np.mean((monitor.v_[:, :n_steps] - target) ** 2, axis=1)  # noqa: F405
    return errors.reshape(args.n_samples, n_traces).mean(axis=1).min()


best = one_round()
mark("first_round")
for _ in range(args.n_rounds - 1):
    best = min(best, one_round())
mark("later_rounds")
mark("generate")
sys.stdout.flush()
print(json.dumps({"package": "floor", "marks": marks, "error": float(best),
                  "n_rounds": args.n_rounds, "simulated": simulated}), flush=True)
