"""Record a proof of training from Lightning or a Hugging Face ``Trainer``.

Both trainers own their loop, so the recorder's committed order reaches them as a
``batch_sampler`` (``recorder.batch_sampler()``), and a callback records each step:

- :class:`ProofHooks`: the three calls any callback makes (``proof_begin`` with the model and
  optimizer, ``proof_step`` after each optimizer step, ``proof_end``); mix it into your own;
- :func:`lightning_proof_callback` / :func:`hf_proof_callback`: ready callbacks for Lightning
  and ``transformers`` (imported lazily, so this module needs neither).

Lightning::

    rec = ProofRecorder("proof", dataset, steps=1000, batch_size=32, checkpoint_every=100)
    rec.seed()                                        # before building the model
    model = MyLightningModule()
    loader = DataLoader(dataset, batch_sampler=rec.batch_sampler())
    trainer = lightning.Trainer(max_steps=1000, callbacks=[lightning_proof_callback(rec)])
    trainer.fit(model, loader)

Hugging Face: build the callback with ``hf_proof_callback(rec)``, and have the Trainer draw its
batches from the recorder, e.g. by overriding ``get_train_dataloader`` to return
``DataLoader(train_dataset, batch_sampler=rec.batch_sampler(), collate_fn=data_collator)``.

The verifier retrains segments with the training script's :class:`runcast.verify.Task`; its
``step`` must do what the trainer's step did (for Lightning: ``training_step``, ``backward``,
``optimizer.step()``). ``seed_each_step`` is not supported here (the loader fetches ahead).

Example:
    >>> import tempfile, torch
    >>> from runcast.verify import ProofRecorder
    >>> data = torch.utils.data.TensorDataset(torch.randn(64, 2), torch.randn(64, 1))
    >>> rec = ProofRecorder(tempfile.mkdtemp(), data, steps=4, batch_size=8, checkpoint_every=2)
    >>> hooks = ProofHooks(rec)
    >>> model = torch.nn.Linear(2, 1); opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> hooks.proof_begin(model, opt)
    >>> for x, y in torch.utils.data.DataLoader(data, batch_sampler=hooks.sampler):
    ...     opt.zero_grad(); ((model(x) - y) ** 2).mean().backward(); opt.step()
    ...     hooks.proof_step(model, opt)
    >>> (hooks.proof_end() / "manifest.json").exists()
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runcast._optional import require
from runcast.errors import InvalidInputError
from runcast.verify import ProofRecorder


class ProofHooks:
    """The recorder calls a training callback makes; ``sampler`` feeds the DataLoader."""

    def __init__(self, recorder: ProofRecorder) -> None:
        if not isinstance(recorder, ProofRecorder):
            raise InvalidInputError(
                f"proof= takes a runcast.verify.ProofRecorder, got {type(recorder).__name__}."
            )
        self.recorder = recorder
        self.sampler = recorder.batch_sampler()
        self._started = False

    def proof_begin(self, model: Any, optimizer: Any) -> None:
        """Checkpoint the initial state (once, however often training is started)."""
        if not self._started:
            self.recorder.start(model, optimizer)
            self._started = True

    def proof_step(self, model: Any, optimizer: Any) -> None:
        """Record the step just taken on the oldest batch the sampler gave out."""
        if not self.sampler.given:
            raise InvalidInputError(
                "no committed batch to record: build the DataLoader with "
                "batch_sampler=recorder.batch_sampler() (the hooks' .sampler)."
            )
        step, idx = self.sampler.pop()
        self.recorder.record(step, idx, model, optimizer)

    def proof_end(self) -> Path:
        """Write the manifest (or, if training stopped early, what a resume needs)."""
        if self.recorder.next_step == self.recorder.steps:
            return self.recorder.finish()
        self.recorder.close()
        return self.recorder.path


def lightning_proof_callback(recorder: ProofRecorder) -> Any:
    """A Lightning callback recording ``recorder``'s proof (single optimizer, no accumulation).

    Its ``sampler`` attribute is the ``batch_sampler`` for the training DataLoader.
    """
    pl = require("lightning.pytorch", extra="lightning", purpose="for lightning_proof_callback")

    class LightningProofCallback(ProofHooks, pl.Callback):  # type: ignore[misc,name-defined]
        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            self.proof_begin(pl_module, trainer.optimizers[0])

        def on_train_batch_end(
            self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
        ) -> None:
            self.proof_step(pl_module, trainer.optimizers[0])

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            self.proof_end()

    return LightningProofCallback(recorder)


def hf_proof_callback(recorder: ProofRecorder) -> Any:
    """A ``transformers`` TrainerCallback recording ``recorder``'s proof.

    The Trainer must draw its batches from ``recorder.batch_sampler()`` (see the module doc)
    and take one optimizer step per batch (no gradient accumulation).
    """
    transformers = require("transformers", extra="hf", purpose="for hf_proof_callback")

    class HFProofCallback(ProofHooks, transformers.TrainerCallback):  # type: ignore[misc,name-defined]
        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self._model, self._optimizer = kw.get("model"), kw.get("optimizer")
            self.proof_begin(self._model, self._optimizer)

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.proof_step(kw.get("model", self._model), kw.get("optimizer", self._optimizer))

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.proof_end()

    return HFProofCallback(recorder)


__all__ = ["ProofHooks", "hf_proof_callback", "lightning_proof_callback"]
