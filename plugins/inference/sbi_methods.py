"""Names of inference methods and density estimators, mapped onto current sbi.

The manual (brian2modelfitting 0.x, sbi 0.1x) speaks of ``SNPE``, ``SNLE``
and ``SNRE`` and of ``sbi.utils.get_nn_models``. Current sbi (>= 0.23) calls
them ``NPE``/``NLE``/``NRE`` (``NPE_C``, ``NLE_A``, ``NRE_B`` by default) and
builds networks with ``sbi.neural_nets.posterior_nn``/``likelihood_nn``/
``classifier_nn``. Both spellings are accepted here; sbi is imported only
when an inference object is made, so loading the plugin stays cheap.
"""

from __future__ import annotations

import difflib
import importlib
import warnings
from typing import Any

import attrs

from modelfit_core.contracts.errors import ConfigurationError

POSTERIOR, LIKELIHOOD, RATIO, VECTOR_FIELD = "posterior", "likelihood", "ratio", "vector_field"


@attrs.frozen
class Method:
    """An sbi trainer class and the family that decides how it is built and fed."""

    name: str
    """The sbi class name, e.g. ``'NPE_C'``."""
    family: str


_CANONICAL = {
    "NPE_A": POSTERIOR, "NPE_B": POSTERIOR, "NPE_C": POSTERIOR,
    "NLE_A": LIKELIHOOD,
    "NRE_A": RATIO, "NRE_B": RATIO, "NRE_C": RATIO, "BNRE": RATIO,
    "FMPE": VECTOR_FIELD, "NPSE": VECTOR_FIELD,
}

ALIASES = {
    # the manual's names and sbi's own deprecated ones
    "SNPE": "NPE_C", "SNPE_A": "NPE_A", "SNPE_B": "NPE_B", "SNPE_C": "NPE_C", "APT": "NPE_C",
    "SNLE": "NLE_A", "SNLE_A": "NLE_A", "SNL": "NLE_A",
    "SNRE": "NRE_B", "SNRE_A": "NRE_A", "SNRE_B": "NRE_B", "SNRE_C": "NRE_C", "SRE": "NRE_B",
    "AALR": "NRE_A", "CNRE": "NRE_C",
    # current sbi names
    "NPE": "NPE_C", "NLE": "NLE_A", "NRE": "NRE_B",
}

ESTIMATORS = {
    POSTERIOR: ("maf", "mdn", "made", "nsf", "maf_rqs", "zuko_maf", "zuko_nsf", "zuko_naf",
                "zuko_unaf", "zuko_nice", "zuko_sospf", "zuko_gf", "zuko_bpf", "zuko_ncsf"),
    LIKELIHOOD: ("maf", "mdn", "made", "nsf", "maf_rqs", "zuko_maf", "zuko_nsf", "zuko_naf",
                 "zuko_unaf", "zuko_nice", "zuko_sospf", "zuko_gf", "zuko_bpf", "zuko_ncsf"),
    RATIO: ("resnet", "mlp", "linear"),
    VECTOR_FIELD: ("mlp", "ada_mlp", "transformer", "transformer_cross_attn"),
}
"""Density estimator names per family; the first one is the default."""


def import_sbi():
    """Import and return ``(torch, sbi.inference, sbi.neural_nets)``."""
    torch = importlib.import_module("torch")
    return torch, importlib.import_module("sbi.inference"), importlib.import_module(
        "sbi.neural_nets")


def resolve_method(name: Any) -> Method:
    """The sbi method behind ``name`` (``'SNPE'``, ``'npe'``, ``'NRE_C'``, ...)."""
    if not isinstance(name, str):
        raise ConfigurationError(f"inference_method must be a name such as 'SNPE' or 'NPE'; "
                                 f"got {name!r}.")
    key = name.strip().upper().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in _CANONICAL:
        known = sorted(set(_CANONICAL) | set(ALIASES))
        close = difflib.get_close_matches(name.upper(), known, n=1)
        raise ConfigurationError(
            f"Unknown inference_method {name!r}." +
            (f" Did you mean {close[0]!r}?" if close else "") +
            f" Known: {', '.join(known)} (SNPE/NPE: posterior estimation, SNLE/NLE: "
            f"likelihood estimation, SNRE/NRE: ratio estimation).")
    return Method(name=key, family=_CANONICAL[key])


def resolve_estimator(method: Method, density_estimator_model: Any) -> str:
    """Check ``density_estimator_model`` against ``method``; None gives the default."""
    allowed = ESTIMATORS[method.family]
    if density_estimator_model is None:
        return "mdn" if method.name == "NPE_A" else allowed[0]
    if not isinstance(density_estimator_model, str):
        raise ConfigurationError(f"density_estimator_model must be a name such as 'maf'; got "
                                 f"{density_estimator_model!r}.")
    model = density_estimator_model.strip().lower()
    if method.name == "NPE_A" and model not in ("mdn", "mdn_snpe_a"):
        raise ConfigurationError("NPE_A (SNPE_A) works with a mixture density network only: "
                                 "density_estimator_model='mdn'.")
    if model == "mdn_snpe_a" and method.name == "NPE_A":
        return "mdn"
    if model not in allowed:
        kind = {POSTERIOR: "posterior", LIKELIHOOD: "likelihood", RATIO: "ratio",
                VECTOR_FIELD: "vector-field"}[method.family]
        raise ConfigurationError(
            f"density_estimator_model={density_estimator_model!r} does not work with "
            f"{method.name} ({kind} estimation); use one of {', '.join(allowed)}.")
    return model


def resolve_device(sbi_device: Any) -> str:
    """``'cpu'``, ``'gpu'``/``'cuda'``/``'cuda:N'`` -> a torch device name.

    A GPU is asked for but none is there: warn and use the CPU.
    """
    device = str(sbi_device or "cpu").strip().lower()
    if device == "cpu":
        return "cpu"
    if device == "gpu":
        device = "cuda"
    if device.startswith("cuda") or device == "mps":
        torch = importlib.import_module("torch")
        available = torch.cuda.is_available() if device.startswith("cuda") else \
            torch.backends.mps.is_available()
        if not available:
            warnings.warn(f"sbi_device={sbi_device!r} was asked for, but torch sees no such "
                          f"device; training on the CPU.", RuntimeWarning, stacklevel=3)
            return "cpu"
        return device
    raise ConfigurationError(f"sbi_device must be 'cpu', 'gpu' or 'cuda'; got {sbi_device!r}.")


def default_embedding(x_dim: int, output_dim: int = 20):
    """The embedding net used when no features are given: a small MLP (sbi's FCEmbedding)."""
    from sbi.neural_nets.embedding_nets import FCEmbedding
    return FCEmbedding(input_dim=int(x_dim), output_dim=min(int(output_dim), int(x_dim)),
                       num_layers=2, num_hiddens=50)


def make_inference(method: Method, estimator: str, prior, device: str, raw_x_dim: int | None,
                   show_progress_bars: bool = True, **inference_kwargs):
    """Build the sbi trainer object.

    ``raw_x_dim`` is the length of x when it holds raw traces (no features):
    then an embedding net is added unless one is given, and x is z-scored as
    one structured quantity by default.
    """
    torch_module, inference_module, nets = import_sbi()
    kwargs = dict(inference_kwargs)
    if method.family == RATIO and "embedding_net" in kwargs:
        kwargs.setdefault("embedding_net_x", kwargs.pop("embedding_net"))
    if raw_x_dim is not None:
        if method.family == LIKELIHOOD:
            raise ConfigurationError(
                f"{method.name} (likelihood estimation) models the summary statistics "
                f"themselves and cannot learn features from raw traces. Give features= to "
                f"the Inferencer, or use SNPE/NPE or SNRE/NRE for automatic feature "
                f"extraction.")
        embedding_key = "embedding_net_x" if method.family == RATIO else "embedding_net"
        if kwargs.get(embedding_key) is None:
            kwargs[embedding_key] = default_embedding(raw_x_dim)
        kwargs.setdefault("z_score_x", "structured")
    build = getattr(nets, "posterior_score_nn" if method.name == "NPSE" else {
        POSTERIOR: "posterior_nn", LIKELIHOOD: "likelihood_nn", RATIO: "classifier_nn",
        VECTOR_FIELD: "posterior_flow_nn"}[method.family])
    model = "mdn_snpe_a" if method.name == "NPE_A" else estimator
    trainer_kwargs = {}
    if method.name == "NPE_A" and "num_components" in kwargs:
        trainer_kwargs["num_components"] = kwargs.pop("num_components")
    if method.name == "NPSE" and "sde_type" in kwargs:
        trainer_kwargs["sde_type"] = kwargs["sde_type"]
    try:
        builder = build(model=model, **kwargs)
    except TypeError as exc:
        raise ConfigurationError(f"inference_kwargs {sorted(inference_kwargs)} are not "
                                 f"accepted by sbi's {build.__name__}: {exc}") from exc
    cls = getattr(inference_module, method.name)
    estimator_arg = {POSTERIOR: "density_estimator", LIKELIHOOD: "density_estimator",
                     RATIO: "classifier", VECTOR_FIELD: "vf_estimator"}[method.family]
    return cls(prior=prior, device=device, show_progress_bars=show_progress_bars,
               **{estimator_arg: builder}, **trainer_kwargs)


def append_simulations(inference, family: str, theta, x, *args):
    """``inference.append_simulations`` with the manual's positional ``args``.

    For posterior (and vector-field) estimation ``args[0]`` is the proposal
    the parameters were drawn from; for likelihood and ratio estimation it is
    the round the data come from (0: the prior).
    """
    if family in (POSTERIOR, VECTOR_FIELD):
        proposal = args[0] if args else None
        return inference.append_simulations(theta, x, proposal=proposal)
    from_round = int(args[0]) if args and not hasattr(args[0], "sample") else 0
    return inference.append_simulations(theta, x, from_round=from_round)


def family_of(inference) -> str:
    """The family of an sbi trainer object (used for objects made by the user)."""
    name = type(inference).__name__.upper()
    if name in _CANONICAL:
        return _CANONICAL[name]
    for base in type(inference).__mro__:
        lowered = base.__name__.lower()
        for marker, family in (("npe", POSTERIOR), ("nle", LIKELIHOOD), ("nre", RATIO),
                               ("vectorfield", VECTOR_FIELD)):
            if marker in lowered:
                return family
    return POSTERIOR
