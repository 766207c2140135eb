#!/usr/bin/env python
"""Reference side of the HH TraceFitter benchmark.

Runs INSIDE the reference venv made by benchmarks/setup_reference_venv.sh
(brian2modelfitting 0.4, Brian 2.9.0, nevergrad 0.3.0) and performs exactly
the fit of brian2modelfitting's TraceFitter (Hodgkin-Huxley) tutorial.

Prints ONE line of JSON to stdout at the end; everything else (Brian logs,
compiler output, warnings, --profile output) goes to stderr.

    .refvenv/bin/python benchmarks/reference_hh_fit.py --data-dir shared/data \
        [--n-samples 100] [--n-rounds 10] [--seed S] [--profile] \
        [--cython-cache-dir DIR]
"""
import argparse
import gc
import inspect
import json
import os
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data-dir', required=True,
                   help='directory with input_traces_hh.csv and output_traces_hh.csv')
    p.add_argument('--n-samples', type=int, default=100)
    p.add_argument('--n-rounds', type=int, default=10)
    p.add_argument('--seed', type=int, default=None)
    p.add_argument('--profile', action='store_true',
                   help='print to stderr where the time of the rounds after '
                        'the first goes (timing wrappers + cProfile top 15); '
                        'adds overhead to the reported timings')
    p.add_argument('--cython-cache-dir', default=None,
                   help="Brian's Cython extension cache directory (default: "
                        "Brian's own default, ~/.cython/brian_extensions); "
                        'pass an empty directory for a cold-cache run')
    return p.parse_args(argv)


def log(*args):
    print(*args, file=sys.stderr, flush=True)


class _Timers:
    """Inclusive wall-time accumulators around selected functions."""

    def __init__(self):
        self.active = False
        self.totals = {}
        self.counts = {}

    def wrap(self, owner, attr, label):
        orig = getattr(owner, attr)
        timers = self

        def wrapper(*args, **kwds):
            if not timers.active:
                return orig(*args, **kwds)
            t0 = time.perf_counter()
            try:
                return orig(*args, **kwds)
            finally:
                timers.totals[label] = timers.totals.get(label, 0.0) + time.perf_counter() - t0
                timers.counts[label] = timers.counts.get(label, 0) + 1

        wrapper.__wrapped__ = orig
        setattr(owner, attr, wrapper)


def main(argv=None):
    args = parse_args(argv)

    # brian2modelfitting 0.4 takes the parameter order from a set
    # (Equations.parameter_names), i.e. it depends on string hashing; a seeded
    # run is only reproducible with a fixed PYTHONHASHSEED, so re-exec with one.
    if (args.seed is not None and argv is None
            and os.environ.get('PYTHONHASHSEED') in (None, '', 'random')):
        env = dict(os.environ, PYTHONHASHSEED=str(args.seed % 4294967296))
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable] + sys.argv, env)

    # Keep stdout clean for the JSON line: route fd 1 (incl. output of
    # compiler subprocesses and C code) to stderr until the end.
    sys.stdout.flush()
    json_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    import numpy as np
    import pandas as pd
    import brian2
    from brian2 import (amp, mV, ms, umetre, ufarad, cm, psiemens, nsiemens,
                        msiemens, usiemens, prefs, Network)
    import brian2modelfitting
    from brian2modelfitting import TraceFitter, NevergradOptimizer, MSEMetric
    import nevergrad

    if args.cython_cache_dir is not None:
        os.makedirs(args.cython_cache_dir, exist_ok=True)
        prefs.codegen.runtime.cython.cache_dir = os.path.abspath(args.cython_cache_dir)

    if args.seed is not None:
        import random
        random.seed(args.seed)
        np.random.seed(args.seed)   # nevergrad 0.3 seeds its RNG from np.random
        brian2.seed(args.seed)

    inp_trace = pd.read_csv(os.path.join(args.data_dir, 'input_traces_hh.csv'),
                            index_col=0).to_numpy()
    out_trace = pd.read_csv(os.path.join(args.data_dir, 'output_traces_hh.csv'),
                            index_col=0).to_numpy()
    n_traces, n_steps = inp_trace.shape

    # Model of the brian2modelfitting TraceFitter tutorial
    area = 20000*umetre**2
    Cm = 1*ufarad*cm**-2 * area
    El = -65*mV
    EK = -90*mV
    ENa = 50*mV
    VT = -63*mV
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
    gl   : siemens (constant)
    '''

    # brian2modelfitting <= 0.4: input_var='I', output_var='v', input=..., output=...
    # newer versions: input={'I': ...}, output={'v': ...}
    init_params = inspect.signature(TraceFitter.__init__).parameters
    if 'input_var' in init_params:
        keyword_form = 'input_var/output_var'
        io_kwds = dict(input_var='I', output_var='v',
                       input=inp_trace*amp, output=out_trace*mV)
    else:
        keyword_form = 'input/output dicts'
        io_kwds = dict(input={'I': inp_trace*amp}, output={'v': out_trace*mV})
    log(f'[reference] brian2modelfitting {brian2modelfitting.__version__}: '
        f'using {keyword_form} keywords')

    t_init0 = time.perf_counter()
    fitter = TraceFitter(model=model, dt=0.01*ms, n_samples=args.n_samples,
                         method='exponential_euler', param_init={'v': -65*mV},
                         **io_kwds)
    init_s = time.perf_counter() - t_init0

    timers = _Timers()
    profiler = None
    if args.profile:
        import cProfile
        timers.wrap(NevergradOptimizer, 'ask', 'nevergrad ask')
        timers.wrap(NevergradOptimizer, 'tell', 'nevergrad tell')
        timers.wrap(Network, 'run', 'Network.run (incl. gc.collect)')
        timers.wrap(Network, 'restore', 'Network.restore')
        timers.wrap(gc, 'collect', 'gc.collect')
        timers.wrap(TraceFitter, 'calc_errors', 'calc_errors (metric)')
        profiler = cProfile.Profile()

    round_end = []

    # brian2modelfitting 0.4 requires a plain function (types.FunctionType);
    # signature is (params, errors, best_params, best_error, index[, ...]).
    def timing_callback(*cb_args, **cb_kwds):
        round_end.append(time.perf_counter())
        if args.profile and len(round_end) == 1:
            # profile/measure only the rounds after the first
            timers.active = True
            profiler.enable()
        return None   # returning True would stop the fit

    optimizer = NevergradOptimizer()
    metric = MSEMetric()
    t0 = time.perf_counter()
    res, error = fitter.fit(n_rounds=args.n_rounds, optimizer=optimizer,
                            metric=metric, callback=timing_callback,
                            gl=[2*psiemens, 200*nsiemens],
                            g_na=[200*nsiemens, 0.4*msiemens],
                            g_kd=[200*nsiemens, 200*usiemens])
    t1 = time.perf_counter()
    if profiler is not None:
        profiler.disable()
        timers.active = False

    total_s = t1 - t0
    bounds = [t0] + round_end
    round_s = [b - a for a, b in zip(bounds[:-1], bounds[1:])]
    later = round_s[1:]
    result = {
        'total_s': total_s,
        'round_s': round_s,
        'first_round_s': round_s[0] if round_s else None,
        'later_round_mean_s': (sum(later) / len(later)) if later else None,
        'best_error': float(error),
        'best_params': {k: float(v) for k, v in res.items()},
        'n_samples': args.n_samples,
        'n_rounds': args.n_rounds,
        'n_traces': int(n_traces),
        'n_steps': int(n_steps),
        'brian2_version': brian2.__version__,
        'brian2modelfitting_version': brian2modelfitting.__version__,
        'nevergrad_version': nevergrad.__version__,
        # extras
        'numpy_version': np.__version__,
        'init_s': init_s,
        'keyword_form': keyword_form,
        'seed': args.seed,
        'python_hash_seed': os.environ.get('PYTHONHASHSEED'),
        'profiled': bool(args.profile),
    }

    if args.profile:
        import pstats
        import io
        later_total = sum(later)
        t = timers.totals
        gc_s = t.get('gc.collect', 0.0)
        run_s = t.get('Network.run (incl. gc.collect)', 0.0)
        lines = [f'[profile] breakdown of rounds 2..{len(round_s)} '
                 f'(total {later_total:.3f} s over {len(later)} rounds, '
                 f'with profiling overhead):']
        rows = [
            ('nevergrad ask', t.get('nevergrad ask', 0.0)),
            ('nevergrad tell', t.get('nevergrad tell', 0.0)),
            ('Network.run excl. gc.collect', run_s - gc_s),
            ('gc.collect (called by Network.run)', gc_s),
            ('Network.restore', t.get('Network.restore', 0.0)),
            ('calc_errors (metric)', t.get('calc_errors (metric)', 0.0)),
        ]
        accounted = sum(v for _, v in rows)
        rows.append(('rest (set_states, param dicts/units, callback, ...)',
                     later_total - accounted))
        for name, v in rows:
            pct = 100.0 * v / later_total if later_total > 0 else 0.0
            lines.append(f'  {name:<52s} {v:8.3f} s  {pct:5.1f} %')
        lines.append('  call counts: ' + ', '.join(f'{k}={n}' for k, n in timers.counts.items()))
        log('\n'.join(lines))
        s = io.StringIO()
        pstats.Stats(profiler, stream=s).sort_stats('cumulative').print_stats(15)
        log('[profile] cProfile of rounds after the first, top 15 cumulative:')
        log(s.getvalue())

    sys.stderr.flush()
    with os.fdopen(json_fd, 'w') as out:
        out.write(json.dumps(result) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
