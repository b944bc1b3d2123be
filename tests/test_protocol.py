"""The one experiment protocol: config validated against the task kind and the methods'
declared parameters before any work, stage keys built from each stage's own inputs, run
folders that are complete or marked incomplete, strict JSON, and gap marking. Real runs
use BIG-bench sentiment with the fastest real encoder (minilm-l6) at small sizes."""

import json
import math
import shutil
import zipfile

import numpy as np
import pytest

from w2s.cache import write_json_atomic
from w2s.errors import UnknownNameError, W2SError
from w2s.experiment import build_config, make_protocol, run_experiment
from w2s.experiment.outputs import INCOMPLETE, is_finished_run
from w2s.registry import Registry
from w2s.seeds import derive_seed

SMALL = {
    "task": "sentiment",
    "weak": "minilm-l6",
    "strong": "minilm-l6",
    "methods": ["naive", {"name": "logconf", "aux_max": 0.4}],
    "data": {"n_weak_train": 60, "n_strong_train": 80, "n_val": 40, "n_test": 80},
    "probe": {"epochs": 5},
    "bootstrap": {"n_resamples": 200},
    "seed": 3,
}


def _run(tmp_path, name, **over):
    raw = {**SMALL, **over, "out": str(tmp_path / name)}
    return run_experiment(build_config(raw))


# -- validation before any work -------------------------------------------------------------


def test_generation_task_defaults_to_its_spec_methods():
    proto = make_protocol(build_config({"task": "gsm", "weak": "smollm2-135m", "strong": "x"}))
    assert list(proto.methods) == ["naive_sft", "icl_refine"]
    assert proto.spec.baseline == "naive_sft" and proto.spec.weak_mode == "sft"
    proto = make_protocol(build_config({"task": "sentiment", "weak": "a", "strong": "b"}))
    assert list(proto.methods) == ["naive"]


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"task": "gsm", "weak": {"model": "a", "layer": 3}}, "weak.layer: not used by generation"),
        ({"task": "gsm", "probe": {"epochs": 3}}, "probe: not used by generation"),
        ({"task": "sentiment", "generation": {"k": 2}}, "generation: not used by classification"),
        ({"task": "sentiment", "methods": ["naive_sft"]}, "'naive_sft' is for generation tasks"),
        ({"task": "sentiment", "methods": [{"name": "logconf", "aux_max": "abc"}]}, "aux_max"),
        ({"task": "sentiment", "methods": [{"name": "logconf", "warmup": -3}]}, "warmup"),
        ({"task": "sentiment", "methods": [{"name": "product", "gamma": 1}]}, "'gamma'"),
        ({"task": "sentiment", "methods": "naive,naive"}, "methods listed twice"),
    ],
)
def test_bad_config_fails_before_any_write(tmp_path, raw, message):
    out = tmp_path / "never"
    cfg = build_config({"weak": "minilm-l6", "strong": "minilm-l6", **raw, "out": str(out)})
    with pytest.raises(W2SError, match=message):
        make_protocol(cfg)
    assert not out.exists()


@pytest.mark.parametrize("seed", [-1, 2**40])
def test_seed_is_bounded(seed):
    with pytest.raises(W2SError, match="seed"):
        build_config({"task": "sentiment", "weak": "a", "strong": "b", "seed": seed})


def test_out_that_is_a_file_fails_before_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out in (blocker, blocker / "run"):
        with pytest.raises(W2SError, match="is a file"):
            make_protocol(build_config({**SMALL, "out": str(out)}))


def test_layer_on_a_sentence_encoder_is_an_error(tmp_path):
    cfg = build_config({**SMALL, "strong": {"model": "minilm-l6", "layer": 3}})
    with pytest.raises(W2SError, match="sentence encoder"):
        make_protocol(cfg).run()


# -- registry and seeds -----------------------------------------------------------------------


def test_registry_scopes_names_and_rejects_duplicates():
    reg: Registry[int] = Registry("widget")
    reg.add("a", 1, "classification")
    reg.add("a", 2, "generation")
    assert reg.get("a", "generation") == 2 and reg.names("classification") == ["a"]
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("a", 3, "generation")
    with pytest.raises(UnknownNameError, match="unknown widget 'b'"):
        reg.get("b", "generation")


def test_list_methods_prints_each_entry_once_with_parameters(w2s_cli):
    lines = w2s_cli("list", "methods").stdout.splitlines()
    assert lines.count("classification methods:") == 1 and lines.count("generation methods:") == 1
    split = lines.index("generation methods:")
    for part in (lines[:split], lines[split:]):
        names = [ln.split()[0] for ln in part if ln.startswith("  ")]
        assert len(names) == len(set(names)) and "icl_refine" in names
    assert any("logconf" in ln and "aux_max=0.5" in ln for ln in lines[:split])
    assert any("icl_refine" in ln and "finetune=True" in ln for ln in lines[split:])


def test_derived_seeds_differ_per_stage_and_run():
    seeds = {derive_seed(s, stage) for s in range(3) for stage in ("val", "refine_test", "x")}
    assert len(seeds) == 9 and all(0 <= s < 2**31 for s in seeds)
    assert derive_seed(5, "val") == derive_seed(5, "val")


# -- stages keyed by their own inputs ------------------------------------------------------------


def test_stage_keys_follow_their_own_inputs(tmp_path):
    first = _run(tmp_path, "r")
    assert set(first["timing_s"]) >= {"weak_floor", "strong_ceiling", "method_naive"}
    # scoring settings are no stage's input: everything is reused
    again = _run(tmp_path, "r", bootstrap={"n_resamples": 300})
    assert not {"weak_floor", "strong_ceiling", "method_naive"} & set(again["timing_s"])
    assert again["methods"]["naive"]["accuracy"] == first["methods"]["naive"]["accuracy"]
    # a method's own parameter recomputes that method only
    changed = _run(tmp_path, "r", methods=["naive", {"name": "logconf", "aux_max": 0.2}])
    assert "method_logconf" in changed["timing_s"]
    assert not {"weak_floor", "strong_ceiling", "method_naive"} & set(changed["timing_s"])


def test_a_copied_run_folder_resumes_elsewhere_from_its_compressed_stages(tmp_path):
    """A run folder moved to another place (or committed and cloned) resumes there: its
    saved stages are keyed by their inputs, not by where the folder lives."""
    first = _run(tmp_path, "here")
    stages = sorted((tmp_path / "here" / ".stages").glob("*.npz"))
    assert len(stages) == 4  # floor, ceiling, two methods
    for stage in stages:
        with zipfile.ZipFile(stage) as z:
            assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_DEFLATED}
    shutil.copytree(tmp_path / "here", tmp_path / "moved" / "there")
    again = _run(tmp_path / "moved", "there")
    assert not {"weak_floor", "strong_ceiling", "method_naive", "method_logconf"} & set(
        again["timing_s"]
    )
    for m in ("naive", "logconf"):
        assert again["methods"][m]["accuracy"] == first["methods"][m]["accuracy"]


def test_a_new_loss_version_recomputes_its_methods(tmp_path, monkeypatch):
    import dataclasses

    from w2s.models import losses

    _run(tmp_path, "v")
    spec = losses.LOSSES.get("logconf")
    monkeypatch.setitem(
        losses.LOSSES._entries, ("", "logconf"), dataclasses.replace(spec, version=spec.version + 1)
    )
    again = _run(tmp_path, "v")
    assert "method_logconf" in again["timing_s"] and "method_naive" not in again["timing_s"]


def test_damaged_stage_file_is_quarantined_and_recomputed(tmp_path, capfd):
    first = _run(tmp_path, "d")
    stage = next((tmp_path / "d" / ".stages").glob("method_naive-*.npz"))
    stage.write_bytes(stage.read_bytes()[:40])
    again = _run(tmp_path, "d")
    assert "method_naive" in again["timing_s"]
    assert again["methods"]["naive"] == first["methods"]["naive"]
    assert "unreadable" in capfd.readouterr().err
    assert list((tmp_path / "d" / ".stages").glob(".corrupt-*"))


# -- the run folder ----------------------------------------------------------------------------


def test_failed_rerun_leaves_the_folder_marked_incomplete(tmp_path, w2s_cli):
    _run(tmp_path, "f")
    out = tmp_path / "f"
    assert is_finished_run(out) and not (out / INCOMPLETE).exists()
    # icl_refine fails at run time on a sentence-encoder strong model: after the folder began
    with pytest.raises(W2SError, match="causal LM"):
        _run(tmp_path, "f", methods=["icl_refine"])
    assert not is_finished_run(out) and (out / INCOMPLETE).exists()
    assert not (out / "metrics.json").exists() and not (out / "report.md").exists()
    assert "icl_refine" in (out / "config.yaml").read_text()
    proc = w2s_cli("analyze", "misfit", str(out), "--out", str(tmp_path / "mf"))
    assert proc.returncode == 2 and "not a finished run directory" in proc.stderr


def test_metrics_json_is_strict_json(tmp_path):
    path = tmp_path / "m.json"
    write_json_atomic(path, {"a": float("nan"), "b": [np.float32(1.5), math.inf], "c": np.int64(2)})

    def refuse(token):
        raise ValueError(token)

    assert json.loads(path.read_text(), parse_constant=refuse) == {
        "a": None,
        "b": [1.5, None],
        "c": 2,
    }


def test_gap_rate_is_saved_and_a_flat_gap_is_marked(tmp_path):
    from w2s.experiment.outputs import gap_note, pgr_cells

    metrics = _run(tmp_path, "g")  # weak and strong are the same encoder
    for metric in ("accuracy", "auroc"):
        gap = metrics["gap"][metric]
        assert gap["significant"] == (gap["positive_rate"] >= 0.975)
        assert (
            metrics["methods"]["naive"][f"pgr_{metric}_gap_positive_rate"] == gap["positive_rate"]
        )
    assert json.loads((tmp_path / "g" / "metrics.json").read_text())["gap"] == metrics["gap"]
    row = {"pgr_accuracy": -2.71, "pgr_accuracy_ci": [-9.0, 3.0]}
    flat = {
        "bootstrap": {"ci": 0.95},
        "gap": {"accuracy": {"positive_rate": 0.6, "significant": False}},
    }
    assert pgr_cells(flat, row, "accuracy") == ["no gap†", ""]
    assert "60% (accuracy)" in gap_note(flat, ["accuracy"])[0]
    flat["gap"]["accuracy"]["significant"] = True
    assert pgr_cells(flat, row, "accuracy") == ["-271.0%", "[-900.0%, 300.0%]"]
    assert gap_note(flat, ["accuracy"]) == []


def test_auto_dtype_is_saved_resolved(monkeypatch):
    # `auto` means bf16 on CUDA and float32 on CPU; the saved config names the choice
    from w2s.methods.icl_classify import ICLRelabelParams

    raw = {"task": "sentiment", "weak": "minilm-l6", "strong": "mpnet-base"}
    assert build_config(raw).weak.dtype == "float32"
    assert ICLRelabelParams().dtype == "float32"
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    assert build_config(raw).strong.model_dump()["dtype"] == "bfloat16"
    pinned = build_config({**raw, "weak": {"model": "minilm-l6", "dtype": "bfloat16"}})
    assert pinned.weak.dtype == "bfloat16"
    with pytest.raises(W2SError, match="dtype"):
        build_config({**raw, "weak": {"model": "minilm-l6", "dtype": "half"}})
