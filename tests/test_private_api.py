"""Every private TRL and transformers name dgpo touches still exists as read (dgpo.integrations.private_api).

The verl names are checked in .venv-verl by tests_verl/test_private_api.py.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from dgpo.integrations.private_api import TRANSFORMERS, TRL, Engine, PrivateName

ENTRIES = [(engine, entry) for engine in (TRL, TRANSFORMERS) for entry in engine.names]


@pytest.mark.parametrize(("engine", "entry"), ENTRIES, ids=[".".join(e.dotted.split(".")[-2:]) for _, e in ENTRIES])
def test_every_name_is_where_it_was_read(engine: Engine, entry: PrivateName):
    problems = engine.problems(entry)
    assert not problems, "\n".join(problems)


def test_the_copied_multimodal_keys_are_trls():
    """DGPOTrainer passes on exactly the multimodal keywords of TRL's log-prob helper (copied, not imported)."""
    from dgpo.integrations.trl import _MULTIMODAL_KEYS

    (helper,) = [e for e in TRL.names if e.dotted.endswith("._get_per_token_logps_and_entropies")]
    multimodal = helper.parameters[helper.parameters.index("compute_aux_loss") + 1 :]
    assert multimodal == _MULTIMODAL_KEYS, (
        f"re-check _MULTIMODAL_KEYS after upgrading trl (read from {TRL.version}): TRL's are {multimodal}"
    )


def test_a_moved_or_changed_name_fails_with_the_recheck_line():
    """The checks can fail: a missing module, a missing attribute, new parameters, a missing assignment, an edit."""
    engine = Engine("trl", "1.16.0", ())
    helper = "trl.trainer.grpo_trainer.GRPOTrainer._calculate_rewards"
    cases = {
        "no_such_engine.module.thing": "ModuleNotFoundError",
        "trl.no_such_module.thing": "AttributeError",
        "trl.trainer.grpo_trainer.GRPOTrainer._no_such_method": "AttributeError",
    }
    for dotted, error in cases.items():
        (line,) = engine.problems(PrivateName(dotted, "test"))
        assert line.startswith(f"re-check {dotted} after upgrading trl (read from 1.16.0): {error}"), line
    (line,) = engine.problems(PrivateName(helper, "test", parameters=("self", "inputs")))
    assert line.startswith(f"re-check {helper} after upgrading trl (read from 1.16.0): parameters ("), line
    (line,) = engine.problems(PrivateName(helper, "test", in_source=("self.no_such_attribute =",)))
    assert "no longer contains 'self.no_such_attribute ='" in line
    (line,) = engine.problems(PrivateName(helper, "test", source_sha256="0" * 64))
    assert line.endswith("its source changed since dgpo copied it")


def test_the_list_imports_without_any_engine():
    """Plain data: importable where neither trl, transformers nor verl is installed."""
    code = (
        "import sys\n"
        "for name in ('trl', 'transformers', 'verl', 'torch'):\n"
        "    sys.modules[name] = None\n"
        "from dgpo.integrations.private_api import ENGINES\n"
        "print(sorted(ENGINES))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["['transformers',", "'trl',", "'verl']"]
