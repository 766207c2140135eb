"""The ``modelfit`` command line."""

from __future__ import annotations

import argparse
import sys


def _cmd_demo(args) -> int:
    from modelfit_core.demo import run_demo
    run_demo(output_dir=args.output, n_rounds=args.rounds, n_samples=args.samples,
             seed=args.seed, optimizer=args.optimizer, backend=args.backend,
             feedback=None if args.quiet else "progressbar", data_dir=args.data_dir)
    return 0


def _cmd_plugins(args) -> int:
    from modelfit_core.hookspecs import KINDS
    from modelfit_core.registry import Registry
    registry = Registry()
    print(f"{'entry point':<14}{'status':<10}{'provides':<40}{'distribution'}")
    provided: dict[str, list[str]] = {}
    for kind in KINDS:
        for name, (_cls, plugin) in registry.tables[kind].items():
            provided.setdefault(plugin, []).append(f"{kind[:-1]} '{name}'")
    failed = 0
    for name, status in sorted(registry.statuses.items()):
        what = ", ".join(provided.get(name, [])) or "-"
        state = "ok" if status.loaded else "FAILED"
        print(f"{name:<14}{state:<10}{what:<40}{status.distribution}")
        if not status.loaded:
            failed += 1
            print(f"{'':<14}{status.describe()}")
    return 0 if failed == 0 or not args.strict else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelfit", description="Fit Brian 2 neuron models "
                                     "to recordings.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="fit the bundled Hodgkin-Huxley data, write plots")
    demo.add_argument("--output", default="output/demo", help="folder for the PNG files")
    demo.add_argument("--rounds", type=int, default=30)
    demo.add_argument("--samples", type=int, default=100)
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--optimizer", default="nevergrad")
    demo.add_argument("--backend", default="runtime")
    demo.add_argument("--data-dir", default=None,
                      help="folder with input_traces_hh.csv/output_traces_hh.csv")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(func=_cmd_demo)
    plugins = commands.add_parser("plugins", help="list installed plugins and their status")
    plugins.add_argument("--strict", action="store_true",
                         help="exit 1 if a plugin fails to load")
    plugins.set_defaults(func=_cmd_plugins)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
