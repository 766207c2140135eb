"""What is known of each plugin: loaded, failed (and why), imported or not."""

from __future__ import annotations

import attrs

from modelfit_core.registry.entry_points import install_hint

CODE = "(registered in code)"
"""The distribution of plugins registered in code (``Registry.register``)."""


@attrs.define
class PluginStatus:
    """What is known of one entry point (or plugin registered in code)."""

    name: str
    module: str
    distribution: str
    loaded: bool
    """Usable as far as is known: imported and checked, or (for a class entry not
    imported yet) its requirements are installed."""
    imported: bool = False
    kind: str | None = None
    """The kind of a class entry; None for hook plugins."""
    error: str | None = None
    missing_package: str | None = None
    extra: str | None = None
    problems: list[str] = attrs.field(factory=list)
    """What is wrong with what the plugin registers (a class lacking its Protocol's
    methods, a name another plugin registers too, a misspelt hook); a plugin with
    problems is not ``loaded``, though its other names stay usable."""

    def describe(self) -> str:
        if self.loaded:
            return "ok" if self.imported or self.kind is None else "ok (imported when used)"
        if self.missing_package:
            hint = install_hint(self.distribution, self.extra, self.missing_package)
            return f"not loaded: missing package {self.missing_package!r} ({hint})"
        if self.error is None and self.problems:
            return "; ".join(self.problems)
        return f"not loaded: {self.error}"

    @property
    def label(self) -> str:
        """``'name' (distribution 'dist')``, for messages."""
        if self.distribution == CODE:
            return f"{self.name!r} {CODE}"
        return f"{self.name!r} (distribution {self.distribution!r})"
