"""Every target for every task on small really-trained runs; `--target auto` on stubbed timings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import invoke, invoke_fresh, invoke_json

from edgetune.errors import AccuracyGateError, ExitCode

OV_TARGETS = ("openvino-fp32", "openvino-fp16", "openvino-int8")


def _ov_model(xml: str):
    import openvino as ov

    return ov.Core().read_model(xml)


# Every OpenVINO target's generic promises are checked on the classifier; the detector and the
# keyword model export only the targets where they differ (kept-float head; f32 front end).
OV_CASES = {"classify": OV_TARGETS, "detect": ("openvino-int8",), "kws": ("openvino-fp16", "openvino-int8")}


def test_openvino_targets_classify(tiny_run):
    _check_openvino_targets("classify", tiny_run)


def test_openvino_targets_detect(det_run):
    _check_openvino_targets("detect", det_run[0])


@pytest.mark.slow
def test_openvino_targets_kws(kws_run):
    _check_openvino_targets("kws", kws_run[0])


def _check_openvino_targets(task: str, run: Path) -> None:
    from edgetune.export.backends.openvino import float_ops, stored_precision_hint

    targets = OV_CASES[task]
    # the plain quantisation's structure is what is checked here (--max-drop none: no search on top)
    r = {t: invoke_json("export", run, "--target", t, *(["--max-drop", "none"] if "int8" in t else [])) for t in targets}
    for t in targets:
        folder = run / "export" / t
        assert sorted(p.name for p in folder.iterdir()) == ["export.json", "model.bin", "model.xml"]
        assert r[t]["artifact"].endswith(f"{t}/model.xml")
    if "openvino-fp32" in r:  # checked against PyTorch like cpu-fp32, and told to run in f32 (not bf16) anywhere
        n = r["openvino-fp32"]["metrics"]["n"]
        assert r["openvino-fp32"]["max_abs_diff"] <= 1e-3
        assert abs(r["openvino-fp32"]["drop"]) <= 1.5 / n  # at most one val sample flips on a tie
        assert stored_precision_hint(_ov_model(r["openvino-fp32"]["artifact"])) == "f32"
        # fp16: half the weight bytes, outputs close
        weights = {t: (run / "export" / t / "model.bin").stat().st_size for t in targets}
        assert weights["openvino-fp16"] < 0.55 * weights["openvino-fp32"]
    if "openvino-fp16" in r:
        assert r["openvino-fp16"]["max_abs_diff"] < 0.05 and abs(r["openvino-fp16"]["drop"]) <= 0.05
        # precision left to the device, except where the task cannot compute in half (kws' log-mel front end)
        assert stored_precision_hint(_ov_model(r["openvino-fp16"]["artifact"])) == (None if task != "kws" else "f32")
    # int8: really quantised, with the task's float layers (front end, detect head, first layer) left float
    int8 = _ov_model(r["openvino-int8"]["artifact"])
    assert sum(op.get_type_name() == "FakeQuantize" for op in int8.get_ops()) > 3
    meta = json.loads((run / "export" / "openvino-int8" / "export.json").read_text())
    assert meta["calibration"]["hash"] and meta["quantization"]["quantizer"].startswith("nncf.quantize")
    floats = {f.split("/WithoutBiases")[0] for f in float_ops(int8)}
    kept_convs = meta["quantization"]["task_kept_float"].get("kept_float_convs", [])
    assert set(kept_convs) <= floats, set(kept_convs) - floats
    assert len(kept_convs) == (7 if task == "detect" else 0)  # 3 scales x (box, class) + DFL (ultralytics#22644)
    assert meta["quantization"]["kept_float"][-1] in floats  # the first compute layer
    if task == "classify":  # 200 val images of a trained tiny net (~0.65 top-1)
        assert r["openvino-int8"]["drop"] <= 0.05
    if task == "kws":  # 70 val clips; a broken quantisation collapses towards chance (0.2)
        assert r["openvino-int8"]["drop"] <= 0.1 and r["openvino-int8"]["metric"] >= 0.8


def test_openvino_artefact_predicts_without_torch(tiny_run, fm_data):
    invoke_json("export", tiny_run, "--target", "openvino-int8")
    img = sorted((fm_data / "val" / "sneaker").glob("*.png"))[0]
    out = invoke_fresh("predict", tiny_run / "export" / "openvino-int8", img)
    assert out["predictions"][0]["top"][0]["label"] in {"sneaker", "sandal", "ankle_boot"}


def test_targets_lists_every_target_with_its_needs():
    rows = invoke_json("targets")
    assert sorted(r["id"] for r in rows) == ["cpu-fp32", "cpu-int8", "litert-fp32", "litert-int8", "ncnn-fp16",
                                             "ncnn-fp32", "openvino-fp16", "openvino-fp32", "openvino-int8",
                                             "rknn-fp16", "rknn-int8"]
    assert all(r["needs"] and r["runtime"] in ("onnxruntime", "openvino", "ncnn", "litert", "rknn") for r in rows)


def _dev_profile(tmp_path: Path, threads: int, targets: str) -> Path:
    """A minimal valid profile (the schema wants a source for every section)."""
    profile = tmp_path / "dev.yaml"
    src = "test fixture"
    profile.write_text(f"name: dev\ncpu: {{arch: x86_64, model: test cpu, cores: 2, threads: {threads}, isa: [avx2]}}\n"
                       f"memory: {{ram_mb: 1024, storage_mb: 1024}}\ntargets: [{targets}]\nbudgets: {{}}\n"
                       f"sources: {{cpu: {src}, memory: {src}, targets: {src}, budgets: {src}}}\n")
    return profile


def test_auto_picks_fastest_within_budget_on_stubbed_timings(tiny_run, tmp_path):
    import shutil

    from edgetune.export.pipeline import Options, export_run

    run = shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns("export", "bench"))
    profile = _dev_profile(tmp_path, 1, "cpu-fp32, cpu-int8, openvino-fp32, openvino-int8")
    stub = {"cpu-fp32": 5.0, "cpu-int8": 3.0, "openvino-fp32": 4.0, "openvino-int8": 2.0}
    seen = []

    def measure(artifact, x, threads):
        seen.append((Path(artifact).parent.name, threads))
        return stub[Path(artifact).parent.name]

    r = export_run(run, "auto", options=Options(max_drop=0.05), profile=str(profile), quiet=True, measure=measure)
    cands = {c["target"]: c for c in r["candidates"]}
    assert set(cands) == set(stub) and all(c["p50_ms"] == stub[t] for t, c in cands.items())
    assert {t for t, _ in seen} == set(stub) and {th for _, th in seen} == {1}  # the profile's threads
    within = [t for t, c in cands.items() if c["drop"] <= 0.05]
    assert r["target"] == min(within, key=stub.get)
    assert (run / "export" / r["target"] / "export.json").is_file()
    assert sorted(p.name for p in (run / "export").iterdir()) == [r["target"]]  # only the chosen lands
    meta = json.loads((run / "export" / r["target"] / "export.json").read_text())
    assert meta["auto"]["chosen"] == r["target"] and len(meta["auto"]["candidates"]) == 4


def _cand(t, drop, p50):
    return {"target": t, "metric": 0.9 - drop, "drop": drop, "p50_ms": p50, "size_mb": 1.0, "error": None}


@pytest.mark.parametrize("cands, max_drop, chosen", [
    ([_cand("cpu-fp32", 0, 5), _cand("cpu-int8", 0.002, 3), _cand("openvino-int8", 0.03, 1)], 0.01, "cpu-int8"),
    ([_cand("cpu-fp32", 0, 5), _cand("cpu-int8", 0.002, 6)], 0.01, "cpu-fp32"),  # int8 slower here: fp32 wins
    ([_cand("cpu-int8", 0.02, 3), {"target": "openvino-int8", "error": "no"}], 0.01, None),
])
def test_auto_choice(cands, max_drop, chosen):
    from edgetune.export.auto import choose
    from edgetune.export.gate import Gate

    got = choose(cands, Gate(0.9, max_drop))
    assert (got and got["target"]) == chosen


def test_auto_gate_when_no_candidate_meets_budget(tmp_path):
    from edgetune.export.auto import export_auto
    from edgetune.export.targets import get_target

    profile = _dev_profile(tmp_path, 2, "cpu-int8, openvino-int8")
    from edgetune.export.gate import Gate

    ctx = SimpleNamespace(gate=lambda target=None: Gate.for_target(0.9, None, int8=False, auto=True),  # default 0.01
                          quiet=True,
                          task=SimpleNamespace(metric_name="top1"), inputs=[None])

    def build(ctx, target):
        (tmp_path / target.id).mkdir()
        for f in target.files:
            (tmp_path / target.id / f).write_bytes(b"x")
        return SimpleNamespace(target=get_target(target.id), dir=tmp_path / target.id,
                               artifact=tmp_path / target.id / target.artifact, metrics={"top1": 0.85},
                               size_mb=1e-6)

    with pytest.raises(AccuracyGateError) as e:
        export_auto(ctx, str(profile), build=build, commit=None, measure=lambda *a: 1.0)
    assert e.value.exit_code == ExitCode.ACCURACY_GATE
    assert "no candidate for dev stays within --max-drop 0.01 (best: cpu-int8 drop 0.0500)" in e.value.message


@pytest.mark.parametrize("args, message", [
    (["--target", "auto"], "--target auto needs --profile P"),
    (["--target", "cpu-int8", "--profile", "x86-64-avx512"], "--profile is only used with --target auto"),
    (["--target", "openvino-int8", "--calib-method", "entropy"],
     "--calib-method entropy is not available for openvino-int8 (OpenVINO)"),
    (["--target", "openvino-int8", "--per-tensor"], "--per-tensor is not available for openvino-int8 (OpenVINO)"),
    (["--target", "cpu-int8", "--preset", "performance"], "--preset performance is not available for cpu-int8"),
    (["--target", "cpu-int8", "--int8-io"], "--int8-io is not available for cpu-int8 (ONNX Runtime)"),
    (["--target", "litert-fp32", "--dynamic-batch"],
     "--dynamic-batch is not available for litert-fp32 (LiteRT artefacts take one sample at a time)"),
    (["--target", "ncnn-fp16", "--dynamic-batch"], "--dynamic-batch is not available for ncnn-fp16 (NCNN"),
])
def test_export_usage_errors(tiny_run, args, message):
    """Each fails before any work: no ONNX export was started (its progress line never appears)."""
    res = invoke("export", tiny_run, *args)
    assert res.exit_code == 2 and message in res.stderr, res.stderr
    assert "exporting" not in res.stderr and len(res.stderr.strip().splitlines()) <= 2, res.stderr


def test_unsupported_op_is_named_with_its_layer(tmp_path):
    import numpy as np
    import torch

    from edgetune.errors import UnsupportedOpError
    from edgetune.export.onnx import export_onnx

    class Spectrum(torch.nn.Module):
        def forward(self, x):
            return torch.fft.rfft(x, dim=-1).abs()

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), Spectrum(), torch.nn.Flatten())
    with pytest.raises(UnsupportedOpError) as e:
        export_onnx(model, np.zeros((1, 1, 8, 8), np.float32), tmp_path / "m.onnx")
    assert e.value.message == "ONNX export (opset 18) cannot express aten::fft_rfft in layer '1'"
    assert e.value.exit_code == ExitCode.EXPORT_VALIDATION


def test_calibration_check_warns_on_unrepresentative_set():
    import numpy as np

    from edgetune.export.calibration import check

    rng = np.random.default_rng(0)
    dark = [rng.uniform(0, 0.2, (1, 3, 8, 8)).astype(np.float32) for _ in range(40)]
    bright = [rng.uniform(0.6, 1, (1, 3, 8, 8)).astype(np.float32) for _ in range(16)]
    record = {"size": 40, "per_class_min": 4}
    warnings = check(record, 10, dark, bright)
    assert len(warnings) == 1 and "val median input mean and std lies outside" in warnings[0]
    assert record["representativeness"]["outside"] == ["mean", "std"]
    assert check({"size": 40, "per_class_min": 4}, 10, dark, dark[:16]) == []
    small = check({"size": 12, "per_class_min": 0}, 10, dark[:12], dark[:12])
    assert len(small) == 1 and "covers some of the 10 classes with 0 sample(s)" in small[0]


def test_dynamic_batch_and_slim(tiny_run, tmp_path):
    import shutil

    import numpy as np
    import onnx
    import onnxruntime as ort

    run = shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns("export", "bench"))
    static = invoke_json("export", run, "--target", "cpu-fp32")
    dims = onnx.load(static["artifact"]).graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_value == 1  # static batch 1 by default
    r = invoke_json("export", run, "--target", "cpu-fp32", "--dynamic-batch", "--slim")
    graph = onnx.load(r["artifact"]).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic batch
    meta = json.loads((run / "export" / "cpu-fp32" / "export.json").read_text())["graph"]
    assert meta["dynamic_batch"] and meta["slim"] and meta["nodes"] <= meta["nodes_before_slim"]
    assert r["max_abs_diff"] < 1e-4 and r["drop"] == 0.0
    s = ort.InferenceSession(r["artifact"], providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((3, *[d.dim_value for d in dims[1:]]), dtype=np.float32)
    batched = s.run(None, {"input": x})[0]
    single = np.concatenate([s.run(None, {"input": x[i: i + 1]})[0] for i in range(3)])
    assert batched.shape[0] == 3 and np.abs(batched - single).max() < 1e-4


@pytest.mark.parametrize("method", ["percentile", "entropy"])
def test_json_stdout_stays_pure_when_quantisers_print(tiny_run, tmp_path, method):
    import shutil

    run = shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns("export", "bench"))
    r = invoke_json("export", run, "--target", "cpu-int8", "--calib-method", method, "--calib-size", 50)
    meta = json.loads((run / "export" / "cpu-int8" / "export.json").read_text())
    assert meta["quantization"]["calibration_method"] == method and r["drop"] <= 0.1


def test_export_without_the_runs_data_is_one_clear_line(tiny_run, tmp_path):
    import shutil

    run = shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns("export", "bench"))
    manifest = json.loads((run / "edgetune.json").read_text())
    manifest["data"]["root"] = str(tmp_path / "gone")
    (run / "edgetune.json").write_text(json.dumps(manifest))
    res = invoke("export", run, "--target", "cpu-int8")
    assert res.exit_code == 3
    assert res.stderr.strip() == (
        f"edgetune: error: export checks every artefact on the run's validation data, which is missing: data folder "
        f"{tmp_path / 'gone'} does not exist (hint: restore the data set at {tmp_path / 'gone'} (data.root in "
        f"edgetune.json))")


def test_calibration_data_missing_is_typed(tiny_run, tmp_path, monkeypatch):
    import shutil

    from edgetune.errors import CalibrationError, DataError
    from edgetune.export.pipeline import export_run
    from edgetune.tasks.classify import ClassifyTask

    run = shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns("export", "bench"))

    def unreadable(self, *args, **kw):
        raise DataError("train/coat/x.png cannot be read")

    monkeypatch.setattr(ClassifyTask, "calibration_inputs", unreadable)
    with pytest.raises(CalibrationError) as e:
        export_run(run, "openvino-int8", quiet=True)
    assert e.value.message == "calibration data missing: train/coat/x.png cannot be read"
    assert "export a float target (cpu-fp32, openvino-fp32, openvino-fp16)" in e.value.hint
    assert not (run / "export" / "openvino-int8").exists()  # nothing half-made is left


def test_auto_records_the_budget_it_applied(tiny_run, tmp_path):
    """Without --max-drop, auto's one-point default is the gate the candidate passed, and export.json
    says so in both places (it recorded max_drop: null beside auto.max_drop: 0.01)."""
    import shutil

    from edgetune.export.pipeline import Options, export_run

    run = shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns("export", "bench"))
    profile = _dev_profile(tmp_path, 1, "cpu-fp32")
    r = export_run(run, "auto", options=Options(), profile=str(profile), quiet=True, measure=lambda *a: 1.0)
    meta = json.loads((run / "export" / r["target"] / "export.json").read_text())
    assert meta["max_drop"] == meta["auto"]["max_drop"] == 0.01 and meta["pass"] is True


def test_gate_is_the_one_reading_of_max_drop():
    from edgetune.errors import UsageError
    from edgetune.export.gate import Gate, check_max_drop

    g = Gate(0.9, 0.01)
    assert g.drop(0.88) == pytest.approx(0.02) and not g.passes(0.88) and g.passes(0.89) and g.passes(0.95)
    assert g.within(0.01) and not g.within(0.0101)  # exactly the budget passes
    assert Gate(0.9).passes(0.0)  # no --max-drop: recorded, never failed
    # int8 targets and auto get one point by default; float targets record only; 'none' opts out
    assert Gate.for_target(0.9, None, int8=False, auto=True).max_drop == 0.01
    assert Gate.for_target(0.9, None, int8=True) == Gate(0.9, 0.01, "default")
    assert Gate.for_target(0.9, None, int8=False) == Gate(0.9, None, "unset")
    assert Gate.for_target(0.9, "none", int8=True) == Gate(0.9, None, "--max-drop none")
    assert Gate.for_target(0.9, 0.05, int8=True, auto=True) == Gate(0.9, 0.05, "--max-drop")
    with pytest.raises(UsageError, match="--max-drop must be ≥ 0"):
        check_max_drop(-0.1)
    check_max_drop("none")


@pytest.fixture(scope="module")
def outlier_run(tiny_run, tmp_path_factory) -> Path:
    """tiny_run with one stem channel made a constant 1000 that block1 ignores: the float model
    computes exactly what it did, but per-tensor uint8 activations behind the stem get a step of
    ~4 and erase the real features — plain int8 loses far more than a point, and keeping block1's
    conv in float restores it (tests/test_accuracy_aware.py builds the same trap from scratch)."""
    import torch

    run = tmp_path_factory.mktemp("outlier") / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("export", "export-failed"))
    sd = torch.load(run / "checkpoint.pt", weights_only=True)
    sd["model.stem.1.weight"][15], sd["model.stem.1.bias"][15] = 0.0, 1000.0
    sd["model.block1.0.weight"][:, 15] = 0.0
    torch.save(sd, run / "checkpoint.pt")
    return run


def test_int8_gets_a_one_point_budget_by_default(outlier_run):
    fp32 = invoke_json("export", outlier_run, "--target", "cpu-fp32")
    assert abs(fp32["drop"]) == 0 and fp32["metric"] > 0.4  # the planted channel changes nothing in float
    r = invoke_json("export", outlier_run, "--target", "cpu-int8")
    meta = json.loads((outlier_run / "export" / "cpu-int8" / "export.json").read_text())
    assert meta["max_drop"] == 0.01 and meta["max_drop_source"] == "default"
    assert r["pass"] and r["drop"] <= 0.01
    aa = r["accuracy_aware"]  # the search ran because plain int8 missed by far
    assert aa["float_layers"] and aa["plain_drop"] > 0.05 and aa["met"]


def test_max_drop_none_records_the_plain_int8_drop(outlier_run):
    r = invoke_json("export", outlier_run, "--target", "cpu-int8", "--max-drop", "none")
    meta = json.loads((outlier_run / "export" / "cpu-int8" / "export.json").read_text())
    assert meta["max_drop"] is None and meta["max_drop_source"] == "--max-drop none"
    assert r["pass"] and r["drop"] > 0.05 and "accuracy_aware" not in r  # kept as is, the loss on record


def test_auto_refuses_max_drop_none(tiny_run):
    res = invoke("export", tiny_run, "--target", "auto", "--profile", "x86-64-avx512", "--max-drop", "none")
    assert res.exit_code == 2
    assert res.stderr.strip() == ("edgetune: error: --target auto needs a budget to choose within; --max-drop none "
                                  "gives it none (hint: give --max-drop N, or leave it out for the default 0.01)")
