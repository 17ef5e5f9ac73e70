"""The training loop: determinism, resume, options, atomic files, divergence, data parallelism,
result keys, U-quant and bit learning.  Runs use sklearn digits at 8x8 and a width-8 SmallCNN."""

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

import adabit_lite
from adabit_lite import results as results_mod
from adabit_lite import train as train_mod
from adabit_lite.results import atomic_write_json, find_result, result_key
from adabit_lite.train import (OptionError, RunMismatch, TrainConfig, TrainingDiverged,
                               load_or_train, load_trained, main, train)

TESTS = Path(__file__).parent
ROOT = TESTS.parent
SMALL = dict(dataset="digits", data_options="size=8", width=8, epochs=3, device="cpu")


def small(**kw) -> TrainConfig:
    return TrainConfig(**{**SMALL, **kw})


def interrupt_at(epoch, batch, exc=KeyboardInterrupt):
    def hook(e, b, model):
        if (e, b) == (epoch, batch):
            raise exc()
    return hook


def never(e, b, model):
    raise AssertionError("training ran, but it should not have")


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted 3-epoch run: (config, folder, result)."""
    out = tmp_path_factory.mktemp("reference")
    cfg = small()
    return cfg, out, train(cfg, out, progress=False)


def _keys(obj) -> set:
    if isinstance(obj, dict):
        return set(obj) | set().union(*(_keys(v) for v in obj.values()))
    if isinstance(obj, list):
        return set().union(*(_keys(v) for v in obj))
    return set()


# ------------------------------------------------------------------ determinism and resume
def test_same_seed_and_parameters_give_identical_result_files(reference, tmp_path):
    cfg, out, result = reference
    again = train(cfg, tmp_path, progress=False)
    assert (tmp_path / "result.json").read_bytes() == (out / "result.json").read_bytes()
    assert again == result
    assert not {k for k in _keys(result) if any(w in k.lower() for w in ("time", "second",
                                                                        "date", "path"))}
    assert json.loads((out / "timing.json").read_text())["epoch_seconds"][0] > 0
    # the history holds what the chapters plot, once per epoch
    assert [h["epoch"] for h in result["history"]] == [0, 1, 2]
    for h in result["history"]:
        assert {"train_loss", "test_accuracy", "W", "S", "T", "bit_budget", "s_ace_g", "layers",
                "renewals", "renewal_switched_off", "lr"} <= h.keys()
        assert [layer["name"] for layer in h["layers"]] == ["features.1.0", "features.2.0", "fc"]
        assert math.isclose(h["bit_budget"], h["W"] * h["S"] * h["T"])
    assert result["code"] == {"algorithm_version": adabit_lite.ALGORITHM_VERSION,
                              "package_version": adabit_lite.__version__}
    assert result["parameters"]["lr"] == 0.05 and result["parameters"]["min_epoch"] == 1
    assert result["metrics"]["accuracy"] == result["history"][-1]["test_accuracy"] > 80


def test_a_run_interrupted_mid_epoch_resumes_to_the_uninterrupted_result(reference, tmp_path):
    cfg, out, _ = reference
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path, progress=False, on_batch=interrupt_at(1, 9))  # inside epoch 2 of 3
    assert not (tmp_path / "result.json").exists()
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == 1 and len(ckpt["history"]) == 1
    train(cfg, tmp_path, progress=True)  # the same call again resumes (and shows its bars)
    assert (tmp_path / "result.json").read_bytes() == (out / "result.json").read_bytes()
    # once finished, the same parameters are not trained again
    assert train(cfg, tmp_path, progress=False, on_batch=never)["key"] == result_key(cfg)
    # a crash between the last checkpoint and result.json: the rerun only writes the result
    (tmp_path / "result.json").unlink()
    train(cfg, tmp_path, progress=False, on_batch=never)
    assert (tmp_path / "result.json").read_bytes() == (out / "result.json").read_bytes()


def test_other_parameters_never_reuse_a_result_or_a_checkpoint(reference, tmp_path):
    cfg, out, _ = reference
    with pytest.raises(RunMismatch, match="seed"):
        train(dataclasses.replace(cfg, seed=1), out, progress=False, on_batch=never)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path, progress=False, on_batch=interrupt_at(1, 0))
    before = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(RunMismatch, match="lr_bits.*refusing to resume"):
        train(dataclasses.replace(cfg, lr_bits=0.2), tmp_path, progress=False, on_batch=never)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before


# ------------------------------------------------------------------ options
def _one_line(text: str) -> str:
    assert text.endswith("\n") and text.count("\n") == 1, text
    return text


def test_cli_rejects_a_bad_option_with_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "adabit_lite.train", "--out", str(out),
                           "--renewal", "sometimes"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    line = _one_line(proc.stderr)
    assert "--renewal" in line and "none, activation, weight, both" in line
    assert not out.exists()


@pytest.mark.parametrize("args, flag", [
    (["--epochs", "0"], "--epochs"),
    (["--epochs", "three"], "--epochs"),
    (["--init", "4/4/2.5"], "--init"),
    (["--target", "0.5/1/1"], "--target"),
    (["--target", "7/1/1"], "--target"),  # above the bound init + 2
    (["--lr", "fast"], "--lr"),
    (["--lr-bits", "-1"], "--lr-bits"),
    (["--dataset", "imagenet"], "--dataset"),
    (["--optimizer", "lbfgs"], "--optimizer"),
    (["--learn-w", "maybe"], "--learn-w"),
    (["--device", "tpu"], "--device"),
    (["--uquant", "--target", "1.5/1.5/1"], "--target"),
    (["--bogus", "1"], "--bogus"),
    (["--dataset", "digits", "--data-options", "size=3"], "size"),  # caught by data.py
    (["--dataset", "digits", "--data-options", "size=8", "--layer-bits", "nope=2/2/1"],
     "--layer-bits"),  # caught when the model is built
])
def test_every_bad_option_exits_2_with_one_line_naming_it(args, flag, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--out", str(out), "--no-progress", *args]) == 2
    assert flag in _one_line(capsys.readouterr().err)
    assert not out.exists()


def test_config_validation_fills_defaults_and_canonicalises():
    cfg = TrainConfig(optimizer="adam", init="4/4/2", target="1.50/1.5/1.0",
                      data_options="size=8, normalize=true").validated()
    assert (cfg.lr, cfg.lr_bits, cfg.weight_decay) == (2e-3, 0.02, 0.0)
    assert cfg.target == "1.5/1.5/1" and cfg.data_options == "normalize=true,size=8"
    assert result_key(TrainConfig(target="1.5/1.5/1")) == result_key(TrainConfig(target="1.50/1.5/1"))
    with pytest.raises(OptionError, match="'renewal' must be one of"):
        TrainConfig(renewal="always").validated()


# ------------------------------------------------------------------ atomic files
def test_a_crash_while_writing_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "result.json"
    atomic_write_json(path, {"accuracy": 1})

    def crashing_dump(obj, f, **kw):
        f.write('{"accuracy": 2, "hist')  # half a file, then the machine "dies"
        raise OSError("disk full")

    monkeypatch.setattr(results_mod.json, "dump", crashing_dump)
    with pytest.raises(OSError):
        atomic_write_json(path, {"accuracy": 2})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"accuracy": 1}
    ckpt = tmp_path / "checkpoint.pt"
    train_mod._atomic_torch_save({"epoch": 1}, ckpt)

    def crashing_save(obj, f, *a, **kw):
        f.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(train_mod.torch, "save", crashing_save)
    with pytest.raises(OSError):
        train_mod._atomic_torch_save({"epoch": 2}, ckpt)
    monkeypatch.undo()
    assert torch.load(ckpt, weights_only=True) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "result.json"]


# ------------------------------------------------------------------ divergence
def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    def poison(epoch, batch, model):
        if (epoch, batch) == (1, 4):
            with torch.no_grad():
                model.fc.weight.fill_(float("nan"))

    with pytest.raises(TrainingDiverged, match=r"diverged at epoch 2, batch 5.*end of epoch 1"):
        train(small(), tmp_path, progress=False, on_batch=poison)
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    assert not (tmp_path / "result.json").exists()


def test_cli_reports_divergence_in_one_line(tmp_path, capsys):
    code = main(["--out", str(tmp_path / "run"), "--no-progress", *
                 "--dataset digits --data-options size=8 --width 8 --epochs 1 --lr 1e30".split()])
    assert code == 1
    assert "diverged" in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "run" / "result.json").exists()


def test_cli_trains_and_records_its_parameters(tmp_path, capsys):
    out = tmp_path / "run"
    args = "--dataset digits --data-options size=8 --width 8 --epochs 1 --train-limit 200 " \
           "--target 2/2/1 --uquant --lam-T 0 --optimizer adam".split()
    assert main(["--out", str(out), "--no-progress", "--no-checkpoint", *args]) == 0
    assert "accuracy" in capsys.readouterr().out
    result = json.loads((out / "result.json").read_text())
    assert result["parameters"] == small(epochs=1, train_limit=200, optimizer="adam",
                                         lam_T=0, target="2/2/1", device="auto").uquant().parameters()
    assert result["parameters"]["lr"] == 2e-3 and result["metrics"]["wst"] == "2.00/2.00/1.00"
    assert sorted(p.name for p in out.iterdir()) == ["result.json", "timing.json"]


# ------------------------------------------------------------------ data parallel
def test_two_processes_keep_identical_bits_and_steps_only_with_synced_statistics(tmp_path,
                                                                                monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))  # spawned processes import the worker by its name
    import _train_worker

    kw = dict(dataset="digits", data_options="size=8", width=8, init="4/4/1", target="1/1/1",
              lr_bits=1.0, epochs=2, train_limit=500, device="cpu")
    mp.start_processes(_train_worker.run, args=(2, str(tmp_path / "init"), str(tmp_path), kw),
                       nprocs=2, start_method="spawn")
    runs = {name: [json.loads((tmp_path / f"{name}_rank{r}.json").read_text()) for r in (0, 1)]
            for name in ("sync", "nosync")}
    for name, (r0, r1) in runs.items():
        # each rank trained on its own half of every batch
        assert r0["first_batch"]["shape"][0] == r1["first_batch"]["shape"][0] == 32
        assert r0["first_batch"]["checksum"] != r1["first_batch"]["checksum"]
        assert r0["result"]["run"]["world_size"] == 2
    r0, r1 = (r["result"] for r in runs["sync"])
    renewals = sum(c["s_renewals"] + c["w_renewals"]
                   for c in r0["metrics"]["renewals"].values())
    assert renewals >= 1, "the test needs renewal to fire"
    assert r0["metrics"]["W"] < 4 and r0["metrics"]["S"] < 4
    assert r0["history"] == r1["history"]  # bits, steps, counts, metrics: all identical
    assert (tmp_path / "sync" / "result.json").exists()
    # control: without the all-reduce the replicas' spike steps drift apart
    n0, n1 = (r["result"]["metrics"]["layers"] for r in runs["nosync"])
    assert any(a["Vth1"] != b["Vth1"] for a, b in zip(n0, n1))


# ------------------------------------------------------------------ result keys and reuse
def test_a_stored_result_is_found_only_for_equal_parameters_and_version(reference, tmp_path,
                                                                        monkeypatch, capsys):
    cfg, out, result = reference
    store = tmp_path / "store"
    (store / "some-sweep").mkdir(parents=True)
    (store / "some-sweep" / "result.json").write_bytes((out / "result.json").read_bytes())
    assert find_result(store, cfg)["key"] == result["key"] == result_key(cfg)
    table = results_mod.results_frame(results_mod.load_results(store))
    assert len(table) == 1 and table["accuracy"][0] == result["metrics"]["accuracy"]
    assert find_result(store, dataclasses.replace(cfg, device="auto")) is not None  # where, not what
    assert find_result(store, dataclasses.replace(cfg, lr=0.05)) is not None  # the default, spelt out
    for other in (dict(seed=1), dict(lam_s=0.05), dict(target="1.5/1.5/1"),
                  dict(data_options="size=9"), dict(renewal="both"), dict(epochs=4)):
        changed = dataclasses.replace(cfg, **other)
        assert result_key(changed) != result_key(cfg)
        assert find_result(store, changed) is None
    # a reused result says so, and nothing is trained
    assert load_or_train(cfg, store, progress=False)["key"] == result["key"]
    assert "reusing the stored result" in capsys.readouterr().out
    assert sorted(p.name for p in store.iterdir()) == ["some-sweep"]
    # a hand-edited file with the right key but other parameters is no match
    edited = json.loads((out / "result.json").read_text())
    edited["parameters"]["seed"] = 7
    atomic_write_json(store / "some-sweep" / "result.json", edited)
    assert find_result(store, cfg) is None
    atomic_write_json(store / "some-sweep" / "result.json", result)
    monkeypatch.setattr(adabit_lite, "ALGORITHM_VERSION", adabit_lite.ALGORITHM_VERSION + 1)
    assert result_key(cfg) != result["key"]
    assert find_result(store, cfg) is None  # another algorithm version is never reused


# ------------------------------------------------------------------ what is learned
def test_uquant_keeps_every_layer_at_the_target_bits(tmp_path):
    cfg = small(epochs=2, target="2/2/1", lr_bits=1.0, lr_T=1.0).uquant()
    assert (cfg.init, cfg.learn_w, cfg.learn_s, cfg.learn_T, cfg.renewal) == (
        "2/2/1", False, False, False, "none")
    result = train(cfg, tmp_path, progress=False)
    for h in result["history"]:
        assert h["wst"] == "2.00/2.00/1.00"
        assert [(layer["Bw"], layer["Bs"], layer["T"]) for layer in h["layers"]] == [(2, [2], 1)] * 3
        assert all(v == 0 for c in h["renewals"].values() for v in c.values())
    model, loaded = load_trained(tmp_path)
    assert loaded == cfg.validated()
    assert int(model.features[0][0].neuron.T) == 1  # the stem's T is fixed too
    assert not any(p.requires_grad for n, p in model.named_parameters() if "latent" in n)


def test_per_layer_bits_can_be_fixed_from_the_start(tmp_path):
    cfg = small(epochs=1, layer_bits="fc=3/1/2").fixed("2/2/1")
    layers = train(cfg, None, progress=False)["metrics"]["layers"]
    assert [(x["Bw"], x["Bs"], x["T"]) for x in layers] == [(2, [2], 1), (2, [2], 1), (3, [1], 2)]


def test_learned_bits_move_from_init_toward_the_target(reference):
    _, out, result = reference
    w = [h["W"] for h in result["history"]]
    s = [h["S"] for h in result["history"]]
    assert w[-1] < 4 and s[-1] < 4  # init 4/4/2, target 1/1/1
    assert w == sorted(w, reverse=True) and s == sorted(s, reverse=True)
    model, _ = load_trained(out)
    from adabit_lite.loss import bit_stats
    assert bit_stats(model).wst() == result["metrics"]["wst"]


def test_command_line_round_trips_a_config():
    from adabit_lite.train import _parser, command_line, config_from_args

    cfg = TrainConfig(arch="resnet20", dataset="cifar10", target="1.5/1.5/1", epochs=200,
                      renewal="both", learn_T=False, lr_bits=0.2, seed=3)
    cmd = command_line(cfg, "runs/x")
    assert cmd.startswith("python -m adabit_lite.train --out runs/x --arch resnet20")
    args = _parser().parse_args(cmd.split()[3:])
    assert config_from_args(args) == cfg.validated()
    assert "--seed" not in command_line(TrainConfig(), "o")  # defaults are left out


def test_the_allocation_control_fixes_the_learned_per_layer_bits(reference):
    cfg, _, result = reference
    control = cfg.control(result)
    learned = [(x["Bw"], x["Bs"], x["T"]) for x in result["metrics"]["layers"]]
    assert not (control.learn_w or control.learn_s or control.learn_T) and control.renewal == "none"
    layers = train(dataclasses.replace(control, epochs=1), None, progress=False)["metrics"]["layers"]
    assert [(x["Bw"], x["Bs"], x["T"]) for x in layers] == learned


def test_the_full_precision_baseline_bypasses_quantizers_and_neurons():
    cfg = small(epochs=1).full_precision_baseline()
    model = train_mod.build(cfg.validated(), {"num_classes": 10, "in_channels": 1})
    x = torch.rand(4, 1, 8, 8)
    model.eval()
    relu_net = [m for m in model.modules() if hasattr(m, "neuron")]
    assert relu_net and all(m.cfg.full_precision for m in relu_net)
    stem = relu_net[0]
    assert torch.equal(stem(x), torch.nn.functional.conv2d(x, stem.weight, stem.bias,
                                                            padding=stem.padding))


def test_accuracy_drops_are_the_epochs_that_fell_more_than_five_points():
    history = [{"epoch": e, "test_accuracy": a} for e, a in enumerate([50, 80, 74.9, 76, 20, 90])]
    assert train_mod.accuracy_drops(history) == [{"epoch": 2, "from": 80, "to": 74.9},
                                                 {"epoch": 4, "from": 76, "to": 20}]


def test_remedy_options_are_validated_and_recorded(tmp_path):
    with pytest.raises(OptionError, match="hysteresis"):
        small(hysteresis=0.5).validated()
    with pytest.raises(OptionError, match="renewal_limit"):
        small(renewal_limit=-1).validated()
    cfg = small(epochs=2, target="2/2/1", hysteresis=0.25, soft_bit_loss=True, freeze_bits=True,
                renewal_limit=1, min_epoch=0)
    result = train(cfg, tmp_path, progress=False)
    p = result["parameters"]
    assert (p["hysteresis"], p["soft_bit_loss"], p["freeze_bits"], p["renewal_limit"]) == (
        0.25, True, True, 1)
    for h in result["history"]:  # at most one renewal per quantizer and epoch
        assert all(c["s_renewals"] <= h["epoch"] + 1 for c in h["renewals"].values())
    assert result["metrics"]["bits_frozen_at"] == result["metrics"]["renewal_switched_off_at"] | {
        k: e for k, e in result["metrics"]["bits_frozen_at"].items() if k == "weight"}


def test_bn_recalibration_gives_the_plain_average_over_the_training_data():
    cfg = small(epochs=1).validated()
    model = train_mod.build(cfg, {"num_classes": 10, "in_channels": 1})
    x = torch.rand(96, 1, 8, 8)
    model.train()
    model(x[:32])  # initialise the quantizer steps (training mode)
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    inputs = []
    handle = bn.register_forward_pre_hook(lambda m, a: inputs.append(a[0].detach()))
    steps = [q.step.detach().clone() for q in model.modules() if hasattr(q, "renewals")]
    train_mod.recalibrate_bn(model, x, torch.device("cpu"), batch=32)
    handle.remove()
    seen = torch.cat(inputs)  # the BN layer's inputs over the three batches
    assert len(inputs) == 3 and not model.training
    assert torch.allclose(bn.running_mean, seen.mean((0, 2, 3)), atol=1e-5)
    per_batch_var = torch.stack([t.var((0, 2, 3), unbiased=True) for t in inputs]).mean(0)
    assert torch.allclose(bn.running_var, per_batch_var, atol=1e-5)
    assert bn.momentum == 0.1  # restored
    after = [q.step.detach() for q in model.modules() if hasattr(q, "renewals")]
    assert all(torch.equal(a, b) for a, b in zip(steps, after))  # no renewal or re-initialisation


def test_late_options_enter_the_parameters_only_when_set():
    assert "bn_recalibrate" not in small().parameters()
    assert small(bn_recalibrate=True).parameters()["bn_recalibrate"] is True
    assert result_key(small()) != result_key(small(bn_recalibrate=True))


# ------------------------------------------------------------------ bad folders and damaged files
TINY = ["--no-progress", "--dataset", "digits", "--data-options", "size=8", "--width", "8",
        "--epochs", "1", "--train-limit", "200"]


@pytest.mark.parametrize("where", ["under a file", "a file", "under /proc", "empty"])
def test_a_bad_output_folder_is_refused_before_any_work(where, tmp_path, capsys, monkeypatch):
    (tmp_path / "f").write_text("x")
    out = {"under a file": tmp_path / "f" / "run", "a file": tmp_path / "f",
           "under /proc": Path("/proc/adabit-run"), "empty": ""}[where]
    monkeypatch.setattr(train_mod.data_mod, "make_dataset", lambda *a, **k: never(0, 0, None))
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["--out", str(out), *TINY]) == 2
    assert "--out" in _one_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "f").read_text() == "x"


def test_the_output_check_leaves_no_folder_behind(tmp_path):
    out = tmp_path / "a" / "b"
    assert train_mod.check_out_dir(out) == out
    assert not (tmp_path / "a").exists()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished 1-epoch CLI run with its checkpoint kept: (folder, args)."""
    out = tmp_path_factory.mktemp("tiny") / "run"
    assert main(["--out", str(out), *TINY]) == 0
    return out


@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_a_damaged_result_is_rebuilt_from_an_intact_final_checkpoint(damage, tiny_run, tmp_path,
                                                                     capsys):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(tiny_run, out)
    good = (out / "result.json").read_text()
    (out / "result.json").write_text("" if damage == "empty" else good[: len(good) // 2])
    assert main(["--out", str(out), *TINY]) == 0
    assert "rebuilt from the run's final checkpoint" in capsys.readouterr().err
    assert json.loads((out / "result.json").read_text()) == json.loads(good)


@pytest.mark.parametrize("damage", ["result without checkpoint", "empty checkpoint",
                                    "truncated checkpoint", "text checkpoint"])
def test_a_damaged_file_without_a_way_back_is_one_line_naming_it(damage, tiny_run, tmp_path,
                                                                  capsys):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(tiny_run, out)
    ckpt = out / "checkpoint.pt"
    if damage == "result without checkpoint":
        ckpt.unlink()
        (out / "result.json").write_text('{"key": "abc", "param')
        name = out / "result.json"
    else:
        (out / "result.json").unlink()
        data = ckpt.read_bytes()
        ckpt.write_bytes({"empty checkpoint": b"", "truncated checkpoint": data[: len(data) // 2],
                          "text checkpoint": b"not a checkpoint\n"}[damage])
        name = ckpt
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["--out", str(out), *TINY]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(name) in line and "delete it" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files  # nothing touched
    if damage != "result without checkpoint":
        with pytest.raises(train_mod.DamagedFile, match="damaged checkpoint|not a training"):
            load_trained(out)


def test_a_folder_of_another_run_is_refused_with_exit_2(tiny_run, capsys):
    assert main(["--out", str(tiny_run), *TINY, "--seed", "5"]) == 2
    assert "seed" in _one_line(capsys.readouterr().err)


def test_a_run_that_blows_up_while_finite_is_stored_as_failed(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["--out", str(out), *TINY, "--lr", "300", "--no-progress"])
    assert code == 1
    line = _one_line(capsys.readouterr().err)
    assert "failed at the end of epoch 1" in line and "uniform guess" in line
    stored = json.loads((out / "result.json").read_text())
    assert stored["failure"]["epoch"] == 1 and "uniform guess" in stored["failure"]["reason"]
    assert stored["metrics"]["epochs"] == len(stored["history"]) == 1
    # the stored outcome is reused, not trained again, and says again that it failed
    assert main(["--out", str(out), *TINY, "--lr", "300", "--no-progress"]) == 1
    assert "failed at the end of epoch 1" in capsys.readouterr().err
    # a lost result file is rebuilt from the failed run's checkpoint, not resumed
    (out / "result.json").unlink()
    assert main(["--out", str(out), *TINY, "--lr", "300", "--no-progress"]) == 1
    assert json.loads((out / "result.json").read_text()) == stored


def test_the_blow_up_rule():
    assert train_mod.blew_up(2.0, 50.0, 10, final=True) == ""
    assert "uniform guess" in train_mod.blew_up(8.8e18, 10.0, 10, final=False)
    assert "collapsed" in train_mod.blew_up(2.3, 10.5, 10, final=True, best_before=80.0)
    assert train_mod.blew_up(2.3, 10.5, 10, final=False, best_before=80.0) == ""  # may recover
    assert train_mod.blew_up(0.69, 50.0, 2, final=True, best_before=50.0) == ""  # never learned
    assert train_mod.blew_up(2.3, 10.5, 10, final=True, best_before=None) == ""


def test_a_data_parallel_run_never_shares_a_key_with_a_single_process_one():
    cfg = small()
    assert cfg.key_parameters(world_size=1) == cfg.key_parameters()  # stored keys stay valid
    assert "world_size" not in cfg.parameters()
    assert cfg.key_parameters(world_size=2)["world_size"] == 2
    assert result_key(cfg.key_parameters(world_size=2)) != result_key(cfg)


def test_a_result_records_the_machine_it_ran_on(reference):
    machine = reference[2]["run"]["machine"]
    assert set(results_mod.MACHINE_FIELDS) <= set(machine)
    assert machine["threads"] == 1 and machine["world_size"] == 1 and machine["device"] == "cpu"
    assert results_mod.same_machine(machine, results_mod.machine_record("cpu", 1, 1))
    assert not results_mod.same_machine({**machine, "cpu_capability": "AVX2"}, machine)


def test_a_step_at_its_floor_is_named_as_the_cause_of_a_collapse():
    from adabit_lite.layers import quant_layers
    model = train_mod.build(small(), {"in_channels": 1, "image_size": [8, 8], "num_classes": 10})
    assert train_mod.steps_at_floor(model) == []
    stem = next(m for _, m in quant_layers(model, include_stem=True) if m.stem)
    with torch.no_grad():
        stem.wq.step.fill_(-1.0)
    train_mod.clamp_(model)  # after an optimiser step a negative step is held at the floor
    assert [n.split(".")[-1] for n in train_mod.steps_at_floor(model)] == ["wq"]
    line = train_mod.failure_line({"failure": {"epoch": 6, "reason": "the network collapsed",
                                               "steps_at_floor": ["stem.0.wq"]}})
    assert "steps at their floor" in line and "stem.0.wq" in line


def test_reflected_steps_keep_a_negative_step_alive():
    from adabit_lite.layers import quant_layers
    model = train_mod.build(small(step_clamp="reflect"),
                            {"in_channels": 1, "image_size": [8, 8], "num_classes": 10})
    stem = next(m for _, m in quant_layers(model, include_stem=True) if m.stem)
    with torch.no_grad():
        stem.wq.step.fill_(-0.02)
    train_mod.reflect_steps_(model)
    train_mod.clamp_(model)
    assert stem.wq.step.item() == pytest.approx(0.02) and train_mod.steps_at_floor(model) == []
    w = torch.randn(16, 1, 3, 3)
    # a signed weight quantizer gives the same values with s and -s: reflecting changes nothing
    stem.wq.train(False)
    q_pos = stem.wq(w)
    with torch.no_grad():
        stem.wq.step.neg_()
    assert torch.equal(stem.wq(w), q_pos)


def test_every_config_field_declares_its_check():
    """A field's range is declared with it (``_opt(default, help, check...)``); only the fields
    whose values are parsed are checked by hand in ``validated()``.  A new field without either
    fails here."""
    unchecked = {f.name for f in dataclasses.fields(TrainConfig) if not f.metadata["check"]}
    assert unchecked == {"data_options", "init", "target", "layer_bits", "device"}
    for f in dataclasses.fields(TrainConfig):
        if f.metadata["check"]:
            assert hasattr(train_mod._Checker, f.metadata["check"][0]), f.name
