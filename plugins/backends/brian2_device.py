"""Which backend a fitter simulates on when none is named: the one of Brian's device.

A hook plugin (the ``modelfit`` entry-point group): scripts written for
brian2modelfitting select the C++ standalone device with
``set_device('cpp_standalone')`` before creating a fitter; the fitter then uses
the ``cpp_standalone`` backend, otherwise ``runtime``. Brian is imported only
when the hook is called.
"""

from __future__ import annotations

from modelfit_core.contracts.hookspecs import hookimpl

BACKEND_OF_DEVICE = {"runtime": "runtime", "cpp_standalone": "cpp_standalone"}
"""Brian's device names -> the backend plugins that simulate on them."""


@hookimpl
def modelfit_default_backend() -> str | None:
    """The backend of Brian's active device (None for a device no backend here knows)."""
    from brian2.devices.device import all_devices, get_device
    device = get_device()
    name = next((name for name, candidate in all_devices.items() if candidate is device),
                None)
    return BACKEND_OF_DEVICE.get(name)
