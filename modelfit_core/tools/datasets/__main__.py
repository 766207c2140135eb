"""Regenerate the bundled dataset: ``python -m modelfit_core.tools.datasets [DIR]``."""

import sys

from modelfit_core.tools.datasets import DATA_DIR, generate_hh_dataset

if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else DATA_DIR
    dataset = generate_hh_dataset(target)
    print(f"wrote {dataset.inputs.shape[0]} traces x {dataset.inputs.shape[1]} steps to {target}")
