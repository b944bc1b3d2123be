"""Training the strong agent: DPO on MCTS preference pairs (TRL's `DPOTrainer`, LoRA
adapter), and the baseline SFT on the successful trajectories' steps (the LM's `sft`).
Adapters are content-addressed under the cache and reload as `HFLanguageModel`s."""

from __future__ import annotations

import json
import warnings

from pydantic import Field

from w2s.cache import atomic_path, cache_dir, fingerprint, lock
from w2s.errors import DataError
from w2s.models.lm.base import to_messages
from w2s.models.lm.hf import ADAPTER_META, HFLanguageModel
from w2s.models.precision import resolve_dtype
from w2s.registry import Params

DPO_VERSION = 2  # 2: trains in the model dtype (was TRL's bf16 autocast)


class DPOParams(Params):
    beta: float = Field(0.1, gt=0)
    epochs: int = Field(2, ge=1)
    lr: float = Field(5e-4, gt=0)
    batch_size: int = Field(8, ge=1)
    r: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)


def dpo(
    lm: HFLanguageModel,
    pairs: list[tuple[str, str, str]],
    params: DPOParams,
    seed: int = 0,
) -> HFLanguageModel:
    """`lm` with a LoRA adapter trained by DPO on (observation, preferred, dispreferred)."""
    if not pairs:
        raise DataError("DPO needs at least one preference pair")
    if lm.adapter:
        raise DataError("DPO starts from a base model")
    hp = {**params.model_dump(), "seed": seed}
    fp = fingerprint("dpo", DPO_VERSION, lm.key, pairs, hp, length=20)
    folder = cache_dir() / "adapters" / fp
    with lock(folder):
        if not (folder / ADAPTER_META).exists():
            model = _train_dpo(lm, pairs, hp)
            with atomic_path(folder, directory=True) as tmp:
                model.save_pretrained(str(tmp))
                meta = {
                    "base": lm.ref,
                    "base_revision": lm.source.revision,
                    "dtype": lm.dtype,
                    "fingerprint": fp,
                    "n_pairs": len(pairs),
                    "params": hp,
                    "kind": "dpo",
                }
                (tmp / ADAPTER_META).write_text(json.dumps(meta, indent=2))
    return HFLanguageModel(
        lm.ref,
        dtype=lm.dtype,
        batch_size=lm.batch_size,
        max_length=lm.max_length,
        adapter=folder,
        chat=lm._chat_override,
    )


def dpo_config(out: str, dtype: str, max_length: int, hp: dict):
    """TRL's `DPOConfig` for one training: `hp` (DPOParams' fields and the seed), in the
    model's own precision. TRL defaults to bf16 autocast; on these CPUs bf16 is emulated
    and about 6x slower, so `bf16` is set only for a bf16 model."""
    import torch
    from trl import DPOConfig

    return DPOConfig(
        output_dir=out,
        beta=hp["beta"],
        num_train_epochs=hp["epochs"],
        learning_rate=hp["lr"],
        per_device_train_batch_size=hp["batch_size"],
        seed=hp["seed"],
        report_to=[],
        save_strategy="no",
        logging_steps=10,
        use_cpu=not torch.cuda.is_available(),
        bf16=resolve_dtype(dtype) == "bfloat16",
        disable_tqdm=True,
        max_length=max_length,
        gradient_checkpointing=False,  # small models: recomputation only costs time
    )


def _train_dpo(lm: HFLanguageModel, pairs, hp):
    import tempfile

    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOTrainer

    torch.manual_seed(hp["seed"])
    lead = "" if lm.chat else " "  # plain prompts end with "Answer:"
    rows = [
        {"prompt": lm.render(to_messages(o)), "chosen": lead + c, "rejected": lead + r}
        for o, c, r in pairs
    ]
    with tempfile.TemporaryDirectory() as out, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = dpo_config(out, lm.dtype, lm.max_length, hp)
        trainer = DPOTrainer(
            model=lm._load_base(),
            args=config,
            train_dataset=Dataset.from_list(rows),
            processing_class=lm.tokenizer,
            peft_config=LoraConfig(
                task_type="CAUSAL_LM",
                r=hp["r"],
                lora_alpha=hp["alpha"],
                lora_dropout=0.0,
                target_modules="all-linear",
            ),
        )
        trainer.train()
        model = trainer.model
    return model.eval()
