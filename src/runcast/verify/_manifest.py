"""Read a proof folder, checking its shape, so that a tampered file is a clear failure.

Every field the verifier uses is checked here, once; below this module the proof is trusted to
be well-formed (not honest: that is what the checks decide).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from runcast.errors import InvalidInputError
from runcast.verify._commit import Commitment
from runcast.verify._recorder import FORMAT, MANIFEST, VERSION


class ProofFormatError(InvalidInputError):
    """A proof folder or one of its files is missing, unreadable or malformed."""


@dataclass(frozen=True)
class Proof:
    """A parsed proof: the manifest's fields, typed."""

    folder: Path
    version: int
    commitment: Commitment
    commitment_digest: str
    environment: dict[str, str]
    config: dict[str, Any]
    steps: int
    batch_size: int
    checkpoint_every: int
    holdout: float
    seed_each_step: bool
    checkpoints: list[dict[str, Any]]
    run: dict[str, str] | None
    training_seconds: float
    resumes: int


def _need(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise ProofFormatError(f"{where} has no {key!r}: the manifest is incomplete or altered.")
    value = obj[key]
    if isinstance(value, bool) and kind is not bool:
        raise ProofFormatError(f"{where}[{key!r}] is {value!r}, not a {kind}.")
    if not isinstance(value, kind):
        raise ProofFormatError(f"{where}[{key!r}] is {value!r}, of the wrong type.")
    return value


def _hex(value: str, where: str, length: int | None = 64) -> str:
    try:
        bytes.fromhex(value)
    except ValueError:
        raise ProofFormatError(f"{where} is {value[:20]!r}, not a hex digest.") from None
    if length is not None and len(value) != length:
        raise ProofFormatError(f"{where} has {len(value)} hex digits, not {length}.")
    return value


def load_proof(folder: str | Path) -> Proof:
    """Parse ``folder/manifest.json``; raise :class:`ProofFormatError` saying what is wrong."""
    path = Path(folder)
    file = path / MANIFEST
    if not file.is_file():
        unfinished = (path / "progress.json").exists() or (path / "checkpoints.jsonl").exists()
        hint = " (the run did not finish: resume it)" if unfinished else ""
        raise ProofFormatError(f"no proof manifest at {str(file)!r}{hint}.")
    try:
        m = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ProofFormatError(f"{str(file)!r} is not readable JSON: {err}") from err
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ProofFormatError(f"{str(file)!r} is not a runcast proof manifest.")
    version = m.get("version")
    if type(version) is not int or not 1 <= version <= VERSION:
        raise ProofFormatError(
            f"{str(file)!r} is proof format version {m.get('version')!r}; this runcast reads "
            f"versions 1 to {VERSION}. Use the runcast version that wrote it."
        )
    c = _need(m, "commitment", dict, "manifest")
    values: dict[str, Any] = {}
    for f in fields(Commitment):
        kind = int if f.name == "n_records" else str
        values[f.name] = _need(c, f.name, kind, "manifest['commitment']")
    for key in ("data_root", "seed_commitment", "config_sha256", "environment_sha256", "nonce"):
        _hex(values[key], f"commitment {key}")
    if values["code_sha256"]:
        _hex(values["code_sha256"], "commitment code_sha256")
    p = _need(m, "protocol", dict, "manifest")
    steps = _need(p, "steps", int, "protocol")
    batch = _need(p, "batch_size", int, "protocol")
    every = _need(p, "checkpoint_every", int, "protocol")
    holdout = float(_need(p, "holdout", (int, float), "protocol"))
    if min(steps, batch, every) < 1 or not 0 < holdout < 1:
        raise ProofFormatError(f"protocol {p} has a value out of range.")
    entries = _need(m, "checkpoints", list, "manifest")
    checked: list[dict[str, Any]] = []
    for i, e in enumerate(entries):
        where = f"checkpoint #{i}"
        step = _need(e, "step", int, where)
        name = _need(e, "file", str, where)
        if "/" in name or "\\" in name or name.startswith("."):
            raise ProofFormatError(f"{where} names the file {name!r}, outside the proof folder.")
        checked.append(
            {
                "step": step,
                "file": name,
                "sha256": _hex(_need(e, "sha256", str, where), f"{where} sha256"),
                "chain": _hex(_need(e, "chain", str, where), f"{where} chain"),
            }
        )
    run = m.get("run")
    return Proof(
        folder=path,
        version=version,
        commitment=Commitment(**values),
        commitment_digest=_hex(_need(m, "commitment_digest", str, "manifest"), "digest"),
        environment={str(k): str(v) for k, v in _need(m, "environment", dict, "manifest").items()},
        config=_need(m, "config", dict, "manifest"),
        steps=steps,
        batch_size=batch,
        checkpoint_every=every,
        holdout=holdout,
        seed_each_step=bool(_need(p, "seed_each_step", bool, "protocol")),
        checkpoints=checked,
        run=run if isinstance(run, dict) else None,
        training_seconds=float(_need(m, "training_seconds", (int, float), "manifest")),
        resumes=int(m.get("resumes", 0)) if isinstance(m.get("resumes", 0), int) else 0,
    )
