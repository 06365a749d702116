"""Checked loads: damaged files say "truncated or corrupt" and name themselves, pickles may only
name what a replay buffer holds (nothing else runs), model zips are checked before SB3 opens them."""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from muzero_agents.files import (
    UntrustedPickleError,
    check_model_zip,
    load_pickle_checked,
    save_pickle_atomically,
    saved_policy_class,
)
from muzero_agents.replay import TrajectoryReplay

FIXTURE = Path(__file__).parent / "data" / "cartpole-mlp-v0.1.0.zip"


class _RunsOnLoad:
    """Pickles into a call of ``function(*arguments)``: what a malicious file does."""

    def __init__(self, function, *arguments) -> None:
        self.function, self.arguments = function, arguments

    def __reduce__(self):
        return self.function, self.arguments


def _pickle_file(folder, name: str, obj) -> Path:
    path = folder / name
    path.write_bytes(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    return path


def _replay(steps: int = 12, seed: int = 0) -> TrajectoryReplay:
    """A replay with finished, truncated and running episodes, masks and random moves."""
    replay = TrajectoryReplay(
        capacity=64, n_envs=2, observation_shape=(4,), observation_dtype=np.float32, action_dim=3,
        unroll_steps=3, td_steps=5, seed=seed,
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    for t in range(steps):
        done, terminated = np.array([t % 5 == 4, t % 7 == 6]), np.array([t % 5 == 4, False])
        finals = {1: rng.normal(size=4).astype(np.float32)} if done[1] else None
        replay.add(
            rng.normal(size=(2, 4)).astype(np.float32), rng.integers(0, 3, size=2), np.ones(2),
            rng.normal(size=2), np.full((2, 3), 1 / 3), done, terminated, final_observations=finals,
            legal_masks=np.ones((2, 3), bool), random_moves=np.array([t == 1, False]),
        )  # fmt: skip
    return replay


# ------------------------------------------------------------------ pickles
def test_plain_data_round_trips_and_pkl_is_appended_when_missing(tmp_path):
    obj = {
        "array": np.arange(6, dtype=np.float16).reshape(2, 3), "scalar": np.float32(2.5),
        "strided": np.arange(10)[::2], "containers": [(1, 2), {3}, frozenset({4}), slice(1, 5), 2j],
        "rng": np.random.default_rng(3), "legacy_rng": np.random.RandomState(4), "bytes": b"\x00",
    }  # fmt: skip
    save_pickle_atomically(tmp_path / "data", obj)
    loaded = load_pickle_checked(tmp_path / "data", dict, "a test dict")
    assert loaded["array"].dtype == np.float16 and np.array_equal(loaded["array"], obj["array"])
    assert np.array_equal(loaded["strided"], [0, 2, 4, 6, 8]) and loaded["containers"] == obj["containers"]
    assert loaded["rng"].random() == np.random.default_rng(3).random()
    assert loaded["legacy_rng"].rand() == np.random.RandomState(4).rand()
    with open(tmp_path / "data.pkl", "rb") as file:
        assert load_pickle_checked(file, dict, "a test dict")["scalar"] == 2.5


def test_a_missing_file_names_both_candidates(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_pickle_checked(tmp_path / "buffer", dict, "a replay buffer")
    assert str(tmp_path / "buffer") in str(error.value) and str(tmp_path / "buffer.pkl") in str(error.value)


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_a_truncated_pickle_is_named_truncated_or_corrupt(tmp_path, keep):
    raw = pickle.dumps({"obs": np.zeros(5000, np.float32), "n": 3}, protocol=pickle.HIGHEST_PROTOCOL)
    path = tmp_path / "buffer.pkl"
    path.write_bytes(raw[: int(len(raw) * keep)])
    with pytest.raises(ValueError, match="truncated or corrupt") as error:
        load_pickle_checked(path, dict, "a replay buffer")
    assert str(path) in str(error.value)


@pytest.mark.parametrize("seed", range(4))
def test_garbage_is_named_truncated_or_corrupt(tmp_path, seed):
    path = tmp_path / "buffer.pkl"
    path.write_bytes(np.random.default_rng(seed).bytes(4096))
    with pytest.raises(ValueError, match=r"buffer\.pkl is truncated or corrupt"):
        load_pickle_checked(path, dict, "a replay buffer")


def test_a_damaged_length_that_asks_for_more_memory_than_there_is_is_named_corrupt(tmp_path):
    path = tmp_path / "buffer.pkl"  # protocol 5, then bytes whose length field claims 4 EiB
    path.write_bytes(b"\x80\x05\x8e" + (2**62).to_bytes(8, "little") + b"xx")
    with pytest.raises(ValueError, match=r"buffer\.pkl is truncated or corrupt, or larger than"):
        load_pickle_checked(path, dict, "a replay buffer")


def test_another_type_is_refused_naming_what_the_file_holds(tmp_path):
    path = _pickle_file(tmp_path, "buffer.pkl", [1, 2, 3])
    with pytest.raises(ValueError, match=r"buffer\.pkl holds a builtins\.list, not a MuZero replay buffer"):
        load_pickle_checked(path, TrajectoryReplay, "a MuZero replay buffer")


def test_a_pickle_that_would_run_a_shell_command_is_refused_before_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = _pickle_file(tmp_path, "buffer.pkl", _RunsOnLoad(os.system, f"touch {marker}"))
    with pytest.raises(UntrustedPickleError) as error:
        load_pickle_checked(path, TrajectoryReplay, "a MuZero replay buffer")
    message = str(error.value)
    assert str(path) in message and ".system" in message and "trusted sources" in message
    assert isinstance(error.value, ValueError) and "truncated" not in message
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        _RunsOnLoad(subprocess.call, ["true"]),
        _RunsOnLoad(eval, "1 + 1"),
        _RunsOnLoad(getattr, 1, "real"),
        _RunsOnLoad(shutil.rmtree, "/nonexistent-folder"),
        _RunsOnLoad(save_pickle_atomically, "/nonexistent-folder/x.pkl", 1),  # a muzero_agents function
    ],
    ids=["subprocess", "eval", "getattr", "shutil", "package-function"],
)
def test_other_globals_are_refused_naming_them(tmp_path, payload):
    path = _pickle_file(tmp_path, "buffer.pkl", payload)
    expected = f"{payload.function.__module__}.{payload.function.__qualname__}"
    with pytest.raises(UntrustedPickleError, match="trusted sources") as error:
        load_pickle_checked(path, object, "a MuZero replay buffer")
    assert expected in str(error.value) and str(path) in str(error.value)


def test_a_dotted_name_cannot_reach_a_function_through_a_package_module(tmp_path):
    # protocol 4 resolves dotted names: muzero_agents.files + "os.system" would be os.system
    raw = b"\x80\x04\x8c\x13muzero_agents.files\x8c\tos.system\x93\x8c\x04true\x85R."
    path = tmp_path / "buffer.pkl"
    path.write_bytes(raw)
    with pytest.raises(UntrustedPickleError, match=r"muzero_agents\.files\.os\.system"):
        load_pickle_checked(path, object, "a MuZero replay buffer")


def test_a_class_this_version_lacks_is_named_as_saved_by_another_version(tmp_path):
    path = tmp_path / "buffer.pkl"
    path.write_bytes(b"\x80\x04\x8c\x14muzero_agents.replay\x8c\x0bNoSuchClass\x93)\x81.")
    with pytest.raises(ValueError, match=r"NoSuchClass, which this version of muzero-agents does not define"):
        load_pickle_checked(path, TrajectoryReplay, "a MuZero replay buffer")


def test_a_replay_buffer_round_trips_through_the_checked_load(tmp_path):
    replay = _replay()
    path = save_pickle_atomically(tmp_path / "replay", replay)
    loaded = load_pickle_checked(path, TrajectoryReplay, "a MuZero replay buffer")
    assert isinstance(loaded, TrajectoryReplay) and loaded.num_episodes == replay.num_episodes
    for name, value in vars(replay).items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(getattr(loaded, name), value), name
    # the generator's state came back too: both draw the same batch
    assert np.array_equal(replay.rng.random(4), loaded.rng.random(4))


# ------------------------------------------------------------------ model zips
def test_a_complete_model_zip_passes_and_zip_is_appended_when_missing(tmp_path):
    shutil.copy(FIXTURE, tmp_path / "model.zip")
    assert check_model_zip(tmp_path / "model") == tmp_path / "model.zip"
    assert check_model_zip(str(tmp_path / "model.zip")) == tmp_path / "model.zip"
    with open(FIXTURE, "rb") as file:
        file.read(10)
        assert check_model_zip(file) is file and file.tell() == 10  # rewound to where it was


def test_a_missing_model_names_both_candidates(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        check_model_zip(tmp_path / "model")
    assert str(tmp_path / "model") in str(error.value) and str(tmp_path / "model.zip") in str(error.value)


@pytest.mark.parametrize("keep", [0, 0.3, 0.7, 0.99])
def test_a_truncated_model_zip_is_named_truncated_or_corrupt(tmp_path, keep):
    raw = FIXTURE.read_bytes()
    path = tmp_path / "model.zip"
    path.write_bytes(raw[: int(len(raw) * keep)])
    with pytest.raises(ValueError, match="truncated or corrupt") as error:
        check_model_zip(path)
    assert str(path) in str(error.value)


def test_a_damaged_member_or_missing_data_is_named_truncated_or_corrupt(tmp_path):
    raw = bytearray(FIXTURE.read_bytes())
    with zipfile.ZipFile(FIXTURE) as archive:
        info = archive.getinfo("policy.pth")
    middle = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    raw[middle] ^= 0xFF  # one flipped byte inside the weights
    (tmp_path / "flipped.zip").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"flipped\.zip is truncated or corrupt.*policy\.pth"):
        check_model_zip(tmp_path / "flipped.zip")
    with zipfile.ZipFile(tmp_path / "no-data.zip", "w") as archive:
        archive.writestr("policy.pth", b"weights")
    with pytest.raises(ValueError, match=r"no-data\.zip is truncated or corrupt.*\"data\""):
        check_model_zip(tmp_path / "no-data.zip")
    with zipfile.ZipFile(tmp_path / "bad-json.zip", "w") as archive:
        archive.writestr("data", b"{not json")
    with pytest.raises(ValueError, match=r"bad-json\.zip is truncated or corrupt"):
        check_model_zip(tmp_path / "bad-json.zip")


def _zip_with_policy_class(path: Path, serialized: bytes) -> Path:
    entry = {":type:": "<class 'abc.ABCMeta'>", ":serialized:": base64.b64encode(serialized).decode()}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("data", json.dumps({"policy_class": entry}))
    return path


def test_the_policy_class_is_read_without_unpickling(tmp_path):
    from muzero_agents.policies import MuZeroPolicy

    policy = saved_policy_class(FIXTURE)
    assert isinstance(policy, type) and issubclass(policy, MuZeroPolicy)
    ppo = _zip_with_policy_class(tmp_path / "ppo.zip", pickle.dumps(io.BytesIO, protocol=5))
    assert saved_policy_class(ppo) is io.BytesIO  # an imported module's class: the caller refuses it
    never_imported = pickle.dumps(MuZeroPolicy, protocol=5).replace(
        b"muzero_agents.policies", b"not_imported_module_xy"
    )
    assert saved_policy_class(_zip_with_policy_class(tmp_path / "x.zip", never_imported)) == (
        "not_imported_module_xy.MuZeroPolicy"
    )
    marker = tmp_path / "pwned"
    by_value = pickle.dumps(_RunsOnLoad(os.system, f"touch {marker}"), protocol=5)
    assert "stored by value" in saved_policy_class(_zip_with_policy_class(tmp_path / "v.zip", by_value))
    assert not marker.exists()
