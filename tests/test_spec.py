import pytest

from frugal.budget.spec import BudgetSpec
from frugal.core.errors import ConfigError


def test_every_key_parses_to_si_units():
    spec = BudgetSpec.from_config(
        {
            "energy": "2kJ",
            "carbon": "0.5kg",
            "compute": "3GFLOP",
            "data": "20k",
            "time": "2min",
            "memory": "512MiB",
            "params": "50k",
            "on_exceed": "warn",
            "plan": "refuse",
        }
    )
    assert spec.limits() == {
        "energy_j": 2000.0,
        "carbon_g": 500.0,
        "compute_flop": 3e9,
        "data_samples": 20000.0,
        "time_s": 120.0,
        "memory_bytes": 512 * 2**20,
        "params": 50000.0,
    }
    assert (spec.on_exceed, spec.plan) == ("warn", "refuse")


def test_null_means_unlimited():
    spec = BudgetSpec.from_config({"energy": None, "compute": None})
    assert spec.enforced() == {}
    assert not spec.is_hard
    assert set(spec.limits()) == {
        "energy_j",
        "carbon_g",
        "compute_flop",
        "data_samples",
        "time_s",
        "memory_bytes",
        "params",
    }


@pytest.mark.parametrize(
    ("cfg", "fragment"),
    [
        ({"energy": "-5J"}, "budget.energy='-5J'"),
        ({"energy": "5GB"}, "budget.energy='5GB': 'GB' is a unit of memory"),
        ({"energ": "5J"}, "budget.energ: unknown budget key"),
        ({"on_exceed": "explode"}, "budget.on_exceed='explode': expected one of stop, warn, error"),
        ({"plan": "maybe"}, "budget.plan='maybe': expected one of fit, refuse, off"),
        ({"data": "2.5"}, "budget.data='2.5': must be a whole number"),
        ({"params": 0}, "budget.params=0"),
        ({"estimate_margin": 1.5}, "budget.estimate_margin=1.5"),
        ({"warmup_steps": 0}, "budget.warmup_steps=0"),
    ],
)
def test_bad_input_is_one_line_naming_key_and_value(cfg, fragment):
    with pytest.raises(ConfigError) as err:
        BudgetSpec.from_config(cfg)
    message = str(err.value)
    assert fragment in message
    assert "\n" not in message
