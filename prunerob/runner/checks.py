"""Checks of parameter values beyond their type (:data:`PARAM_CHECKS`: ranges, registered names)
and of output-path parameters (contained in ``output_dir``)."""
from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from prunerob.config import (
    ConfigError,
    check_choice,
    check_dir,
    check_float,
    check_int,
    check_seed,
    parse_eps,
    resolve_device,
)
from prunerob.runner.layout import _load_profiles
from prunerob.runner.params import check_parameter_type


def _as_list(v: Any, name: str, empty_ok: bool = False) -> list[Any]:
    if not isinstance(v, (list, tuple)):
        raise ConfigError(f"-p {name}={v!r} must be a list, e.g. -p {name} '[...]'")
    if not v and not empty_ok:
        raise ConfigError(f"-p {name}=[] is empty; give at least one value")
    return list(v)


def _per_dataset(check: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    """Accept a value or a mapping ``{dataset: value}`` (e.g. ``epochs``) and check each value."""
    def run(v: Any, name: str) -> Any:
        if isinstance(v, dict):
            from prunerob.core.data import DATASETS

            for k, x in v.items():
                check_choice(f"-p {name} key", k, DATASETS)
                check(x, f"{name}[{k}]")
            return v
        return check(v, name)
    return run


def _p_int(minimum: int, none: bool = False) -> Callable[[Any, str], Any]:
    return lambda v, name: check_int(v, f"-p {name}", minimum, none) if isinstance(v, int) or v is None \
        else _raise(f"-p {name}={v!r} must be an integer >= {minimum}" + (" or None" if none else ""))


def _raise(msg: str) -> Any:
    raise ConfigError(msg)


def _p_choice(get: Callable[[], Iterable[str]]) -> Callable[[Any, str], Any]:
    return lambda v, name: check_choice(f"-p {name}", v, tuple(get())) if isinstance(v, str) \
        else _raise(f"-p {name}={v!r} must be one of: {', '.join(get())}")


def _p_list(elem: Callable[[Any, str], Any], empty_ok: bool = False, unique: bool = False):
    def run(v: Any, name: str) -> Any:
        items = _as_list(v, name, empty_ok)
        for x in items:
            elem(x, name)
        if unique and len({json.dumps(x, default=str) for x in items}) != len(items):
            raise ConfigError(f"-p {name}={v!r} has duplicate values; give distinct values")
        return v
    return run


def _p_eps(v: Any, name: str) -> float:
    return parse_eps(v, f"-p {name}")


def _p_unit(v: Any, name: str) -> float:
    return check_float(v, f"-p {name}", 0.0, 1.0)


def _p_nonneg(v: Any, name: str) -> float:
    return check_float(v, f"-p {name}", 0.0)


def _p_bool(v: Any, name: str) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(f"-p {name}={v!r} must be True or False")
    return v


def _p_device(v: Any, name: str) -> Any:
    if not isinstance(v, str):
        raise ConfigError(f"-p {name}={v!r} must be 'auto', 'cpu' or 'cuda[:N]'")
    return resolve_device(v)


def _p_data_root(v: Any, name: str) -> Any:
    return None if v is None else check_dir(str(v), f"-p {name}")


def _datasets() -> tuple[str, ...]:
    from prunerob.core.data import DATASETS

    return DATASETS


def _archs() -> tuple[str, ...]:
    from prunerob.core.models import ARCHS

    return tuple(ARCHS)


def _methods() -> tuple[str, ...]:
    from prunerob.core.pruning import method_names

    return tuple(method_names())


def _attacks() -> tuple[str, ...]:
    from prunerob.core.attacks import attack_names

    return tuple(attack_names())


def _precisions() -> tuple[str, ...]:
    from prunerob.core.precision import precision_names

    return precision_names()


def _modes() -> tuple[str, ...]:
    from prunerob.theory.tradeoff import MODES

    return tuple(MODES)


def _p_models(v: Any, name: str) -> Any:
    if isinstance(v, dict):
        return _per_dataset(_p_choice(_archs))(v, name)
    return _p_list(_p_choice(_archs), unique=True)(v, name)


def _p_seed(v: Any, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"-p {name}={v!r}: a seed must be an integer >= 0")
    return check_seed(v, f"-p {name}")


def _p_seeds(empty_ok: bool = False):
    return _p_list(_p_seed, empty_ok=empty_ok, unique=True)


#: range checks of known notebook parameters (the CLI's validators); values that may be given per
#: data set (``{"mnist": 2, "cifar10": 1}``) are wrapped in ``_per_dataset``
PARAM_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "profile": lambda v, name: _p_choice(lambda: _load_profiles(None).PROFILES)(v, name),
    "device": _p_device,
    "threads": _p_int(1, none=True),
    "data_root": _p_data_root,
    "download": _p_bool,
    "run_cnn": _p_bool,
    "model": _p_choice(_archs),
    "models": _p_models,
    "dataset": _p_choice(_datasets),
    "cnn_dataset": _p_choice(_datasets),
    "datasets": _p_list(_p_choice(_datasets), unique=True),
    "subset_datasets": _p_list(_p_choice(_datasets), empty_ok=True, unique=True),
    **{k: _per_dataset(_p_int(1)) for k in ("epochs", "tf_epochs", "cnn_epochs")},
    **{k: _per_dataset(_p_int(1, none=True)) for k in ("train_subset", "tf_train_subset", "cnn_train_subset",
                                                        "n_eval", "tf_n_eval", "cnn_n_eval", "image_size")},
    **{k: _p_int(1) for k in ("subset_n", "n_masks", "k_samples", "worst_case_steps", "worst_case_restarts",
                              "n_front", "tf_d", "tf_heads", "tf_patch", "cnn_n_masks",
                              "cnn_k_samples", "max_iter")},
    "score_examples": _p_int(1, none=True),
    "seeds": _per_dataset(_p_seeds()),
    "cnn_seeds": _p_seeds(),
    "subset_seeds": _p_seeds(empty_ok=True),
    "confirm_seeds": _p_seeds(empty_ok=True),
    "lambdas": _p_list(_p_unit),
    "modes": _p_list(_p_choice(_modes), unique=True),
    "p0": _p_unit,
    "tol": lambda v, name: check_float(v, f"-p {name}", 0.0, lo_open=True),
    "keeps": _per_dataset(_p_list(_p_unit)),
    "grid_keeps": _p_list(_p_unit),
    "subset_keeps": _p_list(_p_unit, empty_ok=True),
    "methods": _p_list(_p_choice(_methods), unique=True),
    "attacks": _per_dataset(_p_list(_p_choice(_attacks), unique=True)),
    "mlp_attacks": _p_list(_p_choice(_attacks), unique=True),
    "subset_attacks": _p_list(_p_choice(_attacks), empty_ok=True, unique=True),
    "vit_attack": _p_choice(_attacks),
    "eps": _p_eps,
    "fgsm_extra_eps": _p_list(_p_eps, empty_ok=True),
    "eps_l2": _p_list(_p_nonneg),
    "cnn_eps_l2": _p_list(_p_nonneg),
    "tightness_eps": _p_nonneg,
    "precision": _per_dataset(_p_choice(_precisions)),
    "cnn_precision": _p_choice(_precisions),
}


def is_output_path_parameter(name: str) -> bool:
    """Parameters naming files or folders under the output directory (``out_dir``, ``*_table``, ...)."""
    return name == "out_dir" or name.endswith(("_dir", "_table", "_path", "_file", "_csv"))


def check_parameter(name: str, value: Any, examples: list[Any], annotation: str | None = None) -> None:
    """Type check (annotation, else the defaults' types unless a range check exists) and range
    check (:data:`PARAM_CHECKS`) of one ``-p`` value; ConfigError with one line naming it."""
    check = PARAM_CHECKS.get(name)
    if annotation or check is None:
        check_parameter_type(name, value, examples, annotation)
    if check is not None:
        check(value, name)
    if is_output_path_parameter(name) and not isinstance(value, str):
        raise ConfigError(f"-p {name}={value!r} must be a relative path (a string) "
                          "inside the output directory")


def check_path_parameter(name: str, value: Any, output_dir: Path, reserved: Iterable[str] = (),
                         lexical: bool = False) -> Path:
    """``value`` must be a relative path that stays strictly inside ``output_dir`` (no ``..``
    escapes, no absolute paths, not the output directory itself, not one of ``reserved``).

    Symbolic links are followed (``resolve``) unless ``lexical``: then ``..`` and ``.`` are folded
    by name only (the check inside a running notebook, whose working folder may hold links to other
    notebooks' results on purpose)."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"-p {name}={value!r} must be a non-empty relative path "
                          "inside the output directory")
    rel = Path(value)

    def where(p: Path) -> Path:
        return Path(os.path.normpath(p)) if lexical else p.resolve()

    root = where(Path(output_dir).absolute())
    target = where(root / rel)
    if rel.is_absolute() or target == root or root not in target.parents:
        raise ConfigError(f"-p {name}={value!r} must be a relative path inside the output directory {root} "
                          f"(e.g. results/NAME)")
    first = target.relative_to(root).parts[0]
    if first.startswith("."):
        raise ConfigError(f"-p {name}={value!r} is inside the reserved folder {first}/; "
                          "give e.g. results/NAME")
    for r in reserved:
        r_abs = where(root / r)
        if target == r_abs or target in r_abs.parents:
            raise ConfigError(f"-p {name}={value!r} would replace {r}, which belongs to another notebook; "
                              "give a folder of its own, e.g. results/NAME")
    return target


def other_out_dirs(name: str, profiles: Any = None) -> list[str]:
    """The ``out_dir`` of every other notebook (``quick`` profile): a notebook must not write there."""
    prof = _load_profiles(profiles)
    others = []
    for n in prof.NOTEBOOKS:
        if n != name:
            with contextlib.suppress(ConfigError, KeyError, AttributeError, TypeError):
                others.append(str(prof.parameters(n, "quick")["out_dir"]))
    return others


def check_kernel(value: Any, name: str = "--kernel") -> str:
    """An installed Jupyter kernel spec (checked before any notebook starts); ConfigError listing
    the installed ones otherwise."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    ksm = KernelSpecManager()
    try:
        ksm.get_kernel_spec(str(value))
    except NoSuchKernel:
        installed = ", ".join(sorted(ksm.find_kernel_specs())) or "none"
        raise ConfigError(f"{name}={value!r} is not an installed Jupyter kernel; installed: {installed} "
                          f"(leave {name} out to use the Python running prunerob)") from None
    return str(value)


def _annotation_text(annotation: Any) -> str | None:
    """Source text of an annotation object as the parameters cell wrote it (``str`` -> ``'str'``,
    ``"int or None"`` -> ``"'int or None'"``); None for anything else (then only range checks apply)."""
    if isinstance(annotation, str):
        return repr(annotation)
    if isinstance(annotation, type):
        return annotation.__name__
    return None


def check_notebook_parameters(name: str, namespace: Mapping[str, Any], output_dir: str | os.PathLike = ".",
                              profiles: Any = None) -> None:
    """Check the parameters of a running notebook with the validators of ``prunerob reproduce``.

    ``namespace`` is the notebook's ``globals()``: the names annotated in its ``parameters`` cell
    (``__annotations__``) are checked with their current values, i.e. after papermill injected its
    own (``papermill -p`` / ``-f params.yaml``, which bypass ``prunerob reproduce``): type from the
    annotation, range from :data:`PARAM_CHECKS`, and every output path parameter must stay inside
    ``output_dir`` (the notebook's working folder) and out of the other notebooks' results folders.
    Raises ConfigError naming the first bad parameter, before any work."""
    annotations = dict(namespace.get("__annotations__") or {})
    others = other_out_dirs(name, profiles)
    for key, annotation in annotations.items():
        if key not in namespace:
            continue
        value = namespace[key]
        check_parameter(key, value, [], _annotation_text(annotation))
        if is_output_path_parameter(key) and value is not None:
            check_path_parameter(key, value, Path(output_dir), others if key == "out_dir" else (),
                                 lexical=True)
