from dataclasses import dataclass
from typing import Literal, Optional

import pytest

from genlab.config import (config_hash, describe, flatten, from_dict, override, param, parse_assignments, section,
                           to_dict)
from genlab.errors import ConfigError


@dataclass
class Inner:
    lr: float = param(0.1, "learning rate", gt=0)
    steps: int = param(10, "steps", ge=1)
    kind: Literal["a", "b"] = param("a", "which")
    widths: tuple[int, ...] = param((8, 16), "widths", ge=1)
    label: Optional[int] = param(None, "a label or none")

    def check(self):
        if self.kind == "b" and self.steps < 5:
            raise ConfigError("kind b needs at least 5 steps")


@dataclass
class Outer:
    seed: int = param(0, "seed")
    flag: bool = param(False, "flag")
    inner: Inner = section(Inner)


def test_override_parses_strings_by_field_type():
    cfg = override(Outer(), parse_assignments(["inner.lr=1e-3", "inner.steps=20", "flag=yes", "inner.kind=b",
                                               "inner.widths=4,5", "inner.label=3", "seed=7"]))
    assert cfg.inner.lr == 1e-3 and cfg.inner.steps == 20 and cfg.flag is True and cfg.inner.kind == "b"
    assert cfg.inner.widths == (4, 5) and cfg.inner.label == 3 and cfg.seed == 7
    assert override(cfg, {"inner.label": "none"}).inner.label is None


def test_unknown_key_names_it_and_suggests():
    with pytest.raises(ConfigError, match="unknown config key 'inner.lrr'; allowed keys under 'inner': lr") as err:
        override(Outer(), {"inner.lrr": "1"})
    assert "did you mean 'lr'" in err.value.hint


def test_wrong_type_names_key_and_type():
    with pytest.raises(ConfigError, match="'inner.steps' expects a int, got 'ten'"):
        override(Outer(), {"inner.steps": "ten"})
    with pytest.raises(ConfigError, match="'flag' expects a bool"):
        override(Outer(), {"flag": "maybe"})


def test_literal_lists_allowed_values():
    with pytest.raises(ConfigError, match="'inner.kind' must be one of 'a', 'b'; got 'c'"):
        override(Outer(), {"inner.kind": "c"})


def test_bounds_are_enforced():
    with pytest.raises(ConfigError, match="'inner.lr' must be > 0; got -1.0"):
        override(Outer(), {"inner.lr": "-1"})
    with pytest.raises(ConfigError, match="'inner.steps' must be >= 1; got 0"):
        override(Outer(), {"inner.steps": 0})
    with pytest.raises(ConfigError, match="'inner.widths' must be >= 1"):
        override(Outer(), {"inner.widths": "4,0"})


def test_cross_field_check_runs():
    with pytest.raises(ConfigError, match="kind b needs at least 5 steps"):
        override(Outer(), {"inner.kind": "b", "inner.steps": 2})


def test_section_and_value_confusions():
    with pytest.raises(ConfigError, match="'inner' is a section"):
        override(Outer(), {"inner": "3"})
    with pytest.raises(ConfigError, match="'seed' is a value, not a section"):
        override(Outer(), {"seed.x": "3"})
    with pytest.raises(ConfigError, match="--set expects KEY=VALUE"):
        parse_assignments(["novalue"])


def test_dict_round_trip_is_strict_and_hash_stable():
    cfg = override(Outer(), {"inner.lr": 0.5})
    data = to_dict(cfg)
    assert from_dict(Outer, data) == cfg
    assert config_hash(data) == config_hash(dict(reversed(list(data.items()))))
    assert config_hash(data) != config_hash(to_dict(Outer()))
    with pytest.raises(ConfigError, match="unknown config key 'inner.extra'"):
        from_dict(Outer, {"inner": {"extra": 1}})


def test_describe_lists_every_leaf_with_help():
    rows = describe(Outer)
    assert [r[0] for r in rows] == list(flatten(to_dict(Outer())))
    assert ("inner.lr", 0.1, "learning rate") in rows
