"""FTerViT checkpoints: a torch state_dict (``.pt``) beside a JSON file that rebuilds the architecture.

Layout: ``name.pt`` + ``name.json``; the JSON holds ``{"format", "version", "config", "weights",
"meta"}``. The latent fp32 weights are stored (not the ternary codes): the absmean ternarizer is
not idempotent, so re-ternarizing effective weights would change the scales.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from .vit import FTerViT

FORMAT = "fter-vit"
VERSION = 1
DEFAULT_NAME = "fter_vit"
DEMO_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "digits_fter_vit.json"


def _paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(weights.pt, config.json)`` for a ``.pt``/``.json`` file path or a directory."""
    p = Path(path)
    if p.suffix in (".pt", ".json"):
        return p.with_suffix(".pt"), p.with_suffix(".json")
    return p / f"{DEFAULT_NAME}.pt", p / f"{DEFAULT_NAME}.json"


def _atomic_write(dst: Path, write) -> None:
    """Write through a temp file in the same directory, then rename into place."""
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)   # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(model: FTerViT, path: str | os.PathLike, meta: dict | None = None) -> Path:
    """Save ``model`` as ``<path>.pt`` + ``<path>.json`` (or ``<dir>/fter_vit.{pt,json}``).

    Args:
        model: the FTerViT to save.
        path: a file path ending in ``.pt`` or ``.json`` (both files are written), or a directory
            (created if needed).
        meta: optional JSON-serialisable dict stored under ``"meta"`` (accuracies, provenance).
    Returns:
        The path of the JSON file.
    Raises:
        TypeError: ``model`` is not an FTerViT.
    """
    if not isinstance(model, FTerViT):
        raise TypeError(f"save_checkpoint expects an FTerViT, got {type(model).__name__}")
    pt, js = _paths(path)
    pt.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    _atomic_write(pt, lambda f: torch.save(state, f))
    doc = {"format": FORMAT, "version": VERSION, "config": model.config, "weights": pt.name,
           "meta": meta or {}}
    _atomic_write(js, lambda f: f.write((json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()))
    return js


def read_checkpoint_json(path: str | os.PathLike) -> dict:
    """The parsed JSON document of a checkpoint (config + meta), validated.

    Raises:
        FileNotFoundError / ValueError: naming the file that is missing or malformed.
    """
    _, js = _paths(path)
    if not js.is_file():
        raise FileNotFoundError(f"checkpoint config not found: {js}")
    try:
        doc = json.loads(js.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{js}: not valid JSON ({e})") from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("config"), dict):
        raise ValueError(f"{js}: not an {FORMAT} checkpoint config (needs 'format': '{FORMAT}' and 'config')")
    if doc.get("version") != VERSION:
        raise ValueError(f"{js}: unsupported checkpoint version {doc.get('version')!r} (expected {VERSION})")
    return doc


def load_checkpoint(path: str | os.PathLike) -> FTerViT:
    """Rebuild an FTerViT from ``path`` (the ``.pt``, the ``.json`` or their directory), in eval mode.

    Raises:
        FileNotFoundError: the JSON or the weights file is missing (message names it).
        ValueError: a file is malformed or the weights do not match the config (names the file).
    """
    doc = read_checkpoint_json(path)
    _, js = _paths(path)
    pt = js.parent / doc.get("weights", js.with_suffix(".pt").name)
    if not pt.is_file():
        raise FileNotFoundError(f"checkpoint weights not found: {pt} (referenced by {js})")
    try:
        model = FTerViT.from_config(doc["config"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{js}: invalid config ({e})") from e
    try:
        state = torch.load(pt, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises a zoo of types for corrupt files
        raise ValueError(f"{pt}: cannot read weights ({type(e).__name__}: {e})") from e
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise ValueError(f"{pt}: weights do not match the config in {js.name} ({e})") from e
    return model.eval()


def load_demo_model() -> FTerViT:
    """The tiny FTerViT trained on scikit-learn digits that ships with the package (eval mode)."""
    return load_checkpoint(DEMO_CHECKPOINT)
