"""The declarative settings table: every setting's type and range check names the argument and the fix."""

import copy
import json
import math
import pickle
import re

import numpy as np
import pytest
import torch

from muzero_agents.settings import (
    GROUPS,
    SETTINGS,
    SettingsGroup,
    check_cross_settings,
    check_group_value,
    check_policy_kwargs,
    check_setting,
    default_temperature,
    resolve_group,
)

NAN, INF = math.nan, math.inf

# (setting, bad value, error, words the message must hold besides the name and the value)
TOP_LEVEL_REFUSALS = [
    ("learning_rate", -1e-3, ValueError, ">= 0"),
    ("learning_rate", NAN, ValueError, "finite"),
    ("learning_rate", INF, ValueError, "finite"),
    ("learning_rate", "5", TypeError, "schedule"),
    ("buffer_size", 2.5, TypeError, "an int >= 1"),
    ("buffer_size", INF, ValueError, "an int >= 1"),
    ("buffer_size", 0, ValueError, "an int >= 1"),
    ("buffer_size", True, TypeError, "an int >= 1"),
    ("batch_size", 0, ValueError, "an int >= 1"),
    ("num_simulations", 0, ValueError, "an int >= 1"),
    ("unroll_steps", -3, ValueError, "an int >= 1"),
    ("td_steps", 2.5, TypeError, "an int >= 1"),
    ("td_steps", INF, ValueError, "an int >= 1"),
    ("learning_starts", -1, ValueError, "an int >= 0"),
    ("td_lambda", 1.5, ValueError, "in [0, 1]"),
    ("td_lambda", NAN, ValueError, "in [0, 1]"),
    ("discount", 0.0, ValueError, "in (0, 1]"),
    ("discount", 1.01, ValueError, "in (0, 1]"),
    ("search", "alphazero", ValueError, "'muzero', 'gumbel'"),
    ("search", 1, TypeError, "'muzero', 'gumbel'"),
    ("replay_ratio", INF, ValueError, "> 0"),
    ("replay_ratio", 0, ValueError, "> 0"),
    ("value_loss_coef", -1.0, ValueError, ">= 0"),
    ("value_loss_coef", NAN, ValueError, ">= 0"),
    ("max_grad_norm", -1.0, ValueError, "reverse the gradient"),
    ("max_grad_norm", 0.0, ValueError, "> 0"),
    ("max_grad_norm", INF, ValueError, "finite"),
    ("background_training", "yes", TypeError, "True or False"),
    ("background_training", 1, TypeError, "True or False"),
    ("verbose", -1, ValueError, "an int >= 0"),
    ("seed", -1, ValueError, "None or an int"),
    ("seed", 2.5, TypeError, "None or an int"),
    ("stats_window_size", 0, ValueError, "an int >= 1"),
    ("tensorboard_log", 5, TypeError, "folder path"),
    ("device", "gpu0", ValueError, "torch device name"),
    ("search_kwargs", [1, 2], TypeError, "None or a dict"),
]


@pytest.mark.parametrize(("name", "value", "error", "words"), TOP_LEVEL_REFUSALS)
def test_top_level_setting_refusal_names_argument_value_and_range(name, value, error, words):
    with pytest.raises(error, match=re.escape(name)) as raised:
        check_setting(name, value)
    message = str(raised.value)
    assert repr(value) in message and words in message


# (group, key, bad value, error, words)
GROUP_REFUSALS = [
    ("search_kwargs", "pb_c_init", 0.0, ValueError, "> 0"),
    ("search_kwargs", "pb_c_init", NAN, ValueError, "finite"),
    ("search_kwargs", "pb_c_base", NAN, ValueError, "finite"),
    ("search_kwargs", "pb_c_base", INF, ValueError, "finite"),
    ("search_kwargs", "pb_c_base", -5.0, ValueError, "> 0"),
    ("search_kwargs", "dirichlet_alpha", 0.0, ValueError, "> 0"),
    ("search_kwargs", "dirichlet_fraction", 1.5, ValueError, "in [0, 1]"),
    ("search_kwargs", "max_considered_actions", 0, ValueError, "an int >= 1"),
    ("replay_buffer_kwargs", "priority_alpha", -1.0, ValueError, ">= 0"),
    ("replay_buffer_kwargs", "priority_alpha", INF, ValueError, "finite"),
    ("replay_buffer_kwargs", "priority_beta", 2.0, ValueError, "in [0, 1]"),
    ("reanalyze_kwargs", "fraction", -0.5, ValueError, "in [0, 1]"),
    ("reanalyze_kwargs", "search", "yes", TypeError, "True or False"),
    ("self_play_kwargs", "temperature", "5", TypeError, "schedule"),
    ("self_play_kwargs", "temperature", -1.0, ValueError, ">= 0"),
    ("self_play_kwargs", "temperature", NAN, ValueError, "finite"),
    ("self_play_kwargs", "sampling_moves", -1, ValueError, "None or an int >= 0"),
    ("self_play_kwargs", "random_opening_moves", -1, ValueError, "an int >= 0"),
    ("self_play_kwargs", "random_opening_moves", 1.5, TypeError, "an int >= 0"),
    ("learner_kwargs", "reward_loss_coef", -1.0, ValueError, ">= 0"),
    ("learner_kwargs", "consistency_loss_coef", NAN, ValueError, ">= 0"),
    ("learner_kwargs", "weight_decay", INF, ValueError, "finite"),
    ("learner_kwargs", "mixed_precision", "False", TypeError, "True or False"),
    ("learner_kwargs", "augment_symmetries", "no", TypeError, "True or False"),
    ("play_kwargs", "num_simulations", 0, ValueError, "None or an int >= 1"),
    ("play_kwargs", "num_simulations", 2.5, TypeError, "None or an int >= 1"),
    ("play_kwargs", "ema_decay", 1.0, ValueError, "in [0, 1)"),
    ("play_kwargs", "ema_decay", -0.1, ValueError, "in [0, 1)"),
    ("policy_kwargs", "support_size", 2.5, TypeError, "an int >= 1"),
    ("policy_kwargs", "support_size", 0, ValueError, "an int >= 1"),
    ("policy_kwargs", "channels_last", "yes", TypeError, "True or False"),
]


@pytest.mark.parametrize(("group", "key", "value", "error", "words"), GROUP_REFUSALS)
def test_group_refusal_names_group_key_value_and_range(group, key, value, error, words):
    label = f'{group}["{key}"]'
    with pytest.raises(error, match=re.escape(label)) as raised:
        resolve_group(group, {key: value})
    message = str(raised.value)
    assert repr(value) in message and words in message
    assert "learning_rate" not in message  # a bad temperature is not blamed on the learning rate


def test_every_default_passes_its_own_check():
    for name, setting in SETTINGS.items():
        check_setting(name, setting.default)
    for group, table in GROUPS.items():
        for key, setting in table.items():
            check_group_value(group, key, setting.default)


def test_values_are_normalised():
    assert type(check_setting("buffer_size", np.int64(7))) is int
    assert check_setting("buffer_size", 1e5) == 100_000 and type(check_setting("buffer_size", 1e5)) is int
    assert type(check_setting("discount", np.float32(0.5))) is float
    assert type(check_setting("td_lambda", 1)) is float
    assert check_setting("background_training", np.bool_(True)) is True
    assert check_setting("seed", None) is None and check_setting("seed", np.int32(3)) == 3
    assert check_setting("device", torch.device("cpu")) == torch.device("cpu")
    assert check_setting("discount", 1.0) == 1.0
    assert resolve_group("play_kwargs", {"ema_decay": 0.0})["ema_decay"] == 0.0


def test_schedules_are_accepted_and_checked():
    schedule = lambda progress: 1e-3 * progress  # ends at 0: allowed
    assert check_setting("learning_rate", schedule) is schedule
    with pytest.raises(ValueError, match=r"learning_rate's schedule must return a finite number"):
        check_setting("learning_rate", lambda progress: -1.0)
    assert check_setting("learning_rate", 0.0) == 0.0  # frozen weights (RL Zoo's enjoy loads so)
    with pytest.raises(ValueError, match=r'self_play_kwargs\["temperature"\]\'s schedule.*nan'):
        resolve_group("self_play_kwargs", {"temperature": lambda progress: math.nan})
    assert resolve_group("self_play_kwargs", None)["temperature"] is default_temperature


def test_resolve_group_fills_defaults_and_lists_known_keys_for_unknown_ones():
    resolved = resolve_group("search_kwargs", {"pb_c_init": 2})
    assert resolved == {
        "pb_c_init": 2.0,
        "pb_c_base": 19652.0,
        "dirichlet_alpha": 0.25,
        "dirichlet_fraction": 0.25,
        "max_considered_actions": 16,
    }
    with pytest.raises(
        ValueError, match=r"search_kwargs got unknown key\(s\) \['pb_c'\]; its keys are 'pb_c_init'"
    ):
        resolve_group("search_kwargs", {"pb_c": 1.0})
    with pytest.raises(TypeError, match=r"learner_kwargs must be None or a dict, got 3"):
        resolve_group("learner_kwargs", 3)
    with pytest.raises(KeyError, match="not a settings group"):
        resolve_group("nonexistent_kwargs", None)


def test_unknown_top_level_setting_is_refused():
    with pytest.raises(KeyError, match="'support_size' is not a MuZero setting"):
        check_setting("support_size", 20)


def test_cross_rules():
    with pytest.raises(ValueError, match=r"learning_starts \(500\) must not exceed buffer_size \(100\)"):
        check_cross_settings({"learning_starts": 500, "buffer_size": 100})
    consistency = {"consistency_loss_coef": 1.0}
    with pytest.raises(
        ValueError, match=r"batch_size must be >= 2 when learner_kwargs\[\"consistency_loss_coef\"\]"
    ):
        check_cross_settings({"batch_size": 1, "learner_kwargs": consistency})
    check_cross_settings({"batch_size": 2, "learner_kwargs": consistency})
    check_cross_settings({"batch_size": 1})  # consistency loss off by default
    check_cross_settings({})


def test_settings_group_checks_values_set_after_construction():
    play = check_setting("play_kwargs", {"num_simulations": 10})
    assert isinstance(play, SettingsGroup) and play == {"num_simulations": 10, "ema_decay": None}
    play["num_simulations"] = np.int64(100)
    assert play["num_simulations"] == 100 and type(play["num_simulations"]) is int
    with pytest.raises(
        ValueError, match=r'play_kwargs\["num_simulations"\] must be None or an int >= 1, got 0'
    ):
        play["num_simulations"] = 0
    with pytest.raises(
        ValueError, match=r"play_kwargs\[\"simulations\"\] is not a setting; play_kwargs takes"
    ):
        play["simulations"] = 5
    with pytest.raises(TypeError, match=r'play_kwargs\["ema_decay"\]'):
        play.update(ema_decay="0.9")
    with pytest.raises(TypeError, match="keeps all its keys"):
        del play["ema_decay"]
    assert play["num_simulations"] == 100  # the refused values changed nothing


def test_settings_group_saves_as_a_plain_dict_and_copies_as_itself():
    group = check_setting("learner_kwargs", {"weight_decay": 0.0})
    restored = pickle.loads(pickle.dumps(group))
    assert type(restored) is dict and restored == group
    assert json.loads(json.dumps(group)) == dict(group)
    assert isinstance(copy.deepcopy(group), SettingsGroup) and isinstance(copy.copy(group), SettingsGroup)


def test_policy_kwargs_check():
    assert check_policy_kwargs(None) == {}
    assert check_policy_kwargs({"support_size": np.int64(10)}) == {"support_size": 10}
    with pytest.raises(
        ValueError, match=r"policy_kwargs got unknown key\(s\) \['hidden_dim'\]; its keys are 'support_size'"
    ):
        check_policy_kwargs({"hidden_dim": 64})
    with pytest.raises(TypeError, match=r'policy_kwargs\["network_kwargs"\] must be None or a dict'):
        check_policy_kwargs({"network_kwargs": [64, 64]})
    with pytest.raises(ValueError, match=r'policy_kwargs\["channels_last"\] only applies to CnnPolicy'):
        check_policy_kwargs({"channels_last": True}, image_policy=False)
    assert check_setting("policy_kwargs", {"support_size": 5}) == {"support_size": 5}


def test_settings_group_in_place_merges_are_checked_too():
    search = check_setting("search_kwargs", None)
    with pytest.raises(ValueError, match=r'search_kwargs\["pb_c_base"\] must be a finite float > 0, got nan'):
        search |= {"pb_c_base": math.nan}
    with pytest.raises(
        ValueError, match=r"search_kwargs\[\"pb_c\"\] is not a setting; search_kwargs takes 'pb_c_init'"
    ):
        search.setdefault("pb_c", 1.0)
    search |= {"pb_c_init": 2}
    assert search["pb_c_init"] == 2.0 and isinstance(search, SettingsGroup)
